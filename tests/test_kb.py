"""bridge/kb.py and bridge/rules.py: an analyst's mistake in a KB file is refused at load
time with the .lp file and line; the compiled KB is cached and the cache follows every
edit."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import edit, encounters, inj

from bridge.api import default_kb_path, load_kb, solve_batch
from bridge.engine import KBError
from bridge.kb import KB, compile_kb

ROOT = Path(__file__).resolve().parent.parent


def refused(kb_dir: Path) -> str:
    with pytest.raises(KBError) as err:
        compile_kb(kb_dir.resolve())
    return str(err.value)


def test_the_shipped_kb_compiles(kb: KB) -> None:
    assert len(kb.rules) > 100
    assert {("line", 3), ("finding", 3), ("verdict", 3)} <= kb.public
    assert ("procedure", 3) in kb.inputs


def test_syntax_error_names_file_and_line(kb_copy: Path) -> None:
    line = edit(kb_copy / "rules" / "codes.lp", 'calls_for(E, "20553") :-', 'calls_for(E, "20553") :- :-')
    message = refused(kb_copy)
    assert f"kb/rules/codes.lp:{line}" in message and "syntax error" in message


def test_misspelt_body_predicate_is_refused_at_load(kb_copy: Path) -> None:
    line = edit(kb_copy / "rules" / "codes.lp", "injected_count(E, N), N >= 3", "injected_cuont(E, N), N >= 3")
    message = refused(kb_copy)
    assert f"kb/rules/codes.lp:{line}" in message and "injected_cuont/2" in message


def test_misspelt_head_predicate_is_refused(kb_copy: Path) -> None:
    line = edit(kb_copy / "rules" / "codes.lp", 'calls_for(E, "20553") :-', 'calls_fro(E, "20553") :-')
    message = refused(kb_copy)
    assert f"kb/rules/codes.lp:{line}" in message and "calls_fro/2" in message


def test_rule_without_annotation_is_refused(kb_copy: Path) -> None:
    path = kb_copy / "rules" / "codes.lp"
    path.write_text(path.read_text() + '\ncalls_for(E, "20552") :- injected_count(E, 9).\n')
    assert "no %@ rule/label/source annotation" in refused(kb_copy)


@pytest.mark.parametrize("new", ["billed_pair(A, B) :- billed_code", "billed_pair(A, E, B) :- billed_code"])
def test_head_without_the_encounter_id_first_is_refused(kb_copy: Path, new: str) -> None:
    path = kb_copy / "rules" / "audit.lp"
    edit(path, "billed_pair(E, A, B) :- billed_code", new)
    # keep the other rules consistent with the new arity, so only the id check speaks
    text = path.read_text().replace("billed_pair(E, A, B), ptp(A, B, I, R)", "billed_pair(A, B), ptp(A, B, I, R)")
    path.write_text(text)
    assert "must take the encounter id E as its first argument" in refused(kb_copy)


def test_a_head_first_argument_of_another_name_is_checked_too(kb_copy: Path) -> None:
    # The check follows the encounter variable, whatever it is called.
    edit(kb_copy / "rules" / "codes.lp", "has_needle_line(E) :- procedure_line(E, C).",
         "has_needle_line(X) :- procedure_line(X, C).")
    compile_kb(kb_copy.resolve())
    edit(kb_copy / "rules" / "codes.lp", "has_needle_line(X) :- procedure_line(X, C).",
         "has_needle_line(C) :- procedure_line(X, C).")
    assert "must take the encounter id X as its first argument" in refused(kb_copy)


def test_label_naming_an_unknown_variable_is_refused(kb_copy: Path) -> None:
    edit(kb_copy / "rules" / "codes.lp", "%@ label: {N} muscles injected (3 or more)", "%@ label: {Count} muscles injected")
    assert "{Count}" in refused(kb_copy)


def test_constraint_or_choice_in_a_rule_file_is_refused(kb_copy: Path) -> None:
    path = kb_copy / "rules" / "codes.lp"
    path.write_text(path.read_text() + "\n%@ rule: no_tpi\n%@ label: x\n%@ source: y\n:- calls_for(E, _).\n")
    assert "head must be a single atom" in refused(kb_copy)


def test_doc_naming_an_unknown_argument_is_refused(kb_copy: Path) -> None:
    edit(kb_copy / "schema.lp", "%*! side(E, P, Side): procedure {P} has the side field {Side}.",
         "%*! side(E, P, Side): procedure {Q} has the side field {Side}.")
    assert "%*! side: {Q} is not an argument" in refused(kb_copy)


def test_duplicate_rule_id_is_refused(kb_copy: Path) -> None:
    edit(kb_copy / "rules" / "codes.lp", "%@ rule: calls_for_20553", "%@ rule: calls_for_20552")
    assert "rule id 'calls_for_20552' is already used at kb/rules/codes.lp" in refused(kb_copy)


def test_finding_without_a_severity_is_a_kb_error_at_the_rule(kb_copy: Path) -> None:
    line = edit(kb_copy / "rules" / "guidance.lp", "finding(E, guidance_ct_not_reportable, G)",
                "finding(E, guidance_ct_unreportable, G)")
    message = refused(kb_copy)
    assert f"kb/rules/guidance.lp:{line}" in message and "'guidance_ct_unreportable' has no a severity" not in message
    assert "'guidance_ct_unreportable' has no severity in kb/reference/findings.lp" in message


def test_unregistered_coverage_id_is_a_kb_error_at_the_rule(kb_copy: Path) -> None:
    line = edit(kb_copy / "rules" / "coverage.lp", "not_covered(E, C, policy_frequency)",
                "not_covered(E, C, policy_frequencey)")
    message = refused(kb_copy)
    assert f"kb/rules/coverage.lp:{line}" in message
    assert "'policy_frequencey' has no severity in kb/reference/findings.lp" in message
    assert "'policy_frequencey' has no basis in kb/reference/coverage.lp (coverage_denial)" in message


def test_unregistered_reason_is_a_kb_error_at_the_rule(kb_copy: Path) -> None:
    line = edit(kb_copy / "rules" / "audit.lp", "reason(E, B, duplicate_line, B0)", "reason(E, B, duplicated, B0)")
    message = refused(kb_copy)
    assert f"kb/rules/audit.lp:{line}" in message and "'duplicated' is not in kb/reference/reasons.lp" in message


def test_a_rule_in_a_reference_file_is_refused(kb_copy: Path) -> None:
    path = kb_copy / "reference" / "codes.lp"
    path.write_text(path.read_text() + "\naddon_code(C) :- guidance_code(_, C).\n")
    assert "files in kb/reference/ hold facts only" in refused(kb_copy)


def test_keys_must_name_arguments_of_the_table(kb_copy: Path) -> None:
    edit(kb_copy / "reference" / "mue.lp", "%@ keys: Code", "%@ keys: Cod")
    assert "%@ keys: Cod is not an argument of mue(Code, Units, MAI, Rationale, Release, From)" in refused(kb_copy)


def test_an_input_without_a_field_is_refused(kb_copy: Path) -> None:
    path = kb_copy / "schema.lp"
    path.write_text(path.read_text() + '\n%*! weight(E, W): the patient weighs {W}. *%\n#defined weight/2.\n')
    with pytest.raises(KBError, match=r"input weight/2 has no entry in bridge/facts.py"):
        load_kb(kb_copy)


def test_a_field_without_an_input_is_refused(kb_copy: Path) -> None:
    edit(kb_copy / "schema.lp", "#defined side/3.", "")
    edit(kb_copy / "rules" / "muscles.lp", "mention_side_is(E, P, I, S) :- mention(E, P, I, _), side(E, P, S).",
         "mention_side_is(E, P, I, S) :- mention(E, P, I, _), text_side(E, P, I, S).")
    with pytest.raises(KBError, match=r"INPUTS writes side/3, which kb/schema.lp does not declare"):
        load_kb(kb_copy)


def test_every_input_and_every_negated_predicate_has_a_reading(kb: KB) -> None:
    assert kb.inputs <= set(kb.docs)
    negated = {(lit.atom.name, len(lit.atom.args)) for rule in kb.rules.values() for lit in rule.body
               if lit.kind == "atom" and lit.negated and lit.atom is not None}
    assert negated and negated <= set(kb.docs), negated - set(kb.docs)


def test_warning_raised_only_while_grounding_names_the_rule_file(kb_copy: Path) -> None:
    # An arithmetic slip clingo only warns about when data reaches it ("operation undefined").
    line = edit(kb_copy / "rules" / "codes.lp", "injected_count(E, N), N >= 3.", 'injected_count(E, N), N + "x" >= 3.')
    broken = compile_kb(kb_copy.resolve())
    with pytest.raises(KBError) as err:
        solve_batch(broken, encounters(broken, {"procedures": [inj("trapezius", "left")]}))
    assert f"kb/rules/codes.lp:{line}" in str(err.value) and "undefined" in str(err.value)


def test_cli_reports_a_kb_error_exit_2_no_traceback(kb_copy: Path) -> None:
    edit(kb_copy / "rules" / "codes.lp", "injected_count(E, N), N >= 3", "injected_cuont(E, N), N >= 3")
    proc = subprocess.run([sys.executable, "-m", "bridge", "--kb", str(kb_copy), "code",
                           str(ROOT / "examples" / "encounter.yaml"), "--format", "json"],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 2, proc.stderr
    assert "kb error: kb/rules/codes.lp:" in proc.stderr and "Traceback" not in proc.stderr
    assert proc.stdout == ""


def test_the_cache_is_used_and_follows_every_edit(kb_copy: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("TPKB_CACHE", str(tmp_path / "cache"))
    first = KB.load(kb_copy)
    assert list((tmp_path / "cache").glob("kb-*.pickle"))
    start = time.perf_counter()
    again = KB.load(kb_copy)
    assert time.perf_counter() - start < 0.5 and again.fingerprint == first.fingerprint
    edit(kb_copy / "rules" / "codes.lp", "%@ label: {N} muscles injected (3 or more)",
         "%@ label: {N} muscles injected (three or more)")
    edited = KB.load(kb_copy)
    assert edited.rules["calls_for_20553"].label.startswith("{N} muscles injected (three")
    edit(kb_copy / "rules" / "codes.lp", "injected_count(E, N), N >= 3", "injected_cuont(E, N), N >= 3")
    with pytest.raises(KBError):
        KB.load(kb_copy)  # an edit that breaks the KB is never served from the cache


def readme_recipes() -> list[str]:
    """The indented code blocks of the README's "Policy changes without editing the base"."""
    text = (ROOT / "README.md").read_text()
    section = text[text.index("### Policy changes without editing the base"):]
    section = section[: section.index("\n## ", 1) if "\n## " in section else len(section)]
    blocks, current = [], []
    for line in section.splitlines():
        if line.startswith("    "):
            current.append(line[4:])
        elif current and line.strip():
            blocks.append("\n".join(current) + "\n")
            current = []
    return blocks + (["\n".join(current) + "\n"] if current else [])


def test_a_new_payer_is_one_file(kb_copy: Path) -> None:
    """The README recipe, "A new payer with a frequency limit", as written: one file under
    kb/payers/ (its profile row included), no edit to the base."""
    from helpers import encounters, finding_ids, inj, lines

    recipes = readme_recipes()
    (kb_copy / "payers" / "acme.lp").write_text(next(b for b in recipes if 'profile("acme")' in b))
    before = {p.relative_to(kb_copy): p.read_bytes() for p in kb_copy.rglob("*") if p.is_file()}
    assert 'profile("acme")' not in (kb_copy / "reference" / "profiles.lp").read_text()
    assert "acme" not in (kb_copy / "main.lp").read_text()
    acme = compile_kb(kb_copy.resolve())
    history = [{"date": f"2027-0{m}-01", "codes": ["20552"], "muscles": "R trapezius"} for m in range(1, 7)]
    docs = [{"payer": "acme", "date": "2027-07-15", "procedures": [inj("trapezius", "left")], "history": history},
            {"payer": "acme", "date": "2027-07-15", "procedures": [inj("trapezius", "left")], "history": history[1:]},
            {"payer": "acme", "date": "2027-07-15", "procedures": [{"muscle": "left trapezius", "injectate": []}]},
            {"payer": "acme", "date": "2026-12-31", "procedures": [{"muscle": "left trapezius", "injectate": []}]}]
    encs = encounters(acme, *docs)
    answer = solve_batch(acme, encs, mode="full")
    outs = [answer.outcome(i, enc) for i, enc in enumerate(encs, start=1)]
    assert [lines(o) for o in outs] == [set(), {"20552 x1"}, set(), {"20560 x1"}]
    assert "policy_frequency" in finding_ids(outs[0]) and "policy_not_covered_service" in finding_ids(outs[2])
    assert "acme" in acme.profiles()
    assert before == {p.relative_to(kb_copy): p.read_bytes() for p in kb_copy.rglob("*") if p.is_file()}


def test_a_code_made_not_reportable_from_a_date_is_one_file(kb_copy: Path, tmp_path: Path) -> None:
    """The README recipe "20560/20561 not reportable for cpt from 2027-01-01": one payer file
    and one case file; the base is not edited; the billed line's reason names the policy."""
    recipe = next(b for b in readme_recipes() if "code_not_reportable(" in b)
    (kb_copy / "payers" / "cpt_2027_dry_needling.lp").write_text(recipe)
    case = tmp_path / "cpt_2027.yaml"
    case.write_text('''
- name: dry-needling-not-reportable-from-2027
  source: "the CPT 2027 change (test)"
  encounter:
    date: 2027-01-04
    procedures:
      - {muscle: left trapezius, injectate: []}
      - {muscle: right trapezius, injectate: []}
    billed: [{code: "20560"}]
  expect:
    lines: []
    findings: [policy_code_not_reportable]
    billed: [{code: "20560", verdict: reject, reasons: [not_reportable]}]
- name: dry-needling-reportable-the-day-before
  source: "the CPT 2027 change (test)"
  encounter:
    date: 2026-12-31
    procedures:
      - {muscle: left trapezius, injectate: []}
      - {muscle: right trapezius, injectate: []}
    billed: [{code: "20560"}]
  expect:
    lines: [{code: "20560"}]
    billed: [{code: "20560", verdict: accept}]
''')
    proc = subprocess.run([sys.executable, "-m", "bridge", "--kb", str(kb_copy), "test", str(case),
                           "--since", str(tmp_path / "last.json")], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "2 passed, 0 failed" in proc.stdout
    shipped = default_kb_path()
    for path in shipped.rglob("*.lp"):
        assert path.read_bytes() == (kb_copy / path.relative_to(shipped)).read_bytes()

