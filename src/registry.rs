//! [`Registry`]: the set of live things (connections), with a condvar-like
//! wake-up each time one goes.

use std::fmt;
use std::ops::Deref;
use std::time::{Duration, Instant};

use event_listener::Event;

use crate::shard::{shard_count, shard_hint};
use crate::sync::{lock, Arc, AtomicUsize, Mutex, Ordering};
use crate::wait;

/// The registry of live connections (or anything else that lives a while),
/// with a wake-up on every removal: grpc-go's `conns` map plus `cv.Broadcast()`
/// in `removeConn`.
///
/// [`insert`](Registry::insert) stores metadata `M` and returns a
/// [`Registered`] guard; dropping the guard removes the entry and wakes every
/// waiter. [`wait_empty`](Registry::wait_empty) is grpc-go's
/// `for len(s.conns) != 0 { s.cv.Wait() }`, and
/// [`wait_until`](Registry::wait_until) re-checks any predicate after each
/// removal, like a condition variable. [`snapshot`](Registry::snapshot) lists
/// what is still live with its age, so a stuck shutdown can say who holds it.
///
/// # Concurrency
///
/// Entries are spread over a few shards, each behind its own short lock that
/// is never held across user code (neither while running a predicate nor
/// while dropping metadata), so inserts and removals on different threads
/// rarely meet. The count is a separate atomic: [`len`](Registry::len) and
/// [`is_empty`](Registry::is_empty) take no lock.
///
/// # Example
///
/// ```
/// use winddown::Registry;
///
/// let connections = Registry::new();
/// let conn = connections.insert("10.0.0.7:51234");
/// assert_eq!(connections.len(), 1);
/// assert_eq!(*conn, "10.0.0.7:51234");
///
/// let live: Vec<_> = connections.snapshot().iter().map(|e| **e).collect();
/// assert_eq!(live, ["10.0.0.7:51234"]);
///
/// std::thread::spawn(move || drop(conn)); // the connection closes
/// connections.wait_empty_blocking();
/// ```
pub struct Registry<M> {
    shared: Arc<Shared<M>>,
}

struct Shared<M> {
    shards: Box<[Mutex<Shard<M>>]>,
    len: AtomicUsize,
    /// Notified on every removal (for `wait_until`).
    removed: Event,
    /// Notified only when the last entry goes (for `wait_empty`): a stop
    /// waiting for 10,000 connections is woken once, not 10,000 times.
    emptied: Event,
}

/// A slab: removal leaves a hole that the next insert reuses.
struct Shard<M> {
    slots: Vec<Option<Arc<Record<M>>>>,
    free: Vec<usize>,
}

struct Record<M> {
    meta: M,
    since: Instant,
    // u32: every connection keeps a record (4 billion slots per shard would
    // take 32 GB of slab first).
    shard: u32,
    slot: u32,
}

/// A live entry of a [`Registry`]; dropping it removes the entry and wakes the
/// registry's waiters. Dereferences to the metadata.
///
/// # Example
///
/// ```
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use winddown::Registry;
///
/// struct Conn { open_streams: AtomicUsize }
///
/// let registry = Registry::new();
/// let conn = registry.insert(Conn { open_streams: AtomicUsize::new(0) });
/// conn.open_streams.fetch_add(1, Ordering::Relaxed); // no lock taken
/// assert_eq!(registry.snapshot()[0].open_streams.load(Ordering::Relaxed), 1);
/// ```
#[must_use = "the entry is removed as soon as the guard is dropped"]
pub struct Registered<M> {
    shared: Arc<Shared<M>>,
    record: Arc<Record<M>>,
}

/// One entry of a [`Registry::snapshot`]: the metadata and how long it has
/// been live. Holding it does not keep the entry in the registry.
///
/// # Example
///
/// ```
/// let registry = winddown::Registry::new();
/// let _conn = registry.insert("peer");
/// let entry = &registry.snapshot()[0];
/// assert_eq!(**entry, "peer");
/// assert!(entry.age() < std::time::Duration::from_secs(60));
/// ```
pub struct Entry<M> {
    record: Arc<Record<M>>,
}

impl<M> Registry<M> {
    /// Creates an empty registry, sharded for the machine's parallelism.
    ///
    /// # Example
    ///
    /// ```
    /// let registry: winddown::Registry<String> = winddown::Registry::new();
    /// assert!(registry.is_empty());
    /// ```
    pub fn new() -> Self {
        let shards = shard_count();
        Self {
            shared: Arc::new(Shared {
                shards: (0..shards)
                    .map(|_| {
                        Mutex::new(Shard {
                            slots: Vec::new(),
                            free: Vec::new(),
                        })
                    })
                    .collect(),
                len: AtomicUsize::new(0),
                removed: Event::new(),
                emptied: Event::new(),
            }),
        }
    }

    /// Adds an entry; it stays until the returned guard is dropped.
    ///
    /// # Example
    ///
    /// ```
    /// let registry = winddown::Registry::new();
    /// let entry = registry.insert(42);
    /// assert_eq!(*entry, 42);
    /// assert_eq!(registry.len(), 1);
    /// ```
    pub fn insert(&self, meta: M) -> Registered<M> {
        let shard_index = shard_hint() % self.shared.shards.len();
        let since = Instant::now();
        // Counted before it becomes visible in a shard, so `len` never
        // under-reports an entry a snapshot could show.
        self.shared.len.fetch_add(1, Ordering::Relaxed);
        let mut shard = lock(&self.shared.shards[shard_index]);
        let slot = shard.free.pop().unwrap_or(shard.slots.len());
        let record = Arc::new(Record {
            meta,
            since,
            shard: shard_index as u32,
            slot: slot as u32,
        });
        if slot == shard.slots.len() {
            shard.slots.push(Some(record.clone()));
        } else {
            shard.slots[slot] = Some(record.clone());
        }
        drop(shard);
        Registered {
            shared: self.shared.clone(),
            record,
        }
    }

    /// The number of live entries; no lock.
    ///
    /// # Example
    ///
    /// ```
    /// let registry = winddown::Registry::new();
    /// let _a = registry.insert(());
    /// assert_eq!(registry.len(), 1);
    /// ```
    pub fn len(&self) -> usize {
        // Acquire pairs with the Release in `Registered::drop`.
        self.shared.len.load(Ordering::Acquire)
    }

    /// Whether no entry is live; no lock.
    ///
    /// # Example
    ///
    /// ```
    /// let registry = winddown::Registry::<()>::new();
    /// assert!(registry.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The live entries, oldest first, with their ages.
    ///
    /// Each shard is locked in turn only long enough to clone reference-counted
    /// handles; the list is sorted after every lock is released.
    ///
    /// # Example
    ///
    /// ```
    /// let registry = winddown::Registry::new();
    /// let _a = registry.insert("a");
    /// let _b = registry.insert("b");
    /// let names: Vec<&str> = registry.snapshot().iter().map(|e| **e).collect();
    /// assert_eq!(names.len(), 2);
    /// ```
    pub fn snapshot(&self) -> Vec<Entry<M>> {
        let mut entries = Vec::with_capacity(self.len());
        for shard in self.shared.shards.iter() {
            let shard = lock(shard);
            entries.extend(shard.slots.iter().flatten().map(|record| Entry {
                record: record.clone(),
            }));
        }
        entries.sort_by_key(|entry| entry.record.since);
        entries
    }

    /// Calls `f` on every live entry's metadata, each shard locked in turn
    /// while `f` runs on its entries (so `f` must be short and must not touch
    /// the registry).
    pub(crate) fn for_each(&self, mut f: impl FnMut(&M)) {
        for shard in self.shared.shards.iter() {
            for record in lock(shard).slots.iter().flatten() {
                f(&record.meta);
            }
        }
    }

    /// Waits until `condition` holds, re-checking it after every removal (a
    /// condition variable's `wait` loop). Ready at once if it already holds.
    ///
    /// The condition runs on the waiting task with no lock held; it may call
    /// [`len`](Self::len) or [`snapshot`](Self::snapshot). It is re-checked on
    /// removals only, so it should be a condition that removals can make true.
    ///
    /// # Example
    ///
    /// ```
    /// let registry = winddown::Registry::new();
    /// let guards: Vec<_> = (0..3).map(|i| registry.insert(i)).collect();
    /// std::thread::spawn(move || drop(guards));
    /// futures_lite::future::block_on(registry.wait_until(|r| r.len() < 2));
    /// ```
    pub async fn wait_until(&self, mut condition: impl FnMut(&Self) -> bool) {
        wait::until(&self.shared.removed, |_| condition(self)).await
    }

    /// Waits until the registry is empty.
    ///
    /// # Example
    ///
    /// ```
    /// let registry = winddown::Registry::new();
    /// let conn = registry.insert(());
    /// std::thread::spawn(move || drop(conn));
    /// futures_lite::future::block_on(registry.wait_empty());
    /// assert!(registry.is_empty());
    /// ```
    pub async fn wait_empty(&self) {
        // Woken by the last removal only, not by every one.
        wait::until(&self.shared.emptied, |_| self.is_empty()).await
    }

    /// Blocks the current thread until `condition` holds; see
    /// [`wait_until`](Self::wait_until).
    ///
    /// # Example
    ///
    /// ```
    /// let registry = winddown::Registry::new();
    /// let conn = registry.insert(());
    /// std::thread::spawn(move || drop(conn));
    /// registry.wait_until_blocking(|r| r.is_empty());
    /// ```
    pub fn wait_until_blocking(&self, mut condition: impl FnMut(&Self) -> bool) {
        wait::block_until(&self.shared.removed, |_| condition(self), None);
    }

    /// Blocks the current thread until the registry is empty.
    ///
    /// # Example
    ///
    /// ```
    /// let registry = winddown::Registry::<()>::new();
    /// registry.wait_empty_blocking(); // empty: returns at once
    /// ```
    pub fn wait_empty_blocking(&self) {
        wait::block_until(&self.shared.emptied, |_| self.is_empty(), None);
    }

    /// Blocks until the registry is empty or `timeout` passes; returns whether
    /// it is empty.
    ///
    /// # Example
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let registry = winddown::Registry::new();
    /// let conn = registry.insert(());
    /// assert!(!registry.wait_empty_blocking_timeout(Duration::from_millis(1)));
    /// drop(conn);
    /// assert!(registry.wait_empty_blocking_timeout(Duration::from_millis(1)));
    /// ```
    pub fn wait_empty_blocking_timeout(&self, timeout: Duration) -> bool {
        wait::block_until(&self.shared.emptied, |_| self.is_empty(), Some(timeout))
    }
}

impl<M> Clone for Registry<M> {
    /// Another handle to the same registry.
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
        }
    }
}

impl<M> Default for Registry<M> {
    fn default() -> Self {
        Self::new()
    }
}

impl<M> fmt::Debug for Registry<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry")
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}

impl<M> Registered<M> {
    /// How long this entry has been live.
    ///
    /// # Example
    ///
    /// ```
    /// let registry = winddown::Registry::new();
    /// let conn = registry.insert(());
    /// assert!(conn.age() < std::time::Duration::from_secs(60));
    /// ```
    pub fn age(&self) -> Duration {
        self.record.since.elapsed()
    }
}

impl<M> Registered<M> {
    /// A handle to this entry's metadata that does not keep it registered
    /// (for other tasks that update it, such as a per-stream counter).
    ///
    /// # Example
    ///
    /// ```
    /// let registry = winddown::Registry::new();
    /// let conn = registry.insert("peer");
    /// let entry = conn.entry();
    /// drop(conn);
    /// assert!(registry.is_empty());
    /// assert_eq!(*entry, "peer"); // still readable
    /// ```
    pub fn entry(&self) -> Entry<M> {
        Entry {
            record: self.record.clone(),
        }
    }
}

impl<M> Deref for Registered<M> {
    type Target = M;
    fn deref(&self) -> &M {
        &self.record.meta
    }
}

impl<M> Drop for Registered<M> {
    fn drop(&mut self) {
        let removed = {
            let mut shard = lock(&self.shared.shards[self.record.shard as usize]);
            shard.free.push(self.record.slot as usize);
            shard.slots[self.record.slot as usize].take()
        };
        // The shard's handle is dropped outside the lock: if it is the last
        // one, the metadata's own destructor (user code) runs unlocked.
        drop(removed);
        // Release publishes everything done under the entry to a waiter that
        // observes the new count.
        if self.shared.len.fetch_sub(1, Ordering::Release) == 1 {
            self.shared.emptied.notify(usize::MAX);
        }
        self.shared.removed.notify(usize::MAX);
    }
}

impl<M: fmt::Debug> fmt::Debug for Registered<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registered")
            .field("meta", &self.record.meta)
            .field("age", &self.age())
            .finish()
    }
}

impl<M> Entry<M> {
    /// How long the entry had been live when this was called.
    ///
    /// # Example
    ///
    /// ```
    /// let registry = winddown::Registry::new();
    /// let _conn = registry.insert(());
    /// assert!(registry.snapshot()[0].age() < std::time::Duration::from_secs(60));
    /// ```
    pub fn age(&self) -> Duration {
        self.record.since.elapsed()
    }
}

impl<M> Deref for Entry<M> {
    type Target = M;
    fn deref(&self) -> &M {
        &self.record.meta
    }
}

impl<M> Clone for Entry<M> {
    fn clone(&self) -> Self {
        Self {
            record: self.record.clone(),
        }
    }
}

impl<M: fmt::Debug> fmt::Debug for Entry<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Entry")
            .field("meta", &self.record.meta)
            .field("age", &self.age())
            .finish()
    }
}

#[cfg(all(test, not(winddown_loom)))]
mod tests {
    use super::*;
    use futures_lite::future;

    #[test]
    fn is_send_sync() {
        fn check<T: Send + Sync>() {}
        check::<Registry<String>>();
        check::<Registered<String>>();
        check::<Entry<String>>();
    }

    #[test]
    fn slots_are_reused() {
        let registry = Registry::new();
        for i in 0..1000 {
            drop(registry.insert(i));
        }
        let slots: usize = registry
            .shared
            .shards
            .iter()
            .map(|s| lock(s).slots.len())
            .sum();
        assert_eq!(slots, 1);
        assert!(registry.is_empty());
    }

    #[test]
    fn snapshot_lists_exactly_the_live_entries_oldest_first() {
        let registry = Registry::new();
        let a = registry.insert("a");
        let b = registry.insert("b");
        let c = registry.insert("c");
        drop(b);
        let live: Vec<&str> = registry.snapshot().iter().map(|e| **e).collect();
        assert_eq!(live, ["a", "c"]);
        drop((a, c));
        assert!(registry.snapshot().is_empty());
    }

    #[test]
    fn wait_until_wakes_on_each_removal() {
        let registry = Registry::new();
        let mut guards: Vec<_> = (0..3).map(|i| registry.insert(i)).collect();
        let mut wait = Box::pin(registry.wait_until(|r| r.len() <= 1));
        assert!(future::block_on(future::poll_once(wait.as_mut())).is_none());
        guards.pop();
        assert!(future::block_on(future::poll_once(wait.as_mut())).is_none());
        guards.pop();
        assert!(future::block_on(future::poll_once(wait.as_mut())).is_some());
    }

    #[test]
    fn metadata_destructor_runs_without_the_shard_lock() {
        // A destructor that inserts into the same registry would deadlock if
        // it ran under the shard lock.
        struct Reentrant(Registry<Option<Box<Reentrant>>>);
        impl Drop for Reentrant {
            fn drop(&mut self) {
                drop(self.0.insert(None));
            }
        }
        let registry: Registry<Option<Box<Reentrant>>> = Registry::new();
        let guard = registry.insert(Some(Box::new(Reentrant(registry.clone()))));
        drop(guard);
        assert!(registry.is_empty());
    }

    #[test]
    fn concurrent_insert_remove_leaves_it_empty() {
        let registry = Registry::new();
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let registry = registry.clone();
                std::thread::spawn(move || {
                    for i in 0..5_000 {
                        let a = registry.insert((t, i));
                        let b = registry.insert((t, i + 1));
                        drop(a);
                        drop(b);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("worker thread");
        }
        assert!(registry.is_empty());
        assert!(registry.snapshot().is_empty());
    }
}
