//! Behaviours B1–B11 of the HTTP/2 server, each observed from the client side
//! with a frame-level client, on every runtime adapter; and bad input.
//!
//! No sleeps: a test waits for frames (with a read timeout) or for the stop's
//! report (with a generous bound that only proves the stop is bounded).

#[path = "support/client.rs"]
mod client;
#[path = "support/frames.rs"]
mod frames;
#[path = "support/server.rs"]
mod server;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use client::*;
use frames::{code, flag, kind, Close, Frame, FrameClient, MAX_STREAM_ID, PREFACE};
use server::{test_config, Rt, TestServer, BOUND};
use winddown::{ForceReason, Outcome};

on_every_runtime!(
    b1_listener_is_closed_before_any_goaway,
    b2_goaway_ping_then_goaway_with_last_stream,
    b3_streams_before_the_final_goaway_are_served_later_ones_never_reach_a_handler,
    b4_idle_connection_closes_at_once_with_fin,
    b4_in_flight_stream_completes_then_fin,
    b4_linger_reads_late_client_bytes_so_the_close_is_a_fin,
    b5_client_that_never_acks_is_refused_then_closed,
    b5_a_connection_the_drain_reaches_late_still_waits_for_its_ack,
    b6_silent_and_half_preface_connections_do_not_hold_the_stop,
    b7_deadline_escalates_and_names_what_held_it,
    b8_hard_stop_preempts_a_drain_waiting_for_the_ack,
    b9_cooperative_handler_ends_its_stream_on_drain,
    b10_handler_panic_is_contained,
    b11_report_counts_match_what_clients_saw,
    bad_input_http1_request_is_closed_others_are_served,
    bad_input_garbage_is_closed_others_are_served,
    bad_input_oversized_frame_gets_goaway_frame_size_error,
    a_whole_response_is_headers_and_data_ending_the_stream,
    a_unary_grpc_response_is_headers_data_then_trailers,
    streams_arriving_together_past_one_accept_batch_are_all_served,
);

/// `Responder::send` ends the stream with its last DATA frame: no third,
/// empty frame just to carry END_STREAM.
fn a_whole_response_is_headers_and_data_ending_the_stream(rt: Rt) {
    let server = TestServer::start(rt, test_config());
    let mut client = connect(&server);
    client.send_request(1, "POST", "/echo", &[], false).unwrap();
    client.send_data(1, b"ping", true).unwrap();
    let frames = client
        .read_until(true, |f| f.stream() == 1 && f.end_stream())
        .unwrap();
    let on_stream: Vec<&Frame> = frames.iter().filter(|f| f.stream() == 1).collect();
    assert!(
        matches!(
            on_stream[..],
            [Frame::Headers { end_stream: false, .. }, Frame::Data { end_stream: true, ref payload, .. }]
                if payload == b"ping"
        ),
        "{}",
        frames::describe(&frames)
    );
    server.graceful_stop(BOUND).report();
}

/// A connection handles the new streams h2 has ready in batches, giving way
/// between them. 100 requests in one write (a batch of 64 and more): 99
/// handlers that sleep past the test (so nothing they do wakes the
/// connection), then one /echo, which must still be served: the connection
/// comes back for what its first batch left.
fn streams_arriving_together_past_one_accept_batch_are_all_served(rt: Rt) {
    const STREAMS: u32 = 100;
    let last = 2 * STREAMS - 1;
    let server = TestServer::start(rt, test_config());
    let mut client = connect(&server);
    let mut bytes = Vec::new();
    for id in (1..last).step_by(2) {
        let block = frames::encode_request_block("GET", "/sleep/600000", &[]);
        let flags = flag::END_HEADERS | flag::END_STREAM;
        bytes.extend(frames::encode_frame(kind::HEADERS, flags, id, &block));
    }
    let block = frames::encode_request_block("POST", "/echo", &[]);
    bytes.extend(frames::encode_frame(
        kind::HEADERS,
        flag::END_HEADERS,
        last,
        &block,
    ));
    bytes.extend(frames::encode_frame(
        kind::DATA,
        flag::END_STREAM,
        last,
        b"the last",
    ));
    client.send_raw(&bytes).unwrap();
    let frames = client
        .read_until(true, |f| f.stream() == last && f.end_stream())
        .unwrap();
    assert_eq!(
        response(&frames, last),
        (Some(200), b"the last".to_vec(), true),
        "{}",
        frames::describe(&frames)
    );
    // Every stream is counted once. The /echo may count as cut: its handler
    // hands the response to h2 before it counts the stream complete, and a
    // hard stop does not wait for handlers.
    let report = server.stop().report();
    let streams = &report.streams;
    assert_eq!(
        streams.completed + streams.reset,
        u64::from(STREAMS),
        "{report:?}"
    );
    assert!(streams.completed <= 1, "{report:?}");
}

/// `Responder::send_with_trailers`, as the echo application's gRPC routes
/// use it: HEADERS, the message in one DATA frame, then the trailers ending
/// the stream; with an empty body (a malformed request's error), HEADERS and
/// trailers, no DATA.
fn a_unary_grpc_response_is_headers_data_then_trailers(rt: Rt) {
    let server = TestServer::start(rt, test_config());
    let mut client = connect(&server);
    let grpc = [("content-type", "application/grpc"), ("te", "trailers")];
    client
        .send_request(1, "POST", "/echo.Echo/Say", &grpc, false)
        .unwrap();
    client
        .send_data(1, &[0, 0, 0, 0, 2, b'h', b'i'], true)
        .unwrap();
    client
        .send_request(3, "POST", "/echo.Echo/Say", &grpc, false)
        .unwrap();
    client.send_data(3, b"not a gRPC message", true).unwrap();
    let mut ended = 0;
    let frames = client
        .read_until(true, |f| {
            ended += usize::from(f.end_stream());
            ended == 2
        })
        .unwrap();
    let on = |stream| -> Vec<&Frame> { frames.iter().filter(|f| f.stream() == stream).collect() };
    assert!(
        matches!(
            on(1)[..],
            [
                Frame::Headers { end_stream: false, .. },
                Frame::Data { end_stream: false, ref payload, .. },
                Frame::Headers { end_stream: true, .. },
            ] if payload == b"\0\0\0\0\x07echo:hi"
        ),
        "{}",
        frames::describe(&frames)
    );
    assert!(
        matches!(
            on(3)[..],
            [
                Frame::Headers {
                    end_stream: false,
                    ..
                },
                Frame::Headers {
                    end_stream: true,
                    ..
                }
            ]
        ),
        "{}",
        frames::describe(&frames)
    );
    server.graceful_stop(BOUND).report();
}

fn b1_listener_is_closed_before_any_goaway(rt: Rt) {
    let server = TestServer::start(rt, test_config());
    let mut client = connect(&server);
    client
        .send_request(1, "GET", "/sleep/300", &[], true)
        .unwrap();
    let stopping = server.graceful_stop(BOUND);
    client
        .read_until(false, |f| matches!(f, Frame::GoAway { .. }))
        .expect("first GOAWAY");
    // The drain has begun, so the listener is already closed: refused, not
    // accepted and then dropped.
    let refused = TcpStream::connect(server.addr).expect_err("listener still open");
    assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused);
    let (frames, close) = client.collect_until_close(true).unwrap();
    assert_eq!(
        response(&frames, 1).0,
        Some(200),
        "{}",
        frames::describe(&frames)
    );
    assert_eq!(close, Close::Fin);
    assert_eq!(stopping.report().outcome, Outcome::Graceful);
}

fn b2_goaway_ping_then_goaway_with_last_stream(rt: Rt) {
    let server = TestServer::start(rt, test_config());
    let mut client = connect(&server);
    client
        .send_request(1, "GET", "/sleep/200", &[], true)
        .unwrap();
    let stopping = server.graceful_stop(BOUND);
    let first = client.read_until(false, is_shutdown_ping).unwrap();
    assert_eq!(
        goaways(&first),
        [(MAX_STREAM_ID, code::NO_ERROR)],
        "{}",
        frames::describe(&first)
    );
    let goaway_at = first.iter().position(|f| matches!(f, Frame::GoAway { .. }));
    assert!(
        goaway_at < first.iter().position(is_shutdown_ping),
        "GOAWAY comes before the PING"
    );

    client.send_ping_ack(ping_payload(&first)).unwrap();
    let (rest, close) = client.collect_until_close(true).unwrap();
    assert_eq!(
        goaways(&rest),
        [(1, code::NO_ERROR)],
        "{}",
        frames::describe(&rest)
    );
    let (status, body, ended) = response(&rest, 1);
    assert_eq!((status, ended), (Some(200), true));
    assert_eq!(body, b"slept 200 ms\n");
    assert_eq!(close, Close::Fin);
    // Both GOAWAYs say why, as grpc-go's do.
    assert_eq!(goaway_reasons(&first), ["graceful_stop"]);
    assert_eq!(goaway_reasons(&rest), ["graceful_stop"]);

    let all: Vec<u32> = goaways(&first)
        .iter()
        .chain(&goaways(&rest))
        .map(|g| g.0)
        .collect();
    assert!(
        all.windows(2).all(|w| w[1] <= w[0]),
        "last-stream-id never increases: {all:?}"
    );
    let report = stopping.report();
    assert_eq!(report.outcome, Outcome::Graceful);
    assert_eq!(report.streams.completed, 1);
    assert_eq!(report.connections.drained, 1);
}

fn b3_streams_before_the_final_goaway_are_served_later_ones_never_reach_a_handler(rt: Rt) {
    let server = TestServer::start(rt, test_config());
    let mut client = connect(&server);
    client
        .send_request(1, "GET", "/sleep/800", &[], true)
        .unwrap();
    let stopping = server.graceful_stop(BOUND);
    let first = client.read_until(false, is_shutdown_ping).unwrap();

    // Opened after the first GOAWAY, before the final one: served.
    client.send_request(3, "POST", "/echo", &[], false).unwrap();
    client.send_data(3, b"late but in", true).unwrap();
    client.send_ping_ack(ping_payload(&first)).unwrap();
    let until_final = client
        .read_until(
            true,
            |f| matches!(f, Frame::GoAway { last_stream, .. } if *last_stream != MAX_STREAM_ID),
        )
        .unwrap();
    assert_eq!(goaways(&until_final), [(3, code::NO_ERROR)]);

    // Above the final GOAWAY's last-stream-id: must never reach a handler.
    client
        .send_request(5, "GET", "/sleep/0", &[], true)
        .unwrap();
    let (rest, close) = client.collect_until_close(true).unwrap();
    let all: Vec<Frame> = until_final.into_iter().chain(rest).collect();
    assert_eq!(response(&all, 1).0, Some(200), "{}", frames::describe(&all));
    let (status, body, _) = response(&all, 3);
    assert_eq!(
        (status, body.as_slice()),
        (Some(200), b"late but in".as_slice())
    );
    assert!(
        all.iter().all(|f| f.stream() != 5),
        "stream 5 got frames: {}",
        frames::describe(&all)
    );
    assert_eq!(close, Close::Fin);

    // Every stream a handler saw is counted: exactly streams 1 and 3.
    let report = stopping.report();
    assert_eq!(report.streams.completed, 2);
    assert_eq!(report.streams.refused + report.streams.reset, 0);
}

fn b4_idle_connection_closes_at_once_with_fin(rt: Rt) {
    let server = TestServer::start(rt, test_config());
    let mut client = connect(&server);
    let stopping = server.graceful_stop(BOUND);
    let (frames, close) = client.collect_until_close(true).unwrap();
    assert_two_phase_goaways(&frames);
    assert_eq!(close, Close::Fin);
    let report = stopping.report();
    assert_eq!(report.outcome, Outcome::Graceful);
    assert_eq!(report.connections.drained, 1);
}

fn b4_in_flight_stream_completes_then_fin(rt: Rt) {
    let server = TestServer::start(rt, test_config());
    let mut client = streaming(&server, "/stream/5/40");
    let stopping = server.graceful_stop(BOUND);
    let (frames, close) = client.collect_until_close(true).unwrap();
    let (_, body, ended) = response(&frames, 1);
    assert!(
        ended,
        "the stream ran to completion: {}",
        frames::describe(&frames)
    );
    assert!(String::from_utf8_lossy(&body).ends_with("chunk 4\n"));
    let last_frame = frames.last().expect("frames");
    assert!(
        matches!(
            last_frame,
            Frame::Data {
                end_stream: true,
                ..
            } | Frame::GoAway { .. }
        ),
        "the connection closes after the last stream ends: {}",
        frames::describe(&frames)
    );
    assert_eq!(close, Close::Fin);
    assert_eq!(stopping.report().outcome, Outcome::Graceful);
}

fn b4_linger_reads_late_client_bytes_so_the_close_is_a_fin(rt: Rt) {
    // The race below is real but narrow, so it runs on many connections at
    // once: without a linger, some of them see an RST.
    const CONNECTIONS: usize = 16;
    let server = TestServer::start(rt, test_config());
    let clients: Vec<FrameClient> = (0..CONNECTIONS).map(|_| connect(&server)).collect();
    let stopping = server.graceful_stop(BOUND);
    let outcomes: Vec<_> = clients
        .into_iter()
        .map(|mut client| {
            std::thread::spawn(move || {
                let first = client.read_until(false, is_shutdown_ping).unwrap();
                client.send_ping_ack(ping_payload(&first)).unwrap();
                // Wait, consuming nothing, until the final GOAWAY (9-byte
                // header + 8-byte payload) is in our receive buffer: the server
                // writes it and then closes its side. Only then send a few more
                // bytes, as a client does (WINDOW_UPDATEs for data it read).
                // A server that closed without a linger has nobody reading
                // them: its kernel answers with RST, which destroys the GOAWAY
                // still unread here.
                let mut peeked = [0u8; 17];
                while client.socket().peek(&mut peeked).expect("peek") < peeked.len() {}
                for _ in 0..8 {
                    client.send_window_update(0, 1024).unwrap();
                }
                client.shutdown_write().unwrap();
                client.collect_until_close(false).unwrap()
            })
        })
        .collect();
    for outcome in outcomes {
        let (rest, close) = outcome.join().expect("client thread");
        assert_eq!(
            goaways(&rest),
            [(0, code::NO_ERROR)],
            "{}",
            frames::describe(&rest)
        );
        assert_eq!(close, Close::Fin);
    }
    assert_eq!(stopping.report().outcome, Outcome::Graceful);
}

fn b5_client_that_never_acks_is_refused_then_closed(rt: Rt) {
    let server = TestServer::start(rt, test_config()); // ping-ack timeout 300 ms
    let mut client = connect(&server);
    client
        .send_request(1, "GET", "/sleep/1500", &[], true)
        .unwrap();
    let stopping = server.graceful_stop(BOUND);
    client.read_until(false, is_shutdown_ping).unwrap(); // and never ACK it

    // Probe with short requests: served while the server waits for the ACK,
    // refused (REFUSED_STREAM, safe to retry) once it has given up waiting.
    let mut stream = 3;
    let refused_at = loop {
        assert!(stream < 2001, "no stream was ever refused");
        client
            .send_request(stream, "GET", "/sleep/20", &[], true)
            .unwrap();
        let frames = client
            .read_until(false, |f| {
                f.stream() == stream && (f.end_stream() || matches!(f, Frame::RstStream { .. }))
            })
            .unwrap();
        if resets(&frames, stream) == [code::REFUSED_STREAM] {
            break stream;
        }
        assert_eq!(
            response(&frames, stream).0,
            Some(200),
            "{}",
            frames::describe(&frames)
        );
        stream += 2;
    };
    let (rest, close) = client.collect_until_close(false).unwrap();
    let (status, _, ended) = response(&rest, 1);
    assert_eq!(
        (status, ended),
        (Some(200), true),
        "the open stream finishes: {}",
        frames::describe(&rest)
    );
    assert_eq!(
        goaways(&rest),
        [(refused_at, code::NO_ERROR)],
        "{}",
        frames::describe(&rest)
    );
    assert_eq!(close, Close::Fin);
    let report = stopping.report();
    assert_eq!(
        report.outcome,
        Outcome::Graceful,
        "bounded without escalating"
    );
    assert_eq!(report.streams.refused, 1);
}

/// A stop's drain times the PING ACK on one deadline for all connections,
/// counted from its start; a connection the drain reaches after that deadline
/// (here, one whose handshake ends late) waits for its ACK on a timer of its
/// own, so a stream it sends between the first GOAWAY and its ACK is served,
/// not refused at once.
fn b5_a_connection_the_drain_reaches_late_still_waits_for_its_ack(rt: Rt) {
    // Handshakes may take the whole test; the ACK deadline is 300 ms.
    let server = TestServer::start(rt, test_config().handshake_timeout(BOUND));
    let mut late = FrameClient::connect(server.addr).unwrap();
    late.send_raw(&PREFACE[..10]).unwrap();
    // The server's SETTINGS (read, not ACKed: the preface is not whole): the
    // connection is accepted, its handshake open.
    let settings = late.read_frame().unwrap();
    assert!(matches!(settings, Some(Frame::Settings { ack: false, .. })));
    let mut silent = connect(&server);
    let stopping = server.graceful_stop(BOUND);
    // A client that never ACKs gets its final GOAWAY only once the shared
    // deadline has passed.
    let (frames, _) = silent.collect_until_close(false).unwrap();
    assert_two_phase_goaways(&frames);

    // Now the late connection finishes its handshake, and the drain reaches it.
    late.send_raw(&PREFACE[10..]).unwrap();
    late.send_settings(&[]).unwrap();
    let first = late.read_until(false, is_shutdown_ping).unwrap();
    assert_eq!(goaways(&first), [(MAX_STREAM_ID, code::NO_ERROR)]);
    late.send_request(1, "GET", "/echo", &[], true).unwrap();
    late.send_ping_ack(ping_payload(&first)).unwrap();
    let (rest, close) = late.collect_until_close(true).unwrap();
    assert_eq!(
        response(&rest, 1),
        (Some(200), Vec::new(), true),
        "{}",
        frames::describe(&rest)
    );
    assert_eq!(goaways(&rest), [(1, code::NO_ERROR)]);
    assert_eq!(close, Close::Fin);
    assert_eq!(stopping.report().outcome, Outcome::Graceful);
}

fn b6_silent_and_half_preface_connections_do_not_hold_the_stop(rt: Rt) {
    let server = TestServer::start(rt, test_config()); // handshake timeout 300 ms
    let mut silent = TcpStream::connect(server.addr).unwrap();
    let mut half = TcpStream::connect(server.addr).unwrap();
    half.write_all(&PREFACE[..10]).unwrap();
    let mut client = connect(&server);
    let stopping = server.graceful_stop(BOUND);
    // The good client's drain goes on regardless.
    let (frames, close) = client.collect_until_close(true).unwrap();
    assert_eq!(goaways(&frames).len(), 2, "{}", frames::describe(&frames));
    assert_eq!(close, Close::Fin);
    // The handshakes are bounded: both sockets are closed by the server.
    for socket in [&mut silent, &mut half] {
        socket.set_read_timeout(Some(BOUND)).unwrap();
        let mut sink = Vec::new();
        let _ = socket.read_to_end(&mut sink); // EOF or reset, not a timeout
    }
    assert_eq!(stopping.report().outcome, Outcome::Graceful);
}

fn b7_deadline_escalates_and_names_what_held_it(rt: Rt) {
    let server = TestServer::start(rt, test_config());
    // Ignores the drain: 100 chunks, one every 50 ms.
    let mut client = streaming(&server, "/stream/100/50");
    let stopping = server.graceful_stop(Duration::from_millis(300));
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
        "hard stop: GOAWAY(last=1, CANCEL)"
    );
    assert!(!response(&frames, 1).2, "the stream was cut, not finished");
    assert_ne!(close, Close::TimedOut);

    let report = stopping.report();
    assert_eq!(report.outcome, Outcome::Forced(ForceReason::Deadline));
    let held = report.held.clone().expect("what held the stop");
    assert_eq!(held.connections.len(), 1);
    assert_eq!(held.connections[0].open_streams, 1);
    let streams: Vec<(u32, &str)> = held.connections[0]
        .streams
        .iter()
        .map(|s| (s.id, s.path.as_str()))
        .collect();
    assert_eq!(
        streams,
        [(1, "/stream/100/50")],
        "the report names the stream"
    );
    assert_eq!(
        held.connections[0].peer,
        Some(client.socket().local_addr().unwrap())
    );
    assert_eq!(report.connections.forced, 1);
    assert_eq!(report.streams.reset, 1);
}

fn b8_hard_stop_preempts_a_drain_waiting_for_the_ack(rt: Rt) {
    let config = test_config().ping_ack_timeout(BOUND * 2); // would wait "forever"
    let server = TestServer::start(rt, config);
    let mut client = connect(&server);
    client
        .send_request(1, "GET", "/sleep/5000", &[], true)
        .unwrap();
    sync(&mut client); // stream 1 reached the server before the stop
    let graceful = server.graceful_stop(BOUND * 2);
    client.read_until(false, is_shutdown_ping).unwrap(); // no ACK: the drain is parked
    let hard = server.stop();
    let (frames, close) = client.collect_until_close(false).unwrap();
    assert_eq!(
        goaways(&frames),
        [(1, code::CANCEL)],
        "{}",
        frames::describe(&frames)
    );
    assert_eq!(close, Close::Fin);
    let hard = hard.report();
    let graceful = graceful.report();
    assert_eq!(hard.outcome, Outcome::Forced(ForceReason::Requested));
    assert_eq!(graceful.total, hard.total, "one stop, one report");
}

fn b9_cooperative_handler_ends_its_stream_on_drain(rt: Rt) {
    let server = TestServer::start(rt, test_config());
    let mut client = streaming(&server, "/follow/20");
    let stopping = server.graceful_stop(BOUND);
    let (frames, close) = client.collect_until_close(true).unwrap();
    let (_, body, ended) = response(&frames, 1);
    assert!(ended, "{}", frames::describe(&frames));
    assert!(String::from_utf8_lossy(&body).ends_with("drained\n"));
    assert_eq!(close, Close::Fin);
    let report = stopping.report();
    assert_eq!(report.outcome, Outcome::Graceful);
    assert_eq!(report.streams.completed, 1);
}

fn b10_handler_panic_is_contained(rt: Rt) {
    let server = TestServer::start(rt, test_config());
    let mut client = connect(&server);
    client.send_request(1, "GET", "/panic", &[], true).unwrap();
    let frames = client
        .read_until(true, |f| f.stream() == 1 && f.end_stream())
        .unwrap();
    assert_eq!(
        response(&frames, 1).0,
        Some(500),
        "{}",
        frames::describe(&frames)
    );
    // The same connection carries on.
    client.send_request(3, "POST", "/echo", &[], false).unwrap();
    client.send_data(3, b"after the panic", true).unwrap();
    let frames = client
        .read_until(true, |f| f.stream() == 3 && f.end_stream())
        .unwrap();
    assert_eq!(response(&frames, 3).1, b"after the panic");
    let report = server.graceful_stop(BOUND).report();
    assert_eq!(report.streams.handler_panics, 1);
    assert_eq!(report.outcome, Outcome::Graceful);
}

fn b11_report_counts_match_what_clients_saw(rt: Rt) {
    let server = TestServer::start(rt, test_config());
    let mut clients: Vec<FrameClient> = (0..3).map(|_| connect(&server)).collect();
    for client in &mut clients {
        client
            .send_request(1, "GET", "/sleep/100", &[], true)
            .unwrap();
        client
            .send_request(3, "GET", "/sleep/150", &[], true)
            .unwrap();
    }
    let stopping = server.graceful_stop(BOUND);
    let mut completed = 0;
    for client in &mut clients {
        let (frames, close) = client.collect_until_close(true).unwrap();
        assert_eq!(close, Close::Fin);
        completed += [1, 3].iter().filter(|&&s| response(&frames, s).2).count() as u64;
    }
    let report = stopping.report();
    assert_eq!(report.streams.completed, completed);
    assert_eq!(completed, 6);
    assert_eq!(report.connections.drained, 3);
    assert_eq!(report.connections.forced, 0);
    let phases: Vec<String> = report.phases.iter().map(|(p, _)| p.to_string()).collect();
    assert_eq!(
        phases,
        ["close listeners", "drain connections", "wait for handlers"]
    );
    let line = report.to_string();
    assert!(line.starts_with("shutdown: graceful in "), "{line}");
    assert!(
        line.ends_with(
            "streams: completed 6, refused 0, reset 0; connections: drained 3, forced 0"
        ),
        "{line}"
    );
}

fn bad_input_http1_request_is_closed_others_are_served(rt: Rt) {
    let server = TestServer::start(rt, test_config());
    let mut http1 = TcpStream::connect(server.addr).unwrap();
    http1
        .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    assert_closed_by_server(&mut http1);
    assert_serves_others(&server);
    assert_eq!(
        server.graceful_stop(BOUND).report().outcome,
        Outcome::Graceful
    );
}

fn bad_input_garbage_is_closed_others_are_served(rt: Rt) {
    let server = TestServer::start(rt, test_config());
    let mut garbage = TcpStream::connect(server.addr).unwrap();
    garbage.write_all(&[0xff; 64]).unwrap();
    assert_closed_by_server(&mut garbage);
    // Garbage after a valid preface: a frame-level protocol error.
    let mut client = connect(&server);
    client.send_raw(&[0xff; 64]).unwrap();
    let (frames, _) = client.collect_until_close(true).unwrap();
    assert!(
        goaways(&frames).iter().any(|g| g.1 != code::NO_ERROR),
        "a GOAWAY with an error code: {}",
        frames::describe(&frames)
    );
    assert_serves_others(&server);
    assert_eq!(
        server.graceful_stop(BOUND).report().outcome,
        Outcome::Graceful
    );
}

fn bad_input_oversized_frame_gets_goaway_frame_size_error(rt: Rt) {
    let server = TestServer::start(rt, test_config());
    let mut client = connect(&server);
    client.send_request(1, "POST", "/echo", &[], false).unwrap();
    // Larger than the 16 KiB SETTINGS_MAX_FRAME_SIZE the server advertises.
    client
        .send_frame(frames::kind::DATA, 0, 1, &vec![0u8; 20_000])
        .unwrap();
    let (frames, close) = client.collect_until_close(true).unwrap();
    assert_eq!(
        goaways(&frames).last().map(|g| g.1),
        Some(code::FRAME_SIZE_ERROR),
        "{}",
        frames::describe(&frames)
    );
    assert_ne!(close, Close::TimedOut);
    assert_serves_others(&server);
    assert_eq!(
        server.graceful_stop(BOUND).report().outcome,
        Outcome::Graceful
    );
}
