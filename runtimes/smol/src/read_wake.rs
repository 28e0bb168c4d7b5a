//! Whether the reactor has woken a read: the answer async-io's
//! `poll_readable` cannot always give.
//!
//! async-io counts the reactor's turns and reports a socket readable only for
//! an event of a later turn than the one in which interest was registered
//! (an event of that same turn might predate the registration). But a socket
//! that is readable when the interest goes in, while the reactor's thread
//! waits in that turn, has its event delivered in that very turn: the task
//! is woken, and `poll_readable` still says pending, registers again, and the
//! next turn may repeat it. Asking it again on every wake-up can spin through
//! the reactor for many turns (a connection's EOF took 0.26–0.94 ms to be read,
//! at one `epoll_ctl`, one `eventfd` write and one `futex` per turn). Reading
//! on every poll instead (what async-io's own `Async::poll_read` does) costs
//! an `EAGAIN` read on each poll that was not an I/O wake-up: ~0.8 µs per
//! request under load, since h2's connection task is woken by every handler
//! that answers.
//!
//! So the stream registers its interest with a waker of its own, a
//! [`ReadWake`], which notes that the reactor called it before waking the
//! task; the next poll reads only then.
//!
//! No wake-up is lost (RW-1 in INVARIANTS.md, loom model
//! `smol_read_wake_is_never_lost`): the task stores its waker, then takes the
//! flag; the reactor sets the flag, then takes the waker, both under the same
//! lock. If the reactor's lock comes second it wakes the new waker; if first,
//! its flag was set before the task's lock, so the task sees it.
//!
//! This file is also compiled into the loom models (`loom/tests/`), which swap
//! its lock and flag for loom's under `--cfg winddown_loom`.

#[cfg(not(winddown_loom))]
use std::sync::{
    atomic::{AtomicBool, Ordering},
    Mutex, PoisonError,
};
use std::task::Waker;

#[cfg(winddown_loom)]
use loom::sync::{
    atomic::{AtomicBool, Ordering},
    Mutex,
};
#[cfg(winddown_loom)]
use std::sync::PoisonError;

/// The waker a stream registers its read interest with: a flag the reactor
/// sets, and the task it then wakes.
#[derive(Debug, Default)]
pub(crate) struct ReadWake {
    /// The reactor woke the read since it was armed.
    woken: AtomicBool,
    /// The task to wake: the last one that polled the read.
    task: Mutex<Option<Waker>>,
}

impl ReadWake {
    /// Before interest is registered: `waker`'s task is the one to wake, and
    /// only a wake-up from here on counts.
    ///
    /// The flag is cleared Relaxed: registering with the reactor takes its
    /// lock after this, and the reactor takes that lock before it can call
    /// [`wake_task`](Self::wake_task) for this registration.
    pub(crate) fn arm(&self, waker: &Waker) {
        self.set_task(waker);
        self.woken.store(false, Ordering::Relaxed);
    }

    /// Whether the reactor woke the read since it was armed (taking the
    /// news). If not, `waker`'s task is the one its wake-up will wake.
    pub(crate) fn take_woken(&self, waker: &Waker) -> bool {
        // The task first, then the flag (see the module's docs).
        self.set_task(waker);
        self.woken.swap(false, Ordering::Acquire)
    }

    /// The reactor's side: notes the wake-up, then wakes the task.
    pub(crate) fn wake_task(&self) {
        // A swap where a store would do: loom 0.7 lets a plain store land
        // between the read and the write of a concurrent swap (loom issue
        // #254), which would fail the model for a reason hardware never has.
        self.woken.swap(true, Ordering::Release);
        // Cloned, not taken: a task polled for another reason keeps its
        // place. Woken outside the lock.
        let task = self
            .task
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        if let Some(task) = task {
            task.wake();
        }
    }

    fn set_task(&self, waker: &Waker) {
        let mut task = self.task.lock().unwrap_or_else(PoisonError::into_inner);
        match &*task {
            Some(current) if current.will_wake(waker) => {}
            _ => *task = Some(waker.clone()),
        }
    }
}

#[cfg(not(winddown_loom))]
impl std::task::Wake for ReadWake {
    fn wake(self: std::sync::Arc<Self>) {
        self.wake_task();
    }

    fn wake_by_ref(self: &std::sync::Arc<Self>) {
        self.wake_task();
    }
}
