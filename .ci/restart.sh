#!/usr/bin/env bash
# Zero-downtime restart (winddown::http2::handoff) with a stock gRPC client:
# .ci/grpc_loop.py (grpcio) calls examples/echo_server in a loop, at one
# address, across restarts.
#
# Checks, on each runtime (smol, tokio):
#   handoff: SIGHUP to the server: it starts its successor with the listening
#     socket inherited (LISTEN_FDS), waits until it serves, then stops
#     accepting and drains. The client goes on calling. Asserts: zero failed
#     calls; the old process exits 0 with a graceful report (reset 0, forced
#     0); the successor answers calls; the two servers' completed streams add
#     up to the client's OK calls (nothing lost, nothing twice).
# And once, for contrast (printed, not asserted): the same restart without a
#   hand-off (SIGTERM, then a new process binds the port): the calls the
#   client makes while the port is closed fail.
#
# Prints PASS/FAIL per check and `restart: N passed, N failed`.
set -euo pipefail
cd "$(dirname "$0")/.."

NAME=restart CHECKS=2
# shellcheck source=.ci/lib.sh
source .ci/lib.sh
grpcio_venv
cargo build --release --example echo_server -q || die "cargo build --release --example echo_server failed"
SERVER=${CARGO_TARGET_DIR:-target}/release/examples/echo_server


# restart NAME MODE: MODE handoff or stop-start. Sets ok, failed, codes, and
# old_report/new_report.
restart() {
  local name=$1 mode=$2 s=$tmp/$1 port old new c_pid
  : >"$s.out" && : >"$s.client"
  RUST_LOG=info "$SERVER" --runtime "$RUNTIME" --listen 127.0.0.1:0 --grace 10s >"$s.out" 2>"$s.err" &
  old=$! && pids+=("$old")
  wait_line "$s.out" '^listening on ' 50 "$old" || { why "the server did not start" "$s.out" "$s.err"; return 1; }
  port=$(head -n 1 "$s.out") && port=${port##*:}
  "$PY" .ci/grpc_loop.py "127.0.0.1:$port" >"$s.client" 2>"$s.client.err" &
  c_pid=$! && pids+=("$c_pid")
  files=("$s.client" "$s.client.err" "$s.out" "$s.err")
  wait_line "$s.client" '^flowing' 100 "$c_pid" && progress "$s.client" ||
    { why "the client is not calling" "${files[@]}"; return 1; }
  if [[ $mode == handoff ]]; then
    kill -HUP "$old"
    rc=0 && { wait_pid "$old" 15 || rc=$?; }
    ((rc == 0)) || { why "the old server exited $rc after SIGHUP (124: still running after 15 s)" "${files[@]}"; return 1; }
    new=$(sed -n 's/.*hand-off: successor \([0-9][0-9]*\) is ready.*/\1/p' "$s.err")
    [[ -n $new ]] && pids+=("$new") || { why "the old server logged no ready successor" "${files[@]}"; return 1; }
  else
    stop_pid "$old"
    ((rc == 0)) || { why "the old server exited $rc on SIGTERM" "${files[@]}"; return 1; }
    "$SERVER" --runtime "$RUNTIME" --listen "127.0.0.1:$port" --grace 10s >>"$s.out" 2>>"$s.err" &
    new=$! && pids+=("$new")
  fi
  old_report=$(grep '^shutdown: ' "$s.out" | head -n 1)
  progress "$s.client" && progress "$s.client" || { why "no calls answered after the restart" "${files[@]}"; return 1; }
  stop_pid "$c_pid"
  if [[ $mode == handoff ]]; then
    # Not our child (the old server started it): no exit status to wait
    # for; it must be gone within 15 s, and its report says how it ended.
    kill -TERM "$new"
    wait_gone "$new" 15 || { why "the successor still runs 15 s after SIGTERM" "${files[@]}"; return 1; }
  else
    stop_pid "$new"
    ((rc == 0)) || { why "the new server exited $rc on SIGTERM" "${files[@]}"; return 1; }
  fi
  new_report=$(grep '^shutdown: ' "$s.out" | tail -n 1)
  ok=$(get "$s.client" result ok) failed=$(get "$s.client" result failed)
  codes=$(awk '$1 == "error" { print $2 "x" substr($3, 3) }' "$s.client" | paste -sd, -)
  echo "  client: ok=$ok failed=$failed ${codes:+($codes)}"
  echo "  old:    $old_report"
  echo "  new:    $new_report"
  [[ -n $ok && -n $failed ]] || { why "the client printed no result" "${files[@]}"; return 1; }
}

check_handoff() {
  restart "$RUNTIME.handoff" handoff || return 1
  ((failed == 0)) || { why "$failed calls failed across the hand-off" "${files[@]}"; return 1; }
  [[ $old_report == "shutdown: graceful"* && $(rep "$old_report" reset) == 0 && $(rep "$old_report" forced) == 0 ]] ||
    { why "the old server's report is not graceful with reset 0, forced 0" "${files[@]}"; return 1; }
  local a b
  a=$(rep "$old_report" completed) b=$(rep "$new_report" completed)
  [[ $new_report == "shutdown: graceful"* ]] || { why "the successor's last line is not a graceful report" "${files[@]}"; return 1; }
  ((b > 0)) || { why "the successor answered no call" "${files[@]}"; return 1; }
  ((a + b == ok)) || { why "servers completed $a + $b, the client got $ok OK replies" "${files[@]}"; return 1; }
  echo "  completed $a (old) + $b (successor) == $ok OK calls"
}

for RUNTIME in smol tokio; do
  tally "handoff ($RUNTIME)" check_handoff
done
keep_passed=$passed keep_failed=$failed
RUNTIME=tokio
echo "contrast, without a hand-off (SIGTERM, then a new process binds the port; not asserted):"
restart contrast stop-start || true
passed=$keep_passed failed=$keep_failed
echo "restart: $passed passed, $failed failed"
((failed == 0))
