//! The floor of the drain benchmark (issue 6, item 1): the least work a
//! server can do to drain idle HTTP/2 connections in the issue's five calls
//! per connection, to measure how much of a drain's CPU a server making
//! those calls cannot save.
//!
//! ```text
//! floor_server [--listen 127.0.0.1:0]
//! ```
//!
//! First line on stdout: `listening on ADDR`. One thread does all the work
//! on the sockets, on one edge-triggered epoll, with no runtime and no h2 (a
//! second thread only waits for the signal, through async-signal, whose
//! reactor thread stays idle): frames are written and parsed by
//! hand (`winddown_benches::frames`). A connection gets the server's empty
//! SETTINGS at accept and an ACK of each SETTINGS and PING it sends; it is
//! held idle. On SIGTERM or SIGINT the listener closes and every connection
//! gets, as in a winddown or grpc-go drain:
//!
//! 1. GOAWAY (last-stream-id 2^31-1) and a PING, in one `write`;
//! 2. on the PING's ACK (one `read`), the final GOAWAY (one `write`);
//! 3. on the client's EOF (one `read`), `close`, which also takes the socket
//!    out of the epoll (no `epoll_ctl(DEL)`).
//!
//! That is the issue's floor, five system calls per connection, plus the
//! `epoll_wait`s shared by every connection that turned ready together. A
//! read that returns less than it was offered is the last until the next
//! edge (no `EAGAIN` read), unless the event also reported the peer's FIN
//! or an error: a read that stops at a FIN is short too, and no later edge
//! would announce the EOF. When every connection is closed it prints
//! `shutdown: graceful in X ms; drained N, forced 0` (the line
//! `benches/drain.sh` reads from `echo_server`) and exits.
//!
//! It is a measuring stick, not a server: no streams are served (a client
//! that opens one gets no answer), there are no timeouts, and a write that
//! would block (never, for frames this small on an idle connection) closes
//! the connection, counted as forced.

use std::io::{self, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::process::ExitCode;
use std::time::Instant;

use rustix::buffer::spare_capacity;
use rustix::event::epoll::{self, EventData, EventFlags};
use winddown_benches::frames::{self, Frame, ACK, HEADERS, MAX_STREAM_ID, PING, PREFACE, SETTINGS};

const USAGE: &str = "usage: floor_server [--listen ADDR]";
/// The epoll keys of the listener and of the signal's pipe; a connection's
/// key is its slot in the table.
const LISTENER: u64 = u64::MAX;
const SIGNAL: u64 = u64::MAX - 1;
/// What the drain's PING carries, to know its ACK.
const DRAIN_PING: [u8; 8] = *b"floor-01";

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Phase {
    /// Waiting for the client's preface.
    Preface,
    /// Idle, answering SETTINGS and PINGs.
    Open,
    /// GOAWAY and PING sent: waiting for the PING's ACK.
    Draining,
    /// The final GOAWAY sent: waiting for the client's EOF.
    Lingering,
}

struct Conn {
    stream: TcpStream,
    phase: Phase,
    /// Bytes of a frame not yet whole.
    pending: Vec<u8>,
    /// The highest stream the client opened (named by the final GOAWAY).
    last_stream: u32,
}

/// What an event on a connection asks the loop to do with it.
enum Next {
    Keep,
    /// The client closed: a drained connection.
    Closed,
    /// A protocol or I/O error: closed, counted as forced.
    Failed(String),
}

struct Server {
    epoll: rustix::fd::OwnedFd,
    listener: Option<TcpListener>,
    conns: Vec<Option<Conn>>,
    free: Vec<usize>,
    open: usize,
    stop: Option<Instant>,
    drained: usize,
    forced: usize,
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("floor_server: {message}");
            ExitCode::FAILURE
        }
    }
}

fn parse_args() -> Result<SocketAddr, String> {
    let mut listen: SocketAddr = ([127, 0, 0, 1], 0).into();
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        match (flag.as_str(), args.next()) {
            ("--listen", Some(v)) => {
                listen = v.parse().map_err(|e| format!("bad --listen: {e}"))?
            }
            _ => return Err(USAGE.into()),
        }
    }
    Ok(listen)
}

fn run() -> Result<(), String> {
    let addr = parse_args()?;
    let listener = TcpListener::bind(addr).map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    listener.set_nonblocking(true).map_err(|e| e.to_string())?;
    let signal = signal_pipe().map_err(|e| format!("cannot watch signals: {e}"))?;
    let epoll = epoll::create(epoll::CreateFlags::CLOEXEC).map_err(|e| e.to_string())?;
    let edge = EventFlags::IN | EventFlags::ET;
    epoll::add(&epoll, &listener, EventData::new_u64(LISTENER), edge).map_err(|e| e.to_string())?;
    epoll::add(&epoll, &signal, EventData::new_u64(SIGNAL), edge).map_err(|e| e.to_string())?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    println!("listening on {local}");
    io::stdout().flush().map_err(|e| e.to_string())?;

    let mut server = Server {
        epoll,
        listener: Some(listener),
        conns: Vec::new(),
        free: Vec::new(),
        open: 0,
        stop: None,
        drained: 0,
        forced: 0,
    };
    let mut events = Vec::with_capacity(1024);
    loop {
        events.clear();
        match epoll::wait(&server.epoll, spare_capacity(&mut events), None) {
            Ok(_) => {}
            // The signal's handler ran on this thread: its byte is on the way.
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(format!("epoll_wait: {e}")),
        }
        for event in &events {
            match event.data.u64() {
                LISTENER => server.accept_all(),
                SIGNAL => server.start_drain(),
                key => {
                    let ended = EventFlags::RDHUP | EventFlags::HUP | EventFlags::ERR;
                    // Copied out: the event is a packed struct.
                    let flags = event.flags;
                    server.on_ready(key as usize, flags.intersects(ended));
                }
            }
        }
        if let Some(started) = server.stop.filter(|_| server.open == 0) {
            let kind = if server.forced == 0 {
                "graceful"
            } else {
                "forced"
            };
            println!(
                "shutdown: {kind} in {:.3} ms; drained {}, forced {}",
                started.elapsed().as_secs_f64() * 1e3,
                server.drained,
                server.forced
            );
            return io::stdout().flush().map_err(|e| e.to_string());
        }
    }
}

/// A socket that turns readable when SIGTERM or SIGINT arrives: a thread
/// waits for the signal and writes one byte.
fn signal_pipe() -> io::Result<UnixStream> {
    use async_signal::{Signal, Signals};
    use futures_lite::StreamExt;
    let mut signals = Signals::new([Signal::Term, Signal::Int])?;
    let (mut tell, watched) = UnixStream::pair()?;
    watched.set_nonblocking(true)?;
    std::thread::spawn(move || {
        smol::block_on(signals.next());
        let _ = tell.write_all(b"!");
        // Kept open, so the pipe never reads as closed.
        std::mem::forget(tell);
    });
    Ok(watched)
}

impl Server {
    fn accept_all(&mut self) {
        loop {
            let Some(listener) = &self.listener else {
                return;
            };
            match listener.accept() {
                Ok((stream, _)) => self.add(stream),
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => {
                    // Out of descriptors, say: the edge will come again with the next client.
                    eprintln!("floor_server: accept: {e}");
                    return;
                }
            }
        }
    }

    fn add(&mut self, stream: TcpStream) {
        let mut settings = Vec::with_capacity(9);
        frames::header(&mut settings, 0, SETTINGS, 0, 0);
        let ready = stream
            .set_nonblocking(true)
            .and_then(|()| stream.set_nodelay(true))
            .and_then(|()| write_frames(&stream, &settings));
        if let Err(e) = ready {
            eprintln!("floor_server: a new connection failed: {e}");
            return;
        }
        let slot = self.free.last().copied().unwrap_or(self.conns.len());
        let flags = EventFlags::IN | EventFlags::RDHUP | EventFlags::ET;
        if let Err(e) = epoll::add(&self.epoll, &stream, EventData::new_u64(slot as u64), flags) {
            eprintln!("floor_server: epoll_ctl(ADD): {e}");
            return;
        }
        if slot < self.conns.len() {
            self.free.pop();
        }
        let conn = Conn {
            stream,
            phase: Phase::Preface,
            pending: Vec::new(),
            last_stream: 0,
        };
        if slot == self.conns.len() {
            self.conns.push(Some(conn));
        } else {
            self.conns[slot] = Some(conn);
        }
        self.open += 1;
    }

    fn start_drain(&mut self) {
        if self.stop.is_some() {
            return;
        }
        self.stop = Some(Instant::now());
        self.listener = None; // closed: no new connection
        let mut heads_up = Vec::with_capacity(34);
        frames::goaway(&mut heads_up, MAX_STREAM_ID);
        frames::ping(&mut heads_up, 0, DRAIN_PING);
        for slot in 0..self.conns.len() {
            let Some(conn) = &mut self.conns[slot] else {
                continue;
            };
            let next = match conn.phase {
                Phase::Open => match write_frames(&conn.stream, &heads_up) {
                    Ok(()) => {
                        conn.phase = Phase::Draining;
                        Next::Keep
                    }
                    Err(e) => Next::Failed(format!("writing the GOAWAY: {e}")),
                },
                // Not yet an HTTP/2 connection: nothing to drain.
                _ => Next::Failed("closed before its preface".into()),
            };
            self.settle(slot, next);
        }
    }

    /// `ended`: the event reported the peer's FIN or an error.
    fn on_ready(&mut self, slot: usize, ended: bool) {
        let Some(Some(conn)) = self.conns.get_mut(slot) else {
            return;
        };
        let next = conn.read_and_answer(ended);
        self.settle(slot, next);
    }

    /// Closes the connection unless `next` keeps it, and counts it.
    fn settle(&mut self, slot: usize, next: Next) {
        match next {
            Next::Keep => return,
            Next::Closed if self.stop.is_some() => self.drained += 1,
            Next::Closed => {}
            Next::Failed(why) => {
                eprintln!("floor_server: connection {slot} closed: {why}");
                if self.stop.is_some() {
                    self.forced += 1;
                }
            }
        }
        // Dropping the stream closes it, which also takes it out of the epoll.
        self.conns[slot] = None;
        self.free.push(slot);
        self.open -= 1;
    }
}

impl Conn {
    /// Reads what the edge announced and answers it; with `ended`, on past
    /// a short read, until the EOF or the error.
    fn read_and_answer(&mut self, ended: bool) -> Next {
        let mut buf = [0u8; 4096];
        loop {
            let n = match self.stream.read(&mut buf) {
                Ok(0) => return Next::Closed,
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Next::Keep,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Next::Failed(format!("read: {e}")),
            };
            self.pending.extend_from_slice(&buf[..n]);
            if let Err(why) = self.answer() {
                return Next::Failed(why);
            }
            // Less than offered: the socket is empty until the next edge.
            if n < buf.len() && !ended {
                return Next::Keep;
            }
        }
    }

    /// Consumes the whole frames in `pending`, answering each.
    fn answer(&mut self) -> Result<(), String> {
        if self.phase == Phase::Preface {
            if self.pending.len() < PREFACE.len() {
                return Ok(());
            }
            if !self.pending.starts_with(PREFACE) {
                return Err("not an HTTP/2 preface".into());
            }
            self.pending.drain(..PREFACE.len());
            self.phase = Phase::Open;
        }
        let mut used = 0;
        let mut out = Vec::new();
        while let Some((frame, len)) = Frame::parse(&self.pending[used..]) {
            used += len;
            match frame.ty {
                HEADERS => self.last_stream = self.last_stream.max(frame.stream),
                SETTINGS if !frame.is_ack() => frames::header(&mut out, 0, SETTINGS, ACK, 0),
                PING if !frame.is_ack() => frames::ping(&mut out, ACK, frame.head),
                PING if frame.head == DRAIN_PING && self.phase == Phase::Draining => {
                    frames::goaway(&mut out, self.last_stream);
                    self.phase = Phase::Lingering;
                }
                // Nothing else needs an answer (a client's GOAWAY: its EOF follows).
                _ => {}
            }
        }
        self.pending.drain(..used);
        if out.is_empty() {
            return Ok(());
        }
        write_frames(&self.stream, &out).map_err(|e| format!("write: {e}"))
    }
}

/// One `write` of `bytes`, which must take all of them: a floor server never
/// waits to write.
fn write_frames(mut stream: &TcpStream, bytes: &[u8]) -> io::Result<()> {
    loop {
        match stream.write(bytes) {
            Ok(n) if n == bytes.len() => return Ok(()),
            Ok(n) => {
                return Err(io::Error::other(format!(
                    "short write: {n} of {} bytes",
                    bytes.len()
                )))
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
}
