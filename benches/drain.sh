#!/usr/bin/env bash
# Drain latency vs idle connections (issue 6, item 1).
#
# For each K in DRAIN_KS, each server (examples/echo_server on smol and on
# tokio, and on tokio with one thread: its current-thread scheduler, to show
# what the multi-thread one's other workers add; grpc-go's grpcsrv from
# ../shared/peers/grpc-go; benches' epoll_echo: echo_server's server and
# handler on a runtime of one thread and one edge-triggered epoll, to show
# what tokio's and async-io's reactors add to winddown's own cost; and with
# the lean client only, benches' floor_server: one thread on a raw
# edge-triggered epoll making the issue's five calls per connection and
# nothing else, to show how much of the CPU a server making those calls
# cannot save) and each client kind
# (benches' lean_client: raw frames on one thread, ACKs at once, closes on the
# final GOAWAY; grpc-go's grpccli -conns K -rpc=true), DRAIN_REPS times:
# K connections are opened and left idle, the server gets SIGTERM, and we take
#   stop_ms      the server's own figure: echo_server's `shutdown: graceful in`,
#                grpcsrv's `GracefulStop returned after`;
#   client_ms    from the signal until the client saw every connection end: the
#                lean client's last final GOAWAY; grpccli's exit (it exits when
#                its last connection has left READY);
#   cpu_us/conn  the server's CPU (user+sys) from just before the signal to its
#                exit (its process CPU clock, then wait4's rusage), over K.
# Then, for K = DRAIN_STRACE_K (and K = 1, to subtract the fixed cost) with the
# lean client: `strace -c -f` attached to the server just before the signal,
# giving system calls and futex calls (cross-thread wake-ups) per connection.
# The runs are interleaved (each repetition runs every server in turn), and
# the tables give medians and, as each ratio to grpc-go (or to the floor),
# the median of the per-repetition ratios.
#
#   bash benches/drain.sh                               # full: K = 1 100 1000 10000, 5 reps (~5-6 min)
#   DRAIN_KS="1 100" DRAIN_REPS=1 bash benches/drain.sh # smoke (CI), < 1 min once built
#
# Env: DRAIN_KS, DRAIN_REPS, DRAIN_STRACE_K (0: no strace), DRAIN_LEAN_RPC
# (1: the lean client makes one gRPC call per connection before idling; default
# 0, idle from the handshake), DRAIN_CLIENTS (default "lean grpccli"),
# DRAIN_FLOOR (0: leave the floor server out; default 1), DRAIN_EPOLL (0: leave
# epoll_echo out; default 1), DRAIN_TOKIO1 (0: leave echo_server on tokio with
# one thread out; default 1),
# DRAIN_ECHO_SERVER (an echo_server binary to measure instead of building this
# tree's, e.g. a candidate fix built elsewhere), DRAIN_OUT (default
# target/drain: drain.csv, summary.md, logs), DRAIN_SVG (default
# BENCHMARKS-drain.svg for the full K list, $DRAIN_OUT/drain.svg otherwise).
# Exits non-zero if any run failed or did not drain every connection (the
# figures are never assertions: slow is not a failure). Needs python3;
# installs strace (and Go + grpc-go via build.sh) with apt when missing.
# Raises `ulimit -n` to the hard limit (10,000 connections need > 10,000
# descriptors in the server and in the client).
set -euo pipefail
cd "$(dirname "$0")/.."

DEFAULT_KS="1 100 1000 10000"
KS=${DRAIN_KS:-$DEFAULT_KS}
REPS=${DRAIN_REPS:-5}
STRACE_K=${DRAIN_STRACE_K:-1000}
LEAN_RPC=${DRAIN_LEAN_RPC:-0}
OUT=${DRAIN_OUT:-target/drain}
if [[ -z ${DRAIN_SVG:-} ]]; then
  if [[ $KS == "$DEFAULT_KS" ]]; then DRAIN_SVG=BENCHMARKS-drain.svg; else DRAIN_SVG=$OUT/drain.svg; fi
fi
TARGET=${CARGO_TARGET_DIR:-target}
mkdir -p "$OUT"

die() { echo "drain.sh: $*" >&2; exit 1; }

# --- descriptors: the largest K plus the listener, stdio and the runtime's own.
max_k=0
for k in $KS; do ((k > max_k)) && max_k=$k; done
hard=$(ulimit -Hn)
if [[ $hard != unlimited ]] && ((hard < max_k + 64)); then
  die "ulimit -Hn is $hard; K = $max_k needs $((max_k + 64)) descriptors"
fi
ulimit -n "$hard"

# --- build: the echo server, the lean client, the plot.
if [[ -z ${DRAIN_ECHO_SERVER:-} ]]; then
  cargo build --release -q --example echo_server || die "cargo build --example echo_server failed"
fi
cargo build --release -q -p winddown-benches --bin lean_client --bin floor_server --bin epoll_echo --bin plot_drain ||
  die "cargo build -p winddown-benches failed"
ECHO_SERVER=${DRAIN_ECHO_SERVER:-$TARGET/release/examples/echo_server}
LEAN_CLIENT=$TARGET/release/lean_client
FLOOR_SERVER=$TARGET/release/floor_server
EPOLL_ECHO=$TARGET/release/epoll_echo
PLOT=$TARGET/release/plot_drain

# --- grpc-go's peers, built as .ci/grpcgo.sh does (rebuilt when their sources change).
PEERS=$TARGET/grpc-go
SHARED=$(pwd)/../shared/peers/grpc-go
stale() { [[ ! -x $1 ]] || [[ -n $(find "$2" -newer "$1" -type f -print -quit) ]]; }
if stale "$PEERS/grpcsrv" "$SHARED" || stale "$PEERS/grpccli" "$SHARED"; then
  [[ -f $SHARED/build.sh ]] || die "$SHARED/build.sh not found (shared/ beside the repository)"
  bash "$SHARED/build.sh" "$PEERS" >"$OUT/grpc-go-build.log" 2>&1 ||
    { cat "$OUT/grpc-go-build.log" >&2; die "bash $SHARED/build.sh failed"; }
  tail -n 1 "$OUT/grpc-go-build.log"
fi

# --- strace, for the system-call counts.
if [[ $STRACE_K != 0 ]] && [[ " $KS " == *" $STRACE_K "* ]] && ! command -v strace >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  { apt-get update -qq && apt-get install -y -qq strace >/dev/null; } || echo "drain.sh: no strace; skipping the system-call counts" >&2
fi

# --- the runs and the tables (Python for wait4's rusage and the CPU clock of another process).
driver=$(mktemp)
trap 'rm -f "$driver"' EXIT
cat >"$driver" <<'PY'
import os, re, signal, socket, statistics, subprocess, sys, threading, time

echo_server, lean_client, grpcsrv, grpccli, out = sys.argv[1:6]
ks = [int(k) for k in sys.argv[6].split()]
reps, strace_k, lean_rpc = int(sys.argv[7]), int(sys.argv[8]), sys.argv[9] == "1"
SERVERS = (["smol", "tokio"] + (["tokio1"] if os.environ.get("DRAIN_TOKIO1", "1") != "0" else [])
           + ["grpc-go"] + (["floor"] if os.environ.get("DRAIN_FLOOR", "1") != "0" else [])
           + (["epoll"] if os.environ.get("DRAIN_EPOLL", "1") != "0" else []))
CLIENTS = sys.argv[10].split()
floor_server, epoll_echo = sys.argv[11:13]
SETTLE_S = 0.5  # between READY and the signal: the connections go idle
procs = []


sys.path.insert(0, os.path.join(os.getcwd(), "benches"))
from bench_procs import Proc as _Proc, fmt, log  # noqa: E402


class Proc(_Proc):
    """A child reaped with wait4, registered for the final clean-up."""

    def __init__(self, argv, stdin=False, logname=None):
        super().__init__(argv, stdin, logname)
        procs.append(self)

    def save(self):
        super().save(out)


def cpu_clock(pid):
    """The process's CPU clock (all threads, user+sys), in seconds."""
    return time.clock_gettime((~pid << 3) | 2)  # MAKE_PROCESS_CPUCLOCK(pid, CPUCLOCK_SCHED)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def go_duration(text):
    """A Go time.Duration's String(): 1m2.5s, 1.5s, 12.3ms, 45µs, 800ns."""
    units = {"h": 3600e3, "m": 60e3, "s": 1e3, "ms": 1, "us": 1e-3, "µs": 1e-3, "ns": 1e-6}
    return sum(float(n) * units[u] for n, u in re.findall(r"([0-9.]+)(h|ms|m|s|µs|us|ns)", text))


def start_server(name, tag):
    if name in ("floor", "epoll"):
        binary = floor_server if name == "floor" else epoll_echo
        grace = ["--grace", "120s"] if name == "epoll" else []
        srv = Proc([binary, "--listen", "127.0.0.1:0"] + grace, logname=f"{tag}.server.log")
        ok = srv.wait_line(r"^listening on (\S+)", 10)
        addr = ok and ok.group(1)
    elif name == "grpc-go":
        addr = f"127.0.0.1:{free_port()}"
        srv = Proc([grpcsrv, "-addr", addr], logname=f"{tag}.server.log")
        ok = srv.wait_line(r"serving on", 10)
    else:
        runtime = ["--runtime", "tokio", "--threads", "1"] if name == "tokio1" else ["--runtime", name]
        srv = Proc([echo_server] + runtime + ["--listen", "127.0.0.1:0", "--grace", "120s"],
                   logname=f"{tag}.server.log")
        ok = srv.wait_line(r"^listening on (\S+)", 10)
        addr = ok and ok.group(1)
    if not ok:
        raise RuntimeError(f"{name} did not start: {srv.lines[-5:]}")
    return srv, addr


def start_client(kind, addr, k, tag):
    if kind == "lean":
        argv = [lean_client, "--addr", addr, "--conns", str(k), "--timeout", "120"]
        if lean_rpc:
            argv.append("--rpc")
        cli = Proc(argv, stdin=True, logname=f"{tag}.client.log")
        ok = cli.wait_line(r"^READY ", 120)
    else:
        cli = Proc([grpccli, "-addr", addr, "-conns", str(k), "-rpc=true", "-hold", "120s"],
                   logname=f"{tag}.client.log")
        ok = cli.wait_line(r"READY: ", 300)
    if not ok:
        raise RuntimeError(f"{kind} client did not get ready: {cli.lines[-5:]}")
    return cli


def attach_strace(pid, path):
    st = subprocess.Popen(["strace", "-c", "-f", "-p", str(pid), "-o", path],
                          stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    line = st.stderr.readline()  # "strace: Process N attached with M threads" once all are attached
    if "attached" not in line:
        raise RuntimeError(f"strace did not attach: {line}")
    threading.Thread(target=st.stderr.read, daemon=True).start()
    return st


def parse_strace(path):
    calls = {}
    for line in open(path):
        f = line.split()
        if len(f) >= 5 and f[0][0].isdigit() and f[-1] != "total":
            calls[f[-1]] = int(f[3])
    return calls


def run(server, client, k, rep, strace=False):
    tag = f"{server}-{client}-k{k}-r{rep}" + ("-strace" if strace else "")
    srv = cli = st = None
    try:
        srv, addr = start_server(server, tag)
        cli = start_client(client, addr, k, tag)
        time.sleep(SETTLE_S)
        if strace:
            st = attach_strace(srv.pid, os.path.join(out, f"{tag}.strace"))
            time.sleep(0.05)
        srv_done, cli_done = srv.reaper(), cli.reaper()
        cpu0 = cpu_clock(srv.pid)
        t_sig = time.time()
        os.kill(srv.pid, signal.SIGTERM)
        if client == "lean":
            cli.p.stdin.write(f"{t_sig:.6f}\n")
            cli.p.stdin.flush()
        srv_done.join(150)
        cli_done.join(150)
        if srv.rusage is None or cli.exit_at is None:
            raise RuntimeError("the server or the client did not exit within 150 s")
        srv.wait_eof(2)  # the reader threads take the last lines
        cli.wait_eof(2)
        cpu = srv.rusage.ru_utime + srv.rusage.ru_stime - cpu0
        row = dict(server=server, client=client, k=k, rep=rep, stop_ms="", client_ms="",
                   cpu_us_per_conn=f"{cpu * 1e6 / max(k, 1):.2f}", client_cpu_us_per_conn="", ok=1)
        if server == "grpc-go":
            m = srv.wait_line(r"GracefulStop returned after (\S+)", 1)
            row["stop_ms"] = f"{go_duration(m.group(1)):.3f}" if m else ""
        else:
            m = srv.wait_line(r"^shutdown: (\w+) in ([0-9.]+) (ms|s);.*drained (\d+), forced (\d+)", 1)
            if m:
                row["stop_ms"] = f"{float(m.group(2)) * (1000 if m.group(3) == 's' else 1):.3f}"
                if m.group(1) != "graceful" or int(m.group(4)) != k or m.group(5) != "0":
                    row["ok"] = 0
        if client == "lean":
            m = cli.wait_line(r"^DONE (.*)", 1)
            d = dict(kv.split("=") for kv in m.group(1).split()) if m else {}
            if d.get("last_us", "-") != "-":
                row["client_ms"] = f"{int(d['last_us']) / 1000:.3f}"
            if d.get("client_cpu_us", "-") != "-":
                row["client_cpu_us_per_conn"] = f"{int(d['client_cpu_us']) / max(k, 1):.2f}"
            if d.get("goaway") != str(k):
                row["ok"] = 0
        else:
            row["client_ms"] = f"{(cli.exit_at - t_sig) * 1000:.3f}"
            m = cli.wait_line(r"(\d+)/(\d+) connections left READY", 1)
            if not m or m.group(1) != str(k):
                row["ok"] = 0
        if not row["stop_ms"]:
            row["ok"] = 0
        if st:
            st.wait(30)
            row["strace"] = parse_strace(os.path.join(out, f"{tag}.strace"))
        if not row["ok"]:
            log(f"  {tag}: INCOMPLETE (see {out}/{tag}.*.log)")
        return row
    finally:
        for p in (cli, srv):
            if p:
                p.kill()
                p.save()
        if st and st.poll() is None:
            st.kill()


def median(xs):
    xs = [float(x) for x in xs if x != ""]
    return statistics.median(xs) if xs else None


def served(client, servers):
    """The floor server serves no gRPC call: it runs with the lean client only, idle."""
    return [s for s in servers if s != "floor" or (client == "lean" and not lean_rpc)]


def display_name(server):
    return {"grpc-go": "grpc-go", "floor": "floor (raw epoll)", "tokio1": "winddown tokio, 1 thread",
            "epoll": "winddown on raw epoll"}.get(server, f"winddown {server}")


def paired_ratios(rows, server, ref, client, k, f):
    """server's figure over ref's, one ratio per repetition (both ran in it,
    back to back): the machine's load moves both, so their ratio moves less
    than either median does."""
    by_rep = {}
    for r in rows:
        if r["ok"] and r["client"] == client and r["k"] == k and r[f] != "" and r["server"] in (server, ref):
            by_rep.setdefault(r["rep"], {})[r["server"]] = float(r[f])
    return sorted(d[server] / d[ref] for d in by_rep.values() if server in d and d.get(ref))


started = time.time()
rows = []
fields = ["server", "client", "k", "rep", "stop_ms", "client_ms", "cpu_us_per_conn", "client_cpu_us_per_conn", "ok"]
with open(os.path.join(out, "drain.csv"), "w") as csv:
    csv.write(",".join(fields) + "\n")
    for k in ks:
        for rep in range(1, reps + 1):
            for client in CLIENTS:
                # Rotate the order, so no server always runs first (or right after another's build).
                order = SERVERS[(rep - 1) % len(SERVERS):] + SERVERS[:(rep - 1) % len(SERVERS)]
                for server in served(client, order):
                    t0 = time.time()
                    try:
                        row = run(server, client, k, rep)
                    except Exception as e:  # one failed run must not lose the others
                        log(f"  K={k} rep {rep} {client} {server}: FAILED: {e}")
                        row = dict(server=server, client=client, k=k, rep=rep, stop_ms="", client_ms="",
                                   cpu_us_per_conn="", client_cpu_us_per_conn="", ok=0)
                    rows.append(row)
                    csv.write(",".join(str(row[f]) for f in fields) + "\n")
                    csv.flush()
                    log(f"  K={k:<6} rep {rep} {client:<8} {server:<8} stop {row['stop_ms']:>10} ms  "
                        f"client {row['client_ms']:>10} ms  cpu/conn {row['cpu_us_per_conn']:>8} µs"
                        f"  ({time.time() - t0:.1f} s)")

traces = {}
if strace_k and strace_k in ks and subprocess.run(["sh", "-c", "command -v strace"], capture_output=True).returncode == 0:
    for server in served("lean", SERVERS):
        for k in (1, strace_k):
            try:
                traces[(server, k)] = run(server, "lean", k, 0, strace=True)["strace"]
            except Exception as e:
                log(f"  strace K={k} {server}: FAILED: {e}")
                traces[(server, k)] = {}
            log(f"  strace K={k} {server}: {sum(traces[(server, k)].values())} calls")

def summary():
    lines = []
    p = lines.append
    med = {}
    for r in rows:
        med.setdefault((r["server"], r["client"], r["k"]), []).append(r)
    def m(server, client, k, f):
        return median(r[f] for r in med.get((server, client, k), []) if r["ok"])
    def x(server, client, k, f, ref="grpc-go"):
        """The median of the per-repetition ratios to ref, or None."""
        rs = paired_ratios(rows, server, ref, client, k, f)
        return statistics.median(rs) if rs else None
    def xs(server, client, k, f, ref="grpc-go"):
        return fmt(x(server, client, k, f, ref), 2)
    def spread(server, client, k, f, ref="grpc-go"):
        rs = paired_ratios(rows, server, ref, client, k, f)
        return f" (repetitions {rs[0]:.2f}–{rs[-1]:.2f})" if len(rs) > 1 else ""
    n_bad = sum(1 for r in rows if not r["ok"])
    p(f"Medians of {reps} run(s) each; × = the median of the per-repetition ratios to grpc-go"
      " (each repetition runs every server back to back; lower is better).")
    if n_bad:
        p(f"**{n_bad} run(s) incomplete** (not every connection drained, or no report): left out of the medians.")
    titles = {"lean": "lean client (raw frames, one thread)", "grpccli": "grpc-go client (grpccli -rpc=true)"}
    for client in CLIENTS:
        title = titles[client]
        p("")
        p(f"#### {title}")
        p("")
        p("| K | server | stop (server's figure) | × | client saw all closed | × | per conn | server CPU / conn | × |"
          + (" client CPU / conn |" if client == "lean" else ""))
        p("|---:|---|---:|---:|---:|---:|---:|---:|---:|" + ("---:|" if client == "lean" else ""))
        for k in ks:
            for server in served(client, SERVERS):
                stop, cli, cpu = (m(server, client, k, f) for f in ("stop_ms", "client_ms", "cpu_us_per_conn"))
                per = None if cli is None else cli * 1000 / k
                name = display_name(server)
                line = (f"| {k:,} | {name} | {fmt(stop, 2)} ms | {xs(server, client, k, 'stop_ms')} | "
                        f"{fmt(cli, 2)} ms | {xs(server, client, k, 'client_ms')} | {fmt(per)} µs | "
                        f"{fmt(cpu)} µs | {xs(server, client, k, 'cpu_us_per_conn')} |")
                if client == "lean":
                    line += f" {fmt(m(server, client, k, 'client_cpu_us_per_conn'))} µs |"
                p(line)
    if traces:
        p("")
        p(f"#### system calls per drained connection (strace -c -f, lean client, (K={strace_k} − K=1) / {strace_k - 1})")
        p("")
        p("| server | syscalls / conn | futex / conn | the rest, per conn |")
        p("|---|---:|---:|---|")
        for server in served("lean", SERVERS):
            big, small = traces[(server, strace_k)], traces[(server, 1)]
            per = {c: (big.get(c, 0) - small.get(c, 0)) / (strace_k - 1) for c in set(big) | set(small)}
            total = sum(per.values())
            rest = ", ".join(f"{c} {v:.2f}" for c, v in sorted(per.items(), key=lambda x: -x[1])
                             if c != "futex" and v >= 0.05)
            name = display_name(server)
            p(f"| {name} | {total:.2f} | {per.get('futex', 0):.2f} | {rest} |")
    # The issue's targets, judged from the paired ratios above.
    p("")
    p("#### targets")
    p("")
    judged = [s for s in ("smol", "tokio", "tokio1") if s in SERVERS]
    p("| target | " + " | ".join(display_name(s).removeprefix("winddown ") for s in judged) + " |")
    p("|---|" + "---|" * len(judged))
    def row(label, cells):
        p(f"| {label} | " + " | ".join(cells) + " |")
    def judge(cond):
        return "-" if cond is None else ("met" if cond else "**missed**")
    for k in (1000, 10000):
        if k not in ks:
            continue
        for f, label in (("stop_ms", "server's stop"), ("client_ms", "client saw all closed")):
            cells = []
            for server in judged:
                r = x(server, "lean", k, f)
                cells.append(f"{fmt(r, 2)}× {judge(None if r is None else r <= 0.8)}")
            row(f"lean, K={k:,}: {label} ≤ 0.8× grpc-go", cells)
    big = [k for k in ks if k >= 1000]
    cells = []
    for server in judged:
        rs = [(x(server, "lean", k, "cpu_us_per_conn"), k) for k in big]
        worst, at = max(((r, k) for r, k in rs if r is not None), default=(None, None))
        where = "" if at is None else f" at K={at:,}{spread(server, 'lean', at, 'cpu_us_per_conn')}"
        cells.append(f"{fmt(worst, 2)}×{where} {judge(None if worst is None else worst <= 0.6)}")
    if big:
        row("lean, K≥1,000: server CPU / conn ≤ 0.6× grpc-go (worst K)", cells)
    if traces:
        cells = []
        for server in judged:
            big_t, small_t = traces[(server, strace_k)], traces[(server, 1)]
            total = (sum(big_t.values()) - sum(small_t.values())) / (strace_k - 1)
            fx = (big_t.get("futex", 0) - small_t.get("futex", 0)) / (strace_k - 1)
            cells.append(f"{total:.1f} calls, {fx:.2f} futex {judge(total <= 5 and fx < 0.05)}")
        row(f"≤ 5 syscalls / conn, no per-conn futex (K={strace_k})", cells)
    # Per-connection cost from the first K where fixed costs (process exit,
    # the stop's own phases) no longer show, to the largest.
    lo = min((k for k in ks if k >= 1000 and k < max(ks)), default=None) or min((k for k in ks if k >= 100), default=None)
    if lo is not None and max(ks) > lo:
        cells = []
        for server in judged:
            a = m(server, "lean", lo, "cpu_us_per_conn")
            b = m(server, "lean", max(ks), "cpu_us_per_conn")
            c = m(server, "lean", lo, "client_ms")
            d = m(server, "lean", max(ks), "client_ms")
            if None in (a, b, c, d):
                cells.append("-")
                continue
            grow_cpu, grow_t = b / a, (d / max(ks)) / (c / lo)
            cells.append(f"CPU/conn ×{grow_cpu:.2f}, time/conn ×{grow_t:.2f} {judge(grow_cpu <= 1.5 and grow_t <= 1.5)}")
        row(f"flat cost: K={lo:,} → {max(ks):,} (≤ 1.5× taken as flat)", cells)
    if "grpccli" in CLIENTS:
        cells = []
        for server in judged:
            worst, where = None, ""
            for k in ks:
                for f, label in (("stop_ms", "stop"), ("client_ms", "client")):
                    r = x(server, "grpccli", k, f)
                    if r is not None and (worst is None or r > worst):
                        worst, where = r, f" (K={k:,}, {label})"
            # Three decimals: at parity, two would print 1.00 beside "missed".
            cells.append(f"worst {fmt(worst, 3)}×{where} {judge(None if worst is None else worst <= 1.0)}")
        row("grpc-go client: never slower than grpc-go (every K, both figures)", cells)
    if "lean" in CLIENTS and "floor" in served("lean", SERVERS):
        p("")
        p("#### against the floor (server CPU per drained connection, lean client; × the floor server's)")
        p("")
        p("The floor server makes the issue's five calls per connection on one thread and nothing else:"
          " what a server making those calls cannot save. A server at 0.6× of grpc-go's CPU is at most"
          " 0.6 / (floor × grpc-go) times the floor's.")
        p("")
        others = [s for s in ("smol", "tokio", "tokio1", "epoll", "grpc-go") if s in SERVERS]
        p("| K | floor CPU / conn | floor × grpc-go | " + " | ".join(f"{display_name(s)} × floor" for s in others) + " |")
        p("|---:|---:|---:|" + "---:|" * len(others))
        for k in ks:
            f = m("floor", "lean", k, "cpu_us_per_conn")
            cells = [xs(server, "lean", k, "cpu_us_per_conn", "floor") for server in others]
            p(f"| {k:,} | {fmt(f)} µs | {xs('floor', 'lean', k, 'cpu_us_per_conn')} | "
              + " | ".join(cells) + " |")
    return "\n".join(lines)

text = summary()
with open(os.path.join(out, "summary.md"), "w") as f:
    f.write(text + "\n")
print(text)
log(f"drain: {len(rows)} runs in {time.time() - started:.0f} s; {out}/drain.csv, {out}/summary.md")
bad = sum(1 for r in rows if not r["ok"])
if bad:  # a benchmark that no longer works must not pass a smoke run
    log(f"drain: {bad} run(s) incomplete or failed: see {out}/*.log")
    sys.exit(1)
PY

echo "drain latency vs idle connections: K = $KS, $REPS rep(s); $(date -u +%F); $(nproc) cores" \
  "($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)), Linux $(uname -r)," \
  "$(rustc --version | cut -d' ' -f1-2), $(go version 2>/dev/null | cut -d' ' -f3)," \
  "grpc-go $(sed -n 's/^const Version = "\(.*\)"/\1/p' /usr/share/gocode/src/google.golang.org/grpc/version.go 2>/dev/null);" \
  "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
status=0
python3 "$driver" "$ECHO_SERVER" "$LEAN_CLIENT" "$PEERS/grpcsrv" "$PEERS/grpccli" "$OUT" "$KS" "$REPS" \
  "$STRACE_K" "$LEAN_RPC" "${DRAIN_CLIENTS:-lean grpccli}" "$FLOOR_SERVER" "$EPOLL_ECHO" || status=$?
"$PLOT" "$OUT/drain.csv" "$DRAIN_SVG"
exit "$status"
