"""kb/rules/muscles.lp: reading documented muscle text through the lexicon."""

from helpers import dry, finding_ids, inj, lines


def test_abbreviations_case_and_spaces(code_one):
    out = code_one(procedures=[inj("  Lev   SCAP ", "left"), inj("scm", "right"), inj("QL", "left")])
    assert lines(out) == {"20553 x1"}
    assert "muscle_unmatched" not in finding_ids(out)


def test_side_word_before_or_after_the_name(derived):
    got = derived("on_side", procedures=[inj("rt upper trap"), inj("glute med lt"), inj("b/l SCM")])
    assert got == ["on_side(1,1,right)", "on_side(1,2,left)", "on_side(1,3,left)", "on_side(1,3,right)"]


def test_parts_of_one_muscle_are_that_muscle(derived):
    got = derived("names", procedures=[inj("upper trapezius", "right"), inj("lower trap", "right")])
    assert got == ["names(1,1,muscle,trapezius)", "names(1,2,muscle,trapezius)"]


def test_region_term_never_counts(code_one):
    out = code_one(procedures=[inj("paraspinals", "left"), inj("upper back")])
    assert lines(out) == set()
    assert {"muscle_region_term", "no_countable_muscle"} <= finding_ids(out)


def test_unmatched_text_gets_suggestions(code_one):
    out = code_one(procedures=[inj("levator scapuale", "left")])
    finding = next(f for f in out.findings if f.id == "muscle_unmatched")
    assert '"levator scapuale"' in finding.message
    assert "Did you mean: levator scapulae" in finding.message


def test_ambiguous_abbreviation_does_not_count(code_one):
    out = code_one(procedures=[inj("RCPM", "left"), inj("trapezius", "left")])
    assert lines(out) == {"20552 x1"}
    assert "muscle_ambiguous_name" in finding_ids(out)


def test_side_field_and_text_disagree(code_one):
    out = code_one(procedures=[inj("right trapezius", "left"), dry("levator scapulae", "left")])
    assert lines(out) == {"20560 x1"}
    assert "muscle_side_conflict" in finding_ids(out)


def test_group_term_is_read_as_a_group(derived):
    assert derived("names", procedures=[inj("Rhomboids", "right")]) == ["names(1,1,group,rhomboids)"]
