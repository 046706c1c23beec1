"""kb/lexicon/muscles.yaml: the muscle lexicon is complete, sourced and unambiguous, and
kb/reference/muscles.lp is generated from it (issue 6, item 1)."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from bridge.reading import term_key
from tools.build_reference import LEXICON, Lexicon, build_muscles, read_lexicon

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def data() -> dict:
    return read_lexicon(LEXICON)


def problems(data: dict) -> list[str]:
    return Lexicon(data).problems


def test_the_lexicon_has_no_problems(data):
    assert problems(data) == []


def test_the_generated_facts_are_up_to_date(data):
    generated = build_muscles(Lexicon(data))
    assert (ROOT / "kb" / "reference" / "muscles.lp").read_text() == generated, (
        "kb/reference/muscles.lp is stale: run python tools/build_reference.py")


def test_every_region_has_its_muscles_and_every_muscle_a_source(data):
    muscles = data["muscles"]
    assert len(muscles) >= 150
    regions = {m["region"] for m in muscles}
    assert regions == {"head_jaw", "neck", "shoulder_girdle", "arm", "forearm_hand", "chest_wall", "abdominal_wall",
                       "back", "pelvis_hip", "thigh", "leg_foot"}
    assert all(m.get("source") for m in muscles)
    assert sum(1 for m in muscles if m.get("fma") or m.get("snomed")) >= 100


@pytest.mark.parametrize("name", [
    "medial pterygoid", "digastric", "platysma", "longus colli", "longissimus cervicis", "biceps brachii",
    "triceps brachii", "coracobrachialis", "extensor digitorum", "tibialis anterior", "tibialis posterior",
    "peroneus longus", "rectus femoris", "vastus medialis", "biceps femoris", "semitendinosus", "adductor longus",
    "external oblique", "rectus abdominis", "serratus posterior inferior", "psoas major", "psoas minor", "iliacus",
    "anterior scalene", "middle scalene", "posterior scalene", "obliquus capitis inferior",
    "obliquus capitis superior", "rectus capitis posterior major", "rectus capitis posterior minor",
    "semimembranosus", "vastus lateralis", "vastus intermedius", "supraspinatus", "infraspinatus", "teres minor",
    "subscapularis", "extensor carpi radialis brevis", "extensor carpi ulnaris", "flexor carpi radialis",
    "flexor digitorum superficialis",
])
def test_each_distinct_muscle_has_its_own_entry(data, name):
    lex = Lexicon(data)
    kind, target = lex.meaning(term_key(name))
    assert kind == "name" and target in lex.muscle_ids


@pytest.mark.parametrize("group, members", [
    ("hamstrings", 3), ("quadriceps", 4), ("rotator_cuff", 4), ("erector_spinae", 8), ("scalenes", 3),
    ("suboccipitals", 4), ("adductors", 3), ("glutes", 3), ("calf", 2), ("obliques", 2), ("splenii", 2), ("pecs", 2),
    ("iliopsoas", 2),
])
def test_the_groups_of_the_issue(data, group, members):
    assert len(Lexicon(data).members[group]) == members


def test_an_entry_without_a_source_is_a_problem(data):
    bad = copy.deepcopy(data)
    del bad["muscles"][0]["source"]
    bad["muscles"][1]["source"] = ["nowhere"]
    found = problems(bad)
    assert any("no source" in p for p in found)
    assert any("unknown source 'nowhere'" in p for p in found)


def test_an_id_used_twice_is_a_problem(data):
    bad = copy.deepcopy(data)
    bad["muscles"].append({**bad["muscles"][0], "names": []})
    assert any("used twice" in p for p in problems(bad))


def test_a_name_of_two_muscles_is_a_problem_unless_declared_ambiguous(data):
    bad = copy.deepcopy(data)
    bad["muscles"][0].setdefault("names", []).append("SCM")
    assert any("'scm' means" in p for p in problems(bad))
    bad["ambiguous"].append({"names": ["scm"], "candidates": [bad["muscles"][0]["id"], "sternocleidomastoid"],
                             "source": ["kb"]})
    # declared ambiguous, it must then be taken off the muscles
    assert any("'scm' is declared ambiguous" in p for p in problems(bad))


def test_a_group_member_that_does_not_exist_is_a_problem(data):
    bad = copy.deepcopy(data)
    bad["muscles"][0]["groups"] = ["no_such_group"]
    bad["ambiguous"][0]["candidates"].append("no_such_muscle")
    found = problems(bad)
    assert any("unknown group 'no_such_group'" in p for p in found)
    assert any("unknown candidate 'no_such_muscle'" in p for p in found)


def test_a_side_word_never_names_a_muscle(data):
    bad = copy.deepcopy(data)
    bad["muscles"][0].setdefault("names", []).append("LT")
    assert any("'lt' is a side word" in p for p in problems(bad))
