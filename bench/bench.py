"""Benchmark: tpkb against raw clingo on the same facts, every figure a ratio measured in
one run, the commands interleaved so that all see the same machine load.

    python bench/bench.py [--n 10000] [--explain-n 1000] [--repeat 7] [--seed 2026]

What is timed (each a whole process, as a user runs it):
1. one encounter (examples/encounter.yaml): `tpkb explain` and `tpkb code`, against the
   clingo executable (`python -m clingo`, the one the clingo package installs) solving
   that encounter's facts with kb/main.lp and all its tables;
2. N random encounters from one JSONL file (bench/generate.py): `tpkb code --format jsonl`
   as shipped (default jobs: this process codes the first batch of 500 while the worker
   processes start, one per core, and they code the rest), with one worker (`--jobs 1`)
   and in this process with one solve (`--jobs 1 --batch-size N`), against raw clingo on
   the same facts;
3. `tpkb code --explain --format jsonl` on explain-n encounters against the same run
   without --explain, and the JSON bytes per encounter.

It prints the best and the median of --repeat rounds of each command, and its ratio to
the baseline: the median of the per-round ratios (bench/README.md quotes these) and the
ratio of the best times. Absolute times on shared machines are
noisy; compare the ratios. The first run of each command is a warm-up: it compiles the
KB cache (bridge/kb.py) and Python's bytecode, as any second run on a machine finds them.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import ENV, GENERATE, ROOT, TPKB, report

CLINGO = [sys.executable, "-m", "clingo"]


def run(cmd: list[str], stdout: int | None = subprocess.DEVNULL) -> tuple[float, bytes]:
    start = time.perf_counter()
    proc = subprocess.run(cmd, stdout=subprocess.PIPE if stdout is None else stdout, stderr=subprocess.PIPE,
                          cwd=ROOT, env=ENV)
    elapsed = time.perf_counter() - start
    if proc.returncode not in (0, 10, 30):  # clingo exits 10/30 for SAT/optimum
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr.decode()[-2000:]}")
    return elapsed, proc.stdout or b""




def facts_file(source: Path, dest: Path) -> int:
    """The facts of every encounter of `source`, as `tpkb facts` prints them."""
    _, out = run([*TPKB, "facts", str(source)], stdout=None)
    dest.write_bytes(out)
    return sum(1 for line in out.splitlines() if line and not line.startswith(b"%"))


def measure(commands: dict[str, list[str]], repeat: int) -> dict[str, list[float]]:
    for cmd in commands.values():  # warm-up
        run(cmd)
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(repeat):
        for name, cmd in commands.items():
            times[name].append(run(cmd)[0])
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10000)
    parser.add_argument("--explain-n", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--no-dask", action="store_true", help="skip the Dask figures")
    args = parser.parse_args()

    from importlib.metadata import version

    print(f"{time.strftime('%Y-%m-%d')}: {os.cpu_count()} cores, Python {sys.version.split()[0]}, "
          f"clingo {version('clingo')}, {args.repeat} rounds after a warm-up")
    work = Path(tempfile.mkdtemp(prefix="tpkb-bench-"))
    example = ROOT / "examples" / "encounter.yaml"
    example_facts = work / "example.lp"
    facts_file(example, example_facts)
    # the payer overlays are read without an #include (kb/main.lp): the executable is given them
    kb_files = [str(ROOT / "kb" / "main.lp"), *sorted(str(p) for p in (ROOT / "kb" / "payers").glob("*.lp"))]
    one = measure({
        "tpkb explain examples/encounter.yaml": [*TPKB, "explain", str(example)],
        "tpkb code examples/encounter.yaml": [*TPKB, "code", str(example)],
        "clingo kb/main.lp + its facts": [*CLINGO, *kb_files, str(example_facts), "--warn=none"],
    }, args.repeat)
    report("One encounter (ratio to the clingo executable):", one, "clingo kb/main.lp + its facts", 1)

    jsonl = work / "encounters.jsonl"
    with jsonl.open("w") as out:
        subprocess.run([*GENERATE, str(args.n), str(args.seed)],
                       stdout=out, check=True)
    batch_facts = work / "facts.lp"
    n_facts = facts_file(jsonl, batch_facts)
    code = [*TPKB, "code", str(jsonl), "--format", "jsonl"]
    from bridge.stream import default_jobs

    batch = measure({
        f"tpkb code, default jobs ({default_jobs()})": code,
        "tpkb code --jobs 1 (one worker)": [*code, "--jobs", "1"],
        "tpkb code, one solve (this process)": [*code, "--jobs", "1", "--batch-size", str(args.n)],
        "raw clingo, same facts": [*CLINGO, *kb_files, str(batch_facts), "--warn=none"],
    }, args.repeat)
    report(f"{args.n} encounters, {n_facts} facts (ratio to raw clingo):", batch, "raw clingo, same facts", args.n)

    if not args.no_dask:
        dask_group(code, args)

    small = work / "explain.jsonl"
    small.write_text("".join(jsonl.read_text().splitlines(keepends=True)[: args.explain_n]))
    plain = [*TPKB, "code", str(small), "--format", "jsonl"]
    explained = measure({"tpkb code --explain": [*plain, "--explain"], "tpkb code": plain}, args.repeat)
    report(f"{args.explain_n} encounters with and without --explain:", explained, "tpkb code", args.explain_n)
    size = len(run([*plain, "--explain"], stdout=None)[1]) - len(run(plain, stdout=None)[1])
    print(f"  explanation JSON: {size / args.explain_n / 1024:.1f} KB per encounter on average")


def dask_group(code: list[str], args: argparse.Namespace) -> None:
    """The same file on Dask: a LocalCluster of 2 worker processes started once (as a
    cluster runs before its jobs come), and `--dask local` starting its own each run,
    against the local path with --jobs 2."""
    try:
        from distributed import LocalCluster
    except ImportError:
        print("\n(Dask figures skipped: pip install 'tpkb[dask]')")
        return
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        times = measure({
            "tpkb code --jobs 2": [*code, "--jobs", "2"],
            "tpkb code --dask (LocalCluster, 2)": [*code, "--dask", cluster.scheduler_address],
            "tpkb code --dask local --jobs 2": [*code, "--dask", "local", "--jobs", "2"],
        }, args.repeat)
    report(f"{args.n} encounters on Dask (ratio to the local path, --jobs 2):", times, "tpkb code --jobs 2", args.n)


if __name__ == "__main__":
    main()
