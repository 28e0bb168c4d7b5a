//! [`Runtime`]: the little the server needs from an async runtime.

use std::any::Any;
use std::future::Future;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures_lite::{future, FutureExt, Stream, StreamExt};

use crate::{DrainToken, Report, Shutdown};

/// What the HTTP/2 server needs from an async runtime: spawning a task and a
/// timer. Everything else (the protocol, the drain, the stop) is written once
/// against this trait; the `winddown-smol` and `winddown-tokio` crates
/// implement it.
///
/// # Example
///
/// A runtime made of threads, to show the shape (real adapters use their
/// executor and timer):
///
/// ```
/// use std::future::Future;
/// use std::pin::Pin;
/// use std::time::Duration;
/// use winddown::http2::Runtime;
///
/// #[derive(Clone)]
/// struct Threads;
///
/// impl Runtime for Threads {
///     type Sleep = Pin<Box<dyn Future<Output = ()> + Send>>;
///
///     fn spawn<F: Future<Output = ()> + Send + 'static>(&self, task: F) {
///         std::thread::spawn(move || futures_lite::future::block_on(task));
///     }
///
///     fn sleep(&self, duration: Duration) -> Self::Sleep {
///         // A timer thread fires a token; any future that completes later will do.
///         let token = winddown::DrainToken::new();
///         let timer = token.clone();
///         std::thread::spawn(move || {
///             std::thread::sleep(duration);
///             timer.fire();
///         });
///         Box::pin(token.wait_owned())
///     }
/// }
///
/// futures_lite::future::block_on(Threads.sleep(Duration::from_millis(1)));
/// ```
pub trait Runtime: Clone + Send + Sync + 'static {
    /// The future [`sleep`](Runtime::sleep) returns.
    type Sleep: Future<Output = ()> + Send + 'static;

    /// Runs `task` in the background, to its end. The server tracks its own
    /// tasks with the [`Shutdown`](crate::Shutdown), so the handle is not
    /// needed; [`stop_on_signals`] runs its stop in such a task.
    fn spawn<F: Future<Output = ()> + Send + 'static>(&self, task: F);

    /// A future that completes after `duration`.
    fn sleep(&self, duration: Duration) -> Self::Sleep;

    /// Whether a task woken from inside another task's poll usually runs
    /// next on that thread, ahead of the tasks queued before it: `true` for
    /// tokio's multi-thread scheduler (its LIFO slot), `false` (the default)
    /// for a first-in, first-out queue such as smol's executor or tokio's
    /// current-thread scheduler.
    ///
    /// The server uses it to batch responses. A connection that has just
    /// spawned several handlers can queue itself behind them, so that it
    /// runs once they have all answered and their responses leave in one
    /// write. Where a woken task runs next, that is worth doing: otherwise
    /// each handler's answer would run the connection at once, one response
    /// per write. Where the queue is FIFO, the first handler's answer queues
    /// the connection behind the others anyway, and waking it first only
    /// costs an extra poll; on smol that poll showed as tail latency
    /// (BENCHMARKS-history.md, *Eleventh round*). It is a hint: either value is
    /// correct.
    ///
    /// # Example
    ///
    /// ```
    /// use std::time::Duration;
    /// use futures_lite::future;
    /// use winddown::http2::Runtime;
    ///
    /// // A runtime whose scheduler runs a woken task next says so (this one
    /// // spawns threads, so it has no queue: the value is only for show).
    /// #[derive(Clone)]
    /// struct LifoRuntime;
    /// impl Runtime for LifoRuntime {
    ///     type Sleep = future::Pending<()>;
    ///     fn spawn<F: std::future::Future<Output = ()> + Send + 'static>(&self, task: F) {
    ///         std::thread::spawn(move || future::block_on(task));
    ///     }
    ///     fn sleep(&self, _: Duration) -> Self::Sleep { future::pending() }
    ///     fn wake_runs_next(&self) -> bool { true }
    /// }
    /// assert!(LifoRuntime.wake_runs_next());
    /// ```
    fn wake_runs_next(&self) -> bool {
        false
    }
}

/// The usual signal handling on a runtime, written once for every adapter:
/// on the first item of `signals`, a graceful stop, preceded by a lame-duck
/// phase of `lame_duck` (none if zero) and escalated to a hard stop when
/// `grace` runs out (timed on `runtime` from the first signal) or a second
/// signal arrives. The adapters' `stop_on_signals` only supply the signals.
///
/// The stop runs as a task on `runtime`, spawned when the returned future is
/// first polled; the future resolves to the report of the first stop of
/// `shutdown` to finish (this one, or one another caller started: one stop,
/// one report). Why a task: the caller is usually `main`, blocked on the
/// runtime from outside its executor, and each step of a stop wakes the
/// accept loops and connections and is woken by them. Run on the executor,
/// those wake-ups stay on its threads instead of crossing to `main` and back
/// at every step (on smol this took ~0.1 ms off a one-connection stop).
///
/// The task ends, letting go of `signals`, when the returned future is
/// dropped before the first signal, or when another caller's stop finishes
/// first. After the first signal it runs the stop to the end even if the
/// future is dropped: a stop is never left half done.
///
/// # Panics
///
/// The future never waits on a task that is gone. If the stop task panics
/// (say, a timer on a tokio runtime built without `enable_time`), the panic
/// is resumed in the caller; if `runtime` drops the task before the stop
/// finishes (a runtime shutting down), the future panics saying so.
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use futures_lite::{future, stream};
/// use winddown::http2::Runtime;
/// use winddown::{ForceReason, Outcome, Shutdown};
///
/// /// Spawns on threads; its timers never fire.
/// #[derive(Clone)]
/// struct Threads;
/// impl Runtime for Threads {
///     type Sleep = future::Pending<()>;
///     fn spawn<F: std::future::Future<Output = ()> + Send + 'static>(&self, task: F) {
///         std::thread::spawn(move || future::block_on(task));
///     }
///     fn sleep(&self, _: Duration) -> Self::Sleep { future::pending() }
/// }
///
/// let shutdown = Shutdown::new();
/// let _stuck = shutdown.handler();
/// let two_signals = stream::iter([(), ()]);
/// let stop = winddown::http2::stop_on_signals(Threads, &shutdown, two_signals, Duration::ZERO, Duration::from_secs(10));
/// assert_eq!(future::block_on(stop).outcome, Outcome::Forced(ForceReason::Requested));
/// ```
pub fn stop_on_signals<R, S>(
    runtime: R,
    shutdown: &Shutdown,
    signals: S,
    lame_duck: Duration,
    grace: Duration,
) -> impl Future<Output = Report> + Send + 'static
where
    R: Runtime,
    S: Stream + Unpin + Send + 'static,
{
    let shutdown = shutdown.clone();
    async move {
        let caller_gone = DrainToken::new();
        let _fire_when_dropped = FireOnDrop(caller_gone.clone());
        let stopper = shutdown.clone();
        let timers = runtime.clone();
        let task_end = Arc::new(TaskEnd::default());
        let ended = task_end.clone();
        // Moved into the task, so it fires however the task goes: finished,
        // panicked, or dropped before it ever ran.
        let gone_with_the_task = FireOnDrop(task_end.gone.clone());
        let stop = async move {
            let _gone_with_the_task = gone_with_the_task;
            // Read only by this task, so `Relaxed` is enough.
            let signalled = AtomicBool::new(false);
            let signals = signals.inspect(|_| signalled.store(true, Ordering::Relaxed));
            let lame_duck = (!lame_duck.is_zero()).then_some(|| timers.sleep(lame_duck));
            let stop =
                stopper.stop_on_signals_with_lame_duck(signals, lame_duck, || timers.sleep(grace));
            let not_needed = async {
                future::or(caller_gone.wait(), async {
                    stopper.stopped().await;
                })
                .await;
                if signalled.load(Ordering::Relaxed) {
                    // This task is running a stop: it finishes it.
                    future::pending::<()>().await;
                }
            };
            let run = future::or(
                async {
                    stop.await;
                },
                not_needed,
            );
            if let Err(panic) = AssertUnwindSafe(run).catch_unwind().await {
                *ended.panic.lock().unwrap_or_else(PoisonError::into_inner) = Some(panic);
            }
        };
        runtime.spawn(stop);
        let task_gone = async {
            task_end.gone.wait().await;
            // While this future lives, the task ends of itself only once a
            // stop has finished: no report means it died.
            if let Some(report) = shutdown.report() {
                return report;
            }
            let panic = task_end
                .panic
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take();
            match panic {
                Some(panic) => panic::resume_unwind(panic),
                None => panic!(
                    "winddown::http2::stop_on_signals: the runtime dropped the stop task \
                     before the stop finished"
                ),
            }
        };
        future::or(shutdown.stopped(), task_gone).await
    }
}

/// How the stop task ended, for the caller waiting on it.
#[derive(Default)]
struct TaskEnd {
    /// Fires when the task is gone, for whatever reason.
    gone: DrainToken,
    /// The task's panic, to resume in the caller.
    panic: Mutex<Option<Box<dyn Any + Send>>>,
}

/// Fires its token when dropped.
struct FireOnDrop(DrainToken);

impl Drop for FireOnDrop {
    fn drop(&mut self) {
        self.0.fire();
    }
}

#[cfg(all(test, not(winddown_loom)))]
mod tests {
    use std::pin::Pin;
    use std::sync::atomic::AtomicUsize;
    use std::sync::{mpsc, Arc};
    use std::task::{Context, Poll};

    use futures_lite::stream;

    use crate::{ForceReason, Outcome};

    use super::*;

    /// Runs each task on a thread of its own (or drops it, if `run` is
    /// false) and counts them; its timers never fire.
    #[derive(Clone)]
    struct Counted {
        spawned: Arc<AtomicUsize>,
        run: bool,
    }

    impl Counted {
        fn new(run: bool) -> Self {
            Self {
                spawned: Arc::default(),
                run,
            }
        }
    }

    impl Runtime for Counted {
        type Sleep = future::Pending<()>;
        fn spawn<F: Future<Output = ()> + Send + 'static>(&self, task: F) {
            self.spawned.fetch_add(1, Ordering::SeqCst);
            if self.run {
                std::thread::spawn(move || future::block_on(task));
            }
        }
        fn sleep(&self, _: Duration) -> Self::Sleep {
            future::pending()
        }
    }

    #[test]
    fn the_stop_runs_as_a_task_on_the_runtime() {
        let runtime = Counted::new(true);
        let shutdown = Shutdown::new();
        let one_signal = stream::iter([()]).chain(stream::pending());
        let stop = stop_on_signals(
            runtime.clone(),
            &shutdown,
            one_signal,
            Duration::ZERO,
            Duration::from_secs(10),
        );
        let report = future::block_on(stop);
        assert!(!report.outcome.is_forced());
        assert_eq!(runtime.spawned.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn it_resolves_with_the_report_of_a_stop_started_elsewhere() {
        let shutdown = Shutdown::new();
        let first = future::block_on(shutdown.graceful_stop());
        // No signal will come: the stop that already finished is the one.
        let stop = stop_on_signals(
            Counted::new(false),
            &shutdown,
            stream::pending::<()>(),
            Duration::ZERO,
            Duration::from_secs(10),
        );
        let report = future::block_on(future::poll_once(stop)).expect("resolved at once");
        assert_eq!(report.total, first.total);
    }

    /// A bound on every wait below; never reached unless the test fails.
    const BOUND: Duration = Duration::from_secs(10);

    /// Gives `signals` (then nothing more), and fires `dropped` when the
    /// stream is dropped.
    struct Signals {
        signals: usize,
        dropped: DrainToken,
    }

    impl Stream for Signals {
        type Item = ();
        fn poll_next(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<()>> {
            if self.signals == 0 {
                return Poll::Pending;
            }
            self.signals -= 1;
            Poll::Ready(Some(()))
        }
    }

    impl Drop for Signals {
        fn drop(&mut self) {
            self.dropped.fire();
        }
    }

    fn signals(signals: usize) -> (Signals, DrainToken) {
        let dropped = DrainToken::new();
        let stream = Signals {
            signals,
            dropped: dropped.clone(),
        };
        (stream, dropped)
    }

    /// `stop_on_signals` on `runtime`, polled once: its task is spawned.
    fn spawned<R: Runtime, S: Stream + Unpin + Send + 'static>(
        runtime: R,
        shutdown: &Shutdown,
        signals: S,
        grace: Duration,
    ) -> Pin<Box<impl Future<Output = Report>>> {
        let mut stop = Box::pin(stop_on_signals(
            runtime,
            shutdown,
            signals,
            Duration::ZERO,
            grace,
        ));
        let polled = future::block_on(future::poll_once(&mut stop));
        assert!(polled.is_none(), "no stop has finished yet");
        stop
    }

    #[test]
    fn dropping_the_future_before_a_signal_lets_go_of_the_signals() {
        let shutdown = Shutdown::new();
        let (no_signal, dropped) = signals(0);
        let stop = spawned(Counted::new(true), &shutdown, no_signal, BOUND);
        drop(stop);
        assert!(
            dropped.wait_blocking_timeout(BOUND),
            "the task kept the signals"
        );
        assert!(shutdown.phase().is_none(), "no stop began");
    }

    #[test]
    fn a_stop_finished_elsewhere_ends_the_task() {
        let shutdown = Shutdown::new();
        let (no_signal, dropped) = signals(0);
        let stop = spawned(Counted::new(true), &shutdown, no_signal, BOUND);
        let first = future::block_on(shutdown.graceful_stop());
        assert_eq!(future::block_on(stop).total, first.total);
        assert!(
            dropped.wait_blocking_timeout(BOUND),
            "the task kept the signals"
        );
    }

    #[test]
    fn a_stop_begun_by_a_signal_finishes_after_the_future_is_dropped() {
        let shutdown = Shutdown::new();
        let handler = shutdown.handler();
        let (one_signal, _) = signals(1);
        let stop = spawned(Counted::new(true), &shutdown, one_signal, BOUND);
        assert!(
            shutdown.drain_token().wait_blocking_timeout(BOUND),
            "the signal began a stop"
        );
        drop(stop);
        drop(handler);
        let (sent, report) = mpsc::channel();
        let waiter = shutdown.clone();
        std::thread::spawn(move || {
            let _ = sent.send(future::block_on(waiter.stopped()));
        });
        let report = report.recv_timeout(BOUND).expect("the stop finished");
        assert!(!report.outcome.is_forced());
    }

    /// Runs `stop` on a thread of its own: its report, or its panic's
    /// message; panics if it does neither within [`BOUND`].
    fn report_or_panic<F>(stop: F) -> Result<Report, String>
    where
        F: Future<Output = Report> + Send + 'static,
    {
        let (sent, outcome) = mpsc::channel();
        std::thread::spawn(move || {
            let run = panic::catch_unwind(AssertUnwindSafe(|| future::block_on(stop)));
            let _ = sent.send(run.map_err(|panic| {
                let text = panic.downcast_ref::<&str>().map(|s| s.to_string());
                text.or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_default()
            }));
        });
        outcome
            .recv_timeout(BOUND)
            .expect("the caller neither resolved nor panicked: it hangs")
    }

    /// Runs each task on a thread, swallowing its panic as tokio does; its
    /// timers panic, as tokio's do on a runtime built without `enable_time`.
    #[derive(Clone)]
    struct NoTimers;

    impl Runtime for NoTimers {
        type Sleep = future::Pending<()>;
        fn spawn<F: Future<Output = ()> + Send + 'static>(&self, task: F) {
            std::thread::spawn(move || {
                let _ = panic::catch_unwind(AssertUnwindSafe(|| future::block_on(task)));
            });
        }
        fn sleep(&self, _: Duration) -> Self::Sleep {
            panic!("timers are disabled");
        }
    }

    #[test]
    fn a_panic_in_the_stop_task_is_resumed_in_the_caller() {
        let shutdown = Shutdown::new();
        let (one_signal, _) = signals(1);
        let stop = stop_on_signals(NoTimers, &shutdown, one_signal, Duration::ZERO, BOUND);
        let panicked = report_or_panic(stop).expect_err("no report: the stop task died");
        assert_eq!(panicked, "timers are disabled");
    }

    #[test]
    fn a_stop_task_the_runtime_drops_does_not_hang_the_caller() {
        let shutdown = Shutdown::new();
        let (no_signal, _) = signals(0);
        let stop = stop_on_signals(
            Counted::new(false),
            &shutdown,
            no_signal,
            Duration::ZERO,
            BOUND,
        );
        let panicked = report_or_panic(stop).expect_err("no stop ran");
        assert!(panicked.contains("dropped the stop task"), "{panicked}");
    }

    /// Keeps what it is given to spawn, for the test to run.
    #[derive(Clone, Default)]
    struct Deferred(Arc<std::sync::Mutex<Vec<Task>>>);

    type Task = Pin<Box<dyn Future<Output = ()> + Send>>;

    impl Runtime for Deferred {
        type Sleep = future::Pending<()>;
        fn spawn<F: Future<Output = ()> + Send + 'static>(&self, task: F) {
            self.0
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(Box::pin(task));
        }
        fn sleep(&self, _: Duration) -> Self::Sleep {
            future::pending()
        }
    }

    #[test]
    fn a_signal_already_there_when_the_task_first_runs_stops_though_the_caller_is_gone() {
        let runtime = Deferred::default();
        let shutdown = Shutdown::new();
        let handler = shutdown.handler();
        let (one_signal, _) = signals(1);
        let stop = spawned(runtime.clone(), &shutdown, one_signal, BOUND);
        drop(stop);
        let task = runtime
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        let task = task.expect("the stop task was spawned");
        std::thread::spawn(move || future::block_on(task));
        assert!(
            shutdown.drain_token().wait_blocking_timeout(BOUND),
            "the signal began a stop"
        );
        drop(handler);
        let waiter = shutdown.clone();
        let report = report_or_panic(async move { waiter.stopped().await });
        assert!(!report.expect("the stop finished").outcome.is_forced());
    }

    #[test]
    fn a_second_signal_after_the_caller_is_gone_forces_the_stop() {
        let shutdown = Shutdown::new();
        let _stuck = shutdown.handler();
        let second = DrainToken::new();
        let signals = stream::once(())
            .chain(stream::once_future(second.wait_owned()))
            .chain(stream::pending());
        let stop = spawned(
            Counted::new(true),
            &shutdown,
            Box::pin(signals),
            Duration::from_secs(3600),
        );
        assert!(
            shutdown.drain_token().wait_blocking_timeout(BOUND),
            "the signal began a stop"
        );
        drop(stop);
        second.fire();
        let waiter = shutdown.clone();
        let report = report_or_panic(async move { waiter.stopped().await });
        assert_eq!(
            report.expect("the second signal forced the stop").outcome,
            Outcome::Forced(ForceReason::Requested)
        );
    }
}
