"""kb/rules/codes.lp: 20552/20553/20560/20561 by count, one unit, in force on the date."""

import pytest

from helpers import dry, finding_ids, inj, lines

MUSCLES = ["trapezius", "levator scapulae", "rhomboid major", "infraspinatus"]


@pytest.mark.parametrize("n,injected,needled", [(1, "20552", "20560"), (2, "20552", "20560"),
                                                 (3, "20553", "20561"), (4, "20553", "20561")])
def test_count_thresholds(code_one, n, injected, needled):
    assert lines(code_one(procedures=[inj(m, "left") for m in MUSCLES[:n]])) == {f"{injected} x1"}
    assert lines(code_one(procedures=[dry(m, "left") for m in MUSCLES[:n]])) == {f"{needled} x1"}


def test_dry_needling_before_2020_has_no_code(code_one):
    out = code_one(date="2019-12-31", procedures=[dry("trapezius", "left")])
    assert lines(out) == set()
    assert "code_not_in_force" in finding_ids(out)
    assert lines(code_one(date="2020-01-01", procedures=[dry("trapezius", "left")])) == {"20560 x1"}


def test_tpi_before_2002_has_no_code(code_one):
    out = code_one(date="2001-12-31", procedures=[inj("trapezius", "left")])
    assert lines(out) == set()
    assert "code_not_in_force" in finding_ids(out)
