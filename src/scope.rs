//! [`Scope`]: a named part of an application's shutdown, handed to a library.

use std::fmt;
use std::sync::Arc as StdArc;

use crate::sync::Arc;
use crate::{DrainToken, WaitGroup, WaitGuard};

/// A named part of a [`Shutdown`](crate::Shutdown) that a library can be given:
/// it registers its background work here and is waited for, without knowing
/// the runtime or the rest of the application.
///
/// A graceful stop handles scopes after the server's own work (listeners,
/// connections, handlers), one scope at a time, **in the order they were
/// created**: it fires the scope's [`drain_token`](Scope::drain_token), then
/// waits until every guard from [`track`](Scope::track) is dropped. So create
/// the scopes in the order they must stop, e.g. HTTP, then the queue flusher,
/// then the database pool.
///
/// A hard stop fires every scope's drain token and
/// [`stop_token`](Scope::stop_token) at once and does not wait for scopes; a
/// forced [`Report`](crate::Report) lists the scopes that still had work.
///
/// # Example
///
/// ```
/// use winddown::{Scope, Shutdown};
///
/// /// A library's background flusher, written against a scope only.
/// fn start_flusher(scope: &Scope) -> std::thread::JoinHandle<usize> {
///     let guard = scope.track();
///     let drain = scope.drain_token();
///     std::thread::spawn(move || {
///         let _guard = guard; // stop waits for this thread
///         drain.wait_blocking(); // until it is our turn to stop
///         3 // flushed the last 3 items
///     })
/// }
///
/// let shutdown = Shutdown::new();
/// let queue = shutdown.scope("queue");
/// let flusher = start_flusher(&queue);
/// let report = futures_lite::future::block_on(shutdown.graceful_stop());
/// assert_eq!(flusher.join().unwrap(), 3);
/// assert!(!report.outcome.is_forced());
/// assert!(report.phases.iter().any(|(p, _)| p.to_string() == "scope queue"));
/// ```
#[derive(Clone)]
pub struct Scope {
    inner: Arc<ScopeInner>,
}

struct ScopeInner {
    name: StdArc<str>,
    drain: DrainToken,
    stop: DrainToken,
    tasks: WaitGroup,
}

impl Scope {
    pub(crate) fn new(name: &str, stop: &DrainToken) -> Self {
        Self {
            inner: Arc::new(ScopeInner {
                name: name.into(),
                // A child of the hard-stop token: a hard stop drains every
                // scope at once, a graceful stop fires it alone, in turn.
                drain: stop.child(),
                stop: stop.clone(),
                tasks: WaitGroup::new(),
            }),
        }
    }

    /// The scope's name, as it appears in the report.
    ///
    /// # Example
    ///
    /// ```
    /// let shutdown = winddown::Shutdown::new();
    /// assert_eq!(shutdown.scope("db").name(), "db");
    /// ```
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    pub(crate) fn name_arc(&self) -> StdArc<str> {
        self.inner.name.clone()
    }

    /// Registers one piece of background work; the scope's stop waits until
    /// the guard is dropped.
    ///
    /// # Example
    ///
    /// ```
    /// let shutdown = winddown::Shutdown::new();
    /// let scope = shutdown.scope("jobs");
    /// let guard = scope.track();
    /// assert_eq!(scope.tasks(), 1);
    /// drop(guard);
    /// ```
    pub fn track(&self) -> WaitGuard {
        self.inner.tasks.add()
    }

    /// The number of tracked pieces of work still running.
    ///
    /// # Example
    ///
    /// ```
    /// let shutdown = winddown::Shutdown::new();
    /// assert_eq!(shutdown.scope("jobs").tasks(), 0);
    /// ```
    pub fn tasks(&self) -> usize {
        self.inner.tasks.count()
    }

    /// Fires when this scope must wind down: its turn in a graceful stop, or a
    /// hard stop.
    ///
    /// # Example
    ///
    /// ```
    /// let shutdown = winddown::Shutdown::new();
    /// let scope = shutdown.scope("jobs");
    /// assert!(!scope.drain_token().is_fired());
    /// futures_lite::future::block_on(shutdown.stop());
    /// assert!(scope.drain_token().is_fired());
    /// ```
    pub fn drain_token(&self) -> DrainToken {
        self.inner.drain.clone()
    }

    /// Fires on a hard stop: stop now, whatever is left.
    ///
    /// # Example
    ///
    /// ```
    /// let shutdown = winddown::Shutdown::new();
    /// let scope = shutdown.scope("jobs");
    /// futures_lite::future::block_on(shutdown.stop());
    /// assert!(scope.stop_token().is_fired());
    /// ```
    pub fn stop_token(&self) -> DrainToken {
        self.inner.stop.clone()
    }

    pub(crate) fn tasks_group(&self) -> &WaitGroup {
        &self.inner.tasks
    }
}

impl fmt::Debug for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scope")
            .field("name", &self.name())
            .field("tasks", &self.tasks())
            .field("draining", &self.inner.drain.is_fired())
            .finish()
    }
}
