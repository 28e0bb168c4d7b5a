//! A load of requests from winddown's GOAWAY-aware client against one or
//! more servers, for watching what survives their restarts.
//!
//! ```sh
//! cargo run --release --example client_load -- --runtime tokio --addr 127.0.0.1:8080 --addr 127.0.0.1:8081 --grpc
//! ```
//!
//! `--workers` tasks each send one request at a time until SIGTERM/SIGINT:
//! `POST /echo` with a body of their own (not marked idempotent), or with
//! `--grpc` the unary `/echo.Echo/Say`, and check that the answer is their
//! own body. Lines on stdout: `flowing` once the first answers are in, `ok N`
//! after every 200 answers, and at the end `result sent=N ok=N failed=N
//! retries=N reroutes=N connections=N`, one `peer ADDR ok=N` line per server,
//! and up to 10 `failure ...` lines. The stop is winddown's own: the workers
//! are tracked by a `Shutdown`, so every request in flight at the signal ends
//! before the result is printed.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use winddown::http2::client::{Client, ClientConfig, Connect, Request};
use winddown::http2::Runtime;
use winddown::Shutdown;

#[path = "support/echo.rs"]
mod echo;

const USAGE: &str =
    "usage: client_load [--runtime smol|tokio] --addr ADDR [--addr ADDR ...] [--workers N] [--grpc]";

struct Options {
    runtime: String,
    addrs: Vec<SocketAddr>,
    workers: usize,
    grpc: bool,
}

fn parse_args() -> Result<Options, String> {
    let mut options = Options {
        runtime: "tokio".into(),
        addrs: Vec::new(),
        workers: 16,
        grpc: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "--grpc" {
            options.grpc = true;
            continue;
        }
        let value = args
            .next()
            .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
        match flag.as_str() {
            "--runtime" => options.runtime = value,
            "--addr" => options.addrs.push(
                value
                    .parse()
                    .map_err(|e| format!("bad --addr {value:?}: {e}"))?,
            ),
            "--workers" => {
                options.workers = value.parse().map_err(|e| format!("bad --workers: {e}"))?
            }
            _ => return Err(format!("unknown flag {flag}\n{USAGE}")),
        }
    }
    if options.addrs.is_empty() {
        return Err(format!("at least one --addr\n{USAGE}"));
    }
    Ok(options)
}

#[derive(Default)]
struct Tally {
    sent: AtomicU64,
    ok: AtomicU64,
    failed: AtomicU64,
    by_peer: Mutex<Vec<(SocketAddr, u64)>>,
    failures: Mutex<Vec<String>>,
}

impl Tally {
    fn answered(&self, peer: SocketAddr) {
        let ok = self.ok.fetch_add(1, Ordering::SeqCst) + 1;
        if ok == 1 {
            println!("flowing");
        } else if ok % 200 == 0 {
            println!("ok {ok}");
        }
        let mut by_peer = self.by_peer.lock().unwrap_or_else(|p| p.into_inner());
        match by_peer.iter_mut().find(|(p, _)| *p == peer) {
            Some((_, n)) => *n += 1,
            None => by_peer.push((peer, 1)),
        }
    }

    fn failed(&self, what: String) {
        self.failed.fetch_add(1, Ordering::SeqCst);
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if failures.len() < 10 {
            failures.push(what);
        }
    }
}

fn main() -> ExitCode {
    echo::main_with("client_load", parse_args, run_on)
}

fn run_on(options: Options) -> Result<(), String> {
    let config = ClientConfig::default().request_timeout(Some(Duration::from_secs(30)));
    match options.runtime.as_str() {
        "smol" => {
            use winddown_smol as rt;
            smol::block_on(async {
                let shutdown = Shutdown::new();
                let stopped = rt::stop_on_signals(&shutdown, Duration::from_secs(30));
                let client = rt::client(options.addrs.clone(), config);
                run(rt::runtime(), client, &shutdown, stopped, &options).await
            })
        }
        "tokio" => {
            use winddown_tokio as rt;
            match tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
            {
                Ok(tokio) => tokio.block_on(async {
                    let shutdown = Shutdown::new();
                    let stopped = rt::stop_on_signals(&shutdown, Duration::from_secs(30));
                    let client = rt::client(options.addrs.clone(), config);
                    run(rt::runtime(), client, &shutdown, stopped, &options).await
                }),
                Err(e) => Err(format!("cannot start tokio: {e}")),
            }
        }
        other => Err(format!("unknown runtime {other:?}: use smol or tokio")),
    }
}

/// The load, the same on every runtime.
async fn run<R: Runtime, C: Connect>(
    runtime: R,
    client: Client<R, C>,
    shutdown: &Shutdown,
    stopped: std::io::Result<impl std::future::Future<Output = winddown::Report>>,
    options: &Options,
) -> Result<(), String> {
    let stopped = stopped.map_err(|e| format!("cannot install signal handlers: {e}"))?;
    let tally = Arc::new(Tally::default());
    for worker in 0..options.workers {
        // Tracked: the stop waits for the request each worker has in flight.
        let guard = shutdown.track();
        let closing = shutdown.close_token();
        let (client, tally, grpc) = (client.clone(), tally.clone(), options.grpc);
        runtime.spawn(async move {
            let _guard = guard;
            let mut i = 0u64;
            while !closing.is_fired() {
                i += 1;
                let body = format!("worker {worker} request {i}");
                let request = match grpc {
                    true => Request::grpc("/echo.Echo/Say", &body),
                    false => Request::post("/echo", body.clone()),
                };
                tally.sent.fetch_add(1, Ordering::SeqCst);
                match client.send(request).await {
                    Ok(r)
                        if grpc && r.grpc_message() == Some(format!("echo:{body}").as_bytes()) =>
                    {
                        tally.answered(r.peer())
                    }
                    Ok(r) if !grpc && r.body() == body.as_bytes() => tally.answered(r.peer()),
                    Ok(r) => tally.failed(format!(
                        "{body}: wrong answer {} {:?}",
                        r.status(),
                        r.body()
                    )),
                    Err(e) => tally.failed(format!("{body}: {e}")),
                }
            }
        });
    }
    let report = stopped.await;
    let stats = client.stats();
    let get = |n: &AtomicU64| n.load(Ordering::SeqCst);
    println!(
        "result sent={} ok={} failed={} retries={} reroutes={} connections={}",
        get(&tally.sent),
        get(&tally.ok),
        get(&tally.failed),
        stats.retries,
        stats.reroutes,
        stats.connections
    );
    for (peer, ok) in tally
        .by_peer
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
    {
        println!("peer {peer} ok={ok}");
    }
    for failure in tally
        .failures
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
    {
        println!("failure {failure}");
    }
    eprintln!("{report}");
    Ok(())
}
