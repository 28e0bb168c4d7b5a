//! Per-thread shard selection, shared by the sharded primitives.

use std::cell::Cell;

/// Shards: a few per core, so threads rarely share one, and a power of two.
pub(crate) fn shard_count() -> usize {
    if cfg!(winddown_loom) {
        return 2;
    }
    let cores = std::thread::available_parallelism().map_or(4, |n| n.get());
    (cores * 4).next_power_of_two().clamp(4, 64)
}

/// A per-thread shard index, assigned round-robin the first time a thread
/// asks (a plain `std` atomic: it only spreads load, loom need not see it).
#[cfg(not(winddown_loom))]
#[inline]
pub(crate) fn shard_hint() -> usize {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    thread_local! {
        static HINT: Cell<usize> = const { Cell::new(usize::MAX) };
    }
    HINT.with(|hint| {
        let assigned = hint.get();
        if assigned != usize::MAX {
            return assigned;
        }
        let assigned = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % 4096;
        hint.set(assigned);
        assigned
    })
}

/// Under loom, every call moves to the next shard (per loom thread, so each
/// execution is deterministic): models then exercise the cross-shard paths.
#[cfg(winddown_loom)]
pub(crate) fn shard_hint() -> usize {
    loom::thread_local! {
        static CALLS: Cell<usize> = Cell::new(0);
    }
    CALLS.with(|calls| {
        let n = calls.get();
        calls.set(n + 1);
        n
    })
}
