//! A lean HTTP/2 client for the drain benchmark (issue 6, item 1): it holds K
//! idle connections over raw frames on ONE thread, so that what a drain costs
//! shows on the server's side and not in a heavy client.
//!
//! ```text
//! lean_client --addr 127.0.0.1:PORT --conns K [--rpc] [--parallel 100] [--timeout 60s]
//! ```
//!
//! Per connection: TCP connect, the preface and an empty SETTINGS, an ACK of
//! the server's SETTINGS, and with `--rpc` one unary gRPC call
//! (`/echo.Echo/Say`, served by both `echo_server` and grpc-go's `grpcsrv`)
//! answered before the connection counts as ready. Once all K are ready it
//! prints `READY K SETUP_MS`. From then on every SETTINGS and PING is ACKed at
//! once, and a GOAWAY whose last-stream-id is not 2^31-1 (the final one) ends
//! the connection: its time is taken and the socket closed.
//!
//! The instant to measure from comes on stdin, as one line with the seconds
//! since the Unix epoch (`$EPOCHREALTIME` in bash, `time.time()` in Python),
//! written by whoever sent the signal to the server. When every connection
//! has seen its final GOAWAY (or its close, or the timeout passed) it prints
//!
//! ```text
//! DONE conns=K goaway=K eof=0 error=0 timeout=0 first_us=.. median_us=.. last_us=.. client_cpu_us=..
//! ```
//!
//! with the times counted from that instant, and the client's own CPU time
//! from READY to DONE (its thread's run time from `/proc/self/schedstat`).
//!
//! One thread, one epoll: a tokio current-thread runtime (edge-triggered, no
//! re-arming per event), a task per connection. Raise `ulimit -n` for large K.

use std::io::{self, BufRead, Write};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use winddown_benches::frames::{
    self, Frame, ACK, DATA, END_HEADERS, END_STREAM, GOAWAY, HEADERS, MAX_STREAM_ID, PING, PREFACE,
    RST_STREAM, SETTINGS,
};

const USAGE: &str =
    "usage: lean_client --addr ADDR --conns K [--rpc] [--parallel N] [--timeout SECS]";

struct Options {
    addr: SocketAddr,
    conns: usize,
    rpc: bool,
    parallel: usize,
    timeout: Duration,
}

fn parse_args() -> Result<Options, String> {
    let mut addr = None;
    let mut conns = None;
    let mut rpc = false;
    let mut parallel = 100;
    let mut timeout = Duration::from_secs(60);
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "--rpc" {
            rpc = true;
            continue;
        }
        if flag == "--help" || flag == "-h" {
            return Err(USAGE.into());
        }
        let value = args
            .next()
            .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
        let bad = |e: &dyn std::fmt::Display| format!("bad {flag} {value:?}: {e}");
        match flag.as_str() {
            "--addr" => addr = Some(value.parse::<SocketAddr>().map_err(|e| bad(&e))?),
            "--conns" => conns = Some(value.parse::<usize>().map_err(|e| bad(&e))?),
            "--parallel" => parallel = value.parse::<usize>().map_err(|e| bad(&e))?.max(1),
            "--timeout" => {
                let secs = value.trim_end_matches('s').parse::<f64>();
                timeout = Duration::from_secs_f64(secs.map_err(|e| bad(&e))?);
            }
            _ => return Err(format!("unknown flag {flag}\n{USAGE}")),
        }
    }
    Ok(Options {
        addr: addr.ok_or_else(|| format!("--addr is required\n{USAGE}"))?,
        conns: conns.ok_or_else(|| format!("--conns is required\n{USAGE}"))?,
        rpc,
        parallel,
        timeout,
    })
}

/// HPACK string literal, no Huffman (every value here is < 127 bytes).
fn hpack_string(out: &mut Vec<u8>, s: &str) {
    out.push(s.len() as u8);
    out.extend_from_slice(s.as_bytes());
}

/// What a connection sends first: the preface, an empty SETTINGS and, with
/// `rpc`, a unary gRPC call on stream 1 (HEADERS + one DATA with END_STREAM).
fn hello(rpc: bool, authority: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(160);
    out.extend_from_slice(PREFACE);
    frames::header(&mut out, 0, SETTINGS, 0, 0);
    if rpc {
        // Literals without indexing, so the server's decoder keeps no state of ours.
        let mut block = vec![0x83, 0x86]; // :method POST, :scheme http (static 3, 6)
        block.push(0x04); // :path (static name 4)
        hpack_string(&mut block, "/echo.Echo/Say");
        block.push(0x01); // :authority (static name 1)
        hpack_string(&mut block, authority);
        block.extend_from_slice(&[0x0f, 0x10]); // content-type (static name 31)
        hpack_string(&mut block, "application/grpc");
        block.push(0x00); // a new name
        hpack_string(&mut block, "te");
        hpack_string(&mut block, "trailers");
        frames::header(&mut out, block.len(), HEADERS, END_HEADERS, 1);
        out.extend_from_slice(&block);
        let message = b"\x00\x00\x00\x00\x04warm"; // uncompressed, length 4
        frames::header(&mut out, message.len(), DATA, END_STREAM, 1);
        out.extend_from_slice(message);
    }
    out
}

struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    /// The next whole frame; `None` on EOF.
    async fn next_frame(&mut self) -> io::Result<Option<Frame>> {
        loop {
            if let Some((frame, used)) = Frame::parse(&self.buf) {
                self.buf.drain(..used);
                return Ok(Some(frame));
            }
            let mut chunk = [0u8; 512];
            let n = self.stream.read(&mut chunk).await?;
            if n == 0 {
                return Ok(None);
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// ACKs a SETTINGS or a PING at once; other frames need no answer.
    async fn answer(&mut self, frame: &Frame) -> io::Result<()> {
        let mut out = Vec::with_capacity(17);
        match frame.ty {
            SETTINGS if !frame.is_ack() => frames::header(&mut out, 0, SETTINGS, ACK, 0),
            PING if !frame.is_ack() => frames::ping(&mut out, ACK, frame.head),
            _ => return Ok(()),
        }
        self.stream.write_all(&out).await
    }
}

fn protocol(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_string())
}

/// Connects and handshakes; with `rpc`, also waits for the call's answer.
async fn open(addr: SocketAddr, rpc: bool) -> io::Result<Conn> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let mut conn = Conn {
        stream,
        buf: Vec::with_capacity(256),
    };
    conn.stream
        .write_all(&hello(rpc, &addr.to_string()))
        .await?;
    let (mut settings, mut answered) = (false, !rpc);
    while !(settings && answered) {
        let Some(frame) = conn.next_frame().await? else {
            return Err(protocol("EOF during the handshake"));
        };
        conn.answer(&frame).await?;
        match frame.ty {
            SETTINGS if !frame.is_ack() => settings = true,
            HEADERS | DATA if frame.stream == 1 && frame.flags & END_STREAM != 0 => answered = true,
            RST_STREAM if frame.stream == 1 => return Err(protocol("the call was reset")),
            GOAWAY => return Err(protocol("GOAWAY during the handshake")),
            _ => {}
        }
    }
    Ok(conn)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Outcome {
    FinalGoaway,
    Eof,
    Error,
}

/// Holds the connection idle, answering at once, until the final GOAWAY or
/// the close; returns when that was seen. Dropping `conn` closes the socket.
async fn hold(mut conn: Conn) -> (Outcome, SystemTime) {
    loop {
        match conn.next_frame().await {
            Ok(Some(frame)) => {
                if frame.ty == GOAWAY && frame.goaway_last_stream() != MAX_STREAM_ID {
                    return (Outcome::FinalGoaway, SystemTime::now());
                }
                if conn.answer(&frame).await.is_err() {
                    return (Outcome::Error, SystemTime::now());
                }
            }
            Ok(None) => return (Outcome::Eof, SystemTime::now()),
            Err(_) => return (Outcome::Error, SystemTime::now()),
        }
    }
}

/// This thread's CPU time so far (the runtime runs on the main thread).
fn thread_cpu() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns = stat.split_whitespace().next()?.parse::<u64>().ok()?;
    Some(Duration::from_nanos(ns))
}

fn main() -> ExitCode {
    let options = match parse_args() {
        Ok(options) => options,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    // The instant to measure from arrives on stdin, at any time after READY.
    let (tx, signal_at) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = io::stdin().lock().read_line(&mut line);
        let _ = tx.send(line.trim().parse::<f64>().ok());
    });
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("lean_client: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(&options, signal_at)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("lean_client: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run(options: &Options, signal_at: mpsc::Receiver<Option<f64>>) -> Result<(), String> {
    // Set up in waves, so the server's accept backlog never overflows.
    let started = Instant::now();
    let mut conns = Vec::with_capacity(options.conns);
    while conns.len() < options.conns {
        let wave = options.parallel.min(options.conns - conns.len());
        let opening: Vec<_> = (0..wave)
            .map(|_| tokio::spawn(open(options.addr, options.rpc)))
            .collect();
        for task in opening {
            let opened = task.await.map_err(|e| e.to_string())?;
            let conn = opened.map_err(|e| format!("connection {}: {e}", conns.len()))?;
            conns.push(conn);
        }
    }
    let setup = started.elapsed();
    let cpu_ready = thread_cpu();
    println!(
        "READY {} {:.1}",
        options.conns,
        setup.as_secs_f64() * 1000.0
    );
    let _ = io::stdout().flush();

    let holding: Vec<_> = conns.into_iter().map(|c| tokio::spawn(hold(c))).collect();
    let mut seen = Vec::with_capacity(holding.len());
    let waited = tokio::time::timeout(options.timeout, async {
        for task in holding {
            if let Ok(outcome) = task.await {
                seen.push(outcome);
            }
        }
    })
    .await;
    let cpu_done = thread_cpu();

    let count = |o: Outcome| seen.iter().filter(|(x, _)| *x == o).count();
    let timed_out = options.conns - seen.len();
    let client_cpu_us = match (cpu_ready, cpu_done) {
        (Some(a), Some(b)) => format!("{}", (b - a).as_micros()),
        _ => "-".into(),
    };
    // The signal's instant: it was written before the server could drain.
    let since = signal_at
        .recv_timeout(Duration::from_secs(5))
        .ok()
        .flatten();
    let mut times: Vec<f64> = seen
        .iter()
        .map(|(_, at)| {
            let at = at
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs_f64();
            (at - since.unwrap_or(0.0)) * 1e6
        })
        .collect();
    times.sort_by(f64::total_cmp);
    let pick = |q: f64| -> String {
        match (since, times.is_empty()) {
            (Some(_), false) => {
                let i = ((times.len() - 1) as f64 * q).round() as usize;
                format!("{:.0}", times[i])
            }
            _ => "-".into(),
        }
    };
    println!(
        "DONE conns={} goaway={} eof={} error={} timeout={} first_us={} median_us={} last_us={} client_cpu_us={}",
        options.conns,
        count(Outcome::FinalGoaway),
        count(Outcome::Eof),
        count(Outcome::Error),
        if waited.is_err() { timed_out } else { 0 },
        pick(0.0),
        pick(0.5),
        pick(1.0),
        client_cpu_us,
    );
    let _ = io::stdout().flush();
    Ok(())
}
