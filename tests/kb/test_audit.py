"""kb/rules/audit.lp: each billed line accepted or rejected, with reasons naming rules."""

from helpers import dry, finding_ids, inj, rejected

THREE = [inj("trapezius", "left"), inj("trapezius", "right"), inj("levator scapulae", "left")]


def test_exact_match_is_accepted(code_one):
    out = code_one(procedures=THREE, billed=[{"code": "20553"}])
    assert rejected(out) == {}
    assert [b.verdict for b in out.billed] == ["accept"]


def test_pair_edit_and_count(code_one):
    out = code_one(procedures=THREE, billed=[{"code": "20553"}, {"code": 20552}])
    assert rejected(out) == {"20552": {"count_not_supported", "ptp_indicator_0"}}


def test_units_over_mue(code_one):
    out = code_one(procedures=THREE, billed=[{"code": "20553", "units": 2}])
    assert rejected(out) == {"20553": {"units_over_mue"}}


def test_missing_modifier_and_xs_taken_for_59(code_one):
    procs = [inj("trapezius", "left"), inj("piriformis", "right", ())]
    out = code_one(procedures=procs, billed=[{"code": "20552"}, {"code": "20560"}])
    assert rejected(out) == {"20560": {"modifier_missing", "ptp_indicator_1"}}
    out = code_one(procedures=procs, billed=[{"code": "20552"}, {"code": "20560", "modifiers": ["59"]}])
    assert rejected(out) == {}
    out = code_one(procedures=procs, billed=[{"code": "20552"}, {"code": "20560", "modifiers": ["XS"]}])
    assert rejected(out) == {}  # XS, the more specific 59 (issue 7, item 6)
    out = code_one(procedures=procs, billed=[{"code": "20552"}, {"code": "20560", "modifiers": ["XU"]}])
    assert rejected(out) == {"20560": {"modifier_missing", "modifier_not_called_for"}}


def test_add_on_without_primary(code_one):
    out = code_one(procedures=THREE, billed=[{"code": "77002"}],
                   guidance=[{"modality": "fluoroscopy", "necessity": "x", "images_recorded": True}])
    assert rejected(out) == {"77002": {"addon_without_primary"}}
    assert "line_not_billed" in finding_ids(out)


def test_guidance_without_images_is_not_supported(code_one):
    out = code_one(procedures=THREE, billed=[{"code": "20553"}, {"code": "76942"}],
                   guidance=[{"modality": "ultrasound", "necessity": "x"}])
    assert rejected(out) == {"76942": {"guidance_not_supported"}}


def test_a_code_out_of_force_is_rejected_for_its_date(code_one):
    out = code_one(date="2019-06-03", procedures=[dry("trapezius", "left")], billed=[{"code": "20560"}])
    assert rejected(out) == {"20560": {"code_not_in_force"}}  # the count calls for 20560; the date does not


def test_every_billed_line_has_a_verdict(code_one):
    out = code_one(procedures=THREE, billed=[{"code": "20553"}, {"code": "20553"}, {"code": "J3301", "units": 4},
                                             {"code": "64405"}])
    assert [b.verdict for b in out.billed] == ["accept", "reject", "reject", "reject"]
    assert rejected(out) == {"20553": {"duplicate_line", "units_over_mue", "ptp_indicator_1"}, "J3301": {"drug_not_supported"},
                             "64405": {"ptp_indicator_1"}}


def test_code_outside_the_kb_is_not_reviewed_unless_an_edit_rejects_it(code_one):
    out = code_one(procedures=THREE, billed=[{"code": "20553"}, {"code": "20999"}, {"code": "64405", "modifiers": ["59"]},
                                             {"code": "97140", "units": 9}])
    assert [b.verdict for b in out.billed] == ["accept", "not_reviewed", "not_reviewed", "reject"]
    assert rejected(out) == {"97140": {"units_over_mue"}}
