"""kb/rules/muscles.lp: reading documented muscle text through the lexicon."""

from helpers import dry, finding_ids, inj, lines


def test_abbreviations_case_and_spaces(code_one):
    out = code_one(procedures=[inj("  Lev   SCAP ", "left"), inj("scm", "right"), inj("QL", "left")])
    assert lines(out) == {"20553 x1"}
    assert "muscle_unmatched" not in finding_ids(out)


def test_side_word_before_or_after_the_name(derived):
    got = derived("on_side", procedures=[inj("rt upper trap"), inj("glute med lt"), inj("b/l SCM")])
    assert got == ["on_side(1,1,1,right)", "on_side(1,2,1,left)", "on_side(1,3,1,left)", "on_side(1,3,1,right)"]


def test_parts_of_one_muscle_are_that_muscle(derived):
    got = derived("names", procedures=[inj("upper trapezius", "right"), inj("lower trap", "right")])
    assert got == ["names(1,1,1,muscle,trapezius)", "names(1,2,1,muscle,trapezius)"]


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
    assert derived("names", procedures=[inj("Rhomboids", "right")]) == ["names(1,1,1,group,rhomboids)"]


def test_each_muscle_of_one_text_gets_its_own_side(derived):
    got = derived("documented", procedures=[inj("R levator scapulae, L trapezius")])
    assert got == ["documented(1,1,muscle,levator_scapulae,right)", "documented(1,1,muscle,trapezius,left)"]


def test_side_field_applies_to_every_muscle_of_the_text(derived):
    got = derived("documented", procedures=[inj("upper and middle trapezius, levator scapulae", "left")])
    assert got == ["documented(1,1,muscle,levator_scapulae,left)", "documented(1,1,muscle,trapezius,left)"]


def test_ambiguous_name_names_its_candidates_and_counts_nothing(code_one):
    out = code_one(procedures=[inj("R levator", "right"), inj("trapezius", "left")])
    assert lines(out) == {"20552 x1"}
    finding = next(f for f in out.findings if f.id == "muscle_ambiguous_name")
    assert "Levator scapulae, Levator ani or Levatores costarum" in finding.message


def test_region_term_with_levels_is_a_region_term(code_one):
    out = code_one(procedures=[inj("lumbar paraspinals L3-L5", "bilateral")])
    assert {f.id for f in out.findings} >= {"muscle_region_term", "no_countable_muscle"}
    assert "muscle_unmatched" not in finding_ids(out)


def test_text_left_over_is_a_finding_and_the_rest_counts(code_one):
    out = code_one(procedures=[inj("right trapezius and zzz", "right"), inj("left trapezius")])
    assert lines(out) == {"20552 x1"}
    finding = next(f for f in out.findings if f.id == "muscle_unmatched")
    assert '"zzz"' in finding.message


def test_a_side_word_alone_names_no_muscle(code_one):
    out = code_one(procedures=[inj("bilateral")])
    assert lines(out) == set()
    assert "muscle_unmatched" in finding_ids(out)


def test_two_sides_for_one_mention_count_it_nowhere(derived):
    assert derived("documented", procedures=[inj("right trapezius", "left")]) == []
