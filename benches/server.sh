# shellcheck shell=bash
# Sourced by the per-request and per-drain benchmarks: starts a server and
# waits until it listens.

# start_server OUT BINARY RUNTIME [PREFIX...]: runs [PREFIX...] BINARY
# --runtime RUNTIME on a free port, then the caller's BENCH_SERVER_ARGS (an array,
# if set), its output in OUT/server.out and .err and its pid in
# OUT/server.pid (for the caller's trap); sets server_pid and server_addr
# once it listens, or exits.
start_server() {
  local out=$1 bin=$2 rt=$3
  shift 3
  "$@" "$bin" --runtime "$rt" --listen 127.0.0.1:0 ${BENCH_SERVER_ARGS[@]+"${BENCH_SERVER_ARGS[@]}"} \
    >"$out/server.out" 2>"$out/server.err" &
  server_pid=$!
  echo "$server_pid" >"$out/server.pid"
  server_addr=
  for _ in $(seq 300); do
    server_addr=$(sed -n 's/^listening on //p' "$out/server.out")
    [[ -n $server_addr ]] && return
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "$bin did not start: $(tail -n 3 "$out/server.err")" >&2
  exit 1
}

# callgrind_server FILE BINARY RUNTIME OUT: start_server under
# `valgrind --tool=callgrind`, writing FILE.
callgrind_server() {
  start_server "$4" "$2" "$3" valgrind --tool=callgrind --callgrind-out-file="$1"
}
