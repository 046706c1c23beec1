"""Benchmark: tpkb against the two alternatives of issue 10 (item 4), every figure a ratio
measured in one run, the commands interleaved in rounds so that all see the same machine
load (as bench/bench.py: each command's best and median of --repeat rounds, and its ratio
to the baseline as the median of the per-round ratios and as the ratio of the best times).

    .venv/bin/python bench/alternatives.py [--n 2000] [--repeat 3] [--seed 2026] [--xclingo-batch 500]

Every command is a whole process, as a user runs it, on the same N random encounters
(bench/generate.py, one JSONL file); its output goes to a file, which the last round
leaves for the comparisons. Before the rounds, each command runs once on the first 20
encounters (the warm-up: the KB cache and Python's bytecode).

1. One solve per batch against one clingo Control per encounter. tpkb as shipped,
   `tpkb code FILE --format jsonl` (default jobs, and `--jobs 1`), against the approach a
   user of clingo writes first: this file run as `alternatives.py --naive FILE`, one
   process that loads the KB once (bridge.api.load_kb, from its cache) and its plain
   program text once (kb.program("plain"): the rules of kb/main.lp and the payer
   overlays, not instrumented), then, for each encounter: reads it (bridge.load), makes
   its facts (bridge.facts, as `tpkb facts` prints them) and the table rows they can use
   (the rows tpkb gives a batch; all 24,000 rows of kb/reference cost two to three times
   as much per encounter), creates a clingo.Control with the program text and the facts
   (bridge.engine.Grounding: facts as clingo symbols, table rows built once and reused;
   only bridge/engine.py may import clingo, tests/test_engine.py), grounds, solves,
   reads the model's shown atoms and writes them as a JSON line (lines, modifiers,
   finding ids, verdicts, reasons; no messages, so less than tpkb writes). Reused across
   encounters: the loaded KB, the program text, the table rows' symbols; not reusable
   without a shared solve: the Control, its grounding and its solving. For where the
   time goes, the same process with `--whole` (one Control for the whole file) is timed
   too, and each naive process reports the seconds of each stage.
2. Explanations against xclingo 2.0b24. `tpkb code FILE --explain --format jsonl`
   (default jobs and `--jobs 1`: every line, modifier, finding, billed verdict and reason
   explained by the rules of the whole KB, a JSON graph per encounter with labels and
   sources) against xclingo explaining the same conclusions (`%!show_trace` on line/3,
   line_modifier/3, finding/3, not_covered/3, verdict/3, reject_reason/4) of the same
   encounters with the same rules: bench/xclingo/tpkb_traced.lp, written here from the
   KB at every run (so it stays in step), each rule under `%!trace_rule {"id: label",
   Vars}`. xclingo runs in a virtual environment of its own, .tpkb/venv-xclingo, made
   here on first use from bench/xclingo/requirements.txt (xclingo 2.0b24 requires
   clingo==5.8, that is 5.8.0; tpkb pins 5.8.3; pip: ResolutionImpossible), as
   bench/xclingo/explain.py: one process, one xclingo control (its Python API) per
   batch of --xclingo-batch encounters, each batch's facts and table rows given as
   text written beforehand and not timed (as bench/bench.py gives raw clingo its
   facts). Batches of 500 are what tpkb --explain uses, and about the fastest for
   xclingo: smaller ones translate the KB again each time, larger ones cost more per
   encounter (xclingo's translation builds its text by string concatenation, which
   takes most of that stage and grows faster than the program). Measured under load
   on 1,000 encounters: batches of 250 124 s, 500 127 s, 1,000 158 s. Then the
   conclusions of tpkb, xclingo and the naive processes are compared, encounter by
   encounter, and xclingo's explanations counted.

What xclingo reads of the KB, found by running it on the whole KB: every rule (normal
rules with negation and #count, #sum and #max aggregates; the KB has no choice rule,
constraint or conditional literal), after two rewrites that keep the meaning, made here
when the traced KB is written: (a) no comments: xclingo copies each statement into its
translation as a one-line `% ...` comment, so the rest of a multi-line `%* ... *%` block
is left in the program ("<block>:7:12-13: error: syntax error, unexpected >"); (b) each
anonymous variable `_` of a positive body literal named (Anon1, Anon2, ...): xclingo puts
it in the tuple of the rule's variables and its explainer program is unsafe ("unsafe
variables in: _xclingo_sup(23,0,paired(group,G),(G,#Anon0)):-..."). A `_` of a negative
literal stays as written. (xclingo's README writes `%!show_trace sentence(P,S).`; 2.0b24
wants braces, `%!show_trace {sentence(P,S)}.`.)
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common import ENV, GENERATE, ROOT, TPKB, report

sys.path.insert(0, str(ROOT))  # run as a script from anywhere: the bridge of this checkout

XCLINGO_PIN = "xclingo==2.0b24"
XCLINGO_VENV = ROOT / ".tpkb" / "venv-xclingo"  # .tpkb/ is ignored by git
XCLINGO_DIR = ROOT / "bench" / "xclingo"
TRACED = XCLINGO_DIR / "tpkb_traced.lp"
EXPLAIN = XCLINGO_DIR / "explain.py"
WARM = 20  # encounters of the warm-up run of each command


# ---------------------------------------------------------------------- timing
@dataclass
class Timed:
    """The times of each command of a group, and what each printed in the last round."""

    times: dict[str, list[float]]
    out: dict[str, Path]
    err: dict[str, str]

    def speedup(self, slow: str, fast: str) -> tuple[float, float, float]:
        """How many times as fast `fast` is as `slow`: the median, lowest and highest of the
        per-round ratios."""
        ratios = [s / f for s, f in zip(self.times[slow], self.times[fast])]
        return statistics.median(ratios), min(ratios), max(ratios)

    def records(self, name: str) -> list[dict]:
        return [json.loads(line) for line in self.out[name].read_text().splitlines()]


def run(cmd: list[str], out: Path | None = None) -> tuple[float, str]:
    """Run a command, its standard output to a file (or nowhere); its time and standard error."""
    with open(out or os.devnull, "wb") as stdout:
        start = time.perf_counter()
        proc = subprocess.run(cmd, stdout=stdout, stderr=subprocess.PIPE, cwd=ROOT, env=ENV)
        elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr.decode()[-2000:]}")
    return elapsed, proc.stderr.decode()


def measure(commands: dict[str, list[str]], warm: dict[str, list[str]], repeat: int, work: Path) -> Timed:
    """Each command once on a small file (the warm-up: it writes the KB cache and Python's
    bytecode, as any first run on a machine does), then `repeat` rounds, each running every
    command once, one after the other. Every run writes its output to a file (the same for
    all: the page cache), which the last round leaves for the comparisons."""
    for cmd in warm.values():
        run(cmd)
    timed = Timed({name: [] for name in commands}, {}, {})
    for _ in range(repeat):
        for name, cmd in commands.items():
            out = timed.out[name] = work / f"{re.sub(r'[^a-z0-9]+', '-', name.lower())}.jsonl"
            elapsed, timed.err[name] = run(cmd, out)
            timed.times[name].append(elapsed)
    return timed


# ---------------------------------------------------------------------- 1. one Control per encounter
def naive(path: str, whole: bool = False) -> None:
    """Code every encounter of a JSONL file with one clingo Control each (see the module
    docstring), or with `whole` one Control for the whole file; one JSON line per encounter
    on stdout, the time of each stage on stderr."""
    start = time.perf_counter()
    from bridge.api import load_kb, strings_in_play
    from bridge.engine import Grounding
    from bridge.facts import batch_facts
    from bridge.load import read_paths

    kb = load_kb()
    program = kb.program("plain")
    reader = kb.reader()
    stages = dict.fromkeys(("start, KB", "read, facts, rows", "Control, program, facts", "ground",
                            "solve, read model", "JSON out"), 0.0)
    records = [r for r in read_paths([path]) if r.encounter is not None]
    stages["start, KB"] = time.perf_counter() - start
    write = sys.stdout.write
    for chunk in [records] if whole else [[r] for r in records]:
        t0 = time.perf_counter()
        facts = batch_facts([r.encounter for r in chunk if r.encounter is not None], reader)
        rows = kb.tables.for_batch(strings_in_play(facts))
        t1 = time.perf_counter()
        control = Grounding(program, facts, rows)  # a clingo.Control, the program text added, the facts
        t2 = time.perf_counter()
        control.ground()
        t3 = time.perf_counter()
        shown: list[list[list[Any]]] = [[] for _ in chunk]
        for atom in control.answer():
            shown[atom[1] - 1].append([atom[0], *(a if isinstance(a, int | str) else str(a) for a in atom[2:])])
        t4 = time.perf_counter()
        for record, atoms in zip(chunk, shown):
            write(json.dumps({"id": record.id, **_conclusions(atoms)}) + "\n")
        t5 = time.perf_counter()
        for stage, seconds in zip(list(stages)[1:], (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4)):
            stages[stage] += seconds
    if not whole:  # what one Control costs before any encounter: the KB and the rows every batch gets
        t0 = time.perf_counter()
        control = Grounding(program, [], kb.tables.for_batch(set()))
        control.ground()
        control.answer()
        stages["(the same for no encounter, once)"] = time.perf_counter() - t0
    sys.stderr.write(json.dumps(stages) + "\n")


def _conclusions(atoms: Iterable[Sequence[Any]]) -> dict[str, list]:
    """The public atoms of one encounter (encounter argument left out) as comparable sets:
    lines (code, units), modifiers (code, modifier), finding ids, verdicts (billed line,
    verdict), reasons (billed line, reason id)."""
    out: dict[str, set] = {"lines": set(), "modifiers": set(), "findings": set(), "verdicts": set(),
                           "reasons": set()}
    for name, *args in atoms:
        if name == "line":
            out["lines"].add((args[0], args[1]))
        elif name == "line_modifier":
            out["modifiers"].add((args[0], args[1]))
        elif name == "finding":
            out["findings"].add(args[0])
        elif name == "not_covered":
            out["findings"].add(args[1])
        elif name == "verdict":
            out["verdicts"].add((args[0], args[1]))
        elif name == "reject_reason":
            out["reasons"].add((args[0], args[1]))
    return {key: sorted(values) for key, values in out.items()}


def _tpkb_conclusions(record: dict) -> dict[str, list]:
    """The same sets from a line of `tpkb code --format jsonl`."""
    out: dict[str, set] = {"lines": set(), "modifiers": set(), "findings": set(), "verdicts": set(),
                           "reasons": set()}
    for line in record.get("lines", []):
        out["lines"].add((line["code"], line["units"]))
        out["modifiers"].update((line["code"], m) for m in line.get("modifiers", []))
    out["findings"].update(f["id"] for f in record.get("findings", []))
    for b, billed in enumerate(record.get("billed") or [], start=1):
        out["verdicts"].add((b, billed["verdict"]))
        out["reasons"].update((b, r["id"]) for r in billed.get("reason_details", []))
    return {key: sorted(values) for key, values in out.items()}


def _json_sets(record: dict) -> dict[str, list]:
    return {key: sorted(tuple(v) if isinstance(v, list) else v for v in record.get(key, []))
            for key in ("lines", "modifiers", "findings", "verdicts", "reasons")}


# ---------------------------------------------------------------------- 2. xclingo
_PLACEHOLDER = re.compile(r"\{(\w+)(?::\w+)?\}")


def traced_kb(root: Path) -> tuple[str, list[str], list[str]]:
    """The KB as xclingo reads it: every statement but comments, table rows (given with
    each batch) and #show of the bridge's own atoms, each rule under
    `%!trace_rule {"id: label", Vars}` with its anonymous variables named. Returns the
    text, the ids of the rules traced and those among them whose variables were named."""
    from bridge.kb import REFERENCE, check_kb

    compiled = check_kb(root)
    if compiled.parse_errors or compiled.errors:
        raise SystemExit("the KB does not load:\n" + "\n".join(compiled.parse_errors or compiled.errors))
    kb = compiled.kb
    rules = {(r.file, r.line): r for r in kb.by_number}
    out = ["% The tpkb KB annotated for xclingo, written by bench/alternatives.py from kb/main.lp and",
           "% kb/payers/*.lp at every run: do not edit. Table rows come with each batch of facts.", ""]
    traced: list[str] = []
    renamed: list[str] = []
    for stmt in compiled.statements:
        if stmt.file.startswith(REFERENCE) or stmt.kind in ("comment", "row"):
            continue
        rule = rules.get((stmt.file, stmt.line))
        if rule is None:
            out.append(stmt.text)
            continue
        names: list[str] = []

        def placeholder(match: re.Match, names: list[str] = names) -> str:
            names.append(match.group(1))
            return "%"

        # xclingo puts each value in place of a "%": a literal one is written out
        label = _PLACEHOLDER.sub(placeholder, rule.label.replace("%", " percent"))
        label = json.dumps(f"{rule.id}: {label}", ensure_ascii=False)
        out.append(f"%!trace_rule {{{label}{''.join(',' + n for n in names)}}}.")
        text, count = _name_anonymous(stmt.head_text, stmt.body_text)
        out.append(text)
        traced.append(rule.id)
        if count:
            renamed.append(rule.id)
    out.extend(f"#defined {name}/{arity}." for name, arity in sorted(kb.tables.tables))
    return "\n".join(out) + "\n", traced, renamed


_LITERAL = re.compile(r"(\bnot\s+)?\b[a-z]\w*\((?:[^()]|\([^()]*\))*\)")  # an atom, maybe negated
_ANONYMOUS = re.compile(r"(?<![\w\"])_(?![\w\"])")


def _name_anonymous(head: str, body: Sequence[str]) -> tuple[str, int]:
    """The rule with each `_` of its positive body literals (and of the positive literals in
    its aggregates' conditions) replaced by a fresh variable; a `_` of a negative literal
    stays (it is local to the literal, a named variable would be unsafe there)."""
    count = 0

    def name(_match: re.Match) -> str:
        nonlocal count
        count += 1
        return f"Anon{count}"

    def literal(match: re.Match) -> str:
        return match.group(0) if match.group(1) else _ANONYMOUS.sub(name, match.group(0))

    return f"{head} :- {'; '.join(_LITERAL.sub(literal, lit) for lit in body)}.", count


def xclingo_batches(records: list[Any], size: int, dest: Path) -> list[Path]:
    """Each batch's table rows and encounter facts as program text (keys 1..n, as tpkb
    numbers a batch), its ids in the first line."""
    from bridge.api import batch_input, load_kb
    from bridge.engine import fact_text

    kb = load_kb()
    paths = []
    for start in range(0, len(records), size):
        chunk = records[start:start + size]
        facts, rows = batch_input(kb, [r.encounter for r in chunk])
        path = dest / f"batch{start // size:04d}.lp"
        path.write_text(f"% ids: {' '.join(r.id for r in chunk)}\n"
                        + "".join(fact_text(a) + "\n" for a in rows + facts))
        paths.append(path)
    return paths


def xclingo_python() -> Path:
    """The Python of xclingo's virtual environment, made on first use and given the packages
    of bench/xclingo/requirements.txt."""
    python = XCLINGO_VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(XCLINGO_VENV)], check=True)
    if subprocess.run([str(python), "-c", "import xclingo"], capture_output=True).returncode != 0:
        print(f"installing {XCLINGO_PIN} in {XCLINGO_VENV.relative_to(ROOT)} ...", flush=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "-r", str(XCLINGO_DIR / "requirements.txt")],
                       check=True)
    return python


# ---------------------------------------------------------------------- main
def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--xclingo-batch", type=int, default=500)
    parser.add_argument("--naive", metavar="FILE", help=argparse.SUPPRESS)
    parser.add_argument("--whole", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.naive:
        naive(args.naive, args.whole)
        return

    from importlib.metadata import version

    python = xclingo_python()
    xclingo_versions = subprocess.run(
        [str(python), "-c", "from importlib.metadata import version as v; print(v('xclingo'), v('clingo'))"],
        capture_output=True, text=True, check=True).stdout.split()
    print(f"{time.strftime('%Y-%m-%d')}: {os.cpu_count()} cores, Python {sys.version.split()[0]}, "
          f"clingo {version('clingo')}; xclingo {xclingo_versions[0]} with clingo {xclingo_versions[1]} "
          f"(its own venv); {args.repeat} rounds after a warm-up")
    work = Path(tempfile.mkdtemp(prefix="tpkb-alternatives-"))
    try:
        compare_all(args, python, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def compare_all(args: argparse.Namespace, python: Path, work: Path) -> None:
    """The two comparisons and the agreement of the conclusions (see the module docstring)."""
    from bridge.load import read_paths
    from bridge.stream import default_jobs

    jsonl = work / "encounters.jsonl"
    with jsonl.open("w") as out:
        subprocess.run([*GENERATE, str(args.n), str(args.seed)],
                       stdout=out, check=True)
    small = work / "warm.jsonl"
    small.write_text("".join(jsonl.read_text().splitlines(keepends=True)[:WARM]))
    jobs = default_jobs()
    shipped, one_process = f"tpkb code, default jobs ({jobs})", "tpkb code --jobs 1"
    per_encounter, whole = "one clingo Control per encounter", "one clingo Control for the whole file"

    # 1. one solve per batch against one Control per encounter
    def part1(path: Path) -> dict[str, list[str]]:
        code = [*TPKB, "code", str(path), "--format", "jsonl"]
        naive_cmd = [sys.executable, __file__, "--naive", str(path)]
        return {shipped: code, one_process: [*code, "--jobs", "1"], per_encounter: naive_cmd,
                whole: [*naive_cmd, "--whole"]}

    one = measure(part1(jsonl), part1(small), args.repeat, work)
    report(f"{args.n} encounters coded: one solve per batch against one clingo Control per encounter "
           "(ratio to tpkb as shipped):", one.times, shipped, args.n)
    for fast in (shipped, one_process):
        med, low, high = one.speedup(per_encounter, fast)
        print(f"  {fast}: {med:.0f} times as fast as one Control per encounter (rounds {low:.0f} to "
              f"{high:.0f}; goal at least 15)")
    for name in (per_encounter, whole):
        print(f"  {name}, seconds in each stage (last round): "
              + ", ".join(f"{k} {v:.2f}" for k, v in json.loads(one.err[name].splitlines()[-1]).items()))

    # 2. explanations against xclingo
    text, traced, renamed = traced_kb(ROOT / "kb")
    XCLINGO_DIR.mkdir(exist_ok=True)
    TRACED.write_text(text)
    start = time.perf_counter()
    batches = xclingo_batches(list(read_paths([jsonl])), args.xclingo_batch, work)
    prepared = time.perf_counter() - start
    (work / "warm").mkdir()
    warm_batches = xclingo_batches(list(read_paths([small])), args.xclingo_batch, work / "warm")
    explained_shipped, explained_one = f"tpkb code --explain, default jobs ({jobs})", "tpkb code --explain --jobs 1"
    xname = f"xclingo, batches of {args.xclingo_batch}, one process"

    def part2(path: Path, batch_files: list[Path]) -> dict[str, list[str]]:
        code = [*TPKB, "code", str(path), "--explain", "--format", "jsonl"]
        return {explained_shipped: code, explained_one: [*code, "--jobs", "1"],
                xname: [str(python), str(EXPLAIN), str(TRACED), *map(str, batch_files)]}

    two = measure(part2(jsonl, batches), part2(small, warm_batches), args.repeat, work)
    report(f"{args.n} encounters explained: tpkb against xclingo, the same rules (ratio to tpkb --explain "
           "as shipped):", two.times, explained_shipped, args.n)
    for fast in (explained_shipped, explained_one):
        med, low, high = two.speedup(xname, fast)
        print(f"  {fast}: {med:.0f} times as fast as xclingo (rounds {low:.0f} to {high:.0f}; goal at least 20)")
    print(f"  xclingo, seconds in each stage (last round): {two.err[xname].strip().splitlines()[-1]}")
    print(f"  xclingo's input (facts and table rows of each batch as text), written beforehand, not timed: "
          f"{prepared:.2f} s")
    print(f"  the rules xclingo explains ({TRACED.relative_to(ROOT)}): all {len(traced)} rules of the KB, "
          f"{len(renamed)} of them with anonymous variables named")

    # the conclusions, compared encounter by encounter
    print("\nAgreement, encounter by encounter (lines and units, modifiers, finding ids, billed verdicts, reasons):")
    tpkb_records = two.records(explained_shipped)
    x_records = two.records(xname)
    compare("tpkb code --explain and xclingo", tpkb_records, x_records, lambda r: _conclusions(r["atoms"]))
    compare("tpkb code and one Control per encounter", one.records(shipped), one.records(per_encounter),
            _json_sets)
    compare("tpkb code and one Control for the whole file", one.records(shipped), one.records(whole), _json_sets)
    x_done = sum(r["explained"] for r in x_records)
    x_left = sum(r["unexplained"] for r in x_records)
    tpkb_done = sum(len(r.get("explanation", {}).get("conclusions", [])) for r in tpkb_records)
    print(f"  conclusions explained: tpkb {tpkb_done}; xclingo {x_done}, and {x_left} it gave no explanation")
    tpkb_bytes = sum(len(json.dumps(r.get("explanation", {}))) for r in tpkb_records)
    x_bytes = sum(len("".join(r["explanation"])) for r in x_records)
    print(f"  explanation text per encounter: tpkb {tpkb_bytes / len(tpkb_records) / 1024:.1f} KB of JSON "
          f"(graph, labels, sources), xclingo {x_bytes / len(x_records) / 1024:.1f} KB of trees of labels")


def compare(title: str, tpkb_records: list[dict], other: list[dict], sets: Any) -> None:
    mismatches = []
    if len(tpkb_records) != len(other):
        mismatches.append(f"{len(tpkb_records)} records against {len(other)}")
    for mine, theirs in zip(tpkb_records, other):
        a, b = _tpkb_conclusions(mine), sets(theirs)
        if mine["id"] != theirs["id"] or a != b:
            mismatches.append(f"{mine['id']}: " + "; ".join(f"{k}: {a[k]} against {b[k]}" for k in a if a[k] != b[k]))
    print(f"  {title}: {len(tpkb_records) - len(mismatches)} of {len(tpkb_records)} agree")
    for line in mismatches[:10]:
        print(f"    {line}")


if __name__ == "__main__":
    main()
