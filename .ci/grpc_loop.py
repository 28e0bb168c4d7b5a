#!/usr/bin/env python3
"""A stock gRPC client (grpcio) calling in a loop, for .ci/restart.sh.

Usage: grpc_loop.py HOST:PORT. WORKERS threads share one channel and call
the unary /echo.Echo/Say (raw bytes) back to back, fail-fast (grpc's
default: no wait_for_ready), each checking that the reply is its own
message. Prints `flowing` after the first OK reply, `ok N` after every 200,
and on SIGTERM stops calling, waits for the calls in flight and prints
`result ok=N failed=N` and one `error code=CODE n=N` line per failure code.
"""

import collections
import signal
import sys
import threading

import grpc

WORKERS = 4
METHOD = "/echo.Echo/Say"


def main():
    addr = sys.argv[1]
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    lock = threading.Lock()
    counts = {"ok": 0, "failed": 0}
    codes = collections.Counter()
    channel = grpc.insecure_channel(addr)
    say = channel.unary_unary(METHOD)

    def worker(n):
        i = 0
        while not stop.is_set():
            i += 1
            message = f"worker {n} call {i}".encode()
            try:
                reply = say(message, timeout=10)
                good = reply == b"echo:" + message
            except grpc.RpcError as e:
                good = False
                with lock:
                    codes[e.code().name] += 1
            with lock:
                if good:
                    counts["ok"] += 1
                    if counts["ok"] == 1:
                        print("flowing", flush=True)
                    elif counts["ok"] % 200 == 0:
                        print(f"ok {counts['ok']}", flush=True)
                else:
                    counts["failed"] += 1
                    if not codes:
                        codes["WRONG_REPLY"] += 1

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(WORKERS)]
    for t in threads:
        t.start()
    while not stop.wait(0.1):
        pass
    for t in threads:
        t.join()
    print(f"result ok={counts['ok']} failed={counts['failed']}", flush=True)
    for code, n in sorted(codes.items()):
        print(f"error code={code} n={n}", flush=True)


if __name__ == "__main__":
    main()
