"""Shared fixtures: the KB (loaded once), and helpers that code one encounter written as
a Python dict in the case format, or solve raw facts and read what the rules derived."""

from __future__ import annotations

import pytest

from bridge.api import code, default_kb_path, solve_batch
from bridge.engine import KB
from helpers import encounters


@pytest.fixture(scope="session")
def kb() -> KB:
    return KB.load(default_kb_path())


@pytest.fixture
def code_one(kb):
    """Code one encounter (case-format dict; date defaults to 2025-06-02) with explanations."""

    def run(**doc) -> dict:
        return code(kb, encounters(kb, doc), explain=False)[0] | {"_fired": fired(kb, doc)}

    return run


def fired(kb: KB, doc: dict) -> set[str]:
    answer = solve_batch(kb, encounters(kb, doc), mode="full")
    return answer.fired_anywhere()


@pytest.fixture
def derived(kb):
    """Every atom of predicate `name` the rules derived for one encounter, sorted as text."""

    def run(name: str, **doc) -> list[str]:
        answer = solve_batch(kb, encounters(kb, doc), mode="full")
        heads = {head for entries in answer.firings.values() for _, head, _ in entries}
        return sorted(str(h) for h in heads if h.name == name)

    return run
