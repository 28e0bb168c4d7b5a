//! [`Error`]: what can go wrong while reading a request or writing a response.

use std::fmt;

/// An error from reading a request body or writing a response.
///
/// Most of these mean the stream is gone (the client reset it, the connection
/// closed, or a hard stop closed it): a handler should stop working on it.
///
/// # Example
///
/// ```
/// let err = winddown::http2::Error::BodyTooLarge { limit: 16 };
/// assert_eq!(err.to_string(), "request body larger than 16 bytes");
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The HTTP/2 layer failed: the stream was reset or the connection closed.
    Http2(h2::Error),
    /// The request body was larger than the caller's limit.
    BodyTooLarge {
        /// The limit that was exceeded, in bytes.
        limit: usize,
    },
    /// The stream closed before the whole response could be sent.
    StreamClosed,
}

impl Error {
    /// Whether the client reset the stream or the connection went away, as
    /// opposed to a local limit.
    ///
    /// # Example
    ///
    /// ```
    /// assert!(winddown::http2::Error::StreamClosed.is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        matches!(self, Error::Http2(_) | Error::StreamClosed)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Http2(e) => write!(f, "http2: {e}"),
            Error::BodyTooLarge { limit } => write!(f, "request body larger than {limit} bytes"),
            Error::StreamClosed => f.write_str("stream closed before the response was complete"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Http2(e) => Some(e),
            _ => None,
        }
    }
}

impl From<h2::Error> for Error {
    fn from(e: h2::Error) -> Self {
        Error::Http2(e)
    }
}
