//! The `Shutdown` coordinator's contract: phase order, preemption by a hard
//! stop in every phase, deadlines, repeated and concurrent calls, scopes.
//!
//! Futures are polled by hand on one thread, so every phase is reached
//! deterministically, without sleeps.

use std::future::Future;
use std::pin::Pin;

use futures_lite::future::{block_on, poll_once};
use winddown::{DrainToken, ForceReason, Outcome, Phase, Report, Shutdown};

type Stop<'a> = Pin<Box<dyn Future<Output = Report> + 'a>>;

/// Polls once; `Some(report)` if the stop finished.
fn poll(stop: &mut Stop<'_>) -> Option<Report> {
    block_on(poll_once(stop.as_mut()))
}

fn graceful(shutdown: &Shutdown) -> Stop<'_> {
    Box::pin(shutdown.graceful_stop())
}

fn phase_names(report: &Report) -> Vec<String> {
    report.phases.iter().map(|(p, _)| p.to_string()).collect()
}

#[test]
fn phases_run_in_order_and_each_waits_for_its_work() {
    let shutdown = Shutdown::new();
    let listener = shutdown.listener();
    let conn = shutdown.connection(Some("127.0.0.1:9".parse().unwrap()));
    let task = shutdown.track();
    let handler = shutdown.handler();
    let scope = shutdown.scope("queue");
    let scope_work = scope.track();

    let mut stop = graceful(&shutdown);
    assert!(poll(&mut stop).is_none());
    // Listeners close first; nothing drains while an accept loop is live.
    assert_eq!(shutdown.phase(), Some(Phase::CloseListeners));
    assert!(shutdown.close_token().is_fired());
    assert!(!shutdown.drain_token().is_fired());

    drop(listener);
    assert!(poll(&mut stop).is_none());
    assert_eq!(shutdown.phase(), Some(Phase::DrainConnections));
    assert!(shutdown.drain_token().is_fired());

    drop(conn);
    assert!(poll(&mut stop).is_none(), "a serving task is still running");
    drop(task);
    assert!(poll(&mut stop).is_none());
    assert_eq!(shutdown.phase(), Some(Phase::WaitHandlers));
    assert!(!scope.drain_token().is_fired(), "scopes wait for handlers");

    drop(handler);
    assert!(poll(&mut stop).is_none());
    assert_eq!(shutdown.phase(), Some(Phase::Scope("queue".into())));
    assert!(scope.drain_token().is_fired());

    drop(scope_work);
    let report = poll(&mut stop).expect("finished");
    assert_eq!(report.outcome, Outcome::Graceful);
    assert_eq!(
        phase_names(&report),
        [
            "close listeners",
            "drain connections",
            "wait for handlers",
            "scope queue"
        ]
    );
    assert_eq!(report.connections.drained, 1);
    assert_eq!(report.connections.forced, 0);
    assert!(report.held.is_none());
    assert!(
        !shutdown.stop_token().is_fired(),
        "a graceful stop never fires the hard stop"
    );
}

/// Builds a shutdown whose graceful stop is parked in `phase`, returning what
/// keeps it there.
fn parked_in(phase: &Phase) -> (Shutdown, Vec<Box<dyn std::any::Any>>) {
    let shutdown = Shutdown::new();
    let mut held: Vec<Box<dyn std::any::Any>> = Vec::new();
    match phase {
        Phase::CloseListeners => held.push(Box::new(shutdown.listener())),
        Phase::DrainConnections => held.push(Box::new(shutdown.connection(None))),
        Phase::WaitHandlers => held.push(Box::new(shutdown.handler())),
        Phase::Scope(name) => held.push(Box::new(shutdown.scope(name).track())),
        _ => unreachable!("not a waiting phase: {phase}"),
    }
    (shutdown, held)
}

#[test]
fn hard_stop_preempts_a_graceful_stop_in_every_phase() {
    for phase in [
        Phase::CloseListeners,
        Phase::DrainConnections,
        Phase::WaitHandlers,
        Phase::Scope("db".into()),
    ] {
        let (shutdown, held) = parked_in(&phase);
        let mut graceful_stop = graceful(&shutdown);
        assert!(poll(&mut graceful_stop).is_none());
        assert_eq!(shutdown.phase(), Some(phase.clone()));

        // The hard stop may only wait for listeners, connections and serving
        // tasks, which react to the stop token: release those, as a server does.
        let mut hard: Stop<'_> = Box::pin(shutdown.stop());
        let released_by_server = matches!(phase, Phase::CloseListeners | Phase::DrainConnections);
        let (report, _still_held) = if released_by_server {
            assert!(
                poll(&mut hard).is_none(),
                "{phase}: waits for the server to close"
            );
            assert!(shutdown.is_stopping());
            drop(held);
            (poll(&mut hard).expect("hard stop finished"), None)
        } else {
            // Handlers and scopes are not waited for: the stop returns now.
            (poll(&mut hard).expect("hard stop finished"), Some(held))
        };
        assert_eq!(
            report.outcome,
            Outcome::Forced(ForceReason::Requested),
            "{phase}"
        );
        assert!(
            !report.held.as_ref().unwrap().is_empty(),
            "{phase}: names what held it"
        );
        // The graceful caller sees the same report at once.
        let graceful_report = poll(&mut graceful_stop).expect("graceful caller released");
        assert_eq!(graceful_report.outcome, report.outcome);
        assert_eq!(graceful_report.total, report.total);
    }
}

#[test]
fn deadline_escalates_and_reports_what_held_it() {
    let shutdown = Shutdown::new();
    let conn = shutdown.connection(Some("192.0.2.7:4242".parse().unwrap()));
    let _stream = conn.stream_opened(1, "/slow");
    let _handler = shutdown.handler();
    let deadline = DrainToken::new();

    let mut stop: Stop<'_> = Box::pin(shutdown.graceful_stop_with_deadline(deadline.wait_owned()));
    assert!(poll(&mut stop).is_none());
    deadline.fire();
    assert!(
        poll(&mut stop).is_none(),
        "the server still has to close the connection"
    );
    assert!(shutdown.stop_token().is_fired());
    drop(conn);
    let report = poll(&mut stop).expect("finished");

    assert_eq!(report.outcome, Outcome::Forced(ForceReason::Deadline));
    assert_eq!(report.connections.forced, 1);
    assert_eq!(report.connections.drained, 0);
    let held = report.held.clone().expect("held");
    assert_eq!(held.connections.len(), 1);
    assert_eq!(
        held.connections[0].peer,
        Some("192.0.2.7:4242".parse().unwrap())
    );
    assert_eq!(held.connections[0].open_streams, 1);
    assert_eq!(held.handlers, 1);
    assert!(phase_names(&report).ends_with(&["hard stop".to_string()]));
    assert!(report
        .to_string()
        .starts_with("shutdown: forced (deadline) in "));
}

#[test]
fn concurrent_graceful_stops_share_one_report() {
    let shutdown = Shutdown::new();
    let handler = shutdown.handler();
    let mut a = graceful(&shutdown);
    let mut b = graceful(&shutdown);
    assert!(poll(&mut a).is_none());
    assert!(poll(&mut b).is_none());
    drop(handler);
    let ra = poll(&mut b).expect("b finished");
    let rb = poll(&mut a).expect("a finished");
    assert_eq!(ra.total, rb.total);
    assert_eq!(ra.outcome, Outcome::Graceful);
    assert_eq!(phase_names(&ra), phase_names(&rb));
}

#[test]
fn calls_after_completion_return_the_same_report() {
    let shutdown = Shutdown::new();
    let first = block_on(shutdown.graceful_stop());
    let hard = block_on(shutdown.stop());
    let again = block_on(shutdown.graceful_stop());
    assert_eq!(
        hard.outcome,
        Outcome::Graceful,
        "a finished stop is not re-run"
    );
    assert_eq!(first.total, hard.total);
    assert_eq!(first.total, again.total);
    assert!(!shutdown.stop_token().is_fired());
}

#[test]
fn a_dropped_stop_future_loses_nothing() {
    let shutdown = Shutdown::new();
    let handler = shutdown.handler();
    let mut stop = graceful(&shutdown);
    assert!(poll(&mut stop).is_none());
    drop(stop); // e.g. the caller was cancelled
    assert!(shutdown.is_draining(), "the drain stays fired");
    drop(handler);
    let report = block_on(shutdown.graceful_stop());
    assert_eq!(report.outcome, Outcome::Graceful);
}

#[test]
fn scopes_stop_one_after_another_in_creation_order() {
    let shutdown = Shutdown::new();
    let http = shutdown.scope("http");
    let queue = shutdown.scope("queue");
    let db = shutdown.scope("db");
    let http_work = http.track();
    let queue_work = queue.track();
    let _db_work = db.track();

    let mut stop = graceful(&shutdown);
    assert!(poll(&mut stop).is_none());
    assert!(http.drain_token().is_fired());
    assert!(!queue.drain_token().is_fired());
    drop(http_work);
    assert!(poll(&mut stop).is_none());
    assert!(queue.drain_token().is_fired());
    assert!(!db.drain_token().is_fired());
    drop(queue_work);
    assert!(poll(&mut stop).is_none());
    assert!(db.drain_token().is_fired());
    assert_eq!(shutdown.held().scopes, vec![("db".into(), 1)]);
}

#[test]
fn hard_stop_drains_every_scope_and_does_not_wait_for_them() {
    let shutdown = Shutdown::new();
    let a = shutdown.scope("a");
    let b = shutdown.scope("b");
    let _work = b.track();
    let report = block_on(shutdown.stop());
    assert!(a.drain_token().is_fired() && b.drain_token().is_fired());
    assert!(b.stop_token().is_fired());
    assert_eq!(report.held.unwrap().scopes, vec![("b".into(), 1)]);
}

#[test]
fn stopped_waits_for_another_callers_stop() {
    let shutdown = Shutdown::new();
    let mut watcher: Stop<'_> = Box::pin(shutdown.stopped());
    assert!(poll(&mut watcher).is_none());
    let mut stop = graceful(&shutdown);
    assert!(
        poll(&mut watcher).is_none(),
        "stopped() does not drive the stop"
    );
    let report = poll(&mut stop).expect("nothing to wait for");
    assert_eq!(poll(&mut watcher).expect("woken").total, report.total);
}

#[test]
fn stop_counts_are_copied_into_the_report() {
    let shutdown = Shutdown::new();
    for _ in 0..3 {
        shutdown.stats().stream_completed();
    }
    shutdown.stats().stream_refused();
    shutdown.stats().handler_panicked();
    let early = shutdown.connection(None);
    drop(early); // closed before any stop: neither drained nor forced
    let report = block_on(shutdown.graceful_stop());
    assert_eq!(report.streams.completed, 3);
    assert_eq!(report.streams.refused, 1);
    assert_eq!(report.streams.handler_panics, 1);
    assert_eq!(report.connections.drained + report.connections.forced, 0);
    assert!(report.to_string().ends_with("; handler panics 1"));
}

#[test]
fn stop_is_driveable_from_threads_at_once() {
    let shutdown = Shutdown::new();
    let conns: Vec<_> = (0..16).map(|_| shutdown.connection(None)).collect();
    let drain = shutdown.drain_token();
    let closer = std::thread::spawn(move || {
        drain.wait_blocking();
        drop(conns);
    });
    let stoppers: Vec<_> = (0..4)
        .map(|i| {
            let shutdown = shutdown.clone();
            std::thread::spawn(move || {
                if i == 3 {
                    block_on(shutdown.stop())
                } else {
                    block_on(shutdown.graceful_stop())
                }
            })
        })
        .collect();
    let reports: Vec<Report> = stoppers.into_iter().map(|t| t.join().unwrap()).collect();
    closer.join().unwrap();
    for r in &reports {
        assert_eq!(r.total, reports[0].total, "one stop, one report");
        assert_eq!(r.connections.drained + r.connections.forced, 16);
    }
}
