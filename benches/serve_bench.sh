#!/usr/bin/env bash
# Serving benchmarks (issue 6, items 2, 3 and 4), one script, one table each.
#
#  2. drain with work in flight: N connections (hold_conns), each with one
#     `GET /sleep/<base + i*step ms>` stream, so the streams end at known,
#     staggered instants; SIGTERM once all are sent; we take
#       stop − last end   the stop returning (the signal's instant plus
#                         echo_server's `shutdown: graceful in X`) minus the
#                         instant the client saw the last stream's END_STREAM;
#       exit − last end   the same with the server's exit (wait4);
#       closed − last end the client saw its last connection closed;
#     against the floor: one round-trip (hold_conns' median GET /echo) + 1 ms.
#  3. throughput overhead: h2load (-c 16 -m 32) on /echo with a small body and
#     on the gRPC echo /echo.Echo/Say (a 5-byte-framed message), against
#     echo_server and against bare_h2 (the simplest h2 server, no shutdown
#     coordination) on the same runtime, each after a warm-up; requests/s from
#     h2load, then p50/p99 of the request time from a second run with its
#     --log-file (which slows the client down). Servers alternate within each
#     repetition; ratios are echo_server / bare_h2 in the same repetition.
#  4. memory per connection: VmRSS of the server before and with C idle
#     connections held by lean_client (handshake and SETTINGS ACK only), for
#     echo_server and bare_h2; (with − before) / C, and the difference.
#
#   bash benches/serve_bench.sh            # full: 6 reps, 200,000 requests, 10,000 connections (~4 min)
#   SMOKE=1 bash benches/serve_bench.sh    # CI: 1 rep, small counts, < 40 s once built
#
# Env: SERVE_REPS, SERVE_REQUESTS, SERVE_CONNS (item 4), SERVE_DRAIN_CONNS,
# SERVE_DRAIN_BASE_MS, SERVE_DRAIN_STEP_MS (item 2), SERVE_ITEMS (default
# "2 3 4"), SERVE_OUT (default target/serve: summary.md and the logs).
# Exits non-zero if any run failed (figures are never assertions). Needs
# h2load (nghttp2-client) and python3. Raises `ulimit -n` to the hard limit.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ ${SMOKE:-0} == 1 ]]; then
  : "${SERVE_REPS:=1}" "${SERVE_REQUESTS:=5000}" "${SERVE_CONNS:=1000}" "${SERVE_DRAIN_CONNS:=10}"
  : "${SERVE_DRAIN_BASE_MS:=150}" "${SERVE_DRAIN_STEP_MS:=5}"
fi
REPS=${SERVE_REPS:-6}
REQUESTS=${SERVE_REQUESTS:-200000}
CONNS=${SERVE_CONNS:-10000}
DRAIN_CONNS=${SERVE_DRAIN_CONNS:-100}
DRAIN_BASE=${SERVE_DRAIN_BASE_MS:-300}
DRAIN_STEP=${SERVE_DRAIN_STEP_MS:-2}
ITEMS=${SERVE_ITEMS:-2 3 4}
OUT=${SERVE_OUT:-target/serve}
TARGET=${CARGO_TARGET_DIR:-target}
mkdir -p "$OUT"

die() { echo "serve_bench.sh: $*" >&2; exit 1; }
command -v h2load >/dev/null || die "h2load not found (apt-get install nghttp2-client)"

hard=$(ulimit -Hn)
if [[ $hard != unlimited ]] && ((hard < CONNS + 64)); then
  die "ulimit -Hn is $hard; $CONNS connections need $((CONNS + 64)) descriptors"
fi
ulimit -n "$hard"

cargo build --release -q --example echo_server || die "cargo build --example echo_server failed"
cargo build --release -q -p winddown-benches --bin bare_h2 --bin hold_conns --bin lean_client ||
  die "cargo build -p winddown-benches failed"

driver=$(mktemp)
trap 'rm -f "$driver"' EXIT
cat >"$driver" <<'PY'
import os, re, signal, statistics, subprocess, sys, threading, time

T, out = sys.argv[1], sys.argv[2]
reps, requests, conns = int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
d_conns, d_base, d_step = int(sys.argv[6]), int(sys.argv[7]), int(sys.argv[8])
items = sys.argv[9].split()
ECHO, BARE = f"{T}/examples/echo_server", f"{T}/bare_h2"
HOLD, LEAN = f"{T}/hold_conns", f"{T}/lean_client"
RUNTIMES = ["smol", "tokio"]
failed = 0


sys.path.insert(0, os.path.join(os.getcwd(), "benches"))
from bench_procs import Proc as _Proc, fmt, log  # noqa: E402


class Proc(_Proc):
    def stop(self):
        """Kills the child if it is still running, then saves its output."""
        if self.exit_at is None and self.p.returncode is None:
            self.kill()
            self.p.wait()
        self.save(out)


def start_server(kind, runtime, tag):
    argv = [ECHO, "--runtime", runtime, "--listen", "127.0.0.1:0", "--grace", "60s"] if kind == "echo" \
        else [BARE, "--runtime", runtime, "--listen", "127.0.0.1:0"]
    srv = Proc(argv, logname=f"{tag}.server.log")
    m = srv.wait_line(r"^listening on (\S+)", 10)
    if not m:
        srv.stop()
        raise RuntimeError(f"{kind} {runtime} did not start")
    return srv, m.group(1)


def crossover_ratio(e, b, key, reps):
    """echo / bare for `key`, balanced for the order the two ran in.

    The order alternates with the repetition, and the server that runs first
    in a repetition can measure differently (up to ±30 % in p99 on this
    host). The geometric mean of an odd repetition's ratio and the next even
    one's cancels such an effect; the median over those pairs is returned
    (the median of the single ratios when no pair is complete, as with one
    repetition)."""
    ratios = {i: e[i][key] / b[i][key] for i in reps if e[i][key] and b[i][key]}
    pairs = [(ratios[i] * ratios[i + 1]) ** 0.5 for i in ratios if i % 2 == 1 and i + 1 in ratios]
    return median(pairs) if pairs else median(list(ratios.values()))


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def judge(ok):
    return "-" if ok is None else ("**met**" if ok else "**missed**")


def vmrss_kib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])


summary = []
p = summary.append

# ---------------------------------------------------------------- item 2
if "2" in items:
    rows = []
    for rep in range(1, reps + 1):
        for runtime in (RUNTIMES if rep % 2 else RUNTIMES[::-1]):
            tag = f"drain-{runtime}-r{rep}"
            srv = cli = None
            try:
                srv, addr = start_server("echo", runtime, tag)
                cli = Proc([HOLD, "--addr", addr, "--conns", str(d_conns), "--base-ms", str(d_base),
                            "--step-ms", str(d_step)], logname=f"{tag}.client.log")
                rtt = cli.wait_line(r"^RTT_US (\d+)", 20)
                sent = cli.wait_line(r"^SENT ", 30)
                if not (rtt and sent):
                    raise RuntimeError("hold_conns did not send its streams")
                time.sleep(0.05)  # every stream in flight, well before the first ends
                done = srv.reaper()
                t_sig = time.time()
                os.kill(srv.pid, signal.SIGTERM)
                done.join(60)
                d = cli.wait_line(r"^DONE (.*)", 30)
                m = srv.wait_line(r"^shutdown: (\w+) in ([0-9.]+) (ms|s);.*drained (\d+), forced (\d+)", 2)
                if not (d and m and srv.exit_at):
                    raise RuntimeError("no DONE from the client or no report from the server")
                kv = dict(x.split("=") for x in d.group(1).split())
                stop = t_sig + float(m.group(2)) / (1 if m.group(3) == "s" else 1000)
                last = float(kv["last_end"])
                ok = m.group(1) == "graceful" and int(m.group(4)) == d_conns and m.group(5) == "0" \
                    and int(kv["ok"]) == d_conns
                row = dict(runtime=runtime, rtt_ms=int(rtt.group(1)) / 1000, stop=(stop - last) * 1000,
                           exit=(srv.exit_at - last) * 1000, closed=(float(kv["closed_last"]) - last) * 1000,
                           late=(last - float(kv["planned_last"])) * 1000, ok=ok)
                rows.append(row)
                log(f"  drain {runtime:<5} rep {rep}: stop−last {row['stop']:7.3f} ms  exit−last {row['exit']:7.3f} ms"
                    f"  closed−last {row['closed']:7.3f} ms  rtt {row['rtt_ms']:.3f} ms  {'ok' if ok else 'INCOMPLETE'}")
                failed += not ok
            except Exception as e:
                failed += 1
                log(f"  drain {runtime} rep {rep}: FAILED: {e}")
            finally:
                for x in (cli, srv):
                    if x:
                        x.stop()
    p(f"### Drain with work in flight: {d_conns} connections, one /sleep stream each, "
      f"{d_base}–{d_base + (d_conns - 1) * d_step} ms ({reps} run(s), medians)")
    p("")
    p("| echo_server | stop − last stream end | exit − last end | client saw last close − last end | "
      "last end − planned | round-trip | floor (RTT + 1 ms) | target |")
    p("|---|---:|---:|---:|---:|---:|---:|---|")
    for runtime in RUNTIMES:
        rs = [r for r in rows if r["runtime"] == runtime and r["ok"]]
        med = {k: median([r[k] for r in rs]) for k in ("stop", "exit", "closed", "late", "rtt_ms")}
        floor = None if med["rtt_ms"] is None else med["rtt_ms"] + 1
        met = None if med["stop"] is None else med["stop"] <= floor
        p(f"| {runtime} | {fmt(med['stop'], 3)} ms | {fmt(med['exit'], 3)} ms | {fmt(med['closed'], 3)} ms | "
          f"{fmt(med['late'], 3)} ms | {fmt(med['rtt_ms'], 3)} ms | {fmt(floor, 3)} ms | {judge(met)} |")
    p("")

# ---------------------------------------------------------------- item 3
if "3" in items:
    with open(os.path.join(out, "body.bin"), "wb") as f:
        f.write(b"hello, winddown! 0123456789abcdef")  # 32 bytes
    with open(os.path.join(out, "grpc.bin"), "wb") as f:
        msg = b"hello, winddown! 0123456789abcdef"
        f.write(b"\x00" + len(msg).to_bytes(4, "big") + msg)
    loads = {
        "echo": ["-d", os.path.join(out, "body.bin"), "/echo"],
        "grpc": ["-d", os.path.join(out, "grpc.bin"), "-H", "content-type: application/grpc",
                 "-H", "te: trailers", "/echo.Echo/Say"],
    }
    rows = []
    for rep in range(1, reps + 1):
        for runtime in RUNTIMES:
            for kind in (["echo", "bare"] if rep % 2 else ["bare", "echo"]):
                tag = f"h2load-{kind}-{runtime}-r{rep}"
                srv = None
                try:
                    srv, addr = start_server(kind, runtime, tag)
                    # Warm-up (allocator arenas, connection buffers), as in
                    # cpu_per_request.sh: the first run after a start is slower.
                    subprocess.run(["h2load", "-c", "16", "-m", "32", "-n", str(max(requests // 10, 1000)),
                                    "-d", loads["echo"][1], f"http://{addr}/echo"],
                                   capture_output=True, timeout=300)
                    for load, (_, body, *rest) in loads.items():
                        path, headers = rest[-1], rest[:-1]
                        logf = os.path.join(out, f"{tag}-{load}.log")
                        argv = ["h2load", "-c", "16", "-m", "32", "-n", str(requests), "-d", body, *headers,
                                f"http://{addr}{path}"]
                        # Requests/s from a run without --log-file (writing a line
                        # per response costs h2load, on the same two cores, more
                        # than the servers' difference); latency from a second run
                        # with it.
                        r = subprocess.run(argv, capture_output=True, text=True, timeout=300)
                        timed = subprocess.run(argv[:-1] + ["--log-file", logf, argv[-1]],
                                               capture_output=True, text=True, timeout=300)
                        m = re.search(r"finished in [^,]+, ([0-9.]+) req/s", r.stdout)
                        ok = all(re.search(r"(\d+) succeeded, 0 failed, 0 errored", x.stdout) for x in (r, timed))
                        st = all(re.search(rf"status codes: {requests} 2xx", x.stdout) for x in (r, timed))
                        lat = sorted(int(l.split("\t")[2]) for l in open(logf) if l.count("\t") == 2)
                        os.remove(logf)
                        good = bool(m and ok and st and lat)
                        row = dict(kind=kind, runtime=runtime, load=load, rep=rep,
                                   rps=float(m.group(1)) if m else None,
                                   p50=lat[len(lat) // 2] / 1000 if lat else None,
                                   p99=lat[int(len(lat) * 0.99)] / 1000 if lat else None, ok=good)
                        rows.append(row)
                        failed += not good
                        log(f"  h2load {load:<4} {kind:<4} {runtime:<5} rep {rep}: {fmt(row['rps'], 0):>9} req/s"
                            f"  p50 {fmt(row['p50'], 2)} ms  p99 {fmt(row['p99'], 2)} ms  {'' if good else 'FAILED'}")
                except Exception as e:
                    failed += 1
                    log(f"  h2load {kind} {runtime} rep {rep}: FAILED: {e}")
                finally:
                    if srv:
                        srv.stop()
    p(f"### Throughput overhead: h2load -c 16 -m 32 -n {requests:,} ({reps} run(s), medians; "
      "ratios echo_server / bare_h2 per repetition, each odd repetition's paired with the next one's, "
      "then the median over pairs)")
    p("")
    p("| runtime | load | bare_h2 req/s | echo_server req/s | ratio | bare p50 / p99 | echo_server p50 / p99 | "
      "p99 ratio | target (≥ 0.97, p99 ≤) |")
    p("|---|---|---:|---:|---:|---:|---:|---:|---|")
    for runtime in RUNTIMES:
        for load in loads:
            sel = lambda kind: {r["rep"]: r for r in rows
                                if r["kind"] == kind and r["runtime"] == runtime and r["load"] == load and r["ok"]}
            b, e = sel("bare"), sel("echo")
            common = sorted(set(b) & set(e))
            rr, pr = crossover_ratio(e, b, "rps", common), crossover_ratio(e, b, "p99", common)
            mb = {k: median([r[k] for r in b.values()]) for k in ("rps", "p50", "p99")}
            me = {k: median([r[k] for r in e.values()]) for k in ("rps", "p50", "p99")}
            met = None if rr is None else (rr >= 0.97 and pr <= 1.0)
            p(f"| {runtime} | {load} | {fmt(mb['rps'], 0)} | {fmt(me['rps'], 0)} | {fmt(rr, 3)} | "
              f"{fmt(mb['p50'], 2)} / {fmt(mb['p99'], 2)} ms | {fmt(me['p50'], 2)} / {fmt(me['p99'], 2)} ms | "
              f"{fmt(pr, 2)} | {judge(met)} |")
    p("")

# ---------------------------------------------------------------- item 4
if "4" in items:
    rows = []
    for rep in range(1, reps + 1):
        for runtime in RUNTIMES:
            for kind in (["echo", "bare"] if rep % 2 else ["bare", "echo"]):
                tag = f"rss-{kind}-{runtime}-r{rep}"
                srv = cli = None
                try:
                    srv, addr = start_server(kind, runtime, tag)
                    time.sleep(0.2)
                    base = vmrss_kib(srv.pid)
                    cli = Proc([LEAN, "--addr", addr, "--conns", str(conns), "--timeout", "300"], stdin=True,
                               logname=f"{tag}.client.log")
                    if not cli.wait_line(r"^READY ", 120):
                        raise RuntimeError("lean_client did not get ready")
                    time.sleep(1.0)  # the last SETTINGS ACKs processed, the connections idle
                    held = vmrss_kib(srv.pid)
                    per = (held - base) * 1024 / conns
                    rows.append(dict(kind=kind, runtime=runtime, rep=rep, base=base, held=held, per=per))
                    log(f"  rss {kind:<4} {runtime:<5} rep {rep}: {base:,} KiB → {held:,} KiB: {per:,.0f} B/conn")
                except Exception as e:
                    failed += 1
                    log(f"  rss {kind} {runtime} rep {rep}: FAILED: {e}")
                finally:
                    for x in (cli, srv):
                        if x:
                            x.stop()
    p(f"### Memory per idle connection: VmRSS with {conns:,} idle connections (lean_client) ({reps} run(s), medians)")
    p("")
    p("| runtime | bare_h2 before → with | bare_h2 / conn | echo_server before → with | echo_server / conn | "
      "bookkeeping / conn (difference) | target (< 256 B) |")
    p("|---|---:|---:|---:|---:|---:|---|")
    for runtime in RUNTIMES:
        sel = lambda kind: {r["rep"]: r for r in rows if r["kind"] == kind and r["runtime"] == runtime}
        b, e = sel("bare"), sel("echo")
        common = sorted(set(b) & set(e))
        diff = median([e[i]["per"] - b[i]["per"] for i in common])
        mb = {k: median([r[k] for r in b.values()]) for k in ("base", "held", "per")}
        me = {k: median([r[k] for r in e.values()]) for k in ("base", "held", "per")}
        p(f"| {runtime} | {fmt(mb['base'], 0)} → {fmt(mb['held'], 0)} KiB | {fmt(mb['per'], 0)} B | "
          f"{fmt(me['base'], 0)} → {fmt(me['held'], 0)} KiB | {fmt(me['per'], 0)} B | {fmt(diff, 0)} B | "
          f"{judge(None if diff is None else diff < 256)} |")
    p("")

text = "\n".join(summary)
with open(os.path.join(out, "summary.md"), "w") as f:
    f.write(text + "\n")
print(text)
if failed:
    log(f"serve_bench: {failed} run(s) failed or incomplete: see {out}/*.log")
    sys.exit(1)
PY

echo "serving benchmarks (items $ITEMS): $REPS rep(s); $(date -u +%F); $(nproc) cores" \
  "($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)), Linux $(uname -r)," \
  "$(rustc --version | cut -d' ' -f1-2), $(h2load --version | head -n 1);" \
  "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
python3 "$driver" "$TARGET/release" "$OUT" "$REPS" "$REQUESTS" "$CONNS" "$DRAIN_CONNS" "$DRAIN_BASE" \
  "$DRAIN_STEP" "$ITEMS"
