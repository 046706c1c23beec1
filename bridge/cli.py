"""The tpkb command line. It parses arguments and prints; the work is done elsewhere.

Exit status: 0 all coded (or all cases passed); 1 a case failed; 2 bad input, a bad case
file or a KB error (the rest of the batch is still coded); 3 an internal error.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable, Iterator
from functools import partial
from pathlib import Path
from typing import NoReturn

import click

from .api import default_kb_path, load_kb
from .engine import KBError, SolveError, fact_text
from .facts import encounter_facts
from .kb import KB
from .load import Pending, Problem, Record, jsonl_lines, read_items
from .printable import escape
from .render import as_dot_graphs, as_json, as_text
from .stream import Coded, Options, code_stream, default_jobs

FORMATS = click.Choice(["text", "json", "jsonl"])
BATCH, EXPLAIN_BATCH = 1000, 500  # encounters per solve; explaining instruments every rule


class Ctx:
    def __init__(self, kb_path: Path):
        self.kb_path = kb_path
        self._kb: KB | None = None
        self.problems = 0

    @property
    def kb(self) -> KB:
        if self._kb is None:
            self._kb = load_kb(self.kb_path)
        return self._kb

    def report(self, problems: Iterable[Problem | str]) -> None:
        for p in problems:
            self.problems += 1
            click.echo(f"error: {p}", err=True)

    def records(self, paths: tuple[str, ...], lines: bool = False) -> Iterator[Record]:
        """The records of the paths (or of JSONL on standard input), problems reported as read."""
        for item in self.items(paths, lines):
            record = item if isinstance(item, Record) else item.read(frozenset(self.kb.profiles()))
            self.report(record.problems)
            yield record

    def items(self, paths: tuple[str, ...], lines: bool = False) -> Iterator[Record | Pending]:
        """The input, JSONL lines unread: they are read where they are coded."""
        if paths == ("-",):
            return jsonl_lines(sys.stdin.buffer, "<stdin>")
        return read_items(paths, self.kb.profiles(), lines, lazy=True)


@click.group()
@click.option("--kb", "kb_path", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="KB folder holding main.lp (default: $TPKB_KB, else the bundled KB).")
@click.version_option(package_name="tpkb")
@click.pass_context
def main(ctx: click.Context, kb_path: Path | None) -> None:
    """Code and explain needle-procedure encounters (CPT 20552/20553, 20560/20561, 76942/77002/77021)."""
    ctx.obj = Ctx(kb_path or default_kb_path())


def _fail_kb(exc: Exception) -> NoReturn:
    for m in exc.messages if isinstance(exc, KBError) else [str(exc)]:
        click.echo(f"kb error: {m}", err=True)
    sys.exit(2)


def _emit(ctx: Ctx, coded: Iterator[Coded], fmt: str) -> None:
    """Print each record as it comes; report its problems on standard error. With
    --format json, malformed records go to an "errors" list after the encounters."""
    errors: list[str] = []
    first = True
    if fmt == "json":
        click.echo('{"encounters": [', nl=False)
    for item in coded:
        ctx.report(item.problems)
        if fmt != "json":
            if item.text:
                click.echo(item.text, nl=fmt == "jsonl")
        elif not item.ok:
            errors.append(item.text)
        else:
            click.echo(("\n" if first else ",\n") + item.text, nl=False)
            first = False
    if fmt == "json":
        click.echo("\n]" + (',\n"errors": [\n' + ",\n".join(errors) + "\n]" if errors else "") + "}")


def _run(ctx: Ctx, paths: tuple[str, ...], fmt: str, options: Options, batch_size: int, jobs: int) -> None:
    try:
        kb = ctx.kb  # load (and check) the KB before anything is printed
        _emit(ctx, code_stream(kb, ctx.items(paths), options, batch_size=batch_size, jobs=jobs), fmt)
    except (KBError, SolveError) as exc:
        _fail_kb(exc)
    sys.exit(2 if ctx.problems else 0)


@main.command()
@click.argument("paths", nargs=-1, required=True)
@click.option("--format", "fmt", type=FORMATS, default="text", show_default=True)
@click.option("--explain", is_flag=True, help="Include each encounter's explanation (the summary; --full for all).")
@click.option("--full", is_flag=True, help="With --explain: every rule firing and fact, plumbing included.")
@click.option("--batch-size", type=click.IntRange(1), default=None, show_default="1000, or 500 with --explain",
              help="Encounters grounded and solved together in one program. With --explain every rule is "
              "instrumented and a batch weighs several times more, so its default batch is smaller.")
@click.option("--jobs", type=click.IntRange(1), default=default_jobs, show_default="the number of cores, at most 8",
              help="Processes coding batches at once: this one and worker processes. With 1, this "
                   "process grounds a batch while it reads the next and renders the one before.")
@click.pass_obj
def code(ctx: Ctx, paths: tuple[str, ...], fmt: str, explain: bool, full: bool, batch_size: int | None,
         jobs: int) -> None:
    """Code encounter or case files (YAML, JSON, JSONL; directories; '-' for JSONL on stdin)."""
    render = partial(as_text, full=full) if fmt == "text" else partial(as_json, full=full)
    size = batch_size or (EXPLAIN_BATCH if explain else BATCH)
    _run(ctx, paths, fmt, Options(explain=explain, render=render), size, jobs)


@main.command()
@click.argument("paths", nargs=-1, required=True)
@click.option("--format", "fmt", type=click.Choice(["text", "json", "jsonl", "dot", "svg"]), default="text",
              show_default=True)
@click.option("--full", is_flag=True, help="The whole derivation: every rule firing, fact and table row.")
@click.option("--depth", type=click.IntRange(1), default=None, help="Show this many levels of rules under each "
              "conclusion.")
@click.pass_obj
def explain(ctx: Ctx, paths: tuple[str, ...], fmt: str, full: bool, depth: int | None) -> None:
    """Explain every line, finding and verdict by the policy rules that decided it."""
    if fmt in ("dot", "svg"):
        _graph(ctx, paths, fmt, full)
        return
    render = partial(as_text, full=full, depth=depth) if fmt == "text" else partial(as_json, full=full)
    _run(ctx, paths, fmt, Options(explain=True, render=render), EXPLAIN_BATCH, default_jobs())


def _graph(ctx: Ctx, paths: tuple[str, ...], fmt: str, full: bool) -> None:
    try:
        kb = ctx.kb
        dot = as_dot_graphs(kb, list(ctx.records(paths)), full)
    except (KBError, SolveError) as exc:
        _fail_kb(exc)
    if fmt == "svg":
        exe = shutil.which("dot")
        if exe is None:
            click.echo("error: Graphviz is not installed (no 'dot' program); use --format dot", err=True)
            sys.exit(2)
        proc = subprocess.run([exe, "-Tsvg"], input=dot, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            click.echo(f"error: dot failed: {escape(proc.stderr.strip())}", err=True)
            sys.exit(2)
        dot = proc.stdout
    click.echo(dot, nl=False)
    sys.exit(2 if ctx.problems else 0)


@main.command()
@click.argument("paths", nargs=-1, required=True)
@click.pass_obj
def facts(ctx: Ctx, paths: tuple[str, ...]) -> None:
    """Print the facts each encounter becomes (the input of the KB)."""
    try:
        reader = ctx.kb.reader()
        key = 0
        for record in ctx.records(paths, lines=True):
            if not record.ok or record.encounter is None:
                continue
            key += 1
            click.echo(f"% encounter {key}: id {json.dumps(record.id)} ({escape(record.where)})")
            for atom in encounter_facts(key, record.encounter, reader):
                click.echo(fact_text(atom))
    except KBError as exc:
        _fail_kb(exc)
    sys.exit(2 if ctx.problems else 0)


@main.command()
@click.option("--format", "fmt", type=click.Choice(["json", "markdown"]), default="json", show_default=True)
@click.pass_obj
def schema(ctx: Ctx, fmt: str) -> None:
    """Print the JSON Schema of case and encounter files (cases/tpkb.schema.json), or the
    key tables of cases/README.md."""
    from . import schema as schema_module  # pydantic's JSON Schema machinery: only for this command

    try:
        profiles = ctx.kb.profiles()
    except KBError as exc:
        _fail_kb(exc)
    if fmt == "json":
        click.echo(json.dumps(schema_module.json_schema(profiles), indent=2))
    else:
        click.echo(schema_module.markdown(), nl=False)


@main.command()
@click.argument("paths", nargs=-1)
@click.option("-k", "keyword", default=None, help="Only cases whose name contains this text.")
@click.option("--coverage", "show_coverage", is_flag=True,
              help="List every rule id with the number of cases firing it.")
@click.option("--since", "since", type=click.Path(dir_okay=False, path_type=Path), default=Path(".tpkb/last-test.json"),
              show_default=True, help="Outcomes of the previous run: cases that changed since are listed, "
              "and this run's outcomes are written there.")
@click.pass_obj
def test(ctx: Ctx, paths: tuple[str, ...], keyword: str | None, show_coverage: bool, since: Path) -> None:
    """Run case files (default: cases/) and print 'N passed, M failed'.

    Also lists the cases whose outcome changed since the previous run, and how."""
    from .cases import coverage, remember, run_cases

    try:
        run = run_cases(ctx.kb, list(paths) or ["cases"], keyword)
    except (KBError, SolveError) as exc:
        _fail_kb(exc)
    ctx.report(run.problems)
    for result in run.failed:
        click.echo(result.report())
        click.echo()
    if show_coverage:
        for rid, count in coverage(ctx.kb, run):
            click.echo(f"{count:5d}  {rid}")
    if not paths and keyword is None and run.results:
        unfired = sorted(set(ctx.kb.rules) - run.fired)
        click.echo(f"rules fired by the cases: {len(ctx.kb.rules) - len(unfired)} of {len(ctx.kb.rules)}"
                   + (f"; fired by no case: {', '.join(unfired)}" if unfired else ""))
    changed, warning = remember(since, run)
    if warning:
        click.echo(f"warning: {warning}", err=True)
    if changed:
        click.echo(f"changed since the last run ({len(changed)}):")
        for line in changed:
            click.echo(f"  {line}")
    click.echo(run.tally())
    if ctx.problems:
        sys.exit(2)
    if run.failed or not run.results:
        sys.exit(1)


@main.group("import")
def import_() -> None:
    """Write the KB's NCCI fact files from CMS's own releases (bridge/cms.py)."""


_EXTRACT = click.option("--extract", is_flag=True,
                        help="The file is the third-party extract shipped in ../shared/reference/data/ (JSON).")
_FILES = click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))


def _write(imported, text: str, out: Path) -> None:
    for problem in imported.problems:
        click.echo(f"error: {escape(problem)}", err=True)
    if imported.problems:
        click.echo(f"{len(imported.problems)} problem(s); nothing written", err=True)
        sys.exit(2)
    out.write_text(text)
    click.echo(f"{out}: {len(imported.rows)} rows")


@import_.command("ptp")
@_FILES
@_EXTRACT
@click.option("--release", default=None, help="Release name; default: from the file name (ccipra-v321r0).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Default: kb/reference/ncci_ptp.lp of the KB in use.")
@click.pass_obj
def import_ptp(ctx: Ctx, files: tuple[Path, ...], extract: bool, release: str | None, out: Path | None) -> None:
    """CMS practitioner PTP text files (the parts f1-f4 of one release), or the extract."""
    from . import cms

    imported = cms.read_ptp_extract(files[0]) if extract else cms.read_ptp(files)
    name = release or ("2026Q2 extract" if extract else cms.release_from_name(files[0].name))
    _write(imported, cms.ptp_facts(imported, name, directed=not extract),
           out or ctx.kb_path / "reference" / "ncci_ptp.lp")


@import_.command("mue")
@_FILES
@_EXTRACT
@click.option("--effective", default=None, help="YYYY-MM-DD the release is in force from; default: from the "
              "file name (..._Eff_10-01-2025.csv).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Default: kb/reference/mue.lp of the KB in use.")
@click.pass_obj
def import_mue(ctx: Ctx, files: tuple[Path, ...], extract: bool, effective: str | None, out: Path | None) -> None:
    """CMS practitioner MUE CSV files, one quarter each (several quarters may be given), or the extract."""
    from . import cms

    since = int(effective.replace("-", "")) if effective and re.fullmatch(r"\d{4}-\d{2}-\d{2}", effective) else None
    if effective and since is None:
        click.echo(f"error: --effective {escape(effective)}: write YYYY-MM-DD", err=True)
        sys.exit(2)
    imported = cms.read_mue_extract(files[0]) if extract else cms.read_mue(files, since)
    _write(imported, cms.mue_facts(imported), out or ctx.kb_path / "reference" / "mue.lp")


def run() -> None:
    """Entry point: no tracebacks for a person at a terminal."""
    try:
        main(standalone_mode=True)
    except KeyboardInterrupt:
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(0)
    except Exception as exc:  # noqa: BLE001 - the last line of defence
        click.echo(f"internal error: {type(exc).__name__}: {escape(str(exc))[:300]} (please report this with "
                   "the input)", err=True)
        sys.exit(3)
