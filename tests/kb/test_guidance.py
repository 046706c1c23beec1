"""kb/rules/guidance.lp: one guidance line where every requirement holds."""

import pytest

from helpers import dry, finding_ids, inj, lines

OK = {"necessity": "deep muscle near the pleura", "images_recorded": True}


@pytest.mark.parametrize("modality,code", [("ultrasound", "76942"), ("fluoroscopy", "77002"), ("mri", "77021")])
def test_each_modality_has_its_code(code_one, modality, code):
    out = code_one(procedures=[inj("trapezius", "left")], guidance=[{"modality": modality, **OK}])
    assert lines(out) == {"20552 x1", f"{code} x1"}


@pytest.mark.parametrize("entry,finding", [
    ({"modality": "ultrasound", "images_recorded": True}, "guidance_necessity_missing"),
    ({"modality": "ultrasound", "necessity": "x"}, "guidance_images_missing"),
    ({"modality": "ct", **OK}, "guidance_ct_not_reportable"),
])
def test_missing_requirement_means_no_line(code_one, entry, finding):
    out = code_one(procedures=[inj("trapezius", "left")], guidance=[entry])
    assert lines(out) == {"20552 x1"}
    assert finding in finding_ids(out)


def test_no_needle_line_no_guidance(code_one):
    out = code_one(procedures=[inj("paraspinals")], guidance=[{"modality": "ultrasound", **OK}])
    assert lines(out) == set()
    assert "guidance_without_procedure" in finding_ids(out)


def test_two_modalities_choose_none_and_ask(code_one):
    out = code_one(procedures=[dry("trapezius", "left")],
                   guidance=[{"modality": "ultrasound", **OK}, {"modality": "fluoroscopy", **OK}])
    assert lines(out) == {"20560 x1"}
    assert "guidance_modality_ambiguous" in finding_ids(out)


def test_many_entries_one_modality_one_unit(code_one):
    out = code_one(procedures=[inj("trapezius", "left")],
                   guidance=[{"modality": "ultrasound", **OK}, {"modality": "ultrasound", **OK}])
    assert lines(out) == {"20552 x1", "76942 x1"}
