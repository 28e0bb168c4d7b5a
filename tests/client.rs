//! The client half, on every runtime: each retry rule driven through a real
//! h2 connection by a scripted server that sends exactly the frames a case
//! needs, then the client against our own server draining under load.

#[path = "support/frames.rs"]
mod frames;
#[path = "support/peer.rs"]
mod peer;
#[path = "support/server.rs"]
mod server;

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use frames::{code, Frame, FrameClient, MAX_STREAM_ID};
use peer::{drain, read_request, respond, Script, ScriptedServer};
use server::{test_config, Rt, TestServer, BOUND};
use winddown::http2::client::{
    Body, ClientConfig, ErrorKind, NotRetried, Processing, Request, Unprocessed,
};
use winddown::DrainToken;

on_every_runtime!(
    goaway_above_the_last_stream_id_is_retried_on_a_new_connection,
    refused_stream_is_retried_on_a_new_connection,
    reset_after_processing_is_not_retried_unless_idempotent,
    reset_after_processing_is_retried_once_when_idempotent,
    connection_lost_after_sending_is_not_retried_unless_idempotent,
    connection_lost_after_sending_is_retried_on_a_new_connection_when_idempotent,
    unprocessed_with_a_spent_streaming_body_is_not_retried,
    unprocessed_twice_is_retried_only_once,
    new_requests_leave_a_draining_connection_while_its_streams_finish,
    answered_then_failed_is_never_retried,
    the_next_address_is_used_when_one_refuses,
    no_address_accepting_is_a_connect_error,
    garbage_from_the_server_is_an_error_not_a_panic,
    a_failed_connect_round_backs_off_instead_of_storming,
    requests_waiting_for_a_connection_that_goes_away_at_once_get_another,
    an_error_after_a_retry_reports_the_furthest_any_try_got,
    a_request_timing_out_unanswered_moves_new_requests_to_a_new_connection,
    keepalive_closes_a_connection_whose_peer_stopped_answering,
    nothing_fails_across_repeated_graceful_stops_with_a_second_server,
);

fn script(f: impl FnOnce(&mut FrameClient) -> io::Result<()> + Send + 'static) -> Script {
    Box::new(f)
}

/// Answers one request with its own body.
fn echo_once() -> Script {
    script(|peer| {
        let (stream, body) = read_request(peer)?;
        respond(peer, stream, &body)?;
        drain(peer)
    })
}

/// Reads one request (headers and body) and does `then` to its stream.
fn after_request(
    then: impl FnOnce(&mut FrameClient, u32) -> io::Result<()> + Send + 'static,
) -> Script {
    script(move |peer| {
        let (stream, _) = read_request(peer)?;
        then(peer, stream)
    })
}

fn config() -> ClientConfig {
    ClientConfig::default()
        .connect_timeout(Duration::from_secs(2))
        .request_timeout(Some(BOUND))
}

/// Runs `$body` with `$client`, a client for `$addrs` on runtime `$rt`.
macro_rules! with_client {
    ($rt:expr, $addrs:expr, |$client:ident| $body:expr) => {
        with_client!($rt, $addrs, config(), |$client| $body)
    };
    ($rt:expr, $addrs:expr, $config:expr, |$client:ident| $body:expr) => {
        match $rt {
            Rt::Smol => ::smol::block_on(async {
                let $client = winddown_smol::client($addrs, $config);
                $body.await
            }),
            Rt::Tokio => server::tokio_runtime().block_on(async {
                let $client = winddown_tokio::client($addrs, $config);
                $body.await
            }),
        }
    };
}

fn goaway_above_the_last_stream_id_is_retried_on_a_new_connection(rt: Rt) {
    let server = ScriptedServer::start(vec![
        after_request(|peer, _| {
            // Stream 1 is above last-stream-id 0: never processed.
            peer.send_goaway(0, code::NO_ERROR)?;
            drain(peer)
        }),
        echo_once(),
    ]);
    let (result, stats) = with_client!(rt, [server.addr], |client| async {
        // Not idempotent: still retried, because it was provably not processed.
        let result = client.send(Request::post("/order", "one book")).await;
        (result, client.stats())
    });
    let response = result.expect("retried on a new connection");
    assert_eq!(response.body(), "one book");
    assert_eq!(response.attempts(), 2);
    assert_eq!((stats.retries, stats.connections), (1, 2), "{stats:?}");
    server.join();
}

fn refused_stream_is_retried_on_a_new_connection(rt: Rt) {
    let server = ScriptedServer::start(vec![
        after_request(|peer, stream| {
            peer.send_rst(stream, code::REFUSED_STREAM)?;
            drain(peer)
        }),
        echo_once(),
    ]);
    let (result, stats) = with_client!(rt, [server.addr], |client| async {
        let result = client.send(Request::post("/order", "refused once")).await;
        (result, client.stats())
    });
    let response = result.expect("retried");
    assert_eq!(response.body(), "refused once");
    assert_eq!((stats.retries, stats.connections), (1, 2), "{stats:?}");
    server.join();
}

fn reset_after_processing_is_not_retried_unless_idempotent(rt: Rt) {
    let server = ScriptedServer::start(vec![after_request(|peer, stream| {
        peer.send_rst(stream, code::INTERNAL_ERROR)?;
        drain(peer)
    })]);
    let error = with_client!(rt, [server.addr], |client| async {
        client.send(Request::post("/order", "x")).await
    })
    .expect_err("not retried");
    assert_eq!(error.kind(), ErrorKind::Http2);
    assert_eq!(error.processing(), Processing::MaybeProcessed);
    assert_eq!(error.not_retried(), Some(NotRetried::NotIdempotent));
    assert_eq!(error.attempts(), 1);
    assert_eq!(
        error.h2().and_then(|e| e.reason()),
        Some(h2::Reason::INTERNAL_ERROR)
    );
    server.join();
}

fn reset_after_processing_is_retried_once_when_idempotent(rt: Rt) {
    let server = ScriptedServer::start(vec![script(|peer| {
        let (first, _) = read_request(peer)?;
        peer.send_rst(first, code::INTERNAL_ERROR)?;
        // The retry: the connection was not going away, so it comes here.
        let (second, body) = read_request(peer)?;
        respond(peer, second, &body)?;
        drain(peer)
    })]);
    let response = with_client!(rt, [server.addr], |client| async {
        client
            .send(Request::post("/put", "same twice").idempotent())
            .await
    })
    .expect("retried once");
    assert_eq!(response.body(), "same twice");
    assert_eq!(response.attempts(), 2);
    server.join();
}

fn connection_lost_after_sending_is_not_retried_unless_idempotent(rt: Rt) {
    // The script returns without answering: the socket closes.
    let server = ScriptedServer::start(vec![after_request(|_, _| Ok(()))]);
    let error = with_client!(rt, [server.addr], |client| async {
        client.send(Request::post("/order", "x")).await
    })
    .expect_err("not retried");
    assert_eq!(error.processing(), Processing::MaybeProcessed);
    assert_eq!(error.not_retried(), Some(NotRetried::NotIdempotent));
    server.join();
}

fn connection_lost_after_sending_is_retried_on_a_new_connection_when_idempotent(rt: Rt) {
    let server = ScriptedServer::start(vec![after_request(|_, _| Ok(())), echo_once()]);
    let (result, stats) = with_client!(rt, [server.addr], |client| async {
        let result = client
            .send(Request::post("/put", "again").idempotent())
            .await;
        (result, client.stats())
    });
    assert_eq!(result.expect("retried").body(), "again");
    assert_eq!((stats.retries, stats.connections), (1, 2), "{stats:?}");
    server.join();
}

fn unprocessed_with_a_spent_streaming_body_is_not_retried(rt: Rt) {
    let server = ScriptedServer::start(vec![after_request(|peer, _| {
        peer.send_goaway(0, code::NO_ERROR)?;
        drain(peer)
    })]);
    let error = with_client!(rt, [server.addr], |client| async {
        let chunks = futures_lite::stream::iter([Ok(bytes::Bytes::from("produced once"))]);
        client
            .send(Request::post("/upload", Body::from_stream(chunks)))
            .await
    })
    .expect_err("not replayable");
    assert_eq!(
        error.processing(),
        Processing::Unprocessed(Unprocessed::AboveLastStreamId)
    );
    assert_eq!(error.not_retried(), Some(NotRetried::BodyNotReplayable));
    server.join();
}

fn unprocessed_twice_is_retried_only_once(rt: Rt) {
    let refuse = || {
        after_request(|peer, stream| {
            peer.send_rst(stream, code::REFUSED_STREAM)?;
            drain(peer)
        })
    };
    let server = ScriptedServer::start(vec![refuse(), refuse()]);
    let error = with_client!(rt, [server.addr], |client| async {
        client.send(Request::post("/order", "x")).await
    })
    .expect_err("one retry only");
    assert_eq!(
        error.processing(),
        Processing::Unprocessed(Unprocessed::Refused)
    );
    assert_eq!(error.not_retried(), Some(NotRetried::AlreadyRetried));
    assert_eq!(error.attempts(), 2);
    server.join();
}

fn new_requests_leave_a_draining_connection_while_its_streams_finish(rt: Rt) {
    let (goaway_seen, wait_goaway) = std::sync::mpsc::channel();
    let (second_served, wait_second) = std::sync::mpsc::channel();
    let old = script(move |peer| {
        let (first, body) = read_request(peer)?;
        // Phase one of a drain; the PING's ACK proves the client read the
        // GOAWAY (frames are processed in order).
        peer.send_goaway(MAX_STREAM_ID, code::NO_ERROR)?;
        peer.send_ping(*b"drain!!!")?;
        peer.read_until(true, |f| matches!(f, Frame::Ping { ack: true, .. }))?;
        let _ = goaway_seen.send(());
        // The old stream finishes after the new request was served elsewhere.
        let _ = wait_second.recv_timeout(BOUND);
        respond(peer, first, &body)?;
        peer.send_goaway(first, code::NO_ERROR)?;
        drain(peer)
    });
    let new = script(move |peer| {
        let (stream, body) = read_request(peer)?;
        respond(peer, stream, &body)?;
        let _ = second_served.send(());
        drain(peer)
    });
    let server = ScriptedServer::start(vec![old, new]);
    let wait_goaway = Arc::new(std::sync::Mutex::new(wait_goaway));
    let (first, second, stats) = with_client!(rt, [server.addr], |client| async {
        let first = client.send(Request::post("/slow", "first"));
        let second = async {
            let wait = wait_goaway.clone();
            // Off the executor: the wait blocks.
            let _ = blocking_wait(move || wait.lock().map(|w| w.recv_timeout(BOUND)).is_ok()).await;
            client.send(Request::post("/new", "second")).await
        };
        let (first, second) = futures_lite::future::zip(first, second).await;
        (first, second, client.stats())
    });
    let first = first.expect("the old connection's stream finished");
    let second = second.expect("served on the new connection");
    assert_eq!(
        (first.body().as_ref(), first.attempts()),
        (&b"first"[..], 1)
    );
    // Its first try found the connection going away before it was sent.
    assert_eq!(
        (second.body().as_ref(), second.attempts()),
        (&b"second"[..], 2)
    );
    assert_eq!(
        (stats.reroutes, stats.retries, stats.connections),
        (1, 0, 2),
        "{stats:?}"
    );
    server.join();
}

/// Runs a blocking wait on its own thread and awaits it without blocking the
/// executor (a one-shot token fired by the thread).
async fn blocking_wait(wait: impl FnOnce() -> bool + Send + 'static) -> bool {
    let done = DrainToken::new();
    let result = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (d, r) = (done.clone(), result.clone());
    std::thread::spawn(move || {
        r.store(wait(), Ordering::SeqCst);
        d.fire();
    });
    done.wait().await;
    result.load(Ordering::SeqCst)
}

fn answered_then_failed_is_never_retried(rt: Rt) {
    let server = ScriptedServer::start(vec![after_request(|peer, stream| {
        // Headers, part of a body, then a reset: the server had answered.
        peer.send_frame(
            frames::kind::HEADERS,
            frames::flag::END_HEADERS,
            stream,
            &[0x88],
        )?;
        peer.send_data(stream, b"partial", false)?;
        peer.send_rst(stream, code::INTERNAL_ERROR)?;
        drain(peer)
    })]);
    let error = with_client!(rt, [server.addr], |client| async {
        client.send(Request::get("/x").idempotent()).await
    })
    .expect_err("answered");
    assert_eq!(error.processing(), Processing::Processed);
    assert_eq!(error.not_retried(), Some(NotRetried::Answered));
    server.join();
}

fn closed_port() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr")
    // Dropped here: connects to it are refused.
}

fn the_next_address_is_used_when_one_refuses(rt: Rt) {
    let server = ScriptedServer::start(vec![echo_once()]);
    let (result, stats) = with_client!(rt, [closed_port(), server.addr], |client| async {
        let result = client.send(Request::post("/x", "here")).await;
        (result, client.stats())
    });
    let response = result.expect("the second address serves");
    assert_eq!(response.peer(), server.addr);
    assert_eq!(
        (stats.connect_failures, stats.connections),
        (1, 1),
        "{stats:?}"
    );
    server.join();
}

fn no_address_accepting_is_a_connect_error(rt: Rt) {
    let error = with_client!(rt, [closed_port(), closed_port()], |client| async {
        client.send(Request::post("/x", "nowhere")).await
    })
    .expect_err("nothing listens");
    assert_eq!(error.kind(), ErrorKind::Connect);
    assert_eq!(error.processing(), Processing::NotSent);
}

/// Many requests wait for one connect; the connection it makes goes away at
/// once (a server in its drain). They must not fail as if the connect had:
/// another round serves them.
fn requests_waiting_for_a_connection_that_goes_away_at_once_get_another(rt: Rt) {
    const REQUESTS: usize = 64;
    let draining = script(|peer| {
        peer.send_goaway(0, code::NO_ERROR)?;
        drain(peer)
    });
    let serving = script(|peer| {
        for _ in 0..REQUESTS {
            let (stream, _) = read_request(peer)?;
            respond(peer, stream, b"ok")?;
        }
        drain(peer)
    });
    let server = ScriptedServer::start(vec![draining, serving]);
    let results = with_client!(rt, [server.addr], |client| async {
        let requests = (0..REQUESTS).map(|_| client.send(Request::get("/x")));
        join_all(requests.collect()).await
    });
    let failed: Vec<String> = results
        .iter()
        .filter_map(|r| r.as_ref().err().map(|e| e.to_string()))
        .collect();
    assert!(
        failed.is_empty(),
        "{} failed, e.g. {:?}",
        failed.len(),
        failed.first()
    );
    server.join();
}

/// A peer that takes a request and then says nothing more (gone without a
/// FIN or RST) does not keep new requests: after the timeout they go to a
/// new connection.
fn a_request_timing_out_unanswered_moves_new_requests_to_a_new_connection(rt: Rt) {
    let server = ScriptedServer::start(vec![after_request(|peer, _| drain(peer)), echo_once()]);
    let quick = config().request_timeout(Some(Duration::from_millis(300)));
    let (first, second, stats) = with_client!(rt, [server.addr], quick, |client| async {
        let first = client.send(Request::post("/x", "lost")).await;
        let second = client.send(Request::post("/x", "found")).await;
        (first, second, client.stats())
    });
    let first = first.expect_err("no answer");
    assert_eq!(
        (first.kind(), first.processing()),
        (ErrorKind::Timeout, Processing::MaybeProcessed)
    );
    assert_eq!(second.expect("a new connection answers").body(), "found");
    assert_eq!(stats.connections, 2, "{stats:?}");
    server.join();
}

/// With keepalive on, a peer that stops answering (here: never ACKs a PING,
/// never answers the request) loses the connection; the request in flight
/// fails as "may have been processed", the next one gets a new connection.
fn keepalive_closes_a_connection_whose_peer_stopped_answering(rt: Rt) {
    let silent = script(|peer| peer.collect_until_close(false).map(|_| ()));
    let server = ScriptedServer::start(vec![silent, echo_once()]);
    let watchful = config()
        .keepalive(Some(Duration::from_millis(100)))
        .keepalive_timeout(Duration::from_millis(200));
    let (first, second, stats) = with_client!(rt, [server.addr], watchful, |client| async {
        let first = client.send(Request::post("/x", "unanswered")).await;
        let second = client.send(Request::post("/x", "answered")).await;
        (first, second, client.stats())
    });
    let first = first.expect_err("the connection was closed under it");
    // Closed by the keepalive, long before the request timeout.
    assert_eq!(first.kind(), ErrorKind::Http2, "{first}");
    assert_eq!(first.processing(), Processing::MaybeProcessed, "{first}");
    assert_eq!(second.expect("a new connection answers").body(), "answered");
    assert_eq!(stats.connections, 2, "{stats:?}");
    server.join();
}

/// An idempotent request that reached the server, then lost its connection,
/// is retried; the retry cannot connect. The error must say the request may
/// have been processed (the first try's fate), not "not sent".
fn an_error_after_a_retry_reports_the_furthest_any_try_got(rt: Rt) {
    // One connection: the listener closes after it, so the retry is refused.
    let server = ScriptedServer::start(vec![after_request(|_, _| Ok(()))]);
    let error = with_client!(rt, [server.addr], |client| async {
        client
            .send(Request::post("/charge", "once").idempotent())
            .await
    })
    .expect_err("the retry cannot connect");
    assert_eq!(error.kind(), ErrorKind::Connect, "{error}");
    assert_eq!(error.processing(), Processing::MaybeProcessed, "{error}");
    server.join();
}

fn a_failed_connect_round_backs_off_instead_of_storming(rt: Rt) {
    // A long first wait, so the requests below all fall inside it.
    let patient = config().connect_backoff(Duration::from_secs(30));
    let (errors, stats) = with_client!(rt, [closed_port()], patient, |client| async {
        let mut errors = Vec::new();
        for _ in 0..20 {
            errors.push(
                client
                    .send(Request::post("/x", "y"))
                    .await
                    .expect_err("refused"),
            );
        }
        (errors, client.stats())
    });
    // One connect attempt; the other 19 requests failed at once, not sent.
    assert_eq!(stats.connect_failures, 1, "{stats:?}");
    for error in &errors {
        assert_eq!(
            (error.kind(), error.processing()),
            (ErrorKind::Connect, Processing::NotSent)
        );
    }
    assert!(
        errors[19].to_string().contains("next attempt in"),
        "{}",
        errors[19]
    );
}

fn garbage_from_the_server_is_an_error_not_a_panic(rt: Rt) {
    let server = ScriptedServer::start(vec![after_request(|peer, _| {
        peer.send_raw(b"\xff\xff\xff\xff\xff\xff\xff\xff\xff this is not HTTP/2")?;
        drain(peer)
    })]);
    let error = with_client!(rt, [server.addr], |client| async {
        client.send(Request::post("/x", "y")).await
    })
    .expect_err("a protocol error");
    assert_eq!(error.processing(), Processing::MaybeProcessed, "{error}");
    server.join();
}

/// Two of our servers, A and B, at fixed addresses; a load of
/// non-idempotent POSTs (and gRPC calls) from one client given both; A and B
/// are stopped gracefully and restarted in turn, three times each. Not one
/// request may fail, and every answer must be its own request's body.
fn nothing_fails_across_repeated_graceful_stops_with_a_second_server(rt: Rt) {
    let mut a = TestServer::start(rt, test_config());
    let mut b = TestServer::start(rt, test_config());
    let addrs = [a.addr, b.addr];
    let done = DrainToken::new();
    let load_ended = DrainToken::new();
    let sent = Arc::new(AtomicU64::new(0));
    let orchestrator = {
        let (done, sent, load_ended) = (done.clone(), sent.clone(), load_ended.clone());
        std::thread::spawn(move || {
            let progress = |n: u64| {
                // Load reaches each server before it is stopped.
                let target = sent.load(Ordering::SeqCst) + n;
                let start = std::time::Instant::now();
                while sent.load(Ordering::SeqCst) < target && start.elapsed() < BOUND {
                    std::thread::yield_now();
                }
            };
            let mut reports = Vec::new();
            for _ in 0..3 {
                for server in [&mut a, &mut b] {
                    progress(200);
                    reports.push(server.graceful_stop(BOUND).report());
                    *server = TestServer::start_on(server.rt, test_config(), server.addr);
                }
            }
            progress(200);
            done.fire();
            // Both servers stop only once the load has ended: stopping them
            // together, with nowhere to go, is not what this test is about.
            let _ = load_ended.wait_blocking_timeout(BOUND);
            for server in [a, b] {
                reports.push(server.graceful_stop(BOUND).report());
            }
            reports
        })
    };
    let (failures, answered, stats) = with_client!(rt, addrs, |client| async {
        let workers = (0..8).map(|worker| {
            let (client, done, sent) = (client.clone(), done.clone(), sent.clone());
            async move {
                let mut failures = Vec::new();
                let mut answered = 0u64;
                let mut i = 0u64;
                while !done.is_fired() {
                    i += 1;
                    let body = format!("worker {worker} request {i}");
                    let request = if i % 4 == 0 {
                        Request::grpc("/echo.Echo/Say", &body)
                    } else {
                        Request::post("/echo", body.clone())
                    };
                    sent.fetch_add(1, Ordering::SeqCst);
                    match client.send(request).await {
                        Ok(r)
                            if i % 4 == 0
                                && r.grpc_message() == Some(format!("echo:{body}").as_bytes()) =>
                        {
                            answered += 1
                        }
                        Ok(r) if i % 4 != 0 && r.body() == body.as_bytes() => answered += 1,
                        Ok(r) => failures.push(format!(
                            "{body}: wrong answer {} {:?}",
                            r.status(),
                            r.body()
                        )),
                        Err(e) => failures.push(format!("{body}: {e}")),
                    }
                }
                (failures, answered)
            }
        });
        let joined = join_all(workers.collect()).await;
        load_ended.fire();
        let (failures, answered) =
            joined
                .into_iter()
                .fold((Vec::new(), 0), |(mut f, n), (wf, wn)| {
                    f.extend(wf);
                    (f, n + wn)
                });
        (failures, answered, client.stats())
    });
    let reports = orchestrator.join().expect("orchestrator");
    assert!(
        failures.is_empty(),
        "{} failed, e.g. {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    assert!(answered >= 1400, "only {answered} answered");
    for report in &reports {
        assert!(!report.outcome.is_forced(), "{report}");
        assert_eq!(report.streams.reset, 0, "{report}");
    }
    // Every stop moved the client: at least one new connection per stop.
    assert!(stats.connections >= 7, "{stats:?}");
}

/// Polls every future to completion on the current task.
async fn join_all<F: std::future::Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut futures: Vec<_> = futures.into_iter().map(|f| Some(Box::pin(f))).collect();
    let mut outputs: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (slot, output) in futures.iter_mut().zip(outputs.iter_mut()) {
            if let Some(future) = slot {
                match future.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => {
                        *output = Some(v);
                        *slot = None;
                    }
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().flatten().collect()
}
