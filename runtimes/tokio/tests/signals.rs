//! `stop_on_signals` with real signals, sent by this test to its own process
//! (a test binary of its own, so no other test meets them).

use std::panic::{self, AssertUnwindSafe};
use std::process::Command;
use std::sync::mpsc;
use std::time::Duration;

/// On a runtime without timers the stop's grace timer panics inside the stop
/// task; the caller must get that panic, not wait forever with SIGTERM caught
/// by handlers nothing reads any more.
#[test]
fn a_sigterm_on_a_runtime_without_timers_panics_in_the_caller() {
    let (sent, outcome) = mpsc::channel();
    std::thread::spawn(move || {
        let stopped = panic::catch_unwind(AssertUnwindSafe(|| {
            let tokio = tokio::runtime::Builder::new_current_thread()
                .enable_io()
                .build()
                .expect("a runtime");
            tokio.block_on(async {
                let shutdown = winddown::Shutdown::new();
                let stopped = winddown_tokio::stop_on_signals(&shutdown, Duration::from_secs(10))
                    .expect("signal handlers");
                let kill = Command::new("kill")
                    .args(["-TERM", &std::process::id().to_string()])
                    .status();
                assert!(kill.is_ok_and(|status| status.success()), "kill -TERM");
                stopped.await
            })
        }));
        let _ = sent.send(stopped.map_err(|panic| {
            let text = panic.downcast_ref::<&str>().map(|s| s.to_string());
            text.or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default()
        }));
    });
    let outcome = outcome
        .recv_timeout(Duration::from_secs(10))
        .expect("stop_on_signals neither resolved nor panicked: it hangs");
    let panicked = outcome.expect_err("a stop without timers cannot be bounded");
    assert!(panicked.contains("timers are disabled"), "{panicked}");
}
