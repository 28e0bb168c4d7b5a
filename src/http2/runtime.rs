//! [`Runtime`]: the little the server needs from an async runtime.

use std::future::Future;
use std::time::Duration;

use futures_lite::Stream;

use crate::{Report, Shutdown};

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

    /// Runs `task` in the background. The server tracks its own tasks with
    /// the [`Shutdown`](crate::Shutdown), so the handle is not needed.
    fn spawn<F: Future<Output = ()> + Send + 'static>(&self, task: F);

    /// A future that completes after `duration`.
    fn sleep(&self, duration: Duration) -> Self::Sleep;
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
/// Once polled, the stop task stays whether or not the future is kept.
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
        let stopper = shutdown.clone();
        let timers = runtime.clone();
        let stop = async move {
            let lame_duck = (!lame_duck.is_zero()).then_some(|| timers.sleep(lame_duck));
            stopper
                .stop_on_signals_with_lame_duck(signals, lame_duck, || timers.sleep(grace))
                .await;
        };
        runtime.spawn(stop);
        shutdown.stopped().await
    }
}

#[cfg(all(test, not(winddown_loom)))]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use futures_lite::{future, stream, StreamExt};

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
}
