//! [`Pool`]: the one connection new requests go to, replaced when it goes
//! away, while the ones it replaced finish their streams.
//!
//! A connection is *current* until a request learns it is going away (h2
//! refuses new streams after any GOAWAY, and fails them after the connection
//! closes); it is then *retired*: new requests wait for a fresh connection,
//! made once for all of them by one spawned task, while the requests already
//! on the retired connection keep their handles to it and finish. The
//! connection's driver task ends when h2 is done with it, which is when the
//! last stream on it ends and the last handle is dropped.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;
use event_listener::Event;
use futures_lite::future;
use h2::client::SendRequest;

use super::config::ClientConfig;
use super::connect::Connect;
use crate::http2::Runtime;

/// One HTTP/2 connection to one address.
pub(crate) struct Conn {
    /// Unique per pool, so that retiring an old connection twice is harmless.
    pub(crate) id: u64,
    pub(crate) peer: SocketAddr,
    /// `host:port`, the `:authority` of requests given as a path.
    pub(crate) authority: String,
    pub(crate) sender: SendRequest<Bytes>,
    /// The highest stream id used on it, to retire it before the ids run
    /// out (h2 fails every request after the last one).
    pub(crate) last_stream: AtomicU32,
}

impl Conn {
    /// Stream ids left before this connection must be replaced: room for
    /// the requests already in flight when the check is made.
    const RETIRE_AT: u32 = (1 << 31) - (1 << 16);

    pub(crate) fn ids_running_out(&self) -> bool {
        self.last_stream.load(Ordering::Relaxed) >= Self::RETIRE_AT
    }
}

/// Counters a [`Client`](super::Client) keeps, for tests, benchmarks and logs.
///
/// # Example
///
/// ```
/// let stats = winddown::http2::client::ClientStats::default();
/// assert_eq!(stats.connections, 0);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClientStats {
    /// Connections opened (handshake done).
    pub connections: u64,
    /// Connections retired because they went away or failed.
    pub retired: u64,
    /// Connect attempts to an address that failed.
    pub connect_failures: u64,
    /// Requests sent again after they never left.
    pub reroutes: u64,
    /// Requests sent again after a failure (their one retry).
    pub retries: u64,
}

#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) connections: AtomicU64,
    pub(crate) retired: AtomicU64,
    pub(crate) connect_failures: AtomicU64,
    pub(crate) reroutes: AtomicU64,
    pub(crate) retries: AtomicU64,
}

impl Counters {
    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> ClientStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        ClientStats {
            connections: get(&self.connections),
            retired: get(&self.retired),
            connect_failures: get(&self.connect_failures),
            reroutes: get(&self.reroutes),
            retries: get(&self.retries),
        }
    }
}

#[derive(Default)]
struct State {
    current: Option<Arc<Conn>>,
    /// A connect task is running; requests wait for `changed`.
    connecting: bool,
    /// Bumped when a connect task ends, so a waiter knows its attempt is over.
    attempts_done: u64,
    /// Why the last connect task failed (every address refused or timed out).
    last_error: Option<String>,
    /// Where the next connect task starts: the address after the one that
    /// went away, so a rolling restart spreads the load.
    next_addr: usize,
    /// After a connect round in which every address failed: no new round
    /// before this instant (requests fail at once, as grpc's do in
    /// TRANSIENT_FAILURE), and how long the last wait was.
    retry_at: Option<Instant>,
    backoff: Duration,
}

pub(crate) struct Pool<R, C> {
    pub(crate) runtime: R,
    connector: C,
    addrs: Vec<SocketAddr>,
    pub(crate) config: ClientConfig,
    state: Mutex<State>,
    changed: Event,
    next_id: AtomicU64,
    pub(crate) counters: Counters,
}

impl<R: Runtime, C: Connect> Pool<R, C> {
    pub(crate) fn new(
        runtime: R,
        connector: C,
        addrs: Vec<SocketAddr>,
        config: ClientConfig,
    ) -> Self {
        Self {
            runtime,
            connector,
            addrs,
            config,
            state: Mutex::default(),
            changed: Event::new(),
            next_id: AtomicU64::new(1),
            counters: Counters::default(),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // Nothing panics while holding the lock; recover the data if a
        // panic elsewhere ever poisoned it.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The current connection, connecting first if there is none.
    pub(crate) async fn current(self: &Arc<Self>) -> Result<Arc<Conn>, String> {
        if self.addrs.is_empty() {
            return Err("the client has no address".into());
        }
        let mut waiting_for = None;
        // Rounds that made a connection which was gone again (retired: it
        // received a GOAWAY or closed) before this request could use it.
        let mut gone_again = 0;
        loop {
            let listener = {
                let mut state = self.state();
                if let Some(conn) = &state.current {
                    return Ok(conn.clone());
                }
                if let Some(attempt) = waiting_for {
                    if state.attempts_done > attempt && !state.connecting {
                        if let Some(why) = &state.last_error {
                            return Err(why.clone());
                        }
                        // The round succeeded; its connection went away at
                        // once (a server in its drain). Another round, bounded.
                        gone_again += 1;
                        if gone_again > self.config.max_reroutes {
                            return Err("every new connection went away at once".into());
                        }
                        waiting_for = None;
                    }
                }
                if !state.connecting {
                    if let Some(at) = state.retry_at.filter(|at| Instant::now() < *at) {
                        // Every address failed a moment ago: no connect storm.
                        let why = state.last_error.as_deref().unwrap_or("connect failed");
                        let wait = at.saturating_duration_since(Instant::now());
                        return Err(format!("{why} (next attempt in {wait:.0?})"));
                    }
                    state.connecting = true;
                    // A task of its own: a request that gives up (its timeout)
                    // must not leave the others waiting on a connect nobody drives.
                    let pool = self.clone();
                    let start = state.next_addr;
                    self.runtime
                        .spawn(async move { pool.connect_from(start).await });
                }
                waiting_for.get_or_insert(state.attempts_done);
                // Listening under the lock: the connect task's notify takes
                // the lock first, so it cannot slip in between.
                self.changed.listen()
            };
            listener.await;
        }
    }

    /// Connects to the first address that accepts, starting at `start`,
    /// publishes the result and wakes every waiting request.
    async fn connect_from(self: Arc<Self>, start: usize) {
        let mut errors = Vec::new();
        let mut made = None;
        for i in 0..self.addrs.len() {
            let index = (start + i) % self.addrs.len();
            let addr = self.addrs[index];
            let id = self.next_id.fetch_add(1, Ordering::Relaxed);
            match self.connect_one(id, addr).await {
                Ok(sender) => {
                    made = Some((id, index, addr, sender));
                    break;
                }
                Err(e) => {
                    Counters::bump(&self.counters.connect_failures);
                    log::debug!("client: connect to {addr} failed: {e}");
                    errors.push(format!("{addr}: {e}"));
                }
            }
        }
        let mut state = self.state();
        state.connecting = false;
        state.attempts_done += 1;
        match made {
            Some((id, index, peer, sender)) => {
                state.next_addr = index;
                state.last_error = None;
                (state.retry_at, state.backoff) = (None, Duration::ZERO);
                state.current = Some(Arc::new(Conn {
                    id,
                    peer,
                    authority: peer.to_string(),
                    sender,
                    last_stream: AtomicU32::new(0),
                }));
                Counters::bump(&self.counters.connections);
            }
            None => {
                state.last_error = Some(errors.join("; "));
                // Exponential, with jitter, so clients that lost the same
                // servers do not come back in step.
                // Capped at an hour, so no setting can overflow the arithmetic.
                let cap = Duration::from_secs(3600);
                let initial = self.config.connect_backoff.min(cap);
                let max = self.config.max_connect_backoff.clamp(initial, cap);
                state.backoff = state.backoff.saturating_mul(2).clamp(initial, max);
                let jittered = state.backoff.mul_f64(0.8 + fastrand::f64() * 0.4);
                state.retry_at = Instant::now().checked_add(jittered);
            }
        }
        drop(state);
        self.changed.notify(usize::MAX);
    }

    /// TCP connect and HTTP/2 handshake, bounded by the connect timeout; the
    /// connection's driver is spawned.
    async fn connect_one(
        self: &Arc<Self>,
        id: u64,
        addr: SocketAddr,
    ) -> Result<SendRequest<Bytes>, String> {
        let timeout = self.config.connect_timeout;
        let attempt = async {
            let io = self
                .connector
                .connect(addr)
                .await
                .map_err(|e| e.to_string())?;
            h2::client::Builder::new()
                // Streams we never opened are not wanted.
                .enable_push(false)
                .handshake::<_, Bytes>(io)
                .await
                .map_err(|e| e.to_string())
        };
        let timed_out = async {
            self.runtime.sleep(timeout).await;
            Err(format!("no connection within {timeout:?}"))
        };
        let (sender, mut connection) = future::or(attempt, timed_out).await?;
        let keepalive = match (self.config.keepalive, connection.ping_pong()) {
            (Some(every), Some(pings)) => Some(KeepAlive {
                runtime: self.runtime.clone(),
                pings,
                every,
                timeout: self.config.keepalive_timeout,
            }),
            _ => None,
        };
        let pool = Arc::downgrade(self);
        self.runtime
            .spawn(drive(connection, keepalive, pool, id, addr));
        Ok(sender)
    }

    /// Stops new requests from using connection `id` (it went away or
    /// failed); the next request connects afresh, from the next address.
    pub(crate) fn retire(&self, id: u64) {
        let mut state = self.state();
        if let Some(conn) = state.current.as_ref().filter(|c| c.id == id) {
            let peer = conn.peer;
            state.current = None;
            if let Some(index) = self.addrs.iter().position(|a| *a == peer) {
                state.next_addr = (index + 1) % self.addrs.len();
            }
            Counters::bump(&self.counters.retired);
        }
    }
}

/// PINGs a connection at an interval; resolves when one goes unanswered.
struct KeepAlive<R> {
    runtime: R,
    pings: h2::PingPong,
    every: Duration,
    timeout: Duration,
}

impl<R: Runtime> KeepAlive<R> {
    async fn until_silent(mut self) {
        loop {
            self.runtime.sleep(self.every).await;
            let answered = async { self.pings.ping(h2::Ping::opaque()).await.is_ok() };
            let silence = async {
                self.runtime.sleep(self.timeout).await;
                false
            };
            if !future::or(answered, silence).await {
                return;
            }
        }
    }
}

/// Drives one connection until h2 is done with it. The pool is held weakly:
/// the client's handle keeps the current connection, not the other way round.
async fn drive<T, R, C>(
    connection: h2::client::Connection<T, Bytes>,
    keepalive: Option<KeepAlive<R>>,
    pool: Weak<Pool<R, C>>,
    id: u64,
    peer: SocketAddr,
) where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    R: Runtime,
    C: Connect,
{
    let served = async {
        if let Err(e) = connection.await {
            log::debug!("client: connection to {peer} ended: {e}");
        }
    };
    let watched = async {
        match keepalive {
            Some(keepalive) => keepalive.until_silent().await,
            None => future::pending().await,
        }
        // Dropping the connection closes the socket: its streams fail as
        // "may have been processed", which is all that can be known.
        log::warn!("client: {peer} did not answer a keepalive PING; closing the connection");
    };
    future::or(served, watched).await;
    // Closed (the server went away, or the socket failed): new requests
    // should not find it current and fail once before moving on.
    if let Some(pool) = pool.upgrade() {
        pool.retire(id);
    }
}
