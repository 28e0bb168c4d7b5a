//! [`WaitGroup`]: count work in flight, wait until there is none.

use std::fmt;
use std::time::Duration;

use event_listener::Event;

use crate::shard::{shard_count, shard_hint};
use crate::sync::{Arc, AtomicU64, Ordering};
use crate::wait;

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
/// Creating and dropping a guard allocates nothing and touches one cache line
/// of the creating thread's own shard: a reference-count increment and an
/// atomic add, then an atomic subtract and a decrement. Threads do not contend
/// on a shared counter. Only a drop that brings its shard to zero while a
/// waiter is registered wakes anyone; otherwise no notification machinery runs.
///
/// # How the count is kept
///
/// The count is split over per-thread shards, each its own cache-line-aligned
/// allocation holding one 64-bit word: a `WAITING` bit, the shard's count,
/// and a version bumped by every add. A guard remembers its shard and gives
/// its unit back there, whichever thread drops it. A waiter sets `WAITING` on
/// every shard after registering its listener, then reads the shards twice: the
/// total is zero only if every count was zero and no version moved between the
/// two reads (a double collect), so a guard added on one shard while another
/// was being released is never missed.
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
    shards: Box<[Arc<Shard>]>,
    zero: Arc<Event>,
}

/// One thread's share of the count, alone on its cache line.
#[repr(align(128))]
struct Shard {
    /// `WAITING | count << 1 | version << 33`.
    state: AtomicU64,
    zero: Arc<Event>,
}

const WAITING: u64 = 1;
const COUNT_ONE: u64 = 1 << 1;
const COUNT_MASK: u64 = ((1 << 32) - 1) << 1;
const VERSION_ONE: u64 = 1 << 33;

fn count_of(state: u64) -> u64 {
    (state & COUNT_MASK) >> 1
}

fn version_of(state: u64) -> u64 {
    state >> 33
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
    shard: Arc<Shard>,
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
        let zero = Arc::new(Event::new());
        Self {
            shared: Arc::new(Shared {
                shards: (0..shard_count())
                    .map(|_| {
                        Arc::new(Shard {
                            state: AtomicU64::new(0),
                            zero: zero.clone(),
                        })
                    })
                    .collect(),
                zero,
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
        let shards = &self.shared.shards;
        // The shard count is a power of two.
        Shard::arrive(&shards[shard_hint() & (shards.len() - 1)])
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
        let total: u64 = self
            .shared
            .shards
            .iter()
            .map(|shard| count_of(shard.state.load(Ordering::Acquire)))
            .sum();
        usize::try_from(total).unwrap_or(usize::MAX)
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
        wait::until(&self.shared.zero, |armed| self.is_zero(armed)).await
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
        wait::block_until(&self.shared.zero, |armed| self.is_zero(armed), None);
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
        wait::block_until(
            &self.shared.zero,
            |armed| self.is_zero(armed),
            Some(timeout),
        )
    }

    fn is_zero(&self, arm: bool) -> bool {
        let shards = &self.shared.shards;
        if arm {
            // After the listener is registered: ask every shard's last guard
            // to notify. AcqRel: a dropper that sees the bit also sees the
            // listener registered before it was set.
            for shard in shards.iter() {
                shard.state.fetch_or(WAITING, Ordering::AcqRel);
            }
        }
        // Double collect: zero only if both passes see every count at zero and
        // no version moved in between (a guard that came and went during the
        // first pass may have overlapped another). If not, a waiter is woken
        // again by the moving shard (armed above), so nothing is lost.
        match (versions_if_zero(shards), versions_if_zero(shards)) {
            (Some(first), Some(second)) => first == second,
            _ => false,
        }
    }
}

/// One pass of the double collect: the (wrapping) sum of the shards' versions
/// if every count is zero. Versions only move forward, so equal sums mean none
/// moved; a false match would need 2^31 adds on one shard between two loads.
/// Acquire pairs with the Release in `WaitGuard::drop`: the work done under
/// every released guard is visible once zero is seen.
fn versions_if_zero(shards: &[Arc<Shard>]) -> Option<u64> {
    let mut versions = 0u64;
    for shard in shards {
        let state = shard.state.load(Ordering::Acquire);
        if count_of(state) != 0 {
            return None;
        }
        versions = versions.wrapping_add(version_of(state));
    }
    Some(versions)
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
        // On the same shard: this guard is alive, so the shard cannot reach
        // zero between the two, which keeps the double collect sound.
        Shard::arrive(&self.shard)
    }
}

impl Shard {
    #[inline]
    fn arrive(shard: &Arc<Shard>) -> WaitGuard {
        // Relaxed is enough: the count only has to be visible to a waiter that
        // is ordered after this call, and that ordering comes from whatever
        // synchronised the two threads (or from program order). Wrapping of
        // the version bits off the top of the word is harmless.
        shard
            .state
            .fetch_add(COUNT_ONE + VERSION_ONE, Ordering::Relaxed);
        WaitGuard {
            shard: shard.clone(),
        }
    }
}

impl Drop for WaitGuard {
    #[inline]
    fn drop(&mut self) {
        // Release publishes this guard's work to whoever observes zero;
        // Acquire sees the listener of a waiter that set WAITING.
        let before = self.shard.state.fetch_sub(COUNT_ONE, Ordering::AcqRel);
        if before & (COUNT_MASK | WAITING) == COUNT_ONE | WAITING {
            // This shard reached zero and a waiter asked to hear about it.
            // Clear the request first: a waiter that arms after this sees the
            // new count itself, and AcqRel orders this notify after its listener.
            self.shard.state.fetch_and(!WAITING, Ordering::AcqRel);
            self.shard.zero.notify(usize::MAX);
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
