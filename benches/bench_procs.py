"""Process plumbing shared by the benchmark drivers (drain.sh, serve_bench.sh).

A child's merged output is read by a thread, so a driver can wait for a line
with a bounded timeout (no sleeps); the child is reaped with wait4, so its exit
instant and its rusage are exact.
"""
import os
import re
import signal
import subprocess
import sys
import threading
import time


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def fmt(x, digits=1):
    return "-" if x is None else f"{x:,.{digits}f}"


class Proc:
    """A child process whose output lines can be waited for."""

    def __init__(self, argv, stdin=False, logname=None):
        self.p = subprocess.Popen(argv, stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
        self.pid, self.lines, self.eof = self.p.pid, [], False
        self.cv = threading.Condition()
        self.exit_at = self.rusage = self.status = None
        self.logname = logname
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.p.stdout:
            with self.cv:
                self.lines.append(line.rstrip("\n"))
                self.cv.notify_all()
        with self.cv:
            self.eof = True
            self.cv.notify_all()

    def wait_line(self, pattern, timeout):
        """The first output line matching `pattern` within `timeout` s, or None."""
        rx, deadline, seen = re.compile(pattern), time.time() + timeout, 0
        with self.cv:
            while True:
                for line in self.lines[seen:]:
                    m = rx.search(line)
                    if m:
                        return m
                seen = len(self.lines)
                left = deadline - time.time()
                if self.eof or left <= 0:
                    return None
                self.cv.wait(left)

    def wait_eof(self, timeout):
        deadline = time.time() + timeout
        with self.cv:
            while not self.eof and time.time() < deadline:
                self.cv.wait(deadline - time.time())

    def reap(self):
        _, status, ru = os.wait4(self.pid, 0)
        self.exit_at, self.rusage, self.status = time.time(), ru, status
        self.p.returncode = os.waitstatus_to_exitcode(status)

    def reaper(self):
        """Reaps the child on a thread (join it to wait for the exit)."""
        t = threading.Thread(target=self.reap, daemon=True)
        t.start()
        return t

    def kill(self):
        if self.p.returncode is None and self.exit_at is None:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def save(self, out):
        """Writes the output to `out`/logname, if the child has a log name."""
        if self.logname:
            with open(os.path.join(out, self.logname), "w") as f:
                f.write("\n".join(self.lines) + "\n")
