//! [`Request`] and [`Body`]: what the client sends, and whether it may be
//! sent twice.

use std::fmt;
use std::io;
use std::pin::Pin;

use bytes::Bytes;
use futures_lite::Stream;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Uri};

/// A request for the [`Client`](super::Client): head, body, and whether the
/// caller declares it idempotent.
///
/// A request the server provably did not process is retried whatever its
/// method. One that may have been processed is retried only if marked
/// [`idempotent`](Request::idempotent): the client does not infer it from
/// the method, because servers do not all keep RFC 9110's promise for GET.
///
/// # Example
///
/// ```
/// use winddown::http2::client::Request;
///
/// let request = Request::post("/echo", "hello")
///     .header("content-type", "text/plain")
///     .idempotent();
/// assert!(request.is_idempotent());
/// assert!(request.body().is_replayable());
/// ```
pub struct Request {
    pub(crate) method: Method,
    pub(crate) uri: Uri,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Body,
    pub(crate) idempotent: bool,
    /// Why the request cannot be sent (a malformed URI or header), reported
    /// by [`Client::send`](super::Client::send) instead of a panic here.
    pub(crate) invalid: Option<String>,
}

impl Request {
    /// A request with `method` for `uri` (a path such as `/echo`, or an
    /// absolute `http://host/path`; a path gets the connection's address as
    /// its authority).
    ///
    /// # Example
    ///
    /// ```
    /// use winddown::http2::client::{Body, Request};
    /// use winddown::http2::http::Method;
    ///
    /// let request = Request::new(Method::PUT, "/items/7", Body::from("x"));
    /// assert_eq!(request.method(), Method::PUT);
    /// ```
    pub fn new(method: Method, uri: impl AsRef<str>, body: impl Into<Body>) -> Self {
        let (uri, invalid) = match uri.as_ref().parse() {
            Ok(uri) => (uri, None),
            Err(e) => (
                Uri::from_static("/"),
                Some(format!("invalid URI {:?}: {e}", uri.as_ref())),
            ),
        };
        Self {
            method,
            uri,
            headers: HeaderMap::new(),
            body: body.into(),
            idempotent: false,
            invalid,
        }
    }

    /// A GET for `uri`, with no body.
    ///
    /// # Example
    ///
    /// ```
    /// let request = winddown::http2::client::Request::get("/ready");
    /// assert_eq!(request.uri(), "/ready");
    /// ```
    pub fn get(uri: impl AsRef<str>) -> Self {
        Self::new(Method::GET, uri, Body::empty())
    }

    /// A POST of `body` to `uri`.
    ///
    /// # Example
    ///
    /// ```
    /// let request = winddown::http2::client::Request::post("/echo", vec![1, 2, 3]);
    /// assert_eq!(request.body().len(), Some(3));
    /// ```
    pub fn post(uri: impl AsRef<str>, body: impl Into<Body>) -> Self {
        Self::new(Method::POST, uri, body)
    }

    /// A gRPC unary call of `method` (e.g. `/echo.Echo/Say`) with an already
    /// encoded `message`: the length-prefixed frame, `content-type:
    /// application/grpc` and `te: trailers`. The reply's message is
    /// [`Response::grpc_message`](super::Response::grpc_message).
    ///
    /// # Example
    ///
    /// ```
    /// let request = winddown::http2::client::Request::grpc("/echo.Echo/Say", "hi");
    /// assert_eq!(request.body().len(), Some(5 + 2));
    /// ```
    pub fn grpc(method: impl AsRef<str>, message: impl AsRef<[u8]>) -> Self {
        let message = message.as_ref();
        let mut frame = Vec::with_capacity(5 + message.len());
        frame.push(0); // not compressed
        frame.extend_from_slice(&(message.len() as u32).to_be_bytes());
        frame.extend_from_slice(message);
        Self::post(method, frame)
            .header("content-type", "application/grpc")
            .header("te", "trailers")
    }

    /// Adds a header. An invalid name or value makes
    /// [`Client::send`](super::Client::send) fail with
    /// [`ErrorKind::Invalid`](super::ErrorKind::Invalid) (nothing is sent).
    ///
    /// # Example
    ///
    /// ```
    /// let request = winddown::http2::client::Request::get("/").header("x-trace", "1");
    /// assert_eq!(request.headers()["x-trace"], "1");
    /// ```
    pub fn header(mut self, name: &str, value: &str) -> Self {
        match (HeaderName::try_from(name), HeaderValue::try_from(value)) {
            (Ok(name), Ok(value)) => {
                self.headers.append(name, value);
            }
            _ => {
                self.invalid
                    .get_or_insert_with(|| format!("invalid header {name:?}: {value:?}"));
            }
        }
        self
    }

    /// Declares that sending this request twice has the effect of sending it
    /// once, so it may be retried (once) even when the server may have
    /// processed it.
    ///
    /// # Example
    ///
    /// ```
    /// let request = winddown::http2::client::Request::get("/").idempotent();
    /// assert!(request.is_idempotent());
    /// ```
    pub fn idempotent(mut self) -> Self {
        self.idempotent = true;
        self
    }

    /// Whether the caller marked it idempotent.
    ///
    /// # Example
    ///
    /// ```
    /// assert!(!winddown::http2::client::Request::get("/").is_idempotent());
    /// ```
    pub fn is_idempotent(&self) -> bool {
        self.idempotent
    }

    /// The method.
    ///
    /// # Example
    ///
    /// ```
    /// assert_eq!(winddown::http2::client::Request::get("/").method(), "GET");
    /// ```
    pub fn method(&self) -> &Method {
        &self.method
    }

    /// The URI as given.
    ///
    /// # Example
    ///
    /// ```
    /// assert_eq!(winddown::http2::client::Request::get("/a").uri(), "/a");
    /// ```
    pub fn uri(&self) -> &Uri {
        &self.uri
    }

    /// The headers.
    ///
    /// # Example
    ///
    /// ```
    /// assert!(winddown::http2::client::Request::get("/").headers().is_empty());
    /// ```
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// Mutable access to the headers.
    ///
    /// # Example
    ///
    /// ```
    /// use winddown::http2::http::HeaderValue;
    /// let mut request = winddown::http2::client::Request::get("/");
    /// request.headers_mut().insert("x-a", HeaderValue::from_static("b"));
    /// ```
    pub fn headers_mut(&mut self) -> &mut HeaderMap {
        &mut self.headers
    }

    /// The body.
    ///
    /// # Example
    ///
    /// ```
    /// assert_eq!(winddown::http2::client::Request::get("/").body().len(), Some(0));
    /// ```
    pub fn body(&self) -> &Body {
        &self.body
    }

    /// The head h2 is given for one attempt: the URI completed with a scheme
    /// and `authority` when it is only a path.
    pub(crate) fn head(&self, authority: &str) -> Result<http::Request<()>, http::Error> {
        let uri = if self.uri.scheme().is_some() {
            self.uri.clone()
        } else {
            let path = self.uri.path_and_query().map_or("/", |p| p.as_str());
            Uri::builder()
                .scheme("http")
                .authority(authority)
                .path_and_query(path)
                .build()?
        };
        let mut head = http::Request::builder()
            .method(self.method.clone())
            .uri(uri)
            .body(())?;
        *head.headers_mut() = self.headers.clone();
        Ok(head)
    }
}

impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Request")
            .field("method", &self.method)
            .field("uri", &self.uri)
            .field("body", &self.body)
            .field("idempotent", &self.idempotent)
            .finish()
    }
}

/// A one-shot body: chunks produced once, so not replayable.
pub type BodyStream = Pin<Box<dyn Stream<Item = io::Result<Bytes>> + Send + 'static>>;

/// A request body: bytes in memory (replayable, so retries are possible) or
/// a one-shot stream (sent as it is produced; a request whose stream has been
/// taken cannot be retried, whatever happened to it).
///
/// # Example
///
/// ```
/// use winddown::http2::client::Body;
///
/// assert!(Body::from("in memory").is_replayable());
/// let chunks = futures_lite::stream::iter(vec![Ok(bytes::Bytes::from("once"))]);
/// assert!(!Body::from_stream(chunks).is_replayable());
/// ```
pub struct Body(pub(crate) BodyKind);

pub(crate) enum BodyKind {
    Bytes(Bytes),
    /// `None` once taken by an attempt that sent the request.
    Stream(Option<BodyStream>),
}

impl Body {
    /// No body.
    ///
    /// # Example
    ///
    /// ```
    /// assert_eq!(winddown::http2::client::Body::empty().len(), Some(0));
    /// ```
    pub fn empty() -> Self {
        Body(BodyKind::Bytes(Bytes::new()))
    }

    /// A one-shot body from a stream of chunks.
    ///
    /// # Example
    ///
    /// ```
    /// let body = winddown::http2::client::Body::from_stream(futures_lite::stream::empty());
    /// assert_eq!(body.len(), None);
    /// ```
    pub fn from_stream(stream: impl Stream<Item = io::Result<Bytes>> + Send + 'static) -> Self {
        Body(BodyKind::Stream(Some(Box::pin(stream))))
    }

    /// Whether the body can be sent again on a retry.
    ///
    /// # Example
    ///
    /// ```
    /// assert!(winddown::http2::client::Body::empty().is_replayable());
    /// ```
    pub fn is_replayable(&self) -> bool {
        matches!(self.0, BodyKind::Bytes(_))
    }

    /// The length, when it is known (in memory).
    ///
    /// # Example
    ///
    /// ```
    /// assert_eq!(winddown::http2::client::Body::from("abc").len(), Some(3));
    /// ```
    pub fn len(&self) -> Option<usize> {
        match &self.0 {
            BodyKind::Bytes(bytes) => Some(bytes.len()),
            BodyKind::Stream(_) => None,
        }
    }

    /// Whether the body is known to be empty.
    ///
    /// # Example
    ///
    /// ```
    /// assert!(winddown::http2::client::Body::empty().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == Some(0)
    }
}

impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            BodyKind::Bytes(bytes) => write!(f, "Body({} bytes)", bytes.len()),
            BodyKind::Stream(Some(_)) => f.write_str("Body(stream)"),
            BodyKind::Stream(None) => f.write_str("Body(stream, taken)"),
        }
    }
}

impl From<Bytes> for Body {
    fn from(bytes: Bytes) -> Self {
        Body(BodyKind::Bytes(bytes))
    }
}

impl From<Vec<u8>> for Body {
    fn from(bytes: Vec<u8>) -> Self {
        Body(BodyKind::Bytes(bytes.into()))
    }
}

impl From<&'static str> for Body {
    fn from(text: &'static str) -> Self {
        Body(BodyKind::Bytes(Bytes::from_static(text.as_bytes())))
    }
}

impl From<String> for Body {
    fn from(text: String) -> Self {
        Body(BodyKind::Bytes(text.into()))
    }
}

impl From<()> for Body {
    fn from(_: ()) -> Self {
        Body::empty()
    }
}
