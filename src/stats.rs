//! [`Stats`]: the counters a server keeps for the shutdown report.

use std::fmt;

use crate::sync::{AtomicU64, Ordering};

/// Counters of what happened to streams (requests) and handlers, kept by the
/// server and copied into the [`Report`](crate::Report).
///
/// They count over the whole life of the [`Shutdown`](crate::Shutdown), so a
/// load generator's totals can be checked against them. Each method is one
/// relaxed atomic add: the counters are only read after the work they count
/// is over (the stop waits for it), and that wait supplies the ordering.
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
        self.completed.fetch_add(1, Ordering::Relaxed);
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
        self.refused.fetch_add(1, Ordering::Relaxed);
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
        self.reset.fetch_add(1, Ordering::Relaxed);
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
        self.handler_panics.fetch_add(1, Ordering::Relaxed);
    }

    /// The counters now.
    ///
    /// # Example
    ///
    /// ```
    /// let stats = winddown::Stats::default();
    /// assert_eq!(stats.snapshot(), winddown::StreamCounts::default());
    /// ```
    pub fn snapshot(&self) -> StreamCounts {
        StreamCounts {
            completed: self.completed.load(Ordering::Relaxed),
            refused: self.refused.load(Ordering::Relaxed),
            reset: self.reset.load(Ordering::Relaxed),
            handler_panics: self.handler_panics.load(Ordering::Relaxed),
        }
    }
}

impl Default for Stats {
    fn default() -> Self {
        Self {
            completed: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            reset: AtomicU64::new(0),
            handler_panics: AtomicU64::new(0),
        }
    }
}

impl fmt::Debug for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.snapshot().fmt(f)
    }
}
