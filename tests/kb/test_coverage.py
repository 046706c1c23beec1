"""kb/rules/coverage.lp and the payer files: rolling windows at their edges, history,
liability, and each commercial profile's rows."""

import datetime as dt

import pytest

from helpers import dry, finding_ids, inj, lines

TPI = [inj("trapezius", "left")]
DX = ["M79.12"]


def tpi_history(*dates, muscles=None):
    return [{"date": d, "codes": ["20552"], **({"muscles": muscles} if muscles else {})} for d in dates]


# 12 months: a prior session is within 12 months when it is after the same date a year earlier.
@pytest.mark.parametrize("dos,oldest,covered", [
    ("2026-02-28", "2025-03-01", False),  # within: the fourth session
    ("2026-02-28", "2025-02-28", True),   # exactly 12 months: rolled off
    ("2028-02-29", "2027-03-01", False),  # leap day: 12 months back is after 2027-02-28
    ("2028-02-29", "2027-02-28", True),
    ("2029-02-28", "2028-02-29", False),  # the leap day itself, 365 days before
    ("2029-03-01", "2028-02-29", True),
    ("2026-01-05", "2025-01-06", False),  # across a year end
    ("2026-01-05", "2025-01-05", True),
])
def test_twelve_months_edges(code_one, dos, oldest, covered):
    d = dt.date.fromisoformat(dos)
    history = tpi_history(oldest, *((d - dt.timedelta(days=n)).isoformat() for n in (30, 60)), muscles="R trapezius")
    out = code_one(payer="medicare-cgs", date=dos, diagnoses=DX, procedures=TPI, history=history)
    assert (lines(out) == {"20552 x1"}) == covered, out.findings


# 6 weeks: at least 42 days between two sessions at the same muscle.
@pytest.mark.parametrize("dos,prior,covered", [
    ("2025-03-12", "2025-01-29", True),   # 42 days
    ("2025-03-12", "2025-01-30", False),  # 41 days
    ("2025-01-05", "2024-11-24", True),   # 42 days, across a year end
    ("2025-01-05", "2024-11-25", False),
    ("2028-03-01", "2028-01-19", True),   # 42 days, across a leap day
    ("2028-03-01", "2028-01-20", False),
])
def test_six_weeks_edges(code_one, dos, prior, covered):
    out = code_one(payer="medicare-ngs", date=dos, diagnoses=DX, procedures=TPI,
                   history=tpi_history(prior, muscles="left trapezius"))
    assert (lines(out) == {"20552 x1"}) == covered
    assert ("policy_repeat_too_soon" in finding_ids(out)) != covered


def test_six_weeks_other_muscle_or_side_is_not_a_repeat(code_one):
    for muscles in ("right trapezius", "left levator scapulae"):
        out = code_one(payer="medicare-ngs", date="2025-03-12", diagnoses=DX, procedures=TPI,
                       history=tpi_history("2025-03-01", muscles=muscles))
        assert lines(out) == {"20552 x1"}, muscles


def test_history_without_muscles_is_assumed_the_same_location(code_one):
    out = code_one(payer="medicare-ngs", date="2025-03-12", diagnoses=DX, procedures=TPI,
                   history=tpi_history("2025-03-01"))
    assert lines(out) == set()
    assert "policy_repeat_too_soon" in finding_ids(out) and "prior_at_assumed" in (out.fired or [])


def ncd_history(dos_days_before, dos):
    d = dt.date.fromisoformat(dos)
    return [{"date": (d - dt.timedelta(days=n)).isoformat(), "codes": ["20560"]} for n in dos_days_before]


CLBP = {"diagnoses": ["M54.50"], "low_back_pain_weeks": 16, "provider": {"type": "physician"}}


# 90 days: 12 visits in the 90 days ending on the date of service, this one included.
@pytest.mark.parametrize("oldest,covered", [(90, True), (89, False)])
def test_ninety_days_edge_across_a_leap_day(code_one, oldest, covered):
    dos = "2024-03-15"  # 90 days before is 2023-12-16
    out = code_one(payer="medicare-cgs", date=dos, procedures=[dry("multifidus", "left")], **CLBP,
                   history=ncd_history([oldest, *range(2, 68, 6)], dos))
    assert (lines(out) == {"20560 x1"}) == covered


def test_ncd_twenty_a_year(code_one):
    dos = "2025-12-20"
    history = ncd_history(range(100, 100 + 19 * 10, 10), dos)
    assert code_one(payer="medicare-cgs", date=dos, procedures=[dry("multifidus", "left")], **CLBP,
                    history=history).lines
    out = code_one(payer="medicare-cgs", date=dos, procedures=[dry("multifidus", "left")], **CLBP,
                   history=ncd_history([95], dos) + history)
    assert lines(out) == set() and "policy_frequency" in finding_ids(out)


@pytest.mark.parametrize("change,covered,finding", [
    ({}, True, None),
    ({"low_back_pain_weeks": 11}, False, "ncd_condition"),
    ({"low_back_pain_weeks": None}, False, "ncd_condition"),
    ({"diagnoses": ["M54.2"]}, False, "ncd_condition"),
    ({"diagnoses": ["M54.50", "O26.891"]}, False, "ncd_condition"),
    ({"diagnoses": ["M54.50", "M96.1"]}, False, "ncd_condition"),
    ({"provider": {"type": "nurse_practitioner", "acupuncture_license": True}}, True, None),
    ({"provider": {"type": "nurse_practitioner"}}, False, "ncd_provider"),
    ({"provider": {"type": "physical_therapist", "acupuncture_license": True}}, False, "ncd_provider"),
    ({"provider": {"type": "chiropractor"}}, False, "ncd_provider"),
    ({"provider": None}, True, "provider_assumed"),
    ({"date": "2020-01-20"}, False, "policy_code_not_covered"),  # status N until CR 11661 (kb/payers/medicare_mpfs.lp)
    ({"date": "2020-01-21", "diagnoses": ["M54.5"]}, True, None),
    ({"date": "2022-01-21", "diagnoses": ["M54.5"]}, False, "ncd_condition"),
])
def test_ncd_30_3_3(code_one, change, covered, finding):
    doc = {"date": "2025-06-02", **CLBP, **change}
    doc = {k: v for k, v in doc.items() if v is not None}
    out = code_one(payer="medicare-novitas", procedures=[dry("multifidus", "left")], **doc)
    assert (lines(out) == {"20560 x1"}) == covered
    if finding:
        assert finding in finding_ids(out)


def test_excluded_is_reported_with_gy_and_with_gx_too_under_a_notice(code_one):
    doc = {**CLBP, "provider": {"type": "physical_therapist"}}
    assert lines(code_one(payer="medicare-fcso", procedures=[dry("multifidus", "left")], **doc)) == {"20560-GY x1"}
    out = code_one(payer="medicare-fcso", procedures=[dry("multifidus", "left")], abn=True, **doc)
    assert lines(out) == {"20560-GX-GY x1"}


def test_same_day_sessions_share_history(kb):
    from bridge.api import solve_batch
    from helpers import encounters
    docs = [{"patient": "p", "time": "09:00", "payer": "medicare-cgs", "diagnoses": DX, "procedures": TPI},
            {"patient": "p", "time": "11:00", "payer": "medicare-cgs", "diagnoses": DX, "procedures": [],
             "history": tpi_history("2025-02-01", "2025-03-01", "2025-04-01")}]
    encs = encounters(kb, *docs)
    answer = solve_batch(kb, encs, mode="full")
    assert lines(answer.outcome(1, encs[0])) == set()


@pytest.mark.parametrize("payer,history,procedures,covered", [
    ("bcbsa", tpi_history("2025-01-01", "2025-02-01", "2025-03-01"), TPI, True),
    ("bcbsa", tpi_history("2024-12-01", "2025-01-01", "2025-02-01", "2025-03-01"), TPI, False),
    ("bcbsa", [], [dry("trapezius", "left")], False),
    ("emblemhealth", tpi_history("2025-03-10", "2025-04-10", "2025-05-10", muscles="L trapezius"), TPI, False),
    ("emblemhealth", tpi_history("2025-03-10", "2025-04-10", "2025-05-10", muscles="R trapezius"), TPI, True),
    ("emblemhealth", [], [inj("trapezius", "left", ("normal saline",))], False),
    ("emblemhealth", [], [inj("trapezius", "left", ("Kenalog-40 40 mg",))], True),
    ("emblemhealth", [{"date": "2025-06-02", "codes": ["20552"]}], TPI, False),
    ("emblemhealth", [], [dry("trapezius", "left")], False),
    ("evicore", [], [inj("trapezius", "left", ("Kenalog-40 40 mg",))], False),
    ("evicore", [], [inj("trapezius", "left", ("dextrose 12.5%", "lidocaine 1%"))], False),
    ("evicore", tpi_history("2025-04-10", muscles="R trapezius"), TPI, False),  # same region, under 2 months
    ("evicore", tpi_history("2025-04-02", muscles="R trapezius"), TPI, True),   # exactly 2 months
    ("evicore", tpi_history("2025-04-10", muscles="R splenius capitis"), TPI, True),  # the neck: another region
    ("evicore", tpi_history("2025-04-10", muscles="L gluteus medius"), TPI, True),     # another region
    ("evicore", tpi_history("2024-08-01", "2024-10-01", "2024-12-01", "2025-02-01", muscles="trapezius"), TPI, False),
    ("evicore", [], [dry("trapezius", "left")], False),
])
def test_commercial_profiles(code_one, payer, history, procedures, covered):
    out = code_one(payer=payer, procedures=procedures, history=history)
    assert bool(out.lines) == covered, [f.message for f in out.findings]


def test_bcbsa_ultrasound_guidance_investigational(code_one):
    us = [{"modality": "ultrasound", "necessity": "deep", "images_recorded": True}]
    out = code_one(payer="bcbsa", procedures=TPI, guidance=us)
    assert lines(out) == {"20552 x1"} and "policy_guidance" in finding_ids(out)


def test_a_history_date_after_the_date_of_service_is_a_field_error(kb):
    from bridge.model import Encounter
    with pytest.raises(Exception, match="after the date of service"):
        Encounter.model_validate({"date": "2025-01-01", "procedures": [], "history": [{"date": "2025-02-01",
                                                                                           "codes": ["20552"]}]})
