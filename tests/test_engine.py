"""bridge/engine.py: instrumenting changes no conclusion; an analyst's mistake in a rule
file is reported with the .lp file and line; clingo warnings are failures."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bridge.api import default_kb_path, solve_batch
from bridge.engine import FIRED, KB, KBError, SolveError
from bridge.facts import batch_facts
from bridge.load import load_paths

ROOT = Path(__file__).resolve().parent.parent
PUBLIC = {"line", "line_modifier", "finding", "verdict", "reject_reason"}


@pytest.fixture(scope="module")
def library(kb):
    loaded = load_paths([ROOT / "cases", ROOT / "tests" / "data" / "sample.jsonl"], kb.profiles())
    encounters = loaded.encounters + [c.encounter for c in loaded.cases]
    assert len(encounters) > 300
    return encounters


def public(symbols) -> set[str]:
    return {str(s) for s in symbols if s.name in PUBLIC}


def test_instrumented_kb_concludes_exactly_what_the_plain_kb_concludes(kb, library):
    facts = batch_facts(library, kb.side_words())
    plain = kb.solve(facts, mode="plain")
    full = kb.solve(facts, mode="full")
    assert public(plain) == public(full)
    assert {s.name for s in plain} <= PUBLIC
    assert any(s.name == FIRED for s in full)


def test_message_mode_outcomes_equal_full_mode_outcomes(kb, library):
    full = solve_batch(kb, library, mode="full")
    messages = solve_batch(kb, library, mode="messages")
    for enc in library:
        expected = full.outcome(enc)
        expected.pop("fired")
        assert messages.outcome(enc) == expected, enc.id


def test_every_rejected_line_has_a_reason(kb, library):
    answer = solve_batch(kb, library, mode="messages")
    checked = 0
    for enc in library:
        for b in answer.outcome(enc).get("billed", []):
            if b["verdict"] == "reject":
                checked += 1
                assert b["reason_details"], (enc.id, b)
    assert checked > 100


def test_every_conclusion_has_a_firing(kb, library):
    answer = solve_batch(kb, library, mode="full")
    heads = {str(h) for entries in answer.firings.values() for _, h, _ in entries}
    plain = kb.solve(batch_facts(library, kb.side_words()), mode="plain")
    assert public(plain) <= heads


# ---------------------------------------------------------------- analyst mistakes
@pytest.fixture
def kb_copy(tmp_path) -> Path:
    dest = tmp_path / "kb"
    shutil.copytree(default_kb_path(), dest)
    return dest


def edit(path: Path, old: str, new: str) -> int:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    return text[: text.index(old)].count("\n") + 1


def solve_one(kb: KB):
    loaded = load_paths([ROOT / "examples" / "encounter.yaml"], kb.profiles())
    return solve_batch(kb, loaded.encounters)


def test_syntax_error_names_file_and_line(kb_copy):
    line = edit(kb_copy / "rules" / "codes.lp", 'calls_for(E, "20553") :-', 'calls_for(E, "20553") :- :-')
    with pytest.raises(KBError) as err:
        KB.load(kb_copy)
    assert f"kb/rules/codes.lp:{line}" in str(err.value)
    assert "syntax error" in str(err.value)


def test_misspelt_body_predicate_is_a_clingo_warning_and_an_error(kb_copy):
    line = edit(kb_copy / "rules" / "codes.lp", "injected_count(E, N), N >= 3", "injected_cuont(E, N), N >= 3")
    kb = KB.load(kb_copy)
    with pytest.raises(KBError) as err:
        solve_one(kb)
    assert f"kb/rules/codes.lp:{line}" in str(err.value)
    assert "injected_cuont" in str(err.value)


def test_misspelt_head_predicate_is_reported(kb_copy):
    line = edit(kb_copy / "rules" / "codes.lp", 'calls_for(E, "20553") :-', 'calls_fro(E, "20553") :-')
    with pytest.raises(KBError) as err:
        KB.load(kb_copy)
    assert f"kb/rules/codes.lp:{line}" in str(err.value) and "calls_fro/2" in str(err.value)


def test_rule_without_annotation_is_reported(kb_copy):
    path = kb_copy / "rules" / "codes.lp"
    path.write_text(path.read_text() + '\ncalls_for(E, "20552") :- injected_count(E, 9).\n')
    with pytest.raises(KBError) as err:
        KB.load(kb_copy)
    assert "kb/rules/codes.lp" in str(err.value) and "no %@ rule/label/source annotation" in str(err.value)


def test_head_that_loses_the_encounter_id_is_reported(kb_copy):
    edit(kb_copy / "rules" / "audit.lp", "billed_pair(E, A, B) :- billed_code", "billed_pair(A, B) :- billed_code")
    with pytest.raises(KBError) as err:
        KB.load(kb_copy)
    assert "loses the encounter id" in str(err.value)


def test_label_naming_an_unknown_variable_is_reported(kb_copy):
    edit(kb_copy / "rules" / "codes.lp", "%@ label: {N} muscles injected (3 or more)", "%@ label: {Count} muscles injected")
    with pytest.raises(KBError) as err:
        KB.load(kb_copy)
    assert "{Count}" in str(err.value)


@pytest.mark.parametrize("old,new,where", [
    ('calls_for(E, "20553") :-', 'calls_for(E, "20553") :- :-', "kb/rules/codes.lp:"),
    ("injected_count(E, N), N >= 3", "injected_cuont(E, N), N >= 3", "kb/rules/codes.lp:"),
])
def test_cli_kb_error_exit_2_no_traceback(kb_copy, old, new, where):
    edit(kb_copy / "rules" / "codes.lp", old, new)
    proc = subprocess.run(
        [sys.executable, "-m", "bridge", "--kb", str(kb_copy), "code", str(ROOT / "examples" / "encounter.yaml"),
         "--format", "json"],
        capture_output=True, text=True, cwd=ROOT,
    )
    assert proc.returncode == 2, proc.stderr
    assert where in proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stdout == ""


def test_warnings_fail_even_when_data_triggers_them(kb_copy):
    # An arithmetic slip clingo only warns about while grounding ("operation undefined").
    edit(kb_copy / "rules" / "codes.lp", "injected_count(E, N), N >= 3.", 'injected_count(E, N), N + "x" >= 3.')
    kb = KB.load(kb_copy)
    with pytest.raises(KBError) as err:
        solve_one(kb)
    assert "kb/rules/codes.lp" in str(err.value) and "undefined" in str(err.value)


@pytest.mark.parametrize("program,message", [
    (":- encounter(E).", "no answer set"),
    ("{ extra }.", "more than one answer set"),
])
def test_exactly_one_answer_set_is_insisted_on(kb, program, message):
    import dataclasses

    from clingo import ast

    extra: list = []
    ast.parse_string(program, extra.append)
    broken = dataclasses.replace(kb, plain=kb.plain + extra)
    facts = batch_facts(load_paths([ROOT / "examples" / "encounter.yaml"], kb.profiles()).encounters, kb.side_words())
    with pytest.raises(SolveError, match=message):
        broken.solve(facts, mode="plain")


def test_constraint_or_choice_in_a_rule_file_is_refused(kb_copy):
    path = kb_copy / "rules" / "codes.lp"
    path.write_text(path.read_text() + "\n%@ rule: no_tpi\n%@ label: x\n%@ source: y\n:- calls_for(E, _).\n")
    with pytest.raises(KBError, match="head must be a single atom"):
        KB.load(kb_copy)


def test_doc_naming_an_unknown_argument_is_reported(kb_copy):
    edit(kb_copy / "schema.lp", "%*! side(E, P, Side): the side field of procedure {P} is {Side}.",
         "%*! side(E, P, Side): the side field of procedure {Q} is {Side}.")
    with pytest.raises(KBError, match=r"kb/schema.lp:\d+: %\*! side: \{Q\} is not an argument"):
        KB.load(kb_copy)


def test_every_input_and_negated_predicate_is_documented(kb):
    from bridge.facts import INPUTS

    assert all((name, arity) in kb.docs for name, arity in INPUTS.items())
    negated = {(item.term.name, len(item.term.arguments)) for rule in kb.rules.values()
               for item in rule.body if item.kind == "atom" and item.negated}
    assert negated and negated <= set(kb.docs), negated - set(kb.docs)
