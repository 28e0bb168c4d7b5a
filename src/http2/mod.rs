//! An HTTP/2 server (on the [`h2`] crate) that stops the way grpc-go's
//! `GracefulStop` does, with the bounds grpc-go leaves to its users. Enabled by
//! the `http2` feature.
//!
//! Written once, runtime-independent: a [`Runtime`] supplies spawning and
//! timers, a [`Listener`] supplies connections. The `winddown-smol` and
//! `winddown-tokio` crates provide both, and OS signals.
//!
//! The [`client`] module is the other half: a GOAWAY-aware [`Client`] that
//! moves new requests off a draining connection and retries only what the
//! server never processed.
//!
//! # What a client sees when the server stops
//!
//! | | behaviour |
//! |---|---|
//! | B1 | the listener closes first: new connects are refused |
//! | B2 | each connection gets GOAWAY(2^31-1, NO_ERROR) and a PING; on the ACK, GOAWAY(last=N, NO_ERROR); both with debug data `graceful_stop` (`max_age`, `max_idle` for a connection's own lifecycle drain) |
//! | B3 | streams opened before the second GOAWAY are served; those above N never reach a handler |
//! | B4 | the connection closes when its last stream ends, with FIN, after a linger for the client's EOF |
//! | B5 | a client that never ACKs the PING is bounded by [`Config::ping_ack_timeout`]: then new streams get REFUSED_STREAM, open ones finish, and the connection closes |
//! | B6 | a connection still in its handshake is bounded by [`Config::handshake_timeout`] and delays nobody |
//! | B7 | the whole stop has a deadline ([`Shutdown::graceful_stop_with_deadline`](crate::Shutdown::graceful_stop_with_deadline)), then escalates |
//! | B8 | a hard stop sends GOAWAY(last=N, CANCEL) where it can, then closes; handlers see it |
//! | B9 | handlers see draining and stopping through their [`StreamContext`] |
//! | B10 | a handler that panics is counted and contained; the client gets a 500 or a reset |
//! | B11 | the stop returns a [`Report`](crate::Report) |
//!
//! # Example
//!
//! ```
//! use winddown::http2::{Request, Responder};
//!
//! /// Echoes the request body; a long upload still finishes during a drain.
//! async fn echo(mut request: Request, responder: Responder) {
//!     match request.body_mut().collect(1 << 20).await {
//!         Ok(body) => {
//!             let _ = responder.send(http::Response::new(()), body).await;
//!         }
//!         Err(_) => responder.reset(h2::Reason::CANCEL),
//!     }
//! }
//! # let _ = echo;
//! ```

/// A builder-style setter and its getter, documented, for the config types
/// (`$config` is the type's path, for the getter's doc example).
macro_rules! setting {
    ($config:literal, $(#[$doc:meta])* $name:ident, $getter:ident: $ty:ty) => {
        $(#[$doc])*
        pub fn $name(mut self, value: $ty) -> Self {
            self.$name = value;
            self
        }

        #[doc = concat!("The current `", stringify!($name), "` (see [`", stringify!($name), "`](Self::", stringify!($name), ")).")]
        ///
        /// # Example
        ///
        /// ```
        #[doc = concat!("let _ = ", $config, "::default().", stringify!($getter), "();")]
        /// ```
        pub fn $getter(&self) -> $ty {
            self.$name
        }
    };
}

pub mod client;
mod config;
mod connection;
mod error;
mod goaway_reason;
mod handler;
#[cfg(unix)]
pub mod handoff;
mod runtime;
mod server;
mod shared_deadline;

pub use config::Config;
pub use error::Error;
pub use handler::{Handler, Request, RequestBody, Responder, ResponseBody, StreamContext};
pub use runtime::{stop_on_signals, Runtime};
pub use server::{Listener, Server};

pub use client::Client;
pub use {bytes, h2, http};
