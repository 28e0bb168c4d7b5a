#!/usr/bin/env python3
"""Drives one fd-exhaustion check against a running echo_server (.ci/fd_exhaustion.sh).

The server runs under a low `ulimit -n`; this helper (Python 3 stdlib only):
  1. opens --conns plain TCP connections (the kernel completes the handshakes
     from the listen backlog even when the server cannot accept) and sends the
     HTTP/2 preface + an empty SETTINGS frame on each, keeping them all open;
  2. waits for the first `accept failed: ...` line in the server's stderr, then
     watches a --window second window: the number of such lines in it, their
     backoff delays, and the server's CPU time (utime+stime of /proc/PID/stat);
  3. closes all but --keep of the connections the server accepted (and every
     one it did not), and retries `curl --http2-prior-knowledge -d x /echo`
     until it echoes `x`, within --recover seconds.
Prints `info ...`, `ok ...` and `fail ...` lines; exits 0 only if every check held.
"""

import argparse
import os
import re
import select
import socket
import subprocess
import sys
import time

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
EMPTY_SETTINGS = b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"  # length 0, type SETTINGS, no flags, stream 0
ACCEPT_FAILED = re.compile(r"accept failed: (.*); retrying in (\S+)\s*$")
UNITS = {"ns": 1e-9, "µs": 1e-6, "us": 1e-6, "ms": 1e-3, "s": 1.0}

failures = []


def say(kind, msg):
    print(f"{kind} {msg}", flush=True)


def check(ok, msg):
    say("ok" if ok else "fail", msg)
    if not ok:
        failures.append(msg)
    return ok


def seconds(debug_duration):
    """Parses Rust's `{:?}` of a Duration: 5ms, 1.5s, 640ms, 1s, 12.3µs."""
    m = re.fullmatch(r"([0-9.]+)(ns|µs|us|ms|s)", debug_duration)
    return float(m.group(1)) * UNITS[m.group(2)] if m else None


def accept_failures(log):
    """(error text, delay in s) of every `accept failed` line so far."""
    with open(log, encoding="utf-8", errors="replace") as f:
        return [(m.group(1), seconds(m.group(2))) for m in map(ACCEPT_FAILED.search, f) if m]


def cpu_seconds(pid):
    """utime + stime of the whole process (all threads), in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # fields[0] is field 3 (state); utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except FileNotFoundError:
        return False


def fd_count(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return -1


def open_connections(port, n, deadline):
    """n non-blocking connects, each completed (or failed) by `deadline`."""
    socks = []
    for _ in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        s.connect_ex(("127.0.0.1", port))
        socks.append(s)
    pending = set(socks)
    while pending and time.monotonic() < deadline:
        _, writable, _ = select.select([], list(pending), [], max(0.0, deadline - time.monotonic()))
        pending -= set(writable)
    connected = []
    for s in socks:
        if s in pending or s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) != 0:
            s.close()
        else:
            connected.append(s)
    return connected


def server_answered(socks, wait):
    """The sockets on which the server sent something (its SETTINGS): the accepted ones."""
    answered, end = set(), time.monotonic() + wait
    while True:
        left = [s for s in socks if s not in answered]
        readable, _, _ = select.select(left, [], [], max(0.0, end - time.monotonic())) if left else ([], [], [])
        for s in readable:
            try:
                if s.recv(65536):
                    answered.add(s)
            except OSError:
                pass
        if not readable or time.monotonic() >= end:
            return answered


def curl_echo(port, deadline):
    """Retries curl until it echoes `x` or the deadline passes; (ok, attempts, last output)."""
    attempts, last = 0, ""
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return False, attempts, last
        attempts += 1
        max_time = f"{max(0.5, left):.2f}"
        try:
            done = subprocess.run(
                ["curl", "-sS", "--http2-prior-knowledge", "--connect-timeout", max_time,
                 "--max-time", max_time, "-d", "x", f"http://127.0.0.1:{port}/echo"],
                capture_output=True, timeout=float(max_time) + 2)
            last = f"rc={done.returncode} stdout={done.stdout[:80]!r} stderr={done.stderr.decode(errors='replace').strip()[:200]!r}"
            if done.returncode == 0 and done.stdout == b"x":
                return True, attempts, last
        except subprocess.TimeoutExpired:
            last = "curl did not exit"
        time.sleep(0.1)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--pid", type=int, required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--log", required=True, help="the server's stderr")
    p.add_argument("--conns", type=int, default=100)
    p.add_argument("--keep", type=int, default=8, help="accepted connections left open during recovery")
    p.add_argument("--window", type=float, default=2.0)
    p.add_argument("--max-lines", type=int, default=50)
    p.add_argument("--max-cpu", type=float, default=0.25, help="CPU seconds allowed in the window")
    p.add_argument("--recover", type=float, default=3.0)
    a = p.parse_args()
    pid = a.pid

    base_fds = fd_count(pid)
    say("info", f"server fds before: {base_fds}")

    # 1. More connections than the server has fds for.
    socks = open_connections(a.port, a.conns, time.monotonic() + 5)
    if not check(len(socks) == a.conns, f"{len(socks)}/{a.conns} TCP connections established (kernel backlog)"):
        return 1
    send_errors = []
    for s in socks:
        s.setblocking(True)
        try:
            s.sendall(PREFACE + EMPTY_SETTINGS)
        except OSError as e:  # e.g. reset: the listener was closed
            send_errors.append(e)
        s.setblocking(False)
    if not check(not send_errors, f"preface + SETTINGS sent on {len(socks) - len(send_errors)}/{len(socks)} connections"
                 + (f" (first error: {send_errors[0]})" if send_errors else "")):
        say("info", f"server alive: {alive(pid)}, fds: {fd_count(pid)}")
        return 1

    # 2. The accept loop hits EMFILE.
    end = time.monotonic() + 5
    while not accept_failures(a.log) and alive(pid) and time.monotonic() < end:
        time.sleep(0.01)
    first = accept_failures(a.log)
    if not check(bool(first), "server logged 'accept failed' within 5 s of the connections"):
        say("info", f"server alive: {alive(pid)}, fds: {fd_count(pid)}")
        return 1
    lines0, cpu0, t0 = len(first), cpu_seconds(pid), time.monotonic()
    time.sleep(a.window)
    if not check(alive(pid), f"server still running {a.window:g} s after the first accept error"):
        return 1
    failed, cpu1, t1 = accept_failures(a.log), cpu_seconds(pid), time.monotonic()
    in_window = len(failed) - lines0
    cpu = cpu1 - cpu0
    saturated_fds = fd_count(pid)
    accepted = server_answered(socks, 0.5)
    say("info", f"server fds at saturation: {saturated_fds}; connections it accepted (got its SETTINGS): "
        f"{len(accepted)}, still in the backlog: {len(socks) - len(accepted)}")
    delays = [d for _, d in failed]
    def fmt(ds):
        return ", ".join("?" if d is None else f"{d * 1000:g}ms" if d < 1 else f"{d:g}s" for d in ds)
    shown = fmt(delays) if len(delays) <= 16 else f"{fmt(delays[:12])}, ... ({len(delays) - 14} more), {fmt(delays[-2:])}"
    say("info", f"backoff delays logged so far ({len(delays)}): {shown}")
    say("info", f"first error: {failed[0][0]}")

    check(any("Too many open files" in e for e, _ in failed),
          "accept errors are 'Too many open files' (EMFILE)")
    check(len(accepted) < len(socks), "the server could not accept every connection (fd limit reached)")
    check(1 <= in_window < a.max_lines,
          f"{in_window} 'accept failed' lines in {t1 - t0:.2f} s (want 1..{a.max_lines - 1}: retries, no spin)")
    # The design's backoff: 5 ms, doubling to 1 s; a successful accept resets it to 5 ms.
    ok = None not in delays and abs(delays[0] - 0.005) < 1e-9
    for prev, cur in zip(delays, delays[1:]):
        ok = ok and (abs(cur - min(prev * 2, 1.0)) < 1e-9 or abs(cur - 0.005) < 1e-9)
    check(ok, "delays start at 5ms and double (capped at 1s), resetting only to 5ms")
    check(None not in delays and max(delays) >= 0.32, f"delays grew (max {max(d or 0 for d in delays):g} s, want >= 0.32 s)")
    check(cpu <= a.max_cpu, f"server CPU time in the window: {cpu:.2f} s over {t1 - t0:.2f} s (want <= {a.max_cpu:g} s)")

    # 3. Free fds; the server must accept again once its backoff timer elapses.
    keep = list(accepted)[: a.keep]
    for s in socks:
        if s not in keep:
            s.close()
    t_close = time.monotonic()
    ok, attempts, last = curl_echo(a.port, t_close + a.recover)
    check(ok, f"after closing {len(socks) - len(keep)} connections, curl /echo returned 'x' "
          f"in {time.monotonic() - t_close:.2f} s ({attempts} attempt(s); last: {last})")
    check(alive(pid), "server still running after recovery")
    say("info", f"server fds after recovery: {fd_count(pid)}; 'accept failed' lines in all: {len(accept_failures(a.log))}")
    for s in keep:
        s.close()
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
