//! The echo server of the design notes (§5): cleartext HTTP/2 (h2c, prior
//! knowledge) that drains like grpc-go's `GracefulStop` on SIGTERM/SIGINT.
//!
//! ```sh
//! cargo run --release --example echo_server -- --runtime smol --listen 127.0.0.1:0 --grace 10s
//! ```
//!
//! First line on stdout: `listening on ADDR`. SIGTERM or SIGINT: graceful stop
//! bounded by `--grace` (after a `--lame-duck` phase, if given, in which it
//! still serves but `/ready` says 503 and the gRPC health service
//! NOT_SERVING), then a hard stop; a second signal: hard stop at once.
//! Last line: the one-line `shutdown:` report. SIGUSR1 (at any time, also
//! during a stop): the stragglers, each connection with its open streams'
//! paths and ages, on stderr. SIGHUP: zero-downtime restart, the same
//! program started again with the listening socket handed over
//! (`winddown::http2::handoff`); once it serves, this one drains and exits.
//! `--threads N` sets the executor threads (default: one per core); on tokio,
//! 1 runs the current-thread scheduler, whose one thread both waits on the
//! epoll and runs the connections (BENCHMARKS.md, section 1, measures what
//! that saves a drain). Started with an inherited socket (`LISTEN_FDS`, e.g.
//! by systemd), it serves on that instead of `--listen`. Routes: see `support/echo.rs`.
//! Logs (misbehaving peers, stuck connections) go to stderr; `RUST_LOG=info`
//! for more.

use std::future::Future;
use std::io::Write;
use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::process::{Command, ExitCode};
use std::time::Duration;

use futures_lite::future;
use winddown::http2::handoff::{self, Handoff};
use winddown::http2::{Config, Listener, Runtime, Server};
use winddown::{Report, Shutdown};

#[path = "support/echo.rs"]
mod echo;

const USAGE: &str = "usage: echo_server [--runtime smol|tokio] [--threads N] [--listen ADDR] [--grace DURATION] [--lame-duck DURATION]
                   [--ping-ack-timeout DURATION] [--handshake-timeout DURATION]
                   [--linger DURATION] [--flush-timeout DURATION] [--max-concurrent-streams N]
                   [--max-connection-idle DURATION] [--max-connection-age DURATION]
                   [--max-connection-age-grace DURATION]
durations: 500ms, 10s, 1.5s, 2m";

struct Options {
    runtime: String,
    /// Executor threads; `None`: one per core.
    threads: Option<NonZeroUsize>,
    listen: SocketAddr,
    grace: Duration,
    lame_duck: Duration,
    config: Config,
}

fn parse_args() -> Result<Options, String> {
    let mut options = Options {
        runtime: "smol".into(),
        threads: None,
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        grace: Duration::from_secs(10),
        lame_duck: Duration::ZERO,
        config: Config::default(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "--help" || flag == "-h" {
            return Err(USAGE.into());
        }
        let value = args
            .next()
            .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
        let duration = || echo::parse_duration(&value);
        match flag.as_str() {
            "--runtime" => options.runtime = value.clone(),
            "--threads" => {
                let n = value
                    .parse()
                    .map_err(|e| format!("bad --threads {value:?}: {e}"))?;
                options.threads = Some(n)
            }
            "--listen" => {
                options.listen = value
                    .parse()
                    .map_err(|e| format!("bad --listen {value:?}: {e}"))?
            }
            "--grace" => options.grace = duration()?,
            "--lame-duck" => options.lame_duck = duration()?,
            "--ping-ack-timeout" => options.config = options.config.ping_ack_timeout(duration()?),
            "--handshake-timeout" => options.config = options.config.handshake_timeout(duration()?),
            "--linger" => options.config = options.config.linger(duration()?),
            "--flush-timeout" => options.config = options.config.flush_timeout(duration()?),
            "--max-connection-idle" => {
                options.config = options.config.max_connection_idle(duration()?)
            }
            "--max-connection-age" => {
                options.config = options.config.max_connection_age(duration()?)
            }
            "--max-connection-age-grace" => {
                options.config = options.config.max_connection_age_grace(duration()?)
            }
            "--max-concurrent-streams" => {
                let n = value
                    .parse()
                    .map_err(|e| format!("bad --max-concurrent-streams {value:?}: {e}"))?;
                options.config = options.config.max_concurrent_streams(n)
            }
            _ => return Err(format!("unknown flag {flag}\n{USAGE}")),
        }
    }
    Ok(options)
}

fn main() -> ExitCode {
    echo::main_with("echo_server", parse_args, |options| {
        // Before any runtime starts a thread: taking an inherited socket
        // changes the environment.
        let opened = open_listener(options.listen)?;
        match options.runtime.as_str() {
            "smol" => run_smol(options, opened),
            "tokio" => run_tokio(options, opened),
            other => Err(format!("unknown runtime {other:?}: use smol or tokio")),
        }
    })
}

fn run_smol(options: Options, opened: (std::net::TcpListener, Handoff)) -> Result<(), String> {
    use winddown_smol as rt;
    // smol's executor reads its thread count from the environment when it
    // first spawns: set it here, while this is the only thread.
    if let Some(n) = options.threads {
        std::env::set_var("SMOL_THREADS", n.to_string());
    } else if std::env::var_os("SMOL_THREADS").is_none() {
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
        std::env::set_var("SMOL_THREADS", threads.to_string());
    }
    let adapter = (
        rt::TcpListener::from_std,
        rt::stop_on_signals_with_lame_duck,
        rt::print_held_on_sigusr1,
        rt::hand_off_on_sighup,
    );
    smol::block_on(serve(rt::runtime(), opened, adapter, options))
}

fn run_tokio(options: Options, opened: (std::net::TcpListener, Handoff)) -> Result<(), String> {
    use winddown_tokio as rt;
    // One thread: the current-thread scheduler, whose thread both waits on
    // the epoll and runs the tasks, so no task is ever woken across threads.
    let mut builder = match options.threads.map(NonZeroUsize::get) {
        Some(1) => tokio::runtime::Builder::new_current_thread(),
        Some(n) => {
            let mut builder = tokio::runtime::Builder::new_multi_thread();
            builder.worker_threads(n);
            builder
        }
        None => tokio::runtime::Builder::new_multi_thread(),
    };
    let tokio = builder
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start tokio: {e}"))?;
    let adapter = (
        rt::TcpListener::from_std,
        rt::stop_on_signals_with_lame_duck,
        rt::print_held_on_sigusr1,
        rt::hand_off_on_sighup,
    );
    // In the runtime: `rt::runtime()` is the current tokio runtime.
    tokio.block_on(async { serve(rt::runtime(), opened, adapter, options).await })
}

/// The listener a predecessor handed over (or systemd passed), else a new
/// one on `addr`; and a copy of it to hand to a successor on SIGHUP.
fn open_listener(addr: SocketAddr) -> Result<(std::net::TcpListener, Handoff), String> {
    let listener = match handoff::inherited_listener() {
        Ok(Some(listener)) => {
            log::info!("serving on an inherited listener");
            listener
        }
        Ok(None) => std::net::TcpListener::bind(addr)
            .map_err(|e| format!("cannot listen on {addr}: {e}"))?,
        Err(e) => return Err(format!("cannot take the inherited listener: {e}")),
    };
    let copy =
        Handoff::new(&listener).map_err(|e| format!("cannot keep a copy of the listener: {e}"))?;
    Ok((listener, copy))
}

/// This program again, with the same arguments: the successor on SIGHUP.
fn successor() -> Command {
    let mut command =
        Command::new(std::env::current_exe().unwrap_or_else(|_| "echo_server".into()));
    command.args(std::env::args_os().skip(1));
    command
}

/// Everything after binding, the same on every runtime; `adapter` is what
/// the runtime's adapter supplies: its listener and its signal handling.
async fn serve<R, T, L, S, F, U, G, H, C>(
    runtime: R,
    (listener, handoff): (std::net::TcpListener, Handoff),
    (from_std, stop_on_signals, print_held_on_sigusr1, hand_off_on_sighup): (T, S, U, H),
    options: Options,
) -> Result<(), String>
where
    R: Runtime,
    T: FnOnce(std::net::TcpListener) -> std::io::Result<L>,
    L: Listener,
    S: FnOnce(&Shutdown, Duration, Duration) -> std::io::Result<F>,
    F: Future<Output = Report>,
    U: FnOnce(&Shutdown) -> std::io::Result<G>,
    G: Future<Output = ()> + Send + 'static,
    H: FnOnce(Handoff, &Shutdown, Duration, fn() -> Command) -> std::io::Result<C>,
    C: Future<Output = Option<std::process::Child>>,
{
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    // In the runtime: tokio's listener needs its reactor.
    let listener = from_std(listener).map_err(|e| e.to_string())?;
    let shutdown = Shutdown::new();
    let echo = echo::Echo::new(runtime.clone()).with_readiness(shutdown.not_ready_token());
    let server = Server::new(&shutdown, runtime.clone(), options.config, echo);
    runtime.spawn(server.serve(listener));
    // Handlers first, then the announcement: a driver may signal at once.
    let stopped = stop_on_signals(&shutdown, options.lame_duck, options.grace)
        .map_err(|e| format!("cannot install signal handlers: {e}"))?;
    let dump =
        print_held_on_sigusr1(&shutdown).map_err(|e| format!("cannot handle SIGUSR1: {e}"))?;
    runtime.spawn(dump);
    let handed_off = hand_off_on_sighup(handoff, &shutdown, HANDOFF_READY_TIMEOUT, successor)
        .map_err(|e| format!("cannot handle SIGHUP: {e}"))?;
    announce(addr);
    // Serving: a predecessor waiting for us may now stop accepting.
    handoff::notify_ready()
        .map_err(|e| format!("cannot tell the predecessor we are ready: {e}"))?;
    let report = future::or(stopped, async {
        // SIGHUP: a successor accepts on the same socket; we drain. A
        // SIGTERM meanwhile joins this stop (one stop, one report).
        match handed_off.await {
            Some(_successor) => {
                let grace = runtime.sleep(options.grace);
                shutdown.graceful_stop_with_deadline(grace).await
            }
            // Stopping for another reason: `stopped` has the report.
            None => future::pending().await,
        }
    })
    .await;
    println!("{report}");
    Ok(())
}

/// How long a successor may take to start serving on SIGHUP.
const HANDOFF_READY_TIMEOUT: Duration = Duration::from_secs(10);

fn announce(addr: SocketAddr) {
    println!("listening on {addr}");
    // Whoever drives us waits for this line.
    let _ = std::io::stdout().flush();
}
