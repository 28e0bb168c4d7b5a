//! [`Runtime`]: the little the server needs from an async runtime.

use std::future::Future;
use std::time::Duration;

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
