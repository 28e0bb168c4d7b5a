//! [`WaitGroup`]: count work in flight, wait until there is none.

use std::fmt;
use std::time::{Duration, Instant};

use event_listener::{listener, Event, Listener};

use crate::sync::{Arc, AtomicUsize, Ordering};

/// Counts pieces of work in flight and lets anyone wait until there are none:
/// Go's `sync.WaitGroup` (grpc-go's `serveWG` and `handlersWG`) with RAII guards.
///
/// [`add`](WaitGroup::add) returns a [`WaitGuard`]; dropping the guard is Go's
/// `Done()`. Because the count is tied to a value's lifetime, it cannot be
/// forgotten on an early return or a `?`, and a task that panics still counts
/// as done: its guard is dropped while the stack unwinds.
///
/// [`wait`](WaitGroup::wait) is a future that completes when the count is
/// zero; [`wait_blocking`](WaitGroup::wait_blocking) does the same for threads.
///
/// # Semantics
///
/// * The count is *level-triggered*: a wait completes once it observes a count
///   of zero. A guard created before the wait started (in happens-before
///   order) keeps it pending until that guard is dropped.
/// * Like Go's, the group can be reused: after reaching zero, new guards may be
///   added. A waiter that is woken by a zero but polled only after new guards
///   were added sees the new count and keeps waiting.
/// * Everything a task did before dropping its guard happens-before the return
///   of a wait that observed the guard's release (Release on drop, Acquire on
///   the check).
///
/// # Cost
///
/// Creating and dropping a guard allocates nothing: it is a reference-count
/// increment and an atomic add, then an atomic subtract and a decrement. Only
/// the guard that brings the count to zero wakes anyone.
///
/// # Example
///
/// ```
/// use winddown::WaitGroup;
///
/// let group = WaitGroup::new();
/// for i in 0..4 {
///     let guard = group.add();
///     std::thread::spawn(move || {
///         let _guard = guard; // dropped when this thread's work is done
///         let _ = i * 2;
///     });
/// }
/// group.wait_blocking();
/// assert_eq!(group.count(), 0);
/// ```
#[derive(Clone)]
pub struct WaitGroup {
    shared: Arc<Shared>,
}

struct Shared {
    count: AtomicUsize,
    zero: Event,
}

/// Holds one unit of a [`WaitGroup`]'s count; dropping it is Go's `Done()`.
///
/// Guards are `Send + Sync`, so they can move into spawned tasks or threads.
///
/// # Example
///
/// ```
/// use winddown::WaitGroup;
///
/// let group = WaitGroup::new();
/// let guard = group.add();
/// assert_eq!(group.count(), 1);
/// drop(guard);
/// assert_eq!(group.count(), 0);
/// ```
#[must_use = "the work counts as done as soon as the guard is dropped"]
pub struct WaitGuard {
    shared: Arc<Shared>,
}

impl WaitGroup {
    /// Creates a group with a count of zero.
    ///
    /// # Example
    ///
    /// ```
    /// let group = winddown::WaitGroup::new();
    /// assert_eq!(group.count(), 0);
    /// ```
    pub fn new() -> Self {
        Self {
            shared: Arc::new(Shared {
                count: AtomicUsize::new(0),
                zero: Event::new(),
            }),
        }
    }

    /// Adds one to the count and returns the guard that takes it away again.
    ///
    /// # Example
    ///
    /// ```
    /// let group = winddown::WaitGroup::new();
    /// let a = group.add();
    /// let b = group.add();
    /// assert_eq!(group.count(), 2);
    /// # drop((a, b));
    /// ```
    pub fn add(&self) -> WaitGuard {
        // Relaxed is enough: the count only has to be visible to a waiter that
        // is ordered after this call, and that ordering comes from whatever
        // synchronised the two threads (or from program order).
        self.shared.count.fetch_add(1, Ordering::Relaxed);
        WaitGuard {
            shared: self.shared.clone(),
        }
    }

    /// The number of live guards, for observability.
    ///
    /// The value may be stale by the time it is read; use [`wait`](Self::wait)
    /// to synchronise.
    ///
    /// # Example
    ///
    /// ```
    /// let group = winddown::WaitGroup::new();
    /// let _guard = group.add();
    /// assert_eq!(group.count(), 1);
    /// ```
    pub fn count(&self) -> usize {
        self.shared.count.load(Ordering::Acquire)
    }

    /// Waits until the count is zero. Ready at once if it already is.
    ///
    /// The future borrows the group; move a clone into an `async move` block
    /// for a `'static` future. It does not allocate: the waiter's list node
    /// lives inside the future itself.
    ///
    /// # Example
    ///
    /// ```
    /// use winddown::WaitGroup;
    ///
    /// let group = WaitGroup::new();
    /// let guard = group.add();
    /// std::thread::spawn(move || drop(guard));
    /// futures_lite::future::block_on(group.wait());
    /// assert_eq!(group.count(), 0);
    /// ```
    pub async fn wait(&self) {
        loop {
            if self.is_zero() {
                return;
            }
            // Register before the second check, so a release between the two
            // checks is not missed: it either is seen by the check or it
            // notifies this listener.
            listener!(self.shared.zero => zero);
            if self.is_zero() {
                return;
            }
            zero.await;
        }
    }

    /// Blocks the current thread until the count is zero.
    ///
    /// # Example
    ///
    /// ```
    /// let group = winddown::WaitGroup::new();
    /// group.wait_blocking(); // zero already: returns at once
    /// ```
    pub fn wait_blocking(&self) {
        loop {
            if self.is_zero() {
                return;
            }
            listener!(self.shared.zero => zero);
            if self.is_zero() {
                return;
            }
            zero.wait();
        }
    }

    /// Blocks the current thread until the count is zero or `timeout` passes;
    /// returns whether the count reached zero.
    ///
    /// # Example
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let group = winddown::WaitGroup::new();
    /// let guard = group.add();
    /// assert!(!group.wait_blocking_timeout(Duration::from_millis(1)));
    /// drop(guard);
    /// assert!(group.wait_blocking_timeout(Duration::from_millis(1)));
    /// ```
    pub fn wait_blocking_timeout(&self, timeout: Duration) -> bool {
        let deadline = Instant::now().checked_add(timeout);
        loop {
            if self.is_zero() {
                return true;
            }
            listener!(self.shared.zero => zero);
            if self.is_zero() {
                return true;
            }
            match deadline {
                Some(deadline) => {
                    if zero.wait_deadline(deadline).is_none() {
                        return self.is_zero();
                    }
                }
                None => zero.wait(),
            }
        }
    }

    fn is_zero(&self) -> bool {
        // Acquire pairs with the Release in `WaitGuard::drop`: the work done
        // under every released guard is visible once zero is observed.
        self.shared.count.load(Ordering::Acquire) == 0
    }
}

impl Default for WaitGroup {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for WaitGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WaitGroup")
            .field("count", &self.count())
            .finish()
    }
}

impl WaitGuard {
    /// Another guard on the same group (the count goes up by one).
    ///
    /// # Example
    ///
    /// ```
    /// let group = winddown::WaitGroup::new();
    /// let a = group.add();
    /// let b = a.add();
    /// assert_eq!(group.count(), 2);
    /// # drop((a, b));
    /// ```
    pub fn add(&self) -> WaitGuard {
        self.shared.count.fetch_add(1, Ordering::Relaxed);
        WaitGuard {
            shared: self.shared.clone(),
        }
    }
}

impl Drop for WaitGuard {
    fn drop(&mut self) {
        // Release publishes this guard's work to whoever observes zero.
        if self.shared.count.fetch_sub(1, Ordering::Release) == 1 {
            // `notify` is a no-op without listeners. A waiter that registered
            // after this subtraction also re-checks the count, so nothing is lost.
            self.shared.zero.notify(usize::MAX);
        }
    }
}

impl fmt::Debug for WaitGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WaitGuard").finish_non_exhaustive()
    }
}

#[cfg(all(test, not(winddown_loom)))]
mod tests {
    use super::*;
    use futures_lite::future;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn guards_are_send_and_sync() {
        assert_send_sync::<WaitGroup>();
        assert_send_sync::<WaitGuard>();
    }

    #[test]
    fn wait_on_zero_is_ready_at_once() {
        let group = WaitGroup::new();
        assert!(future::block_on(future::poll_once(group.wait())).is_some());
    }

    #[test]
    fn wait_is_pending_while_a_guard_lives() {
        let group = WaitGroup::new();
        let guard = group.add();
        let mut wait = Box::pin(group.wait());
        assert!(future::block_on(future::poll_once(wait.as_mut())).is_none());
        drop(guard);
        assert!(future::block_on(future::poll_once(wait.as_mut())).is_some());
    }

    #[test]
    fn guard_dropped_by_a_panic_counts_as_done() {
        let group = WaitGroup::new();
        let guard = group.add();
        let outcome = std::thread::spawn(move || {
            let _guard = guard;
            panic!("handler failed");
        })
        .join();
        assert!(outcome.is_err());
        assert!(group.wait_blocking_timeout(Duration::from_secs(5)));
    }

    #[test]
    fn many_threads_release_then_wait_completes() {
        let group = WaitGroup::new();
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let guard = group.add();
                std::thread::spawn(move || {
                    for _ in 0..1000 {
                        drop(guard.add());
                    }
                    drop(guard);
                })
            })
            .collect();
        assert!(group.wait_blocking_timeout(Duration::from_secs(10)));
        for t in threads {
            t.join().expect("worker thread");
        }
        assert_eq!(group.count(), 0);
    }

    #[test]
    fn group_is_reusable_after_zero() {
        let group = WaitGroup::new();
        drop(group.add());
        group.wait_blocking();
        let guard = group.add();
        assert!(!group.wait_blocking_timeout(Duration::from_millis(1)));
        drop(guard);
        assert!(group.wait_blocking_timeout(Duration::from_secs(1)));
    }
}
