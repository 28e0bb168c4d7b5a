//! One connection's life: handshake (bounded), serve, drain with the
//! two-phase GOAWAY (the PING's ACK bounded), close with FIN and a linger.
//!
//! ```text
//!   handshake ──(preface within handshake_timeout)──> Serving
//!   Serving   ──drain──> Draining: GOAWAY(2^31-1) + PING      (h2 sends both)
//!   Draining  ──ACK────> GOAWAY(last=N); h2 closes when no stream is left
//!   Draining  ──ping_ack_timeout──> Refusing: new streams get REFUSED_STREAM;
//!             once no stream is left: GOAWAY(last=N) and close
//!   any state ──hard stop──> GOAWAY(last=N, CANCEL), flush (bounded), close
//!   then: read and discard until the client's EOF (bounded by linger; FIN
//!         halfway if the client waits for it), close
//! ```

use std::future::{poll_fn, Future};
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::pin::{pin, Pin};
use std::sync::{Arc, OnceLock};
use std::task::Poll;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_lite::{future, FutureExt};
use h2::server::{Connection, SendResponse};
use h2::{Reason, RecvStream};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};

use super::goaway_reason::{DrainReason, ReasonWriter};
use super::handler::{ConnShared, Request, RequestBody, Responder, StreamContext, StreamTicket};
use super::server::Inner;
use super::{Handler, Runtime};
use crate::{ConnectionGuard, DrainToken};

/// Races `fut` against a sleep on the server's runtime.
async fn within<R: Runtime, T>(
    runtime: &R,
    limit: Duration,
    fut: impl Future<Output = T>,
) -> Option<T> {
    future::or(async { Some(fut.await) }, async {
        runtime.sleep(limit).await;
        None
    })
    .await
}

/// Who the log lines are about, formatted only when a line is written.
#[derive(Clone, Copy)]
struct Who(Option<SocketAddr>);

impl std::fmt::Display for Who {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(peer) => write!(f, "connection from {peer}"),
            None => f.write_str("connection"),
        }
    }
}

/// Serves one connection to its end. `conn` registers it with the server's
/// shutdown (taken by the accept loop before the task exists) and keeps the
/// server's drain phase waiting until this future lets go of it, last.
// Deliberately not `async fn` (see the comment in the body).
#[allow(clippy::manual_async_fn)]
pub(crate) fn serve<R, H, IO>(
    server: Arc<Inner<R, H>>,
    mut io: IO,
    conn: ConnectionGuard,
) -> impl Future<Output = ()> + Send
where
    R: Runtime,
    H: Handler,
    IO: AsyncRead + AsyncWrite + Unpin + Send,
{
    // All the connection keeps, in one value the future owns. Built here and
    // moved in whole: an async fn, or an async block moving its captures into
    // a struct, would keep a second copy of each for the connection's life.
    let session = Session {
        server,
        conn,
        reason: DrainReason::default(),
        shared: OnceLock::new(),
    };
    async move {
        // The config is asked of `session` at each use: a reference kept in
        // a local would add 8 bytes to every connection's future.
        // h2 borrows the socket, so it is ours again for the close and linger.
        let linger = {
            let handshake = h2::server::Builder::new()
                .max_concurrent_streams(session.config().max_concurrent_streams)
                .handshake::<_, Bytes>(ReasonWriter::new(&mut io, &session.reason));
            // Boxed: freed once the handshake is over, instead of widening every
            // connection's future for its whole life.
            let mut handshaken = Box::pin(future::or(
                within(
                    &session.server.runtime,
                    session.config().handshake_timeout,
                    handshake,
                ),
                async {
                    poll_fn(|cx| session.conn.poll_stop(cx)).await;
                    None
                },
            ))
            .await;

            // Matched by reference: h2's connection (1.3 KB) then lives in this
            // future once, not also moved into the drive's.
            match &mut handshaken {
                Some(Ok(h2)) => session.drive(h2).await,
                Some(Err(e)) => {
                    // HTTP/1.1, TLS, garbage: h2 has already sent its SETTINGS.
                    log::warn!("{}: closing: not an HTTP/2 client ({e})", session.who());
                    false
                }
                None if session.stop().is_fired() => false,
                None => {
                    log::warn!(
                        "{}: closing: no HTTP/2 preface within {:?} (handshake timeout)",
                        session.who(),
                        session.config().handshake_timeout
                    );
                    false
                }
            }
        };

        // FIN, unless h2 closed the connection itself (`linger`): then the
        // close below sends it, after the linger. Bounded: a client that stops
        // reading cannot hold it.
        if !linger {
            // Boxed, as the linger below: only a closing connection pays for it.
            let shutdown = within(
                &session.server.runtime,
                session.config().flush_timeout,
                io.shutdown(),
            );
            let _ = Box::pin(shutdown).await;
        }
        if linger && !session.stop().is_fired() {
            // Read and discard until the client's EOF, so unread bytes in our
            // receive buffer do not turn the close into an RST that destroys
            // responses still in flight. Clients close on the final GOAWAY,
            // so the FIN normally goes with the close (as grpc-go does); one
            // that waits for the server's FIN first gets it halfway through.
            let server = &session.server;
            let runtime = &server.runtime;
            let lingering = async {
                let linger = session.config().linger;
                let started = Instant::now();
                // The first half: in a stop's drain, until the deadline the
                // server shares among its lingering connections; otherwise
                // on a timer of this connection's own. At most one timer,
                // then, while the client closes in time (the usual case).
                let shared = server
                    .linger_deadline
                    .join(runtime, linger / 2, &server.shutdown);
                let closed_in_time = if shared {
                    let read = async {
                        discard(&mut io).await;
                        true
                    };
                    // A hard stop is `cut`'s, below.
                    let passed = async {
                        poll_fn(|cx| server.linger_deadline.poll_passed(&session.conn, cx)).await;
                        false
                    };
                    future::or(read, passed).await
                } else {
                    within(runtime, linger / 2, discard(&mut io))
                        .await
                        .is_some()
                };
                if !closed_in_time {
                    // The FIN, then what is left of the linger, counted from
                    // its start (a timer seen late does not extend it). The
                    // whole stays bounded by `linger`, the shutdown included
                    // (a transport whose shutdown must write, such as TLS,
                    // cannot hold it).
                    let rest = async {
                        let _ = io.shutdown().await;
                        discard(&mut io).await;
                    };
                    within(runtime, linger.saturating_sub(started.elapsed()), rest).await;
                }
            };
            let cut = poll_fn(|cx| session.conn.poll_stop(cx));
            // Boxed: only a closing connection pays for it.
            let _ = Box::pin(future::or(lingering, cut)).await;
        }
        // The socket closes before the registry entry goes.
        drop(io);
        drop(session);
    }
}

/// Reads and drops what the client still sends, until its EOF (or an error).
/// Gives way every [`DISCARD_TURN`] reads: a client that sends faster than we
/// read keeps every read ready at once, and the timers and the hard stop
/// raced against this must still be polled.
async fn discard<IO: AsyncRead + Unpin>(io: &mut IO) {
    loop {
        for _ in 0..DISCARD_TURN {
            if !matches!(poll_fn(|cx| read_and_drop(io, cx)).await, Ok(1..)) {
                return;
            }
        }
        future::yield_now().await;
    }
}

/// One read whose bytes are dropped at once, into a buffer on this call's
/// stack, left uninitialised for readers that need no zeroes: the lingering
/// future keeps no buffer across its waits. (A 1 KiB buffer kept in it took
/// its allocation past malloc's per-thread cache: callgrind, 18,800 → 17,950
/// instructions per drained connection on tokio.)
fn read_and_drop<IO: AsyncRead + Unpin>(
    io: &mut IO,
    cx: &mut std::task::Context<'_>,
) -> Poll<std::io::Result<usize>> {
    let mut buf = [std::mem::MaybeUninit::<u8>::uninit(); 1024];
    let mut buf = ReadBuf::uninit(&mut buf);
    Pin::new(io)
        .poll_read(cx, &mut buf)
        .map_ok(|()| buf.filled().len())
}

/// Reads per turn of [`discard`]: well under tokio's budget of 128
/// operations per task poll, so its timer, polled after, still has budget.
const DISCARD_TURN: usize = 32;

/// New streams handled in one poll of a connection at most, before it gives
/// way to the runtime's other tasks (a client sending streams faster than
/// they are spawned cannot hold the thread).
const ACCEPT_BATCH: usize = 64;

/// How the drive loop ended, when what is left is a last await.
enum End {
    /// Close once h2 has flushed the final GOAWAY.
    Flush,
    /// The age grace ran out: cut the streams still open.
    Force,
    /// A hard stop: cut everything.
    Stop,
}

/// One connection: what it keeps for its whole life, owned by its future.
struct Session<R, H> {
    server: Arc<Inner<R, H>>,
    /// Its entry in the server's registry (the peer, the open streams).
    conn: ConnectionGuard,
    /// Why it drains, for the GOAWAY's debug data.
    reason: DrainReason,
    /// What its streams share (its own drain token among them), made when
    /// first needed: a stream opens, or the lifecycle drains it. An idle
    /// connection that just drains with the server never pays for it.
    shared: OnceLock<Arc<ConnShared>>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum State {
    Serving,
    /// GOAWAY(2^31-1) and PING sent; waiting for the ACK (h2 sends the final
    /// GOAWAY on it and closes once no stream is left).
    Draining,
    /// The ACK did not come in time: refuse new streams, finish open ones.
    Refusing,
}

enum Event {
    /// h2's connection ended: closed (`None`: by the client, or by h2 once
    /// the final GOAWAY is out and no stream is left), or an error.
    Ended(Option<h2::Error>),
    /// Refusing, and no stream is left: time for the final GOAWAY.
    Idle,
    /// The server's drain (`server_wide`), or this connection's own.
    Drain {
        server_wide: bool,
    },
    AckTimeout,
    Stop,
    /// This connection reached its max age.
    MaxAge,
    /// Time to check whether this connection has been idle long enough.
    IdleCheck,
    /// Streams outlived the grace after the max-age drain.
    AgeGraceOver,
}

/// Where a connection is in its life: what the drive loop's poll reads and
/// its events change (one value, so the poll borrows it once).
struct Phase<R: Runtime> {
    state: State,
    /// The highest stream id accepted, for the log lines (the GOAWAYs carry
    /// h2's own count).
    last_stream: u32,
    /// Whether max age has passed: `age_or_grace` then holds the grace.
    aged: bool,
    /// Draining for the server's stop: the ACK's deadline is the server's
    /// ([`SharedDeadline`](super::shared_deadline::SharedDeadline)), not a
    /// timer here.
    shared_ack: bool,
    /// Max age (gRPC A9), then the grace its streams get after that drain.
    age_or_grace: Timer<R>,
    /// While serving, the next max-idle check; once draining, the PING ACK's
    /// deadline, unless the server's is shared (`shared_ack`). (Two timers
    /// never armed at once share a slot: every idle connection keeps these.)
    idle_or_ack: Timer<R>,
}

/// An optional timer on the server's runtime.
type Timer<R> = Option<Pin<Box<<R as Runtime>::Sleep>>>;

/// Polls an optional timer; pending forever if there is none.
fn poll_timer<S: Future<Output = ()>>(
    timer: &mut Option<Pin<Box<S>>>,
    cx: &mut std::task::Context<'_>,
) -> bool {
    timer
        .as_mut()
        .is_some_and(|timer| timer.as_mut().poll(cx).is_ready())
}

impl<R: Runtime, H: Handler> Session<R, H> {
    /// Who the log lines are about.
    fn config(&self) -> &super::Config {
        &self.server.config
    }

    fn who(&self) -> Who {
        Who(self.conn.peer())
    }

    /// The server's hard stop.
    fn stop(&self) -> &DrainToken {
        self.server.shutdown.stop_signal()
    }

    /// This connection's own drain: fires with the server's, or alone (max
    /// age, max idle).
    fn drain(&self) -> &DrainToken {
        &self.shared_ref().drain
    }

    /// A timer on the server's runtime, boxed (an idle connection keeps a
    /// pointer per timer, not the runtime's timer itself).
    fn timer(&self, duration: Duration) -> Timer<R> {
        Some(Box::pin(self.server.runtime.sleep(duration)))
    }

    /// Runs the connection until it closes; returns whether to linger.
    // Not an `async fn`: that would keep a second copy of both arguments.
    #[allow(clippy::manual_async_fn)]
    fn drive<'a, IO>(&'a self, h2: &'a mut Connection<IO, Bytes>) -> impl Future<Output = bool> + 'a
    where
        IO: AsyncRead + AsyncWrite + Unpin,
    {
        async move {
            let config = &self.server.config;
            let mut now = Phase::<R> {
                state: State::Serving,
                last_stream: 0,
                aged: false,
                shared_ack: false,
                // gRPC A9: this connection's own lifecycle.
                age_or_grace: config.jittered_age().and_then(|d| self.timer(d)),
                idle_or_ack: config.max_connection_idle.and_then(|d| self.timer(d)),
            };
            let end = loop {
                // One hand-written poll of every source, in priority order: the
                // signals first (a hard stop preempts everything), then h2, then
                // the timers. Smaller than a tree of combinators, in a future
                // every connection keeps.
                let event = poll_fn({
                    // Moved in as one reference each: a closure borrowing
                    // fields one by one would hold a pointer per field.
                    let (h2, now) = (&mut *h2, &mut now);
                    move |cx| {
                        // The stop signals, through the connection's record (no
                        // listener of its own). While serving: the server's
                        // drain, which a hard stop fires too; once draining, the
                        // hard stop. (Not this connection's own drain token:
                        // that would need a listener per idle connection. Its
                        // lifecycle drains are checked on each poll below.)
                        let signal = if now.state == State::Serving {
                            self.conn.poll_drain(cx)
                        } else {
                            self.conn.poll_stop(cx)
                        };
                        if signal.is_ready() {
                            let stopped = self.stop().is_fired();
                            return Poll::Ready(if stopped {
                                Event::Stop
                            } else {
                                Event::Drain { server_wide: true }
                            });
                        }
                        // New streams are handled here, as many as h2 has
                        // (up to a batch), not returned one by one: the
                        // signals above are polled once per wake-up, not once
                        // per stream. `accept` keeps no state: recreating it
                        // on every poll is sound.
                        let mut batch = 0;
                        // The streams' opening time, read once per batch.
                        let mut opened_at = None;
                        loop {
                            match pin!(h2.accept()).poll(cx) {
                                Poll::Ready(Some(Ok((request, respond)))) => {
                                    let at = *opened_at.get_or_insert_with(Instant::now);
                                    self.accepted(now, request, respond, at);
                                }
                                Poll::Ready(Some(Err(e))) => {
                                    return Poll::Ready(Event::Ended(Some(e)));
                                }
                                Poll::Ready(None) => return Poll::Ready(Event::Ended(None)),
                                Poll::Pending => break,
                            }
                            batch += 1;
                            if batch == ACCEPT_BATCH {
                                break;
                            }
                        }
                        let join_handlers = batch > 1 && self.server.runtime.wake_runs_next();
                        if batch == ACCEPT_BATCH || join_handlers {
                            // Come back for any streams past the batch: h2 has
                            // not been polled to pending, so nothing else
                            // would wake this task for them. And on a runtime
                            // that runs a woken task next (tokio's LIFO slot),
                            // come back after the handlers just spawned:
                            // already woken, this task is not put first in
                            // line by each handler that answers, so their
                            // responses go out together in one write. Not for
                            // one stream: there is nothing to join, and on
                            // tokio a task that wakes itself is queued as a
                            // yield, which wakes an idle worker (system calls
                            // on every serial request). Not on a FIFO queue
                            // (smol): the first answer queues this task behind
                            // the other handlers anyway; waking it now only
                            // adds a poll (see `Runtime::wake_runs_next`).
                            cx.waker().wake_by_ref();
                        }
                        // h2 wakes this task whenever a stream's state moves, so
                        // this is re-checked as streams finish and RSTs flush.
                        if now.state == State::Refusing && !h2.has_streams() {
                            return Poll::Ready(Event::Idle);
                        }
                        let own_drain = self
                            .shared
                            .get()
                            .is_some_and(|shared| shared.drain.is_fired());
                        // Each timer is polled only when its readiness is acted
                        // on (a fired timer may not fire again).
                        let serving = now.state == State::Serving;
                        // The server's deadline is read after the stop signal
                        // was polled above, which left this task's waker in
                        // its record: a deadline that fires after this read
                        // wakes it (CW-1).
                        let ack_overdue = !serving
                            && (poll_timer(&mut now.idle_or_ack, cx)
                                || (now.shared_ack && self.server.ack_deadline.has_passed()));
                        Poll::Ready(if ack_overdue {
                            Event::AckTimeout
                        } else if serving && own_drain {
                            // This connection's own drain (max age or idle).
                            Event::Drain { server_wide: false }
                        } else if !now.aged && poll_timer(&mut now.age_or_grace, cx) {
                            Event::MaxAge
                        } else if serving && poll_timer(&mut now.idle_or_ack, cx) {
                            Event::IdleCheck
                        } else if now.aged && poll_timer(&mut now.age_or_grace, cx) {
                            Event::AgeGraceOver
                        } else {
                            return Poll::Pending;
                        })
                    }
                })
                .await;
                let config = &self.server.config;
                match event {
                    Event::Ended(Some(e)) => {
                        self.log_error(&e);
                        return !e.is_io();
                    }
                    Event::Ended(None) => {
                        let last_stream = now.last_stream;
                        log::debug!("{}: closed (last stream {last_stream})", self.who());
                        return true;
                    }
                    Event::Drain { server_wide } => {
                        // Unless this connection's own lifecycle set it first.
                        self.reason.set(DrainReason::GRACEFUL_STOP);
                        h2.graceful_shutdown();
                        now.state = State::Draining;
                        // The idle check gives way to the ACK's deadline: the
                        // server's, started by the first connection its drain
                        // reaches, unless little of it is left, or this
                        // connection's own. Max age ends here; its grace (if
                        // running) goes on.
                        let server = &self.server;
                        let timeout = config.ping_ack_timeout;
                        now.shared_ack = server_wide
                            && server
                                .ack_deadline
                                .join(&server.runtime, timeout, &server.shutdown);
                        now.idle_or_ack = if now.shared_ack {
                            None
                        } else {
                            self.timer(timeout)
                        };
                        if !now.aged {
                            now.age_or_grace = None;
                        }
                    }
                    Event::MaxAge => {
                        // The same two-phase GOAWAY as a full stop, for this
                        // connection alone; its handlers see it as draining.
                        log::info!("{}: draining: max_age", self.who());
                        self.reason.set(DrainReason::MAX_AGE);
                        self.drain().fire();
                        now.aged = true;
                        now.age_or_grace =
                            config.max_connection_age_grace.and_then(|d| self.timer(d));
                    }
                    Event::IdleCheck => match (self.conn.idle_for(), config.max_connection_idle) {
                        (Some(idle_for), Some(max)) if idle_for >= max => {
                            log::info!("{}: draining: max_idle", self.who());
                            self.reason.set(DrainReason::MAX_IDLE);
                            self.drain().fire();
                            now.idle_or_ack = None;
                        }
                        // Not idle long enough yet: check again when it could be.
                        (idle_for, Some(max)) => {
                            let wait = max.saturating_sub(idle_for.unwrap_or_default());
                            now.idle_or_ack = self.timer(wait.max(max / 64));
                        }
                        (_, None) => now.idle_or_ack = None,
                    },
                    Event::AgeGraceOver => {
                        log::warn!(
                            "{}: streams still open {:?} after its max_age drain; forcing it",
                            self.who(),
                            config.max_connection_age_grace.unwrap_or_default()
                        );
                        break End::Force;
                    }
                    Event::AckTimeout => {
                        // h2 does not say whether the ACK came (it may have, with
                        // streams still open); either way no new stream may start
                        // now, and the connection closes once the open ones end.
                        log::debug!(
                            "{}: no PING ACK within {:?} of the {}; refusing new streams",
                            self.who(),
                            config.ping_ack_timeout,
                            if now.shared_ack {
                                "drain's start"
                            } else {
                                "first GOAWAY"
                            }
                        );
                        now.state = State::Refusing;
                        now.idle_or_ack = None;
                        now.shared_ack = false;
                    }
                    Event::Idle => {
                        // As if the ACK had come: the final GOAWAY carries the last
                        // stream processed. Nothing is queued, so nothing is lost.
                        h2.abrupt_shutdown(Reason::NO_ERROR);
                        break End::Flush;
                    }
                    Event::Stop => break End::Stop,
                }
            };
            // Boxed: only a closing connection pays for the closing awaits
            // (their timers are large on some runtimes).
            Box::pin(self.close(h2, end, now.last_stream)).await
        }
    }

    /// A new stream from the client: served, or refused once the drain's
    /// PING went unanswered.
    fn accepted(
        &self,
        now: &mut Phase<R>,
        request: http::Request<RecvStream>,
        respond: SendResponse<Bytes>,
        opened_at: Instant,
    ) {
        // Asked once: h2 takes its connection-wide lock for it.
        let id = respond.stream_id().as_u32();
        now.last_stream = now.last_stream.max(id);
        let responder = self.responder(respond, id, request.uri().path(), opened_at);
        if now.state == State::Refusing {
            responder.refuse();
        } else {
            self.spawn_handler(request, responder, id);
        }
    }

    /// The last awaits: flush the final GOAWAY, or cut what is left.
    /// Returns whether to linger.
    async fn close<IO: AsyncRead + AsyncWrite + Unpin>(
        &self,
        h2: &mut Connection<IO, Bytes>,
        end: End,
        last_stream: u32,
    ) -> bool {
        match end {
            End::Flush => self.flush(h2).await,
            End::Force => {
                self.force(h2, last_stream).await;
                false
            }
            End::Stop => {
                self.force(h2, last_stream).await;
                log::info!(
                    "{}: closed by hard stop (last stream {last_stream})",
                    self.who()
                );
                false
            }
        }
    }

    /// Closes the connection now: GOAWAY(last processed, CANCEL), so the
    /// client learns which streams were never processed and may retry them,
    /// then the socket. Streams still open were cut; they are counted here,
    /// since nothing waits for their handlers to notice.
    async fn force<IO: AsyncRead + AsyncWrite + Unpin>(
        &self,
        h2: &mut Connection<IO, Bytes>,
        last_stream: u32,
    ) {
        h2.abrupt_shutdown(Reason::CANCEL);
        self.flush(h2).await;
        let cut = self.conn.seal();
        for _ in 0..cut {
            self.server.shutdown.stats().stream_reset();
        }
        if cut > 0 {
            log::info!(
                "{}: forced closed: {cut} streams cut (last stream {last_stream})",
                self.who()
            );
        }
    }

    /// Lets h2 write the final GOAWAY and FIN, within the flush timeout;
    /// returns whether it did.
    async fn flush<IO: AsyncRead + AsyncWrite + Unpin>(
        &self,
        h2: &mut Connection<IO, Bytes>,
    ) -> bool {
        let closed = poll_fn(|cx| h2.poll_closed(cx));
        let config = &self.server.config;
        let flushed = within(&self.server.runtime, config.flush_timeout, closed)
            .await
            .is_some();
        if !flushed {
            log::warn!(
                "{}: final GOAWAY not flushed within {:?}; dropping the socket",
                self.who(),
                config.flush_timeout
            );
        }
        flushed
    }

    /// What this connection's streams share, made when the first one opens
    /// (an idle connection never pays for it).
    fn shared(&self) -> Arc<ConnShared> {
        self.shared_ref().clone()
    }

    fn shared_ref(&self) -> &Arc<ConnShared> {
        self.shared.get_or_init(|| {
            Arc::new(ConnShared {
                shutdown: self.server.shutdown.clone(),
                conn: self.conn.info(),
                drain: self.server.shutdown.drain_token().child(),
                stop: self.stop().clone(),
                peer: self.conn.peer(),
            })
        })
    }

    fn responder(
        &self,
        respond: SendResponse<Bytes>,
        id: u32,
        path: &str,
        opened_at: Instant,
    ) -> Responder {
        let ticket = StreamTicket::new(self.shared(), id, path, opened_at);
        Responder {
            send: Some(respond),
            ticket: Some(ticket),
        }
    }

    fn spawn_handler(
        &self,
        request: http::Request<RecvStream>,
        responder: Responder,
        stream_id: u32,
    ) {
        let (head, recv) = request.into_parts();
        let request = Request {
            head,
            body: RequestBody { recv },
            context: StreamContext {
                stream_id,
                shared: self.shared(),
            },
        };
        let guard = self.server.shutdown.handler();
        let server = self.server.clone();
        let who = self.who();
        // The task boxed too: runtimes pass what they spawn through several
        // layers by value, and a pointer moves for less than the request
        // (callgrind: 150 instructions per request fewer on smol, 75 on tokio).
        self.server.runtime.spawn(Box::pin(async move {
            let _guard = guard;
            // Boxed: a handler's future can be kilobytes (every route's state),
            // and runtimes move the spawned future several times on its way
            // into the task. The task then holds a pointer; the handler's
            // future is built once, on the heap, when the task first runs.
            let handler = Box::pin(server.handler.call(request, responder));
            let handled = AssertUnwindSafe(handler).catch_unwind().await;
            if handled.is_err() {
                // The responder was dropped with the handler: the client got
                // a 500 or a reset. The connection carries on.
                server.shutdown.stats().handler_panicked();
                log::error!("{who}: handler for stream {stream_id} panicked");
            }
        }));
    }

    fn log_error(&self, e: &h2::Error) {
        let who = self.who();
        if e.is_io() {
            log::debug!("{who}: connection lost: {e}");
        } else if e.is_go_away() && e.is_remote() {
            log::info!("{who}: client sent GOAWAY: {e}");
        } else {
            // h2 detected a protocol violation and sent GOAWAY with the reason.
            log::warn!("{who}: closing: protocol error from client: {e}");
        }
    }
}

#[cfg(all(test, not(winddown_loom)))]
mod tests {
    use crate::http2::{Config, Request, Responder, Runtime, Server};

    /// Every idle connection keeps one of these futures alive, so its size is
    /// memory per connection. h2's own connection is about 1.3 KB of it; the
    /// budget leaves room for ours, and catches a buffer inlined by mistake
    /// (a 4 KiB linger buffer once made it 14 KB; the handshake, boxed, no
    /// longer counts once it is over; h2's connection moved into the drive
    /// loop was held twice, 5.1 KB, until the loop borrowed it: 2.4 KB).
    #[test]
    fn connection_future_stays_small() {
        #[derive(Clone)]
        struct NoRuntime;
        impl Runtime for NoRuntime {
            type Sleep = std::future::Pending<()>;
            fn spawn<F: std::future::Future<Output = ()> + Send + 'static>(&self, _: F) {}
            fn sleep(&self, _: std::time::Duration) -> Self::Sleep {
                std::future::pending()
            }
        }
        async fn handler(_: Request, _: Responder) {}
        let shutdown = crate::Shutdown::new();
        let server = Server::new(&shutdown, NoRuntime, Config::default(), handler);
        let (io, _peer) = tokio::io::duplex(64);
        let serving = super::serve(server.inner_for_tests(), io, shutdown.connection(None));
        let size = std::mem::size_of_val(&serving);
        // Printed for the benchmarks (`-- --nocapture`; BENCHMARKS-history.md,
        // *Sixth round*), with what each connection held before it waited
        // through its record (`poll_drain`).
        eprintln!("a connection's future: {size} bytes");
        let token = shutdown.drain_token();
        let wait = token.wait();
        eprintln!(
            "a DrainToken::wait future: {} bytes",
            std::mem::size_of_val(&wait)
        );
        assert!(size <= 3 * 1024, "a connection's future is {size} bytes");
    }
}
