//! Loom models of winddown's primitives and of the coordinator's phase
//! transitions. They drive the real types: under `--cfg winddown_loom` the
//! crate's atomics, locks and `Arc` come from loom, and so do event-listener's.
//!
//! Run with `loom/run.sh`. Each model names the invariant of INVARIANTS.md it
//! checks.
#![cfg(winddown_loom)]

use loom::future::block_on;
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::Arc;
use loom::thread;
use winddown::{DrainToken, ForceReason, Outcome, Registry, Shutdown, Stats, WaitGroup};

/// WG-1 (safety) and WG-2 (liveness): a wait never completes while a guard
/// created before it lives, and the last drop wakes the waiter; work done
/// under the guard is visible after the wait (Relaxed data, so only the
/// guard's Release/Acquire can order it).
#[test]
fn wait_group_release_is_seen_and_wakes() {
    loom::model(|| {
        let group = WaitGroup::new();
        let data = Arc::new(AtomicUsize::new(0));
        let guard = group.add();
        let worker = {
            let data = data.clone();
            thread::spawn(move || {
                data.store(1, Ordering::Relaxed);
                drop(guard);
            })
        };
        block_on(group.wait());
        assert_eq!(data.load(Ordering::Relaxed), 1);
        worker.join().unwrap();
    });
}

/// ST-1: counts made before a guard's drop, on whichever shards they land
/// (under loom each call moves to the next shard), are all in a snapshot
/// taken after the wait that saw the drop: the counters' adds are Relaxed,
/// so only the wait orders them, as the stop's wait does in a server.
#[test]
fn stats_counted_before_a_release_are_in_the_snapshot_after_the_wait() {
    loom::model(|| {
        let stats = Arc::new(Stats::default());
        let group = WaitGroup::new();
        let guard = group.add();
        let worker = {
            let stats = stats.clone();
            thread::spawn(move || {
                stats.stream_completed();
                stats.stream_completed();
                drop(guard);
            })
        };
        stats.stream_reset();
        block_on(group.wait());
        let counts = stats.snapshot();
        assert_eq!((counts.completed, counts.reset), (2, 1));
        worker.join().unwrap();
    });
}

/// WG-2 with two guards released on two threads and a blocking waiter.
#[test]
fn wait_group_two_releasers_blocking_waiter() {
    loom::model(|| {
        let group = WaitGroup::new();
        let a = group.add();
        let b = group.add();
        let ta = thread::spawn(move || drop(a));
        let tb = thread::spawn(move || drop(b));
        group.wait_blocking();
        assert_eq!(group.count(), 0);
        ta.join().unwrap();
        tb.join().unwrap();
    });
}

/// WG-3: the count is split over shards. A waiter must not see zero while a
/// guard lives, even when that guard was added on one shard while the only
/// other guard, on another shard, was being released (the double collect).
#[test]
fn wait_group_handover_across_shards() {
    loom::model(|| {
        let group = WaitGroup::new();
        drop(group.add()); // under loom each add moves to the next shard:
        let first = group.add(); // this one is on shard 1
        let handed = Arc::new(AtomicUsize::new(0));
        let worker = {
            let group = group.clone();
            let handed = handed.clone();
            thread::spawn(move || {
                // Shard 0, which a waiter reads before shard 1: a single pass
                // could read shard 0 empty, then shard 1 after `first` went.
                let second = group.add();
                drop(first); // the count never reaches zero: `second` lives
                handed.store(1, Ordering::Relaxed);
                drop(second);
            })
        };
        block_on(group.wait());
        // Zero was only reachable after `third` was released.
        assert_eq!(handed.load(Ordering::Relaxed), 1);
        worker.join().unwrap();
    });
}

/// DT-1 and DT-2: a waiter registered concurrently with `fire` is woken, and
/// sees what the firing thread wrote before firing.
#[test]
fn drain_token_fire_wakes_waiter() {
    loom::model(|| {
        let token = DrainToken::new();
        let data = Arc::new(AtomicUsize::new(0));
        let firer = {
            let token = token.clone();
            let data = data.clone();
            thread::spawn(move || {
                data.store(7, Ordering::Relaxed);
                assert!(token.fire());
            })
        };
        block_on(token.wait());
        assert_eq!(data.load(Ordering::Relaxed), 7);
        firer.join().unwrap();
    });
}

/// DT-3: exactly one of two concurrent `fire` calls reports that it fired.
#[test]
fn drain_token_fire_is_idempotent_across_threads() {
    loom::model(|| {
        let token = DrainToken::new();
        let other = token.clone();
        let t = thread::spawn(move || other.fire());
        let here = token.fire();
        let there = t.join().unwrap();
        assert!(here ^ there);
    });
}

/// DT-4: a child created while its parent is being fired ends up fired
/// (either the parent's fire finds it in the list, or it is born fired), and
/// a waiter on it is woken.
#[test]
fn drain_token_child_created_during_parent_fire() {
    loom::model(|| {
        let parent = DrainToken::new();
        let firer = {
            let parent = parent.clone();
            thread::spawn(move || {
                parent.fire();
            })
        };
        let child = parent.child();
        block_on(child.wait());
        firer.join().unwrap();
        assert!(child.is_fired());
    });
}

/// RG-1 and RG-2: a removal on another thread wakes `wait_empty`, and a waiter
/// never sees the registry empty while an entry inserted before it lives.
#[test]
fn registry_removal_wakes_wait_empty() {
    loom::model(|| {
        let registry = Registry::new();
        let a = registry.insert(1u8);
        let b = registry.insert(2u8);
        let t = thread::spawn(move || drop(a));
        let mut b = Some(b);
        // Wait for the other thread's removal, then remove our own.
        block_on(registry.wait_until(|r| {
            if r.len() == 1 {
                b.take();
            }
            r.is_empty()
        }));
        assert!(registry.snapshot().is_empty());
        t.join().unwrap();
    });
}

/// RG-1: `wait_empty` is woken by the last removal alone (it does not listen
/// to every removal), whichever thread makes it.
#[test]
fn registry_last_removal_wakes_wait_empty() {
    loom::model(|| {
        let registry = Registry::new();
        let a = registry.insert(1u8);
        let b = registry.insert(2u8);
        let ta = thread::spawn(move || drop(a));
        let tb = thread::spawn(move || drop(b));
        block_on(registry.wait_empty());
        assert!(registry.is_empty());
        ta.join().unwrap();
        tb.join().unwrap();
    });
}

/// RG-3: concurrent insert and remove on two threads keep the count and the
/// contents consistent.
#[test]
fn registry_concurrent_insert_and_remove() {
    loom::model(|| {
        let registry = Registry::new();
        let first = registry.insert(0u8);
        let other = registry.clone();
        let t = thread::spawn(move || {
            let second = other.insert(1u8);
            drop(second);
        });
        drop(first);
        t.join().unwrap();
        assert!(registry.is_empty());
        assert!(registry.snapshot().is_empty());
    });
}

/// SD-1 and SD-3: a graceful stop and a connection that closes when told to
/// drain, on two threads: the stop completes gracefully, the connection
/// counted as drained.
#[test]
fn shutdown_graceful_waits_for_connection() {
    loom::model(|| {
        let shutdown = Shutdown::new();
        let conn = shutdown.connection(None);
        let drain = shutdown.drain_token();
        let server = thread::spawn(move || {
            block_on(drain.wait());
            drop(conn);
        });
        let report = block_on(shutdown.graceful_stop());
        assert_eq!(report.outcome, Outcome::Graceful);
        assert_eq!(report.connections.drained, 1);
        assert!(shutdown.connections().is_empty());
        server.join().unwrap();
    });
}

/// SD-2: a hard stop on one thread preempts a graceful stop parked on a
/// handler on another; both return the same forced report at once (the hard
/// stop never waits behind the graceful stop's handlers).
#[test]
fn shutdown_hard_stop_preempts_graceful() {
    loom::model(|| {
        let shutdown = Shutdown::new();
        let _stuck_handler = shutdown.handler();
        let graceful = {
            let shutdown = shutdown.clone();
            thread::spawn(move || block_on(shutdown.graceful_stop()))
        };
        let hard = block_on(shutdown.stop());
        let graceful = graceful.join().unwrap();
        assert_eq!(hard.outcome, Outcome::Forced(ForceReason::Requested));
        assert_eq!(graceful.outcome, hard.outcome);
        assert_eq!(graceful.total, hard.total);
    });
}

/// SD-4: a hard stop waits until a server closes its connection on the stop
/// token, and counts it as forced.
#[test]
fn shutdown_hard_stop_waits_for_server_to_close() {
    loom::model(|| {
        let shutdown = Shutdown::new();
        let conn = shutdown.connection(None);
        let stop_token = shutdown.stop_token();
        let server = thread::spawn(move || {
            block_on(stop_token.wait());
            drop(conn);
        });
        let report = block_on(shutdown.stop());
        assert!(shutdown.connections().is_empty());
        assert_eq!(report.connections.forced, 1);
        server.join().unwrap();
    });
}

/// CN-1: a connection that polls for the drain on one thread while the drain
/// token fires on another is woken (through the record's waker and the
/// shutdown's one listener) or sees the drain on its poll.
#[test]
fn connection_poll_drain_is_woken_by_a_fire() {
    loom::model(|| {
        let shutdown = Shutdown::new();
        let conn = shutdown.connection(None);
        let server = thread::spawn(move || {
            block_on(std::future::poll_fn(|cx| conn.poll_drain(cx)));
            drop(conn);
        });
        shutdown.drain_token().fire();
        server.join().unwrap();
        assert!(shutdown.connections().is_empty());
    });
}

/// CW-1: a token of one's own, registered with `wake_connections_on`, wakes
/// a connection that polls its record and then reads the token, however the
/// fire on another thread interleaves with that poll (the server's shared
/// PING ACK deadline waits this way).
#[test]
fn a_token_registered_for_the_connections_wakes_one_that_reads_it_after_its_record() {
    loom::model(|| {
        let shutdown = Shutdown::new();
        let deadline = DrainToken::new();
        let _wakeup = shutdown.wake_connections_on(&deadline);
        let conn = shutdown.connection(None);
        let server = thread::spawn({
            let deadline = deadline.clone();
            move || {
                block_on(std::future::poll_fn(|cx| {
                    // The record first, then the token (the contract).
                    if conn.poll_stop(cx).is_ready() || deadline.is_fired() {
                        std::task::Poll::Ready(())
                    } else {
                        std::task::Poll::Pending
                    }
                }));
            }
        });
        deadline.fire();
        server.join().unwrap();
    });
}

/// CN-1 and SD-4 through the record: a connection waits for the drain, then
/// for the hard stop, as a draining server does; a hard stop on another
/// thread (which fires the stop, then the drain) wakes it once (`poll_drain`
/// is ready from the stop, `poll_stop` then at once) and counts it as forced.
#[test]
fn connection_polls_drain_then_stop_through_a_hard_stop() {
    loom::model(|| {
        let shutdown = Shutdown::new();
        let conn = shutdown.connection(None);
        let server = thread::spawn(move || {
            block_on(std::future::poll_fn(|cx| conn.poll_drain(cx)));
            block_on(std::future::poll_fn(|cx| conn.poll_stop(cx)));
            drop(conn);
        });
        let report = block_on(shutdown.stop());
        assert_eq!(report.connections.forced, 1);
        server.join().unwrap();
    });
}
