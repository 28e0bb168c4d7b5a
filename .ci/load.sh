#!/usr/bin/env bash
# Load check of examples/echo_server's graceful stop with h2load (nghttp2-client):
# 100 connections x 10 concurrent streams of `GET /sleep/50`, SIGTERM mid-run
# (once h2load reports 30% of its requests done), on each runtime (smol, tokio).
# The server's own accounting (its last stdout line, the `shutdown:` report) is
# checked against what h2load received:
#   * the server exits 0, graceful (not forced) within --grace, no connection forced;
#   * server `reset 0`: no stream a handler started was cut;
#   * server `completed` == h2load `succeeded` == its 2xx count, no other status:
#     every response a handler finished arrived whole as a 200, and every 200
#     h2load got was counted by the server (a handler that ran for a stream above
#     a GOAWAY's last-stream-id would break this: nghttp2 has already closed that
#     stream as refused, so its response would be counted but never received);
#   * h2load `started` == `done`: no stream was in flight when its connection closed;
#   * h2load's failures are all requests the server never processed.
#
# How h2load counts (nghttp2 src/h2load.cc; checked on 1.52): once a connection
# has received a GOAWAY, nghttp2_session_check_request_allowed() is false, so the
# client's next submit fails and process_request_failure() adds ALL the requests
# it has left to `failed` and `errored` (one "Process Request Failure:" line per
# connection). They were never `started`. A started stream that closes with an
# error code (RST_STREAM, REFUSED_STREAM, or one nghttp2 refused locally because
# the GOAWAY came before its HEADERS went out) is `done` + `failed` + `errored`;
# a stream still in flight when its connection closes is `failed` + `errored`
# but not `done`; a non-2xx/3xx status is `done` + `failed` but not `errored`. So:
#   never sent               = total - started
#   in flight at close       = started - done                 (must be 0)
#   closed without response  = done - succeeded               (RST/refused; never reached a handler)
#   errored                  = never sent + in flight at close + closed without response
#   failed - errored         = HTTP-level failures            (must be 0)
# h2load's --log-file has one row per `done` stream: start time, status (-1 when
# it closed without a response), duration. The start time is set when the
# request's HEADERS frame is sent (before_frame_send_callback), so a row with
# start 0 is a stream nghttp2 refused itself: it had queued the request when it
# read the GOAWAY(2^31-1) in the same batch of input, and never sent it. A row
# with status -1 and a real start went out on the wire and came back without a
# response: only the server's REFUSED_STREAM (its `refused`) may do that here.
# Prints a table and PASS/FAIL per runtime, then `load: N passed, N failed`.
set -euo pipefail
cd "$(dirname "$0")/.."

NAME=load CHECKS=2 # one check on each of two runtimes
CONNS=100 STREAMS=10 SLEEP_MS=50
# At most CONNS*STREAMS streams per SLEEP_MS: 60000 requests take >= 3 s, so
# SIGTERM at 30% (>= 0.9 s in) always lands mid-run, however fast the machine.
REQUESTS=60000 SIGTERM_AT=30 GRACE_S=10
server_pid='' client_pid=''
cleanup_hook() { # the processes this script started
  [[ -z $server_pid ]] || kill -KILL "$server_pid" 2>/dev/null || true
  [[ -z $client_pid ]] || kill -TERM "$client_pid" 2>/dev/null || true # `timeout` passes it on
}
WHY_SKIP='^Process Request Failure:' # h2load's per-connection noise
# shellcheck source=.ci/lib.sh
source .ci/lib.sh

# --- tools: install h2load if missing (CI runs as root on Debian); never skip.
require h2load nghttp2-client

cargo build --release --example echo_server -q || die "cargo build --release --example echo_server failed"
SERVER=${CARGO_TARGET_DIR:-target}/release/examples/echo_server

# Starts a fresh server with output in $tmp/$1.{out,err}; sets server_pid and port.
start_server() {
  local out=$tmp/$1.out line=''
  : >"$out"
  "$SERVER" --runtime "$RUNTIME" --listen 127.0.0.1:0 --grace "${GRACE_S}s" >"$out" 2>"$tmp/$1.err" &
  server_pid=$!
  for _ in $(seq 100); do # up to ~5 s
    line=$(head -n 1 "$out")
    [[ $line == "listening on "* ]] && break
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.05
  done
  port=${line##*:}
  [[ $line == "listening on "* && $port =~ ^[0-9]+$ ]] && return
  kill -KILL "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
  server_pid=''
  why "server did not announce 'listening on ADDR' within 5 s" "$out" "$tmp/$1.err"
}

# Stop duration of a report ("0.4 ms", "12 ms", "3.2 s") in whole ms, rounded up.
to_ms() { awk -v n="$1" -v u="$2" 'BEGIN { v = (u == "s") ? n * 1000 : n; printf "%d\n", (v == int(v)) ? v : int(v) + 1 }'; }

check_load() {
  local name=$RUNTIME
  start_server "$name" || return 1
  local log=$tmp/$name.h2load srv=$tmp/$name.out
  local files=("$log" "$srv" "$tmp/$name.err")
  local reqlog=$tmp/$name.requests
  : >"$log" # exists before the poll below reads it (the child opens it after the fork)
  timeout 60 h2load -c "$CONNS" -m "$STREAMS" -n "$REQUESTS" --log-file="$reqlog" \
    "http://127.0.0.1:$port/sleep/$SLEEP_MS" >"$log" 2>&1 &
  client_pid=$!
  # h2load prints `progress: N% done` (flushed) each time a tenth of the requests
  # is done: wait (<= ~20 s) until that many responses have come back.
  local ready=''
  for _ in $(seq 400); do
    grep -qx "progress: $SIGTERM_AT% done" "$log" && ready=1 && break
    kill -0 "$client_pid" 2>/dev/null || break
    sleep 0.05
  done
  if [[ -z $ready ]]; then
    kill -KILL "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=''
    kill -TERM "$client_pid" 2>/dev/null || true
    wait_pid "$client_pid" 5 >/dev/null || true
    client_pid=''
    why "h2load did not report 'progress: $SIGTERM_AT% done' within 20 s" "${files[@]}"
    return 1
  fi
  kill -TERM "$server_pid"

  local client_rc=0 server_rc=0
  wait_pid "$server_pid" $((GRACE_S + 5)) || server_rc=$?
  if ((server_rc == 124)); then kill -KILL "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  server_pid=''
  wait_pid "$client_pid" 15 || client_rc=$?
  if ((client_rc == 124)); then kill -TERM "$client_pid" 2>/dev/null || true; wait_pid "$client_pid" 5 >/dev/null || true; fi
  client_pid=''
  ((server_rc == 0)) || { why "server exited $server_rc (124: did not exit within $((GRACE_S + 5)) s of SIGTERM)" "${files[@]}"; return 1; }
  ((client_rc == 0)) || { why "h2load exited $client_rc (124: did not exit within 15 s of the server's SIGTERM)" "${files[@]}"; return 1; }

  # --- h2load's summary.
  local re_req='^requests: ([0-9]+) total, ([0-9]+) started, ([0-9]+) done, ([0-9]+) succeeded, ([0-9]+) failed, ([0-9]+) errored, ([0-9]+) timeout$'
  local re_st='^status codes: ([0-9]+) 2xx, ([0-9]+) 3xx, ([0-9]+) 4xx, ([0-9]+) 5xx$'
  local line total started done succeeded hfailed errored timedout s2 s3 s4 s5
  line=$(grep -E '^requests: ' "$log" | tail -n 1 || true)
  [[ $line =~ $re_req ]] || { why "no 'requests: ...' summary in h2load's output" "${files[@]}"; return 1; }
  total=${BASH_REMATCH[1]} started=${BASH_REMATCH[2]} done=${BASH_REMATCH[3]} succeeded=${BASH_REMATCH[4]}
  hfailed=${BASH_REMATCH[5]} errored=${BASH_REMATCH[6]} timedout=${BASH_REMATCH[7]}
  line=$(grep -E '^status codes: ' "$log" | tail -n 1 || true)
  [[ $line =~ $re_st ]] || { why "no 'status codes: ...' line in h2load's output" "${files[@]}"; return 1; }
  s2=${BASH_REMATCH[1]} s3=${BASH_REMATCH[2]} s4=${BASH_REMATCH[3]} s5=${BASH_REMATCH[4]}
  local never_sent=$((total - started)) in_flight=$((started - done)) unanswered=$((done - succeeded))
  local http_failed=$((hfailed - errored)) request_failures
  request_failures=$(grep -c '^Process Request Failure:' "$log" || true)
  # Per-request rows: all, with status 200, unanswered and never sent, unanswered after sending.
  local rows=0 rows_200=0 unsent=0 sent_unanswered=0
  read -r rows rows_200 unsent sent_unanswered < <(awk -F '\t' '
    { n++ } $2 == 200 { ok++ } $2 == -1 && $1 == 0 { unsent++ } $2 == -1 && $1 != 0 { sent++ }
    END { print n + 0, ok + 0, unsent + 0, sent + 0 }' "$reqlog" 2>/dev/null || echo '0 0 0 0')

  # --- the server's report: its last stdout line.
  local report outcome='' stop='' stop_ms=0 completed='' refused='' reset='' drained='' forced='' panics=0
  report=$(tail -n 1 "$srv")
  local re_rep='^shutdown: (graceful|forced \([^)]*\)) in ([0-9.]+) (ms|s); streams: completed ([0-9]+), refused ([0-9]+), reset ([0-9]+); connections: drained ([0-9]+), forced ([0-9]+)(; handler panics ([0-9]+))?$'
  if [[ $report =~ $re_rep ]]; then
    outcome=${BASH_REMATCH[1]} stop="${BASH_REMATCH[2]} ${BASH_REMATCH[3]}"
    stop_ms=$(to_ms "${BASH_REMATCH[2]}" "${BASH_REMATCH[3]}")
    completed=${BASH_REMATCH[4]} refused=${BASH_REMATCH[5]} reset=${BASH_REMATCH[6]}
    drained=${BASH_REMATCH[7]} forced=${BASH_REMATCH[8]} panics=${BASH_REMATCH[10]:-0}
  fi

  local row='  %-56s %s\n'
  echo "  $RUNTIME: h2load -c $CONNS -m $STREAMS -n $REQUESTS /sleep/$SLEEP_MS, SIGTERM at 'progress: $SIGTERM_AT% done'"
  printf "$row" "h2load requests total / started / done" "$total / $started / $done"
  printf "$row" "h2load succeeded / failed / errored / timeout" "$succeeded / $hfailed / $errored / $timedout"
  printf "$row" "h2load status 2xx / 3xx / 4xx / 5xx" "$s2 / $s3 / $s4 / $s5"
  printf "$row" "  never sent, after GOAWAY (total - started)" "$never_sent (in $request_failures 'Process Request Failure' lines)"
  printf "$row" "  in flight when a connection closed (started - done)" "$in_flight"
  printf "$row" "  closed without a response (done - succeeded)" "$unanswered"
  printf "$row" "    of which never sent (log: start 0) / sent" "$unsent / $sent_unanswered"
  printf "$row" "  HTTP-level failures (failed - errored)" "$http_failed"
  printf "$row" "server completed / refused / reset" "${completed:-?} / ${refused:-?} / ${reset:-?}"
  printf "$row" "server connections drained / forced" "${drained:-?} / ${forced:-?}"
  printf "$row" "server stop (report)" "${outcome:-?} in ${stop:-?} (exit $server_rc)"

  # --- the assertions; the first that fails is the reason.
  [[ -n $outcome ]] || { why "the server's last stdout line is not a shutdown report: '$report'" "${files[@]}"; return 1; }
  [[ $outcome == graceful ]] || { why "the stop was $outcome, not graceful" "${files[@]}"; return 1; }
  ((stop_ms <= GRACE_S * 1000)) || { why "the graceful stop took $stop, more than the ${GRACE_S} s grace" "${files[@]}"; return 1; }
  ((forced == 0)) || { why "$forced connections were forced closed" "${files[@]}"; return 1; }
  ((drained == CONNS)) || { why "drained $drained connections, expected all $CONNS of h2load's (all open mid-run)" "${files[@]}"; return 1; }
  ((panics == 0)) || { why "$panics handlers panicked" "${files[@]}"; return 1; }
  ((total == REQUESTS)) || { why "h2load's total is $total, not the $REQUESTS asked for" "${files[@]}"; return 1; }
  ((never_sent > 0)) || { why "h2load sent every request: the SIGTERM did not land mid-run" "${files[@]}"; return 1; }
  ((started >= REQUESTS * SIGTERM_AT / 100)) || { why "h2load started only $started requests, fewer than the $SIGTERM_AT% done before SIGTERM" "${files[@]}"; return 1; }
  ((reset == 0)) || { why "server reset $reset streams a handler had started: responses cut" "${files[@]}"; return 1; }
  ((in_flight == 0)) || { why "$in_flight streams h2load started were still in flight when their connection closed (started $started, done $done)" "${files[@]}"; return 1; }
  ((timedout == 0)) || { why "h2load timed out $timedout requests" "${files[@]}"; return 1; }
  ((s3 + s4 + s5 == 0 && http_failed == 0)) || { why "non-2xx responses: 3xx $s3, 4xx $s4, 5xx $s5; failed - errored = $http_failed" "${files[@]}"; return 1; }
  ((s2 == succeeded)) || { why "h2load: 2xx $s2 != succeeded $succeeded" "${files[@]}"; return 1; }
  ((completed == s2)) || { why "server completed $completed streams but h2load received $s2 responses with 2xx (difference $((completed - s2)))" "${files[@]}"; return 1; }
  ((errored == never_sent + in_flight + unanswered)) ||
    { why "h2load errored $errored != never sent $never_sent + in flight $in_flight + closed without response $unanswered: h2load's counting is not the one this check assumes" "${files[@]}"; return 1; }
  # Streams closed without a response never reached a handler (completed == 2xx and
  # reset 0 above): refused by the server (REFUSED_STREAM), above a GOAWAY's
  # last-stream-id, or refused by nghttp2 itself before sending them.
  ((rows == done && rows_200 == s2 && unsent + sent_unanswered == unanswered)) ||
    { why "h2load's --log-file disagrees with its summary: $rows rows (done $done), $rows_200 with 200 (2xx $s2), $unsent + $sent_unanswered unanswered ($unanswered)" "${files[@]}"; return 1; }
  ((sent_unanswered == refused)) ||
    { why "$sent_unanswered streams went out on the wire and closed without a response, but the server refused $refused (RST_STREAM, or streams above a GOAWAY's last-stream-id?)" "${files[@]}"; return 1; }
  echo "  => completed $completed == 2xx $s2 == succeeded $succeeded; reset 0; no failure was ever processed:" \
    "$never_sent never sent after GOAWAY, $unsent refused by nghttp2 before sending, $refused refused by the server"
}

# One behaviour, two runtimes.
for RUNTIME in smol tokio; do
  tally "check_load ($RUNTIME)" check_load
done
echo "load: $passed passed, $failed failed"
((failed == 0))
