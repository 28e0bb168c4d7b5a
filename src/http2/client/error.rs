//! [`Error`]: why a request failed, how far it got, and why it was not retried.

use std::fmt;

use super::retry::{NotRetried, Processing};

/// What failed.
///
/// # Example
///
/// ```
/// use winddown::http2::client::ErrorKind;
/// assert_eq!(ErrorKind::Connect.to_string(), "no connection could be made");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// No address accepted a connection (and an HTTP/2 handshake) in time.
    Connect,
    /// The HTTP/2 layer failed: a reset, a GOAWAY, a closed connection.
    Http2,
    /// The request's own body stream failed.
    Body,
    /// The request timeout ran out.
    Timeout,
    /// The response body was larger than the configured limit.
    ResponseTooLarge,
    /// The request could not be sent: a malformed URI or header.
    Invalid,
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ErrorKind::Connect => "no connection could be made",
            ErrorKind::Http2 => "HTTP/2 error",
            ErrorKind::Body => "the request body failed",
            ErrorKind::Timeout => "timed out",
            ErrorKind::ResponseTooLarge => "response body too large",
            ErrorKind::Invalid => "invalid request",
        })
    }
}

/// A failed request: what failed ([`kind`](Error::kind)), how far the
/// request got ([`processing`](Error::processing)), and why it was not
/// retried ([`not_retried`](Error::not_retried)).
///
/// # Example
///
/// ```no_run
/// use winddown::http2::client::{Client, Connect, Processing, Request};
/// # async fn f<R: winddown::http2::Runtime, C: Connect>(client: Client<R, C>) {
/// match client.send(Request::post("/orders", "...")).await {
///     Ok(response) => println!("{}", response.status()),
///     // The server may have acted on it: ask it, do not blindly resend.
///     Err(e) if e.processing() == Processing::MaybeProcessed => eprintln!("unknown outcome: {e}"),
///     Err(e) => eprintln!("not done: {e}"),
/// }
/// # }
/// ```
#[derive(Debug)]
pub struct Error {
    pub(crate) kind: ErrorKind,
    pub(crate) processing: Processing,
    pub(crate) not_retried: Option<NotRetried>,
    pub(crate) attempts: u32,
    pub(crate) source: Option<Box<dyn std::error::Error + Send + Sync>>,
    pub(crate) detail: String,
}

impl Error {
    pub(crate) fn new(kind: ErrorKind, processing: Processing, detail: impl Into<String>) -> Self {
        Self {
            kind,
            processing,
            not_retried: None,
            attempts: 0,
            source: None,
            detail: detail.into(),
        }
    }

    pub(crate) fn with_source(
        mut self,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    /// What failed.
    ///
    /// # Example
    ///
    /// ```
    /// # fn f(e: &winddown::http2::client::Error) {
    /// println!("{}", e.kind());
    /// # }
    /// ```
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// How far the request got: whether the server may have acted on it.
    ///
    /// # Example
    ///
    /// ```
    /// # fn f(e: &winddown::http2::client::Error) {
    /// if e.processing().is_safe_to_retry() { /* nothing happened on the server */ }
    /// # }
    /// ```
    pub fn processing(&self) -> Processing {
        self.processing
    }

    /// Why the client did not retry it (`None` when the failure was not the
    /// kind that is ever retried, such as a timeout or a connect failure).
    ///
    /// # Example
    ///
    /// ```
    /// use winddown::http2::client::NotRetried;
    /// # fn f(e: &winddown::http2::client::Error) {
    /// if e.not_retried() == Some(NotRetried::NotIdempotent) { /* mark it idempotent if it is */ }
    /// # }
    /// ```
    pub fn not_retried(&self) -> Option<NotRetried> {
        self.not_retried
    }

    /// How many times it was sent or tried (reroutes and the retry included).
    ///
    /// # Example
    ///
    /// ```
    /// # fn f(e: &winddown::http2::client::Error) {
    /// println!("gave up after {} attempts", e.attempts());
    /// # }
    /// ```
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// The h2 error behind an [`ErrorKind::Http2`], if any.
    ///
    /// # Example
    ///
    /// ```
    /// # fn f(e: &winddown::http2::client::Error) {
    /// if let Some(reason) = e.h2().and_then(|e| e.reason()) { println!("{reason}"); }
    /// # }
    /// ```
    pub fn h2(&self) -> Option<&h2::Error> {
        self.source.as_ref()?.downcast_ref()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.kind)?;
        if !self.detail.is_empty() {
            write!(f, ": {}", self.detail)?;
        }
        write!(f, "; the request was {}", self.processing)?;
        if let Some(why) = self.not_retried {
            write!(f, "; not retried: {why}")?;
        }
        write!(f, " (attempts: {})", self.attempts)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_ref().map(|e| &**e as _)
    }
}
