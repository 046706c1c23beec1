"""Shared fixtures: the KB (loaded once), a copy of the KB folder to edit, and helpers that
code one encounter written as a Python dict in the case format, or solve it and read what
the rules derived."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import encounters

from bridge.api import default_kb_path, load_kb, solve_batch
from bridge.kb import KB
from bridge.outcome import Outcome
from bridge.terms import atom_text


@pytest.fixture(scope="session")
def kb() -> KB:
    return load_kb()


@pytest.fixture
def kb_copy(tmp_path: Path) -> Path:
    """A copy of the shipped KB folder, to edit."""
    dest = tmp_path / "kb"
    shutil.copytree(default_kb_path(), dest)
    return dest


@pytest.fixture
def code_one(kb: KB) -> Callable[..., Outcome]:
    """Code one encounter (case-format keywords; date defaults to 2025-06-02), every rule
    instrumented: the outcome's `fired` lists the rule ids that fired."""

    def run(**doc: object) -> Outcome:
        enc = encounters(kb, doc)[0]
        return solve_batch(kb, [enc], mode="full").outcome(1, enc)

    return run


@pytest.fixture
def derived(kb: KB) -> Callable[..., list[str]]:
    """Every atom of predicate `name` the rules derived for one encounter (key 1), as text."""

    def run(name: str, **doc: object) -> list[str]:
        answer = solve_batch(kb, encounters(kb, doc), mode="full")
        heads = {f.head() for f in answer.firings.get(1, ())}
        return sorted(atom_text(h) for h in heads if h[0] == name)

    return run
