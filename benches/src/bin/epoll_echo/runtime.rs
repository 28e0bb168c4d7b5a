//! A minimal runtime for one thread: a FIFO queue of tasks, a table of
//! timers, and one edge-triggered epoll for the sockets, waited on when the
//! queue is empty (and looked at, without waiting, after every 61 polls).
//! It implements [`winddown::http2::Runtime`] and
//! [`winddown::http2::Listener`], so the server runs on it unchanged.
//!
//! What it does not do, on purpose, is what tokio and async-io do and the
//! drain benchmark counts:
//! - no `epoll_ctl` after a socket is added: edge-triggered interest is
//!   never re-armed (async-io registers one-shot and re-arms each wait), and
//!   a closed socket leaves the epoll by itself (tokio and async-io both
//!   deregister it first, with `epoll_ctl(DEL)`);
//! - no thread but this one touches a socket or a task: a task woken by an
//!   event runs on the thread that saw the event, with no hand-off (async-io
//!   has a reactor thread wake an executor thread) and no second executor
//!   thread to wake (both runtimes run one per core here, which is where
//!   their `futex` calls go);
//! - no `EAGAIN` read after a short one: a read that returned less than it
//!   was offered emptied the socket, and the next one waits for the edge
//!   (unless the peer's FIN was already reported: no edge would follow).
//!
//! It is a measuring instrument, not a general runtime: everything is polled
//! on the thread that calls [`EpollRuntime::block_on`], and a waker may be
//! called from any thread (the signal's, here), which writes an eventfd only
//! when the loop is parked in `epoll_wait`. The socket types assume they are
//! polled on that thread: readiness is set by the loop between polls, so a
//! read's `EAGAIN` and the edge that follows it cannot cross.

use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use rustix::buffer::spare_capacity;
use rustix::event::epoll::{self, EventData, EventFlags};
use rustix::event::{eventfd, EventfdFlags, Timespec};
use rustix::fd::OwnedFd;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The epoll key of the eventfd that wakes a parked loop; a socket's key is
/// its slot in the table.
const WAKE: u64 = u64::MAX;
/// Task polls between two looks at the epoll and the timers, as tokio's
/// `event_interval`: a task that keeps waking itself (a connection
/// discarding a fast peer's bytes yields after each read) must not starve
/// the other sockets and the timers.
const POLLS_PER_TURN: usize = 61;
/// The longest `epoll_wait`: a timer further away than epoll's millisecond
/// timeout can say (24.8 days) would need `epoll_pwait2`.
const LONGEST_WAIT: Duration = Duration::from_secs(3600);

type Task = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A handle on the runtime: cheap to clone, usable from any thread to spawn.
#[derive(Clone)]
pub struct EpollRuntime {
    shared: Arc<Shared>,
}

struct Shared {
    epoll: OwnedFd,
    wake: OwnedFd,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    queue: VecDeque<Arc<Spawned>>,
    /// The loop is in (or about to enter) `epoll_wait`: a wake-up from
    /// another thread must write the eventfd.
    parked: bool,
    timers: BTreeMap<(Instant, u64), Waker>,
    next_timer: u64,
    sockets: Vec<Option<Arc<Readiness>>>,
    free: Vec<usize>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A spawned task: its future, and whether it is in the queue already.
struct Spawned {
    future: Mutex<Option<Task>>,
    queued: AtomicBool,
    shared: Arc<Shared>,
}

impl Wake for Spawned {
    fn wake(self: Arc<Self>) {
        if !self.queued.swap(true, Ordering::AcqRel) {
            let shared = self.shared.clone();
            shared.schedule(self);
        }
    }
}

impl Shared {
    fn schedule(&self, task: Arc<Spawned>) {
        let mut state = lock(&self.state);
        state.queue.push_back(task);
        if std::mem::take(&mut state.parked) {
            drop(state);
            // Only a wake-up from another thread finds the loop parked.
            let _ = rustix::io::write(&self.wake, &1u64.to_ne_bytes());
        }
    }
}

impl EpollRuntime {
    /// A runtime with its epoll and its eventfd.
    pub fn new() -> io::Result<Self> {
        let epoll = epoll::create(epoll::CreateFlags::CLOEXEC)?;
        let wake = eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)?;
        epoll::add(
            &epoll,
            &wake,
            EventData::new_u64(WAKE),
            EventFlags::IN | EventFlags::ET,
        )?;
        Ok(Self {
            shared: Arc::new(Shared {
                epoll,
                wake,
                state: Mutex::new(State::default()),
            }),
        })
    }

    /// Runs the tasks and `main` on this thread until `main` finishes.
    pub fn block_on<F: Future + Send + 'static>(&self, main: F) -> io::Result<F::Output>
    where
        F::Output: Send,
    {
        let output = Arc::new(Mutex::new(None));
        let slot = output.clone();
        winddown::http2::Runtime::spawn(self, async move {
            let value = main.await;
            *lock(&slot) = Some(value);
        });
        let mut events = Vec::with_capacity(1024);
        loop {
            self.run_queue();
            if let Some(value) = lock(&output).take() {
                return Ok(value);
            }
            let next_timer = self.fire_timers();
            let wait = {
                let mut state = lock(&self.shared.state);
                if state.queue.is_empty() {
                    state.parked = true;
                    next_timer.map_or(LONGEST_WAIT, |after| after.min(LONGEST_WAIT))
                } else {
                    // Tasks are waiting: look at the sockets without sleeping.
                    Duration::ZERO
                }
            };
            events.clear();
            let timeout = Timespec {
                tv_sec: wait.as_secs() as i64,
                tv_nsec: i64::from(wait.subsec_nanos()),
            };
            let waited = epoll::wait(
                &self.shared.epoll,
                spare_capacity(&mut events),
                Some(&timeout),
            );
            lock(&self.shared.state).parked = false;
            match waited {
                Ok(_) => {}
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(e.into()),
            }
            for event in &events {
                // Copied out: the event is a packed struct.
                let (key, flags) = (event.data.u64(), event.flags);
                if key == WAKE {
                    let mut count = [0u8; 8];
                    let _ = rustix::io::read(&self.shared.wake, &mut count);
                    continue;
                }
                let socket = lock(&self.shared.state)
                    .sockets
                    .get(key as usize)
                    .cloned()
                    .flatten();
                if let Some(socket) = socket {
                    socket.on_event(flags);
                }
            }
        }
    }

    /// Polls queued tasks, at most [`POLLS_PER_TURN`] of them.
    fn run_queue(&self) {
        for _ in 0..POLLS_PER_TURN {
            let Some(task) = lock(&self.shared.state).queue.pop_front() else {
                return;
            };
            // Before the poll: a wake-up during it queues the task again.
            task.queued.store(false, Ordering::Release);
            let waker = Waker::from(task.clone());
            let mut future = lock(&task.future);
            if let Some(running) = future.as_mut() {
                let mut cx = Context::from_waker(&waker);
                // A task that panics ends alone, as on tokio and smol.
                match catch_unwind(AssertUnwindSafe(|| running.as_mut().poll(&mut cx))) {
                    Ok(Poll::Pending) => {}
                    Ok(Poll::Ready(())) => *future = None,
                    Err(_) => {
                        eprintln!("epoll_echo: a task panicked; it is dropped");
                        *future = None;
                    }
                }
            }
        }
    }

    /// Wakes the timers that are due; how long until the next one.
    fn fire_timers(&self) -> Option<Duration> {
        let now = Instant::now();
        let mut due = Vec::new();
        let next = {
            let mut state = lock(&self.shared.state);
            while let Some(entry) = state.timers.first_entry() {
                if entry.key().0 > now {
                    break;
                }
                due.push(entry.remove());
            }
            state.timers.keys().next().map(|(at, _)| *at - now)
        };
        due.into_iter().for_each(Waker::wake);
        next
    }

    fn register(&self, fd: impl rustix::fd::AsFd, interest: EventFlags) -> io::Result<Socket> {
        let readiness = Arc::new(Readiness::new());
        let mut state = lock(&self.shared.state);
        let slot = state.free.pop().unwrap_or(state.sockets.len());
        let flags = interest | EventFlags::RDHUP | EventFlags::ET;
        if let Err(e) = epoll::add(
            &self.shared.epoll,
            fd,
            EventData::new_u64(slot as u64),
            flags,
        ) {
            state.free.push(slot);
            return Err(e.into());
        }
        if slot == state.sockets.len() {
            state.sockets.push(None);
        }
        state.sockets[slot] = Some(readiness.clone());
        Ok(Socket {
            readiness,
            slot,
            shared: self.shared.clone(),
        })
    }
}

impl winddown::http2::Runtime for EpollRuntime {
    type Sleep = Sleep;

    fn spawn<F: Future<Output = ()> + Send + 'static>(&self, task: F) {
        let spawned = Arc::new(Spawned {
            future: Mutex::new(Some(Box::pin(task))),
            queued: AtomicBool::new(true),
            shared: self.shared.clone(),
        });
        self.shared.schedule(spawned);
    }

    fn sleep(&self, duration: Duration) -> Sleep {
        Sleep {
            // Beyond what an `Instant` can hold: never.
            at: Instant::now().checked_add(duration),
            key: None,
            shared: self.shared.clone(),
        }
    }
}

/// A timer of [`EpollRuntime`].
pub struct Sleep {
    at: Option<Instant>,
    /// Its entry in the table, once it has waited.
    key: Option<(Instant, u64)>,
    shared: Arc<Shared>,
}

impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let Some(at) = self.at else {
            return Poll::Pending;
        };
        if Instant::now() >= at {
            // The entry's waker is dropped after the lock (as every waker
            // here): it may hold the last reference to a task, whose timers
            // and sockets lock the state as they go.
            let key = self.key.take();
            let _fired = key.and_then(|key| lock(&self.shared.state).timers.remove(&key));
            return Poll::Ready(());
        }
        let mut state = lock(&self.shared.state);
        let key = match self.key {
            Some(key) => key,
            None => {
                state.next_timer += 1;
                (at, state.next_timer)
            }
        };
        let _replaced = state.timers.insert(key, cx.waker().clone());
        drop(state);
        self.key = Some(key);
        Poll::Pending
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        if let Some(key) = self.key {
            let _unfired = lock(&self.shared.state).timers.remove(&key);
        }
    }
}

/// What the loop last saw of a socket, and who waits for it.
struct Readiness(Mutex<ReadinessState>);

struct ReadinessState {
    /// Reading, then writing.
    halves: [Half; 2],
    /// The peer's FIN or an error was reported: no edge will follow it.
    ended: bool,
}

/// One direction of a socket.
struct Half {
    ready: bool,
    waiter: Option<Waker>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Direction {
    Read = 0,
    Write = 1,
}

impl Readiness {
    /// Ready both ways: a socket's first read or write (or accept) finds
    /// out, and its `EAGAIN` waits for the next edge.
    fn new() -> Self {
        let half = || Half {
            ready: true,
            waiter: None,
        };
        Self(Mutex::new(ReadinessState {
            halves: [half(), half()],
            ended: false,
        }))
    }

    fn on_event(&self, flags: EventFlags) {
        let failed = EventFlags::HUP | EventFlags::ERR;
        let woken = {
            let mut state = lock(&self.0);
            state.ended |= flags.intersects(EventFlags::RDHUP | failed);
            let mut wake = |direction: Direction, reported: EventFlags| {
                let half = &mut state.halves[direction as usize];
                flags.intersects(reported | failed).then(|| {
                    half.ready = true;
                    half.waiter.take()
                })
            };
            [
                wake(Direction::Read, EventFlags::IN | EventFlags::RDHUP),
                wake(Direction::Write, EventFlags::OUT),
            ]
        };
        woken.into_iter().flatten().flatten().for_each(Waker::wake);
    }

    /// Ready in `direction`; else the waker is kept for the next edge.
    fn poll_ready(&self, direction: Direction, cx: &Context<'_>) -> Poll<()> {
        let mut state = lock(&self.0);
        let half = &mut state.halves[direction as usize];
        if half.ready {
            return Poll::Ready(());
        }
        // Dropped after the lock (as every waker here): it may hold the
        // last reference to a task, whose timers and sockets lock the state.
        let _replaced = half.waiter.replace(cx.waker().clone());
        drop(state);
        Poll::Pending
    }

    /// Nothing more until the next edge in `direction`: after `EAGAIN`
    /// (`would_block`, and the waker is kept), or after a short read, unless
    /// the peer's FIN was reported (no edge would follow; reads return 0).
    fn drained(&self, direction: Direction, cx: &Context<'_>, would_block: bool) {
        let mut state = lock(&self.0);
        let ended = state.ended;
        let half = &mut state.halves[direction as usize];
        if would_block || !ended {
            half.ready = false;
        }
        let _replaced = would_block.then(|| half.waiter.replace(cx.waker().clone()));
        drop(state);
    }
}

/// A socket's place in the loop's table; leaving it frees the slot (the
/// descriptor's close, after, takes it out of the epoll).
struct Socket {
    readiness: Arc<Readiness>,
    slot: usize,
    shared: Arc<Shared>,
}

impl Drop for Socket {
    fn drop(&mut self) {
        let mut state = lock(&self.shared.state);
        let _left = state.sockets[self.slot].take();
        state.free.push(self.slot);
        drop(state);
    }
}

/// A listener on [`EpollRuntime`].
pub struct EpollListener {
    // Declared first, dropped first: the slot is freed before the close.
    socket: Socket,
    listener: TcpListener,
}

impl EpollListener {
    /// Listens on `addr`.
    pub fn bind(runtime: &EpollRuntime, addr: SocketAddr) -> io::Result<Self> {
        let listener = TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        let socket = runtime.register(&listener, EventFlags::IN)?;
        Ok(Self { socket, listener })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    fn poll_accept(&mut self, cx: &Context<'_>) -> Poll<io::Result<(EpollStream, SocketAddr)>> {
        loop {
            if self
                .socket
                .readiness
                .poll_ready(Direction::Read, cx)
                .is_pending()
            {
                return Poll::Pending;
            }
            match self.listener.accept() {
                Ok((stream, peer)) => {
                    let runtime = EpollRuntime {
                        shared: self.socket.shared.clone(),
                    };
                    return Poll::Ready(EpollStream::new(&runtime, stream).map(|s| (s, peer)));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.socket.readiness.drained(Direction::Read, cx, true)
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl winddown::http2::Listener for EpollListener {
    type Io = EpollStream;

    async fn accept(&mut self) -> io::Result<(EpollStream, Option<SocketAddr>)> {
        let (stream, peer) = std::future::poll_fn(|cx| self.poll_accept(cx)).await?;
        Ok((stream, Some(peer)))
    }
}

/// A TCP stream on [`EpollRuntime`], speaking tokio's I/O traits (h2's).
pub struct EpollStream {
    // Declared first, dropped first: the slot is freed before the close.
    socket: Socket,
    stream: TcpStream,
}

impl EpollStream {
    fn new(runtime: &EpollRuntime, stream: TcpStream) -> io::Result<Self> {
        stream.set_nonblocking(true)?;
        stream.set_nodelay(true)?;
        let socket = runtime.register(&stream, EventFlags::IN | EventFlags::OUT)?;
        Ok(Self { socket, stream })
    }

    fn poll_io<T>(
        &mut self,
        cx: &Context<'_>,
        direction: Direction,
        mut io: impl FnMut(&mut TcpStream) -> io::Result<T>,
    ) -> Poll<io::Result<T>> {
        let readiness = &self.socket.readiness;
        loop {
            if readiness.poll_ready(direction, cx).is_pending() {
                return Poll::Pending;
            }
            match io(&mut self.stream) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    readiness.drained(direction, cx, true)
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                done => return Poll::Ready(done),
            }
        }
    }
}

impl AsyncRead for EpollStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let offered = buf.remaining();
        let this = &mut *self;
        let read = std::task::ready!(this.poll_io(cx, Direction::Read, |stream| stream
            .read(buf.initialize_unfilled())))?;
        buf.advance(read);
        if read > 0 && read < offered {
            this.socket.readiness.drained(Direction::Read, cx, false);
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for EpollStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_io(cx, Direction::Write, |stream| stream.write(buf))
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.poll_io(cx, Direction::Write, |stream| stream.write_vectored(bufs))
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(self.stream.shutdown(Shutdown::Write))
    }
}
