//! Zero-downtime restarts: hand the listening socket to a new process, which
//! accepts on it before the old one stops accepting, so no connect is ever
//! refused.
//!
//! The protocol is systemd's socket activation (`LISTEN_FDS`, with
//! `LISTEN_PID` when systemd sets it), extended as the `listenfd` crate
//! does: `LISTEN_FDS_FIRST_FD` says where the fds start when it is not 3.
//! So the same binary accepts a socket from systemd, from `systemfd`, or
//! from its predecessor.
//!
//! A restart, in the old process:
//!
//! 1. [`Handoff::spawn`] starts the new process with an inheritable copy of
//!    the listener and waits until it says it is ready
//!    ([`notify_ready`], sent over a Unix datagram socket named in
//!    `WINDDOWN_READY_SOCKET`). If it exits or is not ready in time, the old
//!    process keeps serving and says why.
//! 2. The old process then stops gracefully: its listener closes, which only
//!    drops its own descriptor (the socket stays open in the new process, and
//!    connections waiting in the backlog are accepted there), and its
//!    connections drain with the two-phase GOAWAY.
//!
//! In the new process, [`inherited_listener`] returns the socket (or `None`
//! when started normally: then bind as usual).
//!
//! Without a hand-off a restart closes the port between the old process's
//! stop and the new one's bind: connects in that gap are refused (see the
//! README's restart section for what a gRPC client sees).
//!
//! # Example
//!
//! ```no_run
//! use std::process::Command;
//! use std::time::Duration;
//! use winddown::http2::handoff::{self, Handoff};
//!
//! # fn main() -> std::io::Result<()> {
//! // At start: the predecessor's socket, or a fresh one.
//! let listener = match handoff::inherited_listener()? {
//!     Some(listener) => listener,
//!     None => std::net::TcpListener::bind("127.0.0.1:8080")?,
//! };
//! let handoff = Handoff::new(&listener)?; // keep a copy to pass on
//! // ... serve `listener`, then once serving:
//! handoff::notify_ready()?;
//!
//! // On SIGHUP: start the successor with the same arguments, then drain.
//! let mut command = Command::new(std::env::current_exe()?);
//! command.args(std::env::args_os().skip(1));
//! let successor = handoff.spawn(command, Duration::from_secs(10))?;
//! println!("successor {} is accepting; draining", successor.id());
//! # Ok(()) }
//! ```

use std::io;
use std::net::TcpListener;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::process::{Child, Command};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// The environment variable naming the Unix datagram socket on which the
/// predecessor waits for [`notify_ready`].
pub const READY_SOCKET_ENV: &str = "WINDDOWN_READY_SOCKET";

/// The listening TCP socket this process inherited (systemd socket
/// activation, `systemfd`, or a predecessor's [`Handoff`]), if any: the
/// first of `LISTEN_FDS`. `LISTEN_FDS`, `LISTEN_PID` and
/// `LISTEN_FDS_FIRST_FD` are removed, so children of this process do not see
/// them; since changing the environment races with other threads reading it,
/// call this at startup, before the runtime or any thread starts.
///
/// # Example
///
/// ```
/// // Started normally: nothing inherited.
/// assert!(winddown::http2::handoff::inherited_listener().unwrap().is_none());
/// ```
pub fn inherited_listener() -> io::Result<Option<TcpListener>> {
    let mut fds = listenfd::ListenFd::from_env();
    // listenfd removes the other two.
    std::env::remove_var("LISTEN_FDS_FIRST_FD");
    if fds.len() == 0 {
        return Ok(None);
    }
    // listenfd checks that the fd is a TCP listening socket before taking it.
    fds.take_tcp_listener(0)
}

/// Tells the predecessor that started this process (if one did) that it is
/// serving, so the predecessor may stop accepting and drain. Call it once the
/// server is accepting on the inherited listener. Does nothing when no
/// predecessor is waiting.
///
/// # Example
///
/// ```
/// winddown::http2::handoff::notify_ready().unwrap(); // no predecessor: a no-op
/// ```
pub fn notify_ready() -> io::Result<()> {
    let Some(path) = std::env::var_os(READY_SOCKET_ENV) else {
        return Ok(());
    };
    // Left in the environment (removing it while threads run would race
    // with them): a successor of ours gets its own from `Handoff::spawn`.
    let socket = UnixDatagram::unbound()?;
    socket.send_to(b"ready", path)?;
    Ok(())
}

/// A copy of a listening socket kept to hand to a successor process.
///
/// # Example
///
/// ```
/// let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
/// let handoff = winddown::http2::handoff::Handoff::new(&listener).unwrap();
/// assert_eq!(handoff.local_addr().unwrap(), listener.local_addr().unwrap());
/// ```
#[derive(Debug)]
pub struct Handoff {
    listener: TcpListener,
}

impl Handoff {
    /// Keeps a copy of `listener` (a second descriptor of the same socket),
    /// so the server may own and close its own.
    ///
    /// # Example
    ///
    /// ```
    /// let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let _handoff = winddown::http2::handoff::Handoff::new(&listener).unwrap();
    /// ```
    pub fn new(listener: &TcpListener) -> io::Result<Self> {
        Ok(Self {
            listener: listener.try_clone()?,
        })
    }

    /// The address of the socket.
    ///
    /// # Example
    ///
    /// ```
    /// # let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let handoff = winddown::http2::handoff::Handoff::new(&listener).unwrap();
    /// println!("{}", handoff.local_addr().unwrap());
    /// ```
    pub fn local_addr(&self) -> io::Result<std::net::SocketAddr> {
        self.listener.local_addr()
    }

    /// Starts `command` with the socket inherited (`LISTEN_FDS=1`,
    /// `LISTEN_FDS_FIRST_FD`) and waits, up to `ready_timeout`, for it to call
    /// [`notify_ready`]. Blocks the calling thread (use a blocking task, or
    /// [`spawn_ready`](Handoff::spawn_ready) from async code).
    ///
    /// On error (it could not start, exited, or was not ready in time) the
    /// successor has been killed and this process should go on serving.
    ///
    /// The inheritable descriptor exists only around the `spawn`; a process
    /// that another thread starts at that instant inherits it too (as with
    /// any fd passing without `posix_spawn` file actions), which keeps the
    /// socket open as long as that process lives.
    ///
    /// # Example
    ///
    /// ```no_run
    /// # fn f(handoff: &winddown::http2::handoff::Handoff) -> std::io::Result<()> {
    /// let successor = handoff.spawn(std::process::Command::new("./server"), std::time::Duration::from_secs(10))?;
    /// println!("handed over to {}", successor.id());
    /// # Ok(()) }
    /// ```
    pub fn spawn(&self, command: Command, ready_timeout: Duration) -> io::Result<Child> {
        self.spawn_until(command, ready_timeout, &AtomicBool::new(false))
    }

    /// [`spawn`](Self::spawn), called off (the successor killed) once
    /// `cancelled` is set while it is not ready yet.
    fn spawn_until(
        &self,
        mut command: Command,
        ready_timeout: Duration,
        cancelled: &AtomicBool,
    ) -> io::Result<Child> {
        let ready = ReadySocket::bind()?;
        // A descriptor of our own without close-on-exec, which the child
        // inherits at the same number; dropped (closed here) once it runs.
        let inheritable = self.listener.try_clone()?;
        rustix::io::fcntl_setfd(&inheritable, rustix::io::FdFlags::empty())?;
        command
            .env("LISTEN_FDS", "1")
            .env("LISTEN_FDS_FIRST_FD", inheritable.as_raw_fd().to_string())
            // No pid check: the child's pid is not known before it runs.
            .env_remove("LISTEN_PID")
            .env(READY_SOCKET_ENV, &ready.path);
        let spawned = command.spawn();
        drop(inheritable);
        let mut child = spawned
            .map_err(|e| io::Error::new(e.kind(), format!("cannot start the successor: {e}")))?;
        if let Err(e) = ready.wait(&mut child, ready_timeout, cancelled) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(e);
        }
        Ok(child)
    }

    /// [`spawn`](Handoff::spawn) on a thread of its own, for async code on
    /// any runtime: the future resolves when the successor is ready (or
    /// failed).
    ///
    /// # Example
    ///
    /// ```no_run
    /// # async fn f(handoff: &winddown::http2::handoff::Handoff) -> std::io::Result<()> {
    /// let command = std::process::Command::new("./server");
    /// let successor = handoff.spawn_ready(command, std::time::Duration::from_secs(10))?.await?;
    /// # let _ = successor; Ok(()) }
    /// ```
    pub fn spawn_ready(
        &self,
        command: Command,
        ready_timeout: Duration,
    ) -> io::Result<impl std::future::Future<Output = io::Result<Child>> + Send + 'static> {
        let handoff = Handoff::new(&self.listener)?;
        let done = crate::DrainToken::new();
        let shared = Arc::new(Pending::default());
        let (fired, thread_side) = (done.clone(), shared.clone());
        std::thread::Builder::new()
            .name("winddown-handoff".into())
            .spawn(move || {
                let spawned = handoff.spawn_until(command, ready_timeout, &thread_side.cancelled);
                *lock(&thread_side.result) = Some(spawned);
                // Called off just as it became ready: nobody will take it.
                if thread_side.cancelled.load(Ordering::Relaxed) {
                    if let Some(Ok(mut orphan)) = lock(&thread_side.result).take() {
                        let _ = orphan.kill();
                        let _ = orphan.wait();
                    }
                }
                fired.fire();
            })?;
        // Dropped before the end (this process stops for another reason), it
        // calls the hand-off off: no successor is left serving on its own.
        let pending = CallOffOnDrop(shared);
        Ok(async move {
            done.wait_owned().await;
            let taken = lock(&pending.0.result).take();
            taken.unwrap_or_else(|| {
                Err(io::Error::other(
                    "the hand-off thread ended without a result",
                ))
            })
        })
    }
}

/// A hand-off running on its own thread: its result, and whether whoever
/// waited for it has gone.
#[derive(Default)]
struct Pending {
    result: Mutex<Option<io::Result<Child>>>,
    cancelled: AtomicBool,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// Calls a pending hand-off off when its future is dropped: the thread stops
/// waiting (and kills the successor), and a successor already ready that
/// nobody took is killed too.
struct CallOffOnDrop(Arc<Pending>);

impl Drop for CallOffOnDrop {
    fn drop(&mut self) {
        self.0.cancelled.store(true, Ordering::Relaxed);
        if let Some(Ok(mut orphan)) = lock(&self.0.result).take() {
            let _ = orphan.kill();
            let _ = orphan.wait();
        }
    }
}

/// The datagram socket the successor's [`notify_ready`] reaches, removed
/// from the file system when dropped.
struct ReadySocket {
    socket: UnixDatagram,
    path: PathBuf,
}

impl ReadySocket {
    fn bind() -> io::Result<Self> {
        let path = std::env::temp_dir().join(format!(
            "winddown-handoff-{}-{}.sock",
            std::process::id(),
            fastrand::u64(..)
        ));
        let socket = UnixDatagram::bind(&path)?;
        Ok(Self { socket, path })
    }

    /// Waits for "ready", checking every 50 ms that the child still runs.
    fn wait(&self, child: &mut Child, timeout: Duration, cancelled: &AtomicBool) -> io::Result<()> {
        let start = Instant::now();
        self.socket
            .set_read_timeout(Some(Duration::from_millis(50)))?;
        let mut buf = [0u8; 16];
        loop {
            match self.socket.recv(&mut buf) {
                Ok(n) if &buf[..n] == b"ready" => return Ok(()),
                Ok(_) => {}
                // A signal (a second SIGHUP, say) interrupts the wait only.
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock
                            | io::ErrorKind::TimedOut
                            | io::ErrorKind::Interrupted
                    ) => {}
                Err(e) => return Err(e),
            }
            if cancelled.load(Ordering::Relaxed) {
                return Err(io::Error::new(
                    io::ErrorKind::Interrupted,
                    "the hand-off was called off (this process is stopping)",
                ));
            }
            if let Some(status) = child.try_wait()? {
                return Err(io::Error::other(format!(
                    "the successor exited ({status}) before it was ready"
                )));
            }
            if start.elapsed() >= timeout {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("the successor was not ready within {timeout:?}"),
                ));
            }
        }
    }
}

impl Drop for ReadySocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The usual restart signal handling, written once for every adapter: on
/// each item of `signals` (SIGHUP, from the adapter), start the successor
/// made by `successor` with the listener and wait until it is ready.
/// Resolves with the successor once one is ready; the caller then stops
/// gracefully. A successor that fails to start or to become ready within
/// `ready_timeout` is killed and logged, and this process goes on serving
/// until the next signal.
///
/// If `shutdown` begins to stop for another reason (say SIGTERM), this
/// resolves with `None` and drops `handoff` at once: while the copy lives,
/// the socket stays open, and new connects would wait in its backlog of a
/// process that no longer accepts instead of being refused (B1).
///
/// # Example
///
/// ```no_run
/// use std::process::Command;
/// use std::time::Duration;
/// use winddown::http2::handoff::{self, Handoff};
///
/// # async fn f(handoff: Handoff, shutdown: winddown::Shutdown, sighup: futures_lite::stream::Pending<()>) {
/// let successor = handoff::hand_off_on_signals(handoff, &shutdown, sighup, || {
///     let mut command = Command::new(std::env::current_exe().expect("our own path"));
///     command.args(std::env::args_os().skip(1));
///     command
/// }, Duration::from_secs(10)).await;
/// if let Some(successor) = successor {
///     println!("handed over to {}; draining", successor.id());
///     let report = shutdown.graceful_stop().await;
/// }
/// # }
/// ```
pub fn hand_off_on_signals<S>(
    handoff: Handoff,
    shutdown: &crate::Shutdown,
    mut signals: S,
    mut successor: impl FnMut() -> Command + Send + 'static,
    ready_timeout: Duration,
) -> impl std::future::Future<Output = Option<Child>> + Send + 'static
where
    S: futures_lite::Stream + Unpin + Send + 'static,
{
    use futures_lite::StreamExt;
    let closing = shutdown.close_token();
    async move {
        let hand_off = async {
            while signals.next().await.is_some() {
                log::info!(
                    "hand-off: starting a successor on {:?}",
                    handoff.local_addr().ok()
                );
                let started = match handoff.spawn_ready(successor(), ready_timeout) {
                    Ok(started) => started.await,
                    Err(e) => Err(e),
                };
                match started {
                    Ok(child) => {
                        log::info!(
                        "hand-off: successor {} is ready; this process stops accepting and drains",
                        child.id()
                    );
                        return Some(child);
                    }
                    Err(e) => log::error!("hand-off failed, still serving: {e}"),
                }
            }
            futures_lite::future::pending().await
        };
        let stopping = async {
            closing.wait().await;
            None
        };
        futures_lite::future::or(hand_off, stopping).await
    }
}
