//! [`ConnInfo`] and [`ConnectionGuard`]: a live connection as the
//! [`Shutdown`](crate::Shutdown) sees it.

use std::fmt;
use std::net::SocketAddr;
use std::ops::Deref;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use crate::report::HeldStream;

use crate::shutdown::Core;
use crate::sync::{lock, Arc, Mutex, MutexGuard};
use crate::Registered;

/// What the shutdown knows about a live connection: enough to say who holds a
/// stuck stop, down to each open stream's path and age.
///
/// # Example
///
/// ```
/// let shutdown = winddown::Shutdown::new();
/// let conn = shutdown.connection(Some("127.0.0.1:5000".parse().unwrap()));
/// let _stream = conn.stream_opened(1, "/echo");
/// assert_eq!(conn.open_streams(), 1);
/// assert_eq!(conn.streams()[0].path, "/echo");
/// assert_eq!(conn.peer().unwrap().port(), 5000);
/// ```
#[derive(Debug)]
pub struct ConnInfo {
    peer: Option<SocketAddr>,
    /// A short lock, never held across user code.
    live: Mutex<Live>,
}

/// What a connection's record changes while it lives, under its one lock.
#[derive(Debug)]
struct Live {
    /// Open streams, for the straggler list and the gauge, and since when
    /// none has been open (for max idle). Unallocated until the first
    /// stream; then as many slots as the most streams open at once, kept
    /// while idle up to 64 (5.6 KB).
    streams: Streams,
    /// The connection's task, to wake when the shutdown drains or stops
    /// ([`ConnectionGuard::poll_drain`]): 16 bytes here instead of a
    /// listener on the shared token in every connection's future (88 bytes,
    /// and a lock all connections share on every poll).
    waker: Option<Waker>,
}

/// How many open-stream slots an idle connection may keep allocated (88
/// bytes each); a larger table is freed when the connection goes idle.
const IDLE_CAPACITY: usize = 64;

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

/// A connection's open streams: a table of slots, each stream's slot named by
/// the [`OpenStream`] its opening returned, so closing one touches that slot
/// alone. (A list searched by id read every open stream's record on each
/// close, records the opening thread had just written: under load, the
/// connection's and the handlers' threads traded those cache lines on every
/// request.)
#[derive(Debug)]
struct Streams {
    slots: Vec<Slot>,
    /// The first free slot, [`NO_SLOT`] if none: free slots form a stack
    /// through [`Slot::Free`], so the table stays as small as the most streams
    /// open at once.
    free: u32,
    /// Streams open (the gauge): the [`Slot::Open`] slots.
    open: u32,
    /// When the last stream closed (or the connection opened), on
    /// [`monotonic_nanos`]'s clock: 8 bytes where an `Instant` takes 16, in
    /// a record every connection keeps.
    idle_since: u64,
}

/// No slot: the end of the free stack.
const NO_SLOT: u32 = u32::MAX;

#[derive(Debug)]
enum Slot {
    Open {
        id: u32,
        path: StreamPath,
        since: Instant,
    },
    /// Open when the connection was [sealed](ConnInfo::seal): counted as cut
    /// then, so its close frees the slot without counting it again.
    Cut { id: u32 },
    /// Free, with the next free slot.
    Free(u32),
}

impl Streams {
    fn new(idle_since: u64) -> Self {
        Self {
            slots: Vec::new(),
            free: NO_SLOT,
            open: 0,
            idle_since,
        }
    }

    fn open(&mut self, slot: Slot) -> u32 {
        self.open += 1;
        match self.free {
            NO_SLOT => {
                self.slots.push(slot);
                // Fewer than `NO_SLOT` streams are open at once: HTTP/2's ids
                // are 31-bit, and no server allows anywhere near that many.
                u32::try_from(self.slots.len() - 1).unwrap_or(NO_SLOT)
            }
            free => {
                let at = free as usize;
                // Only free slots are ever on the stack.
                if let Some(Slot::Free(next)) = self.slots.get(at) {
                    self.free = *next;
                }
                self.slots[at] = slot;
                free
            }
        }
    }

    /// Frees `stream`'s slot. Returns whether it was open (not cut), so
    /// the caller counts it.
    fn close(&mut self, stream: OpenStream) -> bool {
        let at = stream.slot as usize;
        let was_open = match self.slots.get(at) {
            Some(Slot::Open { id, .. }) if *id == stream.id => true,
            Some(Slot::Cut { id }) if *id == stream.id => false,
            // Not this table's handle (see `OpenStream`): nothing to free.
            _ => return false,
        };
        self.slots[at] = Slot::Free(self.free);
        self.free = stream.slot;
        if was_open {
            self.open -= 1;
            if self.open == 0 && self.slots.capacity() > IDLE_CAPACITY {
                self.free_table_if_empty();
            }
        }
        was_open
    }

    /// An idle connection keeps room for the next busy period (as h2's own
    /// stream store does, at a few hundred bytes a stream, never given back),
    /// unless the table is large: then it is freed, if no slot is left in
    /// use (a cut stream's handle may still be out: a sealed connection's
    /// table is kept until its record goes). Scans the table, but only when
    /// a large one empties. (Shrinking it to a few slots on every idle moment
    /// made it double back on every busy period: 150 instructions per request
    /// with 32 streams in flight, callgrind.)
    fn free_table_if_empty(&mut self) {
        if self.slots.iter().all(|slot| matches!(slot, Slot::Free(_))) {
            self.slots = Vec::new();
            self.free = NO_SLOT;
        }
    }

    /// Marks every open stream cut; returns how many there were.
    fn cut_all(&mut self) -> usize {
        for slot in &mut self.slots {
            if let Slot::Open { id, .. } = *slot {
                *slot = Slot::Cut { id };
            }
        }
        std::mem::take(&mut self.open) as usize
    }
}

/// An open stream of a [`ConnInfo`], as [`ConnInfo::stream_opened`] returned
/// it: hand it to [`ConnInfo::stream_closed`] when the stream ends, which
/// takes it (so a stream cannot be closed twice). It names a slot of the
/// connection that made it: do not give it to another one. (That one would
/// close its own stream in the same slot if it has the same id, as the first
/// stream of every HTTP/2 connection does, and that stream's own handle
/// would then be refused.)
///
/// # Example
///
/// ```
/// let shutdown = winddown::Shutdown::new();
/// let conn = shutdown.connection(None);
/// let stream: winddown::OpenStream = conn.stream_opened(1, "/echo");
/// assert_eq!(stream.id(), 1);
/// assert!(conn.stream_closed(stream));
/// ```
#[derive(Debug, PartialEq, Eq)]
#[must_use = "the stream stays listed as open until it is passed to `stream_closed`"]
pub struct OpenStream {
    slot: u32,
    id: u32,
}

impl OpenStream {
    /// The stream's id, as given to [`ConnInfo::stream_opened`].
    ///
    /// # Example
    ///
    /// ```
    /// let shutdown = winddown::Shutdown::new();
    /// let conn = shutdown.connection(None);
    /// let stream = conn.stream_opened(7, "/");
    /// assert_eq!(stream.id(), 7);
    /// # let _ = conn.stream_closed(stream);
    /// ```
    pub fn id(&self) -> u32 {
        self.id
    }

    /// A handle that names no slot, left behind where one was taken.
    #[cfg(feature = "http2")]
    pub(crate) fn taken() -> Self {
        Self {
            slot: NO_SLOT,
            id: 0,
        }
    }
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
        self.lock().streams.open as usize
    }

    /// Records that stream `id` (for `path`) opened; pass what it returns to
    /// [`stream_closed`](ConnInfo::stream_closed) when the stream ends. The
    /// id is what the straggler list shows (HTTP/2's stream id).
    ///
    /// # Example
    ///
    /// ```
    /// let shutdown = winddown::Shutdown::new();
    /// let conn = shutdown.connection(None);
    /// let stream = conn.stream_opened(1, "/echo");
    /// assert_eq!(conn.open_streams(), 1);
    /// conn.stream_closed(stream);
    /// assert_eq!(conn.open_streams(), 0);
    /// ```
    pub fn stream_opened(&self, id: u32, path: &str) -> OpenStream {
        self.stream_opened_at(id, path, Instant::now())
    }

    /// [`stream_opened`](ConnInfo::stream_opened) at a time the caller read:
    /// the server reads the clock once for the streams it opens together.
    pub(crate) fn stream_opened_at(&self, id: u32, path: &str, since: Instant) -> OpenStream {
        // Made before the lock is taken: the handlers closing streams on
        // other threads wait for it only as long as storing it takes.
        let record = Slot::Open {
            id,
            path: StreamPath::new(path),
            since,
        };
        let slot = self.lock().streams.open(record);
        OpenStream { slot, id }
    }

    /// The open streams, oldest first: id, path and age.
    ///
    /// # Example
    ///
    /// ```
    /// let shutdown = winddown::Shutdown::new();
    /// let conn = shutdown.connection(None);
    /// let _stream = conn.stream_opened(3, "/slow");
    /// let streams = conn.streams();
    /// assert_eq!((streams[0].id, streams[0].path.as_str()), (3, "/slow"));
    /// ```
    pub fn streams(&self) -> Vec<HeldStream> {
        let mut open: Vec<(u32, StreamPath, Instant)> = self
            .lock()
            .streams
            .slots
            .iter()
            .filter_map(|slot| match slot {
                Slot::Open { id, path, since } => Some((*id, *path, *since)),
                Slot::Cut { .. } | Slot::Free(_) => None,
            })
            .collect();
        // Slots are reused in any order; sorted here, where it is rare.
        // Streams opened together share one time: their ids, which a client
        // raises with each stream it opens (RFC 9113 §5.1.1), order them.
        open.sort_by_key(|&(id, _, since)| (since, id));
        open.iter()
            .map(|(id, path, since)| HeldStream {
                id: *id,
                path: path.to_string(),
                age: since.elapsed(),
            })
            .collect()
    }

    /// How long no stream has been open, or `None` while one is.
    #[cfg(any(feature = "http2", test))]
    pub(crate) fn idle_for(&self) -> Option<Duration> {
        let streams = &self.lock().streams;
        (streams.open == 0)
            .then(|| Duration::from_nanos(monotonic_nanos().saturating_sub(streams.idle_since)))
    }

    fn lock(&self) -> MutexGuard<'_, Live> {
        // Nothing panics while holding it; a poisoned table is still a table.
        lock(&self.live)
    }

    /// Takes the waker a [`ConnectionGuard::poll_drain`] or
    /// [`poll_stop`](ConnectionGuard::poll_stop) left, for the shutdown to
    /// wake (outside this lock and the registry's).
    pub(crate) fn take_waker(&self) -> Option<Waker> {
        self.lock().waker.take()
    }

    /// Records that `stream` closed. Returns `false` if it was open when the
    /// connection was [sealed](ConnInfo::seal) (the seal counted it as cut),
    /// so the caller counts each stream once; also for a handle that names
    /// no open or cut stream of this connection.
    ///
    /// # Example
    ///
    /// ```
    /// let shutdown = winddown::Shutdown::new();
    /// let conn = shutdown.connection(None);
    /// let stream = conn.stream_opened(1, "/");
    /// assert!(conn.stream_closed(stream));
    /// assert_eq!(conn.open_streams(), 0);
    /// ```
    pub fn stream_closed(&self, stream: OpenStream) -> bool {
        let streams = &mut self.lock().streams;
        let was_open = streams.close(stream);
        if was_open && streams.open == 0 {
            streams.idle_since = monotonic_nanos();
        }
        was_open
    }

    /// Seals the gauge when the connection is forced closed: returns the
    /// streams open now (they were cut), and their
    /// [`stream_closed`](ConnInfo::stream_closed) will return `false`, so each
    /// stream is counted exactly once, by whichever side sees it end first.
    /// They leave the list now; a stream opened later counts as usual (a
    /// second seal returns the streams opened since the first). The table is
    /// then kept, whatever its size, until the record goes: a sealed
    /// connection is being closed.
    ///
    /// # Example
    ///
    /// ```
    /// let shutdown = winddown::Shutdown::new();
    /// let conn = shutdown.connection(None);
    /// let stream = conn.stream_opened(1, "/");
    /// assert_eq!(conn.seal(), 1);
    /// assert_eq!(conn.open_streams(), 0);
    /// assert!(!conn.stream_closed(stream)); // counted by the seal
    /// ```
    pub fn seal(&self) -> usize {
        self.lock().streams.cut_all()
    }
}

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
            live: Mutex::new(Live {
                streams: Streams::new(monotonic_nanos()),
                waker: None,
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
    /// let _stream = info.stream_opened(1, "/");
    /// assert_eq!(conn.open_streams(), 1);
    /// ```
    pub fn info(&self) -> crate::Entry<ConnInfo> {
        self.entry.entry()
    }

    /// Ready once the shutdown drains connections (a graceful stop reached
    /// its drain phase, or a hard stop began); until then, the task is woken
    /// when it does.
    ///
    /// The same signal as [`Shutdown::drain_token`](crate::Shutdown::drain_token)'s
    /// [`wait`](crate::DrainToken::wait), at less cost per connection: the waker is
    /// kept in this connection's record (16 bytes) and woken by one listener
    /// the shutdown holds for every connection, where a `wait` future keeps
    /// a listener of its own (88 bytes in the future) and takes a lock that
    /// all connections share on each poll.
    ///
    /// # One waker per connection
    ///
    /// The record keeps one waker for this method and
    /// [`poll_stop`](Self::poll_stop) together: only the waker of the most
    /// recent call to either is woken (as with tokio's `poll_read_ready` and
    /// `poll_read`). Poll them from the task that owns the connection, one
    /// at a time, as the HTTP/2 server does; a second task that needs the
    /// signal can [`wait`](crate::DrainToken::wait) on the token.
    ///
    /// # Example
    ///
    /// ```
    /// use std::future::poll_fn;
    /// use futures_lite::future;
    ///
    /// let shutdown = winddown::Shutdown::new();
    /// let conn = shutdown.connection(None);
    /// assert!(future::block_on(future::poll_once(poll_fn(|cx| conn.poll_drain(cx)))).is_none());
    /// shutdown.drain_token().fire(); // what a graceful stop does after closing listeners
    /// future::block_on(poll_fn(|cx| conn.poll_drain(cx)));
    /// ```
    pub fn poll_drain(&self, cx: &mut Context<'_>) -> Poll<()> {
        // A hard stop fires `stop` before its child `drain`: ready from the
        // first, so the stop's wake-up is the only one (the drain's then
        // finds no waker left).
        self.poll_fired(cx, || {
            self.core.drain.is_fired() || self.core.stop.is_fired()
        })
    }

    /// Ready once the shutdown stops hard (called, or a graceful stop's
    /// deadline passed); until then, the task is woken when it does. The
    /// hard-stop counterpart of [`poll_drain`](Self::poll_drain), with the
    /// same cost, sharing its one waker (see there).
    ///
    /// # Example
    ///
    /// ```
    /// use std::future::poll_fn;
    /// use futures_lite::future;
    ///
    /// let shutdown = winddown::Shutdown::new();
    /// let conn = shutdown.connection(None);
    /// shutdown.stop_token().fire(); // what a hard stop does first
    /// future::block_on(poll_fn(|cx| conn.poll_stop(cx)));
    /// ```
    pub fn poll_stop(&self, cx: &mut Context<'_>) -> Poll<()> {
        self.poll_fired(cx, || self.core.stop.is_fired())
    }

    fn poll_fired(&self, cx: &mut Context<'_>, fired: impl Fn() -> bool) -> Poll<()> {
        if fired() {
            return Poll::Ready(());
        }
        let mut live = self.entry.lock();
        let replaced = match &live.waker {
            Some(waker) if waker.will_wake(cx.waker()) => None,
            _ => live.waker.replace(cx.waker().clone()),
        };
        drop(live);
        // Dropped outside the lock: dropping a waker runs the runtime's code.
        drop(replaced);
        // Checked again once the waker is stored (CN-1): a fire after the
        // check above finds the waker (the shutdown takes this lock after
        // setting the flag), or its flag is seen here.
        if fired() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
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
        // The record may outlive the connection (handlers hold it); its task
        // need not.
        drop(self.entry.take_waker());
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
mod tests {
    use std::sync::Arc;
    use std::task::{Context, Waker};

    use super::OpenStream;

    /// Opens, closes and seals in a pseudo-random order against a model:
    /// the gauge, the listing and every close's answer agree with it (a
    /// stream open at a seal is counted by the seal, not by its close), and
    /// slots are reused.
    #[test]
    fn the_table_agrees_with_a_model_of_open_streams() {
        let shutdown = crate::Shutdown::new();
        let conn = shutdown.connection(None);
        // (handle, open when the connection was last sealed)
        let mut held: Vec<(OpenStream, bool)> = Vec::new();
        let mut seed = 0x9E37_79B9_7F4A_7C15_u64;
        let mut next_id = 1;
        for _ in 0..20_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            if held.is_empty() || (seed % 5 < 3 && held.len() < 40) {
                held.push((conn.stream_opened(next_id, "/model"), false));
                next_id += 2;
            } else if seed % 97 == 0 {
                let open = held.iter().filter(|(_, cut)| !cut).count();
                assert_eq!(conn.seal(), open);
                held.iter_mut().for_each(|(_, cut)| *cut = true);
            } else {
                let (stream, cut) = held.swap_remove((seed as usize / 5) % held.len());
                assert_eq!(conn.stream_closed(stream), !cut);
            }
            let mut expected: Vec<u32> = held
                .iter()
                .filter(|(_, cut)| !cut)
                .map(|(stream, _)| stream.id())
                .collect();
            assert_eq!(conn.open_streams(), expected.len());
            let mut listed: Vec<u32> = conn.streams().iter().map(|s| s.id).collect();
            listed.sort_unstable();
            expected.sort_unstable();
            assert_eq!(listed, expected);
            let slots = conn.lock().streams.slots.len();
            assert!(slots <= 40, "slots are reused: {slots}");
        }
    }

    /// Streams opened in one batch share their opening time; the list is
    /// still oldest first, though the reused slots are in the reverse order.
    #[test]
    fn streams_opened_at_one_time_are_listed_in_the_order_they_opened() {
        let shutdown = crate::Shutdown::new();
        let conn = shutdown.connection(None);
        let first = conn.stream_opened(1, "/");
        let third = conn.stream_opened(3, "/");
        assert!(conn.stream_closed(first));
        assert!(conn.stream_closed(third));
        let now = std::time::Instant::now();
        let _fifth = conn.stream_opened_at(5, "/", now);
        let _seventh = conn.stream_opened_at(7, "/", now);
        let listed: Vec<u32> = conn.streams().iter().map(|s| s.id).collect();
        assert_eq!(listed, [5, 7]);
    }

    #[test]
    fn an_idle_connection_frees_a_large_table_and_its_idle_clock_restarts() {
        let shutdown = crate::Shutdown::new();
        let conn = shutdown.connection(None);
        let streams: Vec<_> = (0..100)
            .map(|i| conn.stream_opened(2 * i + 1, "/"))
            .collect();
        assert_eq!(conn.idle_for(), None);
        for stream in streams {
            assert!(conn.stream_closed(stream));
        }
        assert_eq!(conn.lock().streams.slots.capacity(), 0);
        assert!(conn.idle_for().is_some());
        // A small table is kept for the next busy period.
        let stream = conn.stream_opened(201, "/");
        assert!(conn.stream_closed(stream));
        assert_eq!(conn.lock().streams.slots.len(), 1);
    }

    #[test]
    fn a_sealed_connection_counts_its_open_streams_once() {
        let shutdown = crate::Shutdown::new();
        let conn = shutdown.connection(None);
        let first = conn.stream_opened(1, "/");
        let second = conn.stream_opened(3, "/");
        assert!(conn.stream_closed(first));
        assert_eq!(conn.seal(), 1);
        assert_eq!(conn.seal(), 0, "nothing left open to cut");
        assert!(conn.streams().is_empty());
        // A stream that opens after the seal is listed and counted when it
        // closes; the cut one is not counted again, and its slot is reused.
        let late = conn.stream_opened(5, "/late");
        assert_eq!(conn.open_streams(), 1);
        assert!(!conn.stream_closed(second), "counted as cut by the seal");
        let later = conn.stream_opened(7, "/later");
        assert_eq!(
            conn.lock().streams.slots.len(),
            2,
            "the cut stream's slot reused"
        );
        assert!(conn.stream_closed(late));
        assert!(conn.stream_closed(later));
        assert_eq!(conn.open_streams(), 0);
    }

    /// An idle connection may keep 64 slots: their size is memory per
    /// connection (88 bytes on 64-bit targets: the path inline, the id and the
    /// open instant). Printed for the benchmarks (`-- --nocapture`;
    /// BENCHMARKS-history.md, *Fifth round*).
    #[test]
    fn a_slot_stays_small() {
        let size = std::mem::size_of::<super::Slot>();
        eprintln!("a stream slot: {size} bytes");
        assert!(size <= 96, "a stream slot is {size} bytes");
    }

    #[test]
    fn long_paths_are_cut_at_a_character_boundary_and_marked() {
        let shutdown = crate::Shutdown::new();
        let conn = shutdown.connection(None);
        // 2-byte characters: 62 bytes would split the 32nd one.
        let long = "é".repeat(40);
        let _long = conn.stream_opened(1, &long);
        let _short = conn.stream_opened(3, "/short");
        let streams = conn.streams();
        assert_eq!(streams[0].path, format!("{}…", "é".repeat(31)));
        assert_eq!(streams[1].path, "/short");
    }

    /// Counts its wakes.
    struct CountingWaker(std::sync::atomic::AtomicUsize);

    impl std::task::Wake for CountingWaker {
        fn wake(self: Arc<Self>) {
            self.wake_by_ref();
        }
        fn wake_by_ref(self: &Arc<Self>) {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }

    fn counting_waker() -> (Arc<CountingWaker>, Waker) {
        let count = Arc::new(CountingWaker(0.into()));
        (count.clone(), Waker::from(count))
    }

    fn wakes(count: &CountingWaker) -> usize {
        count.0.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// CN-1, without threads: the drain wakes the waker the connection left
    /// last (one per connection, replaced by a poll from another task), for
    /// every connection, then `poll_drain` is ready; the hard stop does the
    /// same for `poll_stop`.
    #[test]
    fn the_drain_and_the_stop_wake_each_connections_last_waker() {
        let shutdown = crate::Shutdown::new();
        let conns: Vec<_> = (0..100).map(|_| shutdown.connection(None)).collect();
        let (first, first_waker) = counting_waker();
        let (last, last_waker) = counting_waker();
        for conn in &conns {
            let pending = conn.poll_drain(&mut Context::from_waker(&first_waker));
            assert!(pending.is_pending());
            let pending = conn.poll_drain(&mut Context::from_waker(&last_waker));
            assert!(pending.is_pending());
        }
        assert_eq!((wakes(&first), wakes(&last)), (0, 0));

        shutdown.drain_token().fire();
        assert_eq!(
            (wakes(&first), wakes(&last)),
            (0, 100),
            "each connection woken once"
        );
        let mut cx = Context::from_waker(&last_waker);
        for conn in &conns {
            assert!(conn.poll_drain(&mut cx).is_ready());
            assert!(conn.poll_stop(&mut cx).is_pending());
        }

        shutdown.stop_token().fire();
        assert_eq!(wakes(&last), 200);
        assert!(conns.iter().all(|conn| conn.poll_stop(&mut cx).is_ready()));
    }

    /// A hard stop fires `stop`, then its child `drain`: a serving
    /// connection polling `poll_drain` is ready from the first, so it is
    /// woken once, even by a task that polls again at once (here, inside the
    /// wake itself, between the two fires).
    #[test]
    fn a_hard_stop_wakes_a_serving_connection_once() {
        struct PollsAgainWhenWoken {
            conn: crate::ConnectionGuard,
            wakes: std::sync::atomic::AtomicUsize,
            ready: std::sync::atomic::AtomicBool,
        }
        impl std::task::Wake for PollsAgainWhenWoken {
            fn wake(self: Arc<Self>) {
                self.wake_by_ref();
            }
            fn wake_by_ref(self: &Arc<Self>) {
                use std::sync::atomic::Ordering::SeqCst;
                self.wakes.fetch_add(1, SeqCst);
                let waker = Waker::from(self.clone());
                let ready = self.conn.poll_drain(&mut Context::from_waker(&waker));
                self.ready.store(ready.is_ready(), SeqCst);
            }
        }
        let shutdown = crate::Shutdown::new();
        let task = Arc::new(PollsAgainWhenWoken {
            conn: shutdown.connection(None),
            wakes: 0.into(),
            ready: false.into(),
        });
        let waker = Waker::from(task.clone());
        assert!(task
            .conn
            .poll_drain(&mut Context::from_waker(&waker))
            .is_pending());
        shutdown.stop_token().fire();
        use std::sync::atomic::Ordering::SeqCst;
        assert_eq!(task.wakes.load(SeqCst), 1);
        assert!(
            task.ready.load(SeqCst),
            "ready on the stop, before the drain fired"
        );
        // The record holds no waker of the task any more: the cycle is gone.
        assert!(task.conn.take_waker().is_none());
    }

    /// A waker replaced by a poll from another task is dropped after the
    /// record's lock is released: dropping a waker runs the runtime's code,
    /// which may drop a task that touches the same record.
    #[test]
    fn a_replaced_waker_is_dropped_outside_the_records_lock() {
        struct TouchesTheRecordWhenDropped {
            info: crate::Entry<super::ConnInfo>,
            lock_was_free: Arc<std::sync::atomic::AtomicBool>,
        }
        impl std::task::Wake for TouchesTheRecordWhenDropped {
            fn wake(self: Arc<Self>) {}
        }
        impl Drop for TouchesTheRecordWhenDropped {
            fn drop(&mut self) {
                let free = self.info.live.try_lock().is_ok();
                self.lock_was_free
                    .store(free, std::sync::atomic::Ordering::SeqCst);
            }
        }
        let shutdown = crate::Shutdown::new();
        let conn = shutdown.connection(None);
        let lock_was_free = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let first = Waker::from(Arc::new(TouchesTheRecordWhenDropped {
            info: conn.info(),
            lock_was_free: lock_was_free.clone(),
        }));
        assert!(conn
            .poll_drain(&mut Context::from_waker(&first))
            .is_pending());
        drop(first); // the record now holds the only reference
        let (_, second) = counting_waker();
        assert!(conn
            .poll_drain(&mut Context::from_waker(&second))
            .is_pending());
        assert!(lock_was_free.load(std::sync::atomic::Ordering::SeqCst));
    }

    /// A connection that closes lets go of its task's waker, though its
    /// record lives on in a handler's handle.
    #[test]
    fn a_closed_connection_lets_go_of_its_waker() {
        let shutdown = crate::Shutdown::new();
        let conn = shutdown.connection(None);
        let info = conn.info();
        let (count, waker) = counting_waker();
        assert!(conn
            .poll_drain(&mut Context::from_waker(&waker))
            .is_pending());
        assert_eq!(
            Arc::strong_count(&count),
            3,
            "ours, the waker, the record's"
        );
        drop(conn);
        assert_eq!(Arc::strong_count(&count), 2);
        drop(info);
    }
}
