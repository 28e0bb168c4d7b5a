//! The handler API: [`Handler`], [`Request`], [`Responder`], [`ResponseBody`]
//! and the [`StreamContext`] that tells a handler the server is draining.

use std::fmt;
use std::future::{poll_fn, Future};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use h2::server::SendResponse;
use h2::{RecvStream, SendStream};
use http::{HeaderMap, Method, Response, StatusCode, Uri};

use super::Error;
use crate::{ConnInfo, DrainToken, Entry, OpenStream, Shutdown};

/// Serves one request (one HTTP/2 stream).
///
/// Implemented for every `Fn(Request, Responder) -> impl Future<Output = ()>`,
/// so a closure is a handler. Each call runs in its own task; a panic is
/// contained (counted, and the stream answered with 500 or reset) and the
/// connection carries on (B10).
///
/// # Example
///
/// ```
/// use winddown::http2::{Handler, Request, Responder};
///
/// async fn hello(request: Request, responder: Responder) {
///     let body = format!("hello from stream {}\n", request.context().stream_id());
///     let _ = responder.send(http::Response::new(()), body).await;
/// }
///
/// fn assert_handler(_: impl Handler) {}
/// assert_handler(hello);
/// ```
pub trait Handler: Send + Sync + 'static {
    /// Serves `request`, answering through `responder`.
    fn call(&self, request: Request, responder: Responder) -> impl Future<Output = ()> + Send;
}

impl<F, Fut> Handler for F
where
    F: Fn(Request, Responder) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send,
{
    fn call(&self, request: Request, responder: Responder) -> impl Future<Output = ()> + Send {
        self(request, responder)
    }
}

/// What a handler knows about its stream and the server's state (B9: the
/// seed's "watch ctx").
///
/// [`draining`](StreamContext::draining) fires when this connection starts to
/// drain (a graceful stop, or the connection's own max age): a long stream
/// should wrap up soon. [`stopping`](StreamContext::stopping) fires on a hard
/// stop: whatever is left will be cut.
///
/// # Example
///
/// ```
/// use winddown::http2::{Request, Responder};
///
/// // Sends a chunk until the server drains, then ends the stream cleanly.
/// async fn follow(request: Request, responder: Responder) {
///     let Ok(mut body) = responder.stream(http::Response::new(())) else { return };
///     let ctx = request.context();
///     while !ctx.is_draining() {
///         if body.send("tick\n").await.is_err() {
///             return;
///         }
///         # break;
///     }
///     let _ = body.finish().await;
/// }
/// # let _ = follow;
/// ```
#[derive(Clone)]
pub struct StreamContext {
    pub(crate) stream_id: u32,
    pub(crate) shared: Arc<ConnShared>,
}

/// What every stream of one connection shares, made once per connection
/// (when its first stream opens): a stream then costs one reference count on
/// it, not one on each of these, most of them shared by every connection.
pub(crate) struct ConnShared {
    pub(crate) shutdown: Shutdown,
    pub(crate) conn: Entry<ConnInfo>,
    pub(crate) drain: DrainToken,
    pub(crate) stop: DrainToken,
    pub(crate) peer: Option<SocketAddr>,
}

impl StreamContext {
    /// The HTTP/2 stream id.
    ///
    /// # Example
    ///
    /// ```
    /// # fn f(ctx: &winddown::http2::StreamContext) {
    /// println!("serving stream {}", ctx.stream_id());
    /// # }
    /// ```
    pub fn stream_id(&self) -> u32 {
        self.stream_id
    }

    /// The client's address, if the transport has one.
    ///
    /// # Example
    ///
    /// ```
    /// # fn f(ctx: &winddown::http2::StreamContext) {
    /// if let Some(peer) = ctx.peer() {
    ///     println!("from {peer}");
    /// }
    /// # }
    /// ```
    pub fn peer(&self) -> Option<SocketAddr> {
        self.shared.peer
    }

    /// Whether this connection is draining (or the server is stopping).
    ///
    /// # Example
    ///
    /// ```
    /// # fn f(ctx: &winddown::http2::StreamContext) {
    /// if ctx.is_draining() {
    ///     // finish up
    /// }
    /// # }
    /// ```
    pub fn is_draining(&self) -> bool {
        self.shared.drain.is_fired()
    }

    /// Completes when this connection starts draining.
    ///
    /// # Example
    ///
    /// ```
    /// # async fn f(ctx: &winddown::http2::StreamContext) {
    /// ctx.draining().await;
    /// # }
    /// ```
    pub async fn draining(&self) {
        self.shared.drain.wait().await
    }

    /// Whether a hard stop has begun.
    ///
    /// # Example
    ///
    /// ```
    /// # fn f(ctx: &winddown::http2::StreamContext) {
    /// assert!(!ctx.is_stopping() || ctx.is_draining());
    /// # }
    /// ```
    pub fn is_stopping(&self) -> bool {
        self.shared.stop.is_fired()
    }

    /// Completes when a hard stop begins.
    ///
    /// # Example
    ///
    /// ```
    /// # async fn f(ctx: &winddown::http2::StreamContext) {
    /// ctx.stopping().await;
    /// # }
    /// ```
    pub async fn stopping(&self) {
        self.shared.stop.wait().await
    }
}

impl fmt::Debug for StreamContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamContext")
            .field("stream_id", &self.stream_id)
            .field("peer", &self.shared.peer)
            .field("draining", &self.is_draining())
            .field("stopping", &self.is_stopping())
            .finish()
    }
}

/// A request: its head, its body, and its [`StreamContext`].
///
/// # Example
///
/// ```
/// use winddown::http2::{Request, Responder};
///
/// async fn echo(mut request: Request, responder: Responder) {
///     match request.body_mut().collect(1 << 20).await {
///         Ok(body) => { let _ = responder.send(http::Response::new(()), body).await; }
///         Err(_) => responder.reset(h2::Reason::CANCEL),
///     }
/// }
/// # let _ = echo;
/// ```
pub struct Request {
    pub(crate) head: http::request::Parts,
    pub(crate) body: RequestBody,
    pub(crate) context: StreamContext,
}

impl Request {
    /// The method.
    ///
    /// # Example
    ///
    /// ```
    /// # fn f(r: &winddown::http2::Request) -> bool {
    /// r.method() == http::Method::POST
    /// # }
    /// ```
    pub fn method(&self) -> &Method {
        &self.head.method
    }

    /// The URI.
    ///
    /// # Example
    ///
    /// ```
    /// # fn f(r: &winddown::http2::Request) {
    /// println!("{}", r.uri());
    /// # }
    /// ```
    pub fn uri(&self) -> &Uri {
        &self.head.uri
    }

    /// The path of the URI.
    ///
    /// # Example
    ///
    /// ```
    /// # fn f(r: &winddown::http2::Request) -> bool {
    /// r.path() == "/echo"
    /// # }
    /// ```
    pub fn path(&self) -> &str {
        self.head.uri.path()
    }

    /// The headers.
    ///
    /// # Example
    ///
    /// ```
    /// # fn f(r: &winddown::http2::Request) -> bool {
    /// r.headers().contains_key("content-type")
    /// # }
    /// ```
    pub fn headers(&self) -> &HeaderMap {
        &self.head.headers
    }

    /// The stream's context: its id, the peer, and the drain and stop signals.
    ///
    /// # Example
    ///
    /// ```
    /// # fn f(r: &winddown::http2::Request) -> u32 {
    /// r.context().stream_id()
    /// # }
    /// ```
    pub fn context(&self) -> &StreamContext {
        &self.context
    }

    /// The body, to read.
    ///
    /// # Example
    ///
    /// ```
    /// # async fn f(mut r: winddown::http2::Request) {
    /// while let Some(Ok(chunk)) = r.body_mut().chunk().await {
    ///     println!("{} bytes", chunk.len());
    /// }
    /// # }
    /// ```
    pub fn body_mut(&mut self) -> &mut RequestBody {
        &mut self.body
    }

    /// Splits the request into its parts.
    ///
    /// # Example
    ///
    /// ```
    /// # fn f(r: winddown::http2::Request) {
    /// let (head, body, context) = r.into_parts();
    /// # let _ = (head, body, context);
    /// # }
    /// ```
    pub fn into_parts(self) -> (http::request::Parts, RequestBody, StreamContext) {
        (self.head, self.body, self.context)
    }
}

impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Request")
            .field("method", self.method())
            .field("uri", self.uri())
            .field("stream_id", &self.context.stream_id)
            .finish_non_exhaustive()
    }
}

/// A request body. Reading releases HTTP/2 flow-control capacity as chunks are
/// handed out, so a slow handler slows its own client, not the connection.
///
/// # Example
///
/// ```
/// # async fn f(mut r: winddown::http2::Request) -> Result<(), winddown::http2::Error> {
/// let body = r.body_mut().collect(64 * 1024).await?;
/// println!("{} bytes", body.len());
/// # Ok(()) }
/// ```
pub struct RequestBody {
    pub(crate) recv: RecvStream,
}

impl RequestBody {
    /// The next chunk, or `None` at the end of the body.
    ///
    /// # Example
    ///
    /// ```
    /// # async fn f(body: &mut winddown::http2::RequestBody) {
    /// while let Some(chunk) = body.chunk().await {
    ///     let Ok(chunk) = chunk else { break };
    ///     println!("{} bytes", chunk.len());
    /// }
    /// # }
    /// ```
    pub async fn chunk(&mut self) -> Option<Result<Bytes, Error>> {
        let chunk = self.recv.data().await?;
        Some(match chunk {
            Ok(bytes) => {
                // The bytes are ours now: let the client send more. An error
                // here means the stream is gone, which the next read reports.
                let _ = self.recv.flow_control().release_capacity(bytes.len());
                Ok(bytes)
            }
            Err(e) => Err(e.into()),
        })
    }

    /// Reads the whole body, failing if it is larger than `limit` bytes.
    ///
    /// # Example
    ///
    /// ```
    /// # async fn f(body: &mut winddown::http2::RequestBody) {
    /// match body.collect(1024).await {
    ///     Ok(bytes) => println!("{} bytes", bytes.len()),
    ///     Err(e) => println!("{e}"),
    /// }
    /// # }
    /// ```
    pub async fn collect(&mut self, limit: usize) -> Result<Bytes, Error> {
        // A body that arrives in one DATA frame (most small ones) is returned
        // as it came, without a copy; only a second chunk starts a buffer.
        let mut first: Option<Bytes> = None;
        let mut all = BytesMut::new();
        let mut len = 0usize;
        while let Some(chunk) = self.chunk().await {
            let chunk = chunk?;
            len += chunk.len();
            if len > limit {
                return Err(Error::BodyTooLarge { limit });
            }
            match first.take() {
                None if all.is_empty() => first = Some(chunk),
                Some(earlier) => {
                    all.reserve(len);
                    all.extend_from_slice(&earlier);
                    all.extend_from_slice(&chunk);
                }
                None => all.extend_from_slice(&chunk),
            }
        }
        Ok(first.unwrap_or_else(|| all.freeze()))
    }

    /// The trailers, once the body has been read to its end.
    ///
    /// # Example
    ///
    /// ```
    /// # async fn f(body: &mut winddown::http2::RequestBody) {
    /// if let Ok(Some(trailers)) = body.trailers().await {
    ///     println!("{trailers:?}");
    /// }
    /// # }
    /// ```
    pub async fn trailers(&mut self) -> Result<Option<HeaderMap>, Error> {
        Ok(self.recv.trailers().await?)
    }
}

impl fmt::Debug for RequestBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestBody")
            .field("end_stream", &self.recv.is_end_stream())
            .finish()
    }
}

/// How a stream ended, for the report.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum StreamEnd {
    /// Not (yet) answered in full: counted as reset if it ends like this
    /// (dropped half-way, reset by the client, or cut by a hard stop).
    Reset,
    /// The end of the response was sent.
    Completed,
    /// Refused before any handler work: the client may retry it.
    Refused,
}

/// Counts one stream for the report and keeps the connection's list of open
/// streams (the stragglers a stuck stop names).
pub(crate) struct StreamTicket {
    pub(crate) shared: Arc<ConnShared>,
    pub(crate) stream: OpenStream,
    pub(crate) end: StreamEnd,
}

impl StreamTicket {
    pub(crate) fn new(shared: Arc<ConnShared>, id: u32, path: &str, opened_at: Instant) -> Self {
        let stream = shared.conn.stream_opened_at(id, path, opened_at);
        Self {
            shared,
            stream,
            end: StreamEnd::Reset,
        }
    }
}

impl Drop for StreamTicket {
    fn drop(&mut self) {
        let stream = std::mem::replace(&mut self.stream, OpenStream::taken());
        if !self.shared.conn.stream_closed(stream) {
            // The connection was forced closed and already counted this
            // stream as cut.
            return;
        }
        let stats = self.shared.shutdown.stats();
        match self.end {
            StreamEnd::Reset => stats.stream_reset(),
            StreamEnd::Completed => stats.stream_completed(),
            StreamEnd::Refused => stats.stream_refused(),
        }
    }
}

/// The stream ended as the handler meant, if h2 took its end (a ticket
/// dropped otherwise counts the stream as reset).
fn completed(mut ticket: StreamTicket, sent: Result<(), h2::Error>) -> Result<(), Error> {
    sent?;
    ticket.end = StreamEnd::Completed;
    Ok(())
}

/// Answers one request: whole ([`send`](Responder::send)), streamed
/// ([`stream`](Responder::stream)), or not at all ([`refuse`](Responder::refuse),
/// [`reset`](Responder::reset)).
///
/// A responder dropped without answering (a handler that returned early or
/// panicked) answers `500 Internal Server Error`.
///
/// # Example
///
/// ```
/// use winddown::http2::{Request, Responder};
///
/// async fn not_found(_: Request, responder: Responder) {
///     let response = http::Response::builder().status(404).body(()).unwrap();
///     let _ = responder.send(response, "no such thing\n").await;
/// }
/// # let _ = not_found;
/// ```
pub struct Responder {
    pub(crate) send: Option<SendResponse<Bytes>>,
    pub(crate) ticket: Option<StreamTicket>,
}

impl Responder {
    /// Sends the response head and returns the body to stream into.
    ///
    /// # Example
    ///
    /// ```
    /// # async fn f(responder: winddown::http2::Responder) -> Result<(), winddown::http2::Error> {
    /// let mut body = responder.stream(http::Response::new(()))?;
    /// body.send("part 1\n").await?;
    /// body.send("part 2\n").await?;
    /// body.finish().await
    /// # }
    /// ```
    pub fn stream(mut self, response: Response<()>) -> Result<ResponseBody, Error> {
        let (mut send, ticket) = self.take();
        let stream = send.send_response(response, false)?;
        Ok(ResponseBody { stream, ticket })
    }

    /// Sends a whole response: head, body (respecting flow control) and end.
    ///
    /// The response is handed to h2 when this is called (h2 writes the body
    /// as the client's flow-control window lets it), so the future returned
    /// is already complete: awaiting it yields the result. It is a future
    /// that stays small in the handler's own future, instead of one that
    /// would carry the response and body until first polled.
    ///
    /// # Example
    ///
    /// ```
    /// # async fn f(responder: winddown::http2::Responder) -> Result<(), winddown::http2::Error> {
    /// responder.send(http::Response::new(()), "done\n").await
    /// # }
    /// ```
    pub fn send(
        self,
        response: Response<()>,
        body: impl Into<Bytes>,
    ) -> impl Future<Output = Result<(), Error>> + Send {
        std::future::ready(self.send_now(response, body.into()))
    }

    fn send_now(mut self, response: Response<()>, body: Bytes) -> Result<(), Error> {
        let (mut send, ticket) = self.take();
        let sent = if body.is_empty() {
            send.send_response(response, true).map(drop)
        } else {
            // The body is in memory already, so h2 may hold it until the
            // client's window lets it out: no waiting for capacity here, and
            // the last DATA frame carries END_STREAM (HEADERS + DATA, not a
            // third, empty frame). A graceful stop still waits for it to be
            // written, since the stream stays open until then.
            send.send_response(response, false)
                .and_then(|mut stream| stream.send_data(body, true))
        };
        completed(ticket, sent)
    }

    /// Sends a whole response that ends with trailers: head, body (if not
    /// empty) and trailers, the shape of a unary gRPC response (one
    /// message, then `grpc-status`). Like [`send`](Responder::send), it hands
    /// everything to h2 when called, without waiting for flow-control
    /// capacity (the body is in memory already); the future returned is
    /// already complete.
    ///
    /// # Example
    ///
    /// ```
    /// use winddown::http2::http::{HeaderMap, HeaderValue, Response};
    ///
    /// # async fn f(responder: winddown::http2::Responder) -> Result<(), winddown::http2::Error> {
    /// let mut head = Response::new(());
    /// head.headers_mut().insert("content-type", HeaderValue::from_static("application/grpc"));
    /// let message = &[0, 0, 0, 0, 0][..]; // an empty gRPC message, 5-byte framed
    /// let mut trailers = HeaderMap::new();
    /// trailers.insert("grpc-status", HeaderValue::from_static("0"));
    /// responder.send_with_trailers(head, message, trailers).await
    /// # }
    /// ```
    pub fn send_with_trailers(
        mut self,
        response: Response<()>,
        body: impl Into<Bytes>,
        trailers: HeaderMap,
    ) -> impl Future<Output = Result<(), Error>> + Send {
        let body = body.into();
        let (mut send, ticket) = self.take();
        let sent = send.send_response(response, false).and_then(|mut stream| {
            if !body.is_empty() {
                stream.send_data(body, false)?;
            }
            stream.send_trailers(trailers)
        });
        std::future::ready(completed(ticket, sent))
    }

    /// Refuses the stream with `REFUSED_STREAM`: the client may retry it
    /// elsewhere, since nothing was processed.
    ///
    /// # Example
    ///
    /// ```
    /// # fn f(responder: winddown::http2::Responder) {
    /// responder.refuse();
    /// # }
    /// ```
    pub fn refuse(mut self) {
        let (mut send, mut ticket) = self.take();
        send.send_reset(h2::Reason::REFUSED_STREAM);
        ticket.end = StreamEnd::Refused;
    }

    /// Resets the stream with `reason`.
    ///
    /// # Example
    ///
    /// ```
    /// # fn f(responder: winddown::http2::Responder) {
    /// responder.reset(h2::Reason::CANCEL);
    /// # }
    /// ```
    pub fn reset(mut self, reason: h2::Reason) {
        let (mut send, _ticket) = self.take();
        send.send_reset(reason);
    }

    fn take(&mut self) -> (SendResponse<Bytes>, StreamTicket) {
        match (self.send.take(), self.ticket.take()) {
            (Some(send), Some(ticket)) => (send, ticket),
            // Every constructor fills both and every method consumes `self`.
            _ => unreachable!("responder used after answering"),
        }
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        if let (Some(mut send), Some(mut ticket)) = (self.send.take(), self.ticket.take()) {
            let mut response = Response::new(());
            *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            // A whole (error) response; if the client is gone, a reset.
            if send.send_response(response, true).is_ok() {
                ticket.end = StreamEnd::Completed;
            }
        }
    }
}

impl fmt::Debug for Responder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Responder").finish_non_exhaustive()
    }
}

/// A response body being streamed. Sending waits for HTTP/2 flow-control
/// capacity, so a client that reads slowly slows the handler down instead of
/// filling the server's memory.
///
/// Dropping it without [`finish`](ResponseBody::finish) resets the stream.
///
/// # Example
///
/// ```
/// # async fn f(responder: winddown::http2::Responder) -> Result<(), winddown::http2::Error> {
/// let mut body = responder.stream(http::Response::new(()))?;
/// body.send("hello\n").await?;
/// let mut trailers = http::HeaderMap::new();
/// trailers.insert("grpc-status", http::HeaderValue::from_static("0"));
/// body.finish_with_trailers(trailers).await
/// # }
/// ```
pub struct ResponseBody {
    stream: SendStream<Bytes>,
    ticket: StreamTicket,
}

impl ResponseBody {
    /// Sends `data`, waiting for flow-control capacity as needed.
    ///
    /// # Example
    ///
    /// ```
    /// # async fn f(body: &mut winddown::http2::ResponseBody) -> Result<(), winddown::http2::Error> {
    /// body.send(bytes::Bytes::from_static(b"chunk")).await
    /// # }
    /// ```
    pub async fn send(&mut self, data: impl Into<Bytes>) -> Result<(), Error> {
        let mut data = data.into();
        while !data.is_empty() {
            self.stream.reserve_capacity(data.len());
            match poll_fn(|cx| self.stream.poll_capacity(cx)).await {
                Some(Ok(0)) => continue,
                Some(Ok(capacity)) => {
                    let chunk = data.split_to(capacity.min(data.len()));
                    self.stream.send_data(chunk, false)?;
                }
                Some(Err(e)) => return Err(e.into()),
                None => return Err(Error::StreamClosed),
            }
        }
        Ok(())
    }

    /// Ends the response. Like [`Responder::send`], it hands the end to h2
    /// when called; the future returned is already complete.
    ///
    /// # Example
    ///
    /// ```
    /// # async fn f(body: winddown::http2::ResponseBody) -> Result<(), winddown::http2::Error> {
    /// body.finish().await
    /// # }
    /// ```
    pub fn finish(mut self) -> impl Future<Output = Result<(), Error>> + Send {
        let sent = self.stream.send_data(Bytes::new(), true);
        std::future::ready(completed(self.ticket, sent))
    }

    /// Ends the response with trailers (gRPC's `grpc-status`). Like
    /// [`Responder::send`], it hands them to h2 when called; the future
    /// returned is already complete.
    ///
    /// # Example
    ///
    /// ```
    /// # async fn f(body: winddown::http2::ResponseBody) -> Result<(), winddown::http2::Error> {
    /// body.finish_with_trailers(http::HeaderMap::new()).await
    /// # }
    /// ```
    pub fn finish_with_trailers(
        mut self,
        trailers: HeaderMap,
    ) -> impl Future<Output = Result<(), Error>> + Send {
        let sent = self.stream.send_trailers(trailers);
        std::future::ready(completed(self.ticket, sent))
    }

    /// Completes when the client resets the stream (or the connection goes),
    /// with the reset's reason.
    ///
    /// # Example
    ///
    /// ```
    /// # async fn f(body: &mut winddown::http2::ResponseBody) {
    /// if let Ok(reason) = body.reset().await {
    ///     println!("client reset: {reason}");
    /// }
    /// # }
    /// ```
    pub async fn reset(&mut self) -> Result<h2::Reason, Error> {
        Ok(poll_fn(|cx| self.stream.poll_reset(cx)).await?)
    }
}

impl fmt::Debug for ResponseBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseBody").finish_non_exhaustive()
    }
}
