"""bridge/engine.py and the instrumented KB: instrumenting changes no conclusion, every
billed line gets a verdict with reasons, exactly one answer set, and only the engine
talks to clingo."""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from bridge import engine
from bridge.api import batch_input, solve_batch, strings_in_play
from bridge.engine import SolveError
from bridge.facts import batch_facts
from bridge.kb import KB
from bridge.load import read_paths
from bridge.model import Encounter
from bridge.outcome import Answer

ROOT = Path(__file__).resolve().parent.parent
PUBLIC = {"line", "line_modifier", "finding", "not_covered", "verdict", "reject_reason"}


@pytest.fixture(scope="module")
def library(kb: KB, tmp_path_factory: pytest.TempPathFactory) -> list[Encounter]:
    """The case library, the sample file and 400 random encounters."""
    sample = tmp_path_factory.mktemp("random") / "random.jsonl"
    with sample.open("w") as out:
        subprocess.run([sys.executable, str(ROOT / "bench" / "generate.py"), "400", "7"], stdout=out, check=True)
    records = list(read_paths([ROOT / "cases", ROOT / "tests" / "data" / "sample.jsonl", sample], kb.profiles()))
    encounters = [r.encounter for r in records if r.encounter is not None]
    assert len(encounters) > 700 and all(r.ok for r in records)
    return encounters


def public(atoms) -> set:
    return {a for a in atoms if a[0] in PUBLIC}


def test_instrumented_kb_concludes_exactly_what_the_plain_kb_concludes(kb: KB, library) -> None:
    facts = batch_facts(library, kb.reader())
    rows = kb.tables.for_batch(strings_in_play(facts))
    plain = engine.solve(kb.program("plain"), facts, rows)
    full = solve_batch(kb, library, mode="full")
    derived = {f.head() for firings in full.firings.values() for f in firings}
    assert public(plain) == public(derived)
    assert {a[0] for a in plain} <= PUBLIC
    messages = engine.solve(kb.program("messages"), facts, rows)
    assert public(messages) <= public(plain)


def test_message_mode_outcomes_equal_full_mode_outcomes(kb: KB, library) -> None:
    full = solve_batch(kb, library, mode="full")
    messages = solve_batch(kb, library, mode="messages")
    for key, enc in enumerate(library, start=1):
        expected = full.outcome(key, enc)
        expected.fired = None
        assert messages.outcome(key, enc) == expected, enc.id


def test_outcomes_do_not_depend_on_the_order_of_the_answer_set(kb: KB, library) -> None:
    shown = engine.solve(kb.program("messages"), *batch_input(kb, library))
    forward, backward = Answer.of(kb, shown, "messages"), Answer.of(kb, shown[::-1], "messages")
    for key, enc in enumerate(library, start=1):
        assert forward.outcome(key, enc) == backward.outcome(key, enc), enc.id


def test_every_billed_line_has_a_verdict_and_every_rejection_a_reason(kb: KB, library) -> None:
    answer = solve_batch(kb, library, mode="messages")
    rejected = 0
    for key, enc in enumerate(library, start=1):
        out = answer.outcome(key, enc)
        assert len(out.billed or []) == len(enc.billed or [])
        for b in out.billed or []:
            if b.verdict == "reject":
                rejected += 1
                assert b.reasons, (enc.id, b)
                assert b.reasons == sorted(b.reasons, key=lambda r: (r.id, r.message))
    assert rejected > 100


def test_a_missing_verdict_is_a_kb_error(kb: KB, library) -> None:
    enc = next(e for e in library if e.billed)
    answer = solve_batch(kb, [enc], mode="messages")
    answer.atoms[1] = [a for a in answer.atoms[1] if a[0] != "verdict"]
    with pytest.raises(engine.KBError, match="no verdict for billed line 1"):
        answer.outcome(1, enc)


@pytest.mark.parametrize("extra,message", [
    (":- encounter(E).", "no answer set"),
    ("{ extra }.", "more than one answer set"),
])
def test_exactly_one_answer_set_is_insisted_on(kb: KB, library, extra: str, message: str) -> None:
    program = kb.program("plain")
    broken = replace(program, text=program.text + extra + "\n", origins=(*program.origins, ("test", 1)))
    facts = batch_facts(library[:3], kb.reader())
    with pytest.raises(SolveError, match=message):
        engine.solve(broken, facts, kb.tables.for_batch(strings_in_play(facts)))


def test_only_the_engine_imports_clingo() -> None:
    pattern = re.compile(r"^\s*(import clingo|from clingo)", re.M)
    importers = sorted(str(p.relative_to(ROOT)) for folder in ("bridge", "tools", "bench")
                       for p in (ROOT / folder).rglob("*.py") if pattern.search(p.read_text()))
    assert importers == ["bridge/engine.py"]


def test_user_text_reaches_clingo_as_a_string_symbol(kb: KB) -> None:
    hostile = 'trapezius"). line(E,"20553",1) :- encounter(E). %'
    text = engine.fact_text(("procedure", 1, 1, hostile))
    assert text == 'procedure(1,1,"trapezius\\"). line(E,\\"20553\\",1) :- encounter(E). %").'
