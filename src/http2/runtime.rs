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
/// # Example
///
/// ```
/// use std::time::Duration;
/// use futures_lite::{future, stream};
/// use winddown::http2::Runtime;
/// use winddown::{ForceReason, Outcome, Shutdown};
///
/// #[derive(Clone)]
/// struct Never;
/// impl Runtime for Never {
///     type Sleep = future::Pending<()>;
///     fn spawn<F: std::future::Future<Output = ()> + Send + 'static>(&self, _: F) {}
///     fn sleep(&self, _: Duration) -> Self::Sleep { future::pending() }
/// }
///
/// let shutdown = Shutdown::new();
/// let _stuck = shutdown.handler();
/// let two_signals = stream::iter([(), ()]);
/// let stop = winddown::http2::stop_on_signals(Never, &shutdown, two_signals, Duration::ZERO, Duration::from_secs(10));
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
        let timers = runtime.clone();
        let lame_duck = (!lame_duck.is_zero()).then_some(move || timers.sleep(lame_duck));
        shutdown
            .stop_on_signals_with_lame_duck(signals, lame_duck, || runtime.sleep(grace))
            .await
    }
}
