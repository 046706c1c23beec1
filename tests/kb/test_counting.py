"""kb/rules/counting.lp: the unit is the muscle on one side; injection versus needling."""

from helpers import dry, finding_ids, inj, lines


def test_bilateral_is_two_muscles(code_one):
    # R and L trapezius + R and L levator scapulae = 20553 x1 (AAPC, coding-facts.md section 5)
    out = code_one(procedures=[inj("trapezius", "bilateral"), inj("levator scapulae", "bilateral")])
    assert lines(out) == {"20553 x1"}


def test_listings_and_trigger_points_of_one_muscle_count_once(derived):
    got = derived("injected_count", procedures=[
        {"muscle": "right upper trap", "trigger_points": 4, "injectate": ["lidocaine"]},
        inj("trapezius", "right"), inj("middle trapezius", "right")])
    assert got == ["injected_count(1,1)"]


def test_injected_and_needled_counts_as_injected_only(code_one):
    out = code_one(procedures=[inj("trapezius", "right"), dry("trapezius", "right")])
    assert lines(out) == {"20552 x1"}
    assert "muscle_injected_and_needled" in finding_ids(out)


def test_group_counts_once_per_side_unless_a_member_is_named(derived):
    got = derived("counted", procedures=[inj("scalenes", "bilateral"), inj("anterior scalene", "left")])
    assert got == ["counted(1,1,group,scalenes,right)", "counted(1,2,muscle,scalenus_anterior,left)"]


def test_unsided_muscle_counts_once_unless_named_with_a_side(derived):
    assert derived("counted", procedures=[inj("infraspinatus")]) == [
        "counted(1,1,muscle,infraspinatus,unsided)"]
    assert derived("counted", procedures=[inj("infraspinatus"), inj("infraspinatus", "left")]) == [
        "counted(1,2,muscle,infraspinatus,left)"]


def test_empty_injectate_is_dry_needling(code_one):
    out = code_one(procedures=[dry("trapezius", "left"), dry("trapezius", "right"), dry("piriformis", "left")])
    assert lines(out) == {"20561 x1"}
