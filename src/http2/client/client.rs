//! [`Client`]: sends requests on the current connection, and decides what to
//! do when one fails.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use futures_lite::future;

use super::attempt::{attempt, Progress};
use super::config::ClientConfig;
use super::connect::Connect;
use super::error::{Error, ErrorKind};
use super::pool::{ClientStats, Counters, Pool};
use super::request::Request;
use super::response::Response;
use super::retry::{decide, Decision, Processing, Retryable};
use crate::http2::Runtime;

/// A GOAWAY-aware HTTP/2 client (cleartext, prior knowledge) for one service
/// reachable at one or more addresses.
///
/// It keeps one connection for new requests. When that connection receives a
/// GOAWAY (or fails), new requests go to a new connection, to the next
/// address that accepts, while the requests already on the old one finish
/// there. A request the server did not process (its stream was above the
/// GOAWAY's last-stream-id, or refused with `REFUSED_STREAM`) is retried once
/// on the new connection whatever its method; one that may have been
/// processed is retried only if marked [`idempotent`](Request::idempotent).
/// See [`Processing`] and [`NotRetried`](super::NotRetried) for what an
/// [`Error`] says.
///
/// A request that times out after it was sent, unanswered, also retires its
/// connection: a peer gone without a FIN or RST would otherwise keep taking
/// new requests; [`keepalive`](super::ClientConfig::keepalive) finds such a
/// peer even with no request in flight.
///
/// Cloning is cheap and shares the connection.
///
/// # Example
///
/// With `winddown-smol` (`winddown-tokio` is the same with `use winddown_tokio as rt`):
///
/// ```no_run
/// use winddown::http2::client::{ClientConfig, Request};
/// use winddown_smol as rt;
///
/// smol::block_on(async {
///     let addrs = ["127.0.0.1:8080".parse().unwrap(), "127.0.0.1:8081".parse().unwrap()];
///     let client = rt::client(addrs, ClientConfig::default());
///     let response = client.send(Request::post("/echo", "hello")).await?;
///     assert_eq!(response.body(), "hello");
///     Ok::<_, winddown::http2::client::Error>(())
/// })
/// .unwrap();
/// ```
pub struct Client<R, C> {
    pool: Arc<Pool<R, C>>,
}

impl<R, C> Clone for Client<R, C> {
    fn clone(&self) -> Self {
        Self {
            pool: self.pool.clone(),
        }
    }
}

impl<R: Runtime, C: Connect> Client<R, C> {
    /// A client for the service at `addrs` (tried in order when a new
    /// connection is needed, starting after the one that went away),
    /// connecting with `connector` and running its connections on `runtime`.
    /// Nothing connects until the first request.
    ///
    /// # Example
    ///
    /// ```
    /// use winddown::http2::client::{Client, ClientConfig};
    /// # fn f<R: winddown::http2::Runtime, C: winddown::http2::client::Connect>(runtime: R, connector: C) {
    /// let client = Client::new(runtime, connector, ["127.0.0.1:8080".parse().unwrap()], ClientConfig::default());
    /// # let _ = client; }
    /// ```
    pub fn new(
        runtime: R,
        connector: C,
        addrs: impl IntoIterator<Item = SocketAddr>,
        config: ClientConfig,
    ) -> Self {
        let addrs = addrs.into_iter().collect();
        Self {
            pool: Arc::new(Pool::new(runtime, connector, addrs, config)),
        }
    }

    /// Sends `request` and reads the whole response, moving to a new
    /// connection and retrying as described on [`Client`]. An HTTP error
    /// status is a response, not an [`Error`].
    ///
    /// # Example
    ///
    /// ```no_run
    /// use winddown::http2::client::Request;
    /// # async fn f<R: winddown::http2::Runtime, C: winddown::http2::client::Connect>(client: winddown::http2::Client<R, C>) -> Result<(), winddown::http2::client::Error> {
    /// let response = client.send(Request::get("/ready").idempotent()).await?;
    /// println!("{}", response.status());
    /// # Ok(()) }
    /// ```
    pub async fn send(&self, mut request: Request) -> Result<Response, Error> {
        let mut progress = Progress::default();
        let mut attempts = 0;
        let result = match self.pool.config.request_timeout {
            None => {
                self.attempts(&mut request, &mut progress, &mut attempts)
                    .await
            }
            Some(timeout) => {
                let runtime = &self.pool.runtime;
                future::or(
                    self.attempts(&mut request, &mut progress, &mut attempts),
                    async {
                        runtime.sleep(timeout).await;
                        Err(Error::new(
                            ErrorKind::Timeout,
                            Processing::NotSent,
                            format!("after {timeout:?}"),
                        ))
                    },
                )
                .await
            }
        };
        result
            .map(|mut response| {
                response.attempts = attempts;
                response
            })
            .map_err(|mut error| {
                error.processing = if error.kind == ErrorKind::Timeout {
                    if progress.sent && !progress.answered {
                        // Sent and no answer in all that time: the peer may
                        // be gone without a word (no RST, no FIN). New
                        // requests go to a new connection; this one may
                        // still finish what it has.
                        self.pool.retire(progress.conn);
                    }
                    progress.processing()
                } else {
                    error.processing.furthest(progress.earlier)
                };
                error.attempts = attempts;
                error
            })
    }

    async fn attempts(
        &self,
        request: &mut Request,
        progress: &mut Progress,
        attempts: &mut u32,
    ) -> Result<Response, Error> {
        if let Some(invalid) = &request.invalid {
            return Err(Error::new(
                ErrorKind::Invalid,
                Processing::NotSent,
                invalid.clone(),
            ));
        }
        let mut retried = false;
        let mut reroutes = 0;
        loop {
            let conn = self
                .pool
                .current()
                .await
                .map_err(|e| Error::new(ErrorKind::Connect, Processing::NotSent, e))?;
            *attempts += 1;
            let max_body = self.pool.config.max_response_body;
            let result = attempt(&conn, request, max_body, progress).await;
            if conn.ids_running_out() {
                // New requests go to a new connection; this one finishes.
                self.pool.retire(conn.id);
            }
            let error = match result {
                Ok(response) => return Ok(response),
                Err(error) => error,
            };
            progress.earlier = progress.earlier.furthest(error.processing);
            if error.kind != ErrorKind::Http2 {
                return Err(error);
            }
            // Whatever happened, a connection that went away or failed takes
            // no new requests; one that only reset this stream keeps serving,
            // except that a refusal sends the retry to a new connection.
            let h2 = error.h2();
            if h2.is_some_and(|e| {
                e.is_go_away() || e.is_io() || e.reason() == Some(h2::Reason::REFUSED_STREAM)
            }) {
                self.pool.retire(conn.id);
            }
            let facts = Retryable {
                body_replayable: request.body.is_replayable(),
                idempotent: request.idempotent,
                retried,
            };
            match decide(error.processing, facts) {
                Decision::Reroute if reroutes < self.pool.config.max_reroutes => {
                    reroutes += 1;
                    Counters::bump(&self.pool.counters.reroutes);
                }
                Decision::Reroute => return Err(error),
                Decision::Retry => {
                    retried = true;
                    Counters::bump(&self.pool.counters.retries);
                    log::debug!(
                        "client: retrying {} {} ({})",
                        request.method,
                        request.uri,
                        error.processing
                    );
                }
                Decision::Fail(why) => {
                    return Err(Error {
                        not_retried: Some(why),
                        ..error
                    })
                }
            }
        }
    }

    /// Counters: connections opened and retired, reroutes and retries.
    ///
    /// # Example
    ///
    /// ```
    /// # fn f<R: winddown::http2::Runtime, C: winddown::http2::client::Connect>(client: &winddown::http2::Client<R, C>) {
    /// println!("{:?}", client.stats());
    /// # }
    /// ```
    pub fn stats(&self) -> ClientStats {
        self.pool.counters.snapshot()
    }
}

impl<R, C> fmt::Debug for Client<R, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client").finish_non_exhaustive()
    }
}
