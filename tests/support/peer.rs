//! A scripted HTTP/2 server working frame by frame, for the client's tests:
//! each connection it accepts is handed to the test's script, which decides
//! exactly which frames the client sees (a GOAWAY with a chosen
//! last-stream-id, a REFUSED_STREAM, a dropped connection).
#![allow(dead_code)]

use std::io::{self, Read};
use std::net::{SocketAddr, TcpListener};
use std::thread::JoinHandle;

use crate::frames::{flag, kind, Frame, FrameClient, PREFACE};

/// What one connection does, frame by frame.
pub type Script = Box<dyn FnOnce(&mut FrameClient) -> io::Result<()> + Send>;

/// A listener whose connections are each served by a script, on a thread of
/// its own (so one connection's script may wait for another's).
pub struct ScriptedServer {
    pub addr: SocketAddr,
    thread: JoinHandle<io::Result<()>>,
}

impl ScriptedServer {
    /// Accepts `scripts.len()` connections; the n-th runs the n-th script
    /// after its preface has been read and the server's SETTINGS sent.
    pub fn start(scripts: Vec<Script>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let addr = listener.local_addr().expect("local address");
        let thread = std::thread::spawn(move || {
            let mut connections = Vec::new();
            let mut listener = Some(listener);
            let last = scripts.len().saturating_sub(1);
            for (n, script) in scripts.into_iter().enumerate() {
                let accepting = listener.as_ref().expect("open until the last accept");
                let (stream, _) = accepting.accept()?;
                if n == last {
                    // Nothing more is accepted: connects from now on are
                    // refused. Closed before the last script runs, so a
                    // connect it provokes (a retry) cannot land in the
                    // backlog of a listener about to close, which would
                    // reset it instead of refusing it.
                    listener = None;
                }
                connections.push(std::thread::spawn(move || {
                    let mut peer = FrameClient::from_stream(stream)?;
                    let mut preface = [0u8; PREFACE.len()];
                    let mut socket = peer.socket();
                    socket.read_exact(&mut preface)?;
                    if preface != PREFACE {
                        return Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            "not an HTTP/2 preface",
                        ));
                    }
                    peer.send_settings(&[])?;
                    script(&mut peer)
                }));
            }
            drop(listener);
            for connection in connections {
                connection
                    .join()
                    .map_err(|_| io::Error::other("a script panicked"))??;
            }
            Ok(())
        });
        Self { addr, thread }
    }

    /// Waits for every script to have run; panics with the script's error.
    pub fn join(self) {
        match self.thread.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => panic!("scripted server: {e}"),
            Err(_) => panic!("scripted server panicked"),
        }
    }
}

/// Reads a whole request (HEADERS, then DATA up to END_STREAM); returns its
/// stream id and body.
pub fn read_request(peer: &mut FrameClient) -> io::Result<(u32, Vec<u8>)> {
    let frames = peer.read_until(true, |f| matches!(f, Frame::Headers { .. }))?;
    let headers = frames
        .last()
        .expect("read_until returns the matching frame");
    let stream = headers.stream();
    if headers.end_stream() {
        return Ok((stream, Vec::new()));
    }
    let frames = peer.read_until(true, |f| f.stream() == stream && f.end_stream())?;
    let body = frames
        .iter()
        .filter_map(|f| match f {
            Frame::Data {
                stream: s, payload, ..
            } if *s == stream => Some(payload.clone()),
            _ => None,
        })
        .flatten()
        .collect();
    Ok((stream, body))
}

/// Answers `stream` with 200 and `body`.
pub fn respond(peer: &mut FrameClient, stream: u32, body: &[u8]) -> io::Result<()> {
    // 0x88: `:status: 200`, index 8 of HPACK's static table.
    peer.send_frame(kind::HEADERS, flag::END_HEADERS, stream, &[0x88])?;
    peer.send_data(stream, body, true)
}

/// Reads whatever the client sends until it closes (or the read times out).
pub fn drain(peer: &mut FrameClient) -> io::Result<()> {
    peer.collect_until_close(true).map(|_| ())
}
