"""kb/payers/medicare.lp: XS as the distinct-structure modifier; 59 in place of XS. The
encounters are covered (COVERED: a covered TPI diagnosis, chronic low back pain for NCD
30.3.3, a physician), so that only the modifiers are at stake."""

import pytest

from helpers import dry, inj, lines, rejected

PROCS = [inj("trapezius", "right"), dry("quadratus lumborum", "right")]
COVERED = {"diagnoses": ["M79.12", "M54.50"], "low_back_pain_weeks": 20, "provider": {"type": "physician"}}
MEDICARE = ["medicare-cgs", "medicare-ngs", "medicare-noridian", "medicare-palmetto", "medicare-wps",
            "medicare-novitas", "medicare-fcso"]


@pytest.mark.parametrize("payer", MEDICARE)
def test_every_medicare_profile_uses_xs(code_one, payer):
    assert lines(code_one(payer=payer, procedures=PROCS, **COVERED)) == {"20552 x1", "20560-XS x1"}


@pytest.mark.parametrize("mods,verdicts", [
    (["XS"], {}),
    (["59"], {}),
    (["XS", "59"], {"20560": {"modifier_not_called_for"}}),
    ([], {"20560": {"modifier_missing", "ptp_indicator_1"}}),
])
def test_59_stands_in_place_of_xs_not_beside_it(code_one, mods, verdicts):
    out = code_one(payer="medicare-wps", procedures=PROCS, **COVERED,
                   billed=[{"code": "20552"}, {"code": "20560", "modifiers": mods}])
    assert rejected(out) == verdicts


def test_cpt_profile_takes_xs_for_59(code_one):
    out = code_one(procedures=PROCS, billed=[{"code": "20552"}, {"code": "20560", "modifiers": ["XS"]}])
    assert rejected(out) == {}


def test_medicare_takes_59_in_place_of_xs(code_one):
    procs = [inj("trapezius", "left"), inj("piriformis", "right", ())]
    out = code_one(payer="medicare-cgs", procedures=procs, **COVERED,
                   billed=[{"code": "20552"}, {"code": "20560", "modifiers": ["59"]}])
    assert rejected(out) == {}


@pytest.mark.parametrize("payer", ["medicare-noridian", "medicare-novitas"])
def test_dry_needling_with_tpi_carries_xs(code_one, payer):
    out = code_one(payer=payer, procedures=[inj("trapezius", "left"), dry("piriformis", "right")], **COVERED)
    assert lines(out) == {"20552 x1", "20560-XS x1"}
