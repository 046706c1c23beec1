"""bridge/cms.py and `tpkb import`: CMS's PTP and MUE releases in their own layouts, as
small fixtures (tests/data/cms/), into dated fact files; the shipped extracts through the
same path (issue 7, item 1)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import encounters

from bridge import cms
from bridge.api import code, load_kb
from tools.build_reference import build_mue, build_ptp

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "reference" / "data"
FIXTURES = ROOT / "tests" / "data" / "cms"
PTP = FIXTURES / "ccipra-v321r0-f1.txt"
MUE_Q1 = FIXTURES / "MCR_MUE_PractitionerServices_Eff_01-01-2024.csv"
MUE_Q2 = FIXTURES / "MCR_MUE_PractitionerServices_Eff_04-01-2024.csv"


def tpkb(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bridge", *args], capture_output=True, text=True, cwd=ROOT)


@pytest.mark.skipif(not DATA.is_dir(), reason="the shipped extracts are not beside this checkout")
def test_the_kb_ncci_files_are_what_the_importers_write_from_the_shipped_extracts() -> None:
    assert (ROOT / "kb" / "reference" / "ncci_ptp.lp").read_text() == build_ptp(DATA)
    assert (ROOT / "kb" / "reference" / "mue.lp").read_text() == build_mue(DATA)


def test_the_extract_caveat_is_in_the_fact_file() -> None:
    text = (ROOT / "kb" / "reference" / "ncci_ptp.lp").read_text()
    assert "CAVEAT: a third-party extract" in text
    assert 'ptp_release("2026Q2 extract",undirected,' in text


def test_ptp_rows_keep_direction_and_dates() -> None:
    imported = cms.read_ptp([PTP])
    assert imported.problems == []
    # the withdrawn edit (deletion = effective) and the pair with no focus code are left out
    assert imported.rows == [("20553", "20552", 0, 19960101, cms.OPEN, "More extensive procedure"),
                             ("20552", "64405", 1, 20030101, 20231231, "More extensive procedure")]
    assert cms.release_from_name(PTP.name) == "ccipra-v321r0"


def test_malformed_rows_are_each_an_error_and_nothing_is_written(tmp_path: Path) -> None:
    out = tmp_path / "ptp.lp"
    proc = tpkb("import", "ptp", str(FIXTURES / "ccipra-v999r0-bad.txt"), "--out", str(out))
    assert proc.returncode == 2 and not out.exists()
    errors = proc.stderr.splitlines()
    assert "ccipra-v999r0-bad.txt:4: effective date '2020010' is not a date yyyymmdd" in errors[0]
    assert "ccipra-v999r0-bad.txt:5: modifier indicator '7' is not 0, 1 or 9" in errors[1]
    assert "ccipra-v999r0-bad.txt:6: a PTP row has 7 tab-separated columns" in errors[2]
    assert errors[-1] == "3 problem(s); nothing written"
    out = tmp_path / "mue.lp"
    proc = tpkb("import", "mue", str(FIXTURES / "MCR_MUE_PractitionerServices_Eff_07-01-2024.csv"), "--out", str(out))
    assert proc.returncode == 2 and not out.exists()
    assert "Eff_07-01-2024.csv:3: MUE value 'one' is not a whole number" in proc.stderr


def test_a_file_that_is_not_a_cms_release_is_refused(tmp_path: Path) -> None:
    other = tmp_path / "notes.txt"
    other.write_text("hello\n")
    proc = tpkb("import", "ptp", str(other), "--out", str(tmp_path / "p.lp"))
    assert proc.returncode == 2 and "no PTP row found" in proc.stderr


@pytest.fixture(scope="module")
def imported_kb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the KB with the fixture releases imported in place of the extracts."""
    kb = tmp_path_factory.mktemp("kb") / "kb"
    shutil.copytree(ROOT / "kb", kb)
    for args in (("ptp", str(PTP)), ("mue", str(MUE_Q1), str(MUE_Q2))):
        proc = tpkb("--kb", str(kb), "import", *args)
        assert proc.returncode == 0, proc.stderr
    return kb


def outcomes(kb_path: Path, docs: list[dict]) -> list[dict]:
    kb = load_kb(kb_path)
    return [o.json() for o in code(kb, encounters(kb, *docs))]


def test_a_deleted_edit_applies_only_before_its_deletion_date(imported_kb: Path) -> None:
    doc = {"procedures": [{"muscle": "right trapezius", "injectate": ["lidocaine 1%"]}],
           "billed": [{"code": "20552"}, {"code": "64405"}]}
    before, after = outcomes(imported_kb, [{**doc, "date": "2023-12-31"}, {**doc, "date": "2024-01-01"}])
    assert before["billed"][1]["verdict"] == "reject"
    assert [r["id"] for r in before["billed"][1]["reason_details"]] == ["ptp_indicator_1"]
    assert "release ccipra-v321r0" in before["billed"][1]["reasons"][0]
    assert after["billed"][1]["verdict"] == "not_reviewed"


def test_the_mue_in_force_is_that_of_the_latest_quarter(imported_kb: Path) -> None:
    doc = {"procedures": [{"muscle": "right gluteus maximus", "injectate": ["triamcinolone 120 mg"]}],
           "billed": [{"code": "20552"}, {"code": "J3301", "units": 12}]}
    q1, q2 = outcomes(imported_kb, [{**doc, "date": "2024-03-31"}, {**doc, "date": "2024-04-01"}])
    assert q1["billed"][1]["verdict"] == "accept"
    assert {"code": "J3301", "units": 10, "modifiers": []} in q2["lines"]
    assert {r["id"] for r in q2["billed"][1]["reason_details"]} == {"units_over_mue", "drug_units_not_supported"}


def test_a_directed_edit_falls_on_its_column_2_code(imported_kb: Path) -> None:
    # the fixture release: 20553 (column 1) / 20552 (column 2), indicator 0
    doc = {"date": "2025-01-06", "procedures": [{"muscle": m, "injectate": ["lidocaine 1%"]} for m in
                                                ("right trapezius", "left trapezius", "right SCM")],
           "billed": [{"code": "20552"}, {"code": "20553"}, {"code": "64999"}]}
    (out,) = outcomes(imported_kb, [doc])
    reasons = {b["code"]: {r["id"] for r in b["reason_details"]} for b in out["billed"]}
    assert out["billed"][1]["verdict"] == "accept"
    assert "ptp_indicator_0" in reasons["20552"]  # column 2: the edit falls on it


def test_a_code_left_out_of_the_latest_quarter_has_no_mue_then(imported_kb: Path, tmp_path: Path) -> None:
    # 97140 is in both fixture quarters; a code only in the first quarter has no MUE in the second
    kb = tmp_path / "kb"
    shutil.copytree(imported_kb, kb)
    q1 = tmp_path / "MCR_MUE_PractitionerServices_Eff_01-01-2024.csv"
    q1.write_text(MUE_Q1.read_text() + '99486,4,"1 Line Edit","Clinical: CMS Workgroup"\n')
    proc = tpkb("--kb", str(kb), "import", "mue", str(q1), str(MUE_Q2))
    assert proc.returncode == 0, proc.stderr
    doc = {"procedures": [], "billed": [{"code": "99486", "units": 5}]}
    q1_out, q2_out = outcomes(kb, [{**doc, "date": "2024-03-31"}, {**doc, "date": "2024-04-01"}])
    assert q1_out["billed"][0]["verdict"] == "reject"
    assert q2_out["billed"][0]["verdict"] == "not_reviewed"
