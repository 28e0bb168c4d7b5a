//! Work in flight for the drain benchmark (issue 6, item 2): N connections,
//! each with one `GET /sleep/<ms>` stream of a known, staggered duration.
//!
//! ```text
//! hold_conns --addr ADDR --conns N [--base-ms 300] [--step-ms 2]
//! ```
//!
//! First it measures the round-trip on one extra connection (the median of 50
//! sequential `GET /echo`) and prints `RTT_US x`. Then it opens the N
//! connections, sends on connection i `GET /sleep/<base + i*step>` (all at
//! once), prints `SENT <epoch s>` and waits. Every connection's task drives
//! its h2 connection until the server closes it. At the end:
//!
//! ```text
//! DONE ok=N failed=0 last_end=<epoch s> planned_last=<epoch s> closed_last=<epoch s>
//! ```
//!
//! `last_end` is when the client saw the last response's END_STREAM,
//! `planned_last` the latest (send instant + sleep), `closed_last` when the
//! last connection ended (the server's final GOAWAY and close).

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::Request;
use tokio::net::TcpStream;

const USAGE: &str = "usage: hold_conns --addr ADDR --conns N [--base-ms 300] [--step-ms 2]";

fn epoch() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

struct Outcome {
    ok: bool,
    end: f64,
    planned: f64,
    closed: f64,
}

async fn connect(
    addr: SocketAddr,
) -> Result<(h2::client::SendRequest<Bytes>, tokio::task::JoinHandle<f64>), String> {
    let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let _ = tcp.set_nodelay(true);
    let (send, conn) = h2::client::handshake(tcp)
        .await
        .map_err(|e| e.to_string())?;
    let driver = tokio::spawn(async move {
        let _ = conn.await;
        epoch()
    });
    Ok((send, driver))
}

async fn get(send: &mut h2::client::SendRequest<Bytes>, path: &str) -> Result<(), String> {
    let request = Request::get(format!("http://bench{path}"))
        .body(())
        .map_err(|e| e.to_string())?;
    let (response, _) = send
        .send_request(request, true)
        .map_err(|e| e.to_string())?;
    let mut body = response.await.map_err(|e| e.to_string())?.into_body();
    while let Some(chunk) = body.data().await {
        let chunk = chunk.map_err(|e| e.to_string())?;
        let _ = body.flow_control().release_capacity(chunk.len());
    }
    Ok(())
}

async fn run(addr: SocketAddr, conns: usize, base: u64, step: u64) -> Result<(), String> {
    // The round-trip: sequential small requests on one connection.
    let (mut send, _) = connect(addr).await?;
    let mut rtts = Vec::with_capacity(50);
    for _ in 0..50 {
        let t0 = Instant::now();
        get(&mut send, "/echo").await?;
        rtts.push(t0.elapsed());
    }
    rtts.sort();
    println!("RTT_US {}", rtts[rtts.len() / 2].as_micros());
    drop(send);

    let mut opened = Vec::with_capacity(conns);
    for _ in 0..conns {
        opened.push(connect(addr).await?);
    }
    let mut tasks = Vec::with_capacity(conns);
    for (i, (mut send, driver)) in opened.into_iter().enumerate() {
        let ms = base + i as u64 * step;
        tasks.push(tokio::spawn(async move {
            let planned = epoch() + ms as f64 / 1e3;
            let ok = get(&mut send, &format!("/sleep/{ms}")).await.is_ok();
            let end = epoch();
            drop(send);
            let closed = driver.await.unwrap_or(f64::NAN);
            Outcome {
                ok,
                end,
                planned,
                closed,
            }
        }));
    }
    println!("SENT {:.6}", epoch());
    let (mut ok, mut failed) = (0, 0);
    let (mut last_end, mut planned_last, mut closed_last) = (0f64, 0f64, 0f64);
    for task in tasks {
        match task.await {
            Ok(o) if o.ok => {
                ok += 1;
                last_end = last_end.max(o.end);
                planned_last = planned_last.max(o.planned);
                closed_last = closed_last.max(o.closed);
            }
            _ => failed += 1,
        }
    }
    println!(
        "DONE ok={ok} failed={failed} last_end={last_end:.6} planned_last={planned_last:.6} closed_last={closed_last:.6}"
    );
    Ok(())
}

fn main() -> ExitCode {
    let (mut addr, mut conns, mut base, mut step) = (None, 1usize, 300u64, 2u64);
    let mut args = std::env::args().skip(1);
    while let (Some(flag), Some(value)) = (args.next(), args.next()) {
        let parsed = match flag.as_str() {
            "--addr" => value.parse().map(|a| addr = Some(a)).ok(),
            "--conns" => value.parse().map(|n| conns = n).ok(),
            "--base-ms" => value.parse().map(|n| base = n).ok(),
            "--step-ms" => value.parse().map(|n| step = n).ok(),
            _ => None,
        };
        if parsed.is_none() {
            eprintln!("bad {flag} {value:?}\n{USAGE}");
            return ExitCode::from(2);
        }
    }
    let Some(addr) = addr else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("hold_conns: {e}");
            return ExitCode::FAILURE;
        }
    };
    let timeout = Duration::from_millis(base + conns as u64 * step + 30_000);
    match runtime
        .block_on(async { tokio::time::timeout(timeout, run(addr, conns, base, step)).await })
    {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(e)) => {
            eprintln!("hold_conns: {e}");
            ExitCode::FAILURE
        }
        Err(_) => {
            eprintln!("hold_conns: timed out");
            ExitCode::FAILURE
        }
    }
}
