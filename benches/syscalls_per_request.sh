#!/usr/bin/env bash
# System calls per request, for A/B comparisons of server builds: how often a
# server writes, reads, waits and wakes a thread per request, at a given
# concurrency (a count, so it does not move with the load of a shared machine
# as requests/s do).
#
#   bash benches/syscalls_per_request.sh RUNTIME BINARY...
#     RUNTIME   smol or tokio (passed as --runtime)
#     BINARY    echo_server builds (or bare_h2), each started in turn with
#               --runtime RUNTIME --listen 127.0.0.1:0
#
# Each binary: a 5,000-request warm-up, then `strace -c -f` attached while
# h2load -c SYS_CONNS (default 16) -m SYS_STREAMS (default 32) sends
# SYS_REQUESTS (default 20,000) POSTs of 64 bytes to /echo; prints each call
# made at least once per 100 requests, divided by the requests. With
# SYS_CONNS=1 SYS_STREAMS=1 the requests come one at a time.
# Needs h2load and strace (installed with apt when missing).
set -euo pipefail
rt=${1:?usage: syscalls_per_request.sh smol|tokio BINARY...}
shift
(($# > 0)) || { echo "usage: syscalls_per_request.sh smol|tokio BINARY..." >&2; exit 2; }
conns=${SYS_CONNS:-16} streams=${SYS_STREAMS:-32} n=${SYS_REQUESTS:-20000}
missing=()
command -v strace >/dev/null || missing+=(strace)
command -v h2load >/dev/null || missing+=(nghttp2-client)
if ((${#missing[@]})); then
  apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"; [[ -z ${pid:-} ]] || kill -KILL "$pid" 2>/dev/null || true' EXIT
# shellcheck source=benches/server.sh
source "$(dirname "$0")/server.sh"
head -c 64 /dev/zero >"$tmp/body"
echo "system calls per request ($rt, h2load -c $conns -m $streams -n $n):"
for bin in "$@"; do
  start_server "$tmp" "$bin" "$rt"
  pid=$server_pid url="http://$server_addr/echo"
  h2load -c "$conns" -m "$streams" -n 5000 -d "$tmp/body" "$url" >/dev/null 2>&1
  strace -c -f -p "$pid" -o "$tmp/strace" 2>"$tmp/strace.err" &
  st=$!
  # Attached once strace says so (for every thread), not after a guessed delay.
  for _ in $(seq 100); do grep -q 'attached' "$tmp/strace.err" 2>/dev/null && break; sleep 0.05; done
  h2load -c "$conns" -m "$streams" -n "$n" -d "$tmp/body" "$url" >/dev/null 2>&1
  kill -INT "$st" && wait "$st" 2>/dev/null || true
  kill -TERM "$pid" && wait "$pid" 2>/dev/null || true
  pid=''
  # strace -c columns: % time, seconds, usecs/call, calls, [errors,] syscall.
  printf '  %-40s %s\n' "$bin" "$(awk -v n="$n" '$NF != "total" && $4 ~ /^[0-9]+$/ && $4 / n >= 0.01 {
    printf "%s %.2f  ", $NF, $4 / n }' "$tmp/strace")"
done
