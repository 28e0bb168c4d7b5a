//! Starts the echo application (examples/support/echo.rs) in-process on a
//! runtime adapter and stops it from a background thread, so the behaviour
//! tests are written once and run on every runtime.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::mpsc;
use std::time::Duration;

use winddown::http2::{Config, Runtime, Server};
use winddown::{Report, Shutdown};

#[path = "../../examples/support/echo.rs"]
pub mod echo;

/// The runtimes the behaviour suite runs on.
#[derive(Clone, Copy, Debug)]
pub enum Rt {
    Smol,
    Tokio,
}

/// One multi-threaded tokio runtime shared by the tokio tests (like smol's
/// global executor for the smol ones).
pub fn tokio_runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a tokio runtime")
    })
}

/// Short bounds, so each scenario that waits on one finishes quickly.
pub fn test_config() -> Config {
    Config::default()
        .ping_ack_timeout(Duration::from_millis(300))
        .handshake_timeout(Duration::from_millis(300))
        .linger(Duration::from_millis(500))
        .flush_timeout(Duration::from_millis(300))
}

/// The generous upper bound within which any stop in these tests must end:
/// it proves boundedness, it is not a timing claim.
pub const BOUND: Duration = Duration::from_secs(10);

pub struct TestServer {
    pub addr: SocketAddr,
    pub shutdown: Shutdown,
    pub rt: Rt,
}

/// A stop running on a background thread.
pub struct Stopping {
    report: mpsc::Receiver<Report>,
}

impl Stopping {
    /// The report; panics if the stop has not ended within [`BOUND`].
    pub fn report(self) -> Report {
        self.report
            .recv_timeout(BOUND)
            .expect("the stop did not end within the bound")
    }

    /// The report if the stop has already ended.
    pub fn try_report(&self) -> Option<Report> {
        self.report.try_recv().ok()
    }
}

impl TestServer {
    pub fn start(rt: Rt, config: Config) -> Self {
        Self::start_on(rt, config, "127.0.0.1:0".parse().expect("an address"))
    }

    /// Starts on `addr` (e.g. the port of a server that just stopped).
    pub fn start_on(rt: Rt, config: Config, addr: SocketAddr) -> Self {
        // The server's log lines show up in a failing test's output.
        echo::init_logging();
        let shutdown = Shutdown::new();
        let addr = match rt {
            Rt::Smol => {
                let listener = smol::block_on(winddown_smol::TcpListener::bind(addr))
                    .expect("bind a loopback port");
                let addr = listener.local_addr().expect("local address");
                let runtime = winddown_smol::SmolRuntime::global();
                let echo =
                    echo::Echo::new(runtime.clone()).with_readiness(shutdown.not_ready_token());
                let server = Server::new(&shutdown, runtime, config, echo);
                smol::spawn(server.serve(listener)).detach();
                addr
            }
            Rt::Tokio => {
                let tokio = tokio_runtime();
                let listener = tokio
                    .block_on(winddown_tokio::TcpListener::bind(addr))
                    .expect("bind a loopback port");
                let addr = listener.local_addr().expect("local address");
                let runtime = winddown_tokio::TokioRuntime::with_handle(tokio.handle().clone());
                let echo =
                    echo::Echo::new(runtime.clone()).with_readiness(shutdown.not_ready_token());
                let server = Server::new(&shutdown, runtime, config, echo);
                tokio.spawn(server.serve(listener));
                addr
            }
        };
        Self { addr, shutdown, rt }
    }

    fn in_background(
        &self,
        stop: impl FnOnce(Shutdown, Rt) -> Report + Send + 'static,
    ) -> Stopping {
        let (sender, report) = mpsc::channel();
        let shutdown = self.shutdown.clone();
        let rt = self.rt;
        std::thread::spawn(move || {
            let _ = sender.send(stop(shutdown, rt));
        });
        Stopping { report }
    }

    /// Starts a graceful stop bounded by `deadline` (on the runtime's timer).
    pub fn graceful_stop(&self, deadline: Duration) -> Stopping {
        self.in_background(move |shutdown, rt| match rt {
            Rt::Smol => {
                let timer = winddown_smol::SmolRuntime::global().sleep(deadline);
                smol::block_on(shutdown.graceful_stop_with_deadline(timer))
            }
            Rt::Tokio => {
                let tokio = tokio_runtime();
                let timer = winddown_tokio::TokioRuntime::with_handle(tokio.handle().clone())
                    .sleep(deadline);
                tokio.block_on(shutdown.graceful_stop_with_deadline(timer))
            }
        })
    }

    /// Starts a graceful stop with a lame-duck phase of `lame_duck` first.
    pub fn graceful_stop_with_lame_duck(
        &self,
        lame_duck: Duration,
        deadline: Duration,
    ) -> Stopping {
        self.in_background(move |shutdown, rt| match rt {
            Rt::Smol => {
                let runtime = winddown_smol::SmolRuntime::global();
                let (lame_duck, deadline) = (runtime.sleep(lame_duck), runtime.sleep(deadline));
                smol::block_on(shutdown.graceful_stop_with_lame_duck(lame_duck, deadline))
            }
            Rt::Tokio => {
                let tokio = tokio_runtime();
                let runtime = winddown_tokio::TokioRuntime::with_handle(tokio.handle().clone());
                let (lame_duck, deadline) = (runtime.sleep(lame_duck), runtime.sleep(deadline));
                tokio.block_on(shutdown.graceful_stop_with_lame_duck(lame_duck, deadline))
            }
        })
    }

    /// Starts a hard stop.
    pub fn stop(&self) -> Stopping {
        self.in_background(|shutdown, rt| match rt {
            Rt::Smol => smol::block_on(shutdown.stop()),
            Rt::Tokio => tokio_runtime().block_on(shutdown.stop()),
        })
    }
}

/// Instantiates each listed behaviour test once per runtime, from one
/// source, so a behaviour cannot differ between runtimes without a red test:
/// `mod smol { #[test] fn name() { super::name(Rt::Smol) } }`, and `mod tokio`.
#[macro_export]
macro_rules! on_every_runtime {
    ($($name:ident),* $(,)?) => {
        mod smol {
            $(#[test] fn $name() { super::$name($crate::server::Rt::Smol) })*
        }
        mod tokio {
            $(#[test] fn $name() { super::$name($crate::server::Rt::Tokio) })*
        }
    };
}
