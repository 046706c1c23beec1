"""The tpkb command line. It parses arguments and prints; the work is done elsewhere.

Exit status: 0 all coded (or all cases passed); 1 a case failed; 2 bad input, a bad
case file or a KB error (the rest of the batch is still coded); 3 an internal error.
"""

from __future__ import annotations

import json
import sys
from itertools import islice
from pathlib import Path
from typing import Iterable, Iterator

import click

from .api import code_batches, default_jobs, default_kb_path
from .cases import changes, run_cases, summary
from .engine import KB, KBError, SolveError
from .explain import format_outcome
from .facts import encounter_facts
from .load import Encounter, InputProblem, assign_keys, iter_jsonl, load_paths

FORMATS = click.Choice(["text", "json", "jsonl"])


class Ctx:
    def __init__(self, kb_path: Path):
        self.kb_path = kb_path
        self._kb: KB | None = None
        self.problems = 0

    @property
    def kb(self) -> KB:
        if self._kb is None:
            self._kb = KB.load(self.kb_path)
        return self._kb

    def report(self, problems: Iterable[InputProblem]) -> None:
        for p in problems:
            self.problems += 1
            click.echo(f"error: {p}", err=True)


@click.group()
@click.option("--kb", "kb_path", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="KB folder holding main.lp (default: $TPKB_KB, else the bundled KB).")
@click.version_option(package_name="tpkb")
@click.pass_context
def main(ctx: click.Context, kb_path: Path | None) -> None:
    """Code and explain needle-procedure encounters (CPT 20552/20553, 20560/20561, 76942/77002/77021)."""
    ctx.obj = Ctx(kb_path or default_kb_path())


def _batches(ctx: Ctx, paths: tuple[str, ...], batch_size: int) -> Iterator[list[Encounter]]:
    """Encounters (and the encounters of cases) in batches; errors are reported as found."""
    if paths == ("-",):
        stream = iter_jsonl(sys.stdin, "<stdin>", ctx.kb.profiles())
        while True:
            chunk = list(islice(stream, batch_size))
            if not chunk:
                return
            batch = []
            for enc, problems in chunk:
                ctx.report(problems)
                if enc:
                    batch.append(enc)
            assign_keys(batch)
            yield batch
        return
    loaded = load_paths(paths, ctx.kb.profiles())
    ctx.report(loaded.problems)
    encounters = loaded.encounters + [c.encounter for c in loaded.cases]
    for i in range(0, len(encounters), batch_size):
        yield encounters[i:i + batch_size]


def render_json(out: dict, explain: bool) -> str:
    return json.dumps(out)


def render_text(out: dict, explain: bool) -> str:
    return format_outcome(out, explain=explain) + "\n"


def _emit(records: Iterator[str], fmt: str) -> None:
    records = iter(records)
    if fmt == "json":
        first = next(records, None)  # solve the first batch before printing anything
        click.echo('{"encounters": [', nl=False)
        if first is not None:
            click.echo("\n" + first, nl=False)
            for record in records:
                click.echo(",\n" + record, nl=False)
        click.echo("\n]}")
    else:
        for record in records:
            click.echo(record)


def _run(ctx: Ctx, paths, fmt: str, explain: bool, batch_size: int, jobs: int) -> None:
    render = render_text if fmt == "text" else render_json
    try:
        ctx.kb  # load (and check) the KB before anything is printed
        _emit(code_batches(ctx.kb, _batches(ctx, paths, batch_size), explain=explain, render=render, jobs=jobs), fmt)
    except (KBError, SolveError) as exc:
        _fail_kb(exc)
    sys.exit(2 if ctx.problems else 0)


def _fail_kb(exc: Exception) -> None:
    messages = exc.messages if isinstance(exc, KBError) else [str(exc)]
    for m in messages:
        click.echo(f"kb error: {m}", err=True)
    sys.exit(2)


@main.command()
@click.argument("paths", nargs=-1, required=True)
@click.option("--format", "fmt", type=FORMATS, default="text", show_default=True)
@click.option("--explain", is_flag=True, help="Include the explanation trees.")
@click.option("--batch-size", type=click.IntRange(1), default=5000, show_default=True,
              help="Encounters grounded and solved together in one program.")
@click.option("--jobs", type=click.IntRange(1), default=default_jobs, show_default="the number of cores",
              help="Batches coded at once, each in its own process.")
@click.pass_obj
def code(ctx: Ctx, paths, fmt, explain, batch_size, jobs) -> None:
    """Code encounter or case files (YAML, JSON, JSONL; directories; '-' for JSONL on stdin)."""
    _run(ctx, paths, fmt, explain, batch_size, jobs)


@main.command()
@click.argument("paths", nargs=-1, required=True)
@click.option("--format", "fmt", type=FORMATS, default="text", show_default=True)
@click.pass_obj
def explain(ctx: Ctx, paths, fmt) -> None:
    """Code files and explain every line, finding and verdict by the rules that derived it."""
    _run(ctx, paths, fmt, True, 5000, 1)


@main.command()
@click.argument("paths", nargs=-1, required=True)
@click.pass_obj
def facts(ctx: Ctx, paths) -> None:
    """Print the facts each encounter becomes (the input of the KB)."""
    try:
        side_words = ctx.kb.side_words()
        for batch in _batches(ctx, paths, 5000):
            for enc in batch:
                where = f"{enc.file}:{enc.line}" if enc.line else enc.file
                click.echo(f"% encounter {enc.id} ({where})")
                for sym in encounter_facts(enc, side_words):
                    click.echo(f"{sym}.")
    except KBError as exc:
        _fail_kb(exc)
    sys.exit(2 if ctx.problems else 0)


@main.command()
@click.argument("paths", nargs=-1)
@click.option("-k", "keyword", default=None, help="Only cases whose name contains this text.")
@click.option("--coverage", is_flag=True, help="List every rule id with the number of cases firing it.")
@click.option("--since", "since", type=click.Path(dir_okay=False, path_type=Path), default=Path(".tpkb/last-test.json"),
              show_default=True, help="Outcomes of the previous run: cases that changed since are listed, "
              "and this run's outcomes are written there.")
@click.pass_obj
def test(ctx: Ctx, paths, keyword, coverage, since) -> None:
    """Run case files (default: cases/) and print 'N passed, M failed'.

    Also lists the cases whose outcome changed since the previous run, and how."""
    try:
        run = run_cases(ctx.kb, list(paths) or ["cases"], keyword)
    except (KBError, SolveError) as exc:
        _fail_kb(exc)
    ctx.report(run.problems)
    for result in run.failed:
        click.echo(result.report())
        click.echo()
    if coverage:
        counts = {rid: 0 for rid in ctx.kb.rules}
        for result in run.results:
            for rid in result.outcome.get("fired", []):
                counts[rid] += 1
        for rid in sorted(counts):
            click.echo(f"{counts[rid]:5d}  {rid}")
    if not paths and keyword is None and run.results:
        unfired = sorted(set(ctx.kb.rules) - run.fired)
        click.echo(f"rules fired by the cases: {len(ctx.kb.rules) - len(unfired)} of {len(ctx.kb.rules)}"
                   + (f"; fired by no case: {', '.join(unfired)}" if unfired else ""))
    _changes_since(since, summary(run))
    failed = len(run.failed)
    click.echo(f"{len(run.results) - failed} passed, {failed} failed")
    if ctx.problems:
        sys.exit(2)
    if failed or not run.results:
        sys.exit(1)


def _changes_since(path: Path, now: dict) -> None:
    try:
        before = json.loads(path.read_text())
    except (OSError, ValueError):
        before = {}
    changed = changes(before, now)
    if changed:
        click.echo(f"changed since the last run ({len(changed)}):")
        for line in changed:
            click.echo(f"  {line}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({**before, **now}, indent=0, sort_keys=True))
    except OSError as exc:
        click.echo(f"warning: could not record this run in {path}: {exc}", err=True)


def run() -> None:
    """Entry point: no tracebacks for a person at a terminal."""
    try:
        main(standalone_mode=True)
    except KeyboardInterrupt:
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(0)
    except Exception as exc:  # noqa: BLE001 - the last line of defence
        click.echo(f"internal error: {type(exc).__name__}: {exc} (please report this with the input)", err=True)
        sys.exit(3)
