"""`tpkb impact`: the cases a KB edit changes, grouped by the rules whose firing changed;
`--accept` writes the new outcomes into the cases' expect blocks, keeping the rest of each
file as written; `--base REV` reads the base KB from git. Exit 0 nothing changed, 1
something did, 2 bad input."""

from __future__ import annotations

import filecmp
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bridge.api import load_kb
from bridge.cases import Run, run_cases

ROOT = Path(__file__).resolve().parent.parent
CODES = "rules/codes.lp"


def tpkb(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bridge", *args], capture_output=True, text=True, cwd=cwd)


def four_for_20553(kb_dir: Path) -> None:
    """The analyst's edit: 20553 from four muscles, 20552 for one to three."""
    codes = kb_dir / CODES
    text = codes.read_text()
    edited = text.replace("injected_count(E, N), N >= 3.", "injected_count(E, N), N >= 4.") \
        .replace("injected_count(E, N), 1 <= N, N <= 2.", "injected_count(E, N), 1 <= N, N <= 3.")
    assert edited.count("N >= 4.") == 1 and edited.count("N <= 3.") == 1
    codes.write_text(edited)


@pytest.fixture(scope="module")
def edited(tmp_path_factory: pytest.TempPathFactory) -> Path:
    kb_dir = tmp_path_factory.mktemp("edited") / "kb"
    shutil.copytree(ROOT / "kb", kb_dir)
    four_for_20553(kb_dir)
    return kb_dir


def lines_by_case(run: Run) -> dict[str, list[str]]:
    return {r.case.name: sorted(ln.text() for ln in r.outcome.lines) for r in run.results}


@pytest.fixture(scope="module")
def expected_changes(edited: Path) -> set[str]:
    """The cases whose lines differ, computed here from both KBs' runs."""
    before = lines_by_case(run_cases(load_kb(ROOT / "kb"), [ROOT / "cases"]))
    after = lines_by_case(run_cases(load_kb(edited), [ROOT / "cases"]))
    assert set(before) == set(after)
    changed = {name for name in before if before[name] != after[name]}
    assert changed, "the edit changes no case: the test would prove nothing"
    return changed


def test_impact_lists_exactly_the_changed_cases_grouped_by_rule(edited: Path, expected_changes: set[str]) -> None:
    proc = tpkb("--kb", str(edited), "impact", "--base-kb", str(ROOT / "kb"), "--format", "json")
    assert proc.returncode == 1, proc.stderr
    out = json.loads(proc.stdout)
    changed = {c["name"] for c in out["changed"]}
    # Every case whose lines changed is listed; a case listed for another reason changed
    # its findings, audit or rules (none here: the edit only moves the count boundary).
    assert all(set(c["changed"]) <= {"lines", "findings", "billed", "fired"} for c in out["changed"])
    assert changed == expected_changes
    rules = {r["rule"]: r for r in out["rules"]}
    assert set(rules["calls_for_20553"]["no_longer_fires"]) == expected_changes
    assert set(rules["calls_for_20552"]["fires_now"]) == expected_changes
    assert rules["calls_for_20553"]["at"].startswith("kb/rules/codes.lp:")
    assert out["hidden_plumbing_rules"] > 0 and not any(r["plumbing"] for r in out["rules"])  # without --plumbing
    assert out["totals"]["changed"] == len(expected_changes)
    assert out["totals"]["cases"] == out["totals"]["changed"] + out["totals"]["new"] + out["totals"]["unchanged"]
    some = next(c for c in out["changed"] if c["name"] in expected_changes)
    assert any("calls_for_20553" in line for line in some["why_before"])
    assert any("calls_for_20552" in line for line in some["why_after"])


def test_impact_text_summary_comes_first_and_fits_a_screen(edited: Path, expected_changes: set[str]) -> None:
    proc = tpkb("--kb", str(edited), "impact", "--base-kb", str(ROOT / "kb"))
    assert proc.returncode == 1, proc.stderr
    lines = proc.stdout.splitlines()
    head = lines[:lines.index("")]  # the summary ends at the first blank line
    assert len(head) <= 25
    assert f": {len(expected_changes)} changed, 0 new (only under one KB)," in head[1]
    assert any(line.strip().startswith("calls_for_20553 (kb/rules/codes.lp:") and f"{len(expected_changes)} cases"
               in line for line in head)
    assert any(line.strip().startswith("calls_for_20552 (") for line in head)
    for name in expected_changes:
        assert f"  {name}" in proc.stdout


def test_accept_all_rewrites_only_the_changed_files_and_the_library_passes(
        tmp_path: Path, edited: Path, expected_changes: set[str]) -> None:
    cases = tmp_path / "cases"
    shutil.copytree(ROOT / "cases", cases)
    # A case file that pins only findings, with comments, to see both kept.
    (cases / "extra.yaml").write_text(
        "# a comment at the top\n"
        "- name: extra-three-muscles   # the name\n"
        "  source: test\n"
        "  encounter:\n"
        "    date: 2025-06-02\n"
        "    procedures:\n"
        "      - {muscle: trapezius, side: bilateral, injectate: [l]}  # two muscles\n"
        "      - {muscle: SCM, side: left, injectate: [l]}\n"
        "    billed: [{code: 20553}]\n"
        "  expect:\n"
        "    # what the audit says\n"
        "    no_findings: [line_not_billed]   # nothing left out\n"
        "    fired: [calls_for_20553, count_injected]\n"
        "    # the end\n")
    proc = tpkb("--kb", str(edited), "impact", "--base-kb", str(ROOT / "kb"), "--accept", "--all", cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert "error" not in proc.stderr
    assert "rule calls_for_20553 removed from fired (it no longer fires)" in proc.stdout
    rewritten = {line for line in proc.stdout.splitlines() if line.startswith("rewritten: ")}
    assert rewritten
    test = tpkb("--kb", str(edited), "test", "cases", "--since", str(tmp_path / "last.json"), cwd=tmp_path)
    assert test.returncode == 0, test.stdout + test.stderr
    changed_files = {Path(r.record.file).resolve() for r in run_cases(load_kb(ROOT / "kb"), [ROOT / "cases"]).results
                     if r.case.name in expected_changes}
    for original in (ROOT / "cases").rglob("*"):
        if original.is_file():
            copy = cases / original.relative_to(ROOT / "cases")
            same = filecmp.cmp(original, copy, shallow=False)
            assert same != (original.resolve() in changed_files), original
    extra = (cases / "extra.yaml").read_text()
    assert "# a comment at the top\n" in extra and "# the name" in extra and "# two muscles" in extra
    assert "    # what the audit says\n" in extra and "    # the end\n" in extra
    assert "    fired: [count_injected]\n" in extra
    assert "no_findings" not in extra  # line_not_billed is found now: the key emptied, and dropped
    assert "expect:" in extra and "findings:" not in extra  # no key the case did not pin


def test_accept_needs_case_or_all_and_nothing_changed_exits_0(tmp_path: Path) -> None:
    case = tmp_path / "c.yaml"
    case.write_text("name: c\nsource: test\nencounter:\n  date: 2025-06-02\n  procedures:\n"
                    "    - {muscle: trapezius, side: left, injectate: [l]}\nexpect:\n  lines: [{code: 20552}]\n")
    same = tpkb("impact", "--base-kb", str(ROOT / "kb"), str(case))
    assert same.returncode == 0, same.stderr
    assert "1 cases: 0 changed, 0 new (only under one KB), 1 unchanged" in same.stdout
    refused = tpkb("impact", "--base-kb", str(ROOT / "kb"), "--accept", str(case))
    assert refused.returncode == 2 and refused.stderr.startswith("error: --accept rewrites")
    unknown = tpkb("impact", "--base-kb", str(ROOT / "kb"), "--accept", "--case", "nope", str(case))
    assert unknown.returncode == 2 and "error: --case nope: no such case" in unknown.stderr
    neither = tpkb("impact", str(case))
    assert neither.returncode == 2 and "--base REV" in neither.stderr
    assert "Traceback" not in refused.stderr + neither.stderr + unknown.stderr


def test_base_revision_from_git(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(ROOT / "kb", repo / "kb")
    (repo / "cases").mkdir()
    (repo / "cases" / "c.yaml").write_text(
        "- name: three\n  source: test\n  encounter:\n    date: 2025-06-02\n    procedures:\n"
        "      - {muscle: trapezius, side: bilateral, injectate: [l]}\n"
        "      - {muscle: SCM, side: left, injectate: [l]}\n  expect:\n    lines: [{code: 20553}]  # three muscles\n"
        "- name: one\n  source: test\n  encounter:\n    date: 2025-06-02\n    procedures:\n"
        "      - {muscle: SCM, side: left, injectate: [l]}\n  expect:\n    lines: [{code: 20552}]\n")

    def git(*args: str) -> None:
        subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", *args], check=True,
                       capture_output=True)

    git("init", "-q")
    git("add", ".")
    git("commit", "-q", "-m", "base")
    kb = str(repo / "kb")
    unchanged = tpkb("--kb", kb, "impact", "--base", "HEAD", "cases", cwd=repo)
    assert unchanged.returncode == 0, unchanged.stderr
    four_for_20553(repo / "kb")
    changed = tpkb("--kb", kb, "impact", "--base", "HEAD", "cases", "--format", "json", cwd=repo)
    assert changed.returncode == 1, changed.stderr
    out = json.loads(changed.stdout)
    assert [c["name"] for c in out["changed"]] == ["three"]
    assert out["changed"][0]["before"]["lines"] == ["20553 x1"] and out["changed"][0]["after"]["lines"] == ["20552 x1"]
    accepted = tpkb("--kb", kb, "impact", "--base", "HEAD", "cases", "--accept", "--case", "three", cwd=repo)
    assert accepted.returncode == 1 and "rewritten: cases/c.yaml" in accepted.stdout, accepted.stderr
    text = (repo / "cases" / "c.yaml").read_text()
    assert "    lines: [{code: 20552}]  # three muscles\n" in text
    assert tpkb("--kb", kb, "test", "cases", "--since", str(tmp_path / "l.json"), cwd=repo).returncode == 0
    bad = tpkb("--kb", kb, "impact", "--base", "no-such-rev", "cases", cwd=repo)
    assert bad.returncode == 2
    assert len(bad.stderr.strip().splitlines()) == 1
    assert bad.stderr.startswith("error: --base no-such-rev: not a revision of the git repository ")


def test_base_kb_with_an_error_exits_2(tmp_path: Path) -> None:
    broken = tmp_path / "kb"
    shutil.copytree(ROOT / "kb", broken)
    codes = broken / CODES
    codes.write_text(codes.read_text().replace("injected_count(E, N), N >= 3", "injected_cuont(E, N), N >= 3"))
    proc = tpkb("impact", "--base-kb", str(broken), "cases/codes")
    assert proc.returncode == 2
    assert "kb error: kb/rules/codes.lp:" in proc.stderr and "Traceback" not in proc.stderr


def test_rewrite_keeps_json_key_order_and_flow_yaml_expect() -> None:
    from bridge.accept import rewrite

    doc = {"name": "j", "source": "s", "encounter": {"date": "2025-06-02", "procedures": []},
           "expect": {"lines": [{"code": "20553"}], "fired": ["calls_for_20553", "count_injected"]}}
    text = json.dumps([doc], indent=2) + "\n"
    out = rewrite(text, ".json", "j", {"lines": [{"code": "20552"}], "fired": ["count_injected"]})
    assert json.loads(out)[0]["expect"] == {"lines": [{"code": "20552"}], "fired": ["count_injected"]}
    assert list(json.loads(out)[0]) == list(doc) and out.endswith("}\n]\n")
    yaml = ("name: y  # one case\nsource: s\nencounter: {date: 2025-06-02, procedures: []}\n"
            "expect: {rejected: [\"20553\"], fired: [calls_for_20553]}  # flow\n")
    out = rewrite(yaml, ".yaml", "y", {"rejected": ["20552"], "fired": None})
    assert out == yaml.replace('{rejected: ["20553"], fired: [calls_for_20553]}', '{rejected: ["20552"]}')
    with pytest.raises(ValueError):
        rewrite(yaml, ".yaml", "no-such-case", {"fired": None})


def test_accept_leaves_a_jsonl_case_file_alone_and_says_so(tmp_path: Path, edited: Path) -> None:
    case = tmp_path / "c.jsonl"
    line = {"name": "jsonl-three", "source": "test", "encounter": {"date": "2025-06-02", "procedures": [
        {"muscle": m, "side": "left", "injectate": ["l"]} for m in ("trapezius", "rhomboid major", "scalene")]},
        "expect": {"lines": [{"code": "20553"}]}}
    case.write_text(json.dumps(line) + "\n")
    proc = tpkb("--kb", str(edited), "impact", "--base-kb", str(ROOT / "kb"), "--accept", "--all", str(case))
    assert "jsonl-three: a JSONL case file is not rewritten" in proc.stderr, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr and json.loads(case.read_text()) == line
