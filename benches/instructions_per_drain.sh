#!/usr/bin/env bash
# Instructions per drained connection, for A/B comparisons of server builds'
# drain path (what instructions_per_request.sh is for serving): the server's
# user-space work only, which an instruction count sees without the noise of
# a shared machine (`benches/drain.sh` measures the whole, kernel included).
#
#   bash benches/instructions_per_drain.sh RUNTIME [BINARY...]
#     RUNTIME   smol or tokio (passed as --runtime)
#     BINARY    echo_server builds (default: this tree's, built here)
#
# Each binary runs twice under `valgrind --tool=callgrind`, holding DR_LOW
# (default 1,000) idle lean_client connections in one run and DR_HIGH (2,000)
# in the other. Once lean_client says they are all up (READY), the counters
# are zeroed (`callgrind_control -z`) and the server gets SIGTERM: it drains
# every connection (GOAWAY + PING, the ACK, the final GOAWAY, the linger for
# the client's EOF) and exits. (Ir of the second − Ir of the first) /
# (DR_HIGH − DR_LOW) is the cost of draining one connection, the fixed cost of
# the stop cancelled out. The callgrind files stay in DR_OUT (default
# target/ir-drain) for `callgrind_annotate --inclusive=no`.
#
# The server runs with `--ping-ack-timeout 60s --linger 60s` (DR_SERVER_ARGS):
# a stop's drain shares one PING ACK deadline and one linger deadline among
# its connections, and under valgrind a drain of 2,000 connections takes
# long enough for the default 0.5 s linger deadline to pass half-way through
# (then every connection is woken once, and the later ones time their own):
# a cost of valgrind's slowness, not of a drain at full speed.
# Needs valgrind (installed with apt when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
rt=${1:?usage: instructions_per_drain.sh smol|tokio [BINARY...]}
shift
low=${DR_LOW:-1000} high=${DR_HIGH:-2000} out=${DR_OUT:-target/ir-drain}
read -r -a BENCH_SERVER_ARGS <<<"${DR_SERVER_ARGS---ping-ack-timeout 60s --linger 60s}"
mkdir -p "$out"
command -v valgrind >/dev/null || { apt-get update -qq && apt-get install -y -qq valgrind >/dev/null; }
cargo build --release -q -p winddown-benches --bin lean_client
release=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release
if (($# == 0)); then
  cargo build --release -q --example echo_server
  set -- "$release/examples/echo_server"
fi
# shellcheck source=benches/server.sh
source benches/server.sh
# The server's and the client's pids go through files, so the trap can kill
# them if anything fails inside `run`'s command substitution.
trap 'for f in "$out"/*.pid; do [[ ! -s $f ]] || kill -KILL "$(cat "$f")" 2>/dev/null || true; done' EXIT

# Prints the instructions one run of $1 spent from the signal to its exit,
# draining $2 connections.
run() {
  local bin=$1 k=$2 file="$out/$(basename "$1").$rt.$2.callgrind" client
  callgrind_server "$file" "$bin" "$rt" "$out"
  local pid=$server_pid addr=$server_addr
  "$release/lean_client" --addr "$addr" --conns "$k" --timeout 300 >"$out/client.out" 2>&1 </dev/null &
  client=$!
  echo "$client" >"$out/client.pid"
  for _ in $(seq 3000); do
    grep -q '^READY' "$out/client.out" && break
    kill -0 "$client" 2>/dev/null || break
    sleep 0.1
  done
  grep -q '^READY' "$out/client.out" || { echo "lean_client did not get ready: $(tail -n 3 "$out/client.out")" >&2; exit 1; }
  callgrind_control -z "$pid" >/dev/null 2>&1
  kill -TERM "$pid"
  wait "$pid" || true
  wait "$client" || true
  rm -f "$out/server.pid" "$out/client.pid"
  grep -q "goaway=$k " "$out/client.out" ||
    { echo "not every connection saw a GOAWAY: $(tail -n 1 "$out/client.out")" >&2; exit 1; }
  sed -n 's/^summary: //p' "$file"
}

for bin in "$@"; do
  a=$(run "$bin" "$low")
  b=$(run "$bin" "$high")
  printf '%-40s %8.0f instructions per drained connection (%s)\n' "$bin" "$(((b - a) / (high - low)))" "$rt"
done
