//! The main job: a server drained under load, with its report.
//!
//! Starts the echo server in-process, puts load on it from real h2 client
//! connections (fast echoes, slow requests, a cooperative `/follow` stream and
//! an uncooperative `/stream`), triggers a graceful stop with a deadline in the
//! middle, and prints what happened as a timeline, the server's report, and
//! the clients' side of the story (which must agree with the server's).
//!
//! ```sh
//! cargo run --release --example demo                     # smol
//! cargo run --release --example demo -- --runtime tokio  # tokio
//! ```

use std::io;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_lite::future;
use winddown::http2::bytes::Bytes;
use winddown::http2::{Config, Listener, Runtime, Server};
use winddown::{Shutdown, WaitGroup};

#[path = "support/client.rs"]
mod client;
#[path = "support/echo.rs"]
mod echo;

use client::{connect, request, Client, Connect, Outcome};

const LOAD_BEFORE_STOP: Duration = Duration::from_millis(400);
const DEADLINE: Duration = Duration::from_millis(1200);
const ECHO_CONNECTIONS: usize = 4;
const WORKERS_PER_CONNECTION: usize = 3;

/// What the clients saw, counted as they saw it.
#[derive(Default)]
struct ClientTally {
    completed: AtomicU64,
    /// New requests the client could not start because the connection was
    /// going away (GOAWAY): never processed, safe to retry elsewhere.
    not_started: AtomicU64,
    /// Streams reset by the server: REFUSED_STREAM (safe to retry) or cut.
    reset: AtomicU64,
    reconnects_refused: AtomicU64,
}

/// Timestamped events, printed in order at the end.
#[derive(Clone)]
struct Timeline {
    start: Instant,
    events: Arc<Mutex<Vec<(Duration, String)>>>,
}

impl Timeline {
    fn new() -> Self {
        Self {
            start: Instant::now(),
            events: Arc::default(),
        }
    }

    fn note(&self, what: impl Into<String>) {
        let at = self.start.elapsed();
        if let Ok(mut events) = self.events.lock() {
            events.push((at, what.into()));
        }
    }

    fn print(&self) {
        let Ok(mut events) = self.events.lock() else {
            return;
        };
        events.sort_by_key(|(at, _)| *at);
        for (at, what) in events.iter() {
            println!("  [{:>5} ms] {what}", at.as_millis());
        }
    }
}

/// A worker: requests back to back until its connection goes away.
async fn worker(client: Client, id: usize, tally: Arc<ClientTally>, timeline: Timeline) {
    let payload = Bytes::from(vec![b'x'; 1024]);
    // One worker per connection keeps a slow request in flight; the others
    // echo back to back.
    let slow = id % WORKERS_PER_CONNECTION == 0;
    loop {
        let outcome = if slow {
            request(&client, "GET", "/sleep/300", Bytes::new()).await
        } else {
            request(&client, "POST", "/echo", payload.clone()).await
        };
        match outcome {
            Outcome::Complete(_) => {
                tally.completed.fetch_add(1, Ordering::Relaxed);
            }
            Outcome::NotStarted => {
                tally.not_started.fetch_add(1, Ordering::Relaxed);
                if id % WORKERS_PER_CONNECTION == 0 {
                    timeline.note(format!(
                        "connection {}: GOAWAY seen, its workers stop starting requests",
                        id / WORKERS_PER_CONNECTION
                    ));
                }
                return;
            }
            Outcome::Reset(reason) => {
                tally.reset.fetch_add(1, Ordering::Relaxed);
                timeline.note(format!(
                    "worker {id}: stream reset by the server ({reason:?})"
                ));
                return;
            }
            Outcome::Failed(e) => {
                timeline.note(format!("worker {id}: request failed: {e}"));
                return;
            }
        }
    }
}

fn main() -> ExitCode {
    echo::init_logging();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let runtime = match args.as_slice() {
        [] => "smol",
        [flag, runtime] if flag == "--runtime" => runtime.as_str(),
        _ => "",
    };
    let outcome = match runtime {
        "smol" => smol_main(),
        "tokio" => tokio_main(),
        _ => {
            eprintln!("usage: demo [--runtime smol|tokio]");
            return ExitCode::from(2);
        }
    };
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("demo: {e}");
            ExitCode::FAILURE
        }
    }
}

fn smol_main() -> Result<bool, String> {
    use winddown_smol as rt;

    if std::env::var_os("SMOL_THREADS").is_none() {
        std::env::set_var("SMOL_THREADS", "2");
    }
    smol::block_on(async {
        let listener = rt::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| e.to_string())?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        run(rt::runtime(), rt::TcpConnector, listener, addr).await
    })
}

fn tokio_main() -> Result<bool, String> {
    use winddown_tokio as rt;

    let tokio = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    tokio.block_on(async {
        let listener = rt::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| e.to_string())?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        run(rt::runtime(), rt::TcpConnector, listener, addr).await
    })
}

/// The demo itself, the same on every runtime.
async fn run<R: Runtime, C: Connect, L: Listener>(
    runtime: R,
    connector: C,
    listener: L,
    addr: SocketAddr,
) -> Result<bool, String> {
    let timeline = Timeline::new();
    let shutdown = Shutdown::new();
    let config = Config::default().ping_ack_timeout(Duration::from_secs(1));
    let server = Server::new(
        &shutdown,
        runtime.clone(),
        config,
        echo::Echo::new(runtime.clone()),
    );
    runtime.spawn(server.serve(listener));
    timeline.note(format!("server listening on {addr}"));

    // The clients' tasks, tracked with winddown's own wait group.
    let clients = WaitGroup::new();
    let tally = Arc::new(ClientTally::default());
    for c in 0..ECHO_CONNECTIONS {
        let client = connect(&runtime, &connector, addr).await?;
        for w in 0..WORKERS_PER_CONNECTION {
            let id = c * WORKERS_PER_CONNECTION + w;
            let task = worker(client.clone(), id, tally.clone(), timeline.clone());
            let guard = clients.add();
            runtime.spawn(async move {
                task.await;
                drop(guard);
            });
        }
    }
    timeline.note(format!(
        "load: {ECHO_CONNECTIONS} connections, each with {} workers echoing 1 KiB back to back and 1 making 300 ms requests",
        WORKERS_PER_CONNECTION - 1
    ));

    // A cooperative long stream: ends itself when the server drains (B9).
    {
        let client = connect(&runtime, &connector, addr).await?;
        let timeline = timeline.clone();
        let guard = clients.add();
        runtime.spawn(async move {
            if let Outcome::Complete(body) =
                request(&client, "GET", "/follow/50", Bytes::new()).await
            {
                let ticks = body
                    .split(|b| *b == b'\n')
                    .filter(|l| l.starts_with(b"tick"))
                    .count();
                timeline.note(format!(
                    "/follow/50 ended cleanly on drain after {ticks} ticks"
                ));
            }
            drop(guard);
        });
    }
    // An uncooperative one: 40 chunks every 50 ms (2 s), ignores the drain,
    // so the deadline has something to force.
    {
        let client = connect(&runtime, &connector, addr).await?;
        let timeline = timeline.clone();
        let guard = clients.add();
        runtime.spawn(async move {
            match request(&client, "GET", "/stream/40/50", Bytes::new()).await {
                Outcome::Complete(_) => timeline.note("/stream/40/50 completed"),
                Outcome::Reset(reason) => timeline.note(format!(
                    "/stream/40/50 cut by the hard stop ({reason:?}): it ignored the drain"
                )),
                Outcome::Failed(e) => timeline.note(format!(
                    "/stream/40/50 cut by the hard stop ({e}): it ignored the drain"
                )),
                Outcome::NotStarted => timeline.note("/stream/40/50 never started"),
            }
            drop(guard);
        });
    }

    runtime.sleep(LOAD_BEFORE_STOP).await;
    timeline.note(format!(
        "graceful stop begins (deadline {} ms): listener closes, every connection gets GOAWAY + PING",
        DEADLINE.as_millis()
    ));
    let stop = async {
        let report = shutdown
            .graceful_stop_with_deadline(runtime.sleep(DEADLINE))
            .await;
        timeline.note("stop returned");
        report
    };
    // B1: the listener is closed first; a new connect is refused.
    let reconnect = async {
        shutdown.drain_token().wait().await;
        match connector.connect(addr).await {
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                tally.reconnects_refused.fetch_add(1, Ordering::Relaxed);
                timeline.note("a new connect during the drain is refused (listener closed first)");
            }
            Err(e) => timeline.note(format!("a new connect during the drain failed: {e}")),
            Ok(_) => timeline.note("a new connect during the drain was accepted (unexpected)"),
        }
    };
    let (report, ()) = future::zip(stop, reconnect).await;
    let bound = runtime.sleep(Duration::from_secs(5));
    let clients_done = future::or(
        async {
            clients.wait().await;
            true
        },
        async {
            bound.await;
            false
        },
    )
    .await;
    println!("timeline (ms since start):");
    timeline.print();
    println!("\nthe server's report:\n{report:#}");
    let completed = tally.completed.load(Ordering::Relaxed);
    println!(
        "\nthe clients' side: {completed} responses complete, {} requests not started because their \
         connection was going away (never processed: safe to retry elsewhere), {} streams reset, \
         {} new connects refused",
        tally.not_started.load(Ordering::Relaxed),
        tally.reset.load(Ordering::Relaxed),
        tally.reconnects_refused.load(Ordering::Relaxed),
    );
    // Everything a handler finished, a client received: the follow stream
    // counts on both sides; the forced stream on neither as completed.
    let follow_completed = 1;
    let agree = report.streams.completed == completed + follow_completed && clients_done;
    println!(
        "{} server completed {} streams, clients received {} complete responses",
        if agree { "agreement:" } else { "MISMATCH:" },
        report.streams.completed,
        completed + follow_completed
    );
    println!("{report}");
    Ok(agree)
}
