"""The pipeline end to end for Python callers: find and load the KB, code a batch of
encounters in one solve, explain an encounter of it. (Streams of records, in batches and
on several cores: bridge/stream.py.)

    from bridge.api import load_kb, code
    kb = load_kb()
    outcomes = code(kb, [encounter, ...])          # typed bridge.outcome.Outcome objects
"""

from __future__ import annotations

import gc
import os
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from . import engine
from .explain import Graph, GraphBuilder
from .facts import batch_facts, check_inputs, encounter_facts
from .kb import KB
from .model import Encounter
from .outcome import Answer, Outcome
from .terms import Atom


def default_kb_path() -> Path:
    """TPKB_KB if set; else the KB inside the installed package; else kb/ of a checkout."""
    env = os.environ.get("TPKB_KB")
    if env:
        return Path(env)
    here = Path(__file__).resolve().parent
    packaged = here / "kb"
    return packaged if (packaged / "main.lp").is_file() else here.parent / "kb"


def load_kb(path: Path | str | None = None, cache: bool = True) -> KB:
    """Load (or take from the cache) the KB, and check the input mapping against it."""
    kb = KB.load(Path(path) if path is not None else default_kb_path(), cache)
    problems = check_inputs(kb.inputs)
    if problems:
        raise engine.KBError(problems)
    return kb


@contextmanager
def paused_gc() -> Iterator[None]:
    """Python's cyclic garbage collector paused while a batch is coded.

    A batch builds hundreds of thousands of small objects (facts, atoms, outcomes), none
    of them in a reference cycle, so reference counting frees them all; with the collector
    running, it would rescan the growing heap again and again (a third of a 10,000-encounter
    run). It runs again, and collects anything left, once the batch is done."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def strings_in_play(facts: Iterable[Atom]) -> set:
    """The strings a batch's facts hold: what decides which keyed table rows it needs."""
    play: set = set()
    for atom in facts:
        play.update(atom[2:])  # numbers and constants too: they match no table key
    return play


def solve_batch(kb: KB, encounters: Sequence[Encounter], *, mode: str = "full", all_rows: bool = False,
                scopes: Sequence[object] | None = None) -> Answer:
    """One ground-and-solve for the whole batch; encounter i (from 1) has key i. Patients
    are told apart within a scope (bridge/facts.py day_facts)."""
    facts, rows = batch_input(kb, encounters, all_rows=all_rows, scopes=scopes)
    answer = Answer.of(kb, engine.solve(kb.program(mode), facts, rows), mode)
    answer.names = [enc.id for enc in encounters]
    return answer


def batch_input(kb: KB, encounters: Sequence[Encounter], *, all_rows: bool = False,
                scopes: Sequence[object] | None = None) -> tuple[list[Atom], list[Atom]]:
    """A batch's facts (encounter i has key i) and the table rows it can use."""
    facts = batch_facts(encounters, kb.reader(), scopes)
    rows = list(kb.tables.all_rows()) if all_rows else kb.tables.for_batch(strings_in_play(facts))
    return facts, rows


def code(kb: KB, encounters: Sequence[Encounter], *, explain: bool = False) -> list[Outcome]:
    """Outcomes for a batch. Without explain only the message rules are instrumented."""
    answer = solve_batch(kb, encounters, mode="full" if explain else "messages")
    return [answer.outcome(key, enc) for key, enc in enumerate(encounters, start=1)]


def explain(kb: KB, answer: Answer, key: int, enc: Encounter, outcome: Outcome) -> Graph:
    """The explanation graph of one encounter of a fully instrumented solve."""
    facts = encounter_facts(key, enc, kb.reader())
    return GraphBuilder(kb, answer, key, facts).build(outcome, key)
