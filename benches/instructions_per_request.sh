#!/usr/bin/env bash
# Instructions per request, for A/B comparisons of server builds: unlike
# requests/s or CPU time, an instruction count does not move with the load of
# a shared machine.
#
#   bash benches/instructions_per_request.sh RUNTIME BINARY...
#     RUNTIME   smol or tokio (passed as --runtime)
#     BINARY    echo_server builds (or bare_h2), each started with
#               --runtime RUNTIME --listen 127.0.0.1:0
#
# Each binary runs twice under `valgrind --tool=callgrind`: h2load -c 16 -m 32
# POSTs of 64 bytes to /echo (IR_LOAD=echo, the default) or gRPC calls of
# /echo.Echo/Say with a 59-byte message (IR_LOAD=grpc, 64 bytes framed),
# IR_LOW (default 4,000) requests in one run and
# IR_HIGH (24,000) in the other; (Ir of the second − Ir of the first) /
# (IR_HIGH − IR_LOW) is the cost of one request, start-up and teardown
# cancelled out. The callgrind files stay in IR_OUT (default target/ir) for
# `callgrind_annotate` (function by function: compare two builds there).
# Needs h2load and valgrind (installed with apt when missing).
set -euo pipefail
rt=${1:?usage: instructions_per_request.sh smol|tokio BINARY...}
shift
(($# > 0)) || { echo "usage: instructions_per_request.sh smol|tokio BINARY..." >&2; exit 2; }
low=${IR_LOW:-4000} high=${IR_HIGH:-24000} out=${IR_OUT:-target/ir} load=${IR_LOAD:-echo}
mkdir -p "$out"
missing=()
command -v valgrind >/dev/null || missing+=(valgrind)
command -v h2load >/dev/null || missing+=(nghttp2-client)
if ((${#missing[@]})); then
  apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null
fi
case $load in
  echo)
    head -c 64 /dev/zero >"$out/body"
    headers=() path=/echo
    ;;
  grpc)
    # A unary gRPC message: not compressed, 4-byte length, 59 zero bytes.
    printf '\x00\x00\x00\x00\x3b' >"$out/body"
    head -c 59 /dev/zero >>"$out/body"
    headers=(-H "content-type: application/grpc" -H "te: trailers") path=/echo.Echo/Say
    ;;
  *) echo "IR_LOAD must be echo or grpc, not $load" >&2; exit 2 ;;
esac
# `run` is called in a command substitution (a subshell): the server's pid goes
# through a file, so the trap here can still kill it if anything fails.
pidfile="$out/server.pid"
# shellcheck source=benches/server.sh
source "$(dirname "$0")/server.sh"
rm -f "$pidfile"
trap '[[ ! -s $pidfile ]] || kill -KILL "$(cat "$pidfile")" 2>/dev/null || true' EXIT

# Prints the instructions of one run of $1 serving $2 requests.
run() {
  local bin=$1 n=$2 file="$out/$(basename "$1").$rt.$load.$2.callgrind"
  callgrind_server "$file" "$bin" "$rt" "$out"
  local pid=$server_pid addr=$server_addr
  h2load -c 16 -m 32 -n "$n" -d "$out/body" "${headers[@]}" "http://$addr$path" \
    >"$out/h2load.out" 2>&1 || true
  grep -q "$n succeeded" "$out/h2load.out" ||
    { echo "h2load against $bin failed: $(tail -n 3 "$out/h2load.out")" >&2; exit 1; }
  kill -TERM "$pid"
  wait "$pid" || true
  rm -f "$pidfile"
  sed -n 's/^summary: //p' "$file"
}

for bin in "$@"; do
  a=$(run "$bin" "$low")
  b=$(run "$bin" "$high")
  printf '%-40s %8.0f instructions per request\n' "$bin" "$(((b - a) / (high - low)))"
done
