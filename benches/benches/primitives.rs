//! Criterion benchmarks of the core primitives against the floor (bare
//! atomics) and their peers, in the same run, on one thread and with a second
//! thread hammering the same object. A counting global allocator reports
//! allocations per operation.
//!
//! Run: `cargo bench -p winddown-benches --bench primitives`
//! (add `-- --quick` for a fast pass). The allocation table is printed last.

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::HashMap;
use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::thread::JoinHandle;

use criterion::{measurement::WallTime, BenchmarkGroup, Criterion};

// ---------------------------------------------------------------- allocations

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

static ALLOC_TABLE: Mutex<Vec<(String, f64)>> = Mutex::new(Vec::new());

/// Allocations per call of `op`, measured on this thread with nothing else running.
fn record_allocations(name: &str, op: &mut dyn FnMut()) {
    const N: usize = 10_000;
    op(); // warm up lazily-allocated state
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    for _ in 0..N {
        op();
    }
    let after = ALLOCATIONS.load(Ordering::Relaxed);
    let per_op = (after - before) as f64 / N as f64;
    ALLOC_TABLE.lock().unwrap().push((name.to_string(), per_op));
}

// ------------------------------------------------------------------- harness

/// A second thread running `op` in a loop on the same object until dropped.
struct Contender {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Contender {
    fn start(op: impl Fn() + Send + 'static) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let started = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = stop.clone();
            let started = started.clone();
            std::thread::spawn(move || {
                started.store(true, Ordering::Release);
                while !stop.load(Ordering::Relaxed) {
                    for _ in 0..64 {
                        op();
                    }
                }
            })
        };
        while !started.load(Ordering::Acquire) {
            std::hint::spin_loop();
        }
        Self {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Contender {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Benchmarks `op` alone, then with a contender on the same object, and
/// records its allocations.
fn bench_op<F>(
    group_one: &mut BenchmarkGroup<'_, WallTime>,
    two: &mut Vec<(String, F)>,
    name: &str,
    op: F,
) where
    F: Fn() + Clone + Send + 'static,
{
    group_one.bench_function(name, |b| b.iter(&op));
    record_allocations(name, &mut || op());
    two.push((name.to_string(), op));
}

fn run_two_threads<F>(c: &mut Criterion, group: &str, ops: Vec<(String, F)>)
where
    F: Fn() + Clone + Send + 'static,
{
    let mut g = c.benchmark_group(format!("{group}/two_threads"));
    for (name, op) in ops {
        let _contender = Contender::start(op.clone());
        g.bench_function(&name, |b| b.iter(&op));
    }
    g.finish();
}

/// Runs one benchmark group: each op alone (`GROUP/one_thread`, with its
/// allocations recorded), then each with a contender (`GROUP/two_threads`).
fn run_group(c: &mut Criterion, group: &str, ops: &[(&str, Op)]) {
    let mut one = c.benchmark_group(format!("{group}/one_thread"));
    let mut two = Vec::new();
    for (name, o) in ops {
        bench_op(&mut one, &mut two, name, call(o));
    }
    one.finish();
    run_two_threads(c, group, two);
}

type Op = Arc<dyn Fn() + Send + Sync>;

fn op(f: impl Fn() + Send + Sync + 'static) -> Op {
    Arc::new(f)
}

fn call(op: &Op) -> impl Fn() + Clone + Send + 'static {
    let op = op.clone();
    move || op()
}

fn poll_ready<F: Future>(fut: F) -> bool {
    let fut = pin!(fut);
    matches!(
        fut.poll(&mut Context::from_waker(Waker::noop())),
        Poll::Ready(_)
    )
}

// ----------------------------------------------------------------- benchmarks

fn guards(c: &mut Criterion) {
    let floor = Arc::new(AtomicUsize::new(0));
    let group = winddown::WaitGroup::new();
    let tracker = tokio_util::task::TaskTracker::new();
    let crossbeam = crossbeam_utils::sync::WaitGroup::new();
    let swansong = swansong::Swansong::new();
    let async_shutdown = async_shutdown::ShutdownManager::<()>::new();

    let ops: Vec<(&str, Op)> = vec![
        (
            "atomic fetch_add+fetch_sub (floor)",
            op(move || {
                black_box(&floor).fetch_add(1, Ordering::AcqRel);
                black_box(&floor).fetch_sub(1, Ordering::AcqRel);
            }),
        ),
        (
            "winddown WaitGroup::add+drop",
            op(move || drop(black_box(group.add()))),
        ),
        (
            "tokio-util TaskTracker::token+drop",
            op(move || drop(black_box(tracker.token()))),
        ),
        (
            "crossbeam WaitGroup clone+drop",
            op(move || drop(black_box(crossbeam.clone()))),
        ),
        (
            "swansong guard+drop",
            op(move || drop(black_box(swansong.guard()))),
        ),
        (
            "async-shutdown delay token+drop",
            op(move || drop(black_box(async_shutdown.delay_shutdown_token()))),
        ),
    ];
    run_group(c, "guard create+drop", &ops);
}

fn drain_checks(c: &mut Criterion) {
    let floor = Arc::new(AtomicBool::new(false));
    let token = winddown::DrainToken::new();
    let cancel = tokio_util::sync::CancellationToken::new();
    let swansong = swansong::Swansong::new();
    let async_shutdown = async_shutdown::ShutdownManager::<()>::new();

    let ops: Vec<(&str, Op)> = vec![
        (
            "atomic load (floor)",
            op(move || {
                black_box(black_box(&floor).load(Ordering::Acquire));
            }),
        ),
        (
            "winddown DrainToken::is_fired",
            op(move || {
                black_box(black_box(&token).is_fired());
            }),
        ),
        (
            "tokio-util CancellationToken::is_cancelled",
            op(move || {
                black_box(black_box(&cancel).is_cancelled());
            }),
        ),
        (
            "swansong is_shutting_down",
            op(move || {
                black_box(black_box(&swansong).state().is_shutting_down());
            }),
        ),
        (
            "async-shutdown is_shutdown_triggered",
            op(move || {
                black_box(black_box(&async_shutdown).is_shutdown_triggered());
            }),
        ),
    ];
    run_group(c, "drain check", &ops);
}

fn waits(c: &mut Criterion) {
    let group = winddown::WaitGroup::new();
    let tracker = tokio_util::task::TaskTracker::new();
    tracker.close();
    let token = winddown::DrainToken::new();
    token.fire();
    let cancel = tokio_util::sync::CancellationToken::new();
    cancel.cancel();

    let ops: Vec<(&str, Op)> = vec![
        (
            "winddown WaitGroup::wait on zero",
            op(move || {
                assert!(poll_ready(black_box(&group).wait()));
            }),
        ),
        (
            "tokio-util TaskTracker::wait (closed, empty)",
            op(move || {
                assert!(poll_ready(black_box(&tracker).wait()));
            }),
        ),
        (
            "winddown DrainToken::wait (fired)",
            op(move || {
                assert!(poll_ready(black_box(&token).wait()));
            }),
        ),
        (
            "tokio-util CancellationToken::cancelled (cancelled)",
            op(move || {
                assert!(poll_ready(black_box(&cancel).cancelled()));
            }),
        ),
    ];
    run_group(c, "ready wait", &ops);
}

fn registry(c: &mut Criterion) {
    let registry = winddown::Registry::<u64>::new();
    // What grpc-go does: one map behind one mutex.
    let map = Arc::new(Mutex::new(HashMap::<u64, u64>::new()));
    let next = Arc::new(AtomicUsize::new(0));

    let ops: Vec<(&str, Op)> = vec![
        (
            "winddown Registry::insert+drop",
            op(move || drop(black_box(registry.insert(7)))),
        ),
        (
            "Mutex<HashMap> insert+remove (grpc-go's conns)",
            op(move || {
                let key = next.fetch_add(1, Ordering::Relaxed) as u64;
                black_box(&map).lock().unwrap().insert(key, 7);
                black_box(&map).lock().unwrap().remove(&key);
            }),
        ),
    ];
    run_group(c, "registry insert+remove", &ops);
}

fn stats(c: &mut Criterion) {
    let stats = Arc::new(winddown::Stats::default());
    // What a server without shards would keep: one counter every thread adds to.
    let shared = Arc::new(AtomicU64::new(0));
    let ops: Vec<(&str, Op)> = vec![
        (
            "winddown Stats::stream_completed",
            op(move || black_box(&stats).stream_completed()),
        ),
        (
            "one shared AtomicU64 fetch_add",
            op(move || {
                black_box(&shared).fetch_add(1, Ordering::Relaxed);
            }),
        ),
    ];
    run_group(c, "stats count", &ops);
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    guards(&mut c);
    drain_checks(&mut c);
    waits(&mut c);
    registry(&mut c);
    stats(&mut c);
    c.final_summary();

    println!("\nallocations per operation (one thread, 10,000 calls):");
    for (name, per_op) in ALLOC_TABLE.lock().unwrap().iter() {
        println!("  {name:<55} {per_op:>6.2}");
    }
}
