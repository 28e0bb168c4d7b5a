//! Client-side observations shared by the behaviour suites: connect, and
//! read what the server sent (GOAWAYs, responses, resets) out of frames.
#![allow(dead_code)]

use std::io::Read;
use std::net::TcpStream;

use crate::frames::{self, Frame, FrameClient};
use crate::server::{TestServer, BOUND};

/// Connects and waits for the server's SETTINGS, which proves the server has
/// accepted the connection (so a stop that starts next cannot race the
/// accept), and ACKs them.
pub fn connect(server: &TestServer) -> FrameClient {
    let mut client = FrameClient::connect(server.addr).expect("connect");
    client.handshake().expect("send preface");
    client
        .read_until(false, |f| matches!(f, Frame::Settings { ack: false, .. }))
        .expect("the server's SETTINGS");
    client
}

pub fn goaways(frames: &[Frame]) -> Vec<(u32, u32)> {
    frames
        .iter()
        .filter_map(|f| match f {
            Frame::GoAway {
                last_stream, code, ..
            } => Some((*last_stream, *code)),
            _ => None,
        })
        .collect()
}

/// Asserts a drain's two GOAWAYs with no stream processed: the heads-up
/// (last stream 2^31-1), then the final one (last stream 0), both NO_ERROR.
pub fn assert_two_phase_goaways(frames: &[Frame]) {
    assert_eq!(
        goaways(frames),
        [
            (frames::MAX_STREAM_ID, frames::code::NO_ERROR),
            (0, frames::code::NO_ERROR)
        ],
        "{}",
        frames::describe(frames)
    );
}

/// The debug data of each GOAWAY, as text (the drain's reason).
pub fn goaway_reasons(frames: &[Frame]) -> Vec<String> {
    frames
        .iter()
        .filter_map(|f| match f {
            Frame::GoAway { debug, .. } => Some(String::from_utf8_lossy(debug).into_owned()),
            _ => None,
        })
        .collect()
}

pub fn is_shutdown_ping(frame: &Frame) -> bool {
    matches!(frame, Frame::Ping { ack: false, .. })
}

pub fn ping_payload(frames: &[Frame]) -> [u8; 8] {
    frames
        .iter()
        .find_map(|f| match f {
            Frame::Ping {
                ack: false,
                payload,
            } => Some(*payload),
            _ => None,
        })
        .expect("a PING")
}

/// The status and body a stream got, and whether it ended cleanly.
pub fn response(frames: &[Frame], stream: u32) -> (Option<u16>, Vec<u8>, bool) {
    let mut status = None;
    let mut body = Vec::new();
    let mut ended = false;
    for frame in frames.iter().filter(|f| f.stream() == stream) {
        match frame {
            Frame::Headers { end_stream, .. } => {
                status = status.or(frame.status());
                ended |= end_stream;
            }
            Frame::Data {
                payload,
                end_stream,
                ..
            } => {
                body.extend_from_slice(payload);
                ended |= end_stream;
            }
            _ => {}
        }
    }
    (status, body, ended)
}

pub fn resets(frames: &[Frame], stream: u32) -> Vec<u32> {
    frames
        .iter()
        .filter_map(|f| match f {
            Frame::RstStream { stream: s, code } if *s == stream => Some(*code),
            _ => None,
        })
        .collect()
}

/// A second, well-behaved client is served normally.
pub fn assert_serves_others(server: &TestServer) {
    let mut client = connect(server);
    client.send_request(1, "POST", "/echo", &[], false).unwrap();
    client.send_data(1, b"still serving", true).unwrap();
    let frames = client
        .read_until(true, |f| f.stream() == 1 && f.end_stream())
        .expect("an answer from the server");
    let (status, body, _) = response(&frames, 1);
    assert_eq!(status, Some(200), "{}", frames::describe(&frames));
    assert_eq!(body, b"still serving");
}

/// Reads until the server closes the socket; panics on a read timeout.
pub fn assert_closed_by_server(socket: &mut TcpStream) {
    socket.set_read_timeout(Some(BOUND)).unwrap();
    let mut buf = [0u8; 1024];
    loop {
        match socket.read(&mut buf) {
            Ok(0) => return,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return,
            Err(e) => panic!("the server did not close the connection: {e}"),
        }
    }
}

/// Sends a PING and reads until its ACK: the server has then read every frame
/// sent before it (TCP keeps order, and h2 handles frames in order), so a
/// request sent before is known to the server, not still in its socket.
pub fn sync(client: &mut FrameClient) {
    client.send_ping(*b"in sync!").unwrap();
    client
        .read_until(
            false,
            |f| matches!(f, Frame::Ping { ack: true, payload } if payload == b"in sync!"),
        )
        .unwrap();
}

/// A client whose stream 1 (`GET path`) has started streaming its response.
pub fn streaming(server: &TestServer, path: &str) -> FrameClient {
    let mut client = connect(server);
    client.send_request(1, "GET", path, &[], true).unwrap();
    client
        .read_until(true, |f| matches!(f, Frame::Data { .. }))
        .unwrap();
    client
}
