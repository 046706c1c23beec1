"""kb/rules/ncci.lp: the TPI + dry needling pair (indicator 1) takes the distinct-procedure modifier."""

from helpers import dry, inj, lines


def test_dry_needling_with_tpi_carries_59_under_cpt(code_one):
    out = code_one(procedures=[inj("trapezius", "left"), dry("piriformis", "right")])
    assert lines(out) == {"20552 x1", "20560-59 x1"}


def test_dry_needling_of_three_muscles_with_tpi(code_one):
    out = code_one(procedures=[inj("trapezius", "left"), dry("piriformis", "right"), dry("piriformis", "left"),
                               dry("gluteus medius", "left")])
    assert lines(out) == {"20552 x1", "20561-59 x1"}


def test_no_modifier_without_the_pair(code_one):
    assert lines(code_one(procedures=[dry("piriformis", "right")])) == {"20560 x1"}
