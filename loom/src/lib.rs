//! Loom models of winddown live in `tests/`; this crate has no code of its own.
