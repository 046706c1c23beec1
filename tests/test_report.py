"""`tpkb test --html`: the report's pages exist and link to each other, hold no external
reference, escape user text, and draw explanations with Graphviz or, without it (or where
it fails on a graph), write them out as text."""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from bridge import report
from bridge.cases import Run, remember, run_cases
from bridge.kb import KB
from bridge.report import check_target, page_names, write_report

ROOT = Path(__file__).resolve().parent.parent
HOSTILE = "<script>alert(1)</script>"

THREE = """\
  encounter:
    date: 2025-06-02
    procedures:
      - {muscle: trapezius, side: left, injectate: [lidocaine 1%]}
      - {muscle: levator scapulae, side: left, injectate: [lidocaine 1%]}
      - {muscle: rhomboid major, side: left, injectate: [lidocaine 1%]}
"""

CASES = {
    "passing.yaml": "- name: report-three-muscles\n  description: three muscles & one line\n" + THREE
    + "  expect:\n    lines: [{code: 20553}]\n    fired: [calls_for_20553]\n"
    "- name: '" + HOSTILE + "'\n" + THREE + "  expect:\n    lines: [{code: 20553}]\n",
    "failing.yaml": "- name: report-expects-the-wrong-code\n" + THREE + "  expect:\n    lines: [{code: 20552}]\n",
    "odd<b>&name.yaml": "- name: report-odd-file-name\n" + THREE + "  expect:\n    lines: [{code: 20553}]\n",
    "broken.yaml": "- name: report-no-date\n  encounter:\n    procedures: []\n  expect:\n    lines: []\n",
}


@pytest.fixture
def library(tmp_path: Path) -> Path:
    folder = tmp_path / "lib"
    folder.mkdir()
    for name, text in CASES.items():
        (folder / name).write_text(text)
    return folder


@pytest.fixture
def run(kb: KB, library: Path) -> Run:
    return run_cases(kb, [library])


class Page(HTMLParser):
    """The ids, links and sources of one HTML page."""

    def __init__(self, text: str):
        super().__init__()
        self.ids: set[str] = set()
        self.links: list[str] = []
        self.tags: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        for name, value in attrs:
            if name == "id" and value:
                self.ids.add(value)
            if name in ("href", "src", "xlink:href") and value is not None:
                self.links.append(value)


def pages(folder: Path) -> dict[Path, Page]:
    return {p: Page(p.read_text(encoding="utf-8")) for p in sorted(folder.rglob("*.html"))}


def hide_dot(monkeypatch: pytest.MonkeyPatch) -> None:
    real = shutil.which
    monkeypatch.setattr(report.shutil, "which", lambda name, *a, **k: None if name == "dot" else real(name, *a, **k))


def fake_dot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, script: str) -> None:
    exe = tmp_path / "fake-dot"
    exe.write_text("#!/bin/sh\n" + script)
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setattr(report.shutil, "which", lambda name, *a, **k: str(exe) if name == "dot" else None)


def test_index_totals_links_and_every_page(kb: KB, run: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    hide_dot(monkeypatch)
    out = tmp_path / "report"
    written = write_report(kb, run, [], out)
    assert written.index == out / "index.html" and not written.graphviz
    index = written.index.read_text()
    assert "3 passed" in index and "1 failed" in index and "1 could not be run" in index
    assert "broken.yaml" in index and "date" in index  # the case that could not be run, and why
    parsed = pages(out)
    links = parsed[out / "index.html"].links
    for result in run.results:
        page = out / "cases" / page_names([result.case.name])[0]
        assert page.is_file()
        assert f"cases/{page.name}" in links
    assert len(parsed) == 1 + len(run.results)
    # the failed case comes first, linked, under "Failed"
    failed = index.index('id="failed"')
    assert index.index("report-expects-the-wrong-code", failed) < index.index('id="changed"')


def test_every_link_resolves_and_none_leaves_the_folder(kb: KB, run: Run, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch):
    hide_dot(monkeypatch)
    out = tmp_path / "report"
    write_report(kb, run, [], out)
    parsed = pages(out)
    checked = 0
    for path, page in parsed.items():
        assert "script" not in page.tags and "link" not in page.tags and "img" not in page.tags
        for link in page.links:
            assert not re.match(r"\s*(https?:|//|javascript:|data:)", link, re.IGNORECASE), (path, link)
            parts = urlsplit(link)
            target = (path.parent / unquote(parts.path)).resolve() if parts.path else path
            assert target.is_file(), (path, link)
            assert out.resolve() in target.parents, (path, link)
            if parts.fragment:
                assert parts.fragment in parsed[target].ids, (path, link)
            checked += 1
    assert checked > 20
    for path in parsed:
        text = path.read_text()
        assert not re.search(r"""(src|href)\s*=\s*["']?\s*https?://""", text, re.IGNORECASE), path
        case_page = path.parent.name == "cases"
        assert ('href="../index.html"' if case_page else 'href="cases/') in text


def test_user_text_is_escaped_and_never_a_path(kb: KB, run: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    hide_dot(monkeypatch)
    out = tmp_path / "report"
    write_report(kb, run, [], out)
    escaped = "&lt;script&gt;alert(1)&lt;/script&gt;"
    for path in out.rglob("*.html"):
        text = path.read_text()
        assert HOSTILE not in text and "<script" not in text.lower() and "odd<b>" not in text, path
    assert escaped in (out / "index.html").read_text()
    assert "odd&lt;b&gt;&amp;name.yaml" in (out / "index.html").read_text()
    assert "odd&lt;b&gt;&amp;name.yaml:1" in (out / "cases" / "report-odd-file-name.html").read_text()
    hostile_page = out / "cases" / page_names([HOSTILE])[0]
    assert escaped in hostile_page.read_text()
    assert "three muscles &amp; one line" in (out / "cases" / "report-three-muscles.html").read_text()
    assert all(re.fullmatch(r"[A-Za-z0-9_-]+\.html", p.name) for p in (out / "cases").iterdir())


def test_page_names_are_safe_and_unique():
    names = ["a b", "a-b", "A-B", "a b ", "../../etc/passwd", "..", "", "日本", "x" * 500, "case", "Case",
             "report-three-muscles", "CON"]
    files = page_names(names)
    assert len({f.lower() for f in files}) == len(names)
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{1,80}\.html", f) for f in files), files
    assert files[names.index("report-three-muscles")] == "report-three-muscles.html"  # a plain name is kept


def test_without_graphviz_the_explanation_is_text(kb: KB, run: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    hide_dot(monkeypatch)
    out = tmp_path / "report"
    write_report(kb, run, [], out)
    page = (out / "cases" / "report-three-muscles.html").read_text()
    assert "<svg" not in page
    assert "Graphviz (the <code>dot</code> program) was not found" in page
    explanation = page[page.index('id="explanation"'):]
    assert "3 muscles injected (3 or more) call for 20553" in explanation
    # the failing case shows expected versus actual
    failing = (out / "cases" / "report-expects-the-wrong-code.html").read_text()
    assert "lines: expected 20552 x1; got 20553 x1" in failing


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz is not installed")
def test_with_graphviz_the_svg_is_inlined(kb: KB, run: Run, tmp_path: Path):
    out = tmp_path / "report"
    written = write_report(kb, run, [], out)
    assert written.graphviz and written.fallbacks == 0
    page = (out / "cases" / "report-three-muscles.html").read_text()
    drawing = page[page.index('id="explanation"'):]
    assert drawing.count("<svg") == 1 and "calls_for_20553" in drawing
    assert "<?xml" not in page and "<!DOCTYPE svg" not in page and "<!--" not in page
    assert "was not found" not in page


def test_dot_failing_on_one_graph_falls_back_for_that_case_only(kb: KB, run: Run, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch):
    # a `dot` that fails on the graph of one case, and draws (with an XML prolog) the others
    fake_dot(tmp_path, monkeypatch, 'input=$(cat)\ncase "$input" in *wrong-code*) echo "syntax error" >&2; '
             'exit 1;; esac\nprintf \'<?xml version="1.0"?>\\n<!DOCTYPE svg>\\n<!-- c -->\\n'
             '<svg xmlns="http://www.w3.org/2000/svg"><text>drawn</text></svg>\\n\'\n')
    out = tmp_path / "report"
    written = write_report(kb, run, [], out)
    assert written.graphviz and written.fallbacks == 1
    failing = (out / "cases" / "report-expects-the-wrong-code.html").read_text()
    assert "<svg" not in failing and "Graphviz failed on this graph (syntax error)" in failing
    assert "call for 20553" in failing
    drawn = (out / "cases" / "report-three-muscles.html").read_text()
    assert '<svg xmlns="http://www.w3.org/2000/svg"><text>drawn</text></svg>' in drawn
    assert "<?xml" not in drawn and "DOCTYPE svg" not in drawn and "<!-- c -->" not in drawn


def test_an_svg_with_links_is_not_inlined(kb: KB, run: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    fake_dot(tmp_path, monkeypatch, "cat > /dev/null\nprintf '<svg><a xlink:href=\"https://example.org\">"
             "<text>x</text></a></svg>'\n")
    out = tmp_path / "report"
    written = write_report(kb, run, [], out)
    assert written.fallbacks == len(run.results)
    for path in out.rglob("*.html"):
        assert "example.org" not in path.read_text()


def test_changed_and_coverage(kb: KB, run: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    hide_dot(monkeypatch)
    since = tmp_path / "last.json"
    since.write_text(json.dumps({"report-three-muscles": {"lines": ["20552 x1"], "findings": [], "rejected": [],
                                                          "fired": []}}))
    changed, warning = remember(since, run)
    assert not warning and len(changed) == 1
    out = tmp_path / "report"
    write_report(kb, run, changed, out)
    index = (out / "index.html").read_text()
    section = index[index.index('id="changed"'):index.index('id="coverage"')]
    assert '<a href="cases/report-three-muscles.html">report-three-muscles</a>: lines 20552 x1 -&gt; 20553 x1' \
        in section
    # every rule has a row; one no case fires is marked, one they fire is not
    rows = dict(re.findall(r'<tr id="rule-([A-Za-z0-9_.-]+)"( class=unfired)?>', index))
    assert set(rows) == set(kb.rules)
    assert rows["calls_for_20560"] and not rows["calls_for_20553"]
    row = re.search(r'<tr id="rule-calls_for_20553"><td><code>calls_for_20553</code></td><td>4</td>.*?</tr>', index)
    assert row and '<a href="cases/report-three-muscles.html">report-three-muscles</a>' in row.group()


def test_folder_checks(kb: KB, run: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    hide_dot(monkeypatch)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    assert "not empty" in (check_target(foreign) or "")
    with pytest.raises(report.ReportError):
        write_report(kb, run, [], foreign)
    assert [p.name for p in foreign.iterdir()] == ["notes.txt"]
    out = tmp_path / "report"
    write_report(kb, run, [], out)
    stale = out / "cases" / "a-case-since-removed.html"
    stale.write_text("old")
    assert check_target(out) is None  # an earlier report is replaced
    write_report(kb, run, [], out)
    assert not stale.exists()


def tpkb(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bridge", *args], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, **(env or {})})


def test_cli_html(library: Path, tmp_path: Path):
    out = tmp_path / "report"
    since = str(tmp_path / "last.json")
    proc = tpkb("test", str(library), "--since", since, "--html", str(out), env={"PATH": str(tmp_path)})  # no dot
    assert proc.returncode == 2, proc.stderr  # broken.yaml could not be run
    assert "Traceback" not in proc.stderr
    assert f"report: {out / 'index.html'}" in proc.stdout
    assert "Graphviz's dot was not found" in proc.stderr
    assert "3 passed, 1 failed, 1 could not be run" in proc.stdout.splitlines()
    assert (out / "cases" / "report-three-muscles.html").is_file()
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    proc = tpkb("test", str(library), "--since", since, "--html", str(foreign))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("error: --html ") and "not empty" in proc.stderr
    assert proc.stdout == "" and [p.name for p in foreign.iterdir()] == ["notes.txt"]
