//! Soak: hundreds of start → load → graceful stop cycles in one process, to
//! show that a stop leaks nothing: no file descriptors, no memory growth, no
//! tasks left behind (the server's own task and handler counts, and tokio's
//! live-task count where the runtime has one).
//!
//! ```sh
//! cargo run --release --example soak -- --runtime smol --cycles 300
//! cargo run --release --example soak -- --runtime tokio --cycles 300
//! ```
//!
//! Prints a table every 50 cycles and exits non-zero if anything grew.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use futures_lite::future;
use winddown::http2::bytes::Bytes;
use winddown::http2::{Config, Listener, Runtime, Server};
use winddown::{Outcome as StopOutcome, Shutdown, WaitGroup};

#[path = "support/client.rs"]
mod client;
#[path = "support/echo.rs"]
mod echo;

use client::{connect, request, Connect, Outcome};

const CLIENTS: usize = 4;
const REQUESTS_PER_CLIENT: usize = 20;
const WARM_UP: usize = 20;
/// Allowed growth of resident memory after warm-up (allocator caches settle
/// in steps; a leak of one connection per cycle would exceed this fast).
const RSS_SLACK_KIB: u64 = 4 * 1024;

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |dir| dir.count())
}

fn rss_kib() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4
}

struct Sample {
    cycle: usize,
    fds: usize,
    rss_kib: u64,
    live_tasks: Option<usize>,
    streams: u64,
    stop: Duration,
}

/// One cycle: a fresh server, clients putting load on it with a slow request
/// in flight at the stop, a graceful stop, and every client task finished.
async fn cycle<R, C, L, B, BF>(
    runtime: &R,
    connector: &C,
    bind: &B,
) -> Result<(u64, Duration), String>
where
    R: Runtime,
    C: Connect,
    L: Listener,
    B: Fn() -> BF,
    BF: Future<Output = io::Result<(L, SocketAddr)>>,
{
    let (listener, addr) = bind().await.map_err(|e| e.to_string())?;
    let shutdown = Shutdown::new();
    let server = Server::new(
        &shutdown,
        runtime.clone(),
        Config::default(),
        echo::Echo::new(runtime.clone()),
    );
    runtime.spawn(server.serve(listener));

    let clients = WaitGroup::new();
    let started = WaitGroup::new();
    for _ in 0..CLIENTS {
        let client = connect(runtime, connector, addr).await?;
        let (done, in_flight) = (clients.add(), started.add());
        runtime.spawn(async move {
            let body = Bytes::from_static(b"soak");
            for _ in 0..REQUESTS_PER_CLIENT {
                if !matches!(
                    request(&client, "POST", "/echo", body.clone()).await,
                    Outcome::Complete(_)
                ) {
                    break;
                }
            }
            // One slow request, in flight when the stop begins.
            let slow = request(&client, "GET", "/sleep/20", Bytes::new());
            drop(in_flight);
            let _ = slow.await;
            drop(done);
        });
    }
    started.wait().await;
    let began = Instant::now();
    let report = shutdown
        .graceful_stop_with_deadline(runtime.sleep(Duration::from_secs(5)))
        .await;
    let took = began.elapsed();
    if report.outcome != StopOutcome::Graceful {
        return Err(format!("a stop was forced: {report:#}"));
    }
    let finished = future::or(
        async {
            clients.wait().await;
            true
        },
        async {
            runtime.sleep(Duration::from_secs(5)).await;
            false
        },
    )
    .await;
    if !finished {
        return Err("client tasks did not finish".into());
    }
    let held = shutdown.held();
    if !held.is_empty() {
        return Err(format!("the stop returned with work still held: {held}"));
    }
    Ok((report.streams.completed, took))
}

async fn soak<R, C, L, B, BF>(
    runtime: R,
    connector: C,
    bind: B,
    cycles: usize,
    live_tasks: impl Fn() -> Option<usize>,
) -> Result<Vec<Sample>, String>
where
    R: Runtime,
    C: Connect,
    L: Listener,
    B: Fn() -> BF,
    BF: Future<Output = io::Result<(L, SocketAddr)>>,
{
    let mut samples = Vec::new();
    for n in 1..=cycles {
        let (streams, stop) = cycle(&runtime, &connector, &bind).await?;
        if n == WARM_UP || n % 50 == 0 || n == cycles {
            // Let the last cycle's detached tasks (h2 client drivers) finish.
            runtime.sleep(Duration::from_millis(20)).await;
            samples.push(Sample {
                cycle: n,
                fds: open_fds(),
                rss_kib: rss_kib(),
                live_tasks: live_tasks(),
                streams,
                stop,
            });
        }
    }
    Ok(samples)
}

fn main() -> ExitCode {
    echo::init_logging();
    let mut runtime = "smol".to_string();
    let mut cycles = 300usize;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        match (flag.as_str(), args.next()) {
            ("--runtime", Some(value)) => runtime = value,
            ("--cycles", Some(value)) => match value.parse() {
                Ok(n) if n >= WARM_UP => cycles = n,
                _ => return usage(),
            },
            _ => return usage(),
        }
    }
    let samples = match runtime.as_str() {
        "smol" => {
            use winddown_smol as rt;
            if std::env::var_os("SMOL_THREADS").is_none() {
                std::env::set_var("SMOL_THREADS", "2");
            }
            let bind = || async {
                let listener = rt::TcpListener::bind("127.0.0.1:0").await?;
                let addr = listener.local_addr()?;
                Ok((listener, addr))
            };
            smol::block_on(soak(rt::runtime(), rt::TcpConnector, bind, cycles, || None))
        }
        "tokio" => {
            use winddown_tokio as rt;
            let tokio = match tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
            {
                Ok(tokio) => tokio,
                Err(e) => {
                    eprintln!("soak: cannot start tokio: {e}");
                    return ExitCode::FAILURE;
                }
            };
            let handle = tokio.handle().clone();
            let bind = || async {
                let listener = rt::TcpListener::bind("127.0.0.1:0").await?;
                let addr = listener.local_addr()?;
                Ok((listener, addr))
            };
            let live = move || Some(handle.metrics().num_alive_tasks());
            tokio
                .block_on(async { soak(rt::runtime(), rt::TcpConnector, bind, cycles, live).await })
        }
        _ => return usage(),
    };
    let samples = match samples {
        Ok(samples) => samples,
        Err(e) => {
            eprintln!("soak: {e}");
            return ExitCode::FAILURE;
        }
    };

    println!("soak on {runtime}: {cycles} cycles of start -> {CLIENTS} clients x {REQUESTS_PER_CLIENT} requests + 1 in flight -> graceful stop");
    println!(
        "{:>6} {:>5} {:>9} {:>10} {:>16} {:>9}",
        "cycle", "fds", "rss KiB", "live tasks", "streams/cycle", "stop"
    );
    for s in &samples {
        let tasks = s.live_tasks.map_or("-".to_string(), |n| n.to_string());
        println!(
            "{:>6} {:>5} {:>9} {:>10} {:>16} {:>7.1}ms",
            s.cycle,
            s.fds,
            s.rss_kib,
            tasks,
            s.streams,
            s.stop.as_secs_f64() * 1000.0
        );
    }
    let (first, last) = (&samples[0], &samples[samples.len() - 1]);
    let fds_ok = last.fds <= first.fds;
    let rss_ok = last.rss_kib <= first.rss_kib + RSS_SLACK_KIB;
    let tasks_ok = match (first.live_tasks, last.live_tasks) {
        (Some(a), Some(b)) => b <= a,
        _ => true,
    };
    println!(
        "after warm-up (cycle {}) to cycle {}: fds {} -> {} ({}), rss {} -> {} KiB ({}), live tasks {}",
        first.cycle,
        last.cycle,
        first.fds,
        last.fds,
        if fds_ok { "no leak" } else { "LEAK" },
        first.rss_kib,
        last.rss_kib,
        if rss_ok { "flat" } else { "GREW" },
        if tasks_ok { "flat" } else { "GREW" },
    );
    if fds_ok && rss_ok && tasks_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn usage() -> ExitCode {
    eprintln!("usage: soak [--runtime smol|tokio] [--cycles N (>= {WARM_UP})]");
    ExitCode::from(2)
}
