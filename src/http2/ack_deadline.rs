//! The PING ACK deadline of a server-wide drain (B5): one timer for all the
//! server's connections, not one per connection.
//!
//! Every connection a stop drains sends its GOAWAY and PING within moments of
//! the others, so their ACK deadlines would all fall together. A timer each
//! costs a good part of the drain's bookkeeping: on smol, async-io keeps its
//! timers in one ordered map behind its reactor's lock; on tokio, each is an
//! entry in the timer wheel, made, polled and cleared (callgrind, one timer
//! for all against one each: 28,480 → 26,220 instructions per drained
//! connection on smol, 17,990 → 16,700 on tokio). So the first connection
//! the drain reaches starts the one timer, and when it fires, every
//! connection is woken through its record (as the drain and the hard stop
//! wake them: [`Shutdown::wake_connections_on`]), and those still waiting for
//! their ACK give up.
//!
//! The shared deadline counts from the drain's start. A connection the drain
//! reaches when less than half of it is left (one still in its handshake, or
//! the last of many thousands on a busy machine) times its ACK alone, as does
//! a connection's own drain (max age, max idle): every connection gets at
//! least half of `ping_ack_timeout`, and at most all of it.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use futures_lite::future;

use super::Runtime;
use crate::{ConnectionWakeup, DrainToken, Shutdown};

/// Fires `ping_ack_timeout` after the server's drain reached its first
/// connection.
pub(crate) struct AckDeadline {
    /// When the first connection started the timer.
    started: OnceLock<Instant>,
    passed: DrainToken,
    /// Wakes every connection's record when `passed` fires.
    _wake_connections: ConnectionWakeup,
}

impl AckDeadline {
    pub(crate) fn new(shutdown: &Shutdown) -> Self {
        let passed = DrainToken::new();
        Self {
            started: OnceLock::new(),
            _wake_connections: shutdown.wake_connections_on(&passed),
            passed,
        }
    }

    /// Called by a connection the server's drain has reached: starts the
    /// timer if no connection has yet, and returns whether this connection
    /// waits for its ACK on it (`false`: less than half of it is left, or the
    /// server is not draining, and the connection times its ACK alone).
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
        if !shutdown.is_draining() {
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
}
