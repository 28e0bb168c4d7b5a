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
# to /echo; the server's utime and stime (/proc/PID/stat) across that run,
# divided by the requests. Prints one line per run, the medians, and for each
# binary after the first the median of its per-repetition ratios to the first
# (runs of one repetition are back to back, so a ratio is less exposed to the
# machine's load than the two medians are; every other repetition runs the
# binaries in reverse order). Threads: smol servers read
# SMOL_THREADS (default: one per core). With CPU_LATENCY=1, each run is
# followed by the same h2load run with --log-file (on the same server), and
# the medians add its p99 request time and the median per-repetition p99
# ratio (serve_bench.sh's latency figure, in this script's pairing).
# Needs h2load (nghttp2-client).
set -euo pipefail
rt=${1:?usage: cpu_per_request.sh smol|tokio BINARY...}
shift
(($# > 0)) || { echo "usage: cpu_per_request.sh smol|tokio BINARY..." >&2; exit 2; }
n=${CPU_REQUESTS:-200000} reps=${CPU_REPS:-3}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"; [[ -z ${pid:-} ]] || kill -KILL "$pid" 2>/dev/null || true' EXIT
# shellcheck source=benches/server.sh
source "$(dirname "$0")/server.sh"
head -c 64 /dev/zero >"$tmp/body"
tck=$(getconf CLK_TCK)
out=$tmp/runs
: >"$out"
bins=("$@")
for ((r = 1; r <= reps; r++)); do
  # Every other repetition runs the binaries in reverse: whichever runs
  # second measured up to 2 % slower in A/A runs (the same binary twice).
  order=$(seq 1 $#)
  ((r % 2)) || order=$(seq $# -1 1)
  for i in $order; do
    bin=${bins[i - 1]}
    start_server "$tmp" "$bin" "$rt"
    pid=$server_pid url="http://$server_addr/echo"
    h2load -c 16 -m 32 -n 20000 -d "$tmp/body" "$url" >/dev/null 2>&1
    read -r u0 s0 < <(awk '{ print $14, $15 }' "/proc/$pid/stat")
    h2load -c 16 -m 32 -n "$n" -d "$tmp/body" "$url" >"$tmp/h2load" 2>&1 || true
    read -r u1 s1 < <(awk '{ print $14, $15 }' "/proc/$pid/stat")
    p99=0
    if [[ ${CPU_LATENCY:-0} == 1 ]]; then
      # h2load appends to its --log-file: without this, each p99 would be
      # over every run so far, and the ratios would drift towards 1.
      rm -f "$tmp/log"
      h2load -c 16 -m 32 -n "$n" -d "$tmp/body" --log-file "$tmp/log" "$url" >"$tmp/h2load-log" 2>&1 || true
      grep -q "requests: .* $n succeeded" "$tmp/h2load-log" ||
        { echo "h2load --log-file against $bin failed" >&2; exit 1; }
      # The log's third column is the request's time in µs.
      p99=$(awk -F '\t' '{ print $3 }' "$tmp/log" | sort -n |
        awk '{ a[NR] = $1 } END { print a[int(NR * 0.99) + 1] / 1000 }')
    fi
    kill -TERM "$pid" && wait "$pid" 2>/dev/null || true
    pid=''
    # h2load exits 0 even when requests fail: every one must have succeeded.
    grep -q "requests: .* $n succeeded" "$tmp/h2load" ||
      { echo "h2load against $bin failed: $(tail -n 3 "$tmp/h2load")" >&2; exit 1; }
    rps=$(sed -n 's/.*finished in [^,]*, \([0-9.]*\) req\/s.*/\1/p' "$tmp/h2load")
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$r" "$i" "$((u1 - u0))" "$((s1 - s0))" "$rps" "$p99" >>"$out"
    python3 -c "import sys; u, s, n, t = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
print(f'{sys.argv[5]:<40} rep {sys.argv[6]}: {(u + s) / t / n * 1e6:6.2f} us/request (user {u / t / n * 1e6:.2f}, sys {s / t / n * 1e6:.2f})  {float(sys.argv[7]):10.0f} req/s')" \
      "$((u1 - u0))" "$((s1 - s0))" "$n" "$tck" "$bin" "$r" "$rps"
  done
done
python3 - "$out" "$n" "$tck" "$rt" "$@" <<'PY'
import statistics, sys
path, n, tck, rt, bins = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5:]
# runs[binary's position][repetition] = (CPU µs, user µs, req/s, p99 ms or 0)
runs = {}
for line in open(path):
    r, i, u, s, rps, p99 = line.rstrip("\n").split("\t")
    runs.setdefault(int(i), {})[int(r)] = ((int(u) + int(s)) / tck / n * 1e6, int(u) / tck / n * 1e6,
                                           float(rps), float(p99))
latency = any(run[3] > 0 for b in runs.values() for run in b.values())

def median(values, fmt):
    values = list(values)
    return format(statistics.median(values), fmt) if values else "n/a"

print(f"medians ({rt}): CPU µs per request (user), req/s; ratios to {bins[0]} per repetition")
first = runs[1]
for i, b in enumerate(bins, 1):
    mine = runs[i]
    line = (f"  {b:<40} {median((run[0] for run in mine.values()), '6.2f')} "
            f"({median((run[1] for run in mine.values()), '.2f')})  {median((run[2] for run in mine.values()), '10.0f')}")
    if latency:
        line += f"  p99 {median((run[3] for run in mine.values()), '.2f')} ms"
    if i > 1:
        def ratio(k):
            return (mine[r][k] / first[r][k] for r in mine if r in first and first[r][k] > 0)
        line += f"   CPU ×{median(ratio(0), '.3f')}  req/s ×{median(ratio(2), '.3f')}"
        if latency:
            line += f"  p99 ×{median(ratio(3), '.3f')}"
    print(line)
PY
