"""kb/payers/medicare_lcd_tpi.lp: the harmonized 5-MAC TPI LCD, from 2024-04-01."""

import pytest

from helpers import dry, finding_ids, inj, lines, rejected

US = [{"modality": "ultrasound", "necessity": "thin patient", "images_recorded": True}]
LCDS = {"medicare-cgs": "L39656", "medicare-ngs": "L39662", "medicare-noridian": "L34211",
        "medicare-palmetto": "L39671", "medicare-wps": "L39713"}
DX = ["M79.12"]
TWO = [inj("trapezius", "left"), inj("trapezius", "right")]


@pytest.mark.parametrize("payer,lcd", sorted(LCDS.items()))
def test_five_macs_no_guidance_with_tpi_from_2024_04_01(code_one, payer, lcd):
    out = code_one(payer=payer, date="2024-04-01", diagnoses=DX, procedures=[inj("trapezius", "left")], guidance=US)
    assert lines(out) == {"20552 x1"}
    finding = next(f for f in out.findings if f.id == "policy_guidance")
    assert lcd in finding.message and "investigational" in finding.message


def test_day_before_the_lcd_nothing_of_it_applies(code_one):
    out = code_one(payer="medicare-wps", date="2024-03-31", procedures=[inj("trapezius", "left")], guidance=US)
    assert lines(out) == {"20552 x1", "76942 x1"}


@pytest.mark.parametrize("payer", ["medicare-novitas", "medicare-fcso", "cpt"])
def test_other_profiles_report_guidance_and_need_no_listed_diagnosis(code_one, payer):
    out = code_one(payer=payer, date="2025-01-10", procedures=[inj("trapezius", "left")], guidance=US)
    assert lines(out) == {"20552 x1", "76942 x1"}


@pytest.mark.parametrize("dx,covered", [(["M79.12"], True), (["M79.18", "M54.2"], True), (["G44.209"], True),
                                        (["M54.2"], False), (["M79.7"], False), ([], False)])
def test_covered_diagnoses(code_one, dx, covered):
    out = code_one(payer="medicare-ngs", diagnoses=dx, procedures=TWO)
    assert lines(out) == ({"20552 x1"} if covered else set())
    assert ("policy_diagnosis" in finding_ids(out)) != covered


def test_uncovered_diagnosis_says_what_would_change_it(code_one):
    out = code_one(payer="medicare-ngs", diagnoses=["M54.2"], procedures=TWO)
    message = next(f.message for f in out.findings if f.id == "policy_diagnosis")
    assert "L39662" in message and "M79.12" in message


def test_abn_reports_the_line_with_ga(code_one):
    out = code_one(payer="medicare-cgs", diagnoses=["M54.2"], abn=True, procedures=TWO,
                   billed=[{"code": "20552", "modifiers": ["GA"]}])
    assert lines(out) == {"20552-GA x1"}
    assert rejected(out) == {}


def test_billed_not_covered_line_is_rejected_even_with_gz(code_one):
    out = code_one(payer="medicare-cgs", diagnoses=["M54.2"], procedures=TWO,
                   billed=[{"code": "20552", "modifiers": ["GZ"]}])
    assert lines(out) == set()
    assert rejected(out) == {"20552": {"not_covered"}}


def test_lcd_dry_needling_not_covered(code_one):
    out = code_one(payer="medicare-wps", diagnoses=DX, procedures=[dry("trapezius", "left")], guidance=US)
    assert lines(out) == set()
    assert {"policy_not_covered_service", "ncd_condition"} <= finding_ids(out)


def test_billed_guidance_not_covered_is_rejected(code_one):
    three = [inj("trapezius", "left"), inj("trapezius", "right"), inj("levator scapulae", "left")]
    out = code_one(payer="medicare-palmetto", diagnoses=DX, procedures=three,
                   billed=[{"code": "20553"}, {"code": "76942"}], guidance=US)
    assert rejected(out) == {"76942": {"not_covered"}}


@pytest.mark.parametrize("substance", ["PRP 3 mL", "dextrose 12.5%", "Sarapin 2 mL", "Traumeel", "stem cells"])
def test_biological_and_non_fda_injectates(code_one, substance):
    out = code_one(payer="medicare-cgs", diagnoses=DX, procedures=[inj("trapezius", "left", ("lidocaine 1%", substance))])
    assert lines(out) == set() and "policy_injectate" in finding_ids(out)


def test_tpi_with_another_block_in_the_session(code_one):
    out = code_one(payer="medicare-cgs", diagnoses=DX, procedures=TWO,
                   services=[{"code": "64405", "site": "right greater occipital nerve"}])
    assert "20552 x1" not in lines(out) and "policy_with_other_injection" in finding_ids(out)


def test_drug_of_a_noncovered_tpi_is_not_covered(code_one):
    out = code_one(payer="medicare-cgs", diagnoses=["M54.2"],
                   procedures=[inj("trapezius", "left", ("lidocaine 1%", "Kenalog-40 40 mg"))])
    assert lines(out) == set() and "ancillary_of_noncovered" in finding_ids(out)
