//! The client half: an HTTP/2 client that handles GOAWAY the way grpc-go's
//! does, and retries only what the server never processed.
//!
//! With the bare `h2` crate, every request after a GOAWAY fails and the
//! caller must work out what to do. This [`Client`]:
//!
//! - keeps one connection for new requests and, when it receives a GOAWAY or
//!   fails, sends new requests on a new one (to the next address that
//!   accepts) while the old one finishes its streams;
//! - retries, once and on the new connection, a request the server did not
//!   process: above the GOAWAY's last-stream-id, or refused with
//!   `REFUSED_STREAM` (RFC 9113 §8.7), whatever its method, when its body
//!   can be replayed;
//! - never retries a request that may have been processed unless the caller
//!   marked it [`idempotent`](Request::idempotent);
//! - says in every [`Error`] how far the request got ([`Processing`]) and why
//!   it was not retried ([`NotRetried`]).
//!
//! | what happened | [`Processing`] | retried? |
//! |---|---|---|
//! | the connection had already gone away, or no connection | `NotSent` | yes, without using the retry ([`ClientConfig::max_reroutes`]) |
//! | stream above the GOAWAY's last-stream-id | `Unprocessed(AboveLastStreamId)` | once, if the body is replayable |
//! | reset with `REFUSED_STREAM` | `Unprocessed(Refused)` | once, if the body is replayable |
//! | reset otherwise, connection lost, timeout after sending | `MaybeProcessed` | once, only if idempotent and replayable |
//! | failed after the response headers | `Processed` | never |
//!
//! It is written once against [`Runtime`](super::Runtime) and [`Connect`];
//! `winddown-smol` and `winddown-tokio` supply both (`rt::client`).
//!
//! # Example
//!
//! ```no_run
//! use winddown::http2::client::{ClientConfig, NotRetried, Request};
//! use winddown_tokio as rt;
//!
//! # #[tokio::main] async fn main() {
//! let client = rt::client(["127.0.0.1:8080".parse().unwrap()], ClientConfig::default());
//! // Not idempotent: retried only if the server provably did not process it.
//! match client.send(Request::post("/orders", "one book")).await {
//!     Ok(response) => println!("{}", response.status()),
//!     Err(e) if e.not_retried() == Some(NotRetried::NotIdempotent) => {
//!         eprintln!("may or may not have been ordered: {e}")
//!     }
//!     Err(e) => eprintln!("not ordered: {e}"),
//! }
//! # }
//! ```

mod attempt;
#[allow(clippy::module_inception)] // the type is the module's subject
mod client;
mod config;
mod connect;
mod error;
mod pool;
mod request;
mod response;
mod retry;

pub use client::Client;
pub use config::ClientConfig;
pub use connect::Connect;
pub use error::{Error, ErrorKind};
pub use pool::ClientStats;
pub use request::{Body, BodyStream, Request};
pub use response::Response;
pub use retry::{NotRetried, Processing, Unprocessed};
