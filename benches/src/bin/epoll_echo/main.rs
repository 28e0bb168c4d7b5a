//! `echo_server`'s server on a minimal runtime of one thread and one
//! edge-triggered epoll (`runtime.rs`): the drain benchmark's answer to
//! "what would winddown cost on a reactor that makes only the issue's five
//! system calls per connection?" (issue 6, item 1).
//!
//! ```text
//! epoll_echo [--listen 127.0.0.1:0] [--grace 10s]
//! ```
//!
//! The same `winddown::http2::Server`, the same echo handler
//! (`examples/support/echo.rs`), the same default `Config` and the same
//! signal handling (`winddown::http2::stop_on_signals`) as `echo_server`;
//! what `echo_server` has besides (its SIGUSR1 and SIGHUP tasks, a copy of
//! the listener for a successor) costs nothing per connection. The runtime
//! is what differs: tokio and async-io make calls this one does not (an
//! `epoll_ctl(DEL)` before each close; async-io's one-shot re-arm and its
//! reactor thread's hand-off to an executor thread), and run an executor
//! thread per core, which wake each other. Here the server's own work shows
//! without them. First line on stdout: `listening on ADDR`; on SIGTERM or
//! SIGINT it drains and prints its report (`shutdown: graceful in ...`),
//! as `echo_server` does.
//!
//! A measuring instrument, not an adapter, and Linux only. Everything runs
//! on one thread, but for async-signal's: async-io's reactor thread, which
//! acts once, when the signal comes.

use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use winddown::http2::{Config, Runtime, Server};
use winddown::Shutdown;

// Written for the root crate's rust-version (1.75), which has no
// `Option::is_none_or`; this crate declares none.
#[allow(clippy::unnecessary_map_or)]
#[path = "../../../../examples/support/echo.rs"]
mod echo;
mod runtime;

use runtime::{EpollListener, EpollRuntime};

const USAGE: &str = "usage: epoll_echo [--listen ADDR] [--grace DURATION]";

fn main() -> ExitCode {
    echo::main_with("epoll_echo", parse_args, run)
}

fn parse_args() -> Result<(SocketAddr, Duration), String> {
    let mut listen = SocketAddr::from(([127, 0, 0, 1], 0));
    let mut grace = Duration::from_secs(10);
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
        match flag.as_str() {
            "--listen" => {
                listen = value
                    .parse()
                    .map_err(|e| format!("bad --listen {value:?}: {e}"))?
            }
            "--grace" => grace = echo::parse_duration(&value)?,
            _ => return Err(format!("unknown flag {flag}\n{USAGE}")),
        }
    }
    Ok((listen, grace))
}

fn run((listen, grace): (SocketAddr, Duration)) -> Result<(), String> {
    let runtime = EpollRuntime::new().map_err(|e| format!("cannot start the runtime: {e}"))?;
    let listener = EpollListener::bind(&runtime, listen)
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let shutdown = Shutdown::new();
    let echo = echo::Echo::new(runtime.clone()).with_readiness(shutdown.not_ready_token());
    let server = Server::new(&shutdown, runtime.clone(), Config::default(), echo);
    runtime.spawn(server.serve(listener));
    // Polled on the loop's thread; async-signal's own thread wakes it once.
    let signals =
        async_signal::Signals::new([async_signal::Signal::Term, async_signal::Signal::Int])
            .map_err(|e| format!("cannot install signal handlers: {e}"))?;
    let stopped = winddown::http2::stop_on_signals(
        runtime.clone(),
        &shutdown,
        signals,
        Duration::ZERO,
        grace,
    );
    println!("listening on {addr}");
    std::io::stdout().flush().map_err(|e| e.to_string())?;
    let report = runtime
        .block_on(stopped)
        .map_err(|e| format!("epoll_wait: {e}"))?;
    println!("{report}");
    Ok(())
}
