"""The tpkb command: malformed input gives one clear line per problem and exit 2 while the
rest is still coded; user text never becomes program text; one solve per batch."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from bridge import engine
from bridge.cli import main

ROOT = Path(__file__).resolve().parent.parent

GOOD = """\
id: good-1
date: 2025-06-02
procedures:
  - muscle: trapezius
    side: left
    injectate: [lidocaine]
"""

BAD = {
    "missing_date.yaml": ("procedures:\n  - muscle: trapezius\n    injectate: []\n", "date: required"),
    "unknown_side.yaml": ("date: 2025-06-02\nprocedures:\n  - muscle: trapezius\n    side: up\n    injectate: []\n",
                          "procedures[0].side: unknown side 'up'"),
    "no_injectate.yaml": ("date: 2025-06-02\nprocedures:\n  - muscle: trapezius\n", "procedures[0].injectate: required"),
    "not_a_list.yaml": ("date: 2025-06-02\nprocedures:\n  - muscle: trapezius\n    injectate: lidocaine\n",
                        "procedures[0].injectate: must be a list"),
    "bad_code.yaml": (GOOD.replace("good-1", "bad-code") + "billed:\n  - code: 2055X3\n", "billed[0].code: '2055X3' is not"),
    "broken.yaml": ("date: 2025-06-02\nprocedures: [\n  - muscle: trapezius\n", "broken YAML"),
}


def tpkb(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bridge", *args], capture_output=True, text=True,
                          input=stdin, cwd=ROOT)


def test_malformed_inputs_one_line_each_rest_still_coded(tmp_path):
    (tmp_path / "good.yaml").write_text(GOOD)
    for name, (text, _) in BAD.items():
        (tmp_path / name).write_text(text)
    proc = tpkb("code", str(tmp_path), "--format", "json")
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    errors = proc.stderr.strip().splitlines()
    assert len(errors) == len(BAD), errors
    for name, (_, field_message) in BAD.items():
        line = next(e for e in errors if f"{name}" in e)
        assert field_message in line, line
    out = json.loads(proc.stdout)
    assert [e["id"] for e in out["encounters"]] == ["good-1"]
    assert len(out["errors"]) == len(BAD) and all(e["errors"] for e in out["errors"])


def test_error_names_line_and_case(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("name: c1\nsource: test\nencounter:\n  date: 2025-06-02\n  procedures:\n"
                    "    - muscle: trapezius\n      side: sideways\n      injectate: []\nexpect:\n  lines: []\n")
    proc = tpkb("code", str(path))
    assert proc.returncode == 2
    assert proc.stderr.strip() == (f"error: {path}:7: case 'c1': encounter.procedures[0].side: "
                                   "unknown side 'sideways' (use left, right or bilateral)")


def test_jsonl_bad_record_names_line_others_coded(tmp_path):
    path = tmp_path / "day.jsonl"
    path.write_text(json.dumps({"id": "a", "date": "2025-01-02", "procedures": [{"muscle": "SCM", "side": "left", "injectate": []}]})
                    + "\n{not json\n"
                    + json.dumps({"id": "c", "procedures": []}) + "\n")
    proc = tpkb("code", str(path), "--format", "jsonl")
    assert proc.returncode == 2
    assert f"{path}:2: broken JSON" in proc.stderr and f"{path}:3: date: required" in proc.stderr
    records = [json.loads(x) for x in proc.stdout.splitlines()]
    assert [r.get("id") for r in records] == ["a", None, "c"]
    assert [r.get("line") for r in records[1:]] == [2, 3] and "lines" in records[0]
    assert records[2]["errors"] == ["date: required (the date of service, YYYY-MM-DD)"]


HOSTILE = 'trapezius"). line(E,"20553",1) :- encounter(E). %'


def test_asp_in_a_muscle_name_changes_nothing(code_one):
    out = code_one(procedures=[{"muscle": HOSTILE, "side": "left", "injectate": ["x"]},
                               {"muscle": "levator scapulae", "side": "left", "injectate": ["x\"). #false."]}])
    assert [ln.code for ln in out.lines] == ["20552"]
    unmatched = sorted(f.message for f in out.findings if f.id == "muscle_unmatched")
    # The text is read as text: "trapezius", and the words left over, each a finding.
    assert len(unmatched) == 2
    assert '"encounter e"' in unmatched[0] and '"line e"' in unmatched[1]


def test_facts_quote_user_text(tmp_path):
    path = tmp_path / "h.json"
    path.write_text(json.dumps({"id": "h", "date": "2025-06-02",
                                "procedures": [{"muscle": HOSTILE, "injectate": []}]}))
    proc = tpkb("facts", str(path))
    assert proc.returncode == 0
    assert 'procedure(1,1,"trapezius\\"). line(e,\\"20553\\",1) :- encounter(e). %").' in proc.stdout
    assert all(line.startswith("%") or line.endswith(").") for line in proc.stdout.splitlines())


def test_a_directory_of_1000_encounters_is_one_solve(tmp_path, monkeypatch):
    for i in range(1000):
        (tmp_path / f"e{i:04d}.json").write_text(json.dumps(
            {"id": f"e{i}", "date": "2025-06-02",
             "procedures": [{"muscle": ["trapezius", "SCM", "QL"][i % 3], "side": "left", "injectate": []}]}))
    calls = []
    real = engine.Grounding.ground

    def counting(self):
        calls.append(1)
        return real(self)

    monkeypatch.setattr(engine.Grounding, "ground", counting)
    result = CliRunner().invoke(main, ["code", str(tmp_path), "--format", "jsonl"])
    assert result.exit_code == 0, result.output
    assert len(result.output.splitlines()) == 1000
    assert len(calls) == 1


def test_stdin_jsonl_streams_in_batches(monkeypatch):
    records = "".join(json.dumps({"id": f"s{i}", "date": "2025-06-02",
                                  "procedures": [{"muscle": "trapezius", "side": "left", "injectate": []}]}) + "\n"
                      for i in range(25))
    proc = tpkb("code", "-", "--format", "jsonl", "--batch-size", "10", stdin=records)
    assert proc.returncode == 0, proc.stderr
    outs = [json.loads(x) for x in proc.stdout.splitlines()]
    assert [o["id"] for o in outs] == [f"s{i}" for i in range(25)]
    assert all(o["lines"] == [{"code": "20560", "units": 1, "modifiers": []}] for o in outs)


def test_same_id_twice_in_one_batch_does_not_mix(tmp_path):
    (tmp_path / "a.json").write_text(json.dumps({"id": "x", "date": "2025-06-02", "procedures": [
        {"muscle": "trapezius", "side": "bilateral", "injectate": ["l"]}, {"muscle": "SCM", "side": "left", "injectate": ["l"]}]}))
    (tmp_path / "b.json").write_text(json.dumps({"id": "x", "date": "2025-06-02", "procedures": [
        {"muscle": "trapezius", "side": "left", "injectate": ["l"]}]}))
    proc = tpkb("code", str(tmp_path), "--format", "jsonl")
    assert [json.loads(x)["lines"][0]["code"] for x in proc.stdout.splitlines()] == ["20553", "20552"]


def test_tpkb_test_reports_failure_with_diff_and_explanation(tmp_path):
    path = tmp_path / "fail.yaml"
    path.write_text("name: wrong-count\nsource: test\nencounter:\n  date: 2025-06-02\n  procedures:\n"
                    "    - {muscle: trapezius, side: bilateral, injectate: [l]}\nexpect:\n  lines: [{code: 20553}]\n")
    proc = tpkb("test", str(path), "--since", str(tmp_path / "last.json"))
    assert proc.returncode == 1
    assert f"{path}:1: case 'wrong-count' failed" in proc.stdout
    assert "lines: expected 20553 x1; got 20552 x1" in proc.stdout
    assert "2 muscle(s) injected (1 or 2) call for 20552  [calls_for_20552" in proc.stdout
    assert proc.stdout.startswith("0 passed, 1 failed\n")  # the summary first, then the failures


def test_tpkb_test_case_with_nothing_to_check_fails(tmp_path):
    path = tmp_path / "empty.yaml"
    path.write_text("name: nothing\nsource: test\nencounter:\n  date: 2025-06-02\n  procedures: []\nexpect: {findings: []}\n")
    proc = tpkb("test", str(path), "--since", str(tmp_path / "last.json"))
    assert proc.returncode != 0
    assert "nothing to check" in proc.stderr


def test_tpkb_test_unknown_rule_id_is_an_error(tmp_path):
    path = tmp_path / "typo.yaml"
    path.write_text("name: typo\nsource: test\nencounter:\n  date: 2025-06-02\n  procedures: []\nexpect: {fired: [calls_for_2053]}\n")
    proc = tpkb("test", str(path), "--since", str(tmp_path / "last.json"))
    assert proc.returncode == 2 and "unknown rule id 'calls_for_2053'" in proc.stderr


def test_batches_in_a_pipeline_or_in_workers_print_what_one_solve_prints(tmp_path):
    path = tmp_path / "day.jsonl"
    subprocess.run([sys.executable, str(ROOT / "bench" / "generate.py"), "120", "11"], stdout=path.open("w"), check=True)
    lines = path.read_text().splitlines()
    # Malformed lines among good ones, and a whole batch of seven with nothing to code.
    lines[3:3] = ["{not json"]
    lines[50:50] = ['{"date": "2025-02-30", "procedures": []}'] * 7
    path.write_text("\n".join(lines) + "\n")
    one_solve = tpkb("code", str(path), "--format", "jsonl", "--jobs", "1", "--batch-size", "1000")
    pipelined = tpkb("code", str(path), "--format", "jsonl", "--jobs", "1", "--batch-size", "7")
    parallel = tpkb("code", str(path), "--format", "jsonl", "--jobs", "2", "--batch-size", "25")
    assert one_solve.returncode == pipelined.returncode == parallel.returncode == 2, parallel.stderr
    assert one_solve.stdout == pipelined.stdout == parallel.stdout
    assert len(one_solve.stdout.splitlines()) == 128


def test_kb_error_is_reported_before_any_worker_starts(tmp_path):
    import shutil

    kb_copy = tmp_path / "kb"
    shutil.copytree(ROOT / "kb", kb_copy)
    codes = kb_copy / "rules" / "codes.lp"
    codes.write_text(codes.read_text().replace("injected_count(E, N), N >= 3", "injected_cuont(E, N), N >= 3"))
    path = tmp_path / "day.jsonl"
    subprocess.run([sys.executable, str(ROOT / "bench" / "generate.py"), "30", "3"], stdout=path.open("w"), check=True)
    proc = tpkb("--kb", str(kb_copy), "code", str(path), "--format", "jsonl", "--jobs", "2", "--batch-size", "10")
    assert proc.returncode == 2
    assert "kb error: kb/rules/codes.lp:" in proc.stderr and "injected_cuont" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_tpkb_test_says_what_changed_since_the_last_run(tmp_path):
    import shutil

    kb_copy = tmp_path / "kb"
    shutil.copytree(ROOT / "kb", kb_copy)
    case = tmp_path / "c.yaml"
    case.write_text("name: three-named\nsource: test\nencounter:\n  date: 2025-06-02\n  procedures:\n"
                    "    - {muscle: trapezius, side: bilateral, injectate: [l]}\n"
                    "    - {muscle: SCM, side: left, injectate: [l]}\nexpect:\n  lines: [{code: 20553}]\n")
    since = tmp_path / "last.json"
    first = tpkb("--kb", str(kb_copy), "test", str(case), "--since", str(since))
    assert first.returncode == 0 and "changed since" not in first.stdout
    # The analyst's edit: 20553 now wants four muscles.
    codes = kb_copy / "rules" / "codes.lp"
    codes.write_text(codes.read_text().replace("injected_count(E, N), N >= 3.", "injected_count(E, N), N >= 4.")
                     .replace("injected_count(E, N), 1 <= N, N <= 2.", "injected_count(E, N), 1 <= N, N <= 3."))
    second = tpkb("--kb", str(kb_copy), "test", str(case), "--since", str(since))
    assert second.returncode == 1
    assert "changed since the last run (1):" in second.stdout
    assert "three-named: lines 20553 x1 -> 20552 x1; rules +calls_for_20552 -calls_for_20553" in second.stdout
    out = second.stdout
    assert out.startswith("0 passed, 1 failed\n")
    assert out.index("case 'three-named' failed") < out.index("changed since the last run")


def test_tpkb_test_counts_cases_that_could_not_be_run_in_the_tally_first(tmp_path):
    good = "name: {}\nsource: test\nencounter:\n  date: 2025-06-02\n  procedures: []\nexpect: {{lines: []}}\n"
    (tmp_path / "a.yaml").write_text(good.format("fine"))
    (tmp_path / "b.yaml").write_text(good.format("fine"))  # the name again
    (tmp_path / "c.yaml").write_text("name: broken\nsource: [\n")  # broken YAML
    (tmp_path / "d.yaml").write_text(good.format("typo").replace("{lines: []}", "{fired: [calls_for_2053]}"))
    (tmp_path / "e.yaml").write_text("date: 2025-06-02\nprocedures: []\n")  # an encounter, not a case
    proc = tpkb("test", str(tmp_path), str(tmp_path / "missing.yaml"), "--since", str(tmp_path / "last.json"))
    assert proc.returncode == 2
    assert proc.stdout.splitlines()[0] == "1 passed, 0 failed, 5 could not be run", proc.stdout
    assert len(proc.stderr.strip().splitlines()) == 5, proc.stderr


def test_a_kb_error_met_in_a_worker_process_is_reported(tmp_path):
    import shutil

    kb_copy = tmp_path / "kb"
    shutil.copytree(ROOT / "kb", kb_copy)
    codes = kb_copy / "rules" / "codes.lp"
    # An arithmetic slip clingo only warns about once data reaches it: the KB loads, the
    # batches fail while grounding, in the workers as in this process.
    codes.write_text(codes.read_text().replace("injected_count(E, N), N >= 3.", 'injected_count(E, N), N + "x" >= 3.'))
    path = tmp_path / "day.jsonl"
    subprocess.run([sys.executable, str(ROOT / "bench" / "generate.py"), "60", "3"], stdout=path.open("w"), check=True)
    for jobs in ("2", "1"):  # in worker processes; in the grounding thread of one process
        proc = tpkb("--kb", str(kb_copy), "code", str(path), "--format", "jsonl", "--jobs", jobs, "--batch-size", "10")
        assert proc.returncode == 2, proc.stderr
        assert "kb error: kb/rules/codes.lp:" in proc.stderr and "undefined" in proc.stderr
        assert "Traceback" not in proc.stderr
