//! [`Server`] and its accept loop, written once for every runtime.

use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_lite::future;
use tokio::io::{AsyncRead, AsyncWrite};

use super::shared_deadline::SharedDeadline;
use super::{connection, Config, Handler, Runtime};
use crate::Shutdown;

/// A source of connections: a bound TCP listener, a Unix socket, a test pipe.
/// The runtime adapters implement it for their listeners.
///
/// Dropping the listener must close it, so that new connects are refused
/// (B1): the accept loop drops it as soon as the stop begins.
///
/// # Example
///
/// ```
/// use std::io;
/// use std::net::SocketAddr;
/// use winddown::http2::Listener;
///
/// /// Hands out connections from a queue (e.g. in-memory pipes in a test).
/// struct Queue(Vec<(tokio::io::DuplexStream, SocketAddr)>);
///
/// impl Listener for Queue {
///     type Io = tokio::io::DuplexStream;
///     async fn accept(&mut self) -> io::Result<(Self::Io, Option<SocketAddr>)> {
///         match self.0.pop() {
///             Some((io, peer)) => Ok((io, Some(peer))),
///             None => std::future::pending().await,
///         }
///     }
/// }
/// ```
pub trait Listener: Send + 'static {
    /// A connection's byte stream (tokio's I/O traits, which h2 uses).
    type Io: AsyncRead + AsyncWrite + Unpin + Send + 'static;

    /// Waits for the next connection and the peer's address, if any.
    fn accept(&mut self)
        -> impl Future<Output = io::Result<(Self::Io, Option<SocketAddr>)>> + Send;
}

/// An HTTP/2 server that drains the way grpc-go's `GracefulStop` does, with
/// the bounds grpc-go leaves to its users (behaviours B1–B11 in the crate's
/// design notes).
///
/// It is written once against [`Runtime`]; `winddown-smol` and
/// `winddown-tokio` supply the runtime, listeners and signals.
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use winddown::http2::{Config, Listener, Request, Responder, Runtime, Server};
/// use winddown::Shutdown;
///
/// async fn hello(_: Request, responder: Responder) {
///     let _ = responder.send(http::Response::new(()), "hello\n").await;
/// }
///
/// async fn run<R: Runtime, L: Listener>(runtime: R, listener: L, sigterm: impl std::future::Future) {
///     let shutdown = Shutdown::new();
///     let server = Server::new(&shutdown, runtime.clone(), Config::default(), hello);
///     runtime.spawn(server.serve(listener));
///     sigterm.await;
///     let deadline = runtime.sleep(Duration::from_secs(10));
///     let report = shutdown.graceful_stop_with_deadline(deadline).await;
///     println!("{report}");
/// }
/// ```
pub struct Server<R, H> {
    inner: Arc<Inner<R, H>>,
}

pub(crate) struct Inner<R, H> {
    pub(crate) runtime: R,
    pub(crate) handler: H,
    pub(crate) config: Config,
    pub(crate) shutdown: Shutdown,
    /// The PING ACK deadline of a stop's drain, shared by its connections.
    pub(crate) ack_deadline: SharedDeadline,
    /// The end of the linger's first half in a stop's drain, shared likewise.
    pub(crate) linger_deadline: SharedDeadline,
}

impl<R: Runtime, H: Handler> Server<R, H> {
    /// A server whose stop is coordinated by `shutdown`.
    ///
    /// # Example
    ///
    /// See the type's docs.
    pub fn new(shutdown: &Shutdown, runtime: R, config: Config, handler: H) -> Self {
        Self {
            inner: Arc::new(Inner {
                runtime,
                handler,
                config,
                shutdown: shutdown.clone(),
                ack_deadline: SharedDeadline::new(shutdown),
                linger_deadline: SharedDeadline::new(shutdown),
            }),
        }
    }

    /// The shutdown coordinating this server.
    ///
    /// # Example
    ///
    /// ```
    /// # fn f<R: winddown::http2::Runtime, H: winddown::http2::Handler>(server: &winddown::http2::Server<R, H>) {
    /// let shutdown = server.shutdown().clone();
    /// # let _ = shutdown;
    /// # }
    /// ```
    pub fn shutdown(&self) -> &Shutdown {
        &self.inner.shutdown
    }

    /// The configuration.
    ///
    /// # Example
    ///
    /// ```
    /// # fn f<R: winddown::http2::Runtime, H: winddown::http2::Handler>(server: &winddown::http2::Server<R, H>) {
    /// println!("{:?}", server.config().get_ping_ack_timeout());
    /// # }
    /// ```
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// Accepts connections until the stop begins, serving each in its own
    /// task; then closes the listener (new connects are refused from here on)
    /// and returns, before any connection is told to drain (B1).
    ///
    /// Accept errors (out of file descriptors, aborted handshakes) are logged
    /// and retried with a backoff from 5 ms to 1 s; the loop neither spins
    /// nor dies.
    ///
    /// Connections waiting in the kernel's backlog when the stop begins are
    /// accepted (and drained like any other) as long as the runtime has seen
    /// them; one that arrived in the last instant before the listener closed
    /// is reset by the kernel. The server has read nothing from it, so its
    /// client may retry it anywhere.
    ///
    /// The listener counts for the stop from this call on, before the
    /// returned future first runs; spawn the future.
    ///
    /// # Example
    ///
    /// ```
    /// # async fn f<R: winddown::http2::Runtime, H: winddown::http2::Handler, L: winddown::http2::Listener>(server: winddown::http2::Server<R, H>, runtime: R, listener: L) {
    /// runtime.spawn(server.serve(listener)); // ends once the stop has closed it
    /// # }
    /// ```
    pub fn serve<L: Listener>(&self, listener: L) -> impl Future<Output = ()> + Send + 'static {
        // Registered now, not when the returned future first runs: a stop
        // that begins before the accept task is scheduled must still wait for
        // this listener, or it would finish while connections wait in the
        // backlog.
        let listening = self.inner.shutdown.listener();
        let server = self.clone();
        async move {
            // Dropped last: the close phase waits for this guard, which goes
            // only after the listener itself is closed.
            let _listening = listening;
            server.accept_until_close(listener).await;
        }
    }

    async fn accept_until_close<L: Listener>(&self, mut listener: L) {
        let close = self.inner.shutdown.close_token();
        let mut backoff = Backoff::default();
        loop {
            let accepted = future::or(async { Some(listener.accept().await) }, async {
                close.wait().await;
                None
            })
            .await;
            match accepted {
                None => break,
                Some(Ok((io, peer))) => {
                    backoff.reset();
                    self.spawn_connection(io, peer);
                }
                Some(Err(e)) => {
                    let delay = backoff.next();
                    log::warn!("accept failed: {e}; retrying in {delay:?}");
                    let rest = self.inner.runtime.sleep(delay);
                    future::or(rest, close.wait()).await;
                }
            }
        }
        drop(listener);
    }

    /// Serves one already-accepted connection in a new task, counted by the
    /// shutdown from this call on.
    ///
    /// # Example
    ///
    /// ```
    /// # fn f<R: winddown::http2::Runtime, H: winddown::http2::Handler>(server: &winddown::http2::Server<R, H>, io: tokio::io::DuplexStream) {
    /// server.spawn_connection(io, None);
    /// # }
    /// ```
    pub fn spawn_connection<IO>(&self, io: IO, peer: Option<SocketAddr>)
    where
        IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        // Registered here, before the task exists, so the drain phase can
        // never miss a connection that is being set up.
        let conn = self.inner.shutdown.connection(peer);
        let inner = self.inner.clone();
        self.inner.runtime.spawn(connection::serve(inner, io, conn));
    }
}

#[cfg(test)]
impl<R, H> Server<R, H> {
    pub(crate) fn inner_for_tests(&self) -> Arc<Inner<R, H>> {
        self.inner.clone()
    }
}

impl<R, H> Clone for Server<R, H> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

impl<R, H> fmt::Debug for Server<R, H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("config", &self.inner.config)
            .field("shutdown", &self.inner.shutdown)
            .finish_non_exhaustive()
    }
}

/// Exponential backoff for accept errors: 5 ms doubling to 1 s.
#[derive(Default)]
struct Backoff {
    current: Option<Duration>,
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(5);
    const MAX: Duration = Duration::from_secs(1);

    fn next(&mut self) -> Duration {
        let next = self
            .current
            .map_or(Self::FIRST, |current| (current * 2).min(Self::MAX));
        self.current = Some(next);
        next
    }

    fn reset(&mut self) {
        self.current = None;
    }
}

#[cfg(all(test, not(winddown_loom)))]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_a_cap_and_resets() {
        let mut backoff = Backoff::default();
        let delays: Vec<_> = (0..10).map(|_| backoff.next()).collect();
        assert_eq!(delays[0], Duration::from_millis(5));
        assert_eq!(delays[1], Duration::from_millis(10));
        assert_eq!(*delays.last().unwrap(), Duration::from_secs(1));
        backoff.reset();
        assert_eq!(backoff.next(), Duration::from_millis(5));
    }
}
