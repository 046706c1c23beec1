"""kb/rules/audit.lp: each billed line accepted or rejected, with reasons naming rules."""

from helpers import finding_ids, inj, rejected

THREE = [inj("trapezius", "left"), inj("trapezius", "right"), inj("levator scapulae", "left")]


def test_exact_match_is_accepted(code_one):
    out = code_one(procedures=THREE, billed=[{"code": "20553"}])
    assert rejected(out) == {}
    assert [b["verdict"] for b in out["billed"]] == ["accept"]


def test_pair_edit_and_count(code_one):
    out = code_one(procedures=THREE, billed=[{"code": "20553"}, {"code": 20552}])
    assert rejected(out) == {"20552": {"count_not_supported", "ptp_indicator_0"}}


def test_units_over_mue(code_one):
    out = code_one(procedures=THREE, billed=[{"code": "20553", "units": 2}])
    assert rejected(out) == {"20553": {"units_over_mue"}}


def test_missing_and_medicare_equivalent_modifier(code_one):
    procs = [inj("trapezius", "left"), inj("piriformis", "right", ())]
    out = code_one(procedures=procs, billed=[{"code": "20552"}, {"code": "20560"}])
    assert rejected(out) == {"20560": {"modifier_missing", "ptp_indicator_1"}}
    out = code_one(payer="medicare-cgs", procedures=procs,
                   billed=[{"code": "20552"}, {"code": "20560", "modifiers": ["59"]}])
    assert rejected(out) == {}
    out = code_one(procedures=procs, billed=[{"code": "20552"}, {"code": "20560", "modifiers": ["XS"]}])
    assert rejected(out) == {"20560": {"modifier_missing", "modifier_not_called_for"}}


def test_add_on_without_primary(code_one):
    out = code_one(procedures=THREE, billed=[{"code": "77002"}],
                   guidance=[{"modality": "fluoroscopy", "necessity": "x", "images_recorded": True}])
    assert rejected(out) == {"77002": {"addon_without_primary"}}
    assert "line_not_billed" in finding_ids(out)


def test_guidance_not_covered(code_one):
    out = code_one(payer="medicare-palmetto", procedures=THREE, billed=[{"code": "20553"}, {"code": "76942"}],
                   guidance=[{"modality": "ultrasound", "necessity": "x", "images_recorded": True}])
    assert rejected(out) == {"76942": {"guidance_not_covered"}}


def test_code_outside_the_kb(code_one):
    out = code_one(procedures=THREE, billed=[{"code": "20553"}, {"code": "96372"}])
    assert rejected(out) == {"96372": {"code_not_derived", "ptp_indicator_1"}}
