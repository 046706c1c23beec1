"""kb/payers/medicare_lcd_tpi.lp: the 5-MAC TPI LCD removes guidance from 2024-04-01."""

import pytest

from helpers import dry, finding_ids, inj, lines, rejected

US = [{"modality": "ultrasound", "necessity": "thin patient", "images_recorded": True}]
LCDS = {"medicare-cgs": "L39656", "medicare-ngs": "L39662", "medicare-noridian": "L34211",
        "medicare-palmetto": "L39671", "medicare-wps": "L39713"}


@pytest.mark.parametrize("payer,lcd", sorted(LCDS.items()))
def test_five_macs_no_guidance_with_tpi_from_2024_04_01(code_one, payer, lcd):
    out = code_one(payer=payer, date="2024-04-01", procedures=[inj("trapezius", "left")], guidance=US)
    assert lines(out) == {"20552 x1"}
    finding = next(f for f in out.findings if f.id == "guidance_not_covered")
    assert lcd in finding.message and "investigational" in finding.message


def test_day_before_the_lcd_guidance_is_reported(code_one):
    out = code_one(payer="medicare-wps", date="2024-03-31", procedures=[inj("trapezius", "left")], guidance=US)
    assert lines(out) == {"20552 x1", "76942 x1"}


@pytest.mark.parametrize("payer", ["medicare-novitas", "medicare-fcso", "cpt"])
def test_other_profiles_report_guidance(code_one, payer):
    out = code_one(payer=payer, date="2025-01-10", procedures=[inj("trapezius", "left")], guidance=US)
    assert lines(out) == {"20552 x1", "76942 x1"}
    assert "guidance_not_covered" not in finding_ids(out)


def test_lcd_speaks_of_tpi_only(code_one):
    out = code_one(payer="medicare-wps", date="2025-01-10", procedures=[dry("trapezius", "left")], guidance=US)
    assert lines(out) == {"20560 x1", "76942 x1"}


def test_billed_guidance_not_covered_is_rejected(code_one):
    three = [inj("trapezius", "left"), inj("trapezius", "right"), inj("levator scapulae", "left")]
    out = code_one(payer="medicare-palmetto", procedures=three, billed=[{"code": "20553"}, {"code": "76942"}],
                   guidance=US)
    assert rejected(out) == {"76942": {"guidance_not_covered"}}
