#!/usr/bin/env python3
"""Turns criterion's console output into Markdown tables with ratios.

    cargo bench -p winddown-benches --bench primitives | python3 benches/table.py

For each group the first row is the reference (the floor, or winddown where a
group has no floor); every row gets its median and its ratio to it.
"""
import re
import sys

UNITS = {"ps": 1e-3, "ns": 1.0, "µs": 1e3, "us": 1e3, "ms": 1e6, "s": 1e9}
name = None
rows = {}
for line in sys.stdin:
    line = line.rstrip("\n")
    m = re.match(r"^(\S.*?/(?:one_thread|two_threads)/.+?)\s*(time:.*)?$", line)
    if m and not line.startswith("Benchmarking"):
        name = m.group(1).strip()
        line = m.group(2) or ""
    t = re.search(r"time:\s+\[\S+ \S+ (\S+) (\S+) \S+ \S+\]", line)
    if t and name:
        rows.setdefault(name.rsplit("/", 1)[0], []).append(
            (name.rsplit("/", 1)[1], float(t.group(1)) * UNITS[t.group(2)]))
        name = None
    elif line.startswith("allocations per operation"):
        print("\n" + line)
        print("\n".join(l.rstrip("\n") for l in sys.stdin if l.strip()))
        break

for group, entries in rows.items():
    ref_name, ref = entries[0]
    print(f"\n### {group}\n")
    print(f"| implementation | median | × {ref_name} |")
    print("|---|---:|---:|")
    for n, v in entries:
        print(f"| {n} | {v:.2f} ns | {v / ref:.2f} |")
