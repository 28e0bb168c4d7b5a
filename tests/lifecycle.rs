//! Per-connection lifecycle (gRPC proposal A9), on every runtime: max idle,
//! max age with jitter, and the age grace, each draining one connection with
//! the same two-phase GOAWAY as a full stop, observed from the client side.

#[path = "support/client.rs"]
mod client;
#[path = "support/frames.rs"]
mod frames;
#[path = "support/server.rs"]
mod server;

use std::time::Duration;

use client::*;
use frames::{code, Close, Frame, MAX_STREAM_ID};
use server::{test_config, Rt, TestServer, BOUND};
use winddown::{Outcome, Phase};

on_every_runtime!(
    max_age_drains_a_connection_with_the_two_phase_goaway,
    max_age_grace_forces_streams_that_outlive_it,
    handlers_see_their_connection_drain_at_max_age,
    max_idle_drains_idle_connections_but_not_busy_ones,
    lame_duck_keeps_serving_but_reports_not_ready,
    the_ack_deadline_holds_with_idle_and_age_timers_armed,
    a_connection_drained_alone_times_its_own_ack,
);

const SHORT: Duration = Duration::from_millis(200);

fn max_age_drains_a_connection_with_the_two_phase_goaway(rt: Rt) {
    let server = TestServer::start(rt, test_config().max_connection_age(SHORT));
    let mut client = connect(&server);
    // No stop: the connection's own age drains it.
    let (frames, close) = client.collect_until_close(true).unwrap();
    assert_two_phase_goaways(&frames);
    // gRPC A9: the debug data says why.
    assert_eq!(goaway_reasons(&frames), ["max_age", "max_age"]);
    assert!(frames
        .iter()
        .any(|f| matches!(f, Frame::Ping { ack: false, .. })));
    assert_eq!(close, Close::Fin);
    // The server itself is not stopping.
    assert!(!server.shutdown.is_draining());
    assert_eq!(
        server.graceful_stop(BOUND).report().outcome,
        Outcome::Graceful
    );
}

fn max_age_grace_forces_streams_that_outlive_it(rt: Rt) {
    let config = test_config()
        .max_connection_age(SHORT)
        .max_connection_age_grace(Duration::from_millis(300));
    let server = TestServer::start(rt, config);
    // 100 chunks every 50 ms: far longer than age + grace.
    let mut client = streaming(&server, "/stream/100/50");
    let (frames, close) = client.collect_until_close(true).unwrap();
    let all = goaways(&frames);
    assert_eq!(
        all.first(),
        Some(&(MAX_STREAM_ID, code::NO_ERROR)),
        "{}",
        frames::describe(&frames)
    );
    assert_eq!(
        all.last(),
        Some(&(1, code::CANCEL)),
        "forced after the grace"
    );
    assert!(!response(&frames, 1).2, "the stream was cut");
    assert_ne!(close, Close::TimedOut);
    assert!(!server.shutdown.is_draining());
    let report = server.graceful_stop(BOUND).report();
    assert_eq!(report.streams.reset, 1, "{report:#}");
}

fn handlers_see_their_connection_drain_at_max_age(rt: Rt) {
    let server = TestServer::start(rt, test_config().max_connection_age(SHORT));
    let mut client = streaming(&server, "/follow/20");
    let (frames, close) = client.collect_until_close(true).unwrap();
    let (_, body, ended) = response(&frames, 1);
    assert!(ended, "{}", frames::describe(&frames));
    assert!(String::from_utf8_lossy(&body).ends_with("drained\n"));
    assert_eq!(close, Close::Fin);
}

fn max_idle_drains_idle_connections_but_not_busy_ones(rt: Rt) {
    let server = TestServer::start(
        rt,
        test_config().max_connection_idle(Duration::from_millis(300)),
    );
    let mut idle = connect(&server);
    // Busy for ~1 s, three times the idle limit.
    let mut busy = streaming(&server, "/stream/20/50");
    let (frames, close) = idle.collect_until_close(true).unwrap();
    assert_eq!(goaways(&frames).len(), 2, "{}", frames::describe(&frames));
    assert_eq!(goaway_reasons(&frames), ["max_idle", "max_idle"]);
    assert_eq!(close, Close::Fin);
    // The busy connection finishes its stream before any GOAWAY, and is
    // drained only once it has been idle for the limit.
    let (frames, close) = busy.collect_until_close(true).unwrap();
    let ended_at = frames
        .iter()
        .position(|f| f.stream() == 1 && f.end_stream());
    let goaway_at = frames
        .iter()
        .position(|f| matches!(f, Frame::GoAway { .. }));
    assert!(
        ended_at.is_some() && ended_at < goaway_at,
        "{}",
        frames::describe(&frames)
    );
    assert_eq!(close, Close::Fin);
    assert_eq!(
        server.graceful_stop(BOUND).report().outcome,
        Outcome::Graceful
    );
}

fn lame_duck_keeps_serving_but_reports_not_ready(rt: Rt) {
    let server = TestServer::start(rt, test_config());
    let mut client = connect(&server);
    let ready = |client: &mut frames::FrameClient, stream: u32| {
        client
            .send_request(stream, "GET", "/ready", &[], true)
            .unwrap();
        let frames = client
            .read_until(true, |f| f.stream() == stream && f.end_stream())
            .unwrap();
        assert!(
            goaways(&frames).is_empty(),
            "no GOAWAY during the lame duck"
        );
        response(&frames, stream).0
    };
    assert_eq!(ready(&mut client, 1), Some(200));
    let stopping = server.graceful_stop_with_lame_duck(Duration::from_secs(1), BOUND);
    assert!(server
        .shutdown
        .not_ready_token()
        .wait_blocking_timeout(BOUND));
    // Not ready, yet everything is still served, new connections included.
    assert_eq!(ready(&mut client, 3), Some(503));
    assert_serves_others(&server);
    // Then the usual drain.
    let (frames, close) = client.collect_until_close(true).unwrap();
    assert_eq!(goaways(&frames).len(), 2, "{}", frames::describe(&frames));
    assert_eq!(close, Close::Fin);
    let report = stopping.report();
    assert_eq!(report.outcome, Outcome::Graceful);
    assert_eq!(report.phases[0].0, Phase::LameDuck);
}

/// The PING's ACK deadline takes the slot the idle check held (they share
/// one): with max idle and max age armed, a client that never ACKs still gets
/// the final GOAWAY once the ACK is overdue, and the stop stays graceful
/// (without the deadline it would wait until the stop's own deadline forced it).
fn the_ack_deadline_holds_with_idle_and_age_timers_armed(rt: Rt) {
    let long = BOUND * 6; // neither fires during the test
    let config = test_config()
        .max_connection_idle(long)
        .max_connection_age(long);
    let server = TestServer::start(rt, config);
    let mut client = connect(&server);
    let stopping = server.graceful_stop(BOUND * 3);
    // Never ACKs the PING.
    let (frames, close) = client.collect_until_close(false).unwrap();
    assert_two_phase_goaways(&frames);
    assert_eq!(close, Close::Fin);
    assert_eq!(stopping.report().outcome, Outcome::Graceful);
}

/// A connection's own drain times its PING's ACK with a timer of its own (a
/// stop's drain shares one deadline across the server, which only a stop
/// starts): a client that never ACKs still gets the final GOAWAY while the
/// server is not stopping.
fn a_connection_drained_alone_times_its_own_ack(rt: Rt) {
    let server = TestServer::start(rt, test_config().max_connection_age(SHORT));
    let mut client = connect(&server);
    // Never ACKs the PING.
    let (frames, close) = client.collect_until_close(false).unwrap();
    assert_two_phase_goaways(&frames);
    assert_eq!(goaway_reasons(&frames), ["max_age", "max_age"]);
    assert_eq!(close, Close::Fin);
    assert!(!server.shutdown.is_draining());
}
