//! [`Shutdown`]: the coordinator that composes the primitives into grpc-go's
//! `GracefulStop` and `Stop`, with a deadline and a report.

use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::task::Waker;
use std::time::Instant;

use event_listener::EventListener;
use futures_lite::{future, Stream, StreamExt};

use crate::report::{ConnectionCounts, Held, HeldConnection, Outcome, Phase};
use crate::sync::{lock, Arc, AtomicU64, Mutex, Ordering};
use crate::{
    ConnInfo, ConnectionGuard, DrainToken, ForceReason, Registry, Report, Scope, Stats, WaitGroup,
    WaitGuard,
};

/// Coordinates the stop of a server and of everything an application hands a
/// [`Scope`] to: grpc-go's `GracefulStop` and `Stop`, runtime-independent,
/// with a deadline that escalates one into the other and a [`Report`].
///
/// # What a graceful stop does
///
/// [`graceful_stop`](Shutdown::graceful_stop) runs these phases in order:
///
/// 1. **Close listeners**: fires [`close_token`](Shutdown::close_token) and
///    waits until every accept loop has dropped its [`listener`](Shutdown::listener)
///    guard (so new connects are refused, not accepted and dropped).
/// 2. **Drain connections**: fires [`drain_token`](Shutdown::drain_token)
///    (servers send GOAWAY) and waits until every [`connection`](Shutdown::connection)
///    is gone and every serving task ([`track`](Shutdown::track)) has ended.
/// 3. **Wait for handlers**: waits until every [`handler`](Shutdown::handler)
///    guard is dropped.
/// 4. **Scopes**, in creation order: fires each scope's drain token and waits
///    for its tracked work.
///
/// [`graceful_stop_with_deadline`](Shutdown::graceful_stop_with_deadline)
/// takes any future as the deadline (a runtime's timer, a second signal), so
/// this crate needs no timer. When it completes first, or
/// [`stop`](Shutdown::stop) is called at any point, the stop escalates.
///
/// # What a hard stop does
///
/// It records what was still held, fires [`stop_token`](Shutdown::stop_token)
/// (which also fires the close and drain tokens and every scope's drain token),
/// then waits until accept loops, connections and serving tasks are gone.
/// Those belong to the server, which must close them promptly when the stop
/// token fires; handlers and scopes are **not** waited for (a handler blocking
/// its thread cannot be forced), but the report lists them.
///
/// # Calling it more than once
///
/// A stop is one event per `Shutdown`. Every call (concurrent or later, graceful
/// or hard) drives the same idempotent sequence and returns the same report:
///
/// * two graceful stops at once: both wait for the same phases;
/// * a hard stop during a graceful one: the graceful one sees the stop token,
///   escalates at once, whatever phase it was in, and both return the forced
///   report (no hard stop waits behind a graceful one's handlers);
/// * any call after a stop completed returns that stop's report at once;
/// * dropping a stop future part-way loses nothing: the tokens stay fired and
///   a later call carries on from where things are.
///
/// # Example
///
/// ```
/// use futures_lite::{future, Stream, StreamExt};
/// use winddown::Shutdown;
///
/// let shutdown = Shutdown::new();
///
/// // A connection that finishes its in-flight work when told to drain.
/// let conn = shutdown.connection(None);
/// let drain = shutdown.drain_token();
/// let worker = std::thread::spawn(move || {
///     drain.wait_blocking();
///     drop(conn);
/// });
///
/// let report = future::block_on(shutdown.graceful_stop());
/// worker.join().unwrap();
/// assert!(!report.outcome.is_forced());
/// assert_eq!(report.connections.drained, 1);
/// println!("{report}"); // shutdown: graceful in 0.105 ms; streams: ...
/// ```
#[derive(Clone)]
pub struct Shutdown {
    core: Arc<Core>,
}

pub(crate) struct Core {
    /// Fires first, at the start of any stop: the server is no longer ready
    /// (readiness probes fail). A child of `close`.
    not_ready: DrainToken,
    /// Accept loops close their listeners.
    close: DrainToken,
    /// Connections drain. A child of `stop`; `close` is a child of this.
    pub(crate) drain: DrainToken,
    /// The hard stop; the root of the token tree.
    pub(crate) stop: DrainToken,
    listeners: WaitGroup,
    tasks: WaitGroup,
    handlers: WaitGroup,
    pub(crate) connections: Registry<ConnInfo>,
    scopes: Mutex<Vec<Scope>>,
    stats: Stats,
    drained: AtomicU64,
    forced: AtomicU64,
    timeline: Mutex<Timeline>,
    finished: DrainToken,
    /// One listener on `drain` and one on `stop`, standing for every
    /// connection that polls for them ([`ConnectionGuard::poll_drain`]):
    /// when either fires, [`WakeConnections`] wakes those connections.
    _wake_connections: [EventListener; 2],
}

/// The waker of [`Core`]'s two listeners: wakes every connection that left
/// a waker in its record, each shard of the registry locked in turn only to
/// take the wakers, which are woken after. It runs inside the token's
/// `fire`, under event-listener's lock on the token's list (so the lock order
/// is that list, then a shard, then a record); being first in that list, it
/// runs before the token's other waiters are notified.
struct WakeConnections(Registry<ConnInfo>);

impl std::task::Wake for WakeConnections {
    fn wake(self: std::sync::Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &std::sync::Arc<Self>) {
        let mut wakers = Vec::with_capacity(self.0.len());
        self.0.for_each(|conn| wakers.extend(conn.take_waker()));
        for waker in wakers {
            waker.wake();
        }
    }
}

/// While kept, a token's fire wakes a [`Shutdown`]'s connections: see
/// [`Shutdown::wake_connections_on`].
///
/// # Example
///
/// ```
/// let shutdown = winddown::Shutdown::new();
/// let token = winddown::DrainToken::new();
/// let wakeup = shutdown.wake_connections_on(&token);
/// drop(wakeup); // the token's fire no longer wakes them
/// ```
#[must_use = "the token's fire wakes the connections only while this is kept"]
pub struct ConnectionWakeup {
    _listener: EventListener,
}

impl fmt::Debug for ConnectionWakeup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectionWakeup").finish_non_exhaustive()
    }
}

#[derive(Default)]
struct Timeline {
    started: Option<Instant>,
    phases: Vec<(Phase, Instant)>,
    forced: Option<(ForceReason, Held)>,
    report: Option<Report>,
}

impl Shutdown {
    /// Creates a coordinator with nothing registered and no stop begun.
    ///
    /// # Example
    ///
    /// ```
    /// let shutdown = winddown::Shutdown::new();
    /// assert!(!shutdown.is_draining());
    /// ```
    pub fn new() -> Self {
        let stop = DrainToken::new();
        let drain = stop.child();
        let close = drain.child();
        let not_ready = close.child();
        let connections = Registry::new();
        let wake_connections =
            Waker::from(std::sync::Arc::new(WakeConnections(connections.clone())));
        let _wake_connections = [
            drain.wake_on_fire(&wake_connections),
            stop.wake_on_fire(&wake_connections),
        ];
        Self {
            core: Arc::new(Core {
                not_ready,
                close,
                drain,
                stop,
                listeners: WaitGroup::new(),
                tasks: WaitGroup::new(),
                handlers: WaitGroup::new(),
                connections,
                scopes: Mutex::new(Vec::new()),
                stats: Stats::default(),
                drained: AtomicU64::new(0),
                forced: AtomicU64::new(0),
                timeline: Mutex::new(Timeline::default()),
                finished: DrainToken::new(),
                _wake_connections,
            }),
        }
    }

    /// Fires when the server stops being ready: at the start of any stop
    /// (before the lame-duck phase, if there is one). A readiness hook: wire
    /// it to a readiness probe or a health service.
    ///
    /// # Example
    ///
    /// ```
    /// let shutdown = winddown::Shutdown::new();
    /// assert!(shutdown.is_ready());
    /// let not_ready = shutdown.not_ready_token();
    /// futures_lite::future::block_on(shutdown.graceful_stop());
    /// assert!(not_ready.is_fired() && !shutdown.is_ready());
    /// ```
    pub fn not_ready_token(&self) -> DrainToken {
        self.core.not_ready.clone()
    }

    /// Whether the server is ready (no stop has begun).
    ///
    /// # Example
    ///
    /// ```
    /// assert!(winddown::Shutdown::new().is_ready());
    /// ```
    pub fn is_ready(&self) -> bool {
        !self.core.not_ready.is_fired()
    }

    /// Fires when listeners must close (the first step of any stop).
    ///
    /// # Example
    ///
    /// ```
    /// let shutdown = winddown::Shutdown::new();
    /// let close = shutdown.close_token();
    /// futures_lite::future::block_on(shutdown.graceful_stop());
    /// assert!(close.is_fired());
    /// ```
    pub fn close_token(&self) -> DrainToken {
        self.core.close.clone()
    }

    /// Fires when connections must drain (after listeners closed, or on a
    /// hard stop). A server makes a [`child`](DrainToken::child) per
    /// connection, so it can also drain one connection alone.
    ///
    /// # Example
    ///
    /// ```
    /// let shutdown = winddown::Shutdown::new();
    /// let per_connection = shutdown.drain_token().child();
    /// futures_lite::future::block_on(shutdown.graceful_stop());
    /// assert!(per_connection.is_fired());
    /// ```
    pub fn drain_token(&self) -> DrainToken {
        self.core.drain.clone()
    }

    /// The stop token itself, to check without a handle of one's own.
    #[cfg(feature = "http2")]
    pub(crate) fn stop_signal(&self) -> &DrainToken {
        &self.core.stop
    }

    /// Fires once a stop has finished (its report is built).
    #[cfg(feature = "http2")]
    pub(crate) fn finished_signal(&self) -> &DrainToken {
        &self.core.finished
    }

    /// Wakes every connection waiting through its record when `token` fires,
    /// for as long as the returned [`ConnectionWakeup`] is kept: a signal of
    /// your own (a deadline shared by the server's connections, say) that
    /// reaches them as the drain and the hard stop do, with one listener for
    /// all of them instead of one each.
    ///
    /// The contract, which the wake-up relies on: in each poll, a connection's
    /// task first polls [`ConnectionGuard::poll_drain`] or
    /// [`ConnectionGuard::poll_stop`] (which leaves its waker in its record),
    /// and only then reads [`DrainToken::is_fired`]. A fire after that read
    /// finds the waker and wakes the task; one before it is seen by the read
    /// (the record's lock orders the two). Read first and poll second, and a
    /// fire in between is lost. The wake-up takes every record's waker, so
    /// the other connections get one spurious poll; a token that has fired
    /// already wakes them all at once.
    ///
    /// # Example
    ///
    /// ```
    /// use std::future::poll_fn;
    /// use std::task::Poll;
    ///
    /// let shutdown = winddown::Shutdown::new();
    /// let deadline = winddown::DrainToken::new();
    /// let _wakeup = shutdown.wake_connections_on(&deadline);
    /// let conn = shutdown.connection(None);
    /// let server = std::thread::spawn({
    ///     let deadline = deadline.clone();
    ///     move || {
    ///         futures_lite::future::block_on(poll_fn(|cx| {
    ///             // The record first, then the token.
    ///             if conn.poll_drain(cx).is_ready() || deadline.is_fired() {
    ///                 Poll::Ready(())
    ///             } else {
    ///                 Poll::Pending
    ///             }
    ///         }))
    ///     }
    /// });
    /// deadline.fire();
    /// server.join().unwrap();
    /// ```
    pub fn wake_connections_on(&self, token: &DrainToken) -> ConnectionWakeup {
        let wake = WakeConnections(self.core.connections.clone());
        ConnectionWakeup {
            _listener: token.wake_on_fire(&Waker::from(std::sync::Arc::new(wake))),
        }
    }

    /// Fires on a hard stop: close everything now.
    ///
    /// # Example
    ///
    /// ```
    /// let shutdown = winddown::Shutdown::new();
    /// let stop = shutdown.stop_token();
    /// futures_lite::future::block_on(shutdown.graceful_stop());
    /// assert!(!stop.is_fired()); // graceful: never forced
    ///
    /// let shutdown = winddown::Shutdown::new();
    /// let stop = shutdown.stop_token();
    /// futures_lite::future::block_on(shutdown.stop());
    /// assert!(stop.is_fired());
    /// ```
    pub fn stop_token(&self) -> DrainToken {
        self.core.stop.clone()
    }

    /// Whether a drain (graceful or hard) has begun.
    ///
    /// # Example
    ///
    /// ```
    /// let shutdown = winddown::Shutdown::new();
    /// futures_lite::future::block_on(shutdown.graceful_stop());
    /// assert!(shutdown.is_draining());
    /// ```
    pub fn is_draining(&self) -> bool {
        self.core.drain.is_fired()
    }

    /// Whether a hard stop has begun.
    ///
    /// # Example
    ///
    /// ```
    /// let shutdown = winddown::Shutdown::new();
    /// futures_lite::future::block_on(shutdown.stop());
    /// assert!(shutdown.is_stopping());
    /// ```
    pub fn is_stopping(&self) -> bool {
        self.core.stop.is_fired()
    }

    /// Registers an accept loop; the close phase waits until its guard is
    /// dropped, which the loop does once its listener is closed.
    ///
    /// # Example
    ///
    /// ```
    /// let shutdown = winddown::Shutdown::new();
    /// let listening = shutdown.listener();
    /// let close = shutdown.close_token();
    /// std::thread::spawn(move || {
    ///     close.wait_blocking();
    ///     drop(listening); // after closing the socket
    /// });
    /// futures_lite::future::block_on(shutdown.graceful_stop());
    /// ```
    pub fn listener(&self) -> WaitGuard {
        self.core.listeners.add()
    }

    /// Registers a serving task (typically one per connection). Take it in the
    /// accept loop, before spawning and before dropping the listener guard, so
    /// a connection being set up is never missed by the drain phase.
    ///
    /// # Example
    ///
    /// ```
    /// let shutdown = winddown::Shutdown::new();
    /// let task = shutdown.track();
    /// std::thread::spawn(move || drop(task));
    /// futures_lite::future::block_on(shutdown.graceful_stop());
    /// ```
    pub fn track(&self) -> WaitGuard {
        self.core.tasks.add()
    }

    /// Registers a running handler (one per request or stream).
    ///
    /// # Example
    ///
    /// ```
    /// let shutdown = winddown::Shutdown::new();
    /// let handler = shutdown.handler();
    /// std::thread::spawn(move || drop(handler));
    /// let report = futures_lite::future::block_on(shutdown.graceful_stop());
    /// assert!(!report.outcome.is_forced());
    /// ```
    pub fn handler(&self) -> WaitGuard {
        self.core.handlers.add()
    }

    /// Registers a live connection.
    ///
    /// # Example
    ///
    /// ```
    /// let shutdown = winddown::Shutdown::new();
    /// let conn = shutdown.connection(Some("192.0.2.1:443".parse().unwrap()));
    /// assert_eq!(shutdown.connections().len(), 1);
    /// drop(conn);
    /// assert!(shutdown.connections().is_empty());
    /// ```
    pub fn connection(&self, peer: Option<SocketAddr>) -> ConnectionGuard {
        ConnectionGuard::new(self.core.clone(), peer)
    }

    /// The registry of live connections, to list them (who is holding a stop)
    /// or wait on them.
    ///
    /// # Example
    ///
    /// ```
    /// let shutdown = winddown::Shutdown::new();
    /// let _conn = shutdown.connection(None);
    /// for entry in shutdown.connections().snapshot() {
    ///     println!("{:?} open for {:?}", entry.peer(), entry.age());
    /// }
    /// ```
    pub fn connections(&self) -> &Registry<ConnInfo> {
        &self.core.connections
    }

    /// The stream and handler counters the server keeps for the report.
    ///
    /// # Example
    ///
    /// ```
    /// let shutdown = winddown::Shutdown::new();
    /// shutdown.stats().stream_completed();
    /// let report = futures_lite::future::block_on(shutdown.graceful_stop());
    /// assert_eq!(report.streams.completed, 1);
    /// ```
    pub fn stats(&self) -> &Stats {
        &self.core.stats
    }

    /// Creates a named [`Scope`] for a library or subsystem. Scopes stop one
    /// after another in creation order, after the server's own phases.
    ///
    /// # Example
    ///
    /// ```
    /// let shutdown = winddown::Shutdown::new();
    /// let queue = shutdown.scope("queue"); // stops first
    /// let db = shutdown.scope("db");       // then this
    /// let report = futures_lite::future::block_on(shutdown.graceful_stop());
    /// let order: Vec<String> = report.phases.iter().map(|(p, _)| p.to_string()).collect();
    /// assert_eq!(&order[3..], ["scope queue", "scope db"]);
    /// # drop((queue, db));
    /// ```
    pub fn scope(&self, name: &str) -> Scope {
        let scope = Scope::new(name, &self.core.stop);
        lock(&self.core.scopes).push(scope.clone());
        scope
    }

    /// Runs a graceful stop with no deadline (see the type's docs).
    ///
    /// # Example
    ///
    /// ```
    /// let shutdown = winddown::Shutdown::new();
    /// let report = futures_lite::future::block_on(shutdown.graceful_stop());
    /// assert!(!report.outcome.is_forced());
    /// ```
    pub async fn graceful_stop(&self) -> Report {
        self.graceful_stop_with_deadline(future::pending()).await
    }

    /// Runs a graceful stop that escalates to a hard stop when `deadline`
    /// completes. The deadline is any future: a runtime's timer, a second
    /// signal, or both raced together.
    ///
    /// # Example
    ///
    /// ```
    /// use winddown::{ForceReason, Outcome, Shutdown};
    ///
    /// let shutdown = Shutdown::new();
    /// let _stuck = shutdown.handler(); // a handler that never finishes
    /// let (fire, deadline) = std::sync::mpsc::channel::<()>();
    /// drop(fire); // the deadline has passed
    /// let deadline = async move { let _ = deadline.recv(); };
    /// let report = futures_lite::future::block_on(shutdown.graceful_stop_with_deadline(deadline));
    /// assert_eq!(report.outcome, Outcome::Forced(ForceReason::Deadline));
    /// assert_eq!(report.held.unwrap().handlers, 1);
    /// ```
    pub async fn graceful_stop_with_deadline(&self, deadline: impl Future<Output = ()>) -> Report {
        self.run_graceful(None::<future::Ready<()>>, deadline).await
    }

    /// Runs a graceful stop that begins with a lame-duck phase: the server
    /// reports itself not ready ([`not_ready_token`](Self::not_ready_token))
    /// but keeps serving everything until `lame_duck` completes, so load
    /// balancers move traffic away first; then the usual phases. The deadline
    /// covers the whole stop, lame duck included.
    ///
    /// # Example
    ///
    /// ```
    /// use futures_lite::future;
    /// use winddown::{Phase, Shutdown};
    ///
    /// let shutdown = Shutdown::new();
    /// let report = future::block_on(shutdown.graceful_stop_with_lame_duck(
    ///     future::ready(()), // a runtime's timer in practice
    ///     future::pending(),
    /// ));
    /// assert_eq!(report.phases[0].0, Phase::LameDuck);
    /// ```
    pub async fn graceful_stop_with_lame_duck(
        &self,
        lame_duck: impl Future<Output = ()>,
        deadline: impl Future<Output = ()>,
    ) -> Report {
        self.run_graceful(Some(lame_duck), deadline).await
    }

    async fn run_graceful(
        &self,
        lame_duck: Option<impl Future<Output = ()>>,
        deadline: impl Future<Output = ()>,
    ) -> Report {
        if let Some(report) = self.report() {
            return report;
        }
        self.core.begin();
        let graceful = async {
            self.core.graceful_phases(lame_duck).await;
            false
        };
        let preempted = async {
            self.core.stop.wait().await;
            true
        };
        let expired = async {
            deadline.await;
            self.core.escalate(ForceReason::Deadline);
            true
        };
        let forced = future::or(graceful, future::or(preempted, expired)).await;
        if forced {
            self.core.forced_phase().await;
        }
        self.core.finish()
    }

    /// The usual signal handling, for any signal source: waits for the first
    /// signal, runs a graceful stop, and escalates it to a hard stop when a
    /// second signal arrives or the grace period (created when the first
    /// signal arrives) runs out.
    ///
    /// `signals` yields an item per signal (SIGTERM or SIGINT in the runtime
    /// adapters); if it ends, no further signal can come. `grace` makes the
    /// grace timer.
    ///
    /// # Example
    ///
    /// ```
    /// use futures_lite::{future, stream};
    /// use winddown::{ForceReason, Outcome, Shutdown};
    ///
    /// let shutdown = Shutdown::new();
    /// let _stuck = shutdown.handler();
    /// // Two "signals" arrive at once; the grace period never ends.
    /// let signals = stream::iter([(), ()]);
    /// let report = future::block_on(shutdown.stop_on_signals(signals, future::pending));
    /// assert_eq!(report.outcome, Outcome::Forced(ForceReason::Requested));
    /// ```
    pub async fn stop_on_signals<S, G>(&self, signals: S, grace: impl FnOnce() -> G) -> Report
    where
        S: Stream + Unpin,
        G: Future<Output = ()>,
    {
        self.stop_on_signals_with_lame_duck(signals, None::<fn() -> future::Ready<()>>, grace)
            .await
    }

    /// [`stop_on_signals`](Self::stop_on_signals) with a lame-duck phase
    /// first (see [`graceful_stop_with_lame_duck`](Self::graceful_stop_with_lame_duck));
    /// `lame_duck` makes its timer when the first signal arrives. A second
    /// signal during the lame duck stops at once.
    ///
    /// # Example
    ///
    /// ```
    /// use futures_lite::{future, stream, StreamExt};
    /// use winddown::{Phase, Shutdown};
    ///
    /// let shutdown = Shutdown::new();
    /// let signals = stream::iter([()]).chain(stream::pending());
    /// let report = future::block_on(shutdown.stop_on_signals_with_lame_duck(
    ///     signals,
    ///     Some(|| future::ready(())),
    ///     future::pending,
    /// ));
    /// assert_eq!(report.phases[0].0, Phase::LameDuck);
    /// ```
    pub async fn stop_on_signals_with_lame_duck<S, L, G>(
        &self,
        mut signals: S,
        lame_duck: Option<impl FnOnce() -> L>,
        grace: impl FnOnce() -> G,
    ) -> Report
    where
        S: Stream + Unpin,
        L: Future<Output = ()>,
        G: Future<Output = ()>,
    {
        if signals.next().await.is_none() {
            future::pending::<()>().await;
        }
        let second = async {
            if signals.next().await.is_none() {
                future::pending::<()>().await;
            }
            // Recorded first, so the report says "requested", not "deadline".
            self.core.escalate(ForceReason::Requested);
        };
        let lame_duck = lame_duck.map(|make| make());
        self.run_graceful(lame_duck, future::or(second, grace()))
            .await
    }

    /// Runs a hard stop now, or escalates a graceful stop in progress.
    ///
    /// # Example
    ///
    /// ```
    /// use winddown::{ForceReason, Outcome, Shutdown};
    ///
    /// let shutdown = Shutdown::new();
    /// let report = futures_lite::future::block_on(shutdown.stop());
    /// assert_eq!(report.outcome, Outcome::Forced(ForceReason::Requested));
    /// ```
    pub async fn stop(&self) -> Report {
        if let Some(report) = self.report() {
            return report;
        }
        self.core.begin();
        self.core.escalate(ForceReason::Requested);
        self.core.forced_phase().await;
        self.core.finish()
    }

    /// Waits until some caller's stop has finished and returns its report,
    /// without driving a stop itself (e.g. `main` waiting while a signal
    /// handler stops the server).
    ///
    /// # Example
    ///
    /// ```
    /// use futures_lite::{future, Stream, StreamExt};
    ///
    /// let shutdown = winddown::Shutdown::new();
    /// let stopper = shutdown.clone();
    /// std::thread::spawn(move || future::block_on(stopper.graceful_stop()));
    /// let report = future::block_on(shutdown.stopped());
    /// assert!(!report.outcome.is_forced());
    /// ```
    pub async fn stopped(&self) -> Report {
        loop {
            self.core.finished.wait().await;
            if let Some(report) = self.report() {
                return report;
            }
        }
    }

    /// The report of the finished stop, if one has finished.
    ///
    /// # Example
    ///
    /// ```
    /// let shutdown = winddown::Shutdown::new();
    /// assert!(shutdown.report().is_none());
    /// futures_lite::future::block_on(shutdown.graceful_stop());
    /// assert!(shutdown.report().is_some());
    /// ```
    pub fn report(&self) -> Option<Report> {
        lock(&self.core.timeline).report.clone()
    }

    /// The phase the stop is in (the last one entered), or `None` before any
    /// stop began.
    ///
    /// # Example
    ///
    /// ```
    /// use winddown::{Phase, Shutdown};
    ///
    /// let shutdown = Shutdown::new();
    /// assert_eq!(shutdown.phase(), None);
    /// let _handler = shutdown.handler();
    /// let mut stop = Box::pin(shutdown.graceful_stop());
    /// let _ = futures_lite::future::block_on(futures_lite::future::poll_once(stop.as_mut()));
    /// assert_eq!(shutdown.phase(), Some(Phase::WaitHandlers));
    /// ```
    pub fn phase(&self) -> Option<Phase> {
        lock(&self.core.timeline)
            .phases
            .last()
            .map(|(phase, _)| phase.clone())
    }

    /// A multi-line dump for operators (what `echo_server` prints on
    /// SIGUSR1): the stop's phase, then [`held`](Self::held) with each
    /// connection and its open streams on lines of their own.
    ///
    /// # Example
    ///
    /// ```
    /// let shutdown = winddown::Shutdown::new();
    /// let conn = shutdown.connection(Some("127.0.0.1:4000".parse().unwrap()));
    /// let _stream = conn.stream_opened(1, "/slow");
    /// let dump = shutdown.straggler_dump();
    /// assert!(dump.starts_with("stragglers (running):"));
    /// assert!(dump.contains("stream 1 /slow"));
    /// ```
    pub fn straggler_dump(&self) -> String {
        let phase = self
            .phase()
            .map_or_else(|| "running".to_string(), |p| p.to_string());
        format!("stragglers ({phase}):\n{:#}", self.held())
    }

    /// Prints [`straggler_dump`](Self::straggler_dump) to stderr on every item
    /// of `signals` (SIGUSR1 in the runtime adapters), until the stream ends.
    ///
    /// # Example
    ///
    /// ```
    /// let shutdown = winddown::Shutdown::new();
    /// let one_signal = futures_lite::stream::iter([()]);
    /// futures_lite::future::block_on(shutdown.print_held_on(one_signal));
    /// ```
    pub async fn print_held_on<S: Stream + Unpin>(&self, mut signals: S) {
        while signals.next().await.is_some() {
            eprintln!("{}", self.straggler_dump());
        }
    }

    /// What would hold a stop right now: live listeners, connections, tasks,
    /// handlers and busy scopes (the live straggler list).
    ///
    /// # Example
    ///
    /// ```
    /// let shutdown = winddown::Shutdown::new();
    /// let _h = shutdown.handler();
    /// assert_eq!(shutdown.held().handlers, 1);
    /// ```
    pub fn held(&self) -> Held {
        self.core.held()
    }
}

impl Core {
    fn begin(&self) {
        lock(&self.timeline)
            .started
            .get_or_insert_with(Instant::now);
    }

    /// Records that `phase` began, the first time any caller reaches it.
    fn enter(&self, phase: Phase) {
        let mut timeline = lock(&self.timeline);
        if !timeline.phases.iter().any(|(p, _)| *p == phase) {
            timeline.phases.push((phase, Instant::now()));
        }
    }

    async fn graceful_phases(&self, lame_duck: Option<impl Future<Output = ()>>) {
        self.not_ready.fire();
        if let Some(lame_duck) = lame_duck {
            self.enter(Phase::LameDuck);
            lame_duck.await;
        }
        self.enter(Phase::CloseListeners);
        self.close.fire();
        self.listeners.wait().await;

        self.enter(Phase::DrainConnections);
        self.drain.fire();
        future::zip(self.connections.wait_empty(), self.tasks.wait()).await;

        self.enter(Phase::WaitHandlers);
        self.handlers.wait().await;

        let scopes = lock(&self.scopes).clone();
        for scope in scopes {
            self.enter(Phase::Scope(scope.name_arc()));
            scope.drain_token().fire();
            scope.tasks_group().wait().await;
        }
    }

    /// Records why and what was held (first caller only), then fires the
    /// hard-stop token, which fires every other token with it.
    fn escalate(&self, reason: ForceReason) {
        if lock(&self.timeline).forced.is_none() {
            let held = self.held();
            let mut timeline = lock(&self.timeline);
            if timeline.forced.is_none() {
                timeline.forced = Some((reason, held));
            }
        }
        self.stop.fire();
    }

    async fn forced_phase(&self) {
        self.enter(Phase::Force);
        future::zip(
            self.listeners.wait(),
            future::zip(self.connections.wait_empty(), self.tasks.wait()),
        )
        .await;
    }

    /// Builds the report, or returns the one an earlier caller built.
    fn finish(&self) -> Report {
        let report = {
            let mut timeline = lock(&self.timeline);
            if let Some(report) = &timeline.report {
                return report.clone();
            }
            let now = Instant::now();
            let started = timeline.started.unwrap_or(now);
            let ends = timeline
                .phases
                .iter()
                .skip(1)
                .map(|(_, at)| *at)
                .chain(std::iter::once(now));
            let phases = timeline
                .phases
                .iter()
                .zip(ends)
                .map(|((phase, began), ended)| {
                    (phase.clone(), ended.saturating_duration_since(*began))
                })
                .collect();
            let (outcome, held) = match &timeline.forced {
                Some((reason, held)) => (Outcome::Forced(*reason), Some(held.clone())),
                None => (Outcome::Graceful, None),
            };
            let report = Report {
                outcome,
                total: now.saturating_duration_since(started),
                phases,
                streams: self.stats.snapshot(),
                connections: ConnectionCounts {
                    drained: self.drained.load(Ordering::Acquire),
                    forced: self.forced.load(Ordering::Acquire),
                },
                held,
            };
            timeline.report = Some(report.clone());
            report
        };
        self.finished.fire();
        report
    }

    fn held(&self) -> Held {
        let scopes = lock(&self.scopes).clone();
        Held {
            listeners: self.listeners.count(),
            connections: self
                .connections
                .snapshot()
                .iter()
                .map(|entry| HeldConnection {
                    peer: entry.peer(),
                    age: entry.age(),
                    open_streams: entry.open_streams(),
                    streams: entry.streams(),
                })
                .collect(),
            tasks: self.tasks.count(),
            handlers: self.handlers.count(),
            scopes: scopes
                .iter()
                .filter(|scope| scope.tasks() > 0)
                .map(|scope| (scope.name_arc(), scope.tasks()))
                .collect(),
        }
    }

    pub(crate) fn count_closed_connection(&self) {
        if self.stop.is_fired() {
            self.forced.fetch_add(1, Ordering::Release);
        } else if self.drain.is_fired() {
            self.drained.fetch_add(1, Ordering::Release);
        }
    }
}

impl Default for Shutdown {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Shutdown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shutdown")
            .field("draining", &self.is_draining())
            .field("stopping", &self.is_stopping())
            .field("connections", &self.core.connections.len())
            .field("handlers", &self.core.handlers.count())
            .finish_non_exhaustive()
    }
}
