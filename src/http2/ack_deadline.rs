//! The PING ACK deadline of a server-wide drain (B5): one timer for all the
//! server's connections, not one per connection.
//!
//! Every connection a stop drains sends its GOAWAY and PING within moments of
//! the others, so their ACK deadlines would all fall together. A timer each
//! costs more than the rest of the drain's bookkeeping: on smol, async-io
//! keeps its timers in one ordered map behind its reactor's lock, and each
//! insertion wakes the reactor (callgrind: about 3,000 instructions per
//! drained connection, 10 % of the drain's user-space work; on tokio about
//! 950). So the first connection to drain starts the one timer, and when it
//! fires, every connection is woken through its record (as the drain and the
//! hard stop wake them: [`Shutdown::wake_connections_on`]), and those still
//! waiting for their ACK give up. The deadline so counts from the drain's
//! start, not from each connection's GOAWAY; a connection the drain reaches
//! late (thousands of them on a busy machine) has that much less of it.
//!
//! A connection's own drain (max age, max idle) still times its ACK alone: it
//! drains when no other connection does.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures_lite::future;

use super::Runtime;
use crate::{ConnectionWakeup, DrainToken, Shutdown};

/// Fires `ping_ack_timeout` after the server's drain reached its first
/// connection.
pub(crate) struct AckDeadline {
    started: AtomicBool,
    passed: DrainToken,
    /// Wakes every connection's record when `passed` fires.
    _wake_connections: ConnectionWakeup,
}

impl AckDeadline {
    pub(crate) fn new(shutdown: &Shutdown) -> Self {
        let passed = DrainToken::new();
        Self {
            started: AtomicBool::new(false),
            _wake_connections: shutdown.wake_connections_on(&passed),
            passed,
        }
    }

    /// Starts the countdown, if no connection has yet. The timer's task ends
    /// when it fires or when the stop has finished, whichever comes first.
    pub(crate) fn start<R: Runtime>(&self, runtime: &R, timeout: Duration, shutdown: &Shutdown) {
        // The server's drain starts it; a connection's own drain (max age,
        // max idle) has a timer of its own.
        debug_assert!(shutdown.is_draining(), "the ACK deadline of no drain");
        // Only which caller spawns the task is decided here: the deadline's
        // own flag is the token's, with its own ordering.
        if self.started.swap(true, Ordering::Relaxed) {
            return;
        }
        // Made here, so the deadline counts from now, not from the task's
        // first poll.
        let sleep = runtime.sleep(timeout);
        let passed = self.passed.clone();
        let finished = shutdown.finished_signal().wait_owned();
        runtime.spawn(async move {
            let fire = async move {
                sleep.await;
                passed.fire();
            };
            future::or(fire, finished).await;
        });
    }

    /// Whether the deadline has passed. A connection reads it after its
    /// record holds its waker (its poll of the stop signal comes first), so
    /// a fire it misses here wakes it (CW-1 in INVARIANTS.md).
    pub(crate) fn has_passed(&self) -> bool {
        self.passed.is_fired()
    }
}
