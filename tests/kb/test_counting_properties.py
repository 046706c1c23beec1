"""Counting muscles (kb/rules/counting.lp), as properties over random documentation:

- the count is the fewest muscles (a muscle on one side) that account for every muscle,
  side and group documented, never more (a brute-force count over the same mentions);
- documenting one more muscle never lowers the count.
"""

from __future__ import annotations

from itertools import combinations

from helpers import encounters
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bridge.api import solve_batch
from bridge.kb import KB

GROUPS = {"rotator cuff": ["supraspinatus", "infraspinatus", "teres_minor", "subscapularis"],
          "rhomboids": ["rhomboid_major", "rhomboid_minor"]}
# "teres" (teres major and minor) overlaps the rotator cuff through teres minor.
OVERLAPPING = {**GROUPS, "teres": ["teres_major", "teres_minor"]}
# "medial hamstrings" is part of "hamstrings": a subgroup stands for the larger group.
NESTED = {"hamstrings": ["biceps_femoris", "semimembranosus", "semitendinosus"],
          "medial hamstrings": ["semimembranosus", "semitendinosus"]}
MUSCLES = ["supraspinatus", "infraspinatus", "teres_minor", "subscapularis", "rhomboid_major", "rhomboid_minor",
           "deltoid", "teres_major", "biceps_femoris", "semimembranosus", "semitendinosus"]
SIDES = [None, "left", "right", "bilateral"]


def mention(groups: dict[str, list[str]]) -> st.SearchStrategy:
    names = list(groups) + [m for m in MUSCLES if any(m in ms for ms in groups.values()) or m == "deltoid"]
    return st.tuples(st.sampled_from(names), st.sampled_from(SIDES))


def injected_count(kb: KB, docs: list[list[tuple[str, str | None]]]) -> list[int]:
    """The KB's count of injected muscles for each documentation, in one solve."""
    encs = encounters(kb, *({"procedures": [{"muscle": name.replace("_", " "), "injectate": ["lidocaine"],
                                             **({"side": side} if side else {})} for name, side in doc]}
                            for doc in docs))
    answer = solve_batch(kb, encs, mode="full")
    counts = []
    for key in range(1, len(docs) + 1):
        firing = next(f for f in answer.firings[key] if f.rule.id == "count_injected")
        counts.append(firing.values[firing.rule.variables.index("N")])
    return counts


def fewest(doc: list[tuple[str, str | None]], groups: dict[str, list[str]]) -> int:
    """Brute force: the smallest set of (muscle, side) units that meets every mention."""
    needs: list[set] = []
    for name, side in doc:
        members = groups.get(name, [name])
        sides = ["left", "right"] if side in (None, "bilateral") else [side]
        if side == "bilateral":
            needs += [{(m, s) for m in members} for s in sides]
        else:
            needs.append({(m, s) for m in members for s in sides})
    units = sorted(set().union(*needs)) if needs else []
    for size in range(len(units) + 1):
        for chosen in combinations(units, size):
            picked = set(chosen)
            if all(need & picked for need in needs):
                return size
    raise AssertionError("unreachable")


@settings(max_examples=80, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(mention(GROUPS), min_size=1, max_size=5))
def test_the_count_is_the_fewest_muscles_that_account_for_the_documentation(kb: KB, doc: list) -> None:
    assert injected_count(kb, [doc]) == [fewest(doc, GROUPS)]


@settings(max_examples=80, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(mention(OVERLAPPING), min_size=1, max_size=5), mention(OVERLAPPING))
def test_one_more_muscle_never_lowers_the_count(kb: KB, doc: list, more: tuple) -> None:
    before, after = injected_count(kb, [doc, [*doc, more]])
    assert after >= before


@settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(mention(NESTED), min_size=1, max_size=5))
def test_with_a_subgroup_the_count_is_still_the_fewest(kb: KB, doc: list) -> None:
    assert injected_count(kb, [doc]) == [fewest(doc, NESTED)]


@pytest.mark.parametrize("doc,count", [
    ([("erector spinae", "bilateral"), ("longissimus", "bilateral")], 2),
    ([("erector spinae", "left"), ("longissimus", "right")], 2),
    ([("hamstrings", "left"), ("medial hamstrings", "left"), ("semitendinosus", "left")], 1),
])
def test_a_subgroup_stands_for_its_group(kb: KB, doc: list, count: int) -> None:
    assert injected_count(kb, [doc]) == [count]


@pytest.mark.parametrize("doc,more", [
    ([("rotator cuff", None), ("teres", None)], ("teres_minor", None)),  # found by the property above
    ([("rotator cuff", "left"), ("teres", "left")], ("teres_minor", "left")),
])
def test_overlapping_groups_count_as_the_fewest_muscles(kb: KB, doc: list, more: tuple) -> None:
    before, after = injected_count(kb, [doc, [*doc, more]])
    assert before == fewest(doc, OVERLAPPING) == 1 and after == fewest([*doc, more], OVERLAPPING) == 1


@settings(max_examples=80, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(mention(OVERLAPPING), min_size=1, max_size=5))
def test_with_overlapping_groups_the_count_is_the_fewest(kb: KB, doc: list) -> None:
    assert injected_count(kb, [doc]) == [fewest(doc, OVERLAPPING)]


def test_an_unsided_member_stands_for_its_group_on_one_side_only(kb: KB) -> None:
    # issue 6: "rotator cuff, bilateral" + "left deltoid" is 3; adding "teres minor" leaves it 3.
    base: list[tuple[str, str | None]] = [("rotator cuff", "bilateral"), ("deltoid", "left")]
    assert injected_count(kb, [base, [*base, ("teres_minor", None)]]) == [3, 3]
