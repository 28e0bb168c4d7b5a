//! The simplest correct h2 server, without any shutdown coordination: the
//! baseline of the throughput and memory benchmarks (issue 6, items 3 and 4).
//!
//! ```text
//! bare_h2 --runtime smol|tokio [--listen 127.0.0.1:0]
//! ```
//!
//! First line on stdout: `listening on ADDR`. A plain accept loop, one task
//! per connection driving `h2::server`, one task per stream; no winddown, no
//! registry, no drain: SIGTERM kills it. Threads, the socket type (on smol,
//! `winddown_smol::TcpStream`), TCP_NODELAY and `max_concurrent_streams`
//! (1000) as `echo_server`'s. Routes, as in
//! `examples/support/echo.rs`:
//!
//! | route | behaviour |
//! |---|---|
//! | `GET\|POST /echo` | 200 with the request body |
//! | `POST /echo.Echo/Say` (gRPC) | `echo:<message>`, `grpc-status: 0` |
//! | anything else | 404 |

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::process::ExitCode;

use bytes::{BufMut, Bytes, BytesMut};
use h2::server::SendResponse;
use h2::RecvStream;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use tokio::io::{AsyncRead, AsyncWrite};

const USAGE: &str = "usage: bare_h2 --runtime smol|tokio [--listen ADDR]";
/// Largest request body accepted, as `echo_server`'s.
const MAX_BODY: usize = 4 << 20;

type Task = Pin<Box<dyn Future<Output = ()> + Send>>;
/// How a runtime spawns a detached task.
type Spawn = fn(Task);

fn main() -> ExitCode {
    let mut runtime = String::from("smol");
    let mut listen = SocketAddr::from(([127, 0, 0, 1], 0));
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let Some(value) = args.next() else {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        };
        match flag.as_str() {
            "--runtime" => runtime = value,
            "--listen" => match value.parse() {
                Ok(addr) => listen = addr,
                Err(e) => {
                    eprintln!("bad --listen {value:?}: {e}");
                    return ExitCode::from(2);
                }
            },
            _ => {
                eprintln!("{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    let result = match runtime.as_str() {
        "smol" => run_smol(listen),
        "tokio" => run_tokio(listen),
        other => Err(format!("unknown runtime {other:?}\n{USAGE}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bare_h2: {e}");
            ExitCode::FAILURE
        }
    }
}

fn announce(addr: std::io::Result<SocketAddr>) -> Result<(), String> {
    let addr = addr.map_err(|e| e.to_string())?;
    println!("listening on {addr}");
    Ok(())
}

fn run_smol(listen: SocketAddr) -> Result<(), String> {
    if std::env::var_os("SMOL_THREADS").is_none() {
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
        std::env::set_var("SMOL_THREADS", threads.to_string());
    }
    let spawn: Spawn = |task| smol::spawn(task).detach();
    smol::block_on(async {
        let listener = smol::Async::<std::net::TcpListener>::bind(listen)
            .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
        announce(listener.get_ref().local_addr())?;
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            // The socket type echo_server's smol adapter uses (with
            // TCP_NODELAY), so the comparison is of the servers alone.
            let Ok(stream) = winddown_smol::TcpStream::from_async(stream) else {
                continue;
            };
            spawn(Box::pin(connection(stream, spawn)));
        }
    })
}

fn run_tokio(listen: SocketAddr) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start tokio: {e}"))?;
    let spawn: Spawn = |task| drop(tokio::spawn(task));
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
        announce(listener.local_addr())?;
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            spawn(Box::pin(connection(stream, spawn)));
        }
    })
}

/// One connection: the handshake, then a task per accepted stream.
async fn connection<T>(io: T, spawn: Spawn)
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut builder = h2::server::Builder::new();
    builder.max_concurrent_streams(1000);
    let Ok(mut conn) = builder.handshake::<_, Bytes>(io).await else {
        return;
    };
    while let Some(Ok((request, respond))) = conn.accept().await {
        spawn(Box::pin(handle(request, respond)));
    }
}

async fn handle(request: Request<RecvStream>, mut respond: SendResponse<Bytes>) {
    let (parts, mut body) = request.into_parts();
    let is_grpc = parts
        .headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/grpc"));
    let route = (parts.method.clone(), parts.uri.path());
    let Some(body) = (match route {
        (Method::POST, "/echo.Echo/Say") if is_grpc => collect(&mut body).await,
        (Method::GET | Method::POST, "/echo") => collect(&mut body).await,
        _ => {
            let mut response = Response::new(());
            *response.status_mut() = StatusCode::NOT_FOUND;
            let _ = respond.send_response(response, true);
            return;
        }
    }) else {
        respond.send_reset(h2::Reason::CANCEL);
        return;
    };
    if !is_grpc || parts.uri.path() == "/echo" {
        let empty = body.is_empty();
        if let Ok(mut stream) = respond.send_response(Response::new(()), empty) {
            if !empty {
                let _ = stream.send_data(body, true);
            }
        }
        return;
    }
    // gRPC: a 5-byte-framed message in, `echo:<message>` and grpc-status 0 out.
    let mut head = Response::new(());
    head.headers_mut()
        .insert("content-type", HeaderValue::from_static("application/grpc"));
    let Ok(mut stream) = respond.send_response(head, false) else {
        return;
    };
    let mut trailers = HeaderMap::new();
    match grpc_message(&body) {
        Some(message) => {
            let mut reply = BytesMut::with_capacity(10 + message.len());
            reply.put_u8(0);
            reply.put_u32(5 + message.len() as u32);
            reply.put_slice(b"echo:");
            reply.put_slice(&message);
            if stream.send_data(reply.freeze(), false).is_err() {
                return;
            }
            trailers.insert("grpc-status", HeaderValue::from(0u32));
        }
        None => {
            trailers.insert("grpc-status", HeaderValue::from(3u32));
        }
    }
    let _ = stream.send_trailers(trailers);
}

/// The whole request body, releasing flow-control capacity as it comes.
async fn collect(body: &mut RecvStream) -> Option<Bytes> {
    let mut out = BytesMut::new();
    let mut first: Option<Bytes> = None;
    while let Some(chunk) = body.data().await {
        let chunk = chunk.ok()?;
        let _ = body.flow_control().release_capacity(chunk.len());
        if out.len() + chunk.len() + first.as_ref().map_or(0, Bytes::len) > MAX_BODY {
            return None;
        }
        match first.take() {
            None if out.is_empty() => first = Some(chunk),
            Some(prev) => {
                out.extend_from_slice(&prev);
                out.extend_from_slice(&chunk);
            }
            None => out.extend_from_slice(&chunk),
        }
    }
    Some(first.unwrap_or_else(|| out.freeze()))
}

fn grpc_message(body: &Bytes) -> Option<Bytes> {
    let header = body.get(..5)?;
    if header[0] != 0 {
        return None;
    }
    let len = u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize;
    (body.len() == 5 + len).then(|| body.slice(5..))
}
