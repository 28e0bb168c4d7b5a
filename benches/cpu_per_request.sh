#!/usr/bin/env bash
# Server CPU per request, for A/B comparisons of server builds on a noisy
# machine (requests per second move more between runs than the changes
# measured; CPU time per request moves less).
#
#   bash benches/cpu_per_request.sh RUNTIME BINARY... 
#     RUNTIME   smol or tokio (passed as --runtime)
#     BINARY    echo_server builds (or bare_h2), each started in turn with
#               --runtime RUNTIME --listen 127.0.0.1:0
#
# Each binary, in turn, CPU_REPS times (default 3): a 20,000-request warm-up,
# then h2load -c 16 -m 32 -n CPU_REQUESTS (default 200,000) POSTs of 64 bytes
# to /echo; the server's utime + stime (/proc/PID/stat) across that run,
# divided by the requests. Prints one line per run and the medians.
# Needs h2load (nghttp2-client).
set -euo pipefail
rt=${1:?usage: cpu_per_request.sh smol|tokio BINARY...}
shift
(($# > 0)) || { echo "usage: cpu_per_request.sh smol|tokio BINARY..." >&2; exit 2; }
n=${CPU_REQUESTS:-200000} reps=${CPU_REPS:-3}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"; [[ -z ${pid:-} ]] || kill -KILL "$pid" 2>/dev/null || true' EXIT
head -c 64 /dev/zero >"$tmp/body"
tck=$(getconf CLK_TCK)
declare -A runs
for ((r = 1; r <= reps; r++)); do
  for bin in "$@"; do
    "$bin" --runtime "$rt" --listen 127.0.0.1:0 >"$tmp/out" 2>/dev/null &
    pid=$!
    for _ in $(seq 100); do grep -q '^listening on ' "$tmp/out" 2>/dev/null && break; sleep 0.05; done
    port=$(head -n 1 "$tmp/out") && port=${port##*:}
    h2load -c 16 -m 32 -n 20000 -d "$tmp/body" "http://127.0.0.1:$port/echo" >/dev/null 2>&1
    c0=$(awk '{ print $14 + $15 }' "/proc/$pid/stat")
    rps=$(h2load -c 16 -m 32 -n "$n" -d "$tmp/body" "http://127.0.0.1:$port/echo" 2>&1 |
      sed -n 's/.*finished in [^,]*, \([0-9.]*\) req\/s.*/\1/p')
    c1=$(awk '{ print $14 + $15 }' "/proc/$pid/stat")
    kill -TERM "$pid" && wait "$pid" 2>/dev/null || true
    pid=''
    us=$(python3 -c "print(f'{($c1 - $c0) / $tck / $n * 1e6:.2f}')")
    runs[$bin]+="$us "
    printf '%-40s rep %d: %6s us/request  %10s req/s\n' "$bin" "$r" "$us" "$rps"
  done
done
echo "medians (CPU µs per request, $rt):"
for bin in "$@"; do
  printf '  %-40s %s\n' "$bin" "$(tr ' ' '\n' <<<"${runs[$bin]}" | grep . | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }')"
done
