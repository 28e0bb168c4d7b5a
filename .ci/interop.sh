#!/usr/bin/env bash
# Interop check of examples/echo_server against real HTTP/2 peers (curl, nghttp,
# Python grpcio):
#   1. curl h2c POST /echo returns exactly the body it sent, over HTTP/2;
#   2. SIGTERM during an nghttp request: GOAWAY(2^31-1) + PING, GOAWAY(last=stream),
#      then the in-flight response completes; nghttp and the server exit 0;
#   3. grpcio (.ci/grpc_echo_client.py, in the venv target/ci-venv): a unary call
#      echoes; SIGTERM while 5 calls are in flight: all complete OK, the server
#      exits 0 with a graceful report; then a new call on the same channel fails
#      with UNAVAILABLE only.
# Prints PASS/FAIL per check and a final `interop: N passed, N failed` line.
set -euo pipefail
cd "$(dirname "$0")/.."

NAME=interop CHECKS=6 # three checks, on each of two runtimes
server_pid='' client_pid='' ctl_fd=''
cleanup_hook() { # the processes this script started
  [[ -z $ctl_fd ]] || exec {ctl_fd}>&- || true
  [[ -z $server_pid ]] || kill -KILL "$server_pid" 2>/dev/null || true
  [[ -z $client_pid ]] || kill -TERM "$client_pid" 2>/dev/null || true # `timeout` passes it on
}
# shellcheck source=.ci/lib.sh
source .ci/lib.sh

# --- tools: install real peers if missing (CI runs as root on Debian); never skip.
require "nghttp curl" "nghttp2-client curl"

# --- Python grpcio in a venv of its own, made once and reused; never skipped.
grpcio_venv

cargo build --release --example echo_server -q || die "cargo build --release --example echo_server failed"
SERVER=${CARGO_TARGET_DIR:-target}/release/examples/echo_server

# Starts a fresh server with output in $tmp/$1.{out,err}; sets server_pid and port.
start_server() {
  local out=$tmp/$1.out line=''
  : >"$out"
  "$SERVER" --runtime "$RUNTIME" --listen 127.0.0.1:0 --grace 10s >"$out" 2>"$tmp/$1.err" &
  server_pid=$!
  for _ in $(seq 100); do # up to ~5 s
    line=$(head -n 1 "$out")
    [[ $line == "listening on "* ]] && break
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.05
  done
  port=${line##*:}
  [[ $line == "listening on "* && $port =~ ^[0-9]+$ ]] && return
  stop_server
  why "server did not announce 'listening on ADDR' within 5 s" "$out" "$tmp/$1.err"
}
stop_server() { # graceful (quiet), forced if it takes over 5 s
  kill -TERM "$server_pid" 2>/dev/null || true
  wait_pid "$server_pid" 5 >/dev/null || { kill -KILL "$server_pid" 2>/dev/null; wait "$server_pid" 2>/dev/null; } || true
  server_pid=''
}

check_curl_echo() {
  start_server s1 || return 1
  printf 'hello h2 \xe2\x9c\x93\n\tsecond line, no trailing newline' >"$tmp/body.sent"
  local version
  version=$(curl -sS --http2-prior-knowledge --connect-timeout 5 --max-time 10 \
    --data-binary @"$tmp/body.sent" -o "$tmp/body.got" -w '%{http_version}' \
    "http://127.0.0.1:$port/echo" 2>"$tmp/curl.err") || { stop_server; why "curl failed" "$tmp/curl.err"; return 1; }
  stop_server
  [[ $version == 2 ]] || { why "http_version is '$version', expected 2" "$tmp/curl.err"; return 1; }
  cmp -s "$tmp/body.sent" "$tmp/body.got" || { why "echoed body differs" "$tmp/body.sent" "$tmp/body.got"; return 1; }
}

check_graceful_drain() {
  start_server s2 || return 1
  local log=$tmp/nghttp.log srv=$tmp/s2.out files=("$tmp/nghttp.log" "$tmp/s2.out" "$tmp/s2.err")
  # --no-dep: no PRIORITY anchor streams, so the request is stream 1.
  timeout 20 nghttp -nv --no-dep "http://127.0.0.1:$port/sleep/1000" >"$log" 2>&1 &
  client_pid=$!
  # Wait (<= ~5 s) until the request is sent and the server has answered our SETTINGS (ACK).
  local ready=''
  for _ in $(seq 100); do
    if grep -q 'send HEADERS frame' "$log" && grep -q 'recv SETTINGS frame <length=0, flags=0x01' "$log"; then
      ready=1 && break
    fi
    sleep 0.05
  done
  [[ -n $ready ]] || { stop_server; why "nghttp request not in flight after 5 s" "${files[@]}"; return 1; }
  kill -TERM "$server_pid"

  local nghttp_rc=0 server_rc=0
  wait_pid "$client_pid" 25 || nghttp_rc=$?
  client_pid=''
  wait_pid "$server_pid" 20 || server_rc=$?
  server_pid=''
  ((nghttp_rc == 0)) || { why "nghttp exited $nghttp_rc (124: timeout)" "${files[@]}"; return 1; }
  ((server_rc == 0)) || { why "server exited $server_rc (124: did not exit in 20 s)" "${files[@]}"; return 1; }

  # One record per frame: "LINE<TAB>frame line + its indented detail lines".
  awk '/^\[ *[0-9.]+\] (send|recv) /{if(r)print r; r=NR "\t" $0; next} {r=r " " $0} END{if(r)print r}' \
    "$log" >"$tmp/frames"
  local sid
  sid=$(sed -n 's/.*send HEADERS frame <.*stream_id=\([0-9]*\)>.*/\1/p' "$log" | head -n 1)
  at() { grep -E -m 1 "$1" "$tmp/frames" | cut -f 1 || true; } # line of first match, or empty
  local goaway_max ping goaway_last status data
  goaway_max=$(at 'recv GOAWAY frame.*last_stream_id=2147483647, error_code=NO_ERROR')
  ping=$(at 'recv PING frame <length=8, flags=0x00')
  goaway_last=$(at "recv GOAWAY frame.*last_stream_id=$sid, error_code=NO_ERROR")
  status=$(at "recv \(stream_id=$sid\) :status: 200$")
  data=$(at "recv DATA frame <[^>]*stream_id=$sid>.*END_STREAM")
  echo "  stream $sid; lines: GOAWAY(max)=${goaway_max:-none} PING=${ping:-none}" \
    "GOAWAY(last=$sid)=${goaway_last:-none} :status 200=${status:-none} DATA END_STREAM=${data:-none}"
  [[ -n $goaway_max && -n $ping && -n $goaway_last && -n $status && -n $data ]] ||
    { why "a frame is missing from nghttp's log" "${files[@]}"; return 1; }
  ((goaway_max < ping && ping < goaway_last && goaway_last < status && status < data)) ||
    { why "frames out of order (want GOAWAY(max) < PING < GOAWAY(last) < :status 200 < DATA END_STREAM)" "${files[@]}"; return 1; }

  local report
  report=$(tail -n 1 "$srv")
  echo "  report: $report"
  [[ $report == "shutdown: graceful"* ]] || { why "last stdout line is not a graceful shutdown report" "${files[@]}"; return 1; }
  grep -qE 'completed 1\b' <<<"$report" && grep -qE 'connections: drained 1\b' <<<"$report" ||
    { why "report lacks 'completed 1' / 'connections: drained 1'" "${files[@]}"; return 1; }
}

# The client drives the sequence and prints one line per step; the shell only
# sends SIGTERM once the client says `in-flight`, and `go` (on the client's
# stdin, a FIFO) once the server has exited, for call (c).
check_grpcio_drain() {
  start_server s3 || return 1
  local log=$tmp/grpc.log srv=$tmp/s3.out files=("$tmp/grpc.log" "$tmp/s3.out" "$tmp/s3.err")
  rm -f "$tmp/grpc.ctl" # one per runtime: the previous runtime's is still there
  mkfifo "$tmp/grpc.ctl"
  exec {ctl_fd}<>"$tmp/grpc.ctl" # read-write: opening never blocks, and the client reads EOF if we die
  timeout 60 "$PY" .ci/grpc_echo_client.py "127.0.0.1:$port" <"$tmp/grpc.ctl" >"$log" 2>&1 {ctl_fd}>&- &
  client_pid=$!
  local ready=''
  for _ in $(seq 400); do # up to ~20 s: interpreter start, import, connect, (a), barrier
    grep -qx 'in-flight' "$log" && ready=1 && break
    kill -0 "$client_pid" 2>/dev/null || break
    sleep 0.05
  done
  if [[ -z $ready ]]; then
    stop_server
    kill -TERM "$client_pid" 2>/dev/null || true
    wait_pid "$client_pid" 5 >/dev/null || true
    client_pid=''
    why "grpcio client did not report 'in-flight' within 20 s" "${files[@]}"
    return 1
  fi
  kill -TERM "$server_pid"

  local client_rc=0 server_rc=0
  wait_pid "$server_pid" 20 || server_rc=$?
  if ((server_rc == 124)); then
    kill -KILL "$server_pid" 2>/dev/null || true
    echo 'server-still-running' >&"$ctl_fd"
  else
    echo go >&"$ctl_fd" # nothing listens any more: call (c)
  fi
  server_pid=''
  wait_pid "$client_pid" 40 || client_rc=$?
  client_pid=''
  exec {ctl_fd}>&-
  ctl_fd=''
  grep -E '^(ok|info) ' "$log" | sed 's/^/  /'
  ((client_rc == 0)) || { why "grpcio client exited $client_rc (124: timeout)" "${files[@]}"; return 1; }
  ((server_rc == 0)) || { why "server exited $server_rc (124: did not exit in 20 s)" "${files[@]}"; return 1; }

  local report completed
  report=$(tail -n 1 "$srv")
  echo "  report: $report"
  [[ $report == "shutdown: graceful"* ]] || { why "last stdout line is not a graceful shutdown report" "${files[@]}"; return 1; }
  completed=$(sed -n 's/.*streams: completed \([0-9]*\),.*/\1/p' <<<"$report")
  # (a) + 5 in flight + the client's barrier call = 7; at least 6 are required.
  [[ -n $completed ]] && ((completed >= 6)) ||
    { why "report shows 'completed ${completed:-?}', expected at least 6" "${files[@]}"; return 1; }
  grep -qE 'refused 0\b' <<<"$report" && grep -qE 'connections: drained 1\b' <<<"$report" ||
    { why "report lacks 'refused 0' / 'connections: drained 1'" "${files[@]}"; return 1; }
}

# Every check runs against both runtime adapters: one behaviour, two runtimes.
for RUNTIME in smol tokio; do
  for check in check_curl_echo check_graceful_drain check_grpcio_drain; do
    tally "$check ($RUNTIME)" "$check"
  done
done
echo "interop: $passed passed, $failed failed"
((failed == 0))
