#!/usr/bin/env bash
# Accept errors: examples/echo_server run out of file descriptors. On each
# runtime (smol, tokio), the server runs under `ulimit -n $FD_LIMIT` and
# .ci/fd_exhaustion.py (Python 3 stdlib only):
#   1. opens $CONNS TCP connections (more than the limit; the kernel completes
#      them from the listen backlog) and sends the HTTP/2 preface on each;
#   2. the accept loop fails with EMFILE: the log shows `accept failed: Too many
#      open files ...; retrying in D` with D = 5ms doubling to 1s, few such
#      lines in a 2 s window (no spin) and little CPU time (utime+stime of
#      /proc/PID/stat) in it; the server stays up;
#   3. after most connections are closed, a fresh `curl --http2-prior-knowledge
#      -d x /echo` returns `x` within 3 s (the loop accepts again);
# then SIGTERM: the server exits 0 and prints its `shutdown:` report (graceful
# or forced: both are fine here).
# Prints PASS/FAIL per runtime and a final `fd_exhaustion: N passed, N failed`.
set -euo pipefail
cd "$(dirname "$0")/.."

FD_LIMIT=64 # the runtimes need ~10 fds of their own; the rest go to connections
CONNS=100   # > FD_LIMIT, < the listen backlog (128 for smol via std, 1024 for tokio) + FD_LIMIT
NAME=fd_exhaustion CHECKS=2 # one check, on each of two runtimes
server_pid='' client_pid=''
cleanup_hook() { # the processes this script started
  [[ -z $server_pid ]] || kill -KILL "$server_pid" 2>/dev/null || true
  [[ -z $client_pid ]] || kill -TERM "$client_pid" 2>/dev/null || true # `timeout` passes it on
}
# shellcheck source=.ci/lib.sh
source .ci/lib.sh

command -v python3 >/dev/null || die "python3 missing"
require curl curl
[[ -r /proc/self/stat ]] || die "/proc is needed (fd counts, CPU time)"

cargo build --release --example echo_server -q || die "cargo build --release --example echo_server failed"
SERVER=${CARGO_TARGET_DIR:-target}/release/examples/echo_server

# Starts the server under the fd limit, output in $tmp/$RUNTIME.{out,err}; sets
# server_pid and port. Inherited fds above 2 are closed first, so the server's
# own count is what the limit is measured against.
start_server() {
  local out=$tmp/$RUNTIME.out line=''
  : >"$out"
  RUST_LOG=warn bash -c '
    for f in /proc/$$/fd/*; do n=${f##*/}; ((n > 2)) && eval "exec $n>&-" 2>/dev/null; done
    ulimit -n "$1" && exec "$2" --runtime "$3" --listen 127.0.0.1:0 --grace 5s' \
    _ "$FD_LIMIT" "$SERVER" "$RUNTIME" >"$out" 2>"$tmp/$RUNTIME.err" &
  server_pid=$! # the server itself, after exec
  for _ in $(seq 100); do # up to ~5 s
    line=$(head -n 1 "$out")
    [[ $line == "listening on "* ]] && break
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.05
  done
  port=${line##*:}
  [[ $line == "listening on "* && $port =~ ^[0-9]+$ ]] ||
    { stop_server; why "server did not announce 'listening on ADDR' within 5 s" "$out" "$tmp/$RUNTIME.err"; return 1; }
  local limit fds
  limit=$(awk '/^Max open files/{print $4}' "/proc/$server_pid/limits")
  fds=$(find "/proc/$server_pid/fd" -mindepth 1 -maxdepth 1 | wc -l)
  echo "  server pid $server_pid on port $port: fd limit $limit, $fds fds open at start"
  [[ $limit == "$FD_LIMIT" ]] || { stop_server; why "fd limit is '$limit', expected $FD_LIMIT"; return 1; }
  ((fds <= FD_LIMIT - 16)) ||
    { stop_server; why "the runtime alone uses $fds fds: too close to the limit $FD_LIMIT"; return 1; }
}
stop_server() { # quiet, forced if it takes over 10 s
  kill -TERM "$server_pid" 2>/dev/null || true
  wait_pid "$server_pid" 10 >/dev/null || { kill -KILL "$server_pid" 2>/dev/null; wait "$server_pid" 2>/dev/null; } || true
  server_pid=''
}

check_fd_exhaustion() {
  start_server || return 1
  local out=$tmp/$RUNTIME.out err=$tmp/$RUNTIME.err log=$tmp/$RUNTIME.py.log
  local files=("$log" "$out" "$err")
  timeout 40 python3 .ci/fd_exhaustion.py --pid "$server_pid" --port "$port" --log "$err" \
    --conns "$CONNS" >"$log" 2>&1 &
  client_pid=$!
  local client_rc=0
  wait_pid "$client_pid" 45 || client_rc=$?
  client_pid=''
  sed 's/^/  /' "$log"
  local n
  n=$(grep -c 'accept failed' "$err" || true)
  echo "  server log: $n 'accept failed' lines$( ((n <= 5)) || echo '; first 3 and last 2'):"
  if ((n <= 5)); then grep 'accept failed' "$err"; else
    grep -m 3 'accept failed' "$err"; echo '    ...'; grep 'accept failed' "$err" | tail -n 2
  fi | sed 's/^/  | /'

  local server_rc=0
  if kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid"
    wait_pid "$server_pid" 15 || server_rc=$?
    ((server_rc != 124)) || { kill -KILL "$server_pid" 2>/dev/null; wait "$server_pid" 2>/dev/null || true; }
  else
    wait "$server_pid" || server_rc=$?
    echo "  server had already exited ($server_rc) before SIGTERM"
    server_rc=died
  fi
  server_pid=''
  local report
  report=$(tail -n 1 "$out")
  echo "  report: $report"
  ((client_rc == 0)) || { why "fd_exhaustion.py exited $client_rc (1: see its 'fail' lines above; 124: timed out)" "$out" "$err"; return 1; }
  [[ $server_rc == 0 ]] || { why "server exited '$server_rc' (124: did not exit in 15 s after SIGTERM; died: before it)" "${files[@]}"; return 1; }
  [[ $report == "shutdown: "* ]] || { why "last stdout line is not a shutdown report" "${files[@]}"; return 1; }
  ! grep -q 'panicked' "$err" || { why "the server panicked" "${files[@]}"; return 1; }
}

# One behaviour, two runtimes.
for RUNTIME in smol tokio; do
  tally "check_fd_exhaustion ($RUNTIME)" check_fd_exhaustion
done
echo "fd_exhaustion: $passed passed, $failed failed"
((failed == 0))
