//! [`Connect`]: how the client opens a byte stream to an address. The
//! adapters implement it over their runtime's TCP.

use std::future::Future;
use std::io;
use std::net::SocketAddr;

use tokio::io::{AsyncRead, AsyncWrite};

/// Opens connections for the [`Client`](super::Client). `winddown-smol` and
/// `winddown-tokio` provide `TcpConnector`; implement it yourself for TLS or
/// Unix sockets.
///
/// # Example
///
/// ```
/// use std::net::SocketAddr;
/// use winddown::http2::client::Connect;
///
/// /// Refuses everything: a client with it fails with `ErrorKind::Connect`.
/// struct Nowhere;
///
/// impl Connect for Nowhere {
///     type Io = tokio::io::DuplexStream;
///     async fn connect(&self, _: SocketAddr) -> std::io::Result<Self::Io> {
///         Err(std::io::ErrorKind::ConnectionRefused.into())
///     }
/// }
/// ```
pub trait Connect: Send + Sync + 'static {
    /// A connection's byte stream (tokio's I/O traits, which h2 uses).
    type Io: AsyncRead + AsyncWrite + Unpin + Send + 'static;

    /// Connects to `addr`. The client bounds it with its connect timeout.
    fn connect(&self, addr: SocketAddr) -> impl Future<Output = io::Result<Self::Io>> + Send;
}
