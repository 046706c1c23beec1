"""Why not: the rule that could derive a line, finding or accepted billed line, and the
first condition that failed, computed from the instrumented prefixes of the rule bodies."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import encounters

from bridge.api import load_kb
from bridge.whynot import Target, safe_order, why_not

ROOT = Path(__file__).resolve().parent.parent
TWO_AND_A_REGION = {"date": "2026-03-02", "procedures": [
    {"muscle": "right trapezius", "injectate": ["lidocaine 1%"]},
    {"muscle": "left trapezius", "injectate": ["lidocaine 1%"]},
    {"muscle": "paraspinals", "injectate": ["lidocaine 1%"]}], "billed": [{"code": "20552"}]}
DRY_NEEDLING_WITHOUT_59 = {"date": "2026-03-02", "procedures": [
    {"muscle": "right trapezius", "injectate": ["lidocaine 1%"]},
    {"muscle": "left gluteus medius", "injectate": []}], "billed": [{"code": "20552"}, {"code": "20560"}]}


@pytest.fixture(scope="module")
def kb():
    return load_kb()


def test_why_not_20553_names_the_count_rule_the_count_and_the_region_term(kb) -> None:
    [enc] = encounters(kb, TWO_AND_A_REGION)
    answer = why_not(kb, enc, Target.parse("20553"))
    assert not answer.holds
    assert answer.summary().startswith("20553: calls_for_20553 fails at N >= 3, with N = 2")
    text = "\n".join(answer.text())
    assert "trapezius, right side, counts as one muscle" in text and "trapezius, left side" in text
    assert any("paraspinals" in t and "region" in t for t in answer.not_counted)
    # every branch is a rule that can derive a 20553 line: no guidance or drug rule
    rules = {f.rule.id for f in answer.failures}
    assert rules == {"report_covered_line", "report_line_with_liability_modifier"}
    assert "report_guidance_line" not in text


def test_why_not_accepted_names_the_missing_modifier(kb) -> None:
    [enc] = encounters(kb, DRY_NEEDLING_WITHOUT_59)
    answer = why_not(kb, enc, Target.parse("accept:20560"))
    assert answer.summary() == ("accept:20560: billed_matches fails at billed line 2 lacks modifier 59 (the rule "
                                "needs this not to hold)")
    assert "billed line 2 (20560) lacks modifier 59 [modifier_missing]" in "\n".join(answer.text())
    assert why_not(kb, enc, Target.parse("accept:1")).holds  # 20552 is accepted


def test_why_not_a_line_that_is_there_says_so(kb) -> None:
    [enc] = encounters(kb, TWO_AND_A_REGION)
    answer = why_not(kb, enc, Target.parse("20552"))
    assert answer.holds and answer.failures == []


def test_why_not_a_finding(kb) -> None:
    [enc] = encounters(kb, DRY_NEEDLING_WITHOUT_59)
    answer = why_not(kb, enc, Target.parse("finding:muscle_region_term"))
    assert [f.rule.id for f in answer.failures] == ["finding_region_term"]
    assert answer.failures[0].held == 1 and "region" in answer.failures[0].failed


def test_a_target_that_cannot_be_asked_is_refused(kb) -> None:
    with pytest.raises(ValueError, match="write a code"):
        Target.parse("bogus:1")
    [enc] = encounters(kb, DRY_NEEDLING_WITHOUT_59)
    with pytest.raises(ValueError, match="bills no line"):
        why_not(kb, enc, Target.parse("accept:20553"))


def test_safe_order_puts_the_encounter_first_and_waits_for_bindings(kb) -> None:
    for rule in kb.by_number:
        if rule.encounter is None:
            continue
        order = safe_order(rule)
        assert len(order) == len(rule.body)
        assert rule.encounter in order[0].binds or order[0].literal.kind != "atom"


def test_the_command_line_writes_text_and_json(tmp_path: Path) -> None:
    path = tmp_path / "e.json"
    path.write_text(json.dumps({"id": "two-and-a-region", **TWO_AND_A_REGION}))
    run = [sys.executable, "-m", "bridge", "explain", str(path), "--why-not"]
    text = subprocess.run([*run, "20553"], capture_output=True, text=True, cwd=ROOT)
    assert text.returncode == 0, text.stderr
    assert "why not 20553: calls_for_20553 fails at N >= 3" in text.stdout
    out = subprocess.run([*run, "20553", "--format", "json"], capture_output=True, text=True, cwd=ROOT)
    [record] = json.loads(out.stdout)["encounters"]
    assert record["id"] == "two-and-a-region" and record["rules"][0]["because"][0]["rule"] == "report_procedure_line"
    bad = subprocess.run([*run, "nonsense:x"], capture_output=True, text=True, cwd=ROOT)
    assert bad.returncode == 2 and bad.stderr.startswith("error: --why-not") and "Traceback" not in bad.stderr
