"""`tpkb lint` (bridge/lint.py): every problem of a KB in one run, one line each naming
kb/FILE:LINE[:COL], exit 2 when there is any; the shipped KB lints clean.

Each test copies the KB, plants problems and compares the lines lint prints with those it
prints for the shipped KB (so that a test speaks only about what it planted)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import edit

from bridge.api import default_kb_path
from bridge.cli import main
from bridge.lint import _placeholder
from bridge.sources import citations, read_register

SHIPPED = default_kb_path()


def run_lint(*args: str) -> tuple[int, list[str]]:
    result = CliRunner(mix_stderr=False).invoke(main, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout.splitlines()


@pytest.fixture(scope="module")
def shipped() -> tuple[int, list[str]]:
    return run_lint("lint", str(SHIPPED))


def append(path: Path, text: str) -> int:
    """Append lines to a file; the line number of the first."""
    old = path.read_text()
    if not old.endswith("\n"):
        old += "\n"
    path.write_text(old + text)
    return old.count("\n") + 1


def line_of(path: Path, text: str) -> int:
    content = path.read_text()
    assert text in content, text
    return content[: content.index(text)].count("\n") + 1


def planted(kb_dir: Path, shipped: tuple[int, list[str]], via_option: bool = False) -> list[str]:
    """The lines lint prints for `kb_dir` and not for the shipped KB; lint must exit 2."""
    code, lines = run_lint("--kb", str(kb_dir), "lint") if via_option else run_lint("lint", str(kb_dir))
    assert code == 2, lines
    return [line for line in lines if line not in shipped[1]]


def test_the_shipped_kb_lints_clean(shipped: tuple[int, list[str]]) -> None:
    assert shipped == (0, [])


def test_lint_prints_only_problem_lines_sorted_by_file_and_line(kb_copy: Path) -> None:
    services = kb_copy / "rules" / "services.lp"
    services.write_text(re.sub(r"%@ source: .*", "%@ source: TODO", services.read_text(), count=1))
    edit(kb_copy / "rules" / "codes.lp", "%@ source: [", "%@ source: [no-such-source] [")
    code, lines = run_lint("lint", str(kb_copy))
    assert code == 2 and len(lines) == 2, lines
    assert all(re.match(r"kb/[\w/.-]+\.(lp|yaml):\d+(:\d+)?: \S", line) for line in lines), lines
    assert lines == sorted(lines, key=lambda s: (s.split(":")[0], int(s.split(":")[1])))


def test_a_duplicate_rule_id_is_one_line_naming_both_rules(kb_copy: Path, shipped: tuple[int, list[str]]) -> None:
    codes = kb_copy / "rules" / "codes.lp"
    first = line_of(codes, 'calls_for(E, "20552") :-')
    edit(codes, "%@ rule: calls_for_20553", "%@ rule: calls_for_20552")
    second = line_of(codes, 'calls_for(E, "20553") :-')
    assert planted(kb_copy, shipped, via_option=True) == [
        f"kb/rules/codes.lp:{second}: rule id 'calls_for_20552' is already used at kb/rules/codes.lp:{first}"]


def test_an_empty_source_is_one_line(kb_copy: Path, shipped: tuple[int, list[str]]) -> None:
    codes = kb_copy / "rules" / "codes.lp"
    source = line_of(codes, "%@ rule: calls_for_20553") + 2
    lines = codes.read_text().splitlines()
    assert lines[source - 1].startswith("%@ source:")
    lines[source - 1] = "%@ source:"
    codes.write_text("\n".join(lines) + "\n")
    rule = line_of(codes, 'calls_for(E, "20553") :-')
    assert planted(kb_copy, shipped) == [f"kb/rules/codes.lp:{rule}: annotation lacks source"]


def test_a_placeholder_source_is_one_line(kb_copy: Path, shipped: tuple[int, list[str]]) -> None:
    codes = kb_copy / "rules" / "codes.lp"
    source = line_of(codes, "%@ rule: calls_for_20553") + 2
    lines = codes.read_text().splitlines()
    lines[source - 1] = "%@ source: TODO"
    codes.write_text("\n".join(lines) + "\n")
    assert planted(kb_copy, shipped) == [
        f"kb/rules/codes.lp:{source}: source 'TODO' is a placeholder: cite where the policy comes from"]


@pytest.mark.parametrize("text", ["TODO", "tbd.", "?", "-", "--", "n/a", "xxx", "Source", "none", "Unknown"])
def test_placeholders(text: str) -> None:
    assert _placeholder(text)


@pytest.mark.parametrize("text", ["CPT 20553", "[seed] bullet 1", "NCCI; TODO: the quarter", "x-ray guidance"])
def test_sources_that_cite_something(text: str) -> None:
    assert not _placeholder(text)


def test_an_input_no_rule_reads_is_one_line(kb_copy: Path, shipped: tuple[int, list[str]]) -> None:
    # the one rule reading guidance_necessity/3 reads guidance/3 instead
    edit(kb_copy / "rules" / "guidance.lp", "necessity_documented(E, G) :- guidance_necessity(E, G, Why).",
         "necessity_documented(E, G) :- guidance(E, G, Why).")
    defined = line_of(kb_copy / "schema.lp", "#defined guidance_necessity/3.")
    assert planted(kb_copy, shipped) == [f"kb/schema.lp:{defined}: input guidance_necessity/3 is read by no rule"]


def test_a_misspelt_predicate_gets_a_did_you_mean(kb_copy: Path, shipped: tuple[int, list[str]]) -> None:
    line = edit(kb_copy / "rules" / "codes.lp", "injected_count(E, N), N >= 3", "injected_cuont(E, N), N >= 3")
    # clingo's own "atom does not occur in any rule head" at the same line is not repeated
    assert planted(kb_copy, shipped) == [f"kb/rules/codes.lp:{line}: injected_cuont/2 occurs in no rule head, table "
                                         "or input (did you mean 'injected_count/2'?)"]


def test_a_misspelt_annotation_key_is_one_line_with_a_did_you_mean(kb_copy: Path,
                                                                   shipped: tuple[int, list[str]]) -> None:
    codes = kb_copy / "rules" / "codes.lp"
    note = line_of(codes, "%@ rule: calls_for_20553")
    edit(codes, "%@ rule: calls_for_20553\n%@ label:", "%@ rule: calls_for_20553\n%@ lable:")
    # the label it lacks is not reported again
    assert planted(kb_copy, shipped) == [f"kb/rules/codes.lp:{note}: unknown annotation key 'lable' (did you mean "
                                         "'label'?) (keys: rule, label, source, kind)"]


def test_a_misspelt_rule_kind_is_one_line_with_a_did_you_mean(kb_copy: Path, shipped: tuple[int, list[str]]) -> None:
    codes = kb_copy / "rules" / "codes.lp"
    edit(codes, "%@ kind: plumbing\nprocedure_line(", "%@ kind: plumbnig\nprocedure_line(")
    rule = line_of(codes, "procedure_line(E, C) :-")
    assert planted(kb_copy, shipped) == [f"kb/rules/codes.lp:{rule}: unknown rule kind 'plumbnig' (did you mean "
                                         "'plumbing'?) (kinds: policy, plumbing)"]


def test_a_syntax_error_keeps_clingo_s_column_and_nothing_follows_from_it(kb_copy: Path,
                                                                         shipped: tuple[int, list[str]]) -> None:
    line = edit(kb_copy / "rules" / "codes.lp", 'calls_for(E, "20553") :- injected', 'calls_for(E, "20553") :- :- injected')
    assert planted(kb_copy, shipped) == [f"kb/rules/codes.lp:{line}:26: error: syntax error, unexpected :-"]


def test_the_grounding_check_reports_an_unsafe_variable_at_its_rule(kb_copy: Path,
                                                                    shipped: tuple[int, list[str]]) -> None:
    line = edit(kb_copy / "rules" / "codes.lp", "injected_count(E, N), N >= 3", "injected_count(E, N), M >= 3")
    assert planted(kb_copy, shipped) == [f'kb/rules/codes.lp:{line}: error: unsafe variables in: calls_for(E,"20553")'
                                         ":-injected_count(E,N);M>=3. note: 'M' is unsafe"]


def test_every_other_check_in_one_run(kb_copy: Path, shipped: tuple[int, list[str]]) -> None:
    """Policy text with nothing under it, registry rows no rule derives, codes no code table
    lists, a file nothing reads: all reported in one run, each once, sorted."""
    ncci = kb_copy / "rules" / "ncci.lp"
    orphan = append(ncci, "%* A policy sentence with no rule under it. *%\n")
    findings = kb_copy / "reference" / "findings.lp"
    finding = append(findings, "finding_severity(never_derived_finding, info).\n")
    reasons = kb_copy / "reference" / "reasons.lp"
    reason = append(reasons, 'audit_reason(never_derived_reason, "nothing derives it").\n')
    codes = kb_copy / "reference" / "codes.lp"
    addon = append(codes, 'addon_code("77003").\n')  # a real code, but not in the code table
    payer = kb_copy / "payers" / "bcbsa.lp"
    cms_code = next(m[1] for m in re.finditer(r'^mue\("(\d{5})"', (kb_copy / "reference" / "mue.lp").read_text(), re.M)
                    if f'code("{m[1]}"' not in codes.read_text())
    rows = append(payer, f'%* Rows naming codes. *%\nlint_test_row("{cms_code}").\nlint_test_row("00000").\n')
    (kb_copy / "rules" / "stray.lp").write_text('%* Nothing includes this file. *%\nstray(1).\n')
    (kb_copy / "payers" / "zz_new_payer.lp").write_text('%* A new payer file is read without an #include. *%\n'
                                                        'zz_row(1).\n')
    assert planted(kb_copy, shipped) == [
        f"kb/payers/bcbsa.lp:{rows + 2}: lint_test_row: code \"00000\" is in no code table (code/4, session_kind/2, "
        "other_injection_codes/3, mue/6 or ptp/7)",
        f"kb/reference/codes.lp:{addon}: addon_code: code \"77003\" is in no code table (code/4, session_kind/2, "
        "other_injection_codes/3)",
        f"kb/reference/findings.lp:{finding}: finding 'never_derived_finding' is registered but no rule derives it "
        "(finding/3 or not_covered/3)",
        f"kb/reference/reasons.lp:{reason}: audit reason 'never_derived_reason' is registered but no rule derives it "
        "(reason/4)",
        f"kb/rules/ncci.lp:{orphan}: policy text with no rule, fact or table row under it (before the next %* block "
        "or the end of the file)",
        "kb/rules/stray.lp:1: the loader never reads this file: #include it from kb/main.lp (payer overlays in "
        "kb/payers/ are read without one)",
    ]


def test_a_finding_id_misspelt_in_a_rule_is_one_line_with_a_did_you_mean(kb_copy: Path,
                                                                         shipped: tuple[int, list[str]]) -> None:
    line = edit(kb_copy / "rules" / "guidance.lp", "finding(E, guidance_ct_not_reportable, G)",
                "finding(E, guidance_ct_not_reportabel, G)")
    lines = planted(kb_copy, shipped)
    assert len(lines) == 1 and lines[0].startswith(f"kb/rules/guidance.lp:{line}: rule '"), lines
    assert lines[0].endswith("'guidance_ct_not_reportabel' has no severity in kb/reference/findings.lp (did you mean "
                             "'guidance_ct_not_reportable'?)"), lines


# ---------------------------------------------------------------------- the source register
def write_register(kb_dir: Path, extra: str = "") -> None:
    """A register listing every id the copy cites; a source citing none cites [test]."""
    ids = {"test"}
    for path in [*kb_dir.glob("rules/*.lp"), *kb_dir.glob("payers/*.lp")]:
        text = path.read_text()
        for source in re.findall(r"^%@ source:(.*)$", text, re.M):
            ids.update(i for i in citations(source) if i)
        path.write_text(re.sub(r"^%@ source: (?![^\n]*\[)(?=\S)", "%@ source: [test] ", text, flags=re.M))
    entries = "".join(f"- id: {i}\n  title: T\n  where: W\n  note: N\n" for i in sorted(ids))
    (kb_dir / "sources.yaml").write_text(entries + extra)


def test_citations_must_be_register_ids(kb_copy: Path, shipped: tuple[int, list[str]]) -> None:
    write_register(kb_copy)
    codes = kb_copy / "rules" / "codes.lp"
    source = line_of(codes, "%@ rule: calls_for_20553") + 2
    lines = codes.read_text().splitlines()
    lines[source - 1] = "%@ source: [tesst] bullet 1; [test] bullet 2; [nothing-like-it]"
    lines[source + 4] = "%@ source: CPT 20560, no register id"
    codes.write_text("\n".join(lines) + "\n")
    assert planted(kb_copy, shipped) == [
        f"kb/rules/codes.lp:{source}: source cites [nothing-like-it], which is not an id in kb/sources.yaml",
        f"kb/rules/codes.lp:{source}: source cites [tesst], which is not an id in kb/sources.yaml (did you mean "
        "'test'?)",
        f"kb/rules/codes.lp:{source + 5}: source cites no register id: write [id] from kb/sources.yaml, then the "
        "detail (e.g. '[cpt] 20553')",
    ]


def test_register_entries_lacking_fields_or_repeated_are_reported_at_their_line(kb_copy: Path,
                                                                               shipped: tuple[int, list[str]]) -> None:
    write_register(kb_copy, "- id: lacking\n  title: T\n  publisher: P\n- id: test\n  title: again\n  where: W\n"
                            "  note: N\n  url: http://example.org\n")
    text = (kb_copy / "sources.yaml").read_text().splitlines()
    lacking = text.index("- id: lacking") + 1
    again = len(text) - 4
    first = text.index("- id: test") + 1
    assert planted(kb_copy, shipped) == [
        f"kb/sources.yaml:{lacking}: entry 'lacking' lacks where, note",
        f"kb/sources.yaml:{again}: id 'test' is already used at kb/sources.yaml:{first}",
        f"kb/sources.yaml:{again + 4}: unknown key 'url'",
    ]


def test_without_a_register_citations_are_not_checked(kb_copy: Path, shipped: tuple[int, list[str]]) -> None:
    (kb_copy / "sources.yaml").unlink(missing_ok=True)
    codes = kb_copy / "rules" / "codes.lp"
    source = line_of(codes, "%@ rule: calls_for_20553") + 2
    lines = codes.read_text().splitlines()
    lines[source - 1] = "%@ source: [no-such-id] CPT 20553"
    lines[source + 4] = "%@ source: CPT 20560, no register id"
    lines[source + 9] = "%@ source: TODO"  # a placeholder still is one
    codes.write_text("\n".join(lines) + "\n")
    assert planted(kb_copy, shipped) == [
        f"kb/rules/codes.lp:{source + 10}: source 'TODO' is a placeholder: cite where the policy comes from"]


def test_read_register_and_citations(tmp_path: Path) -> None:
    assert citations("[seed] Coding Guidelines bullet 1; [cpt] 20553; [ ]") == ["seed", "cpt", ""]
    assert read_register(tmp_path) == ([], [])
    (tmp_path / "sources.yaml").write_text("- id: a\n  title: [unclosed\n")
    entries, problems = read_register(tmp_path)
    assert entries == [] and len(problems) == 1 and problems[0].startswith("kb/sources.yaml:")
    (tmp_path / "sources.yaml").write_text("id: a\n")
    assert read_register(tmp_path)[1] == ["kb/sources.yaml:1: the register is a YAML list of entries (- id: ...)"]
