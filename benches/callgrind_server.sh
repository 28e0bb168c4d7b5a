# Sourced by the instruction-count benchmarks (instructions_per_request.sh,
# instructions_per_drain.sh): starts a server under callgrind.

# callgrind_server FILE BINARY RUNTIME OUT: runs BINARY --runtime RUNTIME on
# a free port under `valgrind --tool=callgrind`, writing FILE, its output in
# OUT/server.out and .err and its pid in OUT/server.pid (for the caller's
# trap); sets server_pid and server_addr once it listens, or exits.
callgrind_server() {
  local file=$1 bin=$2 rt=$3 out=$4
  valgrind --tool=callgrind --callgrind-out-file="$file" "$bin" --runtime "$rt" --listen 127.0.0.1:0 \
    >"$out/server.out" 2>"$out/server.err" &
  server_pid=$!
  echo "$server_pid" >"$out/server.pid"
  server_addr=
  for _ in $(seq 300); do
    server_addr=$(sed -n 's/^listening on //p' "$out/server.out")
    [[ -n $server_addr ]] && return
    sleep 0.1
  done
  echo "$bin did not start" >&2
  exit 1
}
