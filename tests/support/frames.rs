//! A small, blocking, frame-level HTTP/2 client for integration tests.
//!
//! It speaks just enough HTTP/2 (RFC 9113) to drive a server through
//! graceful-shutdown scenarios and to observe exactly what the server sends:
//! every frame is returned as a [`Frame`], nothing is hidden, and how the TCP
//! connection ended is reported as a [`Close`] (FIN, RST or timeout).
//! Requests are HPACK-encoded with literal fields only, so no header table is
//! kept; responses are not HPACK-decoded beyond [`Frame::status`].
//!
//! Include it with `#[path = "support/frames.rs"] mod frames;`.
#![allow(dead_code)]

use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::Duration;

/// The client connection preface (RFC 9113 §3.4).
pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Read, write and connect timeout of a new [`FrameClient`].
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// The default SETTINGS_MAX_FRAME_SIZE; outgoing DATA and header blocks are split at it.
pub const MAX_FRAME_SIZE: usize = 16_384;

/// Largest stream id (2^31 - 1): the `last_stream` of the first GOAWAY of a graceful shutdown.
pub const MAX_STREAM_ID: u32 = 0x7fff_ffff;

/// Frame type codes (RFC 9113 §6).
pub mod kind {
    pub const DATA: u8 = 0x0;
    pub const HEADERS: u8 = 0x1;
    pub const PRIORITY: u8 = 0x2;
    pub const RST_STREAM: u8 = 0x3;
    pub const SETTINGS: u8 = 0x4;
    pub const PUSH_PROMISE: u8 = 0x5;
    pub const PING: u8 = 0x6;
    pub const GOAWAY: u8 = 0x7;
    pub const WINDOW_UPDATE: u8 = 0x8;
    pub const CONTINUATION: u8 = 0x9;
}

/// Frame flags (RFC 9113 §6). `ACK` and `END_STREAM` share a bit.
pub mod flag {
    pub const END_STREAM: u8 = 0x1;
    pub const ACK: u8 = 0x1;
    pub const END_HEADERS: u8 = 0x4;
    pub const PADDED: u8 = 0x8;
    pub const PRIORITY: u8 = 0x20;
}

/// Error codes for RST_STREAM and GOAWAY (RFC 9113 §7).
pub mod code {
    pub const NO_ERROR: u32 = 0x0;
    pub const PROTOCOL_ERROR: u32 = 0x1;
    pub const INTERNAL_ERROR: u32 = 0x2;
    pub const FLOW_CONTROL_ERROR: u32 = 0x3;
    pub const SETTINGS_TIMEOUT: u32 = 0x4;
    pub const STREAM_CLOSED: u32 = 0x5;
    pub const FRAME_SIZE_ERROR: u32 = 0x6;
    pub const REFUSED_STREAM: u32 = 0x7;
    pub const CANCEL: u32 = 0x8;
    pub const COMPRESSION_ERROR: u32 = 0x9;
    pub const ENHANCE_YOUR_CALM: u32 = 0xb;

    /// The RFC name of an error code, or its hex value if unknown.
    pub fn name(code: u32) -> String {
        const NAMES: &str = "NO_ERROR PROTOCOL_ERROR INTERNAL_ERROR FLOW_CONTROL_ERROR \
            SETTINGS_TIMEOUT STREAM_CLOSED FRAME_SIZE_ERROR REFUSED_STREAM CANCEL \
            COMPRESSION_ERROR CONNECT_ERROR ENHANCE_YOUR_CALM INADEQUATE_SECURITY HTTP_1_1_REQUIRED";
        match NAMES.split_whitespace().nth(code as usize) {
            Some(name) => name.to_string(),
            None => format!("0x{code:x}"),
        }
    }
}

/// One decoded frame, as received from the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// `len` is the payload length on the wire (what counts against flow control,
    /// padding included); `payload` is the data without padding.
    Data {
        stream: u32,
        len: usize,
        end_stream: bool,
        payload: Vec<u8>,
    },
    /// `block` is the header block fragment, padding and priority fields stripped.
    Headers {
        stream: u32,
        end_stream: bool,
        end_headers: bool,
        block: Vec<u8>,
    },
    /// More of a header block begun by HEADERS.
    Continuation {
        stream: u32,
        end_headers: bool,
        block: Vec<u8>,
    },
    /// The peer cancelled or refused a stream with error `code` (see [`code`]).
    RstStream { stream: u32, code: u32 },
    /// Connection settings as (identifier, value) pairs, or an (empty) acknowledgement.
    Settings { ack: bool, params: Vec<(u16, u32)> },
    /// A liveness probe (h2 sends one with its first GOAWAY), or its acknowledgement.
    Ping { ack: bool, payload: [u8; 8] },
    /// The peer accepts no streams above `last_stream`; `code` says why (see [`code`]).
    GoAway {
        last_stream: u32,
        code: u32,
        debug: Vec<u8>,
    },
    /// Flow-control credit for a stream, or for the connection on stream 0.
    WindowUpdate { stream: u32, increment: u32 },
    /// PRIORITY, PUSH_PROMISE and unknown types, undecoded.
    Other {
        kind: u8,
        flags: u8,
        stream: u32,
        payload: Vec<u8>,
    },
}

impl Frame {
    /// Best-effort response status of a HEADERS frame, without HPACK state.
    ///
    /// Skips leading dynamic-table size updates, then recognises a first field that is
    /// an indexed static `:status` (indices 8–14: 200, 204, 206, 304, 400, 404, 500) or a
    /// literal (with, without or never indexing) whose name is static index 8–14, with a
    /// plain or Huffman-coded three-digit value. Returns `None` for anything else — notably
    /// a status the server indexed into its dynamic table earlier on the connection (e.g.
    /// h2 sends a repeated 503 as a dynamic-table reference) — and for non-HEADERS frames.
    pub fn status(&self) -> Option<u16> {
        let Frame::Headers { block, .. } = self else {
            return None;
        };
        let mut rest = &block[..];
        while rest.first()? & 0xe0 == 0x20 {
            rest = &rest[hpack_int(rest, 5)?.1..]; // dynamic table size update
        }
        let first = *rest.first()?;
        let (index, used) = match first {
            b if b & 0x80 != 0 => {
                const STATIC: [u16; 7] = [200, 204, 206, 304, 400, 404, 500];
                let (index, _) = hpack_int(rest, 7)?;
                return STATIC
                    .get(usize::try_from(index).ok()?.checked_sub(8)?)
                    .copied();
            }
            b if b & 0x40 != 0 => hpack_int(rest, 6)?,
            _ => hpack_int(rest, 4)?,
        };
        if !(8..=14).contains(&index) {
            return None;
        }
        let rest = &rest[used..];
        let huffman = rest.first()? & 0x80 != 0;
        let (len, used) = hpack_int(rest, 7)?;
        let value = rest.get(used..used + usize::try_from(len).ok()?)?;
        let digits = if huffman {
            huffman_digits(value)?
        } else {
            value.to_vec()
        };
        if digits.len() != 3 || !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(&digits).ok()?.parse().ok()
    }

    /// Whether a DATA or HEADERS frame ends its stream (false for every other frame).
    pub fn end_stream(&self) -> bool {
        match self {
            Frame::Data { end_stream, .. } | Frame::Headers { end_stream, .. } => *end_stream,
            _ => false,
        }
    }

    /// The frame's stream id; 0 for connection-level frames (SETTINGS, PING, GOAWAY).
    pub fn stream(&self) -> u32 {
        match self {
            Frame::Data { stream, .. }
            | Frame::Headers { stream, .. }
            | Frame::Continuation { stream, .. }
            | Frame::RstStream { stream, .. }
            | Frame::WindowUpdate { stream, .. }
            | Frame::Other { stream, .. } => *stream,
            Frame::Settings { .. } | Frame::Ping { .. } | Frame::GoAway { .. } => 0,
        }
    }

    /// Parses one frame from its type, flags, stream id and payload; `InvalidData` if malformed.
    pub fn parse(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> io::Result<Frame> {
        let bad = |what: &str| {
            let msg = format!("malformed frame type {kind} on stream {stream}: {what}");
            io::Error::new(ErrorKind::InvalidData, msg)
        };
        let unpad = |p: &[u8]| -> io::Result<(usize, usize)> {
            if flags & flag::PADDED == 0 {
                return Ok((0, p.len()));
            }
            let pad = *p.first().ok_or_else(|| bad("missing pad length"))? as usize;
            let end = p
                .len()
                .checked_sub(pad)
                .filter(|&e| e >= 1)
                .ok_or_else(|| bad("padding too long"))?;
            Ok((1, end))
        };
        let u32_at = |i: usize| {
            u32::from_be_bytes([payload[i], payload[i + 1], payload[i + 2], payload[i + 3]])
        };
        Ok(match kind {
            kind::DATA => {
                let (start, end) = unpad(payload)?;
                let end_stream = flags & flag::END_STREAM != 0;
                Frame::Data {
                    stream,
                    len: payload.len(),
                    end_stream,
                    payload: payload[start..end].to_vec(),
                }
            }
            kind::HEADERS => {
                let (mut start, end) = unpad(payload)?;
                if flags & flag::PRIORITY != 0 {
                    start += 5;
                    if start > end {
                        return Err(bad("too short for priority fields"));
                    }
                }
                Frame::Headers {
                    stream,
                    end_stream: flags & flag::END_STREAM != 0,
                    end_headers: flags & flag::END_HEADERS != 0,
                    block: payload[start..end].to_vec(),
                }
            }
            kind::CONTINUATION => Frame::Continuation {
                stream,
                end_headers: flags & flag::END_HEADERS != 0,
                block: payload.to_vec(),
            },
            kind::RST_STREAM if payload.len() != 4 => return Err(bad("length is not 4")),
            kind::RST_STREAM => Frame::RstStream {
                stream,
                code: u32_at(0),
            },
            kind::SETTINGS => {
                let ack = flags & flag::ACK != 0;
                if payload.len() % 6 != 0 || (ack && !payload.is_empty()) {
                    return Err(bad("bad SETTINGS length"));
                }
                let params = payload
                    .chunks(6)
                    .map(|p| {
                        (
                            u16::from_be_bytes([p[0], p[1]]),
                            u32::from_be_bytes([p[2], p[3], p[4], p[5]]),
                        )
                    })
                    .collect();
                Frame::Settings { ack, params }
            }
            kind::PING => {
                let payload = payload.try_into().map_err(|_| bad("length is not 8"))?;
                Frame::Ping {
                    ack: flags & flag::ACK != 0,
                    payload,
                }
            }
            kind::GOAWAY if payload.len() < 8 => return Err(bad("shorter than 8 bytes")),
            kind::GOAWAY => Frame::GoAway {
                last_stream: u32_at(0) & MAX_STREAM_ID,
                code: u32_at(4),
                debug: payload[8..].to_vec(),
            },
            kind::WINDOW_UPDATE if payload.len() != 4 => return Err(bad("length is not 4")),
            kind::WINDOW_UPDATE => Frame::WindowUpdate {
                stream,
                increment: u32_at(0) & MAX_STREAM_ID,
            },
            _ => Frame::Other {
                kind,
                flags,
                stream,
                payload: payload.to_vec(),
            },
        })
    }
}

/// How the server closed the TCP connection, as seen by the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Close {
    /// Orderly close: EOF at a frame boundary.
    Fin,
    /// The connection was reset (ECONNRESET), e.g. the server closed with unread data.
    /// Frames that arrived before the RST are still read first (as Linux delivers them).
    Reset,
    /// Nothing arrived within the read timeout; the connection is still open.
    TimedOut,
}

/// A blocking HTTP/2 client working frame by frame over one TCP connection.
pub struct FrameClient {
    stream: TcpStream,
    /// Received bytes not yet returned as frames.
    buf: Vec<u8>,
    /// Set by `shutdown_write`: automatic ACKs are no longer sent.
    write_closed: bool,
}

impl FrameClient {
    /// Connects with [`DEFAULT_TIMEOUT`] for connect, reads and writes, and TCP_NODELAY.
    pub fn connect(addr: SocketAddr) -> io::Result<Self> {
        Self::from_stream(TcpStream::connect_timeout(&addr, DEFAULT_TIMEOUT)?)
    }

    /// Wraps an already connected stream (either end), with the same settings as `connect`.
    pub fn from_stream(stream: TcpStream) -> io::Result<Self> {
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(DEFAULT_TIMEOUT))?;
        stream.set_write_timeout(Some(DEFAULT_TIMEOUT))?;
        Ok(FrameClient {
            stream,
            buf: Vec::new(),
            write_closed: false,
        })
    }

    /// Sets how long one read may wait for data before `TimedOut`.
    pub fn set_read_timeout(&mut self, d: Duration) -> io::Result<()> {
        self.stream.set_read_timeout(Some(d))
    }

    /// Sends the preface and an empty SETTINGS frame (does not wait for the server's).
    pub fn handshake(&mut self) -> io::Result<()> {
        let mut bytes = PREFACE.to_vec();
        bytes.extend(encode_frame(kind::SETTINGS, 0, 0, &[]));
        self.send_raw(&bytes)
    }

    /// Sends a SETTINGS frame with the given (identifier, value) parameters.
    pub fn send_settings(&mut self, params: &[(u16, u32)]) -> io::Result<()> {
        let mut payload = Vec::with_capacity(6 * params.len());
        for (id, value) in params {
            payload.extend_from_slice(&id.to_be_bytes());
            payload.extend_from_slice(&value.to_be_bytes());
        }
        self.send_frame(kind::SETTINGS, 0, 0, &payload)
    }

    /// Acknowledges the server's SETTINGS.
    pub fn send_settings_ack(&mut self) -> io::Result<()> {
        self.send_frame(kind::SETTINGS, flag::ACK, 0, &[])
    }

    /// Sends a request's HEADERS: pseudo-headers `:method`, `:scheme: http`, `:path`,
    /// `:authority: localhost`, then `extra` (names sent verbatim: pass them lower-case).
    /// Header blocks over [`MAX_FRAME_SIZE`] continue in CONTINUATION frames; the last frame
    /// carries END_HEADERS. END_STREAM is set if `end_stream`. See [`encode_request_block`].
    pub fn send_request(
        &mut self,
        stream: u32,
        method: &str,
        path: &str,
        extra: &[(&str, &str)],
        end_stream: bool,
    ) -> io::Result<()> {
        let block = encode_request_block(method, path, extra);
        let chunks: Vec<&[u8]> = block.chunks(MAX_FRAME_SIZE).collect();
        let mut bytes = Vec::new();
        for (i, chunk) in chunks.iter().enumerate() {
            let flags = flag_if(i + 1 == chunks.len(), flag::END_HEADERS);
            let (kind, flags) = match i {
                0 => (kind::HEADERS, flags | flag_if(end_stream, flag::END_STREAM)),
                _ => (kind::CONTINUATION, flags),
            };
            bytes.extend(encode_frame(kind, flags, stream, chunk));
        }
        self.send_raw(&bytes)
    }

    /// Sends `data` as DATA frames of at most [`MAX_FRAME_SIZE`] bytes (one empty frame if
    /// `data` is empty), END_STREAM on the last one if `end_stream`.
    pub fn send_data(&mut self, stream: u32, data: &[u8], end_stream: bool) -> io::Result<()> {
        let chunks: Vec<&[u8]> = if data.is_empty() {
            vec![data]
        } else {
            data.chunks(MAX_FRAME_SIZE).collect()
        };
        let mut bytes = Vec::new();
        for (i, chunk) in chunks.iter().enumerate() {
            let flags = flag_if(end_stream && i + 1 == chunks.len(), flag::END_STREAM);
            bytes.extend(encode_frame(kind::DATA, flags, stream, chunk));
        }
        self.send_raw(&bytes)
    }

    /// Sends a PING.
    pub fn send_ping(&mut self, payload: [u8; 8]) -> io::Result<()> {
        self.send_frame(kind::PING, 0, 0, &payload)
    }

    /// Answers a PING from the server.
    pub fn send_ping_ack(&mut self, payload: [u8; 8]) -> io::Result<()> {
        self.send_frame(kind::PING, flag::ACK, 0, &payload)
    }

    /// Sends RST_STREAM.
    pub fn send_rst(&mut self, stream: u32, code: u32) -> io::Result<()> {
        self.send_frame(kind::RST_STREAM, 0, stream, &code.to_be_bytes())
    }

    /// Sends GOAWAY without debug data.
    pub fn send_goaway(&mut self, last_stream: u32, code: u32) -> io::Result<()> {
        self.send_frame(
            kind::GOAWAY,
            0,
            0,
            &[last_stream.to_be_bytes(), code.to_be_bytes()].concat(),
        )
    }

    /// Sends WINDOW_UPDATE (0 is sent as is, for error tests; the reserved bit is cleared).
    pub fn send_window_update(&mut self, stream: u32, increment: u32) -> io::Result<()> {
        self.send_frame(
            kind::WINDOW_UPDATE,
            0,
            stream,
            &(increment & MAX_STREAM_ID).to_be_bytes(),
        )
    }

    /// Writes a frame with arbitrary type/flags/stream/payload (for malformed-input tests,
    /// e.g. oversized frames). Nothing is checked beyond the 24-bit length.
    pub fn send_frame(
        &mut self,
        kind: u8,
        flags: u8,
        stream: u32,
        payload: &[u8],
    ) -> io::Result<()> {
        if payload.len() > 0xff_ffff {
            return Err(io::Error::new(
                ErrorKind::InvalidInput,
                "payload exceeds 24-bit frame length",
            ));
        }
        self.send_raw(&encode_frame(kind, flags, stream, payload))
    }

    /// Writes bytes as they are, in one `write_all`.
    pub fn send_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// Half-closes our write side (FIN), keeps reading. Automatic ACKs stop.
    pub fn shutdown_write(&mut self) -> io::Result<()> {
        self.write_closed = true;
        self.stream.shutdown(Shutdown::Write)
    }

    /// Next frame, however the bytes were split over or packed into reads. `Ok(None)` on clean
    /// EOF at a frame boundary; `Err(UnexpectedEof)` on EOF inside a frame; `Err(InvalidData)`
    /// for a malformed frame (which is consumed); `Err(ConnectionReset)` if reset; and
    /// `Err(TimedOut)` (also for the `WouldBlock` of Unix) when one read waits longer than the
    /// read timeout, keeping the bytes received so far for the next call.
    pub fn read_frame(&mut self) -> io::Result<Option<Frame>> {
        loop {
            if self.buf.len() >= 9 {
                let h = &self.buf[..9];
                let len = u32::from_be_bytes([0, h[0], h[1], h[2]]) as usize;
                if self.buf.len() >= 9 + len {
                    let (kind, flags) = (h[3], h[4]);
                    let stream = u32::from_be_bytes([h[5], h[6], h[7], h[8]]) & MAX_STREAM_ID;
                    let frame = Frame::parse(kind, flags, stream, &self.buf[9..9 + len]);
                    self.buf.drain(..9 + len);
                    return frame.map(Some);
                }
            }
            let mut chunk = [0u8; 16 * 1024];
            match self.stream.read(&mut chunk) {
                Ok(0) if self.buf.is_empty() => return Ok(None),
                Ok(0) => {
                    let msg = format!("EOF inside a frame ({} bytes pending)", self.buf.len());
                    return Err(io::Error::new(ErrorKind::UnexpectedEof, msg));
                }
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    let timeout = self.stream.read_timeout()?.unwrap_or_default();
                    let pending = self.buf.len();
                    let msg = format!("no frame within {timeout:?} ({pending} bytes pending)");
                    return Err(io::Error::new(ErrorKind::TimedOut, msg));
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Reads frames until clean EOF, reset or timeout, returning every frame seen and how it
    /// ended. ACKs every SETTINGS (non-ack) frame, and PINGs only if `ack_pings`. Timeouts map
    /// to `Close::TimedOut`; ECONNRESET (and EPIPE/ECONNRESET on the ACK writes, after which
    /// nothing more is read) to `Close::Reset` — never an `Err` for those. Other errors
    /// (malformed frame, EOF inside a frame) are returned as `Err`.
    pub fn collect_until_close(&mut self, ack_pings: bool) -> io::Result<(Vec<Frame>, Close)> {
        let mut frames = Vec::new();
        loop {
            let frame = match self.read_frame() {
                Ok(Some(frame)) => frame,
                Ok(None) => return Ok((frames, Close::Fin)),
                Err(e) if e.kind() == ErrorKind::TimedOut => return Ok((frames, Close::TimedOut)),
                Err(e) if is_reset(&e) => return Ok((frames, Close::Reset)),
                Err(e) => return Err(e),
            };
            let acked = self.auto_ack(&frame, ack_pings);
            frames.push(frame);
            if let Err(e) = acked {
                if is_reset(&e) || e.kind() == ErrorKind::BrokenPipe {
                    return Ok((frames, Close::Reset));
                }
                return Err(e);
            }
        }
    }

    /// Reads (ACKing SETTINGS, and PINGs if `ack_pings`) until `pred` matches a frame; returns
    /// all frames read including the matching one. Errs if the connection closes
    /// (`UnexpectedEof`), resets or times out first, listing the frames seen in the message.
    pub fn read_until(
        &mut self,
        ack_pings: bool,
        mut pred: impl FnMut(&Frame) -> bool,
    ) -> io::Result<Vec<Frame>> {
        let mut frames = Vec::new();
        let error = loop {
            let frame = match self.read_frame() {
                Ok(Some(frame)) => frame,
                Ok(None) => break io::Error::new(ErrorKind::UnexpectedEof, "connection closed"),
                Err(e) => break e,
            };
            let acked = self.auto_ack(&frame, ack_pings);
            let done = pred(&frame);
            frames.push(frame);
            match acked {
                Ok(()) if done => return Ok(frames),
                Ok(()) => {}
                Err(e) => break e,
            }
        };
        let msg = format!(
            "{error} before the expected frame; saw: [{}]",
            describe(&frames)
        );
        Err(io::Error::new(error.kind(), msg))
    }

    /// The raw socket, for tests that need it (e.g. to stop reading).
    pub fn socket(&self) -> &TcpStream {
        &self.stream
    }

    /// ACKs a non-ack SETTINGS, and a non-ack PING if `ack_pings`; nothing after `shutdown_write`.
    fn auto_ack(&mut self, frame: &Frame, ack_pings: bool) -> io::Result<()> {
        match *frame {
            _ if self.write_closed => Ok(()),
            Frame::Settings { ack: false, .. } => self.send_settings_ack(),
            Frame::Ping {
                ack: false,
                payload,
            } if ack_pings => self.send_ping_ack(payload),
            _ => Ok(()),
        }
    }
}

/// Encodes one frame: 9-byte header (stream id written verbatim) then the payload.
pub fn encode_frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(9 + payload.len());
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes()[1..]);
    out.extend_from_slice(&[kind, flags]);
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// The HPACK block `send_request` sends: every field, pseudo-headers included, as a
/// "literal header field without indexing — new name" (0x00) with non-Huffman strings.
pub fn encode_request_block(method: &str, path: &str, extra: &[(&str, &str)]) -> Vec<u8> {
    let pseudo = [
        (":method", method),
        (":scheme", "http"),
        (":path", path),
        (":authority", "localhost"),
    ];
    let mut out = Vec::new();
    for (name, value) in pseudo.iter().chain(extra) {
        out.push(0x00);
        for s in [name, value] {
            encode_hpack_int(&mut out, 0x00, 7, s.len() as u64);
            out.extend_from_slice(s.as_bytes());
        }
    }
    out
}

/// HPACK integer (RFC 7541 §5.1): `high` holds the bits above the `prefix`-bit prefix.
fn encode_hpack_int(out: &mut Vec<u8>, high: u8, prefix: u32, mut value: u64) {
    let max = (1u64 << prefix) - 1;
    if value < max {
        out.push(high | value as u8);
        return;
    }
    out.push(high | max as u8);
    value -= max;
    while value >= 128 {
        out.push(value as u8 & 0x7f | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Decodes an HPACK integer with a `prefix`-bit prefix: (value, bytes used).
fn hpack_int(bytes: &[u8], prefix: u32) -> Option<(u64, usize)> {
    let max = (1u64 << prefix) - 1;
    let mut value = u64::from(*bytes.first()?) & max;
    if value < max {
        return Some((value, 1));
    }
    for (i, &b) in bytes.iter().enumerate().skip(1).take(8) {
        value += u64::from(b & 0x7f) << (7 * (i - 1));
        if b & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}

/// Decodes a Huffman-coded string made only of digits (RFC 7541 Appendix B:
/// '0'–'2' are 00000–00010, '3'–'9' are 011001–011111); `None` for any other symbol.
fn huffman_digits(bytes: &[u8]) -> Option<Vec<u8>> {
    let bits: Vec<u8> = bytes
        .iter()
        .flat_map(|b| (0..8).rev().map(move |i| (b >> i) & 1))
        .collect();
    let code = |from: usize, n: usize| bits[from..from + n].iter().fold(0u8, |acc, b| acc << 1 | b);
    let (mut digits, mut at) = (Vec::new(), 0);
    loop {
        let left = bits.len() - at;
        if left < 8 && bits[at..].iter().all(|&b| b == 1) {
            return Some(digits); // EOS padding
        }
        if left < 5 {
            return None;
        }
        let (digit, width) = match code(at, 5) {
            c @ 0..=2 => (b'0' + c, 5),
            0b01100..=0b01111 if left >= 6 => match code(at, 6) {
                c @ 0b011001..=0b011111 => (b'3' + c - 0b011001, 6),
                _ => return None,
            },
            _ => return None,
        };
        digits.push(digit);
        at += width;
    }
}

/// `flag` if `cond`, else no flag.
fn flag_if(cond: bool, flag: u8) -> u8 {
    if cond {
        flag
    } else {
        0
    }
}

/// ECONNRESET-like errors: the peer reset the connection.
fn is_reset(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted
    )
}

/// Short human-readable rendering of a frame list for assertion messages, e.g.
/// "SETTINGS, SETTINGS(ack), GOAWAY(last=2147483647, NO_ERROR), PING, HEADERS(1, 200), DATA(1, 5 bytes, end)".
pub fn describe(frames: &[Frame]) -> String {
    frames
        .iter()
        .map(describe_one)
        .collect::<Vec<_>>()
        .join(", ")
}

fn describe_one(frame: &Frame) -> String {
    let s = frame.stream();
    let end = if frame.end_stream() { ", end" } else { "" };
    match frame {
        Frame::Data { payload, .. } => format!("DATA({s}, {} bytes{end})", payload.len()),
        Frame::Headers { end_headers, .. } => {
            let status = frame.status().map(|s| format!(", {s}")).unwrap_or_default();
            let more = if *end_headers { "" } else { ", no END_HEADERS" };
            format!("HEADERS({s}{status}{end}{more})")
        }
        Frame::Continuation { block, .. } => format!("CONTINUATION({s}, {} bytes)", block.len()),
        Frame::RstStream { code, .. } => format!("RST_STREAM({s}, {})", code::name(*code)),
        Frame::Settings { ack: true, .. } => "SETTINGS(ack)".to_string(),
        Frame::Settings { params, .. } if params.is_empty() => "SETTINGS".to_string(),
        Frame::Settings { params, .. } => {
            const NAMES: &str = "HEADER_TABLE_SIZE ENABLE_PUSH MAX_CONCURRENT_STREAMS \
                INITIAL_WINDOW_SIZE MAX_FRAME_SIZE MAX_HEADER_LIST_SIZE";
            let name = |id: u16| {
                NAMES
                    .split_whitespace()
                    .nth(usize::from(id).wrapping_sub(1))
            };
            let params: Vec<String> = params
                .iter()
                .map(|&(id, value)| match name(id) {
                    Some(name) => format!("{name}={value}"),
                    None => format!("0x{id:x}={value}"),
                })
                .collect();
            format!("SETTINGS({})", params.join(", "))
        }
        Frame::Ping { ack: true, .. } => "PING(ack)".to_string(),
        Frame::Ping { .. } => "PING".to_string(),
        Frame::GoAway {
            last_stream,
            code,
            debug,
        } => {
            let debug = if debug.is_empty() {
                String::new()
            } else {
                format!(", {:?}", String::from_utf8_lossy(debug))
            };
            format!("GOAWAY(last={last_stream}, {}{debug})", code::name(*code))
        }
        Frame::WindowUpdate { increment, .. } => format!("WINDOW_UPDATE({s}, +{increment})"),
        Frame::Other {
            kind: k,
            flags,
            payload,
            ..
        } => match *k {
            kind::PRIORITY => format!("PRIORITY({s})"),
            kind::PUSH_PROMISE => format!("PUSH_PROMISE({s})"),
            _ => format!(
                "FRAME(type=0x{k:x}, flags=0x{flags:x}, stream={s}, {} bytes)",
                payload.len()
            ),
        },
    }
}
