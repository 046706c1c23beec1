"""The source register (kb/sources.yaml), the citations of the rules' sources, and the rule
reference `tpkb doc` writes from them (bridge/sources.py, bridge/doc.py)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bridge import doc
from bridge.api import default_kb_path
from bridge.kb import KB
from bridge.load import read_paths
from bridge.render import as_json
from bridge.sources import citations, read_register

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def pages(kb: KB) -> dict[str, str]:
    """The one-page reference in both formats, with the cases of one folder."""
    cases, problems = doc.case_refs(kb, ROOT / "cases" / "codes")
    assert cases and not problems
    return {fmt: next(iter(doc.render(kb, fmt, cases).values())) for fmt in ("md", "html")}


# ---------------------------------------------------------------------- the register
def test_every_citation_of_every_rule_is_in_the_register(kb: KB) -> None:
    entries, problems = read_register(kb.root)
    assert not problems
    registered = {e.id for e in entries}
    uncited = [r.at for r in kb.by_number if not citations(r.source)]
    unknown = [f"{r.at}: [{c}]" for r in kb.by_number for c in citations(r.source) if c not in registered]
    assert not uncited, f"source lines citing no register id: {uncited}"
    assert not unknown, f"citations with no register entry: {unknown}"


def test_every_register_entry_is_complete_and_cited_sources_are_public(kb: KB) -> None:
    entries, _ = read_register(kb.root)
    assert len(entries) >= 20
    for entry in entries:
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", entry.id), entry.id
        assert entry.title and entry.where and entry.note, entry.id
        # a clone cannot open the project's research notes: the register names the real source
        assert "coding-facts" not in entry.where + entry.note, entry.id
    assert all("coding-facts" not in r.source for r in kb.by_number)


def test_the_kb_keeps_the_register(kb: KB) -> None:
    assert kb.sources["ncd-30-3-3"].title.startswith("NCD 30.3.3")
    assert "kb/sources.yaml" in kb.fingerprint


def test_citations_in_order() -> None:
    assert citations("[cpt] 20553; [seed] Coding Guidelines bullet 1") == ["cpt", "seed"]
    assert citations("no register id") == []


def test_register_problems_name_the_line(tmp_path: Path) -> None:
    (tmp_path / "sources.yaml").write_text("- id: cpt\n  title: CPT\n  where: AMA\n  note: codes\n"
                                           "- id: cpt\n  title: again\n  where: x\n  note: y\n"
                                           "- id: seed\n  title: Seed\n  where: x\n")
    entries, problems = read_register(tmp_path)
    assert [e.id for e in entries] == ["cpt", "seed"]
    assert any(p.startswith("kb/sources.yaml:5: ") and "already used" in p for p in problems), problems
    assert any(p.startswith("kb/sources.yaml:9: ") and "note" in p for p in problems), problems


def test_an_edit_of_the_register_refreshes_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    copy = tmp_path / "kb"
    shutil.copytree(default_kb_path(), copy)
    monkeypatch.setenv("TPKB_CACHE", str(tmp_path / "cache"))
    assert KB.load(copy).sources["seed"].title.startswith("Project seed")
    register = copy / "sources.yaml"
    register.write_text(register.read_text().replace('title: "Project seed', 'title: "Seed of the project'))
    assert KB.load(copy).sources["seed"].title.startswith("Seed of the project")


# ---------------------------------------------------------------------- explanations cite the register
def test_explanation_json_rule_nodes_carry_their_citations(kb: KB) -> None:
    from bridge.api import explain, solve_batch

    record = next(iter(read_paths([ROOT / "examples" / "encounter.yaml"], kb.profiles())))
    enc = record.encounter
    assert enc is not None
    answer = solve_batch(kb, [enc], mode="full")
    graph = explain(kb, answer, 1, enc, answer.outcome(1, enc))
    nodes = [n for n in json.loads(as_json(kb, record, answer.outcome(1, enc), graph))["explanation"]["nodes"]
             if n.get("kind") == "rule"]
    assert nodes
    for node in nodes:
        assert node["cites"] and set(node["cites"]) <= set(kb.sources), node
    assert any(n["rule"] == "calls_for_20553" and n["cites"] == ["cpt", "seed"] for n in nodes)


# ---------------------------------------------------------------------- the reference
def test_every_rule_is_in_the_reference(kb: KB, pages: dict[str, str]) -> None:
    for fmt, text in pages.items():
        missing = [rid for rid in kb.rules if f'id="{doc.rule_anchor(rid)}"' not in text]
        assert not missing, (fmt, missing[:5])
    html_text = pages["html"]
    assert '<h3 id="rule-calls_for_20553">calls_for_20553</h3>' in html_text
    # its source, each [id] a link to the register; its reads and derives, its cases
    entry = html_text[html_text.index('id="rule-calls_for_20553"'):]
    entry = entry[:entry.index("</dl>")]
    assert '<a href="#src-cpt">[cpt]</a>' in entry and '<a href="#src-seed">[seed]</a>' in entry
    assert '<a href="#pred-injected_count-2">injected_count/2</a>' in entry
    assert '<a href="#pred-calls_for-2">calls_for/2</a>' in entry
    assert 'href="#case-codes-tpi-four-muscles-one-unit-20553"' in entry


def test_every_html_link_has_its_anchor(pages: dict[str, str]) -> None:
    text = pages["html"]
    ids = re.findall(r'\sid="([^"]+)"', text)
    assert len(ids) == len(set(ids)), "an anchor is defined twice"
    links = set(re.findall(r'href="#([^"]*)"', text))
    assert links and not links - set(ids)
    assert not re.findall(r'href="(?!#)', text), "the one-page reference links only within itself"


def test_every_markdown_link_has_its_anchor(pages: dict[str, str]) -> None:
    text = pages["md"]
    ids = set(re.findall(r'<a id="([^"]+)"></a>', text))
    links = set(re.findall(r"\]\(#([^)]*)\)", text))
    assert links and not links - ids


def test_the_html_is_self_contained(pages: dict[str, str]) -> None:
    text = pages["html"]
    assert "<style>" in text
    assert not re.search(r"<(link|script|img|iframe)\b", text, re.I)
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", text, re.I)
    assert "@import" not in text and "url(" not in text


def test_the_reference_reads_the_kb(kb: KB, pages: dict[str, str]) -> None:
    text = pages["html"]
    # file headers and policy text, escaped
    assert '<h2 id="file-rules-codes">kb/rules/codes.lp</h2>' in text
    assert "&quot;" in text and "<pre>" in text
    # a finding with its severity and the rules deriving it; an audit reason
    finding = text[text.index('id="finding-muscle_unmatched"'):]
    assert "<dd>error</dd>" in finding[:400] and 'href="#rule-' in finding[:600]
    assert 'id="reason-' in text
    # a predicate with its documentation and the rules reading it: both ways
    pred = text[text.index('id="pred-injected_count-2"'):]
    pred = pred[:pred.index("</dl>")]
    assert 'href="#rule-calls_for_20553"' in pred and 'href="#rule-count_injected"' in pred
    # the register: each entry with the rules citing it
    source = text[text.index('id="src-ncd-30-3-3"'):]
    source = source[:source.index("</dl>")]
    assert "https://www.cms.gov/medicare-coverage-database/" in source and 'href="#rule-' in source


def test_split_pages_link_to_each_other(kb: KB, tmp_path: Path) -> None:
    written = doc.write(kb, "html", tmp_path / "ref", None, split=True)
    names = {p.name for p in written}
    assert {"index.html", "rules-codes.html", "sources.html", "predicates.html"} <= names
    anchors = {p.name: set(re.findall(r'\sid="([^"]+)"', p.read_text())) for p in written}
    for path in written:
        for target in re.findall(r'href="([^"]+)"', path.read_text()):
            page, _, anchor = target.partition("#")
            assert anchor in anchors[page or path.name], (path.name, target)
    assert 'href="sources.html#src-cpt"' in (tmp_path / "ref" / "rules-codes.html").read_text()


def test_cli_doc_writes_and_refuses_a_directory(tmp_path: Path) -> None:
    out = tmp_path / "reference.md"
    proc = subprocess.run([sys.executable, "-m", "bridge", "doc", str(out), "--format", "md", "--no-cases"],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert '<a id="rule-calls_for_20553"></a>' in out.read_text()
    proc = subprocess.run([sys.executable, "-m", "bridge", "doc", str(tmp_path), "--no-cases"],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 2 and "is a directory" in proc.stderr and "Traceback" not in proc.stderr
    proc = subprocess.run([sys.executable, "-m", "bridge", "doc", str(out), "--cases", str(tmp_path / "none")],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "--cases" in proc.stderr
