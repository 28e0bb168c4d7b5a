//! An h2 client for the examples, on any runtime: connect, send a request,
//! read the whole response, and say what became of it.
#![allow(dead_code)]

use std::net::SocketAddr;

use winddown::http2::bytes::Bytes;
use winddown::http2::{h2, http, Runtime};

pub type Client = h2::client::SendRequest<Bytes>;

/// Client sockets come from the adapters' `TcpConnector`.
pub use winddown::http2::client::Connect;

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
