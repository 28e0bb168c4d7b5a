//! Loom models of the smol adapter's read wake-up (`runtimes/smol/src/
//! read_wake.rs`, compiled in here with loom's lock and flag): the reactor's
//! wake-up of a registered read is never lost, whatever the interleaving with
//! the task's polls (RW-1 in INVARIANTS.md).
//!
//! The reactor's thread is modelled by a thread that calls `wake_task`, as
//! the reactor does through the registered waker; it starts after `arm`, as
//! the reactor can only wake a registration after it was made.
#![cfg(winddown_loom)]

#[path = "../../runtimes/smol/src/read_wake.rs"]
mod read_wake;

use std::task::{Wake, Waker};

use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::Arc;
use loom::thread;
use read_wake::ReadWake;

/// A task's waker that counts its wake-ups.
#[derive(Default)]
struct Task(AtomicUsize);

impl Wake for Task {
    fn wake(self: std::sync::Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// RW-1: the poll after arming (`take_woken`) either sees the reactor's
/// wake-up, or the task it leaves pending is woken and its next poll sees it.
/// `armed_by` and `polled_by` differ when the task polls with a new waker.
fn model_wake_up_is_never_lost(same_waker: bool) {
    loom::model(move || {
        let wake = Arc::new(ReadWake::default());
        let armed_by = std::sync::Arc::new(Task::default());
        let polled_by = if same_waker {
            armed_by.clone()
        } else {
            std::sync::Arc::new(Task::default())
        };
        wake.arm(&Waker::from(armed_by.clone()));
        let reactor = {
            let wake = wake.clone();
            thread::spawn(move || wake.wake_task())
        };
        let waker = Waker::from(polled_by.clone());
        let seen = wake.take_woken(&waker);
        reactor.join().unwrap();
        if !seen {
            assert!(
                polled_by.0.load(Ordering::SeqCst) >= 1,
                "pending, and the task that polled was never woken"
            );
            assert!(
                wake.take_woken(&waker),
                "woken, yet the next poll saw nothing"
            );
        }
    });
}

#[test]
fn smol_read_wake_is_never_lost() {
    model_wake_up_is_never_lost(true);
}

#[test]
fn smol_read_wake_reaches_a_task_that_polls_with_a_new_waker() {
    model_wake_up_is_never_lost(false);
}

/// RW-1 across two polls with two new wakers while the reactor wakes: the
/// wake-up reaches whichever poll comes after it, or the last waker.
#[test]
fn smol_read_wake_reaches_the_last_of_two_polls() {
    loom::model(|| {
        let wake = Arc::new(ReadWake::default());
        let tasks: Vec<_> = (0..3)
            .map(|_| std::sync::Arc::new(Task::default()))
            .collect();
        wake.arm(&Waker::from(tasks[0].clone()));
        let reactor = {
            let wake = wake.clone();
            thread::spawn(move || wake.wake_task())
        };
        let first = Waker::from(tasks[1].clone());
        let last = Waker::from(tasks[2].clone());
        let seen = wake.take_woken(&first) || wake.take_woken(&last);
        reactor.join().unwrap();
        if !seen {
            assert!(
                tasks[2].0.load(Ordering::SeqCst) >= 1,
                "pending, and the last waker was never woken"
            );
            assert!(
                wake.take_woken(&last),
                "woken, yet the next poll saw nothing"
            );
        }
    });
}
