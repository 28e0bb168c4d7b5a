# Shared by the CI check scripts in .ci/: source it after setting NAME (the word
# of the closing `NAME: N passed, N failed` line) and CHECKS (how many checks
# count as failed when setup fails), and after defining `cleanup_hook` if the
# script starts processes. It provides:
#   $tmp                 a scratch directory, removed on exit
#   passed, failed       the counters of the closing line
#   die MSG              a setup failure: every check counts as failed
#   why MSG FILE...      why a check failed, with the files' heads and tails; returns 1
#   wait_pid PID SECS    a pid's exit status, or 124 if it has not exited in time
#   require "CMDS" "PKGS"  installs Debian packages when commands are missing (never skips)
# shellcheck shell=bash
passed=0 failed=0
tmp=$(mktemp -d)
on_exit() {
  if declare -F cleanup_hook >/dev/null; then cleanup_hook || true; fi
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

wait_pid() {
  local pid=$1 deadline=$((SECONDS + $2))
  while kill -0 "$pid" 2>/dev/null; do
    ((SECONDS < deadline)) || return 124
    sleep 0.02
  done
  wait "$pid"
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
