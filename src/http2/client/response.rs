//! [`Response`]: the answer, read in full, with the trailers and how it was got.

use std::net::SocketAddr;

use bytes::Bytes;
use http::{HeaderMap, StatusCode};

/// A response read in full (up to
/// [`ClientConfig::max_response_body`](super::ClientConfig::max_response_body)),
/// with its trailers.
///
/// # Example
///
/// ```no_run
/// # async fn f<R: winddown::http2::Runtime, C: winddown::http2::client::Connect>(client: winddown::http2::client::Client<R, C>) -> Result<(), winddown::http2::client::Error> {
/// let response = client.send(winddown::http2::client::Request::get("/ready")).await?;
/// println!("{} from {} after {} attempt(s)", response.status(), response.peer(), response.attempts());
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Response {
    pub(crate) head: http::response::Parts,
    pub(crate) body: Bytes,
    pub(crate) trailers: Option<HeaderMap>,
    pub(crate) attempts: u32,
    pub(crate) peer: SocketAddr,
}

impl Response {
    /// The status.
    ///
    /// # Example
    ///
    /// ```
    /// # fn f(r: &winddown::http2::client::Response) -> bool {
    /// r.status().is_success()
    /// # }
    /// ```
    pub fn status(&self) -> StatusCode {
        self.head.status
    }

    /// The headers.
    ///
    /// # Example
    ///
    /// ```
    /// # fn f(r: &winddown::http2::client::Response) {
    /// let _ = r.headers().get("content-type");
    /// # }
    /// ```
    pub fn headers(&self) -> &HeaderMap {
        &self.head.headers
    }

    /// The body.
    ///
    /// # Example
    ///
    /// ```
    /// # fn f(r: &winddown::http2::client::Response) {
    /// println!("{} bytes", r.body().len());
    /// # }
    /// ```
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// The trailers, if the server sent any.
    ///
    /// # Example
    ///
    /// ```
    /// # fn f(r: &winddown::http2::client::Response) {
    /// let _ = r.trailers().and_then(|t| t.get("grpc-status"));
    /// # }
    /// ```
    pub fn trailers(&self) -> Option<&HeaderMap> {
        self.trailers.as_ref()
    }

    /// How many attempts it took (1 when nothing went wrong).
    ///
    /// # Example
    ///
    /// ```
    /// # fn f(r: &winddown::http2::client::Response) {
    /// if r.attempts() > 1 { println!("moved off a draining connection"); }
    /// # }
    /// ```
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// The address of the server that answered.
    ///
    /// # Example
    ///
    /// ```
    /// # fn f(r: &winddown::http2::client::Response) {
    /// println!("{}", r.peer());
    /// # }
    /// ```
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// The gRPC status (from the trailers, or the headers of a trailers-only
    /// response), if any.
    ///
    /// # Example
    ///
    /// ```
    /// # fn f(r: &winddown::http2::client::Response) {
    /// assert_eq!(r.grpc_status(), Some(0));
    /// # }
    /// ```
    pub fn grpc_status(&self) -> Option<u32> {
        let value = self
            .trailers
            .as_ref()
            .and_then(|t| t.get("grpc-status"))
            .or_else(|| self.head.headers.get("grpc-status"))?;
        value.to_str().ok()?.parse().ok()
    }

    /// The first gRPC message of the body (the 5-byte prefix removed), if the
    /// body holds a whole one.
    ///
    /// # Example
    ///
    /// ```
    /// # fn f(r: &winddown::http2::client::Response) {
    /// let _ = r.grpc_message();
    /// # }
    /// ```
    pub fn grpc_message(&self) -> Option<&[u8]> {
        let prefix = self.body.get(..5)?;
        let len = u32::from_be_bytes([prefix[1], prefix[2], prefix[3], prefix[4]]) as usize;
        self.body.get(5..5usize.checked_add(len)?)
    }
}
