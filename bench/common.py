"""What the benchmark scripts share: where the checkout is, how tpkb is run, and how a
group of timings is reported."""

from __future__ import annotations

import os
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TPKB = [sys.executable, "-m", "bridge"]
GENERATE = [sys.executable, str(ROOT / "bench" / "generate.py")]  # N SEED: N random encounters as JSONL
# Python writes bytecode on first import, as it does for any user; a shell that sets
# PYTHONDONTWRITEBYTECODE would instead compile tpkb's modules on every run.
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def report(title: str, times: dict[str, list[float]], baseline: str, count: int) -> None:
    """Best and median time of each command; its ratio to the baseline as the median of
    the per-round ratios (each round ran every command once, one after another, so a
    round's ratio holds when the machine's speed drifts between rounds) and as the
    ratio of the best times."""
    print(f"\n{title}")
    base = times[baseline]
    for name, values in times.items():
        best, median = min(values), statistics.median(values)
        ratio = statistics.median(v / b for v, b in zip(values, base))
        rate = f"{count / median:6.0f}/s" if count > 1 else " " * 8
        print(f"  {name:40s} best {best:7.3f} s  median {median:7.3f} s {rate}  "
              f"ratio {ratio:6.2f} (best to best {best / min(base):6.2f})")
