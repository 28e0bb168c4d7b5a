//! Benchmarks live in `benches/`. This library holds what the raw-frame
//! binaries share: [`frames`], the few HTTP/2 frames a drain exchanges,
//! written and parsed by hand (no h2) so that neither the lean client nor the
//! floor server does more work than the protocol needs.

pub mod frames {
    //! HTTP/2 frame headers (RFC 9113 §4.1) and the frames of a drain.
    //!
    //! ```
    //! use winddown_benches::frames::{self, Frame, GOAWAY, MAX_STREAM_ID};
    //!
    //! let mut out = Vec::new();
    //! frames::goaway(&mut out, MAX_STREAM_ID);
    //! let (frame, used) = Frame::parse(&out).unwrap();
    //! assert_eq!((frame.ty, used), (GOAWAY, out.len()));
    //! assert_eq!(frame.goaway_last_stream(), MAX_STREAM_ID);
    //! ```

    /// What a client sends before its first frame.
    pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    /// Frame type DATA.
    pub const DATA: u8 = 0x0;
    /// Frame type HEADERS.
    pub const HEADERS: u8 = 0x1;
    /// Frame type RST_STREAM.
    pub const RST_STREAM: u8 = 0x3;
    /// Frame type SETTINGS.
    pub const SETTINGS: u8 = 0x4;
    /// Frame type PING.
    pub const PING: u8 = 0x6;
    /// Frame type GOAWAY.
    pub const GOAWAY: u8 = 0x7;
    /// The ACK flag of SETTINGS and PING.
    pub const ACK: u8 = 0x1;
    /// The END_STREAM flag of HEADERS and DATA.
    pub const END_STREAM: u8 = 0x1;
    /// The END_HEADERS flag of HEADERS.
    pub const END_HEADERS: u8 = 0x4;
    /// The last-stream-id of the first, "heads-up" GOAWAY.
    pub const MAX_STREAM_ID: u32 = (1 << 31) - 1;

    /// Appends a frame header (length, type, flags, stream).
    ///
    /// ```
    /// let mut out = Vec::new();
    /// winddown_benches::frames::header(&mut out, 0, winddown_benches::frames::SETTINGS, 0, 0);
    /// assert_eq!(out, [0, 0, 0, 4, 0, 0, 0, 0, 0]);
    /// ```
    pub fn header(out: &mut Vec<u8>, len: usize, ty: u8, flags: u8, stream: u32) {
        let len = (len as u32).to_be_bytes();
        out.extend_from_slice(&len[1..]);
        out.extend_from_slice(&[ty, flags]);
        out.extend_from_slice(&stream.to_be_bytes());
    }

    /// Appends a GOAWAY (NO_ERROR) naming `last_stream`.
    ///
    /// ```
    /// let mut out = Vec::new();
    /// winddown_benches::frames::goaway(&mut out, 0);
    /// assert_eq!(out.len(), 9 + 8);
    /// ```
    pub fn goaway(out: &mut Vec<u8>, last_stream: u32) {
        header(out, 8, GOAWAY, 0, 0);
        out.extend_from_slice(&(last_stream & MAX_STREAM_ID).to_be_bytes());
        out.extend_from_slice(&0u32.to_be_bytes());
    }

    /// Appends a PING, or its ACK, carrying `opaque`.
    ///
    /// ```
    /// let mut out = Vec::new();
    /// winddown_benches::frames::ping(&mut out, 0, *b"drain-me");
    /// assert_eq!(&out[9..], b"drain-me");
    /// ```
    pub fn ping(out: &mut Vec<u8>, flags: u8, opaque: [u8; 8]) {
        header(out, 8, PING, flags, 0);
        out.extend_from_slice(&opaque);
    }

    /// One frame's header and the first bytes of its payload (all a drain
    /// looks at).
    ///
    /// ```
    /// use winddown_benches::frames::{self, Frame, PING};
    /// let mut out = Vec::new();
    /// frames::ping(&mut out, frames::ACK, *b"12345678");
    /// let (frame, _) = Frame::parse(&out).unwrap();
    /// assert!(frame.ty == PING && frame.is_ack() && &frame.head == b"12345678");
    /// ```
    #[derive(Clone, Copy, Debug)]
    pub struct Frame {
        /// The frame's type.
        pub ty: u8,
        /// Its flags.
        pub flags: u8,
        /// Its stream (the reserved bit cleared).
        pub stream: u32,
        /// The first 8 bytes of its payload, zero-padded.
        pub head: [u8; 8],
    }

    impl Frame {
        /// The first whole frame in `buf` and the bytes it takes; `None`
        /// while it is incomplete.
        ///
        /// ```
        /// assert!(winddown_benches::frames::Frame::parse(&[0, 0, 8]).is_none());
        /// ```
        pub fn parse(buf: &[u8]) -> Option<(Frame, usize)> {
            let h = buf.get(..9)?;
            let len = u32::from_be_bytes([0, h[0], h[1], h[2]]) as usize;
            let payload = buf.get(9..9 + len)?;
            let mut head = [0u8; 8];
            let n = len.min(8);
            head[..n].copy_from_slice(&payload[..n]);
            let stream = u32::from_be_bytes([h[5], h[6], h[7], h[8]]) & MAX_STREAM_ID;
            let frame = Frame {
                ty: h[3],
                flags: h[4],
                stream,
                head,
            };
            Some((frame, 9 + len))
        }

        /// Whether the ACK flag is set.
        ///
        /// ```
        /// let mut out = Vec::new();
        /// winddown_benches::frames::header(&mut out, 0, 4, 1, 0);
        /// assert!(winddown_benches::frames::Frame::parse(&out).unwrap().0.is_ack());
        /// ```
        pub fn is_ack(&self) -> bool {
            self.flags & ACK != 0
        }

        /// A GOAWAY's last-stream-id.
        ///
        /// ```
        /// let mut out = Vec::new();
        /// winddown_benches::frames::goaway(&mut out, 7);
        /// assert_eq!(winddown_benches::frames::Frame::parse(&out).unwrap().0.goaway_last_stream(), 7);
        /// ```
        pub fn goaway_last_stream(&self) -> u32 {
            u32::from_be_bytes([self.head[0], self.head[1], self.head[2], self.head[3]])
                & MAX_STREAM_ID
        }
    }
}
