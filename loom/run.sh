#!/usr/bin/env bash
# Runs the loom models against the real types. `--cfg winddown_loom` swaps our
# atomics and locks for loom's; `--cfg loom` does the same inside event-listener
# (its `loom` feature). Only this crate is built, so no tokio is in the graph.
# A separate target dir keeps these flags from invalidating the normal build.
set -euo pipefail
cd "$(dirname "$0")/.."
export RUSTFLAGS="--cfg loom --cfg winddown_loom ${RUSTFLAGS:-}"
export LOOM_MAX_PREEMPTIONS="${LOOM_MAX_PREEMPTIONS:-3}"
exec cargo test -p winddown-loom --release --target-dir target/loom "$@"
