//! Hostile and broken peers, and faults inside the server, on every runtime.
//!
//! For each: other clients keep being served while it misbehaves, the stop
//! stays bounded by the configured timeouts and deadline (checked against
//! [`BOUND`], a generous upper bound, never a timing claim), nothing panics,
//! and a forced stop's report names the connection that held it.

#[path = "support/client.rs"]
mod client;
#[path = "support/frames.rs"]
mod frames;
#[path = "support/server.rs"]
mod server;

use std::time::Duration;

use client::*;
use frames::{code, Close, Frame, FrameClient};
use server::{test_config, Rt, TestServer, BOUND};
use winddown::{ForceReason, Outcome, Phase, Report};

on_every_runtime!(
    never_sends_window_update_stalls_only_itself,
    stops_reading_tcp_is_bounded_by_the_flush_timeout,
    never_closes_after_the_final_goaway_is_bounded_by_the_linger,
    keeps_a_request_open_forever_is_forced_at_the_deadline,
    ping_flood_does_not_starve_others,
    rapid_reset_flood_does_not_starve_others,
    errors_mid_drain_close_only_that_connection,
    handler_blocking_its_thread_delays_but_does_not_stop_others,
    hard_stop_while_streams_finish_takes_over_at_once,
    hard_stop_while_waiting_for_handlers_takes_over_at_once,
    a_hard_stop_cuts_the_linger_at_once,
    a_hard_stop_cuts_a_silent_handshake_at_once,
);

/// The short deadline the forced scenarios use.
const DEADLINE: Duration = Duration::from_millis(300);

/// A forced stop that names exactly the one misbehaving connection.
fn assert_forced_by(report: &Report, client: &FrameClient) {
    assert_eq!(
        report.outcome,
        Outcome::Forced(ForceReason::Deadline),
        "{report:#}"
    );
    let held = report.held.as_ref().expect("what held the stop");
    let peer = client.socket().local_addr().unwrap();
    let peers: Vec<_> = held.connections.iter().map(|c| c.peer).collect();
    assert_eq!(
        peers,
        [Some(peer)],
        "the report names the connection: {report:#}"
    );
    assert_eq!(report.connections.forced, 1, "{report:#}");
}

fn never_sends_window_update_stalls_only_itself(rt: Rt) {
    let server = TestServer::start(rt, test_config());
    let mut stalled = connect(&server);
    // ~220 KB of response against a 64 KiB window that is never reopened.
    stalled
        .send_request(1, "GET", "/stream/20000/0", &[], true)
        .unwrap();
    stalled
        .read_until(true, |f| matches!(f, Frame::Data { .. }))
        .unwrap();
    assert_serves_others(&server);
    let report = server.graceful_stop(DEADLINE).report();
    assert_forced_by(&report, &stalled);
    assert_eq!(report.streams.reset, 1);
}

fn stops_reading_tcp_is_bounded_by_the_flush_timeout(rt: Rt) {
    let server = TestServer::start(rt, test_config());
    let mut deaf = connect(&server);
    // Open every window wide, ask for far more than the socket buffers hold,
    // then never read again: the server's writes block in the kernel.
    deaf.send_settings(&[(0x4, 0x7fff_ffff)]).unwrap();
    deaf.send_window_update(0, 0x7fff_ffff - 65_535).unwrap();
    deaf.send_request(1, "GET", "/bytes/4000000000", &[], true)
        .unwrap();
    assert_serves_others(&server);
    // Escalates at the deadline; the final GOAWAY cannot be flushed to a
    // client that does not read, so the flush timeout lets the socket go.
    let report = server.graceful_stop(DEADLINE).report();
    assert_forced_by(&report, &deaf);
}

fn never_closes_after_the_final_goaway_is_bounded_by_the_linger(rt: Rt) {
    let server = TestServer::start(rt, test_config());
    let mut client = connect(&server);
    let stopping = server.graceful_stop(BOUND);
    // Reads everything, ACKs the PING, and never closes its side: the server
    // waits for the client's EOF only for the linger, then closes.
    let (frames, close) = client.collect_until_close(true).unwrap();
    assert_eq!(goaways(&frames).last(), Some(&(0, code::NO_ERROR)));
    assert_eq!(close, Close::Fin);
    assert_eq!(stopping.report().outcome, Outcome::Graceful);
}

fn keeps_a_request_open_forever_is_forced_at_the_deadline(rt: Rt) {
    let server = TestServer::start(rt, test_config());
    let mut client = connect(&server);
    // A request body that never ends.
    client.send_request(1, "POST", "/echo", &[], false).unwrap();
    client.send_data(1, b"and then nothing", false).unwrap();
    assert_serves_others(&server);
    let stopping = server.graceful_stop(DEADLINE);
    let (frames, close) = client.collect_until_close(true).unwrap();
    assert_eq!(
        goaways(&frames).last(),
        Some(&(1, code::CANCEL)),
        "{}",
        frames::describe(&frames)
    );
    assert_ne!(close, Close::TimedOut);
    assert_forced_by(&stopping.report(), &client);
}

fn ping_flood_does_not_starve_others(rt: Rt) {
    let server = TestServer::start(rt, test_config());
    let mut flooder = connect(&server);
    for i in 0..5_000u64 {
        if flooder.send_ping(i.to_be_bytes()).is_err() {
            break; // the server may cut a flood short: that is fine too
        }
    }
    assert_serves_others(&server);
    let stopping = server.graceful_stop(BOUND);
    let _ = flooder.collect_until_close(true);
    assert_eq!(stopping.report().outcome, Outcome::Graceful);
}

fn rapid_reset_flood_does_not_starve_others(rt: Rt) {
    let server = TestServer::start(rt, test_config());
    let mut flooder = connect(&server);
    // CVE-2023-44487: open and at once reset streams, as fast as possible.
    let mut stream = 1;
    for _ in 0..2_000 {
        let sent = flooder
            .send_request(stream, "GET", "/sleep/100", &[], true)
            .and_then(|()| flooder.send_rst(stream, code::CANCEL));
        if sent.is_err() {
            break; // cut off by the server (GOAWAY ENHANCE_YOUR_CALM): fine
        }
        stream += 2;
    }
    assert_serves_others(&server);
    let stopping = server.graceful_stop(BOUND);
    let _ = flooder.collect_until_close(true);
    // Bounded: every reset stream's handler is short, and the stop waits for them.
    assert_eq!(stopping.report().outcome, Outcome::Graceful);
}

fn errors_mid_drain_close_only_that_connection(rt: Rt) {
    let server = TestServer::start(rt, test_config());
    let mut broken = connect(&server);
    let mut good = streaming(&server, "/stream/6/50");
    let stopping = server.graceful_stop(BOUND);
    broken
        .read_until(false, |f| matches!(f, Frame::Ping { ack: false, .. }))
        .unwrap();
    // A protocol error in the middle of the drain: garbage instead of an ACK.
    broken.send_raw(&[0xff; 64]).unwrap();
    let (frames, _) = broken.collect_until_close(false).unwrap();
    assert!(
        goaways(&frames).iter().any(|g| g.1 != code::NO_ERROR),
        "{}",
        frames::describe(&frames)
    );
    // The other connection drains normally.
    let (frames, close) = good.collect_until_close(true).unwrap();
    assert!(response(&frames, 1).2, "{}", frames::describe(&frames));
    assert_eq!(close, Close::Fin);
    assert_eq!(stopping.report().outcome, Outcome::Graceful);
}

fn handler_blocking_its_thread_delays_but_does_not_stop_others(rt: Rt) {
    let server = TestServer::start(rt, test_config());
    let mut blocker = connect(&server);
    blocker
        .send_request(1, "GET", "/block/300", &[], true)
        .unwrap();
    assert_serves_others(&server);
    let frames = blocker
        .read_until(true, |f| f.stream() == 1 && f.end_stream())
        .unwrap();
    assert_eq!(response(&frames, 1).0, Some(200));
    assert_eq!(
        server.graceful_stop(BOUND).report().outcome,
        Outcome::Graceful
    );
}

fn hard_stop_while_streams_finish_takes_over_at_once(rt: Rt) {
    let server = TestServer::start(rt, test_config());
    let mut client = streaming(&server, "/stream/100/50");
    let graceful = server.graceful_stop(BOUND);
    // The drain is under way: GOAWAY, PING, ACK, final GOAWAY; the stream runs on.
    client
        .read_until(true, |f| matches!(f, Frame::GoAway { last_stream: 1, .. }))
        .unwrap();
    let hard = server.stop();
    let (frames, _) = client.collect_until_close(true).unwrap();
    assert_eq!(
        goaways(&frames).last(),
        Some(&(1, code::CANCEL)),
        "{}",
        frames::describe(&frames)
    );
    let hard = hard.report();
    assert_eq!(hard.outcome, Outcome::Forced(ForceReason::Requested));
    assert_eq!(graceful.report().total, hard.total);
}

fn hard_stop_while_waiting_for_handlers_takes_over_at_once(rt: Rt) {
    let server = TestServer::start(rt, test_config());
    let mut client = connect(&server);
    // The client resets its stream at once: the connection can close, but
    // the handler sleeps on, so the stop waits in its handlers phase.
    client
        .send_request(1, "GET", "/sleep/5000", &[], true)
        .unwrap();
    sync(&mut client); // its handler has started before the reset
    client.send_rst(1, code::CANCEL).unwrap();
    let graceful = server.graceful_stop(BOUND);
    client
        .read_until(true, |f| matches!(f, Frame::GoAway { last_stream: 1, .. }))
        .unwrap();
    client.shutdown_write().unwrap(); // ends the server's linger at once
    let (_, close) = client.collect_until_close(true).unwrap();
    assert_eq!(close, Close::Fin);
    // Wait (bounded) until the stop has moved on to its handlers phase.
    assert!(server
        .shutdown
        .connections()
        .wait_empty_blocking_timeout(BOUND));
    let waiting = std::time::Instant::now();
    while server.shutdown.phase() != Some(Phase::WaitHandlers) {
        assert!(
            waiting.elapsed() < BOUND,
            "never reached the handlers phase"
        );
        std::thread::yield_now();
    }
    let hard = server.stop().report();
    assert_eq!(hard.outcome, Outcome::Forced(ForceReason::Requested));
    assert_eq!(hard.held.as_ref().map(|h| h.handlers), Some(1), "{hard:#}");
    assert_eq!(graceful.report().total, hard.total);
}

/// A hard stop during a linger far longer than the bound cuts it.
fn a_hard_stop_cuts_the_linger_at_once(rt: Rt) {
    let server = TestServer::start(rt, test_config().linger(BOUND * 2));
    let mut client = connect(&server);
    let graceful = server.graceful_stop(BOUND * 3);
    // Reads the final GOAWAY and never closes: the server lingers.
    client
        .read_until(true, |f| matches!(f, Frame::GoAway { last_stream: 0, .. }))
        .unwrap();
    let hard = server.stop().report();
    assert_eq!(
        hard.outcome,
        Outcome::Forced(ForceReason::Requested),
        "{hard:#}"
    );
    let (_, close) = client.collect_until_close(true).unwrap();
    assert_ne!(close, Close::TimedOut);
    assert_eq!(graceful.report().total, hard.total);
}

/// A hard stop cuts a connection still in its handshake (no preface), with a
/// handshake timeout far longer than the bound.
fn a_hard_stop_cuts_a_silent_handshake_at_once(rt: Rt) {
    use std::io::Read;
    let server = TestServer::start(rt, test_config().handshake_timeout(BOUND * 2));
    let mut silent = std::net::TcpStream::connect(server.addr).unwrap();
    silent.set_read_timeout(Some(BOUND)).unwrap();
    // Registered (h2 has sent its SETTINGS) before the stop.
    let mut settings = [0u8; 9];
    silent.read_exact(&mut settings).unwrap();
    let hard = server.stop().report();
    assert_eq!(
        hard.outcome,
        Outcome::Forced(ForceReason::Requested),
        "{hard:#}"
    );
    assert_eq!(hard.connections.forced, 1, "{hard:#}");
    // Closed: the rest of its SETTINGS, if any, then EOF (or a reset).
    let mut rest = Vec::new();
    let closed = silent.read_to_end(&mut rest);
    assert!(
        !matches!(&closed, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock || e.kind() == std::io::ErrorKind::TimedOut),
        "still open: {closed:?}"
    );
}

/// A transport whose shutdown never completes (TLS whose close_notify cannot
/// be written to a client that stopped reading, say): its linger, FIN
/// included, is still bounded, so a stop without a deadline ends.
#[test]
fn a_transport_whose_shutdown_never_ends_is_still_bounded_by_the_linger() {
    let rt = server::tokio_runtime();
    let (shutdown, mut client) = serve_one_through(
        winddown_tokio::TokioRuntime::with_handle(rt.handle().clone()),
        |socket| {
            let _entered = rt.enter();
            Faulty {
                shutdown_never_ends: true,
                ..Faulty::new(::tokio::net::TcpStream::from_std(socket).unwrap())
            }
        },
    );
    let stopping = stop_in_background(&shutdown, move |shutdown| {
        rt.block_on(shutdown.graceful_stop())
    });
    // ACKs the PING, reads the final GOAWAY, never closes its side.
    let (frames, close) = client.collect_until_close(true).unwrap();
    assert_eq!(goaways(&frames).last(), Some(&(0, code::NO_ERROR)));
    assert_ne!(close, Close::TimedOut);
    let report = stopping
        .recv_timeout(BOUND)
        .expect("a stop without a deadline ended: the linger is bounded");
    assert_eq!(report.outcome, Outcome::Graceful);
}

/// A server on `runtime` serving one connection through the transport `wrap`
/// makes of its socket (so a test can break the transport); returns the
/// shutdown and the client, handshaken, once the connection is served.
fn serve_one_through<R, T>(
    runtime: R,
    wrap: impl FnOnce(std::net::TcpStream) -> T,
) -> (winddown::Shutdown, FrameClient)
where
    R: winddown::http2::Runtime,
    T: ::tokio::io::AsyncRead + ::tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let shutdown = winddown::Shutdown::new();
    let handler = |_: winddown::http2::Request, responder: winddown::http2::Responder| async move {
        let _ = responder.send(http::Response::new(()), "hi").await;
    };
    let server = winddown::http2::Server::new(&shutdown, runtime, test_config(), handler);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut client = FrameClient::connect(listener.local_addr().unwrap()).unwrap();
    let (accepted, peer) = listener.accept().unwrap();
    accepted.set_nonblocking(true).unwrap();
    server.spawn_connection(wrap(accepted), Some(peer));
    client.handshake().unwrap();
    sync(&mut client); // the connection is being served
    (shutdown, client)
}

/// A test transport over `inner` with faults switched on: once `flooding`
/// is set, every read finds bytes waiting (a client that sends faster than
/// the server reads); with `shutdown_never_ends`, its shutdown never
/// completes (TLS whose close_notify cannot be written, say).
struct Faulty<T> {
    inner: T,
    flooding: std::sync::Arc<std::sync::atomic::AtomicBool>,
    shutdown_never_ends: bool,
}

impl<T> Faulty<T> {
    /// No fault yet.
    fn new(inner: T) -> Self {
        Self {
            inner,
            flooding: Default::default(),
            shutdown_never_ends: false,
        }
    }
}

impl<T: ::tokio::io::AsyncRead + Unpin> ::tokio::io::AsyncRead for Faulty<T> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut ::tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        if self.flooding.load(std::sync::atomic::Ordering::SeqCst) {
            let n = buf.remaining().min(1024);
            buf.put_slice(&[0u8; 1024][..n]);
            return std::task::Poll::Ready(Ok(()));
        }
        std::pin::Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: ::tokio::io::AsyncWrite + Unpin> ::tokio::io::AsyncWrite for Faulty<T> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        if self.shutdown_never_ends {
            return std::task::Poll::Pending;
        }
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Runs `stop` on its own thread; its report comes through the receiver.
fn stop_in_background(
    shutdown: &winddown::Shutdown,
    stop: impl FnOnce(winddown::Shutdown) -> Report + Send + 'static,
) -> std::sync::mpsc::Receiver<Report> {
    let (tx, rx) = std::sync::mpsc::channel();
    let shutdown = shutdown.clone();
    std::thread::spawn(move || {
        let _ = tx.send(stop(shutdown));
    });
    rx
}

/// Serves one connection through a [`Faulty`] transport on `runtime`, floods it once
/// the client has the final GOAWAY, and returns the stop's report: a stop
/// with no deadline, so only a bounded linger lets it end.
fn stop_while_flooded_in_the_linger<R, T>(
    runtime: R,
    wrap: impl FnOnce(std::net::TcpStream) -> T,
    stop: impl FnOnce(winddown::Shutdown) -> Report + Send + 'static,
) -> Option<Report>
where
    R: winddown::http2::Runtime,
    T: ::tokio::io::AsyncRead + ::tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let flooding = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (shutdown, mut client) = serve_one_through(runtime, |socket| Faulty {
        flooding: flooding.clone(),
        ..Faulty::new(wrap(socket))
    });
    let stopping = stop_in_background(&shutdown, stop);
    client
        .read_until(true, |f| matches!(f, Frame::GoAway { last_stream: 0, .. }))
        .unwrap();
    // h2 has closed the connection: the server is in its linger.
    flooding.store(true, std::sync::atomic::Ordering::SeqCst);
    stopping.recv_timeout(BOUND).ok()
}

#[test]
fn a_flood_during_the_linger_is_still_bounded_by_it_smol() {
    let report = stop_while_flooded_in_the_linger(
        winddown_smol::SmolRuntime::global(),
        |socket| winddown_smol::TcpStream::from_async(::smol::Async::new(socket).unwrap()).unwrap(),
        |shutdown| ::smol::block_on(shutdown.graceful_stop()),
    )
    .expect("a stop without a deadline ended: the linger is bounded under a flood");
    assert_eq!(report.outcome, Outcome::Graceful);
}

#[test]
fn a_flood_during_the_linger_is_still_bounded_by_it_tokio() {
    let rt = server::tokio_runtime();
    let report = stop_while_flooded_in_the_linger(
        winddown_tokio::TokioRuntime::with_handle(rt.handle().clone()),
        |socket| {
            let _entered = rt.enter();
            ::tokio::net::TcpStream::from_std(socket).unwrap()
        },
        move |shutdown| rt.block_on(shutdown.graceful_stop()),
    )
    .expect("a stop without a deadline ended: the linger is bounded under a flood");
    assert_eq!(report.outcome, Outcome::Graceful);
}
