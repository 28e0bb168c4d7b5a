#!/usr/bin/env bash
# grpc-go interop check of examples/echo_server's graceful stop, with gRPC
# clients nobody here wrote: grpc-go 1.33 from Debian (golang-google-grpc-dev),
# built offline in GOPATH mode:
#   - the stock peers of ../shared/peers/grpc-go (build.sh): grpccli, grpcsrv;
#   - .ci/grpcgo/loadcli: a load client on one ClientConn whose resolver lists
#     two servers A and B (pick_first, grpc's default, or round_robin), with
#     grpc's default behaviour (fail-fast calls, transparent retry of streams the
#     server never processed) plus one application retry on UNAVAILABLE only.
#     On SIGUSR1 it marks the calls in flight and, under the same lock, sends
#     SIGTERM to server A (so "in flight at SIGTERM" is exact); on SIGTERM it
#     stops calling, waits for its calls and prints what it saw.
#
# Checks, on each runtime (smol, tokio):
#   failover_round_robin, failover_pick_first: A and B serve; the load client
#     runs; SIGTERM to A while calls (at least one sleep:200ms) are in flight
#     on A's connection; one more second of load; then B stops. Asserts: A and B exit 0 with a graceful report,
#     `reset 0`, `forced 0`; every call in flight at SIGTERM completed OK
#     (those on A's connection included); no error code but UNAVAILABLE and
#     zero failed calls overall; calls answered by A == A's `completed`, by B
#     == B's `completed` (every RPC a handler completed reached the client).
#   no_backup: the same with nothing listening at B: the calls in flight on A
#     complete OK (except one grpc-go had started but not yet sent on A's
#     connection when the drain began: A never saw it, grpc-go's transparent
#     retry has nowhere to go, so it fails UNAVAILABLE; allowed only if A's
#     completed equals the OK replies from A and A reset nothing), calls after
#     the drain fail with UNAVAILABLE and nothing else,
#     and calls answered by A == A's `completed`.
#   grpccli_inflight: the stock `grpccli -msg sleep:1500ms`, SIGTERM 0.3 s
#     after its connection is up: it gets `echo:sleep:1500ms` with code OK; the
#     report says `completed 1, refused 0, reset 0` and a drain of >= 100 ms
#     (so the call was in flight). A try where the call had already ended at
#     SIGTERM (the driver lagged) proves nothing and is made again, 3 at most.
# Once: control_grpcsrv: failover_round_robin against grpc-go's own
#   GracefulStop (grpcsrv as A and B), so the client's expectations are known
#   to be what grpc-go itself does.
#
# Prints PASS/FAIL per check, a table per runtime and `grpcgo: N passed, N failed`.
# Needs root + apt the first time (build.sh installs golang-go and
# golang-google-grpc-dev when missing); the binaries are kept in
# target/grpc-go and rebuilt only when their sources change.
set -euo pipefail
cd "$(dirname "$0")/.."

NAME=grpcgo CHECKS=9 # four checks on each of two runtimes, one control
POST_TERM_S=1              # load kept on after SIGTERM to A
# shellcheck source=.ci/lib.sh
source .ci/lib.sh
drain_time() { sed -n 's/^shutdown: [^;]* in \([0-9.]* m\{0,1\}s\);.*/\1/p' <<<"$1"; }

# --- build: the echo server, the stock grpc-go peers, the load client.
cargo build --release --example echo_server -q || die "cargo build --release --example echo_server failed"
SERVER=${CARGO_TARGET_DIR:-target}/release/examples/echo_server
grpc_peers
if stale "$PEERS/loadcli" .ci/grpcgo; then
  mkdir -p "$tmp/gopath/src"
  cp -r .ci/grpcgo/loadcli "$tmp/gopath/src/"
  (
    export GO111MODULE=off GOPROXY=off GOFLAGS='' GOPATH="$tmp/gopath:/usr/share/gocode" GOCACHE="$tmp/gocache"
    go build -o "$PEERS/loadcli" loadcli
  ) >"$tmp/build.log" 2>&1 || { cat "$tmp/build.log" >&2; die "go build .ci/grpcgo/loadcli failed"; }
  echo "built $PEERS/loadcli"
fi
LOADCLI=$PEERS/loadcli

# --- servers. start_* set srv_pid and srv_port, output in $tmp/NAME.{out,err}.
start_echo() { # NAME [extra flags]
  local name=$1 line=''; shift
  : >"$tmp/$name.out"
  "$SERVER" --runtime "$RUNTIME" --listen 127.0.0.1:0 --grace 10s "$@" >"$tmp/$name.out" 2>"$tmp/$name.err" &
  srv_pid=$! && pids+=("$srv_pid")
  wait_line "$tmp/$name.out" '^listening on ' 50 "$srv_pid" || true
  line=$(head -n 1 "$tmp/$name.out")
  srv_port=${line##*:}
  [[ $line == "listening on "* && $srv_port =~ ^[0-9]+$ ]] ||
    why "echo_server $name did not announce 'listening on ADDR' within 5 s" "$tmp/$name.out" "$tmp/$name.err"
}
start_server() { # KIND NAME
  if [[ $1 == grpcsrv ]]; then start_grpcsrv "$2"; else start_echo "$2"; fi
}

# A table row per check: printed after each runtime.
declare -A row
table_header() {
  printf '  %-22s %9s %7s %-17s %-13s %-17s %-26s %9s %s\n' check client_ok failed errors \
    "inflight@TERM" "onA: ok/n byA" "A: completed/refused/reset" B_compl "ok==A+B"
}

# failover KIND LB NAME MODE: MODE backup (B serves) or nobackup (nothing at B).
check_load() {
  local kind=$1 lb=$2 name=$3 mode=$4
  # Files named per runtime and truncated here, by the shell: a redirection on
  # a background command truncates only once the child gets to it, and an old
  # file's `flowing` would be taken for the new client's.
  local f=$RUNTIME.$name
  local c=$tmp/$f.client files=()
  : >"$c.out"
  start_server "$kind" "$f.A" || return 1
  local a_pid=$srv_pid a_port=$srv_port b_pid='' b_port
  start_server "$kind" "$f.B" || { stop_pid "$a_pid"; return 1; }
  b_pid=$srv_pid b_port=$srv_port
  if [[ $mode == nobackup ]]; then # a port where nothing listens any more
    stop_pid "$b_pid"
    ((rc == 0)) || why "server B did not stop cleanly" "$tmp/$f.B.out" "$tmp/$f.B.err" || return 1
    b_pid=''
  fi
  files=("$c.out" "$c.err" "$tmp/$f.A.out" "$tmp/$f.A.err" "$tmp/$f.B.out" "$tmp/$f.B.err")
  local peers=1
  [[ $lb == round_robin && $mode == backup ]] && peers=2
  "$LOADCLI" -a "127.0.0.1:$a_port" -b "127.0.0.1:$b_port" -lb "$lb" -term-pid "$a_pid" \
    -flowing-peers "$peers" -deadline 40s >"$c.out" 2>"$c.err" &
  local c_pid=$! && pids+=("$c_pid")
  local fail=''
  if ! wait_line "$c.out" '^flowing ' 100 "$c_pid"; then
    fail="load client not 'flowing' within 10 s"
  else
    kill -USR1 "$c_pid"
    wait_line "$c.out" '^sigterm ' 50 "$c_pid" || fail="load client did not signal server A within 5 s"
  fi
  [[ -z $fail ]] || kill -0 "$c_pid" 2>/dev/null || fail+=" (the client had exited)"
  [[ -n $fail ]] || sleep "$POST_TERM_S"
  local c_rc a_rc b_rc=0
  stop_pid "$c_pid" && c_rc=$rc
  if [[ -n $fail ]]; then stop_pid "$a_pid" && a_rc=$rc; else
    a_rc=0 && { wait_pid "$a_pid" 15 || a_rc=$?; }
    ((a_rc != 124)) || kill -KILL "$a_pid" 2>/dev/null || true
  fi
  [[ -z $b_pid ]] || { stop_pid "$b_pid" && b_rc=$rc; }
  [[ -z $fail ]] || { why "$fail" "${files[@]}"; return 1; }
  grep -E '^(sigterm|state|conn|error|retry|peer|inflight|onA|afterterm|result) ' "$c.out" | sed 's/^/  client: /'
  [[ $kind == grpcsrv ]] && grep -h 'GracefulStop' "$tmp/$f.A.err" | sed 's/^/  A: /'

  # The client's counts.
  local ok nfail unavail other bad in_n in_ok on_n on_ok on_byA on_sleep ok_a ok_b codes
  ok=$(get "$c.out" result ok) nfail=$(get "$c.out" result failed)
  unavail=$(get "$c.out" result unavailable) other=$(get "$c.out" result other)
  bad=$(get "$c.out" result badreply)
  in_n=$(get "$c.out" inflight total) in_ok=$(get "$c.out" inflight ok)
  on_n=$(get "$c.out" onA total) on_ok=$(get "$c.out" onA ok) on_byA=$(get "$c.out" onA servedA)
  on_sleep=$(get "$c.out" onA sleep)
  ok_a=$(awk '$1 == "peer" && $3 == "server=A" { sub("ok=", "", $4); print $4 }' "$c.out")
  ok_b=$(awk '$1 == "peer" && $3 == "server=B" { sub("ok=", "", $4); print $4 }' "$c.out")
  ok_a=${ok_a:-0} ok_b=${ok_b:-0}
  codes=$(awk '$1 == "error" { split($3, a, "="); split($4, n, "="); s = s (s ? "," : "") a[2] "x" n[2] } END { print s ? s : "-" }' "$c.out")
  row[$name]=$(printf '%9s %7s %-17s %-13s %-17s' "$ok" "$nfail" "$codes" "$in_ok/$in_n" "$on_ok/$on_n byA=$on_byA")

  ((c_rc == 0)) && [[ -n $ok ]] || { why "load client exited $c_rc without a result line" "${files[@]}"; return 1; }
  ((a_rc == 0)) || { why "server A exited $a_rc (124: not within 15 s of SIGTERM)" "${files[@]}"; return 1; }
  ((b_rc == 0)) || { why "server B exited $b_rc on SIGTERM" "${files[@]}"; return 1; }

  # Server reports (echo_server only; grpcsrv has none).
  local ra='' rb='' a_compl='' b_compl=''
  if [[ $kind == echo ]]; then
    ra=$(tail -n 1 "$tmp/$f.A.out")
    echo "  A: $ra"
    a_compl=$(rep "$ra" completed)
    if [[ $mode == backup ]]; then
      rb=$(tail -n 1 "$tmp/$f.B.out")
      echo "  B: $rb"
      b_compl=$(rep "$rb" completed)
    fi
    row[$name]+=$(printf ' %-26s %9s' "$a_compl/$(rep "$ra" refused)/$(rep "$ra" reset) in $(drain_time "$ra")" "${b_compl:--}")
    [[ $ra == "shutdown: graceful"* ]] || { why "server A's last line is not a graceful report" "${files[@]}"; return 1; }
    [[ $(rep "$ra" reset) == 0 && $(rep "$ra" forced) == 0 ]] ||
      { why "server A's report has streams reset or connections forced" "${files[@]}"; return 1; }
    if [[ $mode == backup ]]; then
      [[ $rb == "shutdown: graceful"* && $(rep "$rb" reset) == 0 && $(rep "$rb" forced) == 0 ]] ||
        { why "server B's report is not graceful with reset 0, forced 0" "${files[@]}"; return 1; }
    fi
  else
    row[$name]+=$(printf ' %-26s %9s' "(grpcsrv: no report)" "-")
  fi

  # Something was in flight on A at SIGTERM, and all of it completed OK.
  ((on_n >= 1 && on_sleep >= 1)) || { why "no sleep call was in flight on A's connection at SIGTERM" "${files[@]}"; return 1; }
  if [[ $mode == nobackup && $kind == echo ]] && ((in_ok < in_n)); then
    # A call grpc-go had started but not yet put on A's connection (its
    # HEADERS went out after the PING's ACK, so above the final GOAWAY's
    # last-stream-id) is unprocessed: grpc-go retries it transparently, and
    # with nothing at B it fails UNAVAILABLE. That is only allowed if A lost
    # nothing: every call A completed reached the client (checked below), and
    # A reset none.
    local not_unavailable
    not_unavailable=$(sed -n 's/^info in-flight calls that failed: //p' "$c.out" | sed 's/, /\n/g' |
      grep -cv ':UNAVAILABLE$' || true)
    [[ $(rep "$ra" reset) == 0 ]] && ((not_unavailable == 0)) ||
      { why "a call in flight at SIGTERM failed other than as never processed" "${files[@]}"; return 1; }
    echo "  info: $((in_n - in_ok)) call(s) started before SIGTERM never reached A (unprocessed, UNAVAILABLE with no backup)"
  else
    ((in_ok == in_n)) || { why "$((in_n - in_ok)) of $in_n calls in flight at SIGTERM did not complete OK" "${files[@]}"; return 1; }
    ((on_ok == on_n)) || { why "$((on_n - on_ok)) of $on_n calls in flight on A at SIGTERM did not complete OK" "${files[@]}"; return 1; }
  fi
  # No error but UNAVAILABLE, and none before SIGTERM.
  ! grep -qE '^error phase=before-sigterm' "$c.out" || { why "calls failed before SIGTERM" "${files[@]}"; return 1; }
  ((other == 0 && bad == 0)) && ! grep -E '^(error|retry) ' "$c.out" | grep -qv 'code=UNAVAILABLE' ||
    { why "a call failed with a code other than UNAVAILABLE (or a wrong reply)" "${files[@]}"; return 1; }
  if [[ $mode == backup ]]; then
    ((nfail == 0)) || { why "$nfail calls failed although server B was serving" "${files[@]}"; return 1; }
  else
    ((unavail >= 1)) || { why "no call failed UNAVAILABLE although nothing served after the drain" "${files[@]}"; return 1; }
  fi
  # Every call a handler completed reached the client, and vice versa.
  if [[ $kind == echo ]]; then
    ((ok_a == a_compl)) || { why "client got $ok_a OK replies from A, A's report says completed $a_compl" "${files[@]}"; return 1; }
    if [[ $mode == backup ]]; then
      ((ok_b == b_compl)) || { why "client got $ok_b OK replies from B, B's report says completed $b_compl" "${files[@]}"; return 1; }
      row[$name]+=" $ok=$a_compl+$b_compl"
    else
      row[$name]+=" $ok=$a_compl"
    fi
    ((ok == ok_a + ok_b)) || { why "OK replies by peer do not add up ($ok_a + $ok_b != $ok)" "${files[@]}"; return 1; }
  fi
  return 0
}

check_failover_round_robin() { check_load echo round_robin rr backup; }
check_failover_pick_first() { check_load echo pick_first pf backup; }
check_no_backup() { check_load echo pick_first nb nobackup; }
check_control_grpcsrv() { check_load grpcsrv round_robin ctl backup; }

# Is a TCP connection to 127.0.0.1:PORT established (the server's end)?
established() {
  local hex
  hex=$(printf '%04X' "$1")
  awk -v p=":$hex" '$4 == "01" && substr($2, length($2) - 4) == p { found = 1 } END { exit !found }' /proc/net/tcp
}

# The drain's length in ms, from a `shutdown:` report ("972 ms", "1.2 s").
drain_ms() { drain_time "$1" | awk '{ printf "%d", ($2 == "s" ? $1 * 1000 : $1) }'; }

# One try: 0 pass, 1 fail, 2 the call was not in flight at SIGTERM after all
# (it had ended: the driver lagged), which says nothing about the server.
grpccli_once() {
  local f=$1
  local files=("$tmp/$f.client" "$tmp/$f.A.out" "$tmp/$f.A.err")
  : >"$tmp/$f.client"
  start_echo "$f.A" || return 1
  local s_pid=$srv_pid
  timeout 30 "$GRPCCLI" -addr "127.0.0.1:$srv_port" -msg sleep:1500ms >"$tmp/$f.client" 2>&1 &
  local c_pid=$! i
  pids+=("$c_pid")
  for ((i = 0; i < 250; i++)); do # <= 5 s: the connection is up
    established "$srv_port" && break
    sleep 0.02
  done
  # grpccli dials with WithBlock (READY once the server's SETTINGS are in),
  # then calls at once: 0.3 s is ample for the HEADERS to arrive, and leaves
  # the call ~1.2 s of the drain to run in.
  sleep 0.3
  local s_rc c_rc=0
  stop_pid "$s_pid" && s_rc=$rc
  wait_pid "$c_pid" 20 || c_rc=$?
  local line report
  line=$(grep -m 1 'reply=' "$tmp/$f.client" || true)
  report=$(tail -n 1 "$tmp/$f.A.out")
  echo "  grpccli: ${line#* * }"
  echo "  server: $report"
  row[cli]=$(printf '%9s %7s %-17s %-13s %-17s %-26s %9s' \
    "$(grep -c 'err=<nil> code=OK' "$tmp/$f.client" || true)" "-" "-" "-" "-" \
    "$(rep "$report" completed)/$(rep "$report" refused)/$(rep "$report" reset) in $(drain_time "$report")" "-")
  ((c_rc == 0)) || { why "grpccli exited $c_rc (124: timeout)" "${files[@]}"; return 1; }
  ((s_rc == 0)) || { why "server exited $s_rc (124: not within 15 s of SIGTERM)" "${files[@]}"; return 1; }
  [[ $line == *'reply="echo:sleep:1500ms" err=<nil> code=OK'* ]] ||
    { why "grpccli's call did not complete OK with echo:sleep:1500ms" "${files[@]}"; return 1; }
  [[ $report == "shutdown: graceful"* && $(rep "$report" completed) == 1 && $(rep "$report" refused) == 0 &&
    $(rep "$report" reset) == 0 && $(rep "$report" forced) == 0 ]] ||
    { why "report is not graceful with completed 1, refused 0, reset 0, forced 0" "${files[@]}"; return 1; }
  # In flight at SIGTERM: the drain waited for it (else it took ~0.1 ms).
  local ms
  ms=$(drain_ms "$report")
  [[ -n $ms ]] && ((ms >= 100)) || { echo "  info: the drain took ${ms:-?} ms: the call had ended before SIGTERM"; return 2; }
}

check_grpccli_inflight() {
  local try out=0
  for try in 1 2 3; do
    grpccli_once "$RUNTIME.cli$try" && return 0 || out=$?
    ((out == 2)) || return 1
    ((try == 3)) || echo "  info: try $try did not have the call in flight at SIGTERM; again"
  done
  echo "  reason: in 3 tries the call was never in flight at SIGTERM (the machine too slow?)"
  return 1
}

run() { tally "${1#check_} ($RUNTIME)" "$1"; } # CHECK

for RUNTIME in smol tokio; do
  row=()
  run check_failover_round_robin
  run check_failover_pick_first
  run check_no_backup
  run check_grpccli_inflight
  echo "  --- $RUNTIME:"
  table_header
  for r in rr:failover_round_robin pf:failover_pick_first nb:no_backup cli:grpccli_inflight; do
    printf '  %-22s %s\n' "${r#*:}" "${row[${r%%:*}]:-(no data)}"
  done
done
RUNTIME=grpc-go
row=()
run check_control_grpcsrv
table_header
printf '  %-22s %s\n' control_grpcsrv "${row[ctl]:-(no data)}"
echo "grpcgo: $passed passed, $failed failed"
((failed == 0))
