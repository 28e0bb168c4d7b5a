//! [tokio] adapter for [`winddown`]'s HTTP/2 server: the runtime pieces only.
//!
//! [`TokioRuntime`] spawns on a tokio runtime and sleeps on its timers;
//! [`TcpListener`] accepts connections; [`stop_on_signals`] turns
//! SIGTERM/SIGINT into a graceful stop (and a second signal into a hard one).
//! The protocol, the drain and the stop are `winddown`'s, shared with
//! `winddown-smol`, which has the same API: `use winddown_tokio as rt;` or
//! `use winddown_smol as rt;` is the only line that changes.
//!
//! # Example
//!
//! ```no_run
//! use std::time::Duration;
//! use winddown::http2::{http, Config, Request, Responder, Server};
//! use winddown::Shutdown;
//! use winddown_tokio as rt;
//!
//! async fn hello(_: Request, responder: Responder) {
//!     let _ = responder.send(http::Response::new(()), "hello\n").await;
//! }
//!
//! #[tokio::main]
//! async fn main() -> std::io::Result<()> {
//!     let shutdown = Shutdown::new();
//!     let listener = rt::TcpListener::bind("127.0.0.1:8080").await?;
//!     let server = Server::new(&shutdown, rt::runtime(), Config::default(), hello);
//!     tokio::spawn(server.serve(listener));
//!     // SIGTERM/SIGINT: graceful stop, hard after 10 s or on a second signal.
//!     let report = rt::stop_on_signals(&shutdown, Duration::from_secs(10))?.await;
//!     println!("{report}");
//!     Ok(())
//! }
//! ```
//!
//! # Composing with servers that are not ours
//!
//! A server that takes a shutdown future (axum's `with_graceful_shutdown`,
//! hyper-util's `GracefulShutdown`) can be driven by a winddown drain, and
//! counted by the same stop, so one report covers it. Any `'static` drain
//! future works: [`DrainToken::wait_owned`](winddown::DrainToken::wait_owned).
//! These snippets are not compiled here (they would pull axum and hyper-util
//! into every test build):
//!
//! ```ignore
//! let shutdown = winddown::Shutdown::new();
//!
//! // axum: drains when the server's connections drain; the stop's
//! // "drain connections" phase waits until axum has finished.
//! let serving = shutdown.track();
//! let drained = shutdown.drain_token().wait_owned();
//! tokio::spawn(async move {
//!     let _ = axum::serve(listener, app).with_graceful_shutdown(drained).await;
//!     drop(serving);
//! });
//!
//! // Or give it its own place in the order: a scope stops after the
//! // winddown server, before the scopes created after it.
//! let admin = shutdown.scope("admin-http");
//! let serving = admin.track();
//! let drained = admin.drain_token().wait_owned();
//! tokio::spawn(async move {
//!     let _ = axum::serve(admin_listener, admin_app).with_graceful_shutdown(drained).await;
//!     drop(serving);
//! });
//!
//! // hyper-util: watch each connection, then wait for them on the drain.
//! let graceful = hyper_util::server::graceful::GracefulShutdown::new();
//! // ... per accepted connection: tokio::spawn(graceful.watch(conn));
//! let drain = shutdown.drain_token();
//! let serving = shutdown.track();
//! tokio::spawn(async move {
//!     drain.wait().await;
//!     graceful.shutdown().await; // sends GOAWAY, waits for the connections
//!     drop(serving);
//! });
//!
//! // Then, as usual: SIGTERM → graceful stop with a deadline → report.
//! let report = winddown_tokio::stop_on_signals(&shutdown, Duration::from_secs(10))?.await;
//! ```
//!
//! `examples/tokio_libraries.rs` shows libraries spawning tokio tasks under
//! scopes handed to them by the application, stopped in order.
#![deny(missing_docs)]

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_lite::Stream;
use tokio::runtime::Handle;
use tokio::signal::unix::{signal, SignalKind};
use winddown::http2::{Listener, Runtime};
use winddown::{Report, Shutdown};

pub use winddown;

/// Spawns on a tokio runtime (the one current where it was created, or one
/// you name) and sleeps on its timers.
///
/// # Example
///
/// ```
/// use winddown::http2::Runtime;
///
/// let tokio = tokio::runtime::Runtime::new().unwrap();
/// let runtime = winddown_tokio::TokioRuntime::with_handle(tokio.handle().clone());
/// tokio.block_on(runtime.sleep(std::time::Duration::from_millis(1)));
/// ```
#[derive(Clone, Debug)]
pub struct TokioRuntime {
    handle: Handle,
}

impl TokioRuntime {
    /// The runtime this is called from.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime, like `tokio::spawn`.
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let _runtime = winddown_tokio::TokioRuntime::current();
    /// # }
    /// ```
    pub fn current() -> Self {
        Self {
            handle: Handle::current(),
        }
    }

    /// A runtime given by its handle.
    ///
    /// # Example
    ///
    /// ```
    /// let tokio = tokio::runtime::Runtime::new().unwrap();
    /// let _runtime = winddown_tokio::TokioRuntime::with_handle(tokio.handle().clone());
    /// ```
    pub fn with_handle(handle: Handle) -> Self {
        Self { handle }
    }
}

impl Runtime for TokioRuntime {
    type Sleep = tokio::time::Sleep;

    fn spawn<F: Future<Output = ()> + Send + 'static>(&self, task: F) {
        // tokio aligns a task's cell to 128 bytes, so a large future inline
        // rounds up by as much; boxed, it costs its own size (a connection's
        // future, kept for the connection's life: ~200 bytes less each).
        if std::mem::size_of::<F>() > 512 {
            drop(self.handle.spawn(Box::pin(task)));
        } else {
            drop(self.handle.spawn(task));
        }
    }

    fn sleep(&self, duration: Duration) -> tokio::time::Sleep {
        // Entering the runtime lets the timer be created from any thread.
        let _entered = self.handle.enter();
        tokio::time::sleep(duration)
    }

    fn wake_runs_next(&self) -> bool {
        // The multi-thread scheduler puts a task woken by the running one in
        // the worker's LIFO slot; the current-thread one queues it last.
        self.handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread
    }
}

/// A TCP listener for the server. Dropping it closes the socket, so new
/// connects are refused as soon as the accept loop lets go of it (B1).
///
/// # Example
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> std::io::Result<()> {
/// let listener = winddown_tokio::TcpListener::bind("127.0.0.1:0").await?;
/// println!("listening on {}", listener.local_addr()?);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct TcpListener {
    inner: tokio::net::TcpListener,
}

impl TcpListener {
    /// Binds to `addr`.
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let listener = winddown_tokio::TcpListener::bind("127.0.0.1:0").await.unwrap();
    /// # let _ = listener; }
    /// ```
    pub async fn bind(addr: impl tokio::net::ToSocketAddrs) -> io::Result<Self> {
        Ok(Self {
            inner: tokio::net::TcpListener::bind(addr).await?,
        })
    }

    /// Wraps a listener that is already bound (e.g. one inherited from a
    /// parent process). Must be called inside a tokio runtime.
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let listener = winddown_tokio::TcpListener::from_std(std_listener).unwrap();
    /// # let _ = listener; }
    /// ```
    pub fn from_std(listener: std::net::TcpListener) -> io::Result<Self> {
        listener.set_nonblocking(true)?;
        Ok(Self {
            inner: tokio::net::TcpListener::from_std(listener)?,
        })
    }

    /// The address it is bound to.
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let listener = winddown_tokio::TcpListener::bind("127.0.0.1:0").await.unwrap();
    /// assert_ne!(listener.local_addr().unwrap().port(), 0);
    /// # }
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}

impl Listener for TcpListener {
    type Io = tokio::net::TcpStream;

    async fn accept(&mut self) -> io::Result<(Self::Io, Option<SocketAddr>)> {
        let (stream, peer) = self.inner.accept().await?;
        // Small frames (GOAWAY, PING ACK) should not wait for Nagle.
        stream.set_nodelay(true)?;
        Ok((stream, Some(peer)))
    }
}

/// Stops `shutdown` on SIGTERM or SIGINT: a graceful stop bounded by `grace`,
/// and a hard stop at once on a second signal. The returned future resolves
/// to the stop's report; the stop itself runs as a task on the current tokio
/// runtime, spawned when the future is first polled (see
/// [`winddown::http2::stop_on_signals`]). The runtime needs timers
/// (`enable_time`, or `enable_all`): without them the stop's grace timer
/// panics, and the panic comes out of the returned future.
///
/// The signal handlers are installed by this call (inside a tokio runtime),
/// before the future first runs, so a signal that arrives right after is
/// never lost to the default action. tokio keeps them for the life of the
/// process: once the future is dropped before a signal, SIGTERM and SIGINT
/// no longer end the process of themselves.
///
/// # Example
///
/// ```no_run
/// # #[tokio::main]
/// # async fn main() -> std::io::Result<()> {
/// let shutdown = winddown::Shutdown::new();
/// let stopped = winddown_tokio::stop_on_signals(&shutdown, std::time::Duration::from_secs(10))?;
/// println!("ready"); // handlers are in place from here on
/// println!("{}", stopped.await);
/// # Ok(()) }
/// ```
pub fn stop_on_signals(
    shutdown: &Shutdown,
    grace: Duration,
) -> io::Result<impl Future<Output = Report> + Send + 'static> {
    stop_on_signals_with_lame_duck(shutdown, Duration::ZERO, grace)
}

/// [`stop_on_signals`] with a lame-duck phase of `lame_duck` first (none if
/// zero): the server keeps serving but reports itself not ready, so load
/// balancers move traffic away before the GOAWAYs. `grace` covers the whole
/// stop, lame duck included.
///
/// # Example
///
/// ```no_run
/// # #[tokio::main]
/// # async fn main() -> std::io::Result<()> {
/// use std::time::Duration;
/// let shutdown = winddown::Shutdown::new();
/// let stopped = winddown_tokio::stop_on_signals_with_lame_duck(&shutdown, Duration::from_secs(5), Duration::from_secs(30))?;
/// println!("{}", stopped.await);
/// # Ok(()) }
/// ```
pub fn stop_on_signals_with_lame_duck(
    shutdown: &Shutdown,
    lame_duck: Duration,
    grace: Duration,
) -> io::Result<impl Future<Output = Report> + Send + 'static> {
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    let signals = either_signal(
        move |cx| terminate.poll_recv(cx),
        move |cx| interrupt.poll_recv(cx),
    );
    Ok(winddown::http2::stop_on_signals(
        runtime(),
        shutdown,
        signals,
        lame_duck,
        grace,
    ))
}

/// One stream of the signals of two kinds: an item per signal of either
/// (both at once are two items, so a SIGTERM and a SIGINT together still
/// make the second signal that forces the stop), ending when both end.
fn either_signal(
    mut first: impl FnMut(&mut Context<'_>) -> Poll<Option<()>>,
    mut second: impl FnMut(&mut Context<'_>) -> Poll<Option<()>>,
) -> impl Stream<Item = ()> {
    let mut owed = false;
    futures_lite::stream::poll_fn(move |cx| {
        if std::mem::take(&mut owed) {
            return Poll::Ready(Some(()));
        }
        match (first(cx), second(cx)) {
            (Poll::Ready(Some(())), Poll::Ready(Some(()))) => {
                owed = true;
                Poll::Ready(Some(()))
            }
            (Poll::Ready(Some(())), _) | (_, Poll::Ready(Some(()))) => Poll::Ready(Some(())),
            (Poll::Ready(None), Poll::Ready(None)) => Poll::Ready(None),
            _ => Poll::Pending,
        }
    })
}

/// The runtime, by the same name in every adapter: switching between
/// `winddown_tokio` and `winddown_smol` is a one-line change
/// (`use winddown_tokio as rt;`). Must be called inside a tokio runtime.
///
/// # Example
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use winddown::http2::Runtime;
/// winddown_tokio::runtime().sleep(std::time::Duration::ZERO).await;
/// # }
/// ```
pub fn runtime() -> TokioRuntime {
    TokioRuntime::current()
}

/// Prints what holds (or would hold) a stop to stderr on every SIGUSR1: the
/// stop's phase, the live connections with their open streams (path, age), and
/// the running handlers and scopes. Spawn the returned future.
///
/// # Example
///
/// ```no_run
/// # #[tokio::main]
/// # async fn main() -> std::io::Result<()> {
/// let shutdown = winddown::Shutdown::new();
/// tokio::spawn(winddown_tokio::print_held_on_sigusr1(&shutdown)?);
/// # Ok(()) }
/// ```
pub fn print_held_on_sigusr1(
    shutdown: &Shutdown,
) -> io::Result<impl Future<Output = ()> + Send + 'static> {
    let mut usr1 = signal(SignalKind::user_defined1())?;
    let signals = futures_lite::stream::poll_fn(move |cx| usr1.poll_recv(cx));
    let shutdown = shutdown.clone();
    Ok(async move { shutdown.print_held_on(signals).await })
}

/// Opens TCP connections (with `TCP_NODELAY`) for winddown's HTTP/2
/// [`Client`](winddown::http2::Client).
///
/// # Example
///
/// ```
/// use winddown::http2::client::Connect;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
/// let stream = winddown_tokio::TcpConnector.connect(listener.local_addr().unwrap()).await;
/// assert!(stream.is_ok());
/// # }
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct TcpConnector;

impl winddown::http2::client::Connect for TcpConnector {
    type Io = tokio::net::TcpStream;

    async fn connect(&self, addr: SocketAddr) -> io::Result<Self::Io> {
        let stream = tokio::net::TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(stream)
    }
}

/// A winddown HTTP/2 [`Client`](winddown::http2::Client) for the service at
/// `addrs`, on the current tokio runtime; by the same name in every adapter.
///
/// # Example
///
/// ```no_run
/// use winddown::http2::client::{ClientConfig, Request};
///
/// # #[tokio::main] async fn main() -> Result<(), winddown::http2::client::Error> {
/// let client = winddown_tokio::client(["127.0.0.1:8080".parse().unwrap()], ClientConfig::default());
/// let response = client.send(Request::get("/ready").idempotent()).await?;
/// println!("{}", response.status());
/// # Ok(()) }
/// ```
pub fn client(
    addrs: impl IntoIterator<Item = SocketAddr>,
    config: winddown::http2::client::ClientConfig,
) -> winddown::http2::Client<TokioRuntime, TcpConnector> {
    winddown::http2::Client::new(runtime(), TcpConnector, addrs, config)
}

/// Zero-downtime restart on SIGHUP: starts the successor made by
/// `successor` with `handoff`'s listener and resolves once it is ready (see
/// [`winddown::http2::handoff`]); then stop gracefully. A successor that fails
/// is logged and this process keeps serving. Resolves with `None` (dropping
/// the copy of the listener) if `shutdown` stops for another reason. The
/// handler is installed by this call.
///
/// # Example
///
/// ```no_run
/// # #[tokio::main]
/// # async fn main() -> std::io::Result<()> {
/// use std::time::Duration;
/// let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
/// let handoff = winddown::http2::handoff::Handoff::new(&listener)?;
/// let shutdown = winddown::Shutdown::new();
/// let successor = winddown_tokio::hand_off_on_sighup(handoff, &shutdown, Duration::from_secs(10), || {
///     std::process::Command::new(std::env::current_exe().expect("our path"))
/// })?
/// .await;
/// if let Some(successor) = successor {
///     println!("handed over to {}", successor.id());
///     shutdown.graceful_stop().await;
/// }
/// # Ok(()) }
/// ```
pub fn hand_off_on_sighup(
    handoff: winddown::http2::handoff::Handoff,
    shutdown: &Shutdown,
    ready_timeout: Duration,
    successor: impl FnMut() -> std::process::Command + Send + 'static,
) -> io::Result<impl Future<Output = Option<std::process::Child>> + Send + 'static> {
    let mut hup = signal(SignalKind::hangup())?;
    let signals = futures_lite::stream::poll_fn(move |cx| hup.poll_recv(cx));
    Ok(winddown::http2::handoff::hand_off_on_signals(
        handoff,
        shutdown,
        signals,
        successor,
        ready_timeout,
    ))
}

#[cfg(test)]
mod tests {
    use std::task::{Context, Poll};

    use futures_lite::{future, StreamExt};

    use super::either_signal;
    use super::TokioRuntime;
    use winddown::http2::Runtime;

    /// Ready with one signal on its first poll, then ended.
    fn once() -> impl FnMut(&mut Context<'_>) -> Poll<Option<()>> {
        let mut given = false;
        move |_| Poll::Ready((!std::mem::replace(&mut given, true)).then_some(()))
    }

    #[test]
    fn two_signals_at_once_are_two_items() {
        let signals = either_signal(once(), once());
        assert_eq!(future::block_on(signals.count()), 2);
    }

    #[test]
    fn one_signal_and_a_quiet_kind_is_one_item() {
        let mut signals = either_signal(once(), |_| Poll::Pending);
        assert_eq!(future::block_on(signals.next()), Some(()));
        assert_eq!(future::block_on(future::poll_once(signals.next())), None);
    }

    /// The multi-thread scheduler runs a woken task next (its LIFO slot);
    /// the current-thread one queues it last.
    #[test]
    fn a_woken_task_runs_next_only_on_the_multi_thread_scheduler() {
        let multi = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .build()
            .unwrap();
        let current = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        assert!(TokioRuntime::with_handle(multi.handle().clone()).wake_runs_next());
        assert!(!TokioRuntime::with_handle(current.handle().clone()).wake_runs_next());
    }
}
