"""What if and generate: the solver's fewest changes to the documented facts that make a code
reported, a claim accepted or a rule fire; applying them gives what was asked."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from helpers import encounters

from bridge import whatif
from bridge.api import load_kb
from bridge.cases import run_cases
from bridge.generate import generate

ROOT = Path(__file__).resolve().parent.parent
INJ = ["lidocaine 1%"]


@pytest.fixture(scope="module")
def kb():
    return load_kb()


def test_make_20553_names_the_region_term_and_applying_it_gives_20553(kb) -> None:
    [enc] = encounters(kb, {"date": "2026-03-02", "procedures": [
        {"muscle": "right trapezius", "injectate": INJ}, {"muscle": "left trapezius", "injectate": INJ},
        {"muscle": "paraspinals", "injectate": INJ}]})
    result = whatif.make(kb, enc, "20553")
    assert result.answers and all(len(a.changes) == 1 for a in result.answers)
    first = result.answers[0]
    assert first.changes[0].text.startswith('procedure 3: name the muscle in place of the region term "paraspinals"')
    assert first.reaches and "20553 x1" in {ln.text() for ln in first.outcome.lines}
    assert "calls_for_20553" in first.fired


def test_make_20553_names_one_more_muscle(kb) -> None:
    [enc] = encounters(kb, {"date": "2026-03-02", "procedures": [
        {"muscle": "right trapezius", "injectate": INJ}, {"muscle": "left trapezius", "injectate": INJ}]})
    result = whatif.make(kb, enc, "20553")
    assert result.answers[0].changes[0].text.startswith("document one more muscle, injected")
    assert all(a.reaches for a in result.answers)
    assert {ln.code for ln in result.answers[0].outcome.lines} == {"20553"}
    assert whatif.make(kb, enc, "20552").already


def test_accept_billed_adds_the_missing_modifier(kb) -> None:
    [enc] = encounters(kb, {"date": "2026-03-02", "procedures": [
        {"muscle": "right trapezius", "injectate": INJ}, {"muscle": "left gluteus medius", "injectate": []}],
        "billed": [{"code": "20552"}, {"code": "20560"}]})
    result = whatif.accept_billed(kb, enc)
    texts = {a.changes[0].text for a in result.answers}
    assert "billed line 2 (20560): add modifier 59" in texts
    assert all(len(a.changes) == 1 and a.reaches for a in result.answers)


def test_generate_drafts_a_case_that_fires_the_rule_and_passes(kb, tmp_path: Path) -> None:
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    (seeds / "seed.yaml").write_text((ROOT / "cases" / "counting" / "seed_example.yaml").read_text())
    before = run_cases(kb, [seeds])
    assert "finding_region_term" not in before.fired  # no case of these fires it
    draft = generate(kb, "finding_region_term", [seeds])
    assert draft is not None and draft.changes
    out = tmp_path / "draft.yaml"
    out.write_text(draft.yaml())
    run = run_cases(kb, [out])
    assert run.tally() == "1 passed, 0 failed" and "finding_region_term" in run.fired
    assert "DRAFT" in out.read_text() and "draft" in run.results[0].case.tags


def test_generate_not_drafts_a_case_that_almost_fires_the_rule(kb, tmp_path: Path) -> None:
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    (seeds / "seed.yaml").write_text((ROOT / "cases" / "counting" / "seed_example.yaml").read_text())
    draft = generate(kb, "calls_for_20553", [seeds], almost=True)  # the seed fires it: 3 muscles
    assert draft is not None and draft.changes == ['leave out procedure 3 ("rhomboid major")']
    out = tmp_path / "draft.yaml"
    out.write_text(draft.yaml())
    run = run_cases(kb, [out])
    assert run.tally() == "1 passed, 0 failed" and run.results[0].case.expect.not_fired == ["calls_for_20553"]
    assert "count_injected" in (run.results[0].outcome.fired or [])  # the condition before the last held


def test_the_command_lines(tmp_path: Path) -> None:
    enc = tmp_path / "e.yaml"
    enc.write_text("date: 2026-03-02\nprocedures:\n  - {muscle: right trapezius, injectate: [lidocaine 1%]}\n"
                   "  - {muscle: left trapezius, injectate: [lidocaine 1%]}\n")
    run = [sys.executable, "-m", "bridge"]
    ok = subprocess.run([*run, "what-if", str(enc), "--make", "20553"], capture_output=True, text=True, cwd=ROOT)
    assert ok.returncode == 0 and "what if --make 20553: 1 change at least" in ok.stdout, ok.stderr
    for bad in (["what-if", str(enc)], ["what-if", str(enc), "--make", "2x"], ["generate", "--rule", "no_such_rule"]):
        proc = subprocess.run([*run, *bad], capture_output=True, text=True, cwd=ROOT)
        assert proc.returncode == 2 and proc.stderr.startswith("error:") and "Traceback" not in proc.stderr
