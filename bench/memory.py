"""Memory of a long stream: `tpkb code - --format jsonl` fed N generated encounters on
standard input (bench/generate.py piped straight in, never stored), its process tree
sampled every --every seconds while it runs.

    python bench/memory.py [--n 10000 100000 1000000] [--jobs J] [--seed 2026]

For each N it prints the peak of the whole tree's memory (the sum over the tpkb process,
its worker processes and their fork server of each one's proportional set size: a page
shared by k processes counts 1/k in each, so the sum is what the run takes from the
machine), the peak resident size of the largest single process, the encounters per
second, and the tree's memory at each tenth of the stream (to show whether it grows).
Linux only (/proc)."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time

from common import ENV, GENERATE, ROOT


def tree(pid: int) -> list[int]:
    """The pid and all its descendants."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    parent = int(stat.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(parent, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        todo.extend(children.get(p, []))
    return found


def memory(pid: int) -> tuple[float, float]:
    """(the sum of the tree's proportional set sizes, the largest resident size), in MB."""
    total = largest = 0.0
    for p in tree(pid):
        try:
            with open(f"/proc/{p}/smaps_rollup") as rollup:
                fields = {line.split(":")[0]: int(line.split()[1]) for line in rollup if line.split()[-1] == "kB"}
        except (OSError, ValueError, IndexError):
            continue
        total += fields.get("Pss", 0) / 1024
        largest = max(largest, fields.get("Rss", 0) / 1024)
    return total, largest


def stream(n: int, jobs: int | None, seed: int, every: float) -> dict:
    cmd = [sys.executable, "-m", "bridge", "code", "-", "--format", "jsonl", "--quiet"]
    if jobs:
        cmd += ["--jobs", str(jobs)]
    source = subprocess.Popen([*GENERATE, str(n), str(seed)],
                              stdout=subprocess.PIPE)
    proc = subprocess.Popen(cmd, stdin=source.stdout, stdout=subprocess.PIPE, cwd=ROOT, env=ENV)
    assert source.stdout is not None and proc.stdout is not None
    source.stdout.close()  # tpkb's now
    start = time.perf_counter()

    out = {"count": 0}

    def drain() -> None:
        assert proc.stdout is not None
        for _ in proc.stdout:
            out["count"] += 1

    drainer = threading.Thread(target=drain, daemon=True)
    drainer.start()
    peak_total = peak_one = 0.0
    by_tenth: dict[int, float] = {}
    while proc.poll() is None:
        total, one = memory(proc.pid)
        peak_total, peak_one = max(peak_total, total), max(peak_one, one)
        tenth = out["count"] * 10 // n
        by_tenth[tenth] = max(by_tenth.get(tenth, 0.0), total)
        time.sleep(every)
    drainer.join()
    source.wait()
    elapsed = time.perf_counter() - start
    if proc.returncode != 0 or out["count"] != n:
        raise SystemExit(f"tpkb exited {proc.returncode} after {out['count']} of {n} records")
    return {"n": n, "seconds": elapsed, "peak_total": peak_total, "peak_one": peak_one,
            "by_tenth": [round(by_tenth.get(t, 0.0)) for t in range(10)]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--jobs", type=int, default=None, help="tpkb's --jobs (default: tpkb's default)")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--every", type=float, default=0.25, help="seconds between samples")
    args = parser.parse_args()
    print(f"tpkb code - --format jsonl{f' --jobs {args.jobs}' if args.jobs else ''}: memory of the process tree")
    for n in args.n:
        r = stream(n, args.jobs, args.seed, args.every)
        print(f"  {n:>9,} encounters  {r['seconds']:7.1f} s  {n / r['seconds']:6.0f}/s  "
              f"peak tree {r['peak_total']:5.0f} MB  peak one process {r['peak_one']:5.0f} MB  "
              f"tree by tenth (MB): {' '.join(str(m) for m in r['by_tenth'])}", flush=True)


if __name__ == "__main__":
    main()
