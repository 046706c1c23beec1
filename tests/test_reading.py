"""bridge/reading.py: documentation text as clinicians write it, read with the KB's own
lexicon (kb/lexicon/muscles.yaml). One test per text form of issue 6, items 2 to 4; each
form also has a case under cases/muscles/."""

from __future__ import annotations

import pytest

from bridge.kb import KB
from bridge.reading import normalise, tokens


@pytest.fixture(scope="module")
def read(kb: KB):
    vocabulary = kb.vocabulary()

    def run(text: str) -> tuple[list[tuple[str, tuple[str, ...]]], list[str]]:
        reading = vocabulary.read(text)
        return [(m.term, m.sides) for m in reading.mentions], list(reading.unread)

    return run


def test_normalise_case_unicode_spaces_and_dashes():
    assert normalise("  Upper\u00a0TRAPEZIUS\u2003") == "upper trapezius"
    assert normalise("\uff34\uff52\uff41\uff50\uff45\uff5a\uff49\uff55\uff53") == "trapezius"  # full-width letters
    assert normalise("upper\u2013trapezius \u2014 C3\u2012C6") == "upper-trapezius - c3-c6"


def test_levels_are_one_token_apart_from_the_name():
    assert tokens("lumbar paraspinals l3-l5") == ["lumbar", "paraspinals", "#l3-l5"]
    assert tokens("multifidus l4/5, c3 to c6") == ["multifidus", "#l4/5", ",", "#c3toc6"]


def test_case_does_not_matter(read):
    assert read("TRAPEZIUS") == read("Trapezius") == ([("trapezius", ())], [])


def test_unicode_forms_read_as_ascii(read):
    assert read("\uff33\uff23\uff2d") == ([("scm", ())], [])
    assert read("levator\u00a0scapulae") == ([("levator scapulae", ())], [])
    assert read("right upper\u2013trapezius") == ([("upper trapezius", ("right",))], [])


def test_hyphens_between_words(read):
    assert read("right upper-trapezius") == ([("upper trapezius", ("right",))], [])
    assert read("left mid-trapezius") == ([("mid trapezius", ("left",))], [])
    assert read("Sterno-cleido-mastoid") == ([("sternocleidomastoid", ())], [])
    assert read("right-sided piriformis") == ([("piriformis", ("right sided",))], [])


def test_slashes_between_words_join_a_list(read):
    assert read("trapezius/levator scapulae") == ([("trapezius", ()), ("levator scapulae", ())], [])
    assert read("rhomboid major/minor") == ([("rhomboid major", ()), ("rhomboid minor", ())], [])


def test_trailing_and_inner_punctuation(read):
    assert read("R. piriformis.") == ([("piriformis", ("r",))], [])
    assert read("Rt. SCM;") == ([("scm", ("rt",))], [])
    assert read("lev. scap.") == ([("lev scap", ())], [])
    assert read('"trapezius"!') == ([("trapezius", ())], [])


def test_parenthesised_qualifiers(read):
    assert read("trapezius (upper)") == ([("upper trapezius", ())], [])
    assert read("SCM (R)") == ([("scm", ("r",))], [])
    assert read("gluteus medius (left), piriformis (right)") == (
        [("gluteus medius", ("left",)), ("piriformis", ("right",))], [])


def test_plurals(read):
    assert read("bilateral trapezius muscles") == ([("trapezius", ("bilateral",))], [])
    assert read("bilateral SCMs") == ([("scm", ("bilateral",))], [])
    assert read("lumbar multifidi") == ([("lumbar multifidus", ())], [])
    assert read("splenii") == ([("splenii", ())], [])
    assert read("upper traps") == ([("upper trap", ())], [])
    assert read("bilat QLs") == ([("ql", ("bilat",))], [])
    assert read("bilat SCM's") == ([("scm", ("bilat",))], [])


def test_ampersand_and_and(read):
    assert read("right & left SCM") == ([("scm", ("right",)), ("scm", ("left",))], [])
    assert read("trapezius and levator scapulae") == ([("trapezius", ()), ("levator scapulae", ())], [])


@pytest.mark.parametrize("written, side", [
    ("R", "r"), ("Rt", "rt"), ("Rt.", "rt"), ("right-sided", "right sided"), ("B/L", "b/l"), ("bilat", "bilat"),
    ("BL", "bl"), ("LT", "lt"), ("L.", "l"), ("left side", "left side"), ("both sides", "both sides"),
])
def test_side_words_before_the_name(read, written, side):
    assert read(f"{written} trapezius") == ([("trapezius", (side,))], [])


def test_the_end_of_a_sentence_or_a_line_ends_a_list(read):
    assert read("Right: UT, LS. Left: LS") == ([("ut", ("right",)), ("ls", ("right",)), ("ls", ("left",))], [])
    assert read("UT R. LS L. QL R.") == ([("ut", ("r",)), ("ls", ("l",)), ("ql", ("r",))], [])
    assert read("R upper trapezius\nL levator scapulae") == (
        [("upper trapezius", ("r",)), ("levator scapulae", ("l",))], [])


def test_a_full_stop_of_an_abbreviation_ends_nothing(read):
    assert read("R. Piriformis.") == ([("piriformis", ("r",))], [])
    assert read("Lev. Scap. R") == ([("lev scap", ("r",))], [])
    assert read("Glut. Med. L") == ([("glut med", ("l",))], [])


def test_side_words_after_the_name(read):
    assert read("trapezius bilaterally") == ([("trapezius", ("bilaterally",))], [])
    assert read("glute med lt") == ([("glute med", ("lt",))], [])
    assert read("trapezius, R>L") == ([("trapezius", ("r>l",))], [])
    assert read("UT R>>L") == ([("ut", ("r>>l",))], [])
    assert read("UT R\u2265L") == ([("ut", ("r>l",))], [])


def test_both_sides_written_as_two_side_words(read):
    for text in ("R/L trapezius", "R & L trapezius", "R and L trapezius", "right and left trapezius"):
        mentions, unread = read(text)
        assert [(term, sides[0][0]) for term, sides in mentions] == [("trapezius", "r"), ("trapezius", "l")], text
        assert not unread, text
    assert read("right trapezius and left") == ([("trapezius", ("right",)), ("trapezius", ("left",))], [])


def test_a_pair_of_side_words_governs_every_name_it_reaches(read):
    both = [("ut", ("r",)), ("ut", ("l",)), ("levator scapulae", ("r",)), ("levator scapulae", ("l",))]
    assert read("R/L UT, levator scapulae") == (both, [])
    assert read("UT, levator scapulae R/L") == (both, [])
    assert read("R & L SCM, scalenes") == (
        [("scm", ("r",)), ("scm", ("l",)), ("scalenes", ("r",)), ("scalenes", ("l",))], [])


def test_two_different_side_words_on_one_name_are_both_kept(read):
    # the KB reports the conflict; a side is never guessed
    assert read("R trapezius L") == ([("trapezius", ("r", "l"))], [])
    # a side word of the item's own outweighs one carried from an earlier item
    assert read("R trapezius, levator scapulae, L") == ([("trapezius", ("r",)), ("levator scapulae", ("l",))], [])


def test_levels_are_kept_apart_from_the_name(read):
    assert read("lumbar paraspinals L3-L5") == ([("lumbar paraspinals", ())], [])
    assert read("cervical multifidus C3-C6 bilaterally") == ([("cervical multifidus", ("bilaterally",))], [])
    assert read("multifidus L4/5") == ([("multifidus", ())], [])
    assert read("R QL at L2-3") == ([("ql", ("r",))], [])
    assert read("R multifidus L 4-5") == ([("multifidus", ("r",))], [])
    assert read("R QL, L 3 level") == ([("ql", ("r",))], [])
    assert read("R trapezius, L 2 TPs") == ([("trapezius", ("r",)), ("trapezius", ("l",))], [])


def test_counts_and_trigger_point_words_are_passed_over(read):
    assert read("trapezius x3 trigger points") == ([("trapezius", ())], [])
    assert read("3 TrPs in R levator scapulae") == ([("levator scapulae", ("r",))], [])


# --- several muscles in one text (item 3)

def test_a_shared_name_ellipsed(read):
    assert read("upper and middle trapezius") == ([("upper trapezius", ()), ("middle trapezius", ())], [])
    assert read("rhomboid major and minor") == ([("rhomboid major", ()), ("rhomboid minor", ())], [])
    assert read("bilateral splenius capitis and cervicis") == (
        [("splenius capitis", ("bilateral",)), ("splenius cervicis", ("bilateral",))], [])
    assert read("adductor longus and brevis") == ([("adductor longus", ()), ("adductor brevis", ())], [])


def test_each_side_word_governs_its_own_names(read):
    assert read("R levator scapulae, L trapezius") == (
        [("levator scapulae", ("r",)), ("trapezius", ("l",))], [])
    assert read("left trapezius, levator scapulae; right SCM") == (
        [("trapezius", ("left",)), ("levator scapulae", ("left",)), ("scm", ("right",))], [])
    assert read("trapezius, levator scapulae, bilateral") == (
        [("trapezius", ("bilateral",)), ("levator scapulae", ("bilateral",))], [])


def test_a_side_word_after_a_parenthesised_list_governs_it(read):
    assert read("scalenes (anterior, middle) right") == (
        [("anterior scalene", ("right",)), ("middle scalene", ("right",))], [])
    assert read("infraspinatus, teres minor and major, R") == (
        [("infraspinatus", ("r",)), ("teres minor", ("r",)), ("teres major", ("r",))], [])


def test_a_neighbour_lends_its_name_only_to_an_item_without_one(read):
    assert read("R tibialis anterior, posterior calf") == (
        [("tibialis anterior", ("r",)), ("calf", ("r",))], ["posterior"])


def test_two_muscles_without_a_joiner(read):
    assert read("psoas major iliacus") == ([("psoas major", ()), ("iliacus", ())], [])


def test_what_is_left_over_is_kept(read):
    assert read("right trapezius and zzz") == ([("trapezius", ("right",))], ["zzz"])
    assert read("trapezius myofascial") == ([("trapezius", ())], ["myofascial"])


def test_a_misspelt_longer_name_is_left_over_whole(read):
    # "levator" begins "levator scapulae": "levator scapuale" is one misspelt name, not
    # the ambiguous "levator" and a stray word
    assert read("levator scapuale") == ([], ["levator scapuale"])
    assert read("R gluteus medeus") == ([], ["gluteus medeus"])


def test_side_word_alone_is_left_over(read):
    assert read("bilateral") == ([], ["bilateral"])


# --- abbreviations and ambiguity (item 4)

@pytest.mark.parametrize("written, term", [
    ("ES", "es"), ("LS", "ls"), ("lev", "lev"), ("lev scap", "lev scap"), ("pec", "pec"), ("glute", "glute"),
    ("LD", "ld"), ("SA", "sa"), ("semi cap", "semi cap"), ("splenii", "splenii"), ("suboccipital", "suboccipital"),
    ("levator", "levator"), ("lat", "lat"), ("quadratus", "quadratus"), ("serratus", "serratus"), ("pecs", "pecs"),
    ("supra", "supra"), ("infra", "infra"), ("VMO", "vmo"), ("TFL", "tfl"),
])
def test_abbreviations_are_lexicon_terms(read, written, term):
    assert read(f"R {written}") == ([(term, ("r",))], [])


def test_a_side_abbreviation_is_never_a_muscle(read):
    assert read("LT") == ([], ["lt"])
    assert read("LT upper trap") == ([("upper trap", ("lt",))], [])
