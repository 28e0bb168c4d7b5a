//! An application and two libraries stopping in order, on plain threads (the
//! core needs no async runtime).
//!
//! * a "server" with connections that drain when told (stand-ins for HTTP/2
//!   connections, which send GOAWAY and finish their streams);
//! * a `queue` library that flushes its buffer when its scope drains;
//! * a `db` pool that closes last.
//!
//! It runs the stop twice: once where everything finishes in time, and once
//! where a connection ignores the drain and the deadline forces it.
//!
//! Run: `cargo run --release --example compose`

use std::thread;
use std::time::Duration;

use futures_lite::future;
use winddown::{DrainToken, Scope, Shutdown};

/// A library that knows nothing of the application: it takes a scope,
/// registers its background worker, and flushes when its turn comes.
mod queue {
    use super::*;

    pub fn start(scope: &Scope, buffered: usize) -> thread::JoinHandle<usize> {
        let worker = scope.track();
        let drain = scope.drain_token();
        thread::spawn(move || {
            let _worker = worker; // the stop waits for this thread
            drain.wait_blocking();
            buffered // flushed everything still buffered
        })
    }
}

/// The database pool: closes when its scope drains.
fn start_db(scope: &Scope) -> thread::JoinHandle<()> {
    let pool = scope.track();
    let drain = scope.drain_token();
    thread::spawn(move || {
        drain.wait_blocking();
        drop(pool);
    })
}

/// A connection: serves until drained, then finishes its in-flight work
/// (`work`) and closes. A connection that `ignores_drain` only closes on the
/// hard stop, like a client that never finishes its stream.
fn connection(shutdown: &Shutdown, port: u16, work: Duration, ignores_drain: bool) {
    let conn = shutdown.connection(Some(([127, 0, 0, 1], port).into()));
    let task = shutdown.track();
    let drain = shutdown.drain_token().child();
    let stop = shutdown.stop_token();
    let stats = shutdown.clone();
    let stream = conn.stream_opened(1, "/work");
    thread::spawn(move || {
        let _task = task;
        if ignores_drain {
            stop.wait_blocking();
            stats.stats().stream_reset();
        } else {
            drain.wait_blocking();
            thread::sleep(work); // stands for the in-flight stream finishing
            stats.stats().stream_completed();
        }
        conn.stream_closed(stream);
        drop(conn);
    });
}

/// A deadline as a future: a timer thread fires a token. Any future works;
/// with an async runtime this is its timer.
fn deadline(after: Duration) -> impl std::future::Future<Output = ()> {
    let token = DrainToken::new();
    let timer = token.clone();
    thread::spawn(move || {
        thread::sleep(after);
        timer.fire();
    });
    token.wait_owned()
}

fn run(title: &str, stuck: bool) {
    println!("== {title}");
    let shutdown = Shutdown::new();
    // Scopes stop in creation order, after the server.
    let queue_scope = shutdown.scope("queue");
    let db_scope = shutdown.scope("db");
    let flushed = queue::start(&queue_scope, 42);
    let db = start_db(&db_scope);

    for (i, ms) in [20u64, 50, 80].into_iter().enumerate() {
        connection(
            &shutdown,
            40_000 + i as u16,
            Duration::from_millis(ms),
            false,
        );
    }
    if stuck {
        connection(&shutdown, 40_999, Duration::ZERO, true);
    }

    let report = future::block_on(
        shutdown.graceful_stop_with_deadline(deadline(Duration::from_millis(300))),
    );
    println!("{report:#}");
    if !stuck {
        println!("  queue flushed {} items", flushed.join().unwrap_or(0));
        let _ = db.join();
    }
    println!();
}

fn main() {
    run("graceful: every connection drains in time", false);
    run(
        "forced: one connection ignores the drain, the deadline escalates",
        true,
    );
}
