//! An h2 client for the examples, on any runtime: connect, send a request,
//! read the whole response, and say what became of it.
#![allow(dead_code)]

use std::future::Future;
use std::io;
use std::net::SocketAddr;

use tokio::io::{AsyncRead, AsyncWrite};
use winddown::http2::bytes::Bytes;
use winddown::http2::{h2, http, Runtime};

pub type Client = h2::client::SendRequest<Bytes>;

/// What the demo needs from a runtime besides [`Runtime`]: a client socket.
pub trait Connect: Clone + Send + Sync + 'static {
    type Io: AsyncRead + AsyncWrite + Unpin + Send + 'static;
    fn connect(&self, addr: SocketAddr) -> impl Future<Output = io::Result<Self::Io>> + Send;
}

pub async fn connect<R: Runtime, C: Connect>(
    runtime: &R,
    connector: &C,
    addr: SocketAddr,
) -> Result<Client, String> {
    let io = connector.connect(addr).await.map_err(|e| e.to_string())?;
    let (client, connection) = h2::client::handshake(io).await.map_err(|e| e.to_string())?;
    runtime.spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

pub enum Outcome {
    Complete(Bytes),
    NotStarted,
    Reset(h2::Reason),
    Failed(String),
}

/// Sends one request and reads the whole response.
pub async fn request(client: &Client, method: &str, path: &str, body: Bytes) -> Outcome {
    let mut client = match client.clone().ready().await {
        Ok(client) => client,
        Err(_) => return Outcome::NotStarted,
    };
    let request = http::Request::builder()
        .method(method)
        .uri(format!("http://localhost{path}"))
        .body(())
        .expect("a valid request");
    let end = body.is_empty();
    let (response, mut upload) = match client.send_request(request, end) {
        Ok(sent) => sent,
        Err(_) => return Outcome::NotStarted,
    };
    if !end && upload.send_data(body, true).is_err() {
        return Outcome::NotStarted;
    }
    let classify = |e: h2::Error| match e.reason() {
        Some(reason) if e.is_reset() || e.is_go_away() => Outcome::Reset(reason),
        _ => Outcome::Failed(e.to_string()),
    };
    let mut body = match response.await {
        Ok(response) => response.into_body(),
        Err(e) => return classify(e),
    };
    let mut all = Vec::new();
    while let Some(chunk) = body.data().await {
        match chunk {
            Ok(chunk) => {
                let _ = body.flow_control().release_capacity(chunk.len());
                all.extend_from_slice(&chunk);
            }
            Err(e) => return classify(e),
        }
    }
    Outcome::Complete(all.into())
}

#[derive(Clone)]
pub struct SmolConnect;
impl Connect for SmolConnect {
    type Io = tokio_util::compat::Compat<smol::net::TcpStream>;
    async fn connect(&self, addr: SocketAddr) -> io::Result<Self::Io> {
        use tokio_util::compat::FuturesAsyncReadCompatExt;
        let tcp = smol::net::TcpStream::connect(addr).await?;
        // HEADERS and DATA go out as separate writes: without this, Nagle
        // and the peer's delayed ACK add ~40 ms to every request.
        tcp.set_nodelay(true)?;
        Ok(tcp.compat())
    }
}

#[derive(Clone)]
pub struct TokioConnect;
impl Connect for TokioConnect {
    type Io = tokio::net::TcpStream;
    async fn connect(&self, addr: SocketAddr) -> io::Result<Self::Io> {
        let tcp = tokio::net::TcpStream::connect(addr).await?;
        tcp.set_nodelay(true)?;
        Ok(tcp)
    }
}
