#!/usr/bin/env bash
# The client half (winddown::http2::client) against servers being stopped
# and restarted under its load: examples/client_load, given two addresses A
# and B, sends requests from 16 workers (POSTs not marked idempotent, or
# gRPC unary calls) while A and B are each stopped gracefully (SIGTERM) and
# restarted on the same port, three times each, one after the other.
#
# Checks:
#   echo_<client runtime>: two examples/echo_server on the other runtime.
#     Asserts: zero failed requests, every answer its own request's body, the
#     client moved connection at each stop (connections >= 7), every server
#     exit graceful with `reset 0` and `forced 0`, and the servers' completed
#     streams add up to exactly the client's answers (nothing processed twice,
#     nothing lost).
#   grpcsrv_<client runtime>: the same against grpc-go's own GracefulStop
#     (grpcsrv from ../shared/peers/grpc-go), gRPC calls: zero failed calls.
#
# Prints PASS/FAIL per check, a table, and `client: N passed, N failed`.
set -euo pipefail
cd "$(dirname "$0")/.."

NAME=client CHECKS=4
# shellcheck source=.ci/lib.sh
source .ci/lib.sh

cargo build --release --example echo_server --example client_load -q ||
  die "cargo build --release --example echo_server --example client_load failed"
SERVER=${CARGO_TARGET_DIR:-target}/release/examples/echo_server
CLIENT=${CARGO_TARGET_DIR:-target}/release/examples/client_load
grpc_peers

# start KIND NAME PORT: a server on 127.0.0.1:PORT (0: any); sets srv_pid, srv_port.
start() {
  local kind=$1 name=$2 port=$3 line
  if [[ $kind == grpcsrv ]]; then
    start_grpcsrv "$name" "$port"
  else
    : >"$tmp/$name.out" && : >"$tmp/$name.err"
    "$SERVER" --runtime "$SERVER_RT" --listen "127.0.0.1:$port" --grace 10s >"$tmp/$name.out" 2>"$tmp/$name.err" &
    srv_pid=$! && pids+=("$srv_pid")
    wait_line "$tmp/$name.out" '^listening on ' 50 "$srv_pid" ||
      why "echo_server $name did not start on $port" "$tmp/$name.out" "$tmp/$name.err"
    line=$(head -n 1 "$tmp/$name.out")
    srv_port=${line##*:}
  fi
}


declare -A row
check() { # KIND NAME GRPC_FLAG
  local kind=$1 name=$2 grpc=${3:-} c=$tmp/$2.client
  local -A pid port
  local s cycle completed=0 instances=0 report files=()
  start "$kind" "$name.A.0" 0 || return 1
  pid[A]=$srv_pid port[A]=$srv_port
  start "$kind" "$name.B.0" 0 || return 1
  pid[B]=$srv_pid port[B]=$srv_port
  : >"$c.out"
  # shellcheck disable=SC2086 # $grpc is one optional flag
  "$CLIENT" --runtime "$CLIENT_RT" --addr "127.0.0.1:${port[A]}" --addr "127.0.0.1:${port[B]}" $grpc \
    >"$c.out" 2>"$c.err" &
  local c_pid=$! && pids+=("$c_pid")
  files=("$c.out" "$c.err")
  wait_line "$c.out" '^flowing' 100 "$c_pid" || { why "the client is not flowing within 10 s" "${files[@]}"; return 1; }
  for cycle in 1 2 3; do
    for s in A B; do
      progress "$c.out" || { why "no progress before stopping $s (cycle $cycle)" "${files[@]}"; return 1; }
      local prev=$tmp/$name.$s.$((cycle - 1))
      stop_pid "${pid[$s]}"
      ((rc == 0)) || { why "$s exited $rc on SIGTERM (124: not within 15 s)" "$prev.out" "$prev.err"; return 1; }
      if [[ $kind == echo ]]; then
        report=$(tail -n 1 "$prev.out")
        [[ $report == "shutdown: graceful"* && $(rep "$report" reset) == 0 && $(rep "$report" forced) == 0 ]] ||
          { why "$s's report is not graceful with reset 0, forced 0" "$prev.out" "$prev.err"; return 1; }
        completed=$((completed + $(rep "$report" completed))) instances=$((instances + 1))
      fi
      start "$kind" "$name.$s.$cycle" "${port[$s]}" || return 1
      pid[$s]=$srv_pid
    done
  done
  progress "$c.out" || { why "no progress after the last restart" "${files[@]}"; return 1; }
  stop_pid "$c_pid"
  ((rc == 0)) || { why "the client exited $rc" "${files[@]}"; return 1; }
  for s in A B; do
    stop_pid "${pid[$s]}"
    if [[ $kind == echo ]]; then
      report=$(tail -n 1 "$tmp/$name.$s.3.out")
      completed=$((completed + $(rep "$report" completed))) instances=$((instances + 1))
    fi
  done
  grep -E '^(result|peer|failure) ' "$c.out" | sed 's/^/  client: /'
  local sent ok failed retries reroutes conns
  sent=$(get "$c.out" result sent) ok=$(get "$c.out" result ok) failed=$(get "$c.out" result failed)
  retries=$(get "$c.out" result retries) reroutes=$(get "$c.out" result reroutes)
  conns=$(get "$c.out" result connections)
  row[$name]=$(printf '%8s %8s %7s %8s %9s %12s %s' "$sent" "$ok" "$failed" "$retries" "$reroutes" "$conns" \
    "$([[ $kind == echo ]] && echo "$completed ($instances servers)" || echo "-")")
  [[ -n $ok ]] || { why "no result line" "${files[@]}"; return 1; }
  ((failed == 0)) || { why "$failed requests failed" "${files[@]}"; return 1; }
  ((ok == sent)) || { why "sent $sent but only $ok answered" "${files[@]}"; return 1; }
  ((conns >= 7)) || { why "only $conns connections: the client did not move at every stop" "${files[@]}"; return 1; }
  if [[ $kind == echo ]]; then
    ((completed == ok)) || { why "the servers completed $completed streams, the client got $ok answers" "${files[@]}"; return 1; }
  fi
}

run() { # NAME KIND CLIENT_RT SERVER_RT [--grpc]
  CLIENT_RT=$3 SERVER_RT=$4
  tally "$1" check "$2" "$1" "${5:-}"
}

run echo_smol echo smol tokio
run echo_tokio echo tokio smol --grpc
run grpcsrv_smol grpcsrv smol - --grpc
run grpcsrv_tokio grpcsrv tokio - --grpc
printf '  %-14s %8s %8s %7s %8s %9s %12s %s\n' check sent ok failed retries reroutes connections "servers' completed"
for r in echo_smol echo_tokio grpcsrv_smol grpcsrv_tokio; do
  printf '  %-14s %s\n' "$r" "${row[$r]:-(no data)}"
done
echo "client: $passed passed, $failed failed"
((failed == 0))
