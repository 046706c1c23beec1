"""The case library as a whole: at least 60 cases, all passing, every rule id in the KB
fired by at least one of them, every case citing its source, and the audit pinned line by
line with its reasons."""

from __future__ import annotations

from pathlib import Path

import pytest

from bridge.cases import Run, run_cases
from bridge.kb import KB

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def run(kb: KB) -> Run:
    return run_cases(kb, [ROOT / "cases"])


def test_library_passes_and_fires_every_rule(kb: KB, run: Run) -> None:
    assert not run.problems, [str(p) for p in run.problems]
    assert len(run.results) >= 60
    assert not run.failed, run.report(run.failed[0])
    unfired = sorted(set(kb.rules) - run.fired)
    assert not unfired, f"rules fired by no case: {unfired}"


def test_every_case_cites_a_source(run: Run) -> None:
    assert all(r.case.source.strip() for r in run.results)


def test_every_reason_rule_is_pinned_by_a_billed_expectation(kb: KB, run: Run) -> None:
    pinned = {reason for r in run.results for line in r.case.expect.billed or [] for reason in line.reasons or []}
    derived = {rule.head.args[2].name for rule in kb.rules.values() if rule.signature == ("reason", 4)}
    assert derived <= pinned, f"reasons no case pins with expect.billed: {sorted(derived - pinned)}"


def test_rejections_are_pinned_by_reason_not_by_rule_firing(run: Run) -> None:
    for r in run.results:
        reason_rules = [rid for rid in r.case.expect.fired or [] if rid.startswith("reason_")]
        assert not reason_rules or r.case.expect.billed is not None, (r.case.name, reason_rules)
