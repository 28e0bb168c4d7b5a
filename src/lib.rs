//! Graceful shutdown for Rust services and the libraries inside them, with no
//! async-runtime dependency.
//!
//! A server that stops well does what grpc-go's `GracefulStop` does: it stops
//! accepting, tells every connection to drain (HTTP/2 GOAWAY), lets in-flight
//! work finish, waits until every connection is gone, and only then returns;
//! and it has a hard `Stop` for when waiting is over. This crate provides that
//! sequence as small, composable primitives, and a coordinator that bounds it
//! with a deadline and reports what happened.
//!
//! # The model
//!
//! | concept | type | grpc-go |
//! |---|---|---|
//! | count work in flight, wait for none | [`WaitGroup`] / [`WaitGuard`] | `serveWG`, `handlersWG` (`sync.WaitGroup`) |
//! | live connections, woken on each removal | [`Registry`] / [`Registered`] | `s.conns` + `s.cv.Broadcast()` in `removeConn` |
//! | a one-way "drain now" / "stop now" signal | [`DrainToken`] | `drainChan`, `s.quit` |
//! | the stop sequence, deadline, report | [`Shutdown`] / [`Report`] | `GracefulStop()`, `Stop()` |
//! | a library's share of the stop | [`Scope`] | (none: done by hand) |
//! | one connection, told to drain or stop | [`ConnectionGuard`] (`poll_drain`, `poll_stop`) | `st.Drain()`, `st.Close()` per `ServerTransport` |
//! | a signal of one's own reaching every connection that way | [`Shutdown::wake_connections_on`] / [`ConnectionWakeup`] | a timer per connection |
//!
//! Every primitive is runtime-independent: waiting is a plain `Future` (built
//! on [`event-listener`](https://docs.rs/event-listener)) or a blocking call,
//! and the deadline is any future you pass in, so the same code serves smol,
//! tokio, threads, or a library that does not know which it runs on.
//!
//! # Example: a service and a library stopping in order
//!
//! ```
//! use futures_lite::future;
//! use winddown::Shutdown;
//!
//! let shutdown = Shutdown::new();
//!
//! // The application hands a scope to a library; the library registers its
//! // background work and learns when to wind down.
//! let queue = shutdown.scope("queue");
//! let flusher = {
//!     let guard = queue.track();
//!     let drain = queue.drain_token();
//!     std::thread::spawn(move || {
//!         drain.wait_blocking();
//!         drop(guard); // flushed: the stop may go on
//!     })
//! };
//!
//! // The server registers a connection and drains it when told.
//! let conn = shutdown.connection(None);
//! let drain = shutdown.drain_token();
//! let server = std::thread::spawn(move || {
//!     drain.wait_blocking(); // send GOAWAY, finish streams...
//!     drop(conn);
//! });
//!
//! // On SIGTERM: stop gracefully, bounded by a deadline (any future).
//! let deadline = future::pending::<()>();
//! let report = future::block_on(shutdown.graceful_stop_with_deadline(deadline));
//! server.join().unwrap();
//! flusher.join().unwrap();
//! assert!(!report.outcome.is_forced());
//! println!("{report}");
//! ```
//!
//! # Guarantees
//!
//! The invariants (safety, liveness, cost) are written down in
//! `INVARIANTS.md` at the repository root, each with the loom model or test
//! that checks it.
#![deny(missing_docs)]
#![warn(missing_debug_implementations)]

mod connection;
mod drain_token;
#[cfg(feature = "http2")]
pub mod http2;
mod registry;
mod report;
mod scope;
mod shard;
mod shutdown;
mod stats;
mod sync;
mod wait;
mod wait_group;

pub use connection::{ConnInfo, ConnectionGuard, OpenStream};
pub use drain_token::DrainToken;
pub use registry::{Entry, Registered, Registry};
pub use report::{
    ConnectionCounts, ForceReason, Held, HeldConnection, HeldStream, Outcome, Phase, Report,
};
pub use scope::Scope;
pub use shutdown::{ConnectionWakeup, Shutdown};
pub use stats::{Stats, StreamCounts};
pub use wait_group::{WaitGroup, WaitGuard};

/// The README's examples, compiled and run as doc tests so they cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
