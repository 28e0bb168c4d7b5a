# Shared by the CI check scripts in .ci/: source it after setting NAME (the word
# of the closing `NAME: N passed, N failed` line) and CHECKS (how many checks
# count as failed when setup fails), and after defining `cleanup_hook` if the
# script starts processes. It provides:
#   $tmp                 a scratch directory, removed on exit
#   pids                 processes to kill (KILL) on exit: append to it
#   passed, failed       the counters of the closing line
#   die MSG              a setup failure: every check counts as failed
#   why MSG FILE...      why a check failed, with the files' heads and tails; returns 1
#   wait_pid PID SECS    a pid's exit status, or 124 if it has not exited in time
#   wait_gone PID SECS   the same for a process that is not our child (no status): 0 or 124
#   tally LABEL CMD...   runs one check: prints PASS/FAIL LABEL and counts it
#   wait_count FILE ERE N TENTHS  waits until FILE has N lines matching ERE
#   progress FILE        waits (10 s at most) for a load client's next `ok N` line
#   require "CMDS" "PKGS"  installs Debian packages when commands are missing (never skips)
#   wait_line FILE ERE TENTHS [PID]  waits for a line (while PID lives)
#   get FILE WORD KEY    KEY=value from the first line starting with WORD
#   stop_pid PID         SIGTERM, then KILL after 15 s; rc = exit status (124: forced)
#   rep REPORT KEY       the number after KEY in a `shutdown:` report
#   grpcio_venv          Python grpcio in target/ci-venv; sets PY
#   grpc_peers           builds grpc-go's grpccli/grpcsrv; sets GRPCCLI, GRPCSRV
# shellcheck shell=bash
passed=0 failed=0
tmp=$(mktemp -d)
pids=() # processes a script started and appended here: killed on exit
on_exit() {
  if declare -F cleanup_hook >/dev/null; then cleanup_hook || true; fi
  local pid
  for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap on_exit EXIT
trap 'exit 130' INT; trap 'exit 143' TERM # so signals also run the cleanup

die() {
  echo "FAIL setup: $*" >&2
  echo "$NAME: 0 passed, $CHECKS failed"
  exit 1
}

# Files are shown indented, at most their first and last 20 lines (a spinning
# server's log can be huge); WHY_SKIP, an ERE, drops noise lines first.
why() {
  local msg=$1 f; shift
  echo "  reason: $msg"
  for f in "$@"; do
    echo "  --- $(basename "$f"):"
    { if [[ -n ${WHY_SKIP:-} ]]; then grep -vE "$WHY_SKIP" "$f"; else cat "$f"; fi |
      awk '{ line[NR] = $0 }
        END { for (i = 1; i <= NR; i++)
                if (i <= 20 || i > NR - 20) print "  | " line[i]
                else if (i == 21) print "  | ... (" NR - 40 " lines)" }'; } 2>/dev/null || true
  done
  return 1
}

wait_gone() {
  local pid=$1 deadline=$((SECONDS + $2))
  while kill -0 "$pid" 2>/dev/null; do
    ((SECONDS < deadline)) || return 124
    sleep 0.02
  done
}

wait_pid() {
  wait_gone "$1" "$2" || return
  wait "$1"
}

tally() {
  local label=$1
  shift
  if "$@"; then
    echo "PASS $label"; passed=$((passed + 1))
  else
    echo "FAIL $label"; failed=$((failed + 1))
  fi
}

progress() {
  wait_count "$1" '^ok ' $(($(grep -c '^ok ' "$1" || true) + 1)) 100
}

wait_count() {
  local i
  for ((i = 0; i < $4 * 5; i++)); do
    (($(grep -cE "$2" "$1" || true) >= $3)) && return 0
    sleep 0.02
  done
  return 1
}

require() {
  local cmd missing=0
  for cmd in $1; do command -v "$cmd" >/dev/null || missing=1; done
  ((missing)) || return 0
  [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null ||
    die "$1 missing and cannot install $2 (not root or no apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  # shellcheck disable=SC2086 # a list of packages
  { apt-get update -qq && apt-get install -y -qq $2; } >"$tmp/apt.log" 2>&1 ||
    { cat "$tmp/apt.log" >&2; die "apt-get install $2 failed"; }
  for cmd in $1; do command -v "$cmd" >/dev/null || die "$cmd still missing after installing $2"; done
}

wait_line() { # file, ERE, tenths of a second, [pid that must stay alive]
  local i
  for ((i = 0; i < $3 * 5; i++)); do
    grep -qE "$2" "$1" 2>/dev/null && return 0
    [[ -z ${4:-} ]] || kill -0 "$4" 2>/dev/null || { grep -qE "$2" "$1" 2>/dev/null; return; }
    sleep 0.02
  done
  return 1
}
# A port for a server that must be given one (grpc-go's grpcsrv): below the
# kernel's ephemeral range, so none of the tests' outgoing connections can be
# holding it (20000-49999 overlapped 32768-60999, and a CI run once lost).
guess_port() {
  local low
  low=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null) || low=32768
  ((low > 12000)) || low=32768
  echo $((10000 + RANDOM % (low - 10000)))
}
# start_grpcsrv NAME [PORT]: grpc-go's echo server on 127.0.0.1:PORT, or on
# one of up to five guessed ports; sets srv_pid and srv_port, adds to pids.
start_grpcsrv() {
  local name=$1 fixed=${2:-0} try
  for try in 1 2 3 4 5; do
    srv_port=$fixed
    ((srv_port != 0)) || srv_port=$(guess_port)
    : >"$tmp/$name.out" && : >"$tmp/$name.err"
    "$GRPCSRV" -addr "127.0.0.1:$srv_port" >"$tmp/$name.out" 2>"$tmp/$name.err" &
    srv_pid=$! && pids+=("$srv_pid")
    wait_line "$tmp/$name.err" 'serving on' 50 "$srv_pid" && kill -0 "$srv_pid" 2>/dev/null && return 0
    kill -KILL "$srv_pid" 2>/dev/null || true
    ((fixed == 0)) || break
  done
  why "grpcsrv $name did not start on $srv_port (try $try)" "$tmp/$name.err"
}
# get FILE WORD KEY: KEY=value from the first line whose first word is WORD.
get() {
  awk -v w="$2" -v k="$3" '$1 == w { for (i = 2; i <= NF; i++) { n = index($i, "=");
    if (n && substr($i, 1, n - 1) == k) { print substr($i, n + 1); exit } } }' "$1"
}
# rep REPORT KEY: the number after KEY in a `shutdown:` report.
rep() { sed -n "s/.* $2 \([0-9][0-9]*\).*/\1/p" <<<"$1"; }
stop_pid() { # graceful, forced after 15 s; sets rc to the exit status (124: forced)
  rc=0
  kill -TERM "$1" 2>/dev/null || true
  wait_pid "$1" 15 || rc=$?
  ((rc != 124)) || { kill -KILL "$1" 2>/dev/null; wait "$1" 2>/dev/null || true; }
}

# grpc_peers: builds (when missing or stale) grpc-go's stock peers from
# ../shared/peers/grpc-go and sets PEERS, GRPCCLI and GRPCSRV.
grpc_peers() {
  PEERS=${CARGO_TARGET_DIR:-target}/grpc-go
  local shared
  shared=$(pwd)/../shared/peers/grpc-go
  [[ -f $shared/build.sh ]] || die "$shared/build.sh not found (shared/ beside the repository)"
  if stale "$PEERS/grpccli" "$shared" || stale "$PEERS/grpcsrv" "$shared" ||
    ! command -v go >/dev/null || [[ ! -d /usr/share/gocode/src/google.golang.org/grpc ]]; then
    if [[ $(id -u) != 0 ]] && ! command -v go >/dev/null; then
      die "go and golang-google-grpc-dev missing and not root to apt-get them"
    fi
    bash "$shared/build.sh" "$PEERS" >"$tmp/build.log" 2>&1 ||
      { cat "$tmp/build.log" >&2; die "bash $shared/build.sh $PEERS failed"; }
    tail -n 1 "$tmp/build.log"
  fi
  GRPCCLI=$PEERS/grpccli GRPCSRV=$PEERS/grpcsrv
}
stale() { # binary, source dir: missing or older than a source file
  [[ ! -x $1 ]] || [[ -n $(find "$2" -newer "$1" -type f -print -quit) ]]
}
# grpcio_venv: Python grpcio in a venv of its own (target/ci-venv), made once
# and reused, never skipped; sets PY to its python.
GRPCIO_VERSION=1.85.1 # manylinux x86_64 wheels for CPython 3.10-3.14 (checked with pip download)
grpcio_ok() { [[ -x $PY ]] && "$PY" -c "import grpc, sys; sys.exit(grpc.__version__ != '$GRPCIO_VERSION')" 2>/dev/null; }
apt_install() { # Debian packages, as root; dies with the reason otherwise
  [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null ||
    die "$* needed but cannot be installed (not root or no apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  { apt-get update -qq && apt-get install -y -qq "$@"; } >"$tmp/apt.log" 2>&1 ||
    { cat "$tmp/apt.log" >&2; die "apt-get install $* failed"; }
}
grpcio_venv() {
  VENV=target/ci-venv
  PY=$VENV/bin/python
  grpcio_ok && return 0
  command -v python3 >/dev/null || apt_install python3 python3-venv
  if ! python3 -m venv --clear "$VENV" >"$tmp/venv.log" 2>&1; then
    # Debian's python3 ships venv without ensurepip: that is python3-venv.
    grep -qiE 'ensurepip|python3(\.[0-9]+)?-venv' "$tmp/venv.log" || { cat "$tmp/venv.log" >&2; die "python3 -m venv $VENV failed"; }
    apt_install python3-venv
    python3 -m venv --clear "$VENV" >"$tmp/venv.log" 2>&1 ||
      { cat "$tmp/venv.log" >&2; die "python3 -m venv $VENV failed even with python3-venv installed"; }
  fi
  # --only-binary: a wheel or a clear failure, never a long source build.
  "$PY" -m pip install -q --disable-pip-version-check --only-binary=:all: "grpcio==$GRPCIO_VERSION" \
    >"$tmp/pip.log" 2>&1 || { cat "$tmp/pip.log" >&2; die "pip install grpcio==$GRPCIO_VERSION into $VENV failed"; }
  grpcio_ok || die "grpcio $GRPCIO_VERSION not importable from $PY after pip install"
}
