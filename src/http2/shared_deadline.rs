//! Deadlines of a stop's drain shared by all the server's connections: the
//! PING ACK's (B5), and the first half of the linger for the client's EOF
//! (B4). One timer for the server instead of one per connection.
//!
//! A stop's drain reaches every connection within moments of the others, so
//! they send their GOAWAY and PING together and, idle, their final GOAWAY
//! and start lingering together: their deadlines would all fall together. A
//! timer each costs a good part of the drain's bookkeeping: on smol, async-io
//! keeps its timers in one ordered map behind its reactor's lock; on tokio,
//! each is an entry in the timer wheel, made, polled and cleared (callgrind,
//! the ACK's timer shared: 28,480 → 26,220 instructions per drained
//! connection on smol, 17,990 → 16,700 on tokio; BENCHMARKS-history.md,
//! *Twelfth round*). So the first connection to need a deadline starts its one
//! timer, and when it fires, every connection is woken through its record
//! (as the drain and the hard stop wake them:
//! [`Shutdown::wake_connections_on`]), and those still waiting give up.
//!
//! A shared deadline counts from the moment the first connection needed it.
//! A connection that needs it when less than half of it is left (one still
//! in its handshake when the drain began, or the last of many thousands on
//! a busy machine) uses a timer of its own, as does every connection outside
//! a stop (max age, max idle, a client's own GOAWAY): each waits at least
//! half of the time it is given, and at most all of it.

use std::sync::OnceLock;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_lite::future;

use super::Runtime;
use crate::{ConnectionGuard, ConnectionWakeup, DrainToken, Shutdown};

/// Fires a fixed time after a stop's drain first needed it.
pub(crate) struct SharedDeadline {
    /// When the first connection started the timer.
    started: OnceLock<Instant>,
    passed: DrainToken,
    /// Wakes every connection's record when `passed` fires.
    _wake_connections: ConnectionWakeup,
}

impl SharedDeadline {
    pub(crate) fn new(shutdown: &Shutdown) -> Self {
        let passed = DrainToken::new();
        Self {
            started: OnceLock::new(),
            _wake_connections: shutdown.wake_connections_on(&passed),
            passed,
        }
    }

    /// Called by a connection that needs this deadline: starts the timer
    /// (`timeout` from now) if no connection has yet, and returns whether
    /// this connection waits on it (`false`: the server is not stopping, or
    /// the stop is over, or less than half of it is left, and the
    /// connection times its own).
    ///
    /// The timer's task fires the deadline when it passes, or when the stop
    /// has finished, whichever comes first (a connection registered after the
    /// stop still has its wait bounded), and ends.
    pub(crate) fn join<R: Runtime>(
        &self,
        runtime: &R,
        timeout: Duration,
        shutdown: &Shutdown,
    ) -> bool {
        // After the stop (a connection spawned late), the timer's task
        // would fire at once.
        if !shutdown.is_draining() || shutdown.finished_signal().is_fired() {
            return false;
        }
        let started = self.started.get_or_init(|| {
            // Made here, so the deadline counts from now, not from the
            // task's first poll.
            let sleep = runtime.sleep(timeout);
            let passed = self.passed.clone();
            let finished = shutdown.finished_signal().wait_owned();
            runtime.spawn(async move {
                future::or(sleep, finished).await;
                passed.fire();
            });
            Instant::now()
        });
        started.elapsed() <= timeout / 2
    }

    /// Whether the deadline has passed. A connection reads it after its
    /// record holds its waker (its poll of the stop signal comes first), so
    /// a fire it misses here wakes it (CW-1 in INVARIANTS.md).
    pub(crate) fn has_passed(&self) -> bool {
        self.passed.is_fired()
    }

    /// Ready once the deadline has passed; until then, `conn`'s task is woken
    /// when it does: its waker goes into the record (the poll of the stop
    /// signal) before the deadline is read (CW-1). A hard stop is the
    /// caller's to act on.
    pub(crate) fn poll_passed(&self, conn: &ConnectionGuard, cx: &mut Context<'_>) -> Poll<()> {
        let _ = conn.poll_stop(cx);
        if self.has_passed() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}
