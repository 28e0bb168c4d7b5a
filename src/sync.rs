//! The synchronisation building blocks every primitive uses, from `std`
//! normally and from loom under `--cfg winddown_loom`, so the loom models in
//! `loom/tests/` drive the real types rather than copies of them.

#[cfg(not(winddown_loom))]
pub(crate) use std::sync::{
    atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
    Arc, Mutex, MutexGuard,
};

#[cfg(winddown_loom)]
pub(crate) use loom::sync::{
    atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
    Arc, Mutex, MutexGuard,
};

/// Locks `mutex`, ignoring poisoning.
///
/// No critical section in this crate runs user code or can panic halfway
/// through an update, so a poisoned lock still guards consistent data.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
