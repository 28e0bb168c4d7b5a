//! The echo application of the design notes (§5), written once for every
//! runtime: `echo_server`, `demo` and the behaviour tests all serve it.
//!
//! | route | behaviour |
//! |---|---|
//! | `GET\|POST /echo` | 200 with the request body |
//! | `GET /sleep/<ms>` | 200 after that many ms |
//! | `GET /stream/<n>/<ms>` | n chunks, one every ms ms; ignores the drain (a handler that does not cooperate) |
//! | `GET /follow/<ms>` | a chunk every ms ms until the server drains, then ends cleanly (B9) |
//! | `GET /panic` | the handler panics (B10) |
//! | `GET /block/<ms>` | blocks its thread for that long (a handler doing blocking I/O) |
//! | `GET /bytes/<n>` | n zero bytes, in 64 KiB chunks (a large download) |
//! | `POST /echo.Echo/Say` (gRPC) | `echo:<message>`, `grpc-status: 0`; `sleep:<N>ms` sleeps first |
//! | `GET /ready` | 200 while ready; 503 once a stop began (lame duck included) |
//! | `POST /grpc.health.v1.Health/Check` (gRPC) | SERVING while ready, NOT_SERVING once a stop began |
#![allow(dead_code)]

use std::time::Duration;

use futures_lite::future;
use winddown::http2::bytes::{BufMut, Bytes, BytesMut};
use winddown::http2::http::{HeaderMap, HeaderValue, Method, Response, StatusCode};
use winddown::http2::{Handler, Request, Responder, Runtime};

/// Largest request body the echo routes accept.
pub const MAX_BODY: usize = 4 << 20;

/// The echo application; it needs the runtime only to sleep, and the
/// shutdown's readiness for `/ready` and the health service.
#[derive(Clone)]
pub struct Echo<R> {
    runtime: R,
    not_ready: Option<winddown::DrainToken>,
}

impl<R: Runtime> Echo<R> {
    pub fn new(runtime: R) -> Self {
        Self {
            runtime,
            not_ready: None,
        }
    }

    /// Reports readiness from this token (a `Shutdown::not_ready_token`).
    pub fn with_readiness(mut self, not_ready: winddown::DrainToken) -> Self {
        self.not_ready = Some(not_ready);
        self
    }

    fn is_ready(&self) -> bool {
        self.not_ready
            .as_ref()
            .map_or(true, |token| !token.is_fired())
    }

    // Not an `async fn`: that would keep a second copy of the request (a
    // quarter KB) in every request's future, which the server boxes.
    #[allow(clippy::manual_async_fn)]
    fn serve(
        &self,
        mut request: Request,
        responder: Responder,
    ) -> impl std::future::Future<Output = ()> + Send + '_ {
        async move {
            // Routed on borrowed text, before the request is used mutably: the
            // routing allocates nothing.
            match Route::of(&request) {
                Route::Health => {
                    // HealthCheckResponse { status = 1 (SERVING) | 2 (NOT_SERVING) }
                    let status = if self.is_ready() { 1 } else { 2 };
                    let message = Bytes::from(vec![0, 0, 0, 0, 2, 0x08, status]);
                    let _ = responder
                        .send_with_trailers(grpc_head(), message, grpc_status(0, None))
                        .await;
                }
                Route::Ready => {
                    let (code, body) = if self.is_ready() {
                        (StatusCode::OK, "ready\n")
                    } else {
                        (StatusCode::SERVICE_UNAVAILABLE, "stopping\n")
                    };
                    let _ = responder.send(status(code), body).await;
                }
                Route::Say => self.grpc_say(&mut request, responder).await,
                Route::Echo => match request.body_mut().collect(MAX_BODY).await {
                    Ok(body) => {
                        let _ = responder.send(Response::new(()), body).await;
                    }
                    Err(_) => responder.reset(winddown::http2::h2::Reason::CANCEL),
                },
                Route::Sleep(ms) => {
                    self.runtime.sleep(Duration::from_millis(ms)).await;
                    let _ = responder
                        .send(Response::new(()), format!("slept {ms} ms\n"))
                        .await;
                }
                // The slow routes are boxed, so that their state does not make every
                // request's future (the fast /echo included) larger.
                Route::Stream(n, ms) => Box::pin(self.stream(responder, n, ms)).await,
                Route::Follow(ms) => Box::pin(self.follow(request, responder, ms)).await,
                Route::Panic => panic!("the /panic route panics on purpose"),
                Route::Bytes(n) => Box::pin(self.bytes(responder, n)).await,
                Route::Block(ms) => {
                    // Deliberately wrong: blocks the executor thread.
                    std::thread::sleep(Duration::from_millis(ms));
                    let _ = responder
                        .send(Response::new(()), format!("blocked {ms} ms\n"))
                        .await;
                }
                Route::Usage(usage) => bad_request(responder, usage).await,
                Route::NotFound => {
                    let response = status(StatusCode::NOT_FOUND);
                    let _ = responder.send(response, "no such route\n").await;
                }
            }
        }
    }

    /// Ignores the drain on purpose: it stands for a handler that does not
    /// cooperate, so a deadline has something to force.
    async fn stream(&self, responder: Responder, n: u64, ms: u64) {
        let Ok(mut body) = responder.stream(Response::new(())) else {
            return;
        };
        for i in 0..n {
            if i > 0 && ms > 0 {
                self.runtime.sleep(Duration::from_millis(ms)).await;
            }
            if body.send(format!("chunk {i}\n")).await.is_err() {
                return;
            }
        }
        let _ = body.finish().await;
    }

    async fn bytes(&self, responder: Responder, mut n: u64) {
        const CHUNK: Bytes = Bytes::from_static(&[0; 64 * 1024]);
        let Ok(mut body) = responder.stream(Response::new(())) else {
            return;
        };
        while n > 0 {
            let len = n.min(CHUNK.len() as u64) as usize;
            if body.send(CHUNK.slice(..len)).await.is_err() {
                return;
            }
            n -= len as u64;
        }
        let _ = body.finish().await;
    }

    /// Cooperates: ends its stream cleanly as soon as the server drains (B9).
    async fn follow(&self, request: Request, responder: Responder, ms: u64) {
        let Ok(mut body) = responder.stream(Response::new(())) else {
            return;
        };
        let ctx = request.context().clone();
        let mut i = 0u64;
        loop {
            if body.send(format!("tick {i}\n")).await.is_err() {
                return;
            }
            i += 1;
            let tick = async {
                self.runtime.sleep(Duration::from_millis(ms)).await;
                false
            };
            let drained = async {
                ctx.draining().await;
                true
            };
            if future::or(drained, tick).await {
                break;
            }
        }
        let _ = body.send("drained\n").await;
        let _ = body.finish().await;
    }

    /// gRPC unary echo with raw bytes: a 5-byte prefix (compressed flag,
    /// big-endian length), then the message.
    async fn grpc_say(&self, request: &mut Request, responder: Responder) {
        let body = match request.body_mut().collect(MAX_BODY).await {
            Ok(body) => body,
            Err(_) => return responder.reset(winddown::http2::h2::Reason::CANCEL),
        };
        let message = match grpc_message(&body) {
            Some(message) => message,
            None => return grpc_error(responder, 3, "malformed gRPC message").await,
        };
        if let Some(ms) = message
            .strip_prefix(b"sleep:")
            .and_then(|rest| std::str::from_utf8(rest).ok())
            .and_then(|rest| rest.strip_suffix("ms"))
            .and_then(|ms| ms.parse::<u64>().ok())
        {
            self.runtime.sleep(Duration::from_millis(ms)).await;
        }
        let mut reply = BytesMut::with_capacity(5 + 5 + message.len());
        reply.put_u8(0);
        reply.put_u32(5 + message.len() as u32);
        reply.put_slice(b"echo:");
        reply.put_slice(&message);
        let _ = responder
            .send_with_trailers(grpc_head(), reply.freeze(), grpc_status(0, None))
            .await;
    }
}

impl<R: Runtime> Handler for Echo<R> {
    fn call(
        &self,
        request: Request,
        responder: Responder,
    ) -> impl std::future::Future<Output = ()> + Send {
        self.serve(request, responder)
    }
}

fn status(code: StatusCode) -> Response<()> {
    let mut response = Response::new(());
    *response.status_mut() = code;
    response
}

async fn bad_request(responder: Responder, usage: &'static str) {
    let _ = responder.send(status(StatusCode::BAD_REQUEST), usage).await;
}

/// The message of a single uncompressed gRPC frame.
fn grpc_message(body: &Bytes) -> Option<Bytes> {
    let header = body.get(..5)?;
    if header[0] != 0 {
        return None; // compressed: not supported by this raw echo
    }
    let len = u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize;
    (body.len() == 5 + len).then(|| body.slice(5..))
}

fn grpc_head() -> Response<()> {
    let mut response = Response::new(());
    response
        .headers_mut()
        .insert("content-type", HeaderValue::from_static("application/grpc"));
    response
}

fn grpc_status(code: u32, message: Option<&str>) -> HeaderMap {
    let mut trailers = HeaderMap::new();
    trailers.insert("grpc-status", HeaderValue::from(code));
    if let Some(message) = message.and_then(|m| HeaderValue::from_str(m).ok()) {
        trailers.insert("grpc-message", message);
    }
    trailers
}

async fn grpc_error(responder: Responder, code: u32, message: &str) {
    let trailers = grpc_status(code, Some(message));
    let _ = responder
        .send_with_trailers(grpc_head(), Bytes::new(), trailers)
        .await;
}

/// The shape of the command-line examples' `main`: logging, arguments (exit
/// 2 with the message, e.g. the usage, if they do not parse), then `run`
/// (exit 1 with `name: message` if it fails).
pub fn main_with<O>(
    name: &str,
    parse_args: impl FnOnce() -> Result<O, String>,
    run: impl FnOnce(O) -> Result<(), String>,
) -> std::process::ExitCode {
    init_logging();
    let options = match parse_args() {
        Ok(options) => options,
        Err(message) => {
            eprintln!("{message}");
            return std::process::ExitCode::from(2);
        }
    };
    match run(options) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("{name}: {message}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// A minimal logger for the examples: `LEVEL message` lines on stderr, at
/// the level given by `RUST_LOG` (error, warn, info, debug; default warn).
pub fn init_logging() {
    struct Stderr;
    impl log::Log for Stderr {
        fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
            metadata.level() <= log::max_level()
        }
        fn log(&self, record: &log::Record<'_>) {
            if self.enabled(record.metadata()) && record.target().starts_with("winddown") {
                eprintln!("{:<5} {}", record.level(), record.args());
            }
        }
        fn flush(&self) {}
    }
    static LOGGER: Stderr = Stderr;
    let level = match std::env::var("RUST_LOG").as_deref() {
        Ok("error") => log::LevelFilter::Error,
        Ok("info") => log::LevelFilter::Info,
        Ok("debug") | Ok("trace") => log::LevelFilter::Debug,
        Ok("off") => log::LevelFilter::Off,
        _ => log::LevelFilter::Warn,
    };
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(level);
    }
}

/// Parses `10s`, `500ms`, `1.5s`, `2m`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let (number, unit) = text
        .find(|c: char| c.is_ascii_alphabetic())
        .map_or((text, "s"), |at| text.split_at(at));
    let value: f64 = number
        .parse()
        .map_err(|_| format!("bad duration {text:?}: expected e.g. 10s or 500ms"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        _ => return Err(format!("bad duration unit in {text:?}: use ms, s or m")),
    };
    Duration::try_from_secs_f64(seconds).map_err(|e| format!("bad duration {text:?}: {e}"))
}

/// Where a request goes, decided on borrowed text.
enum Route {
    Health,
    Ready,
    Say,
    Echo,
    Sleep(u64),
    Stream(u64, u64),
    Follow(u64),
    Panic,
    Bytes(u64),
    Block(u64),
    Usage(&'static str),
    NotFound,
}

impl Route {
    fn of(request: &Request) -> Route {
        let is_grpc = request
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/grpc"));
        // The two routes the benchmarks load, matched whole before the
        // path is split (the split costs more than the request's other
        // routing, and bare_h2, the baseline, matches whole paths too).
        match (request.method(), request.path()) {
            (&Method::GET | &Method::POST, "/echo") => return Route::Echo,
            (&Method::POST, "/echo.Echo/Say") if is_grpc => return Route::Say,
            _ => {}
        }
        let mut segments = [""; 4];
        let mut count = 0;
        for segment in request.path().trim_start_matches('/').split('/') {
            if count == segments.len() {
                return Route::NotFound;
            }
            segments[count] = segment;
            count += 1;
        }
        let number = |text: &str, usage| text.parse::<u64>().map_err(|_| Route::Usage(usage));
        let route = match (request.method(), &segments[..count]) {
            (&Method::POST, ["grpc.health.v1.Health", "Check"]) if is_grpc => Ok(Route::Health),
            (&Method::GET, ["ready"]) => Ok(Route::Ready),
            (&Method::POST, ["echo.Echo", "Say"]) if is_grpc => Ok(Route::Say),
            (&Method::GET | &Method::POST, ["echo"]) => Ok(Route::Echo),
            (&Method::GET, ["sleep", ms]) => number(ms, "usage: /sleep/<ms>\n").map(Route::Sleep),
            (&Method::GET, ["stream", n, ms]) => {
                let usage = "usage: /stream/<n>/<ms>\n";
                number(n, usage).and_then(|n| number(ms, usage).map(|ms| Route::Stream(n, ms)))
            }
            (&Method::GET, ["follow", ms]) => {
                number(ms, "usage: /follow/<ms>\n").map(Route::Follow)
            }
            (&Method::GET, ["panic"]) => Ok(Route::Panic),
            (&Method::GET, ["bytes", n]) => number(n, "usage: /bytes/<n>\n").map(Route::Bytes),
            (&Method::GET, ["block", ms]) => number(ms, "usage: /block/<ms>\n").map(Route::Block),
            _ => Ok(Route::NotFound),
        };
        route.unwrap_or_else(|usage| usage)
    }
}
