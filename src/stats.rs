//! [`Stats`]: the counters a server keeps for the shutdown report.

use std::fmt;

use crate::shard::{shard_count, shard_hint};
use crate::sync::{AtomicU64, Ordering};

/// Counters of what happened to streams (requests) and handlers, kept by the
/// server and copied into the [`Report`](crate::Report).
///
/// They count over the whole life of the [`Shutdown`](crate::Shutdown), so a
/// load generator's totals can be checked against them. Each method is one
/// relaxed atomic add on this thread's shard (below): the counters are only
/// read after the work they count is over (the stop waits for it), and that
/// wait supplies the ordering.
///
/// The counters are split over per-thread shards, each on its own cache
/// line, and [`snapshot`](Stats::snapshot) adds them up: a server counts
/// every request, and one counter shared by every thread would move between
/// the cores' caches on most of them (the handlers run on any thread).
///
/// # Example
///
/// ```
/// let shutdown = winddown::Shutdown::new();
/// shutdown.stats().stream_completed();
/// shutdown.stats().stream_refused();
/// assert_eq!(shutdown.stats().snapshot().completed, 1);
/// ```
pub struct Stats {
    /// A power of two of them ([`shard_count`]).
    shards: Box<[Shard]>,
}

/// One thread's share of the counters, alone on its cache line (128 bytes:
/// adjacent-line prefetch pairs lines).
#[repr(align(128))]
#[derive(Default)]
struct Shard {
    completed: AtomicU64,
    refused: AtomicU64,
    reset: AtomicU64,
    handler_panics: AtomicU64,
}

/// A copy of the [`Stats`] counters at one moment.
///
/// # Example
///
/// ```
/// let stats = winddown::Stats::default();
/// stats.stream_reset();
/// let counts: winddown::StreamCounts = stats.snapshot();
/// assert_eq!(counts.reset, 1);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StreamCounts {
    /// Streams whose handler sent the end of its response. After a graceful
    /// stop every one of them reached the client (h2load and the behaviour
    /// tests check this); a hard stop drops what is not yet written to the
    /// socket, so a few counted here may not have arrived.
    pub completed: u64,
    /// Streams the server refused without running a handler (above a GOAWAY's
    /// last-stream-id, or `REFUSED_STREAM`): the client may retry them safely.
    pub refused: u64,
    /// Streams that ended with a reset after a handler started (by the peer,
    /// or by a hard stop).
    pub reset: u64,
    /// Handlers that panicked (contained; counted, not propagated).
    pub handler_panics: u64,
}

impl Stats {
    /// Counts a stream whose response was fully sent.
    ///
    /// # Example
    ///
    /// ```
    /// let stats = winddown::Stats::default();
    /// stats.stream_completed();
    /// assert_eq!(stats.snapshot().completed, 1);
    /// ```
    pub fn stream_completed(&self) {
        self.shard().completed.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a stream refused before any handler saw it.
    ///
    /// # Example
    ///
    /// ```
    /// let stats = winddown::Stats::default();
    /// stats.stream_refused();
    /// assert_eq!(stats.snapshot().refused, 1);
    /// ```
    pub fn stream_refused(&self) {
        self.shard().refused.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a stream reset after its handler started.
    ///
    /// # Example
    ///
    /// ```
    /// let stats = winddown::Stats::default();
    /// stats.stream_reset();
    /// assert_eq!(stats.snapshot().reset, 1);
    /// ```
    pub fn stream_reset(&self) {
        self.shard().reset.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a handler that panicked.
    ///
    /// # Example
    ///
    /// ```
    /// let stats = winddown::Stats::default();
    /// stats.handler_panicked();
    /// assert_eq!(stats.snapshot().handler_panics, 1);
    /// ```
    pub fn handler_panicked(&self) {
        self.shard().handler_panics.fetch_add(1, Ordering::Relaxed);
    }

    /// This thread's shard.
    #[inline]
    fn shard(&self) -> &Shard {
        &self.shards[shard_hint() & (self.shards.len() - 1)]
    }

    /// The counters now: exact once the work counted is over (after a stop).
    /// Taken while the server runs, it adds up the shards one after another,
    /// so it can miss a count made meanwhile on a shard already read while
    /// including a later one: a total that each counter passed through, but
    /// not necessarily all at the same moment.
    ///
    /// # Example
    ///
    /// ```
    /// let stats = winddown::Stats::default();
    /// assert_eq!(stats.snapshot(), winddown::StreamCounts::default());
    /// ```
    pub fn snapshot(&self) -> StreamCounts {
        let sum = |count: fn(&Shard) -> &AtomicU64| {
            self.shards
                .iter()
                .map(|shard| count(shard).load(Ordering::Relaxed))
                .fold(0u64, u64::wrapping_add)
        };
        StreamCounts {
            completed: sum(|shard| &shard.completed),
            refused: sum(|shard| &shard.refused),
            reset: sum(|shard| &shard.reset),
            handler_panics: sum(|shard| &shard.handler_panics),
        }
    }
}

impl Default for Stats {
    fn default() -> Self {
        Self {
            shards: (0..shard_count()).map(|_| Shard::default()).collect(),
        }
    }
}

impl fmt::Debug for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.snapshot().fmt(f)
    }
}

#[cfg(all(test, not(winddown_loom)))]
mod tests {
    use super::Stats;

    /// Each thread counts on its own shard; the snapshot adds every shard up.
    #[test]
    fn counts_from_many_threads_all_reach_the_snapshot() {
        let stats = Stats::default();
        std::thread::scope(|scope| {
            for _ in 0..8 {
                scope.spawn(|| {
                    for _ in 0..1000 {
                        stats.stream_completed();
                    }
                    stats.stream_refused();
                    stats.stream_reset();
                    stats.handler_panicked();
                });
            }
        });
        let counts = stats.snapshot();
        assert_eq!(counts.completed, 8000);
        assert_eq!(counts.refused, 8);
        assert_eq!(counts.reset, 8);
        assert_eq!(counts.handler_panics, 8);
    }
}
