//! The reason for a drain, in the debug data of the GOAWAY frames (gRPC A9:
//! `max_idle`, `max_age`; grpc-go: `graceful_stop`).
//!
//! h2 0.4 has no way to send GOAWAY debug data, so the connection's writer
//! does it: [`ReasonWriter`] sits between h2 and the socket, follows the
//! frame boundaries of what h2 writes, and once a [`DrainReason`] is set,
//! extends each GOAWAY that carries no debug data with the reason's text.
//! Everything else passes through in the same writes, vectored ones
//! included: the writer only reads frame headers.

use std::io::{self, IoSlice};
use std::ops::Deref;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, Ordering};
use std::task::{ready, Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

const HEADER: usize = 9;
const GOAWAY: u8 = 0x7;
/// A GOAWAY's payload without debug data: last-stream-id and error code.
const GOAWAY_BARE: usize = 8;
/// Room for a whole rewritten GOAWAY: header, payload, the longest reason.
const OWED: usize = 32;
/// Owed bytes and the data after them are joined into one write, by copy
/// when the socket has no vectored writes, up to this many bytes.
const JOIN_BY_COPY: usize = 256;

/// Why a connection drains: set by its drive loop before h2 writes the
/// GOAWAY, read by its [`ReasonWriter`]. The first reason set stays.
#[derive(Debug, Default)]
pub(crate) struct DrainReason(AtomicU8);

impl DrainReason {
    pub(crate) const GRACEFUL_STOP: u8 = 1;
    pub(crate) const MAX_AGE: u8 = 2;
    pub(crate) const MAX_IDLE: u8 = 3;

    /// Sets the reason unless one is set already.
    pub(crate) fn set(&self, reason: u8) {
        let _ = self
            .0
            .compare_exchange(0, reason, Ordering::Relaxed, Ordering::Relaxed);
    }

    fn text(&self) -> Option<&'static [u8]> {
        match self.0.load(Ordering::Relaxed) {
            Self::GRACEFUL_STOP => Some(b"graceful_stop"),
            Self::MAX_AGE => Some(b"max_age"),
            Self::MAX_IDLE => Some(b"max_idle"),
            _ => None,
        }
    }
}

/// A frame header's payload length and type.
fn parse(header: &[u8]) -> (usize, u8) {
    let len = u32::from_be_bytes([0, header[0], header[1], header[2]]) as usize;
    (len, header[3])
}

/// The socket as h2 sees it: reads pass through, writes gain the reason in
/// GOAWAY debug data, and h2's shutdown is only a flush (the close that
/// follows sends the FIN).
pub(crate) struct ReasonWriter<'a, IO> {
    io: IO,
    reason: &'a DrainReason,
    /// Bytes of the current frame (its header included) that still pass
    /// through unchanged; 0 at a frame boundary.
    until_boundary: u32,
    /// A frame header h2 offered in pieces, not yet written.
    split: [u8; HEADER],
    split_len: u8,
    /// Bytes owed to the socket before any more of h2's: a rewritten GOAWAY
    /// header, or the debug data after its payload.
    owed: Owed,
    /// Whether the reason's text is due once the current GOAWAY's payload is
    /// through.
    append: bool,
}

/// Bytes owed to the socket: at most a whole rewritten GOAWAY. Offsets are
/// bytes, so every connection's writer stays small.
struct Owed {
    bytes: [u8; OWED],
    start: u8,
    end: u8,
}

impl Owed {
    fn set(&mut self, bytes: &[u8]) {
        self.bytes[..bytes.len()].copy_from_slice(bytes);
        self.start = 0;
        self.end = bytes.len() as u8;
    }

    fn pending(&self) -> &[u8] {
        &self.bytes[usize::from(self.start)..usize::from(self.end)]
    }

    fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// `n` of the pending bytes were written.
    fn consume(&mut self, n: usize) {
        self.start += n.min(self.pending().len()) as u8;
    }
}

impl<'a, IO> ReasonWriter<'a, IO> {
    pub(crate) fn new(io: IO, reason: &'a DrainReason) -> Self {
        Self {
            io,
            reason,
            until_boundary: 0,
            split: [0; HEADER],
            split_len: 0,
            owed: Owed {
                bytes: [0; OWED],
                start: 0,
                end: 0,
            },
            append: false,
        }
    }

    /// Whether the frame with this header gets the reason added.
    fn rewrites(&self, header: &[u8]) -> bool {
        let (len, kind) = parse(header);
        kind == GOAWAY && len == GOAWAY_BARE && self.reason.text().is_some()
    }

    /// A header at a frame boundary, taken whole into `owed` (rewritten if
    /// it is a GOAWAY to extend).
    fn take_header(&mut self, header: [u8; HEADER]) {
        let (len, _) = parse(&header);
        match self.reason.text() {
            Some(text) if self.rewrites(&header) => {
                let mut extended = header;
                let new_len = (GOAWAY_BARE + text.len()) as u32;
                extended[..3].copy_from_slice(&new_len.to_be_bytes()[1..]);
                self.owed.set(&extended);
                self.append = true;
            }
            _ => self.owed.set(&header),
        }
        self.until_boundary = len as u32;
    }

    /// After `written` bytes of `bufs` went out unchanged: where the frames
    /// stand. Headers met on the way lie whole within `bufs` (checked by
    /// [`passthrough`](Self::passthrough) before writing, which also found
    /// where they stand if all it allowed went out: the usual case, with no
    /// second walk over the headers).
    fn advance<B: Deref<Target = [u8]>>(&mut self, bufs: &[B], written: usize, pass: Passthrough) {
        if written == pass.through {
            self.until_boundary = pass.after;
        } else {
            self.walk(bufs, written);
        }
        if self.until_boundary == 0 && std::mem::take(&mut self.append) {
            if let Some(text) = self.reason.text() {
                self.owed.set(text);
            }
        }
    }

    /// Follows the frame headers through the first `written` bytes of `bufs`.
    fn walk<B: Deref<Target = [u8]>>(&mut self, bufs: &[B], written: usize) {
        let mut at = 0;
        loop {
            let rest = written - at;
            let until_boundary = self.until_boundary as usize;
            if until_boundary >= rest {
                self.until_boundary = (until_boundary - rest) as u32;
                break;
            }
            at += until_boundary;
            let header = read_header(bufs, at).unwrap_or([0; HEADER]);
            self.until_boundary = (HEADER + parse(&header).0) as u32;
        }
    }

    /// How many bytes of `bufs` may go out unchanged from here: up to the
    /// first header that must be rewritten or is not whole in `bufs`, and not
    /// past a GOAWAY whose debug data is due.
    fn passthrough<B: Deref<Target = [u8]>>(&self, bufs: &[B]) -> Passthrough {
        let total: usize = bufs.iter().map(|b| b.len()).sum();
        let mut at = self.until_boundary as usize;
        let through = if self.append || at >= total {
            at.min(total)
        } else {
            loop {
                let Some(header) = read_header(bufs, at) else {
                    break at;
                };
                if self.rewrites(&header) {
                    break at;
                }
                at += HEADER + parse(&header).0;
                if at >= total {
                    break total;
                }
            }
        };
        Passthrough {
            through,
            after: (at - through) as u32,
        }
    }
}

/// What [`ReasonWriter::passthrough`] found.
#[derive(Clone, Copy)]
struct Passthrough {
    /// Bytes that may go out unchanged.
    through: usize,
    /// Bytes of the frame in progress still to come once they all have.
    after: u32,
}

/// The 9 bytes at `offset` of the concatenation of `bufs`, if all there.
fn read_header<B: Deref<Target = [u8]>>(bufs: &[B], mut offset: usize) -> Option<[u8; HEADER]> {
    let mut header = [0; HEADER];
    let mut filled = 0;
    for buf in bufs {
        if offset >= buf.len() {
            offset -= buf.len();
            continue;
        }
        if filled == 0 {
            // Usually the whole header lies in one chunk.
            if let Some(whole) = buf.get(offset..offset + HEADER) {
                header.copy_from_slice(whole);
                return Some(header);
            }
        }
        let take = (HEADER - filled).min(buf.len() - offset);
        header[filled..filled + take].copy_from_slice(&buf[offset..offset + take]);
        filled += take;
        offset = 0;
        if filled == HEADER {
            return Some(header);
        }
    }
    None
}

impl<IO: AsyncWrite + Unpin> ReasonWriter<'_, IO> {
    /// Writes the owed bytes and, in the same write, `data` (bytes that pass
    /// through unchanged); returns how many of `data` went out.
    fn poll_owed_with(&mut self, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        while !self.owed.is_empty() {
            let owed = self.owed.pending();
            let owed_len = owed.len();
            let n = if self.io.is_write_vectored() {
                let joined = [IoSlice::new(owed), IoSlice::new(data)];
                ready!(Pin::new(&mut self.io).poll_write_vectored(cx, &joined))?
            } else if owed_len + data.len() <= JOIN_BY_COPY {
                let mut joined = [0u8; JOIN_BY_COPY];
                joined[..owed_len].copy_from_slice(owed);
                joined[owed_len..owed_len + data.len()].copy_from_slice(data);
                ready!(Pin::new(&mut self.io).poll_write(cx, &joined[..owed_len + data.len()]))?
            } else {
                ready!(Pin::new(&mut self.io).poll_write(cx, owed))?
            };
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.owed.consume(n);
            if n >= owed_len {
                return Poll::Ready(Ok(n - owed_len));
            }
        }
        Poll::Ready(Ok(0))
    }

    /// Writes what is owed; ready once nothing is.
    fn poll_owed(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.owed.is_empty() {
            match ready!(Pin::new(&mut self.io).poll_write(cx, self.owed.pending()))? {
                0 => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                n => self.owed.consume(n),
            }
        }
        Poll::Ready(Ok(()))
    }

    /// The slow path, at a frame boundary: take h2's next frame into `owed`
    /// rewritten (a bare GOAWAY, whole), or its header (or the header's first
    /// pieces) into `owed`/`split`; report those bytes as written. They go
    /// out with what h2 writes next, in one write.
    fn take(&mut self, buf: &[u8]) -> usize {
        if self.split_len == 0 && buf.len() >= HEADER + GOAWAY_BARE && self.rewrites(&buf[..HEADER])
        {
            if let Some(text) = self.reason.text() {
                let len = (GOAWAY_BARE + text.len()) as u32;
                let frame_end = HEADER + GOAWAY_BARE;
                let mut frame = [0u8; OWED];
                frame[..3].copy_from_slice(&len.to_be_bytes()[1..]);
                frame[3..frame_end].copy_from_slice(&buf[3..frame_end]);
                frame[frame_end..frame_end + text.len()].copy_from_slice(text);
                self.owed.set(&frame[..frame_end + text.len()]);
                return frame_end;
            }
        }
        let split_len = usize::from(self.split_len);
        let take = (HEADER - split_len).min(buf.len());
        self.split[split_len..split_len + take].copy_from_slice(&buf[..take]);
        self.split_len += take as u8;
        if usize::from(self.split_len) == HEADER {
            self.split_len = 0;
            self.take_header(self.split);
        }
        take
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for ReasonWriter<'_, IO> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if buf.is_empty() {
            ready!(this.poll_owed(cx))?;
            return Poll::Ready(Ok(0));
        }
        if !this.owed.is_empty() && this.split_len == 0 {
            // What is owed, and what follows it, in one write.
            let pass = this.passthrough(&[buf]);
            let n = ready!(this.poll_owed_with(cx, &buf[..pass.through]))?;
            if n > 0 {
                this.advance(&[buf], n, pass);
                return Poll::Ready(Ok(n));
            }
        }
        ready!(this.poll_owed(cx))?;
        if this.split_len > 0 {
            return Poll::Ready(Ok(this.take(buf)));
        }
        let pass = this.passthrough(&[buf]);
        if pass.through == 0 {
            return Poll::Ready(Ok(this.take(buf)));
        }
        let n = ready!(Pin::new(&mut this.io).poll_write(cx, &buf[..pass.through]))?;
        this.advance(&[buf], n, pass);
        Poll::Ready(Ok(n))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if !this.owed.is_empty() {
            // Joined with what is owed, in `poll_write`: one chunk at a time.
            let first = bufs
                .iter()
                .find(|b| !b.is_empty())
                .map_or(&[][..], |b| &b[..]);
            return Pin::new(this).poll_write(cx, first);
        }
        let total: usize = bufs.iter().map(|b| b.len()).sum();
        if this.split_len == 0 && total > 0 {
            let pass = this.passthrough(bufs);
            if pass.through == total {
                let n = ready!(Pin::new(&mut this.io).poll_write_vectored(cx, bufs))?;
                this.advance(bufs, n, pass);
                return Poll::Ready(Ok(n));
            }
        }
        // A header to rewrite or split across calls: one chunk at a time.
        let first = bufs
            .iter()
            .find(|b| !b.is_empty())
            .map_or(&[][..], |b| &b[..]);
        Pin::new(this).poll_write(cx, first)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_owed(cx))?;
        Pin::new(&mut this.io).poll_flush(cx)
    }

    /// Flushes, but leaves the socket open for writing: h2 calls this once it
    /// has closed the connection, and the serve task then lingers for the
    /// client's EOF and closes the socket, which sends the FIN (as grpc-go
    /// does; a client that waits for the FIN first gets it during the linger).
    /// A `shutdown` system call here would be one more per drained connection.
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_flush(cx)
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for ReasonWriter<'_, IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

#[cfg(all(test, not(winddown_loom)))]
mod tests {
    use super::*;

    /// A socket that takes at most `max` bytes per write.
    struct Trickle {
        out: Vec<u8>,
        max: usize,
        writes: usize,
    }

    impl AsyncWrite for Trickle {
        fn poll_write(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            let n = buf.len().min(self.max);
            self.out.extend_from_slice(&buf[..n]);
            self.writes += 1;
            Poll::Ready(Ok(n))
        }
        fn poll_write_vectored(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            bufs: &[IoSlice<'_>],
        ) -> Poll<io::Result<usize>> {
            // Across the chunks, up to `max` in all: frames straddle writes.
            self.writes += 1;
            let mut n = 0;
            for buf in bufs {
                let take = buf.len().min(self.max - n);
                self.out.extend_from_slice(&buf[..take]);
                n += take;
            }
            Poll::Ready(Ok(n))
        }
        fn is_write_vectored(&self) -> bool {
            true
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    fn frame(kind: u8, payload: &[u8]) -> Vec<u8> {
        let len = (payload.len() as u32).to_be_bytes();
        let mut f = vec![len[1], len[2], len[3], kind, 0, 0, 0, 0, 0];
        f.extend_from_slice(payload);
        f
    }

    /// Writes `input` through a ReasonWriter onto a socket taking at most
    /// `max` bytes per write, each call offering what `write` offers from
    /// the current position; returns the bytes that reached the socket.
    fn run(
        input: &[u8],
        max: usize,
        drain: &DrainReason,
        mut write: impl FnMut(
            Pin<&mut ReasonWriter<'_, Trickle>>,
            &mut Context<'_>,
            &[u8],
        ) -> Poll<io::Result<usize>>,
    ) -> Vec<u8> {
        let socket = Trickle {
            out: Vec::new(),
            max,
            writes: 0,
        };
        let mut writer = ReasonWriter::new(socket, drain);
        let waker = futures_lite::future::block_on(futures_lite::future::poll_fn(|cx| {
            Poll::Ready(cx.waker().clone())
        }));
        let mut cx = Context::from_waker(&waker);
        let mut at = 0;
        while at < input.len() {
            match write(Pin::new(&mut writer), &mut cx, &input[at..]) {
                Poll::Ready(Ok(n)) => at += n,
                other => panic!("unexpected {other:?}"),
            }
        }
        assert!(Pin::new(&mut writer).poll_flush(&mut cx).is_ready());
        writer.io.out
    }

    /// [`run`] with plain writes of at most `offer` bytes.
    fn run_plain(input: &[u8], offer: usize, max: usize, reason: Option<u8>) -> Vec<u8> {
        let drain = DrainReason::default();
        if let Some(r) = reason {
            drain.set(r);
        }
        run(input, max, &drain, |writer, cx, rest| {
            writer.poll_write(cx, &rest[..offer.min(rest.len())])
        })
    }

    fn stream_of_frames(goaway_payload: &[u8]) -> Vec<u8> {
        let mut input = frame(0x4, &[]); // SETTINGS
        input.extend(frame(0x0, &[7; 40])); // DATA
        input.extend(frame(GOAWAY, goaway_payload));
        input.extend(frame(0x6, &[1; 8])); // PING
        input.extend(frame(GOAWAY, goaway_payload));
        input
    }

    #[test]
    fn every_bare_goaway_gets_the_reason_however_the_bytes_are_split() {
        let goaway = [0, 0, 0, 3, 0, 0, 0, 0];
        let input = stream_of_frames(&goaway);
        let mut extended = goaway.to_vec();
        extended.extend_from_slice(b"max_age");
        let expected = stream_of_frames(&extended);
        for offer in [1, 2, 5, 9, 10, 17, 64, 1000] {
            for max in [1, 3, 8, 9, 100, 1000] {
                let out = run_plain(&input, offer, max, Some(DrainReason::MAX_AGE));
                assert_eq!(out, expected, "offer {offer}, max {max}");
            }
        }
    }

    #[test]
    fn without_a_reason_or_with_debug_data_already_everything_passes_unchanged() {
        let input = stream_of_frames(&[0, 0, 0, 3, 0, 0, 0, 0]);
        assert_eq!(run_plain(&input, 7, 5, None), input);
        let with_data = stream_of_frames(b"\0\0\0\x03\0\0\0\x0bcalm down");
        assert_eq!(
            run_plain(&with_data, 7, 5, Some(DrainReason::GRACEFUL_STOP)),
            with_data
        );
    }

    #[test]
    fn vectored_writes_pass_whole_frames_and_fall_back_for_a_goaway() {
        let goaway = [0, 0, 0, 5, 0, 0, 0, 0];
        let input = stream_of_frames(&goaway);
        let mut extended = goaway.to_vec();
        extended.extend_from_slice(b"graceful_stop");
        let expected = stream_of_frames(&extended);
        let drain = DrainReason::default();
        drain.set(DrainReason::GRACEFUL_STOP);
        for cut in [1, 4, 9, 12, 30] {
            for max in [2, 11, 1000] {
                let out = run(&input, max, &drain, |writer, cx, rest| {
                    // Two chunks, the first `cut` bytes long: headers straddle them.
                    let split = cut.min(rest.len());
                    let bufs = [IoSlice::new(&rest[..split]), IoSlice::new(&rest[split..])];
                    writer.poll_write_vectored(cx, &bufs)
                });
                assert_eq!(out, expected, "cut {cut}, max {max}");
            }
        }
    }

    #[test]
    fn a_goaway_goes_out_in_the_same_write_as_what_follows_it() {
        // h2 writes the first GOAWAY and its PING together, then flushes; the
        // final GOAWAY alone, then flushes. Each is one write on the socket.
        let drain = DrainReason::default();
        drain.set(DrainReason::GRACEFUL_STOP);
        let socket = Trickle {
            out: Vec::new(),
            max: 1000,
            writes: 0,
        };
        let mut writer = ReasonWriter::new(socket, &drain);
        let waker = futures_lite::future::block_on(futures_lite::future::poll_fn(|cx| {
            Poll::Ready(cx.waker().clone())
        }));
        let mut cx = Context::from_waker(&waker);
        let mut first = frame(GOAWAY, &[0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 0]);
        first.extend(frame(0x6, &[1; 8]));
        let last = frame(GOAWAY, &[0, 0, 0, 1, 0, 0, 0, 0]);
        for batch in [first, last] {
            let mut at = 0;
            while at < batch.len() {
                match Pin::new(&mut writer).poll_write(&mut cx, &batch[at..]) {
                    Poll::Ready(Ok(n)) => at += n,
                    other => panic!("unexpected {other:?}"),
                }
            }
            assert!(Pin::new(&mut writer).poll_flush(&mut cx).is_ready());
        }
        assert_eq!(writer.io.writes, 2);
    }

    #[test]
    fn the_first_reason_stays() {
        let reason = DrainReason::default();
        reason.set(DrainReason::MAX_IDLE);
        reason.set(DrainReason::GRACEFUL_STOP);
        assert_eq!(reason.text(), Some(&b"max_idle"[..]));
    }
}
