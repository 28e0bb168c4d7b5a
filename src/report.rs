//! [`Report`]: what a stop did, how long each phase took, and what held it.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::StreamCounts;

/// One step of a stop, in the order a graceful stop runs them.
///
/// # Example
///
/// ```
/// use winddown::Phase;
/// assert_eq!(Phase::CloseListeners.to_string(), "close listeners");
/// assert_eq!(Phase::Scope("queue".into()).to_string(), "scope queue");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Phase {
    /// Lame duck: everything is still served, but the server reports itself
    /// not ready, so load balancers move traffic away before the GOAWAYs.
    LameDuck,
    /// Listeners stop accepting; waits for every accept loop to let go.
    CloseListeners,
    /// Connections are told to drain (GOAWAY); waits until every connection
    /// and serving task is gone.
    DrainConnections,
    /// Waits for the handlers still running.
    WaitHandlers,
    /// A [`Scope`](crate::Scope) is drained and waited for, in creation order.
    Scope(Arc<str>),
    /// The hard stop: everything is told to stop now; waits for connections
    /// and serving tasks to close.
    Force,
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Phase::LameDuck => f.write_str("lame duck"),
            Phase::CloseListeners => f.write_str("close listeners"),
            Phase::DrainConnections => f.write_str("drain connections"),
            Phase::WaitHandlers => f.write_str("wait for handlers"),
            Phase::Scope(name) => write!(f, "scope {name}"),
            Phase::Force => f.write_str("hard stop"),
        }
    }
}

/// Why a stop was forced.
///
/// # Example
///
/// ```
/// assert_eq!(winddown::ForceReason::Deadline.to_string(), "deadline");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ForceReason {
    /// The graceful stop's deadline passed.
    Deadline,
    /// [`Shutdown::stop`](crate::Shutdown::stop) was called (a second signal,
    /// an operator), before or during a graceful stop.
    Requested,
}

impl fmt::Display for ForceReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ForceReason::Deadline => "deadline",
            ForceReason::Requested => "requested",
        })
    }
}

/// A stream still open on a [`HeldConnection`].
///
/// # Example
///
/// ```
/// let stream = winddown::HeldStream { id: 5, path: "/slow".into(), age: std::time::Duration::from_millis(1500) };
/// assert_eq!(stream.to_string(), "stream 5 /slow 1.50 s");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeldStream {
    /// The HTTP/2 stream id.
    pub id: u32,
    /// The request's path.
    pub path: String,
    /// How long it has been open.
    pub age: Duration,
}

impl fmt::Display for HeldStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "stream {} {} {}", self.id, self.path, Millis(self.age))
    }
}

/// A connection that was still open when a stop was forced (or when
/// [`Shutdown::held`](crate::Shutdown::held) was asked).
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// let held = winddown::HeldConnection {
///     peer: Some("127.0.0.1:4000".parse().unwrap()),
///     age: Duration::from_secs(3),
///     open_streams: 1,
///     streams: vec![winddown::HeldStream { id: 1, path: "/sleep/9000".into(), age: Duration::from_secs(2) }],
/// };
/// assert_eq!(held.to_string(), "127.0.0.1:4000 (age 3.00 s, 1 open stream: stream 1 /sleep/9000 2.00 s)");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeldConnection {
    /// The peer's address, if the transport has one.
    pub peer: Option<SocketAddr>,
    /// How long the connection had been open.
    pub age: Duration,
    /// Streams still open on it.
    pub open_streams: usize,
    /// Those streams, oldest first (as far as the server registered them).
    pub streams: Vec<HeldStream>,
}

impl fmt::Display for HeldConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.peer {
            Some(peer) => write!(f, "{peer}")?,
            None => f.write_str("(no address)")?,
        }
        write!(
            f,
            " (age {}, {}",
            Millis(self.age),
            counted(self.open_streams, "open stream")
        )?;
        for (i, stream) in self.streams.iter().enumerate() {
            f.write_str(if i == 0 { ": " } else { ", " })?;
            write!(f, "{stream}")?;
        }
        f.write_str(")")
    }
}

/// What still held the stop when it was forced: the answer to "why did the
/// graceful stop not finish?".
///
/// # Example
///
/// ```
/// let held = winddown::Held::default();
/// assert!(held.is_empty());
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Held {
    /// Accept loops still running.
    pub listeners: usize,
    /// Connections still open, oldest first.
    pub connections: Vec<HeldConnection>,
    /// Serving tasks still running (per-connection tasks and the like).
    pub tasks: usize,
    /// Handlers still running.
    pub handlers: usize,
    /// Scopes with work still running: name and count.
    pub scopes: Vec<(Arc<str>, usize)>,
}

impl Held {
    /// Whether nothing was held.
    ///
    /// # Example
    ///
    /// ```
    /// let held = winddown::Held { handlers: 1, ..Default::default() };
    /// assert!(!held.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.listeners == 0
            && self.connections.is_empty()
            && self.tasks == 0
            && self.handlers == 0
            && self.scopes.is_empty()
    }
}

impl fmt::Display for Held {
    /// One line; the alternate form (`{:#}`) puts each connection and each of
    /// its open streams on a line of its own, for an operator's dump.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("nothing");
        }
        if f.alternate() {
            let summary = Held {
                connections: Vec::new(),
                ..self.clone()
            };
            if !summary.is_empty() {
                write!(f, "{summary}")?;
            }
            for conn in &self.connections {
                let peer = conn
                    .peer
                    .map_or_else(|| "(no address)".into(), |p| p.to_string());
                write!(
                    f,
                    "\nconnection {peer}: age {}, {}",
                    Millis(conn.age),
                    counted(conn.open_streams, "open stream")
                )?;
                for stream in &conn.streams {
                    write!(f, "\n  {stream}")?;
                }
            }
            return Ok(());
        }
        let mut parts = Vec::new();
        if self.listeners > 0 {
            parts.push(counted(self.listeners, "listener"));
        }
        if !self.connections.is_empty() {
            let list: Vec<String> = self.connections.iter().map(|c| c.to_string()).collect();
            parts.push(format!(
                "{} [{}]",
                counted(self.connections.len(), "connection"),
                list.join(", ")
            ));
        }
        if self.tasks > 0 {
            parts.push(counted(self.tasks, "serving task"));
        }
        if self.handlers > 0 {
            parts.push(counted(self.handlers, "handler"));
        }
        for (name, count) in &self.scopes {
            parts.push(format!("scope {name}: {}", counted(*count, "task")));
        }
        f.write_str(&parts.join("; "))
    }
}

/// How a stop ended.
///
/// # Example
///
/// ```
/// use winddown::{ForceReason, Outcome};
/// assert!(Outcome::Forced(ForceReason::Deadline).is_forced());
/// assert!(!Outcome::Graceful.is_forced());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Everything finished on its own.
    Graceful,
    /// The stop was escalated to a hard stop.
    Forced(ForceReason),
}

impl Outcome {
    /// Whether the stop was escalated.
    ///
    /// # Example
    ///
    /// ```
    /// assert!(!winddown::Outcome::Graceful.is_forced());
    /// ```
    pub fn is_forced(self) -> bool {
        matches!(self, Outcome::Forced(_))
    }
}

/// Connections that went away during the stop.
///
/// # Example
///
/// ```
/// let counts = winddown::ConnectionCounts::default();
/// assert_eq!(counts.drained + counts.forced, 0);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConnectionCounts {
    /// Closed after the drain began and before any hard stop.
    pub drained: u64,
    /// Closed by (after) the hard stop.
    pub forced: u64,
}

/// What a stop did: its outcome, per-phase durations, counts, and, if it was
/// forced, what was still held at that moment.
///
/// `Display` prints the one-line summary servers log at exit; the alternate
/// form (`{:#}`) adds the timeline, one phase a line.
///
/// # Example
///
/// ```
/// let shutdown = winddown::Shutdown::new();
/// let report = futures_lite::future::block_on(shutdown.graceful_stop());
/// assert!(!report.outcome.is_forced());
/// assert!(report.to_string().starts_with("shutdown: graceful in "));
/// ```
#[derive(Clone, Debug)]
pub struct Report {
    /// Graceful, or forced and why.
    pub outcome: Outcome,
    /// From the start of the stop to its end.
    pub total: Duration,
    /// Each phase entered and how long it lasted, in order.
    pub phases: Vec<(Phase, Duration)>,
    /// Stream and handler counters (over the life of the `Shutdown`).
    pub streams: StreamCounts,
    /// Connections drained or forced during the stop.
    pub connections: ConnectionCounts,
    /// What still held the stop when it was forced; `None` if it was not.
    pub held: Option<Held>,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.outcome {
            Outcome::Graceful => write!(f, "shutdown: graceful in {}", Millis(self.total))?,
            Outcome::Forced(reason) => {
                write!(f, "shutdown: forced ({reason}) in {}", Millis(self.total))?
            }
        }
        write!(
            f,
            "; streams: completed {}, refused {}, reset {}; connections: drained {}, forced {}",
            self.streams.completed,
            self.streams.refused,
            self.streams.reset,
            self.connections.drained,
            self.connections.forced
        )?;
        if self.streams.handler_panics > 0 {
            write!(f, "; handler panics {}", self.streams.handler_panics)?;
        }
        if f.alternate() {
            for (phase, took) in &self.phases {
                write!(f, "\n  {:<24} {}", phase.to_string(), Millis(*took))?;
            }
            if let Some(held) = &self.held {
                write!(f, "\n  held at escalation: {held}")?;
            }
        }
        Ok(())
    }
}

/// `1 handler`, `2 handlers`.
fn counted(n: usize, noun: &str) -> String {
    format!("{n} {noun}{}", if n == 1 { "" } else { "s" })
}

/// Formats a duration for people, to three significant figures: `0.412 ms`,
/// `12.3 ms`, `3.20 s`. Enough to compare two stops (a benchmark reads the
/// report's figure; whole milliseconds hid ±5 % at 10 ms), few enough to read
/// at a glance.
pub(crate) struct Millis(pub(crate) Duration);

impl fmt::Display for Millis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0.as_secs_f64() * 1000.0;
        let s = ms / 1000.0;
        match ms {
            ms if ms < 1.0 => write!(f, "{ms:.3} ms"),
            ms if ms < 10.0 => write!(f, "{ms:.2} ms"),
            ms if ms < 100.0 => write!(f, "{ms:.1} ms"),
            ms if ms < 1000.0 => write!(f, "{ms:.0} ms"),
            _ if s < 10.0 => write!(f, "{s:.2} s"),
            _ if s < 100.0 => write!(f, "{s:.1} s"),
            _ => write!(f, "{s:.0} s"),
        }
    }
}

#[cfg(all(test, not(winddown_loom)))]
mod tests {
    use super::*;

    #[test]
    fn millis_formats() {
        let shown = |micros| Millis(Duration::from_micros(micros)).to_string();
        assert_eq!(shown(0), "0.000 ms");
        assert_eq!(shown(412), "0.412 ms");
        assert_eq!(shown(4_123), "4.12 ms");
        assert_eq!(shown(12_345), "12.3 ms");
        assert_eq!(shown(972_400), "972 ms");
        assert_eq!(shown(3_200_000), "3.20 s");
        assert_eq!(shown(10_000_000), "10.0 s");
        assert_eq!(shown(125_000_000), "125 s");
    }

    #[test]
    fn one_line_summary_matches_the_contract() {
        let report = Report {
            outcome: Outcome::Forced(ForceReason::Deadline),
            total: Duration::from_millis(10_000),
            phases: vec![(Phase::DrainConnections, Duration::from_millis(10_000))],
            streams: StreamCounts {
                completed: 40,
                refused: 3,
                reset: 1,
                handler_panics: 0,
            },
            connections: ConnectionCounts {
                drained: 7,
                forced: 1,
            },
            held: Some(Held::default()),
        };
        assert_eq!(
            report.to_string(),
            "shutdown: forced (deadline) in 10.0 s; streams: completed 40, refused 3, reset 1; \
             connections: drained 7, forced 1"
        );
        assert!(format!("{report:#}").contains("drain connections"));
    }
}
