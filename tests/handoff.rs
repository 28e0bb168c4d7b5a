//! The listener hand-off (`winddown::http2::handoff`) at the socket level:
//! a successor process (this test binary again, running the ignored
//! `successor` entry point) takes the socket, and connections made before and
//! after the old process let go are all accepted there (what happens
//! without a hand-off, refused calls, is shown by .ci/restart.sh).
#![cfg(unix)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::time::Duration;

use winddown::http2::handoff::{self, Handoff};

const SUCCESSOR_ENV: &str = "WINDDOWN_TEST_SUCCESSOR";
const CONNECTIONS: usize = 2;

fn successor_command() -> Command {
    let mut command = Command::new(std::env::current_exe().expect("the test binary"));
    command
        .args([
            "--ignored",
            "--exact",
            "successor",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(SUCCESSOR_ENV, "1")
        // Its own test harness lines would mix with ours.
        .stdout(std::process::Stdio::null());
    command
}

/// The successor: takes the inherited listener, says it is ready, and
/// answers `CONNECTIONS` connections with its pid.
#[test]
#[ignore = "the successor process of the hand-off tests, started by them"]
fn successor() {
    if std::env::var_os(SUCCESSOR_ENV).is_none() {
        return;
    }
    let listener = handoff::inherited_listener()
        .expect("a valid inherited socket")
        .expect("LISTEN_FDS set by the predecessor");
    // Inherited as the predecessor left it (the runtimes set non-blocking).
    listener.set_nonblocking(false).expect("blocking accepts");
    handoff::notify_ready().expect("tell the predecessor");
    for _ in 0..CONNECTIONS {
        let (mut stream, _) = listener.accept().expect("accept");
        let _ = writeln!(stream, "successor {}", std::process::id());
    }
}

fn greeting(mut stream: TcpStream) -> String {
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut text = String::new();
    let _ = stream.read_to_string(&mut text);
    text
}

#[test]
fn a_successor_accepts_what_was_queued_and_what_comes_after_the_old_process_lets_go() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let handoff = Handoff::new(&listener).expect("a copy");
    // Queued in the backlog: the old process never accepts it.
    let before = TcpStream::connect(addr).expect("connect before the hand-off");
    let mut child = handoff
        .spawn(successor_command(), Duration::from_secs(30))
        .expect("the successor becomes ready");
    // The old process lets go of every descriptor it had.
    drop(listener);
    drop(handoff);
    let after = TcpStream::connect(addr).expect("not refused after the old process let go");
    let expected = format!("successor {}\n", child.id());
    assert_eq!(greeting(before), expected, "the queued connection");
    assert_eq!(greeting(after), expected, "the later connection");
    assert!(child.wait().expect("wait").success());
}

#[test]
fn a_successor_that_never_becomes_ready_is_killed_and_reported() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let handoff = Handoff::new(&listener).expect("a copy");
    // `sleep` inherits the socket but never says it is ready.
    let mut command = Command::new("sleep");
    command.arg("30");
    let error = handoff
        .spawn(command, Duration::from_millis(300))
        .expect_err("not ready in time");
    assert_eq!(error.kind(), std::io::ErrorKind::TimedOut, "{error}");
    // The old process still has its socket and can go on serving.
    let addr = listener.local_addr().expect("addr");
    let _client = TcpStream::connect(addr).expect("still listening");
    listener.set_nonblocking(false).expect("blocking");
    let (_server, _) = listener.accept().expect("the old process still accepts");
}

#[test]
fn a_successor_that_exits_before_it_is_ready_is_reported() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let handoff = Handoff::new(&listener).expect("a copy");
    let error = handoff
        .spawn(Command::new("false"), Duration::from_secs(30))
        .expect_err("exited");
    assert!(error.to_string().contains("exited"), "{error}");
}

#[test]
fn a_hand_off_called_off_before_the_successor_is_ready_kills_it() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let handoff = Handoff::new(&listener).expect("a copy");
    let pid_file = std::env::temp_dir().join(format!("winddown-callof-{}", std::process::id()));
    let _ = std::fs::remove_file(&pid_file);
    // A successor that never says it is ready: it records its pid and waits.
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg(format!("echo $$ > {}; exec sleep 30", pid_file.display()));
    let pending = handoff
        .spawn_ready(command, Duration::from_secs(30))
        .expect("started");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let pid = loop {
        if let Some(pid) = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|text| text.trim().parse::<u32>().ok())
        {
            break pid;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the successor never started"
        );
        std::thread::yield_now();
    };
    // This process stops for another reason: the pending hand-off is dropped.
    drop(pending);
    let gone = || {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map_or(true, |stat| stat.split_whitespace().nth(2) == Some("Z"))
    };
    while !gone() {
        assert!(
            std::time::Instant::now() < deadline,
            "the successor {pid} still runs"
        );
        std::thread::yield_now();
    }
    let _ = std::fs::remove_file(&pid_file);
}
