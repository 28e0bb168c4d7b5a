//! [`ConnInfo`] and [`ConnectionGuard`]: a live connection as the
//! [`Shutdown`](crate::Shutdown) sees it.

use std::fmt;
use std::net::SocketAddr;
use std::ops::Deref;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::report::HeldStream;

use crate::shutdown::Core;
use crate::sync::Arc;
use crate::Registered;

/// What the shutdown knows about a live connection: enough to say who holds a
/// stuck stop, down to each open stream's path and age.
///
/// # Example
///
/// ```
/// let shutdown = winddown::Shutdown::new();
/// let conn = shutdown.connection(Some("127.0.0.1:5000".parse().unwrap()));
/// conn.stream_opened(1, "/echo");
/// assert_eq!(conn.open_streams(), 1);
/// assert_eq!(conn.streams()[0].path, "/echo");
/// assert_eq!(conn.peer().unwrap().port(), 5000);
/// ```
#[derive(Debug)]
pub struct ConnInfo {
    peer: Option<SocketAddr>,
    open_streams: AtomicUsize,
    /// Open streams, for the straggler list, and since when none has been
    /// open (for max idle). A short lock, never held across user code; the
    /// list is empty (and unallocated) on an idle connection.
    streams: Mutex<Streams>,
}

/// How many open-stream slots an idle connection keeps allocated.
const IDLE_CAPACITY: usize = 4;

/// A stream's path as the straggler list shows it, kept inline (no
/// allocation per stream): up to [`StreamPath::CAPACITY`] bytes, longer paths
/// cut at a character boundary and marked with `…`.
#[derive(Clone, Copy)]
struct StreamPath {
    len: u8,
    truncated: bool,
    bytes: [u8; StreamPath::CAPACITY],
}

impl StreamPath {
    const CAPACITY: usize = 62;

    fn new(path: &str) -> Self {
        let mut end = path.len().min(Self::CAPACITY);
        while !path.is_char_boundary(end) {
            end -= 1;
        }
        let mut bytes = [0; Self::CAPACITY];
        bytes[..end].copy_from_slice(&path.as_bytes()[..end]);
        Self {
            len: end as u8,
            truncated: end < path.len(),
            bytes,
        }
    }
}

impl std::fmt::Debug for StreamPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.to_string())
    }
}

impl std::fmt::Display for StreamPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Cut at a character boundary, so this never fails.
        let text = std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or("?");
        f.write_str(text)?;
        if self.truncated {
            f.write_str("…")?;
        }
        Ok(())
    }
}

#[derive(Debug)]
struct Streams {
    open: Vec<(u32, StreamPath, Instant)>,
    /// When the last stream closed (or the connection opened), on
    /// [`monotonic_nanos`]'s clock: 8 bytes where an `Instant` takes 16, in
    /// a record every connection keeps.
    idle_since: u64,
}

/// Nanoseconds since the first call, on the monotonic clock (584 years fit).
fn monotonic_nanos() -> u64 {
    static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    let nanos = EPOCH.get_or_init(Instant::now).elapsed().as_nanos();
    u64::try_from(nanos).unwrap_or(u64::MAX)
}

impl ConnInfo {
    /// The peer's address, if the transport has one.
    ///
    /// # Example
    ///
    /// ```
    /// let shutdown = winddown::Shutdown::new();
    /// assert!(shutdown.connection(None).peer().is_none());
    /// ```
    pub fn peer(&self) -> Option<SocketAddr> {
        self.peer
    }

    /// Streams open on this connection now (a gauge the server keeps).
    ///
    /// # Example
    ///
    /// ```
    /// let shutdown = winddown::Shutdown::new();
    /// assert_eq!(shutdown.connection(None).open_streams(), 0);
    /// ```
    pub fn open_streams(&self) -> usize {
        self.open_streams.load(Ordering::Relaxed) & !SEALED
    }

    /// Records that stream `id` (for `path`) opened.
    ///
    /// # Example
    ///
    /// ```
    /// let shutdown = winddown::Shutdown::new();
    /// let conn = shutdown.connection(None);
    /// conn.stream_opened(1, "/echo");
    /// conn.stream_closed(1);
    /// assert_eq!(conn.open_streams(), 0);
    /// ```
    pub fn stream_opened(&self, id: u32, path: &str) {
        self.open_streams.fetch_add(1, Ordering::Relaxed);
        // Made before the lock is taken: the handlers closing streams on
        // other threads wait for it only as long as a push takes.
        let entry = (id, StreamPath::new(path), Instant::now());
        self.lock_streams().open.push(entry);
    }

    /// The open streams, oldest first: id, path and age.
    ///
    /// # Example
    ///
    /// ```
    /// let shutdown = winddown::Shutdown::new();
    /// let conn = shutdown.connection(None);
    /// conn.stream_opened(3, "/slow");
    /// let streams = conn.streams();
    /// assert_eq!((streams[0].id, streams[0].path.as_str()), (3, "/slow"));
    /// ```
    pub fn streams(&self) -> Vec<HeldStream> {
        let mut open: Vec<_> = self.lock_streams().open.clone();
        // Kept unordered (closing is a swap-remove); sorted here, where it is rare.
        open.sort_by_key(|(_, _, since)| *since);
        open.iter()
            .map(|(id, path, since)| HeldStream {
                id: *id,
                path: path.to_string(),
                age: since.elapsed(),
            })
            .collect()
    }

    /// How long no stream has been open, or `None` while one is.
    #[cfg(feature = "http2")]
    pub(crate) fn idle_for(&self) -> Option<Duration> {
        let streams = self.lock_streams();
        streams
            .open
            .is_empty()
            .then(|| Duration::from_nanos(monotonic_nanos().saturating_sub(streams.idle_since)))
    }

    fn lock_streams(&self) -> std::sync::MutexGuard<'_, Streams> {
        // Nothing panics while holding it; a poisoned list is still a list.
        self.streams.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records that stream `id` closed. Returns `false` if the connection was
    /// already [sealed](ConnInfo::seal) (its open streams were counted as cut
    /// when it was forced closed), so the caller must not count it again.
    ///
    /// # Example
    ///
    /// ```
    /// let shutdown = winddown::Shutdown::new();
    /// let conn = shutdown.connection(None);
    /// conn.stream_opened(1, "/");
    /// assert!(conn.stream_closed(1));
    /// ```
    pub fn stream_closed(&self, id: u32) -> bool {
        {
            let mut streams = self.lock_streams();
            if let Some(at) = streams.open.iter().position(|(open, _, _)| *open == id) {
                streams.open.swap_remove(at);
            }
            if streams.open.is_empty() {
                streams.idle_since = monotonic_nanos();
                // An idle connection keeps room for a few streams, not for
                // the most it ever had open at once.
                if streams.open.capacity() > IDLE_CAPACITY {
                    streams.open.shrink_to(IDLE_CAPACITY);
                }
            }
        }
        self.open_streams
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                // Saturating, so a caller's bookkeeping slip cannot wrap the gauge.
                (n & SEALED == 0).then(|| n.saturating_sub(1))
            })
            .is_ok()
    }

    /// Seals the gauge when the connection is forced closed: returns the
    /// streams still open (they were cut), and from now on
    /// [`stream_closed`](ConnInfo::stream_closed) returns `false`, so each
    /// stream is counted exactly once, by whichever side sees it end first.
    ///
    /// # Example
    ///
    /// ```
    /// let shutdown = winddown::Shutdown::new();
    /// let conn = shutdown.connection(None);
    /// conn.stream_opened(1, "/");
    /// assert_eq!(conn.seal(), 1);
    /// assert!(!conn.stream_closed(1)); // already counted by the seal
    /// assert_eq!(conn.open_streams(), 0);
    /// ```
    pub fn seal(&self) -> usize {
        self.lock_streams().open.clear();
        self.open_streams.swap(SEALED, Ordering::AcqRel) & !SEALED
    }
}

/// The top bit of `open_streams`: set once the connection is forced closed.
const SEALED: usize = 1 << (usize::BITS - 1);

/// A live connection registered with a [`Shutdown`](crate::Shutdown); dropping
/// it removes the connection, wakes the stop, and counts the connection as
/// drained (closed during a graceful stop) or forced (closed by a hard stop).
///
/// # Example
///
/// ```
/// use futures_lite::future;
/// use winddown::Shutdown;
///
/// let shutdown = Shutdown::new();
/// let conn = shutdown.connection(None);
/// let drain = shutdown.drain_token();
/// let task = std::thread::spawn(move || {
///     drain.wait_blocking(); // a real server sends GOAWAY here
///     drop(conn);            // ... and closes when its streams are done
/// });
/// let report = future::block_on(shutdown.graceful_stop());
/// task.join().unwrap();
/// assert_eq!(report.connections.drained, 1);
/// ```
#[must_use = "the connection is deregistered as soon as the guard is dropped"]
pub struct ConnectionGuard {
    // Declared first so it is dropped (and waiters woken) after the counters
    // below are updated in `drop`.
    entry: Registered<ConnInfo>,
    core: Arc<Core>,
}

impl ConnectionGuard {
    pub(crate) fn new(core: Arc<Core>, peer: Option<SocketAddr>) -> Self {
        let entry = core.connections.insert(ConnInfo {
            peer,
            open_streams: AtomicUsize::new(0),
            streams: Mutex::new(Streams {
                open: Vec::new(),
                idle_since: monotonic_nanos(),
            }),
        });
        Self { entry, core }
    }

    /// How long the connection has been registered.
    ///
    /// # Example
    ///
    /// ```
    /// let shutdown = winddown::Shutdown::new();
    /// let conn = shutdown.connection(None);
    /// assert!(conn.age() < std::time::Duration::from_secs(60));
    /// ```
    pub fn age(&self) -> Duration {
        self.entry.age()
    }

    /// A handle to this connection's [`ConnInfo`] for other tasks (stream
    /// handlers update its gauge); it does not keep the connection registered.
    ///
    /// # Example
    ///
    /// ```
    /// let shutdown = winddown::Shutdown::new();
    /// let conn = shutdown.connection(None);
    /// let info = conn.info();
    /// info.stream_opened(1, "/");
    /// assert_eq!(conn.open_streams(), 1);
    /// ```
    pub fn info(&self) -> crate::Entry<ConnInfo> {
        self.entry.entry()
    }
}

impl Deref for ConnectionGuard {
    type Target = ConnInfo;
    fn deref(&self) -> &ConnInfo {
        &self.entry
    }
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        // Counted before the entry is removed, so a stop that sees the
        // registry empty also sees this connection counted.
        self.core.count_closed_connection();
    }
}

impl fmt::Debug for ConnectionGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectionGuard")
            .field("peer", &self.entry.peer)
            .field("open_streams", &self.entry.open_streams())
            .field("age", &self.age())
            .finish()
    }
}

#[cfg(all(test, not(winddown_loom)))]
mod path_tests {
    #[test]
    fn long_paths_are_cut_at_a_character_boundary_and_marked() {
        let shutdown = crate::Shutdown::new();
        let conn = shutdown.connection(None);
        // 2-byte characters: 62 bytes would split the 32nd one.
        let long = "é".repeat(40);
        conn.stream_opened(1, &long);
        conn.stream_opened(3, "/short");
        let streams = conn.streams();
        assert_eq!(streams[0].path, format!("{}…", "é".repeat(31)));
        assert_eq!(streams[1].path, "/short");
    }
}
