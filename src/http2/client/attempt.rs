//! One attempt: one request on one connection, and what its failure means.

use std::future::poll_fn;

use bytes::{Bytes, BytesMut};
use futures_lite::{future, StreamExt};
use h2::client::ResponseFuture;
use h2::SendStream;

use super::error::{Error, ErrorKind};
use super::pool::Conn;
use super::request::{BodyKind, Request};
use super::response::Response;
use super::retry::{classify, Processing};

/// How far the current attempt got; read by the caller after a timeout
/// dropped the attempt.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Progress {
    /// h2 accepted the request (it has a stream id).
    pub(crate) sent: bool,
    /// The response headers arrived.
    pub(crate) answered: bool,
    /// The furthest an earlier attempt of the same request got: an error
    /// after a retry must not say "not sent" if the first try may have been
    /// processed.
    pub(crate) earlier: Processing,
    /// The connection of the current attempt (its pool id; 0: none yet).
    pub(crate) conn: u64,
}

impl Default for Progress {
    fn default() -> Self {
        Self {
            sent: false,
            answered: false,
            earlier: Processing::NotSent,
            conn: 0,
        }
    }
}

impl Progress {
    pub(crate) fn processing(self) -> Processing {
        let this = if self.answered {
            Processing::Processed
        } else if self.sent {
            Processing::MaybeProcessed
        } else {
            Processing::NotSent
        };
        this.furthest(self.earlier)
    }
}

/// Sends `request` on `conn` and reads the whole response. A failure comes
/// back classified; `progress` says how far it got if the caller drops this.
pub(crate) async fn attempt(
    conn: &Conn,
    request: &mut Request,
    max_body: usize,
    progress: &mut Progress,
) -> Result<Response, Error> {
    (progress.sent, progress.answered, progress.conn) = (false, false, conn.id);
    let head = request
        .head(&conn.authority)
        .map_err(|e| Error::new(ErrorKind::Invalid, Processing::NotSent, e.to_string()))?;
    let sender = conn.sender.clone();
    let mut sender = sender.ready().await.map_err(|e| h2_error(e, *progress))?;
    let known_empty = request.body.is_empty();
    let (response, stream) = sender
        .send_request(head, known_empty)
        .map_err(|e| h2_error(e, *progress))?;
    progress.sent = true;
    conn.last_stream.fetch_max(
        response.stream_id().as_u32(),
        std::sync::atomic::Ordering::Relaxed,
    );

    let response = if known_empty {
        response.await
    } else {
        let body = match &mut request.body.0 {
            BodyKind::Bytes(bytes) => Outgoing::Bytes(bytes.clone()),
            // Taken now: from here on this request cannot be replayed.
            BodyKind::Stream(stream) => match stream.take() {
                Some(stream) => Outgoing::Stream(stream),
                None => Outgoing::Bytes(Bytes::new()),
            },
        };
        send_while_waiting(response, stream, body).await?
    };
    let response = response.map_err(|e| h2_error(e, *progress))?;
    progress.answered = true;

    let (head, mut recv) = response.into_parts();
    let mut body = BytesMut::new();
    while let Some(chunk) = recv.data().await {
        let chunk = chunk.map_err(|e| h2_error(e, *progress))?;
        if body.len() + chunk.len() > max_body {
            // Tell the server we stopped reading, rather than stall it.
            drop(recv);
            return Err(Error::new(
                ErrorKind::ResponseTooLarge,
                Processing::Processed,
                format!("over {max_body} bytes"),
            ));
        }
        // Give the window back as we go: the body may exceed it.
        let _ = recv.flow_control().release_capacity(chunk.len());
        body.extend_from_slice(&chunk);
    }
    let trailers = recv.trailers().await.map_err(|e| h2_error(e, *progress))?;
    Ok(Response {
        head,
        body: body.freeze(),
        trailers,
        attempts: 0,
        peer: conn.peer,
    })
}

fn h2_error(error: h2::Error, progress: Progress) -> Error {
    match classify(&error, progress.sent, progress.answered) {
        Some(processing) => Error::new(ErrorKind::Http2, processing, String::new()),
        // h2 rejected the request itself (e.g. a connection-specific header).
        None => Error::new(ErrorKind::Invalid, Processing::NotSent, String::new()),
    }
    .with_source(error)
}

enum Outgoing {
    Bytes(Bytes),
    Stream(super::request::BodyStream),
}

/// Sends the body while waiting for the response: a server may answer (or
/// refuse) before it has read the whole body, and then the answer is what
/// counts. If sending fails, the stream's fate (reset, GOAWAY) comes from
/// the response future; only a failure of the caller's own body stream ends
/// the attempt from here.
async fn send_while_waiting(
    response: ResponseFuture,
    mut stream: SendStream<Bytes>,
    body: Outgoing,
) -> Result<Result<http::Response<h2::RecvStream>, h2::Error>, Error> {
    let sending = async {
        match body {
            Outgoing::Bytes(bytes) => {
                let _ = send_bytes(&mut stream, bytes, true).await;
            }
            Outgoing::Stream(mut chunks) => loop {
                match chunks.next().await {
                    Some(Ok(chunk)) => {
                        if send_bytes(&mut stream, chunk, false).await.is_err() {
                            break;
                        }
                    }
                    Some(Err(e)) => {
                        stream.send_reset(h2::Reason::CANCEL);
                        return e;
                    }
                    None => {
                        let _ = stream.send_data(Bytes::new(), true);
                        break;
                    }
                }
            },
        }
        future::pending().await
    };
    match future::or(async { Ok(response.await) }, async { Err(sending.await) }).await {
        Ok(response) => Ok(response),
        Err(e) => Err(
            Error::new(ErrorKind::Body, Processing::MaybeProcessed, e.to_string()).with_source(e),
        ),
    }
}

/// The stream closed (reset or connection gone) before the body was sent.
struct Closed;

/// Sends `data` as the stream's flow-control window allows, ending the
/// stream with its last byte if `end`.
async fn send_bytes(
    stream: &mut SendStream<Bytes>,
    mut data: Bytes,
    end: bool,
) -> Result<(), Closed> {
    if data.is_empty() {
        return match end {
            true => stream.send_data(data, true).map_err(|_| Closed),
            false => Ok(()),
        };
    }
    while !data.is_empty() {
        // Bounded: h2 keeps a window size in a u32.
        stream.reserve_capacity(data.len().min(1 << 20));
        let granted = match poll_fn(|cx| stream.poll_capacity(cx)).await {
            Some(Ok(n)) => n,
            _ => return Err(Closed),
        };
        if granted == 0 {
            continue;
        }
        let chunk = data.split_to(granted.min(data.len()));
        stream
            .send_data(chunk, end && data.is_empty())
            .map_err(|_| Closed)?;
    }
    Ok(())
}
