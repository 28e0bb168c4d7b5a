//! A tokio application whose libraries spawn their own background tasks,
//! each given a [`Scope`] by the application, and stopped in order after the
//! HTTP/2 server: first the server drains, then the job queue finishes its
//! backlog, then the metrics reporter flushes, then the database pool closes.
//!
//! The libraries below know nothing about the application or the runtime's
//! shutdown: they take a scope, register their tasks, and watch its drain
//! token.
//!
//! Run: `cargo run --release --example tokio_libraries`

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use winddown::http2::{http, Config, Request, Responder, Server};
use winddown::{Scope, Shutdown};
use winddown_tokio as rt;

/// A job queue library: a worker task that runs jobs until its scope drains,
/// then finishes whatever is still queued before it lets the stop go on.
mod queue {
    use super::*;
    use tokio::sync::mpsc;

    pub fn start(scope: &Scope, done: Arc<AtomicU64>) -> mpsc::UnboundedSender<u64> {
        let (jobs, mut queued) = mpsc::unbounded_channel::<u64>();
        let worker = scope.track();
        let drain = scope.drain_token();
        tokio::spawn(async move {
            let _worker = worker;
            loop {
                tokio::select! {
                    Some(job) = queued.recv() => run(job, &done).await,
                    _ = drain.wait() => break,
                }
            }
            // Our turn to stop: the backlog is finished, not dropped.
            queued.close();
            while let Some(job) = queued.recv().await {
                run(job, &done).await;
            }
        });
        jobs
    }

    async fn run(job: u64, done: &AtomicU64) {
        // Every tenth job waits on I/O for a millisecond; the rest are quick.
        if job % 10 == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        } else {
            tokio::task::yield_now().await;
        }
        done.fetch_add(1, Ordering::Relaxed);
    }
}

/// A metrics reporter: flushes every 50 ms, and once more on its way out.
mod metrics {
    use super::*;

    pub fn start(scope: &Scope, flushes: Arc<AtomicU64>) {
        let reporter = scope.track();
        let drain = scope.drain_token();
        tokio::spawn(async move {
            let _reporter = reporter;
            let mut tick = tokio::time::interval(Duration::from_millis(50));
            loop {
                tokio::select! {
                    _ = tick.tick() => { flushes.fetch_add(1, Ordering::Relaxed); }
                    _ = drain.wait() => break,
                }
            }
            flushes.fetch_add(1, Ordering::Relaxed); // the final flush
        });
    }
}

/// A database pool: a few connections, closed when the pool's scope drains.
mod db {
    use super::*;

    pub fn start(scope: &Scope, connections: usize) {
        for _ in 0..connections {
            let connection = scope.track();
            let drain = scope.drain_token();
            tokio::spawn(async move {
                drain.wait().await;
                drop(connection); // closed
            });
        }
    }
}

async fn hello(_: Request, responder: Responder) {
    let _ = responder.send(http::Response::new(()), "hello\n").await;
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let shutdown = Shutdown::new();
    // Scopes stop in creation order, after the server's own phases.
    let queue_scope = shutdown.scope("queue");
    let metrics_scope = shutdown.scope("metrics");
    let db_scope = shutdown.scope("db");

    let done = Arc::new(AtomicU64::new(0));
    let flushes = Arc::new(AtomicU64::new(0));
    let jobs = queue::start(&queue_scope, done.clone());
    metrics::start(&metrics_scope, flushes.clone());
    db::start(&db_scope, 4);

    let listener = rt::TcpListener::bind("127.0.0.1:0").await?;
    println!("listening on {}", listener.local_addr()?);
    let server = Server::new(&shutdown, rt::runtime(), Config::default(), hello);
    tokio::spawn(server.serve(listener));

    // Work piles up in the queue faster than it runs.
    for job in 0..2_000 {
        let _ = jobs.send(job);
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    println!(
        "stopping with {} of 2000 jobs done",
        done.load(Ordering::Relaxed)
    );

    let report = shutdown
        .graceful_stop_with_deadline(tokio::time::sleep(Duration::from_secs(10)))
        .await;
    println!("{report:#}");
    println!(
        "queue finished {} of 2000 jobs; metrics flushed {} times (the last on the way out)",
        done.load(Ordering::Relaxed),
        flushes.load(Ordering::Relaxed)
    );
    Ok(())
}
