"""Throughput benchmark: tpkb end to end against raw clingo on the same facts, in one run.

    python bench/bench.py [--n 10000] [--repeat 3] [--seed 2026]

1. Writes N random encounters to one JSONL file (bench/generate.py).
2. End to end: `tpkb code FILE --format jsonl > /dev/null` in a fresh process (start-up,
   KB load, validation, facts, one solve per batch, decoding, messages, JSON out).
3. Raw clingo: the clingo executable (`python -m clingo`) grounding and solving the plain KB
   with the same facts written as a text file (printing the model to /dev/null).
   The end-to-end run is timed twice: as shipped (batches of 5,000 coded in parallel, one
   process per core) and as one process with the whole file in one solve.
4. Prints the best of --repeat runs of each, encounters per second, and the ratios.
Absolute times on shared machines are noisy; the ratio is the figure to compare.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def timed(cmd: list[str], stdout=subprocess.DEVNULL) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, stdout=stdout, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    elapsed = time.perf_counter() - start
    if proc.returncode not in (0, 10, 30):  # clingo exits 10/30 for SAT/optimum
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args()

    from bridge.api import default_kb_path
    from bridge.engine import KB
    from bridge.facts import batch_facts
    from bridge.load import load_paths

    work = Path(tempfile.mkdtemp(prefix="tpkb-bench-"))
    jsonl = work / "encounters.jsonl"
    with jsonl.open("w") as out:
        subprocess.run([sys.executable, str(ROOT / "bench" / "generate.py"), str(args.n), str(args.seed)],
                       stdout=out, check=True)

    kb_path = default_kb_path()
    kb = KB.load(kb_path)
    loaded = load_paths([jsonl], kb.profiles())
    assert not loaded.problems and len(loaded.encounters) == args.n
    facts = work / "facts.lp"
    facts.write_text("".join(f"{sym}.\n" for sym in batch_facts(loaded.encounters, kb.side_words())))
    n_facts = sum(1 for _ in facts.open())

    from bridge.api import default_jobs

    jobs = default_jobs()
    tpkb = [sys.executable, "-m", "bridge", "code", str(jsonl), "--format", "jsonl"]
    runs = {
        f"tpkb code, {jobs} jobs (default)": tpkb,
        "tpkb code, 1 job, one solve": tpkb + ["--jobs", "1", "--batch-size", str(args.n)],
        "raw clingo, same facts": [sys.executable, "-m", "clingo", str(kb_path / "main.lp"), str(facts), "--warn=none"],
    }
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(args.repeat):  # interleaved, so all see the same machine load
        for name, cmd in runs.items():
            times[name].append(timed(cmd))
    best = {name: min(t) for name, t in times.items()}
    raw = best["raw clingo, same facts"]
    print(f"encounters: {args.n}  facts: {n_facts}  cores: {jobs}  repeat: {args.repeat} (best of each)")
    for name, t in best.items():
        print(f"{name:34s} {t:6.2f} s  {args.n / t:7.0f} encounters/s  ratio to raw clingo {t / raw:.2f}")


if __name__ == "__main__":
    main()
