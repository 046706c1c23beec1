"""kb/rules/ncci.lp and kb/payers/medicare.lp: the TPI + dry needling pair (indicator 1)."""

import pytest

from helpers import dry, inj, lines


@pytest.mark.parametrize("payer,modifier", [("cpt", "59"), ("medicare-noridian", "XS"), ("medicare-novitas", "XS")])
def test_dry_needling_with_tpi_carries_distinct_modifier(code_one, payer, modifier):
    out = code_one(payer=payer, procedures=[inj("trapezius", "left"), dry("piriformis", "right")])
    assert lines(out) == {"20552 x1", f"20560-{modifier} x1"}


def test_no_modifier_without_the_pair(code_one):
    assert lines(code_one(procedures=[dry("piriformis", "right")])) == {"20560 x1"}
