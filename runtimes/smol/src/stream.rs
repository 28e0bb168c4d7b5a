//! A TCP stream on smol's reactor that h2 can drive (tokio's I/O traits),
//! without a compatibility layer.

use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll, Waker};

use smol::Async;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::read_wake::ReadWake;

/// A TCP stream on smol's reactor, speaking tokio's I/O traits (which h2
/// drives): what [`TcpListener`](crate::TcpListener) accepts and
/// [`TcpConnector`](crate::TcpConnector) opens.
///
/// It reads like async-io's own stream, with one difference: a read that
/// returned less than it was offered emptied the socket, so the next read
/// first waits for readiness instead of asking the kernel for an
/// `EAGAIN` (h2 reads until a read would block: without this, every batch
/// of frames costs one system call more). The wait is registered with a
/// waker of its own that notes the reactor's wake-up, and the next poll
/// reads only after one (`read_wake.rs` says why async-io's own answer is
/// not enough).
///
/// # Example
///
/// ```
/// use tokio::io::{AsyncReadExt, AsyncWriteExt};
///
/// smol::block_on(async {
///     let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
///     let addr = listener.local_addr()?;
///     let mut client = winddown_smol::TcpStream::connect(addr).await?;
///     let (server, _) = listener.accept()?;
///     let mut server = winddown_smol::TcpStream::from_std(server)?;
///     client.write_all(b"ping").await?;
///     let mut buf = [0u8; 4];
///     server.read_exact(&mut buf).await?;
///     assert_eq!(&buf, b"ping");
///     # Ok::<(), std::io::Error>(())
/// }).unwrap();
/// ```
#[derive(Debug)]
pub struct TcpStream {
    inner: Async<std::net::TcpStream>,
    read: ReadState,
    wake: Arc<ReadWake>,
}

/// What the next poll of a read does first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ReadState {
    /// Read.
    Read,
    /// The last read returned less than it was offered (the socket is
    /// empty): register interest in readability before reading.
    Drained,
    /// Interest is registered: read once the reactor has woken us.
    Registered,
}

impl TcpStream {
    /// Connects to `addr`, with `TCP_NODELAY` (small frames such as GOAWAY
    /// and PING ACKs should not wait for Nagle).
    ///
    /// # Example
    ///
    /// ```
    /// smol::block_on(async {
    ///     let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    ///     let stream = winddown_smol::TcpStream::connect(listener.local_addr().unwrap()).await;
    ///     assert!(stream.is_ok());
    /// });
    /// ```
    pub async fn connect(addr: SocketAddr) -> io::Result<Self> {
        Self::from_async(Async::<std::net::TcpStream>::connect(addr).await?)
    }

    /// Wraps a connected std stream (made non-blocking, with `TCP_NODELAY`).
    ///
    /// # Example
    ///
    /// ```
    /// # smol::block_on(async {
    /// let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    /// let stream = winddown_smol::TcpStream::from_std(client).unwrap();
    /// assert!(stream.peer_addr().is_ok());
    /// # });
    /// ```
    pub fn from_std(stream: std::net::TcpStream) -> io::Result<Self> {
        Self::from_async(Async::new(stream)?)
    }

    /// Wraps a stream already registered with smol's reactor (what
    /// `smol::Async::<std::net::TcpListener>::accept` yields), with
    /// `TCP_NODELAY`.
    ///
    /// # Example
    ///
    /// ```
    /// # smol::block_on(async {
    /// let listener = smol::Async::<std::net::TcpListener>::bind(([127, 0, 0, 1], 0)).unwrap();
    /// let addr = listener.get_ref().local_addr().unwrap();
    /// let client = smol::Async::<std::net::TcpStream>::connect(addr).await.unwrap();
    /// let stream = winddown_smol::TcpStream::from_async(client).unwrap();
    /// assert_eq!(stream.peer_addr().unwrap(), addr);
    /// # });
    /// ```
    pub fn from_async(inner: Async<std::net::TcpStream>) -> io::Result<Self> {
        inner.get_ref().set_nodelay(true)?;
        Ok(Self {
            inner,
            read: ReadState::Read,
            wake: Arc::default(),
        })
    }

    /// The address of the other end.
    ///
    /// # Example
    ///
    /// ```
    /// # smol::block_on(async {
    /// let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let addr = listener.local_addr().unwrap();
    /// let stream = winddown_smol::TcpStream::connect(addr).await.unwrap();
    /// assert_eq!(stream.peer_addr().unwrap(), addr);
    /// # });
    /// ```
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.inner.get_ref().peer_addr()
    }
}

impl AsyncRead for TcpStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            match this.read {
                ReadState::Read => {}
                ReadState::Drained => {
                    // Registers interest (re-arming the reactor's one-shot
                    // event), so bytes that came since the short read still
                    // wake us. Registered only once it is: a registration
                    // that failed is tried again by the next poll.
                    match this.register_read(cx) {
                        Poll::Pending => {
                            this.read = ReadState::Registered;
                            return Poll::Pending;
                        }
                        Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                        Poll::Ready(Ok(())) => this.read = ReadState::Read,
                    }
                }
                // Polled for another reason (h2's connection task is woken by
                // every handler that answers): no read, no system call.
                ReadState::Registered if !this.wake.take_woken(cx.waker()) => return Poll::Pending,
                // The wake-up is spent on this read, whatever it returns: after
                // an error or an interrupted read, the next poll reads again
                // (the reactor no longer holds our waker).
                ReadState::Registered => this.read = ReadState::Read,
            }
            let unfilled = buf.initialize_unfilled();
            let offered = unfilled.len();
            match this.inner.get_ref().read(unfilled) {
                Ok(n) => {
                    // Zero is the peer's EOF: every later read returns it at
                    // once, so there is nothing to wait for.
                    this.read = if n > 0 && n < offered {
                        ReadState::Drained
                    } else {
                        ReadState::Read
                    };
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => this.read = ReadState::Drained,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl TcpStream {
    /// Registers interest in readability with the reactor, through our
    /// [`ReadWake`], to wake the task of `cx`. Pending, unless registering
    /// fails.
    fn register_read(&self, cx: &Context<'_>) -> Poll<io::Result<()>> {
        self.wake.arm(cx.waker());
        let waker = Waker::from(Arc::clone(&self.wake));
        let mut cx = Context::from_waker(&waker);
        match self.inner.poll_readable(&mut cx) {
            // Almost always the event of the last registration, which woke us
            // and was read after: reading now would find nothing. (It can be
            // fresh: a hang-up or an error also marks the read side when only
            // write interest was registered.) Either way async-io now holds
            // no waker, so the second call registers; a socket that is
            // readable when re-armed reports at once (epoll and kqueue check
            // the level on re-arm), so nothing is lost but a reactor turn.
            Poll::Ready(Ok(())) => self.inner.poll_readable(&mut cx),
            other => other,
        }
    }

    /// Runs `write` until the socket takes it (or fails), waiting for
    /// writability between tries.
    fn poll_write_with(
        &self,
        cx: &mut Context<'_>,
        mut write: impl FnMut(&std::net::TcpStream) -> io::Result<usize>,
    ) -> Poll<io::Result<usize>> {
        loop {
            match write(self.inner.get_ref()) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                result => return Poll::Ready(result),
            }
            ready!(self.inner.poll_writable(cx))?;
        }
    }
}

impl AsyncWrite for TcpStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_write_with(cx, |mut socket| socket.write(buf))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.poll_write_with(cx, |mut socket| socket.write_vectored(bufs))
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Nothing is buffered here.
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(self.inner.get_ref().shutdown(Shutdown::Write))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use futures_lite::future;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::TcpStream;

    /// A connected pair: ours, and a plain std socket as the peer.
    fn pair() -> (TcpStream, std::net::TcpStream) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let peer = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (ours, _) = listener.accept().unwrap();
        (TcpStream::from_std(ours).unwrap(), peer)
    }

    /// Fails the test instead of hanging it.
    async fn bounded<T>(fut: impl std::future::Future<Output = T>) -> T {
        future::or(async { Some(fut.await) }, async {
            smol::Timer::after(Duration::from_secs(10)).await;
            None
        })
        .await
        .expect("timed out: a wake-up was lost")
    }

    #[test]
    fn bytes_that_come_after_a_short_read_still_wake_the_reader() {
        use std::io::Write;
        smol::block_on(async {
            let (mut ours, mut peer) = pair();
            peer.write_all(b"a").unwrap();
            let mut buf = [0u8; 64];
            // Short: the socket is empty afterwards, so the next read waits
            // for readiness instead of reading.
            assert_eq!(bounded(ours.read(&mut buf)).await.unwrap(), 1);
            let mut next = Box::pin(ours.read(&mut buf));
            assert!(
                future::poll_once(next.as_mut()).await.is_none(),
                "nothing to read yet"
            );
            peer.write_all(b"bc").unwrap();
            assert_eq!(bounded(next).await.unwrap(), 2);
            assert_eq!(&buf[..2], b"bc");
        });
    }

    #[test]
    fn bytes_already_there_after_a_short_read_are_read() {
        use std::io::Write;
        smol::block_on(async {
            let (mut ours, mut peer) = pair();
            peer.write_all(b"a").unwrap();
            let mut buf = [0u8; 64];
            assert_eq!(bounded(ours.read(&mut buf)).await.unwrap(), 1);
            // Arrived before the next read was even polled.
            peer.write_all(b"b").unwrap();
            assert_eq!(bounded(ours.read(&mut buf)).await.unwrap(), 1);
            assert_eq!(buf[0], b'b');
        });
    }

    #[test]
    fn a_read_after_the_peers_eof_returns_at_once() {
        smol::block_on(async {
            let (mut ours, peer) = pair();
            drop(peer);
            let mut buf = [0u8; 64];
            assert_eq!(bounded(ours.read(&mut buf)).await.unwrap(), 0);
            // EOF stays: no wait for readiness (the linger reads again after
            // h2 saw the EOF, and waiting there could spin, see below).
            let again = future::poll_once(ours.read(&mut buf)).await;
            assert_eq!(again.map(|r| r.unwrap()), Some(0));
        });
    }

    /// A waker that fires its token: a wake-up to wait for with a bound.
    #[derive(Default)]
    struct WokenFlag(winddown::DrainToken);

    impl std::task::Wake for WokenFlag {
        fn wake(self: std::sync::Arc<Self>) {
            self.0.fire();
        }
    }

    impl WokenFlag {
        fn wait(&self) -> bool {
            self.0.wait_blocking_timeout(Duration::from_secs(10))
        }
    }

    /// async-io reports readiness only for an event of a reactor turn later
    /// than the one that registered the interest. Registered while the
    /// reactor's thread waits, on a socket that becomes readable, the event
    /// comes in that same turn: the task is woken, yet `poll_readable` says
    /// pending. The poll after such a wake-up must read.
    #[test]
    fn the_poll_after_the_reactors_wake_up_reads() {
        use std::future::Future;
        use std::io::Write;
        use std::sync::Arc;
        use std::task::{Context, Poll, Waker};

        let (mut ours, mut peer) = pair();
        let mut buf = [0u8; 64];
        // Not smol's block_on: this thread never drives the reactor, so
        // async-io's own thread waits in it, as in a server. The race (our
        // registration lands while that thread waits) is not certain in one
        // round, so the test runs twenty.
        peer.write_all(b"a").unwrap();
        let first = future::block_on(bounded(ours.read(&mut buf)));
        assert_eq!(first.unwrap(), 1);
        for round in 0..20 {
            let woken = Arc::new(WokenFlag::default());
            let waker = Waker::from(Arc::clone(&woken));
            let mut cx = Context::from_waker(&waker);
            let mut next = Box::pin(ours.read(&mut buf));
            assert!(next.as_mut().poll(&mut cx).is_pending(), "registers");
            peer.write_all(b"b").unwrap();
            assert!(
                woken.wait(),
                "round {round}: the reactor woke the read within 10 s"
            );
            match next.as_mut().poll(&mut cx) {
                Poll::Ready(read) => assert_eq!(read.unwrap(), 1),
                Poll::Pending => panic!("round {round}: woken by the reactor, yet did not read"),
            }
        }
    }

    #[test]
    fn a_read_after_an_error_reads_again() {
        smol::block_on(async {
            let (mut ours, mut peer) = pair();
            // A byte the peer never reads turns its close into an RST.
            ours.write_all(b"x").await.unwrap();
            std::io::Write::write_all(&mut peer, b"a").unwrap();
            let mut buf = [0u8; 64];
            assert_eq!(bounded(ours.read(&mut buf)).await.unwrap(), 1);
            let mut next = Box::pin(ours.read(&mut buf));
            assert!(
                future::poll_once(next.as_mut()).await.is_none(),
                "registers"
            );
            drop(peer);
            assert!(bounded(next).await.is_err(), "the reset");
            // The wake-up was spent on the read that failed: this one must
            // ask the socket again, not wait for a wake-up that never comes.
            let _ = bounded(ours.read(&mut buf)).await;
        });
    }

    #[test]
    fn a_full_read_reads_on_at_once_and_eof_is_seen_after_a_short_one() {
        use std::io::Write;
        smol::block_on(async {
            let (mut ours, mut peer) = pair();
            peer.write_all(b"abcdef").unwrap();
            drop(peer);
            let mut small = [0u8; 3];
            ours.read_exact(&mut small).await.unwrap();
            assert_eq!(&small, b"abc");
            let mut rest = Vec::new();
            bounded(ours.read_to_end(&mut rest)).await.unwrap();
            assert_eq!(rest, b"def");
        });
    }

    #[test]
    fn writes_vectored_and_shutdown_reach_the_peer() {
        use std::io::Read;
        smol::block_on(async {
            let (mut ours, mut peer) = pair();
            let parts = [std::io::IoSlice::new(b"ab"), std::io::IoSlice::new(b"cd")];
            // Four bytes into an empty send buffer go out whole.
            assert_eq!(bounded(ours.write_vectored(&parts)).await.unwrap(), 4);
            ours.shutdown().await.unwrap();
            let mut got = Vec::new();
            peer.read_to_end(&mut got).unwrap();
            assert_eq!(got, b"abcd");
        });
    }
}
