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
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, closing
from functools import partial
from pathlib import Path
from typing import Any, NoReturn

import click

from .api import default_kb_path, load_kb
from .engine import KBError, SolveError, fact_text
from .facts import encounter_facts
from .kb import KB
from .load import Pending, Problem, Record, jsonl_lines, read_items
from .model import Encounter
from .printable import escape
from .render import as_dot_graphs, as_json, as_text
from .stream import DAY_WINDOW, Coded, Options, Tally, code_stream, default_jobs

FORMATS = click.Choice(["text", "json", "jsonl"])
BATCH = 500  # encounters per solve, with or without --explain (a worker at its height: about 75 MB)
FLUSH_AFTER = 0.2  # seconds of quiet on standard input before a partial batch is coded


class Ctx:
    def __init__(self, kb_path: Path):
        self.kb_path = kb_path
        self._kb: KB | None = None
        self.problems = 0
        self.quiet = False  # no progress bar
        self.total: int | None = None  # records to code, where known
        self.bar: Any = None  # the progress bar being shown

    @property
    def kb(self) -> KB:
        if self._kb is None:
            self._kb = load_kb(self.kb_path)
        return self._kb

    def report(self, problems: Iterable[Problem | str]) -> None:
        for p in problems:
            self.problems += 1
            if self.bar is not None:
                self.bar.write(f"error: {p}", file=sys.stderr)  # above the progress bar
            else:
                click.echo(f"error: {p}", err=True)

    def progress(self, coded: Iterator[Coded]) -> Iterator[Coded]:
        """The records, counted on a progress bar (records, rate, and where the total is
        known, the time left) on standard error: only on a terminal, never with --quiet."""
        if self.quiet or not sys.stderr.isatty():
            yield from coded
            return
        from tqdm import tqdm

        with tqdm(total=self.total, unit=" records", file=sys.stderr, mininterval=0.5, dynamic_ncols=True,
                  leave=False) as bar:
            self.bar = bar
            try:
                for item in coded:
                    bar.update()
                    yield item
            finally:
                self.bar = None

    def count(self, paths: tuple[str, ...]) -> None:
        """The number of records, where it is known cheaply (JSONL files: their lines), for
        the progress bar's time left."""
        files = [Path(p) for p in paths]
        if self.quiet or not sys.stderr.isatty() or not files or not all(
                f.suffix == ".jsonl" and f.is_file() for f in files):
            return
        total = 0
        for f in files:
            with f.open("rb") as stream:
                total += sum(chunk.count(b"\n") for chunk in iter(partial(stream.read, 1 << 20), b""))
        self.total = total

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
    for item in ctx.progress(coded):
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


def _run(ctx: Ctx, paths: tuple[str, ...], fmt: str, options: Options, batch_size: int, jobs: int,
         dask: str | None = None, flush_after: float = 0.0) -> None:
    try:
        kb = ctx.kb  # load (and check) the KB before anything is printed
        ctx.count(paths)
        tally = Tally()
        if dask is None:
            flush = flush_after if paths == ("-",) and flush_after > 0 else None
            _emit(ctx, code_stream(kb, ctx.items(paths), options, batch_size=batch_size, jobs=jobs,
                                   flush_after=flush, tally=tally, waiting=sys.stdout.flush), fmt)
        else:  # the same batches, solved by the workers of a Dask cluster (bridge/distributed.py)
            from .distributed import DaskError, code_dask

            try:
                with closing(code_dask(dask, kb, ctx.items(paths), options, batch_size, workers=jobs,
                                       tally=tally)) as coded:
                    _emit(ctx, coded, fmt)
            except DaskError as exc:
                click.echo(f"error: --dask: {escape(str(exc))}", err=True)
                sys.exit(2)
        if tally.late_days:
            click.echo(f"warning: {tally.late_days} record(s) of a patient's day came more than {DAY_WINDOW:,} "
                       "records after that day's first, which was coded without them: sort the input by patient "
                       "and date", err=True)
    except (KBError, SolveError) as exc:
        _fail_kb(exc)
    sys.exit(2 if ctx.problems else 0)


@main.command()
@click.argument("paths", nargs=-1, required=True)
@click.option("--format", "fmt", type=FORMATS, default="text", show_default=True)
@click.option("--explain", is_flag=True, help="Include each encounter's explanation (the summary; --full for all).")
@click.option("--full", is_flag=True, help="With --explain: every rule firing and fact, plumbing included.")
@click.option("--batch-size", type=click.IntRange(1), default=BATCH, show_default=True,
              help="Encounters grounded and solved together in one program. Larger batches take more memory "
                   "in each process for no more speed.")
@click.option("--jobs", type=click.IntRange(1), default=default_jobs, show_default="the number of cores, at most 8",
              help="Worker processes coding batches at once, beside this one, which codes the first. Each worker is "
                   "replaced by a fresh one once it has grown, so memory stays flat however long the input.")
@click.option("--dask", default=None, metavar="ADDRESS", help="Solve the batches on a Dask cluster: its scheduler's "
              "address (tcp://host:8786), or 'local' for a new local cluster of --jobs worker processes. "
              "Needs pip install 'tpkb[dask]'.")
@click.option("--flush-after", type=click.FloatRange(0), default=FLUSH_AFTER, show_default=True, metavar="SECONDS",
              help="On standard input: code what has come once the input has been quiet this long, without "
                   "waiting for a full batch (0: wait).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar (it is shown only on a terminal anyway).")
@click.pass_obj
def code(ctx: Ctx, paths: tuple[str, ...], fmt: str, explain: bool, full: bool, batch_size: int,
         jobs: int, dask: str | None, flush_after: float, quiet: bool) -> None:
    """Code encounter or case files (YAML, JSON, JSONL; directories; '-' for JSONL on stdin)."""
    render = partial(as_text, full=full) if fmt == "text" else partial(as_json, full=full)
    ctx.quiet = quiet
    _run(ctx, paths, fmt, Options(explain=explain, render=render), batch_size, jobs, dask, flush_after)


@main.command()
@click.argument("paths", nargs=-1, required=True)
@click.option("--format", "fmt", type=click.Choice(["text", "json", "jsonl", "dot", "svg"]), default="text",
              show_default=True)
@click.option("--full", is_flag=True, help="The whole derivation: every rule firing, fact and table row.")
@click.option("--depth", type=click.IntRange(1), default=None, help="Show this many levels of rules under each "
              "conclusion.")
@click.option("--why-not", "why_not", default=None, metavar="CODE|finding:ID|accept:CODE",
              help="Why the encounter has no such line (a code), finding, or accepted billed line (accept:CODE or "
                   "accept:N): each rule that could derive it and the first condition that failed.")
@click.pass_obj
def explain(ctx: Ctx, paths: tuple[str, ...], fmt: str, full: bool, depth: int | None, why_not: str | None) -> None:
    """Explain every line, finding and verdict by the policy rules that decided it."""
    if why_not is not None:
        _why_not(ctx, paths, fmt, why_not)
        return
    if fmt in ("dot", "svg"):
        _graph(ctx, paths, fmt, full)
        return
    render = partial(as_text, full=full, depth=depth) if fmt == "text" else partial(as_json, full=full)
    _run(ctx, paths, fmt, Options(explain=True, render=render), BATCH, default_jobs())


def _per_encounter(ctx: Ctx, paths: tuple[str, ...], fmt: str, answer: Callable[[Encounter], Any]) -> None:
    """Ask each encounter of the paths one question (why not, what if) and print each answer
    (text, a JSON object, or JSON lines); a question an encounter cannot answer is one error."""
    answers = []
    try:
        for record in ctx.records(paths, lines=True):
            if not record.ok or record.encounter is None:
                continue
            try:
                result = answer(record.encounter)
            except ValueError as exc:
                ctx.report([f"{record.where}: {exc}"])
                continue
            if fmt == "text":
                click.echo(f"{record.where}: {escape(str(record.id))}")
                click.echo("\n".join(result.text()))
            elif fmt == "jsonl":
                click.echo(json.dumps({"id": record.id, **result.json()}))
            else:
                answers.append({"id": record.id, **result.json()})
    except (KBError, SolveError) as exc:
        _fail_kb(exc)
    if fmt == "json":
        click.echo(json.dumps({"encounters": answers}, indent=2))
    sys.exit(2 if ctx.problems else 0)


def _why_not(ctx: Ctx, paths: tuple[str, ...], fmt: str, asked: str) -> None:
    from .whynot import Target, why_not

    try:
        target = Target.parse(asked)
    except ValueError as exc:
        click.echo(f"error: {escape(str(exc))}", err=True)
        sys.exit(2)
    if fmt not in ("text", "json", "jsonl"):
        click.echo("error: --why-not is written as text, json or jsonl", err=True)
        sys.exit(2)
    _per_encounter(ctx, paths, fmt, lambda enc: why_not(ctx.kb, enc, target))


@main.command("what-if")
@click.argument("paths", nargs=-1, required=True)
@click.option("--make", "code", default=None, metavar="CODE", help="The smallest changes that make CODE reported.")
@click.option("--accept-billed", is_flag=True, help="The smallest changes that make every billed line accepted.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.pass_obj
def what_if(ctx: Ctx, paths: tuple[str, ...], code: str | None, accept_billed: bool, fmt: str) -> None:
    """The smallest changes to the documented facts that would make a code reportable (or the
    claim accepted), found by the solver among the changes bridge/whatif.py declares."""
    from . import whatif
    from .model import code_field

    if (code is None) == (not accept_billed):
        click.echo("error: give --make CODE or --accept-billed (one of them)", err=True)
        sys.exit(2)
    if code is not None:
        try:
            code = code_field(code)
        except ValueError as exc:
            click.echo(f"error: --make: {escape(str(exc))}", err=True)
            sys.exit(2)
    _per_encounter(ctx, paths, fmt, lambda enc: whatif.make(ctx.kb, enc, code) if code else
                   whatif.accept_billed(ctx.kb, enc))


@main.command()
@click.option("--rule", "rule_id", required=True, help="The rule id the case must fire.")
@click.option("--not", "almost", is_flag=True, help="A case that almost fires it: every condition but the last holds.")
@click.option("--from", "seeds", multiple=True, default=("cases",), show_default=True,
              help="Encounter or case files to start from (the nearest are tried).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the draft case here (default: print it).")
@click.pass_obj
def generate(ctx: Ctx, rule_id: str, almost: bool, seeds: tuple[str, ...], out: Path | None) -> None:
    """Draft a case for a rule: the fewest changes to a library encounter that fire it (found by
    the solver), with `expect` filled from today's outcome, marked for an analyst's review."""
    from .generate import generate as make_draft

    try:
        draft = make_draft(ctx.kb, rule_id, seeds, almost)
    except ValueError as exc:
        click.echo(f"error: --rule: {escape(str(exc))}", err=True)
        sys.exit(2)
    except (KBError, SolveError) as exc:
        _fail_kb(exc)
    if draft is None:
        click.echo(f"error: no encounter of {', '.join(seeds)} reaches rule {rule_id} with the candidate changes "
                   "(bridge/whatif.py); write the case by hand, or give --from a nearer encounter", err=True)
        sys.exit(1)
    if out is None:
        click.echo(draft.yaml(), nl=False)
    else:
        out.write_text(draft.yaml())
        click.echo(f"{out}: draft case for {rule_id} (from {draft.seed}); review it, then run tpkb test {out}")


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
@click.option("--html", "html", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Also write the run as web pages in this folder (a new one, or an earlier report): "
              "index.html and one page per case with its explanation drawn (Graphviz), for offline reading.")
@click.pass_obj
def test(ctx: Ctx, paths: tuple[str, ...], keyword: str | None, show_coverage: bool, since: Path,
         html: Path | None) -> None:
    """Run case files (default: cases/) and print 'N passed, M failed'.

    Also lists the cases whose outcome changed since the previous run, and how."""
    from .cases import coverage, remember, run_cases
    from .report import check_target

    refused = check_target(html) if html is not None else None
    if refused:
        click.echo(f"error: --html {escape(refused)}", err=True)
        sys.exit(2)
    try:
        run = run_cases(ctx.kb, list(paths) or ["cases"], keyword)
    except (KBError, SolveError) as exc:
        _fail_kb(exc)
    ctx.report(run.problems)
    # The summary first (the tally and the coverage line), then the details.
    click.echo(run.tally())
    if not paths and keyword is None and run.results:
        unfired = sorted(set(ctx.kb.rules) - run.fired)
        click.echo(f"rules fired by the cases: {len(ctx.kb.rules) - len(unfired)} of {len(ctx.kb.rules)}"
                   + (f"; fired by no case: {', '.join(unfired)} (tpkb generate --rule ID drafts a case for "
                      "each)" if unfired else ""))
    for result in run.failed:
        click.echo()
        click.echo(run.report(result))
    changed, warning = remember(since, run)
    if warning:
        click.echo(f"warning: {warning}", err=True)
    if changed:
        click.echo()
        click.echo(f"changed since the last run ({len(changed)}):")
        for name, how in changed:
            click.echo(f"  {name}: {how}")
    if show_coverage:
        click.echo()
        for rid, count in coverage(ctx.kb, run):
            click.echo(f"{count:5d}  {rid}")
    if html is not None:
        _html_report(ctx, run, changed, html, " ".join(paths) or "cases")
    if ctx.problems:
        sys.exit(2)
    if run.failed or not run.results:
        sys.exit(1)


@main.command()
@click.argument("paths", nargs=-1)
@click.option("--base", "base_rev", default=None, metavar="REV",
              help="The base KB: the KB folder at this git revision (HEAD, main~3, a tag).")
@click.option("--base-kb", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="The base KB: another KB folder.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--plumbing", is_flag=True, help="Also list plumbing rules (%@ kind: plumbing) whose firing changed.")
@click.option("--accept", is_flag=True, help="Rewrite the expect blocks of the changed cases named with --case "
              "(or of all with --all) to the current outcome.")
@click.option("--case", "accept_cases", multiple=True, metavar="NAME", help="With --accept: this case (repeatable).")
@click.option("--all", "accept_all", is_flag=True, help="With --accept: every changed case.")
@click.pass_obj
def impact(ctx: Ctx, paths: tuple[str, ...], base_rev: str | None, base_kb: Path | None, fmt: str,
           plumbing: bool, accept: bool, accept_cases: tuple[str, ...], accept_all: bool) -> None:
    """Run the case library (default: cases/) under a base KB and the current one, and list
    every case that changed, grouped by the rules whose firing changed. Exit 1 when anything
    changed, 0 when nothing did."""
    from . import impact as im
    from .accept import accept as accept_changes

    def refuse(message: str) -> NoReturn:
        click.echo(f"error: {message}", err=True)
        sys.exit(2)

    if (base_rev is None) == (base_kb is None):
        refuse("give the base KB: --base REV (a git revision) or --base-kb DIR")
    if accept and not (accept_cases or accept_all):
        refuse("--accept rewrites the cases named with --case NAME, or all changed cases with --all")
    if (accept_cases or accept_all) and not accept:
        refuse("--case and --all go with --accept")
    try:
        kb = ctx.kb
        with ExitStack() as stack:
            if base_rev is not None:
                base = load_kb(stack.enter_context(im.kb_at_revision(ctx.kb_path, base_rev)), cache=False)
                label = base_rev
            else:
                assert base_kb is not None
                if not (base_kb / "main.lp").is_file():
                    refuse(f"--base-kb {escape(str(base_kb))}: not a KB folder (no main.lp)")
                base = load_kb(base_kb)
                label = str(base_kb)
            result, run = im.measure(base, kb, list(paths) or ["cases"], label, str(ctx.kb_path))
    except im.ImpactError as exc:
        refuse(str(exc))
    except (KBError, SolveError) as exc:
        _fail_kb(exc)
    ctx.report(run.problems)
    known = {c.name for c in result.changed} | {c.name for c in result.new} | {r.case.name for r in run.results}
    unknown = [n for n in accept_cases if n not in known]
    if unknown:
        refuse(f"--case {escape(unknown[0])}: no such case among those run")
    accepted = accept_changes(result.changed, None if accept_all else set(accept_cases)) if accept else None
    if fmt == "json":
        out = im.as_json(result, plumbing)
        if accepted is not None:
            out["accept"] = {"rewritten": accepted.rewritten, "notes": accepted.notes, "errors": accepted.errors}
        click.echo(json.dumps(out, indent=1))
    else:
        for line in im.summary_text(result, plumbing) + im.details_text(result, plumbing):
            click.echo(line)
        if accepted is not None:
            click.echo()
            for line in accepted.notes:
                click.echo(line)
            click.echo(f"rewritten: {', '.join(escape(f) for f in accepted.rewritten)}" if accepted.rewritten
                       else "no case file rewritten")
    if accepted is not None:
        ctx.report(accepted.errors)
    if ctx.problems:
        sys.exit(2)
    sys.exit(1 if result.changed or result.new else 0)


def _html_report(ctx: Ctx, run, changed: list[tuple[str, str]], folder: Path, source: str) -> None:
    from .report import ReportError, write_report

    try:
        written = write_report(ctx.kb, run, changed, folder, source)
    except ReportError as exc:
        ctx.report([f"--html {exc}"])
        return
    except OSError as exc:
        ctx.report([f"--html {escape(str(exc.filename or folder))}: {exc.strerror or exc}"])
        return
    if not written.graphviz:
        click.echo("note: Graphviz's dot was not found: the report shows explanations as text", err=True)
    elif written.fallbacks:
        click.echo(f"note: dot could not draw {written.fallbacks} explanation(s): shown as text", err=True)
    click.echo(f"report: {escape(str(written.index))}")


@main.command()
@click.argument("kb_dir", metavar="[KB]", required=False, type=click.Path(file_okay=False, path_type=Path))
@click.pass_obj
def lint(ctx: Ctx, kb_dir: Path | None) -> None:
    """Check a KB folder (default: --kb) and print every problem, one 'kb/FILE:LINE[:COL]: message'
    line each; exit 2 if there is any."""
    from .lint import lint as lint_kb

    problems = lint_kb(kb_dir or ctx.kb_path)
    for problem in problems:
        click.echo(escape(str(problem)))
    click.echo(f"{len(problems)} problem(s)" if problems else "no problems", err=True)
    sys.exit(2 if problems else 0)


@main.command()
@click.argument("out", type=click.Path(path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["md", "html"]), default="html", show_default=True)
@click.option("--split", is_flag=True, help="One page per rule file and per reference section, and an index: OUT is "
              "a directory.")
@click.option("--cases", "cases_dir", type=click.Path(path_type=Path), default=Path("cases"), show_default=True,
              help="The case library run once to list the cases firing each rule.")
@click.option("--no-cases", is_flag=True, help="Leave the cases out (no solve).")
@click.pass_obj
def doc(ctx: Ctx, out: Path, fmt: str, split: bool, cases_dir: Path, no_cases: bool) -> None:
    """Write the rule reference: every rule with its source, policy text, predicates and cases;
    the findings, audit reasons, predicates and the source register (kb/sources.yaml)."""
    from . import doc as doc_module

    if split and out.exists() and not out.is_dir():
        click.echo(f"error: {escape(str(out))}: with --split, OUT is a directory", err=True)
        sys.exit(2)
    if not split and out.is_dir():
        click.echo(f"error: {escape(str(out))} is a directory: give a file name, or --split", err=True)
        sys.exit(2)
    if not no_cases and not cases_dir.exists():
        click.echo(f"error: --cases {escape(str(cases_dir))}: no such file or directory (or --no-cases)", err=True)
        sys.exit(2)
    try:
        kb = ctx.kb
        cases = None
        if not no_cases:
            cases, problems = doc_module.case_refs(kb, cases_dir)
            ctx.report(problems)
        written = doc_module.write(kb, fmt, out, cases, split)
    except (KBError, SolveError) as exc:
        _fail_kb(exc)
    except OSError as exc:
        click.echo(f"error: {escape(str(out))}: cannot write: {escape(exc.strerror or str(exc))}", err=True)
        sys.exit(2)
    click.echo(f"{out}: {len(written)} page(s), {len(kb.rules)} rules, {len(kb.sources)} sources"
               + (f", {len(cases)} cases" if cases is not None else ""))
    sys.exit(2 if ctx.problems else 0)


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
