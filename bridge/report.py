"""`tpkb test --html DIR`: a case-library run as static pages that open offline.

`DIR/index.html` has the totals, the failed cases, the cases whose outcome changed since
the previous run, the rule coverage and every case by file; `DIR/cases/*.html` has one page
per case: its outcome, its failures and its explanation, drawn by Graphviz's `dot` where it
is installed, else (or where `dot` fails on a graph) written out as text.

Case names, file names, ids and messages are user text: every one is escaped with
`html.escape`, and never used in a path as written (page names are made safe and unique).
Pages hold inline CSS and nothing else: no script, no font, no image, no external link.
"""

from __future__ import annotations

import hashlib
import html
import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from .cases import Result, Run, coverage
from .kb import KB
from .render import to_dot, to_text

# Marks a folder as a report, so a later run may replace its pages (and nothing else).
GENERATOR = "tpkb test --html"
DOT_TIMEOUT = 60  # seconds for one graph; past it, that case is shown as text
MAX_SLUG = 60  # characters of a case name kept in its page's file name
MAX_LISTED = 50  # cases listed under a rule in the coverage table

CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 1.5em auto; max-width: 78em;
       padding: 0 1em; color: #1d1d1f; }
h1 { font-size: 1.5em; margin-bottom: .2em; } h2 { font-size: 1.2em; margin-top: 1.6em;
  border-bottom: 1px solid #ddd; } h3 { font-size: 1em; margin: 1em 0 .3em; }
a { color: #0645ad; } .meta { color: #555; }
table { border-collapse: collapse; margin: .4em 0; } td, th { border: 1px solid #ddd; padding: .2em .5em;
  text-align: left; vertical-align: top; } th { background: #f4f4f4; }
pre { background: #f7f7f7; border: 1px solid #e3e3e3; padding: .6em; overflow-x: auto; white-space: pre-wrap; }
.totals span { display: inline-block; margin-right: 1.5em; font-size: 1.15em; }
.pass { color: #1a7f37; } .fail { color: #cf222e; font-weight: bold; } .error { color: #9a6700; font-weight: bold; }
tr.unfired td { background: #fff1e5; } .unfired-list code { background: #fff1e5; }
.note { background: #fff8c5; border: 1px solid #e6d87a; padding: .4em .6em; }
.drawing { overflow: auto; border: 1px solid #e3e3e3; padding: .4em; }
ul.cases { list-style: none; padding-left: 0; } ul.cases li { margin: .1em 0; }
"""


class ReportError(Exception):
    """The report cannot be written where asked (one line for the user)."""


@dataclass
class Written:
    index: Path
    graphviz: bool  # `dot` was found
    fallbacks: int  # cases whose graph `dot` could not draw (shown as text)


@dataclass
class _Page:
    result: Result
    file: str  # the page's file name under cases/
    text: list[str]  # the explanation as text
    svg: Future[tuple[str | None, str]] | None  # the SVG drawing (or why not); None without Graphviz


def check_target(folder: Path) -> str | None:
    """Why the report may not be written in `folder` (None: it may). It replaces the pages
    of an earlier report there, so it refuses a folder that holds anything else."""
    if not folder.exists():
        return None
    if not folder.is_dir():
        return f"{folder}: is not a folder"
    try:
        if not any(folder.iterdir()):
            return None
        index = folder / "index.html"
        if index.is_file() and f'content="{GENERATOR}"' in index.read_text(errors="replace")[:2000]:
            return None
    except OSError as exc:
        return f"{folder}: {exc.strerror or exc}"
    return f"{folder}: is not empty and holds no tpkb report (give a new or empty folder)"


def write_report(kb: KB, run: Run, changed: Iterable[tuple[str, str]], folder: Path, source: str = "") -> Written:
    """Write the report of `run` in `folder`: index.html and cases/<case>.html. Raises
    ReportError where the folder is not for a report, OSError where it cannot be written."""
    problem = check_target(folder)
    if problem:
        raise ReportError(problem)
    pages_dir = folder / "cases"
    pages_dir.mkdir(parents=True, exist_ok=True)
    names = page_names([r.case.name for r in run.results])
    exe = shutil.which("dot")
    fallbacks = 0
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        # the graphs are built here (Python) while `dot` draws the ones before (processes)
        pages = []
        for result, name in zip(run.results, names):
            title = f"{result.case.name} ({result.record.where})"
            text, dot = _explanation(kb, run, result, title)
            pages.append(_Page(result, name, text, pool.submit(_svg, exe, dot) if exe and dot else None))
        for page in pages:
            svg, error = page.svg.result() if page.svg is not None else (None, "")
            fallbacks += bool(error)
            (pages_dir / page.file).write_text(_case_page(page, svg, error, exe is not None), encoding="utf-8")
    written = set(names)
    for stale in pages_dir.glob("*.html"):  # pages of cases no longer in the run
        if stale.name not in written:
            stale.unlink()
    # case names are unique in a run (run_cases refuses a second use)
    links = {r.case.name: f"cases/{name}" for r, name in zip(run.results, names)}
    index = folder / "index.html"
    index.write_text(_index_page(kb, run, list(changed), links, source), encoding="utf-8")
    return Written(index, exe is not None, fallbacks)


def page_names(case_names: list[str]) -> list[str]:
    """A safe file name per case: its name where that is plain ASCII (letters, digits, - and
    _), else what is left of it and a hash of the name; unique even on a file system that
    ignores case."""
    out, taken = [], set()
    for name in case_names:
        slug = re.sub(r"[^A-Za-z0-9_-]+", "-", name).strip("-")[:MAX_SLUG] or "case"
        if slug != name:
            slug += "-" + hashlib.sha1(name.encode("utf-8", "surrogatepass")).hexdigest()[:8]
        candidate, n = slug, 1
        while candidate.lower() in taken:
            n += 1
            candidate = f"{slug}-{n}"
        taken.add(candidate.lower())
        out.append(candidate + ".html")
    return out


# ---------------------------------------------------------------------- explanations
def _explanation(kb: KB, run: Run, result: Result, title: str) -> tuple[list[str], str]:
    """The case's explanation as text lines, and as DOT."""
    graph = run.graph(result)
    if graph is None:
        return [], ""
    return to_text(kb, graph, indent="  "), to_dot(kb, [(title, graph)])


def _svg(exe: str, dot: str) -> tuple[str | None, str]:
    """The graph drawn by `dot -Tsvg`, ready to inline (prolog, DOCTYPE and comments gone),
    or None and why not."""
    try:
        proc = subprocess.run([exe, "-Tsvg"], input=dot.encode("utf-8"), capture_output=True,
                              timeout=DOT_TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        return None, f"Graphviz took more than {DOT_TIMEOUT} s on this graph"
    except OSError as exc:
        return None, f"Graphviz could not be run: {exc.strerror or exc}"
    if proc.returncode != 0:
        err = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        return None, f"Graphviz failed on this graph ({err[0] if err else f'exit status {proc.returncode}'})"
    svg = proc.stdout.decode("utf-8", "replace")
    start = svg.find("<svg")
    if start < 0:
        return None, "Graphviz gave no SVG for this graph"
    svg = re.sub(r"<!--.*?-->", "", svg[start:], flags=re.DOTALL).strip()
    if _active(svg):
        return None, "Graphviz's SVG held links or scripts; it is not inlined"
    return svg, ""


_TAG = re.compile(r"<\s*([A-Za-z][\w:.-]*)([^>]*)>")
_ACTIVE_ELEMENT = {"script", "foreignobject", "image", "use", "a", "iframe", "object", "embed", "style"}
_ACTIVE_ATTRIBUTE = re.compile(r"(?:^|\s)(?:href|xlink:href|src|on[a-z]+)\s*=", re.IGNORECASE)


def _active(svg: str) -> bool:
    """Whether an SVG holds anything that could run or fetch: Graphviz's never does
    without URL attributes (which we never set), but it is inlined in a page."""
    for m in _TAG.finditer(svg):
        if m.group(1).lower() in _ACTIVE_ELEMENT or _ACTIVE_ATTRIBUTE.search(m.group(2)):
            return True
    return False


# ---------------------------------------------------------------------- pages
def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _anchor(prefix: str, ident: str) -> str:
    """An element id from KB or user text: letters, digits, - and _ only."""
    return prefix + re.sub(r"[^A-Za-z0-9_-]", lambda m: f".{ord(m.group()):x}.", ident)


def _page(title: str, body: list[str]) -> str:
    return "\n".join([
        "<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
        f'<meta name="generator" content="{GENERATOR}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)}</title>", f"<style>{CSS}</style>", "</head>", "<body>", *body, "</body>", "</html>", ""])


def _status(result: Result) -> str:
    return '<span class="pass">passed</span>' if result.passed else '<span class="fail">FAILED</span>'


def _index_page(kb: KB, run: Run, changed: list[tuple[str, str]], link: dict[str, str], source: str) -> str:
    results = run.results
    failed = run.failed

    def case_link(r: Result) -> str:
        return f'<a href="{_e(link[r.case.name])}">{_e(r.case.name)}</a>'

    body = ["<h1>Case library report</h1>",
            f'<p class="meta">{_e(GENERATOR)}{" on " + _e(source) if source else ""}; '
            f'{_e(time.strftime("%Y-%m-%d %H:%M"))}; KB {_e(kb.root)}</p>',
            '<p class="totals">'
            f'<span class="pass">{len(results) - len(failed)} passed</span>'
            f'<span class="{"fail" if failed else "pass"}">{len(failed)} failed</span>'
            f'<span class="{"error" if run.errored else "pass"}">{run.errored} could not be run</span></p>',
            '<p><a href="#failed">Failed</a> · <a href="#changed">Changed since the last run</a> · '
            '<a href="#coverage">Rule coverage</a> · <a href="#all">All cases</a></p>']

    body.append(f'<h2 id="failed">Failed ({len(failed)})</h2>')
    if failed:
        body.append('<ul class="cases">')
        for r in failed:
            first = r.failures[0].strip() if r.failures else ""
            body.append(f'<li>{case_link(r)} <span class="meta">{_e(r.record.where)}</span><br>'
                        f"<code>{_e(first)}</code></li>")
        body.append("</ul>")
    else:
        body.append("<p>None.</p>")
    if run.problems:
        body.append(f'<h3 class="error">Could not be run ({run.errored})</h3><ul>')
        body.extend(f"<li><code>{_e(p)}</code></li>" for p in run.problems)
        body.append("</ul>")

    body.append(f'<h2 id="changed">Changed since the last run ({len(changed)})</h2>')
    if changed:
        body.append("<ul>")
        for name, how in changed:
            shown = f'<a href="{_e(link[name])}">{_e(name)}</a>' if name in link else _e(name)
            body.append(f"<li>{shown}: {_e(how)}</li>")
        body.append("</ul>")
    else:
        body.append("<p>None (or no earlier run on record).</p>")

    body.extend(_coverage(kb, run, link))

    body.append(f'<h2 id="all">All cases by file ({len(results)})</h2>')
    by_file: dict[str, list[Result]] = {}
    for r in results:
        by_file.setdefault(r.record.file, []).append(r)
    for i, (file, rs) in enumerate(sorted(by_file.items())):
        bad = sum(not r.passed for r in rs)
        body.append(f'<h3 id="file-{i}">{_e(file)} <span class="meta">({len(rs)} case(s)'
                    f'{f", {bad} failed" if bad else ""})</span></h3><ul class="cases">')
        body.extend(f'<li>{_status(r)} {case_link(r)} <span class="meta">line {_e(r.record.line or "-")}</span></li>'
                    for r in rs)
        body.append("</ul>")
    return _page("tpkb case library report", body)


def _coverage(kb: KB, run: Run, link: dict[str, str]) -> list[str]:
    """Every rule with the number of cases firing it (and which), unfired rules marked."""
    counts = coverage(kb, run)
    firing: dict[str, list[str]] = {}
    for r in run.results:
        for rid in sorted(set(r.outcome.fired or [])):
            firing.setdefault(rid, []).append(r.case.name)
    unfired = [rid for rid, n in counts if n == 0]
    out = ['<h2 id="coverage">Rule coverage</h2>',
           f"<p>{len(counts) - len(unfired)} of {len(counts)} rules are fired by the cases of this run.</p>"]
    if unfired:
        out.append('<p class="unfired-list">Fired by no case: '
                   + ", ".join(f'<a href="#{_anchor("rule-", rid)}"><code>{_e(rid)}</code></a>' for rid in unfired)
                   + "</p>")
    out.append("<table><tr><th>rule</th><th>cases</th><th>defined at</th><th>cases firing it</th></tr>")
    for rid, n in counts:
        rule = kb.rules.get(rid)
        cases = firing.get(rid, [])
        listed = ""
        if len(cases) > MAX_LISTED:  # a rule nearly every case fires: the list would say nothing
            listed = '<span class="meta">too many to list (each case page lists its rules)</span>'
        elif cases:
            items = ", ".join(f'<a href="{_e(link[c])}">{_e(c)}</a>' for c in cases if c in link)
            listed = f"<details><summary>{len(cases)} case(s)</summary>{items}</details>"
        out.append(f'<tr id="{_anchor("rule-", rid)}"{" class=unfired" if n == 0 else ""}>'
                   f"<td><code>{_e(rid)}</code></td><td>{n}</td>"
                   f"<td>{_e(rule.at if rule else '')}</td><td>{listed}</td></tr>")
    out.append("</table>")
    return out


def _case_page(page: _Page, svg: str | None, error: str, graphviz: bool) -> str:
    r = page.result
    case, out = r.case, r.outcome
    body = ['<p><a href="../index.html">&larr; all cases</a></p>',
            f"<h1>{_e(case.name)}</h1>",
            f'<p class="meta">{_e(r.record.where)} · {_status(r)} · id <code>{_e(out.id)}</code> · '
            f"{_e(out.date)} · profile {_e(out.payer)}"
            + (f" · coded with {len(case.sessions)} other session(s) of the day" if case.sessions else "") + "</p>"]
    if case.description:
        body.append(f"<p>{_e(case.description)}</p>")
    if case.source:
        body.append(f'<p class="meta">Source: {_e(case.source)}</p>')
    if case.tags:
        body.append(f'<p class="meta">Tags: {_e(", ".join(case.tags))}</p>')

    if r.failures:
        body.append('<h2 id="failures" class="fail">Failures: expected versus actual</h2>')
        body.append("<pre>" + _e("\n".join(r.failures)) + "</pre>")

    body.append('<h2 id="outcome">Outcome</h2>')
    body.append("<h3>Lines</h3>")
    body.append("<ul>" + "".join(f"<li><code>{_e(ln.text())}</code></li>" for ln in out.lines) + "</ul>"
                if out.lines else "<p>None.</p>")
    body.append("<h3>Findings</h3>")
    if out.findings:
        body.append("<table><tr><th>severity</th><th>finding</th><th>message</th><th>rule</th></tr>")
        body.extend(f"<tr><td>{_e(f.severity)}</td><td><code>{_e(f.id)}</code></td><td>{_e(f.message)}</td>"
                    f"<td>{_rule_link(f.rule)}</td></tr>" for f in out.findings)
        body.append("</table>")
    else:
        body.append("<p>None.</p>")
    body.append("<h3>Billed lines</h3>")
    if out.billed is None:
        body.append("<p>No claim: the encounter has no billed lines.</p>")
    else:
        body.append("<table><tr><th>#</th><th>line</th><th>verdict</th><th>reasons</th></tr>")
        for i, b in enumerate(out.billed, start=1):
            text = b.text()
            reasons = "<br>".join(f"<code>{_e(x.id)}</code>: {_e(x.message)} ({_rule_link(x.rule)})"
                                  for x in b.reasons)
            body.append(f"<tr><td>{i}</td><td><code>{_e(text)}</code></td><td>{_e(b.verdict)}</td>"
                        f"<td>{reasons}</td></tr>")
        body.append("</table>")
    fired = sorted(set(out.fired or []))
    body.append(f"<h3>Rules fired ({len(fired)})</h3>")
    body.append("<p>" + (", ".join(_rule_link(rid) for rid in fired) or "None.") + "</p>")

    body.append('<h2 id="explanation">Explanation</h2>')
    text = "<pre>" + _e("\n".join(page.text) or "(nothing to explain)") + "</pre>"
    if svg is not None:
        body.append(f'<div class="drawing">{svg}</div>')
        body.append(f"<details><summary>The explanation as text</summary>{text}</details>")
    else:
        why = _e(error) if error else "Graphviz (the <code>dot</code> program) was not found"
        body.append(f'<p class="note">{why}: the explanation is shown as text'
                    + (" (install Graphviz to draw it as a graph)." if not graphviz else ".") + "</p>")
        body.append(text)

    body.append('<h2 id="case">The case as read</h2>')
    enc = case.encounter.model_dump(mode="json", exclude_none=True, exclude_defaults=True)
    body.append("<h3>Encounter</h3><pre>" + _e(json.dumps(enc, indent=2, ensure_ascii=False)) + "</pre>")
    expect = case.expect.model_dump(mode="json", exclude_none=True)
    body.append("<h3>Expect</h3><pre>" + _e(json.dumps(expect, indent=2, ensure_ascii=False)) + "</pre>")
    body.append('<p><a href="../index.html">&larr; all cases</a></p>')
    return _page(f"{case.name}: tpkb case", body)


def _rule_link(rid: str) -> str:
    return f'<a href="../index.html#{_anchor("rule-", rid)}"><code>{_e(rid)}</code></a>'

