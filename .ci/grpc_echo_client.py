#!/usr/bin/env python3
"""gRPC interop client for examples/echo_server, driven by .ci/interop.sh.

A stock gRPC client (grpcio, raw bytes in and out, no protobuf) against the
server's unary `/echo.Echo/Say`:

  a) b"hello" returns b"echo:hello";
  b) IN_FLIGHT calls of b"sleep:1500ms" are started on the same channel; once
     they are on the wire the client prints `in-flight` (the driver then sends
     SIGTERM to the server) and every one must complete OK with
     b"echo:sleep:1500ms", through the server's graceful stop (GOAWAY + PING,
     GOAWAY(last=N));
  c) after the driver writes `go` on stdin (it does so once the server has
     exited, so nothing listens any more), one new call on the same channel
     must fail with StatusCode.UNAVAILABLE and nothing else.

When are the in-flight calls on the wire? grpcio has no per-call "sent" event,
and the server answers a sleep call only at its end. So a barrier call
(b"barrier") is made after the futures are started, on the same connection,
and waited for: HTTP/2 opens streams in increasing id order and TCP delivers
in order, so by the time the barrier's reply is back the server has read the
HEADERS of the streams opened before it. grpc core assigns stream ids in the
order calls reach the transport, which for calls started one after another
from one thread is the order they were started; this is not a documented
grpcio guarantee, hence the extra MARGIN_S seconds after the barrier.

Usage: grpc_echo_client.py HOST:PORT. Prints `ok ...`/`info ...` lines,
`in-flight` (flushed), and exits 0 on success; on failure prints `FAIL: why`
and exits 1.
"""

import os
import select
import sys
import threading
import time

import grpc

METHOD = "/echo.Echo/Say"
IN_FLIGHT = 5
SLEEP_MSG = b"sleep:1500ms"
MARGIN_S = 0.2  # after the barrier; see the module docstring
CALL_TIMEOUT_S = 10.0  # per call of (a), the barrier and (b)
GO_TIMEOUT_S = 40.0  # how long to wait for the driver's `go`
REFUSED_TIMEOUT_S = 5.0  # the call of (c)


def say(line):
    print(line, flush=True)


def fail(why):
    say(f"FAIL: {why}")
    sys.stderr.flush()
    # Not sys.exit: with calls or the connectivity watch still alive, grpcio's
    # shutdown can hang the interpreter's exit (seen: until `timeout` killed it).
    os._exit(1)


def describe(error):
    """`CODE: details` of a failed call (a grpc.RpcError that is a grpc.Call)."""
    code = error.code() if hasattr(error, "code") else None
    details = error.details() if hasattr(error, "details") else None
    return f"{code.name if code else '?'}: {details!r}"


class StateLog:
    """Channel connectivity changes, with their time (time.monotonic())."""

    def __init__(self):
        self.lock = threading.Lock()
        self.changes = []

    def __call__(self, state):
        with self.lock:
            self.changes.append((time.monotonic(), state))

    def left_ready_at(self, after):
        """When the channel first left READY after `after`, or None."""
        with self.lock:
            for when, state in self.changes:
                if when > after and state != grpc.ChannelConnectivity.READY:
                    return when
        return None

    def summary(self):
        with self.lock:
            return " -> ".join(state.name for _, state in self.changes)


def main():
    if len(sys.argv) != 2:
        say(f"usage: {sys.argv[0]} HOST:PORT")
        sys.exit(2)
    addr = sys.argv[1]
    say(f"info grpcio {grpc.__version__}, target {addr}")

    channel = grpc.insecure_channel(addr)
    states = StateLog()
    channel.subscribe(states, try_to_connect=False)
    call = channel.unary_unary(METHOD, request_serializer=None, response_deserializer=None)

    # The connection first, so that (a) and (b) share one READY transport.
    try:
        grpc.channel_ready_future(channel).result(timeout=CALL_TIMEOUT_S)
    except grpc.FutureTimeoutError:
        fail(f"channel to {addr} not READY within {CALL_TIMEOUT_S} s (states: {states.summary()})")

    # (a) a plain unary call.
    try:
        reply = call(b"hello", timeout=CALL_TIMEOUT_S)
    except grpc.RpcError as e:
        fail(f"(a) Say(b'hello') failed: {describe(e)}")
    if reply != b"echo:hello":
        fail(f"(a) Say(b'hello') returned {reply!r}, expected b'echo:hello'")
    say("ok (a) Say(b'hello') = b'echo:hello'")

    # (b) in-flight calls, put on the wire before the driver sends SIGTERM.
    done_at = [None] * IN_FLIGHT

    def mark_done(i):
        return lambda _future: done_at.__setitem__(i, time.monotonic())

    futures = []
    for i in range(IN_FLIGHT):
        future = call.future(SLEEP_MSG, timeout=CALL_TIMEOUT_S)
        future.add_done_callback(mark_done(i))
        futures.append(future)
    try:
        reply = call(b"barrier", timeout=CALL_TIMEOUT_S)
    except grpc.RpcError as e:
        fail(f"(b) barrier call Say(b'barrier') failed: {describe(e)}")
    if reply != b"echo:barrier":
        fail(f"(b) barrier call returned {reply!r}, expected b'echo:barrier'")
    time.sleep(MARGIN_S)
    early = [i for i, f in enumerate(futures) if f.done()]
    if early:
        errors = "; ".join(f"#{i}: {outcome(futures[i])}" for i in early)
        fail(f"(b) calls ended before the server was signalled: {errors}")
    signalled_at = time.monotonic()
    say("in-flight")

    failures = []
    for i, future in enumerate(futures):
        try:
            reply = future.result(timeout=CALL_TIMEOUT_S + 5)
        except grpc.FutureTimeoutError:
            failures.append(f"#{i}: no outcome within {CALL_TIMEOUT_S + 5} s")
            continue
        except grpc.RpcError as e:
            failures.append(f"#{i}: {describe(e)}")
            continue
        if reply != b"echo:" + SLEEP_MSG:
            failures.append(f"#{i}: returned {reply!r}")
    if failures:
        fail(f"(b) in-flight calls did not all complete OK with b'echo:{SLEEP_MSG.decode()}': "
             + "; ".join(failures))
    last_done = max(done_at)
    say(f"ok (b) {IN_FLIGHT} in-flight Say({SLEEP_MSG!r}) completed OK, "
        f"{last_done - signalled_at:.2f} s after `in-flight`")

    # GOAWAY made grpc core take the transport out of service: the channel
    # leaves READY while the calls were still running on it.
    left = states.left_ready_at(signalled_at)
    if left is None:
        fail(f"(b) the channel never left READY after SIGTERM: no GOAWAY seen (states: {states.summary()})")
    if left > last_done:
        fail(f"(b) the channel left READY only {left - last_done:.2f} s after the in-flight calls ended: "
             f"GOAWAY did not arrive while they were in flight (states: {states.summary()})")
    say(f"ok (b) channel left READY (GOAWAY) {left - signalled_at:.2f} s after `in-flight`, "
        f"while the calls were in flight; states: {states.summary()}")

    # (c) once the server is gone: a new call must be UNAVAILABLE (retryable).
    ready, _, _ = select.select([sys.stdin], [], [], GO_TIMEOUT_S)
    if not ready:
        fail(f"(c) no `go` from the driver within {GO_TIMEOUT_S} s")
    line = sys.stdin.readline().strip()
    if line != "go":
        fail(f"(c) driver said {line!r} instead of `go` (server did not exit?)")
    started = time.monotonic()
    try:
        reply = call(b"after-drain", timeout=REFUSED_TIMEOUT_S, wait_for_ready=False)
    except grpc.RpcError as e:
        took = time.monotonic() - started
        if e.code() != grpc.StatusCode.UNAVAILABLE:
            fail(f"(c) new call after the drain failed with {describe(e)} after {took:.2f} s, "
                 "expected UNAVAILABLE")
        say(f"ok (c) new call after the drain: {describe(e)} after {took:.2f} s")
    else:
        fail(f"(c) new call after the drain succeeded ({reply!r}): something still listens on {addr}")
    say(f"info channel states: {states.summary()}")
    channel.unsubscribe(states)
    channel.close()


def outcome(future):
    try:
        return repr(future.result(timeout=0))
    except grpc.RpcError as e:
        return describe(e)
    except Exception as e:  # noqa: BLE001 (diagnostics only)
        return repr(e)


if __name__ == "__main__":
    main()
