"""The case library as a whole: at least 60 cases, all passing, and every rule id in the
KB fired by at least one of them."""

import re
from pathlib import Path

from bridge.cases import run_cases

ROOT = Path(__file__).resolve().parent.parent


def test_library_passes_and_fires_every_rule(kb):
    run = run_cases(kb, [ROOT / "cases"])
    assert not run.problems, [str(p) for p in run.problems]
    assert len(run.results) >= 60
    assert not run.failed, run.failed[0].report()
    unfired = sorted(set(kb.rules) - run.fired)
    assert not unfired, f"rules fired by no case: {unfired}"


def test_every_case_cites_a_source(kb):
    run = run_cases(kb, [ROOT / "cases"])
    assert all(r.case.source.strip() for r in run.results)


def test_every_finding_id_has_a_severity(kb):
    severities = set(kb.severities())
    text = "".join(p.read_text() for folder in ("rules", "payers") for p in (ROOT / "kb" / folder).glob("*.lp"))

    used = set(re.findall(r"finding\(E, (\w+),", text))
    assert used and used <= severities, used - severities


def test_schema_names_exactly_the_keys_the_loader_accepts():
    import json

    from bridge import load

    defs = json.loads((ROOT / "cases" / "tpkb.schema.json").read_text())["$defs"]
    pairs = {"case": load.CASE_KEYS, "encounter": load.ENCOUNTER_KEYS, "procedure": load.PROCEDURE_KEYS,
             "guidance": load.GUIDANCE_KEYS, "billed": load.BILLED_KEYS, "expect": load.EXPECT_KEYS,
             "line": load.LINE_KEYS}
    for name, keys in pairs.items():
        assert set(defs[name]["properties"]) == keys, name
    profiles = set(defs["encounter"]["properties"]["payer"]["enum"])
    from bridge.api import default_kb_path
    from bridge.engine import KB

    assert profiles == set(KB.load(default_kb_path()).profiles())
