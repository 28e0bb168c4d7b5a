//! [smol] adapter for [`winddown`]'s HTTP/2 server: the runtime pieces only.
//!
//! [`SmolRuntime`] spawns on smol's executor and sleeps on async-io's timers;
//! [`TcpListener`] accepts connections and bridges them to the I/O traits h2
//! uses; [`stop_on_signals`] turns SIGTERM/SIGINT into a graceful stop (and a
//! second signal into a hard one). Everything else, the protocol, the drain
//! and the stop, is `winddown`'s and runs the same on tokio (`winddown-tokio`
//! has the same API shape, so switching is a one-line change).
//!
//! # Example
//!
//! ```no_run
//! use std::time::Duration;
//! use winddown::http2::{http, Config, Request, Responder};
//! use winddown::Shutdown;
//! use winddown_smol::{SmolRuntime, TcpListener};
//!
//! async fn hello(_: Request, responder: Responder) {
//!     let _ = responder.send(http::Response::new(()), "hello\n").await;
//! }
//!
//! fn main() -> std::io::Result<()> {
//!     smol::block_on(async {
//!         let shutdown = Shutdown::new();
//!         let listener = TcpListener::bind("127.0.0.1:8080").await?;
//!         let server = winddown::http2::Server::new(&shutdown, SmolRuntime::global(), Config::default(), hello);
//!         smol::spawn(server.serve(listener)).detach();
//!
//!         // SIGTERM/SIGINT: graceful stop, hard after 10 s or on a second signal.
//!         let report = winddown_smol::stop_on_signals(&shutdown, Duration::from_secs(10))?.await;
//!         println!("{report}");
//!         Ok(())
//!     })
//! }
//! ```
#![deny(missing_docs)]

mod read_wake;
mod stream;

pub use stream::TcpStream;

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use async_signal::{Signal, Signals};
use winddown::http2::{Listener, Runtime};
use winddown::{Report, Shutdown};

pub use winddown;

/// Spawns on smol's global executor (or one you give it) and sleeps on
/// async-io's timers.
///
/// # Example
///
/// ```
/// use winddown::http2::Runtime;
///
/// let runtime = winddown_smol::SmolRuntime::global();
/// smol::block_on(runtime.sleep(std::time::Duration::from_millis(1)));
/// ```
#[derive(Clone, Default)]
pub struct SmolRuntime {
    executor: Option<Arc<smol::Executor<'static>>>,
}

impl SmolRuntime {
    /// Spawns on smol's global executor (`smol::spawn`).
    ///
    /// # Example
    ///
    /// ```
    /// let _runtime = winddown_smol::SmolRuntime::global();
    /// ```
    pub fn global() -> Self {
        Self { executor: None }
    }

    /// Spawns on `executor`; whoever runs it drives the server.
    ///
    /// # Example
    ///
    /// ```
    /// use std::sync::Arc;
    /// let executor = Arc::new(smol::Executor::new());
    /// let _runtime = winddown_smol::SmolRuntime::with_executor(executor.clone());
    /// ```
    pub fn with_executor(executor: Arc<smol::Executor<'static>>) -> Self {
        Self {
            executor: Some(executor),
        }
    }
}

impl std::fmt::Debug for SmolRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmolRuntime")
            .field("global", &self.executor.is_none())
            .finish()
    }
}

impl Runtime for SmolRuntime {
    type Sleep = Sleep;

    fn spawn<F: Future<Output = ()> + Send + 'static>(&self, task: F) {
        match &self.executor {
            Some(executor) => executor.spawn(task).detach(),
            None => smol::spawn(task).detach(),
        }
    }

    fn sleep(&self, duration: Duration) -> Sleep {
        Sleep(smol::Timer::after(duration))
    }
}

/// The future of [`SmolRuntime::sleep`]: an async-io timer.
///
/// # Example
///
/// ```
/// use winddown::http2::Runtime;
/// let sleep: winddown_smol::Sleep = winddown_smol::SmolRuntime::global().sleep(std::time::Duration::ZERO);
/// smol::block_on(sleep);
/// ```
#[derive(Debug)]
pub struct Sleep(smol::Timer);

impl Future for Sleep {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        Pin::new(&mut self.0).poll(cx).map(|_| ())
    }
}

/// A TCP listener for the server. Dropping it closes the socket, so new
/// connects are refused as soon as the accept loop lets go of it (B1).
///
/// # Example
///
/// ```
/// smol::block_on(async {
///     let listener = winddown_smol::TcpListener::bind("127.0.0.1:0").await?;
///     println!("listening on {}", listener.local_addr()?);
///     std::io::Result::Ok(())
/// }).unwrap();
/// ```
#[derive(Debug)]
pub struct TcpListener {
    /// async-net's listener, unwrapped: accepting on it yields the bare
    /// `Async` stream that [`TcpStream`] wraps.
    inner: std::sync::Arc<smol::Async<std::net::TcpListener>>,
}

impl TcpListener {
    /// Binds to `addr`.
    ///
    /// # Example
    ///
    /// ```
    /// # smol::block_on(async {
    /// let listener = winddown_smol::TcpListener::bind("127.0.0.1:0").await.unwrap();
    /// # let _ = listener; });
    /// ```
    pub async fn bind(addr: impl smol::net::AsyncToSocketAddrs) -> io::Result<Self> {
        Ok(Self {
            inner: smol::net::TcpListener::bind(addr).await?.into(),
        })
    }

    /// Wraps a listener that is already bound (e.g. one inherited from a
    /// parent process).
    ///
    /// # Example
    ///
    /// ```
    /// let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let listener = winddown_smol::TcpListener::from_std(std_listener).unwrap();
    /// # let _ = listener;
    /// ```
    pub fn from_std(listener: std::net::TcpListener) -> io::Result<Self> {
        Ok(Self {
            inner: smol::net::TcpListener::try_from(listener)?.into(),
        })
    }

    /// The address it is bound to.
    ///
    /// # Example
    ///
    /// ```
    /// # smol::block_on(async {
    /// let listener = winddown_smol::TcpListener::bind("127.0.0.1:0").await.unwrap();
    /// assert_ne!(listener.local_addr().unwrap().port(), 0);
    /// # });
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.get_ref().local_addr()
    }
}

impl Listener for TcpListener {
    type Io = TcpStream;

    async fn accept(&mut self) -> io::Result<(Self::Io, Option<SocketAddr>)> {
        let (stream, peer) = self.inner.accept().await?;
        Ok((TcpStream::from_async(stream)?, Some(peer)))
    }
}

/// Stops `shutdown` on SIGTERM or SIGINT: a graceful stop bounded by `grace`,
/// and a hard stop at once on a second signal. The returned future resolves
/// to the stop's report; the stop itself runs as a task on smol's global
/// executor, spawned when the future is first polled (see
/// [`winddown::http2::stop_on_signals`]). A server on an executor of its own
/// ([`SmolRuntime::with_executor`]) calls that function with its runtime and
/// `async_signal::Signals` instead, to keep the stop on its executor.
///
/// The signal handlers are installed by this call, before the future first
/// runs, so a signal that arrives right after (say, once the server has
/// announced its address) is never lost to the default action. They stay
/// installed for the life of the process: once the future is dropped before
/// a signal, SIGTERM and SIGINT no longer end the process of themselves.
///
/// # Example
///
/// ```no_run
/// # smol::block_on(async {
/// let shutdown = winddown::Shutdown::new();
/// let stopped = winddown_smol::stop_on_signals(&shutdown, std::time::Duration::from_secs(10))?;
/// println!("ready"); // handlers are in place from here on
/// println!("{}", stopped.await);
/// # std::io::Result::Ok(()) });
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
/// # smol::block_on(async {
/// use std::time::Duration;
/// let shutdown = winddown::Shutdown::new();
/// let stopped = winddown_smol::stop_on_signals_with_lame_duck(&shutdown, Duration::from_secs(5), Duration::from_secs(30))?;
/// println!("{}", stopped.await);
/// # std::io::Result::Ok(()) });
/// ```
pub fn stop_on_signals_with_lame_duck(
    shutdown: &Shutdown,
    lame_duck: Duration,
    grace: Duration,
) -> io::Result<impl Future<Output = Report> + Send + 'static> {
    let signals = Signals::new([Signal::Term, Signal::Int])?;
    Ok(winddown::http2::stop_on_signals(
        runtime(),
        shutdown,
        signals,
        lame_duck,
        grace,
    ))
}

/// The runtime, by the same name in every adapter: switching between
/// `winddown_smol` and `winddown_tokio` is a one-line change
/// (`use winddown_smol as rt;`).
///
/// # Example
///
/// ```
/// use winddown::http2::Runtime;
/// smol::block_on(winddown_smol::runtime().sleep(std::time::Duration::ZERO));
/// ```
pub fn runtime() -> SmolRuntime {
    SmolRuntime::global()
}

/// Prints what holds (or would hold) a stop to stderr on every SIGUSR1: the
/// stop's phase, the live connections with their open streams (path, age), and
/// the running handlers and scopes. Spawn the returned future.
///
/// # Example
///
/// ```no_run
/// # smol::block_on(async {
/// let shutdown = winddown::Shutdown::new();
/// smol::spawn(winddown_smol::print_held_on_sigusr1(&shutdown)?).detach();
/// # std::io::Result::Ok(()) });
/// ```
pub fn print_held_on_sigusr1(
    shutdown: &Shutdown,
) -> io::Result<impl Future<Output = ()> + Send + 'static> {
    let signals = Signals::new([Signal::Usr1])?;
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
/// smol::block_on(async {
///     let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
///     let stream = winddown_smol::TcpConnector.connect(listener.local_addr().unwrap()).await;
///     assert!(stream.is_ok());
/// });
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct TcpConnector;

impl winddown::http2::client::Connect for TcpConnector {
    type Io = TcpStream;

    async fn connect(&self, addr: SocketAddr) -> io::Result<Self::Io> {
        TcpStream::connect(addr).await
    }
}

/// A winddown HTTP/2 [`Client`](winddown::http2::Client) for the service at
/// `addrs`, on smol's global executor; by the same name in every adapter.
///
/// # Example
///
/// ```no_run
/// use winddown::http2::client::{ClientConfig, Request};
///
/// smol::block_on(async {
///     let client = winddown_smol::client(["127.0.0.1:8080".parse().unwrap()], ClientConfig::default());
///     let response = client.send(Request::get("/ready").idempotent()).await?;
///     println!("{}", response.status());
///     Ok::<_, winddown::http2::client::Error>(())
/// })
/// .unwrap();
/// ```
pub fn client(
    addrs: impl IntoIterator<Item = SocketAddr>,
    config: winddown::http2::client::ClientConfig,
) -> winddown::http2::Client<SmolRuntime, TcpConnector> {
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
/// # smol::block_on(async {
/// use std::time::Duration;
/// let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
/// let handoff = winddown::http2::handoff::Handoff::new(&listener)?;
/// let shutdown = winddown::Shutdown::new();
/// let successor = winddown_smol::hand_off_on_sighup(handoff, &shutdown, Duration::from_secs(10), || {
///     std::process::Command::new(std::env::current_exe().expect("our path"))
/// })?
/// .await;
/// if let Some(successor) = successor {
///     println!("handed over to {}", successor.id());
///     shutdown.graceful_stop().await;
/// }
/// # std::io::Result::Ok(()) });
/// ```
pub fn hand_off_on_sighup(
    handoff: winddown::http2::handoff::Handoff,
    shutdown: &Shutdown,
    ready_timeout: Duration,
    successor: impl FnMut() -> std::process::Command + Send + 'static,
) -> io::Result<impl Future<Output = Option<std::process::Child>> + Send + 'static> {
    let signals = Signals::new([Signal::Hup])?;
    Ok(winddown::http2::handoff::hand_off_on_signals(
        handoff,
        shutdown,
        signals,
        successor,
        ready_timeout,
    ))
}
