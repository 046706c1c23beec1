"""Hostile and broken input never costs a good record: each malformed record is exit 2
with one escaped message naming the field, within seconds, and every good record in the
same call is still coded; records are told apart by position, never by id."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
GOOD = {"id": "good", "date": "2025-06-02",
        "procedures": [{"muscle": "trapezius", "side": "left", "injectate": ["lidocaine"]}]}
# The billion laughs in YAML: nine levels of nine aliases, 600 bytes that expand to 387 million values.
BOMB = "a: &a [" + ", ".join(["lol"] * 9) + "]\n" + "".join(
    f"{name}: &{name} [{', '.join([f'*{previous}'] * 9)}]\n" for previous, name in zip("abcdefgh", "bcdefghi"))


def tpkb(*args: str, stdin: bytes | None = None, limit: float = 20.0) -> subprocess.CompletedProcess:
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "bridge", *args], capture_output=True, input=stdin,
                          cwd=ROOT, timeout=limit)
    proc.elapsed = time.monotonic() - start  # type: ignore[attr-defined]
    return proc


def coded_ids(stdout: bytes) -> list:
    return [r["id"] for r in map(json.loads, stdout.decode().splitlines()) if "lines" in r]


def with_good(tmp_path: Path, name: str, content: str | bytes) -> Path:
    (tmp_path / "good.json").write_text(json.dumps(GOOD))
    bad = tmp_path / name
    bad.write_bytes(content if isinstance(content, bytes) else content.encode())
    return bad


def assert_rejected_and_good_coded(proc: subprocess.CompletedProcess, field_message: str) -> None:
    stderr = proc.stderr.decode()
    assert proc.returncode == 2, stderr
    assert "Traceback" not in stderr and "internal error" not in stderr
    errors = stderr.strip().splitlines()
    assert len(errors) == 1 and errors[0].startswith("error: "), errors
    assert field_message in errors[0], errors[0]
    assert coded_ids(proc.stdout) == ["good"]


@pytest.mark.parametrize("date,why", [("2025-02-30", "day is out of range for month"),
                                      ("2025-13-01", "month must be in 1..12"),
                                      ("0000-01-01", "year 0 is out of range")], ids=["30-feb", "month-13", "year-0"])
def test_impossible_dates_in_yaml(tmp_path: Path, date: str, why: str) -> None:
    with_good(tmp_path, "bad.yaml", f"date: {date}\nprocedures: []\n")
    proc = tpkb("code", str(tmp_path), "--format", "jsonl")
    assert_rejected_and_good_coded(proc, f"bad.yaml:1: date: '{date}' is not a real date ({why})")


@pytest.mark.parametrize("name,content,message", [
    ("big.yaml", "date: 2025-01-01\nprocedures:\n  - muscle: x\n    trigger_points: " + "9" * 5000 + "\n    injectate: []\n",
     "procedures[0].trigger_points: must be a whole number from 1 to 1000, not a number of 5000 characters"),
    ("big.json", '{"date": "2025-01-01", "procedures": [], "billed": [{"code": "20552", "units": ' + "9" * 5000 + "}]}",
     "billed[0].units: must be a whole number from 1 to 999, not a number of 5000 characters"),
    ("deep.yaml", "[" * 100000 + "]" * 100000, "broken YAML: nested more than 1,000 deep"),
    # libyaml recurses in C: these crashed the process (a segmentation fault) before.
    ("deep-block.yaml", "- " * 30000 + "x\n", "broken YAML: nested more than 1,000 deep"),
    ("deep-comment.yaml", "# " + "]" * 30000 + "[" * 30000 + "\n" + "- " * 30000 + "x\n",
     "broken YAML: nested more than 1,000 deep"),
    # Deeper than libyaml is given, within what the Python parser reads.
    ("deep-some.yaml", "- " * 240 + "x\n", "deep-some.yaml:1: [0]: must be an encounter or a case (a mapping), not a list"),
    ("dup.json", '{"date": "2025-01-01", "procedures": [{"muscle": "x", "injectate": []}], "procedures": []}',
     "broken JSON: the key 'procedures' is written twice in one object"),
    ("forged-key.json", '{"date": "2025-01-01", "procedures": [], "x\\nerror: forged": 1}',
     "x\\x0aerror: forged: unknown key"),
    ("deep.json", "[" * 100000 + "]" * 100000, "broken JSON: nested too deeply"),
    ("surrogate.json", '{"date": "2025-01-01", "procedures": [{"muscle": "trap\\ud800ezius", "injectate": []}]}',
     "procedures[0].muscle: contains the control or invalid character U+D800"),
    ("nul-muscle.json", '{"date": "2025-01-01", "procedures": [{"muscle": "trapezius\\u0000 and SCM", "injectate": []}]}',
     "procedures[0].muscle: contains the control or invalid character U+0000"),
    ("nul-id.json", '{"id": "g\\u0000x", "date": "2025-01-01", "procedures": []}',
     "id: contains the control or invalid character U+0000"),
    ("bomb.yaml", BOMB, "its YAML aliases expand to more than 100,000 further values"),
    ("fullwidth.yaml", "date: 2025-01-01\nprocedures: []\nbilled:\n  - code: \"２0553\"\n",
     "billed[0].code: '２0553' is not a CPT or HCPCS code"),
    ("icd.yaml", "date: 2025-01-01\ndiagnoses: [M７9.12]\nprocedures: []\n",
     "diagnoses[0]: 'M７9.12' is not an ICD-10-CM code"),
    ("units.yaml", "date: 2025-01-01\nprocedures: []\nbilled:\n  - {code: 20553, units: 0}\n",
     "billed[0].units: must be a whole number from 1 to 999, not 0"),
    ("units2.yaml", "date: 2025-01-01\nprocedures: []\nbilled:\n  - {code: 20553, units: 1.5}\n",
     "billed[0].units: must be a whole number from 1 to 999, not 1.5"),
    ("modifier.yaml", "date: 2025-01-01\nprocedures: []\nbilled:\n  - {code: 20553, modifiers: [XSS]}\n",
     "billed[0].modifiers[0]: 'XSS' is not a modifier"),
    ("code.yaml", "date: 2025-01-01\nprocedures: []\nbilled:\n  - {code: 2055X}\n",
     "billed[0].code: '2055X' is not a CPT or HCPCS code"),
], ids=lambda value: value.split(".")[0] if isinstance(value, str) and len(value) < 20 else "")
def test_hostile_record_is_one_field_error_and_the_good_one_is_coded(tmp_path: Path, name: str, content: str,
                                                                     message: str) -> None:
    with_good(tmp_path, name, content)
    proc = tpkb("code", str(tmp_path), "--format", "jsonl")
    assert_rejected_and_good_coded(proc, message)
    assert proc.elapsed < 15  # type: ignore[attr-defined]


def test_alias_bomb_is_refused_fast_and_small(tmp_path: Path) -> None:
    path = with_good(tmp_path, "bomb.yaml", BOMB)
    assert len(BOMB) < 700
    proc = tpkb("code", str(path), limit=10)
    assert proc.returncode == 2 and proc.elapsed < 5  # type: ignore[attr-defined]
    assert len(proc.stderr) < 300


def test_invalid_utf8_on_stdin_is_an_error_record_and_the_rest_is_coded() -> None:
    good = json.dumps(GOOD).encode()
    stdin = good + b"\n" + b'{"id": "x\xff", "date": "2025-01-01", "procedures": []}\n' + good + b"\n"
    proc = tpkb("code", "-", "--format", "jsonl", stdin=stdin)
    assert proc.returncode == 2
    records = [json.loads(x) for x in proc.stdout.decode().splitlines()]
    assert [r.get("id") for r in records] == ["good", None, "good"]
    assert records[1]["line"] == 2 and "not UTF-8" in records[1]["errors"][0]


def test_every_jsonl_line_gets_one_record_in_order(tmp_path: Path) -> None:
    lines = [json.dumps(GOOD), "[" + json.dumps(GOOD) + ", " + json.dumps(GOOD) + "]", "{broken", "",
             json.dumps({**GOOD, "id": "last"})]
    proc = tpkb("code", "-", "--format", "jsonl", stdin="\n".join(lines).encode() + b"\n")
    records = [json.loads(x) for x in proc.stdout.decode().splitlines()]
    assert [(r.get("line"), r.get("id")) for r in records] == [(None, "good"), (2, None), (3, None), (None, "last")]
    assert records[1]["errors"] == ["a JSONL line holds one encounter or case (a JSON object), not a list"]
    assert proc.returncode == 2


def test_ids_that_repeat_or_look_like_keys_never_mix(tmp_path: Path) -> None:
    two = {"date": "2025-06-02", "procedures": [
        {"muscle": "trapezius", "side": "bilateral", "injectate": ["l"]}, {"muscle": "SCM", "side": "left",
                                                                           "injectate": ["l"]}]}
    one = {"date": "2025-06-02", "procedures": [{"muscle": "trapezius", "side": "left", "injectate": ["l"]}]}
    lines = [{**two, "id": "a"}, {**one, "id": "a"}, {**two, "id": "a#2"}, {**one, "id": "g"}, {**two, "id": "g"}]
    proc = tpkb("code", "-", "--format", "jsonl", stdin="\n".join(map(json.dumps, lines)).encode())
    assert proc.returncode == 0, proc.stderr
    codes = [[ln["code"] for ln in json.loads(x)["lines"]] for x in proc.stdout.decode().splitlines()]
    assert codes == [["20553"], ["20552"], ["20553"], ["20552"], ["20553"]]


def test_a_yaml_list_of_cases_and_encounters_keeps_its_order(tmp_path: Path) -> None:
    path = tmp_path / "mixed.yaml"
    path.write_text("- {id: e1, date: 2025-06-02, procedures: []}\n"
                    "- {name: c2, encounter: {date: 2025-06-02, procedures: []}, expect: {lines: []}}\n"
                    "- {id: e3, date: 2025-06-02, procedures: []}\n")
    proc = tpkb("code", str(path), "--format", "jsonl")
    assert [json.loads(x)["id"] for x in proc.stdout.decode().splitlines()] == ["e1", "c2", "e3"]


def test_a_newline_in_user_text_cannot_forge_an_output_line(tmp_path: Path) -> None:
    path = with_good(tmp_path, "forge.json", json.dumps({"date": "2025-06-02", "payer": "cpt\nerror: forged",
                                                          "id": "x\u202ey", "procedures": []}))
    proc = tpkb("code", str(path), "--format", "jsonl")
    stderr = proc.stderr.decode()
    assert proc.returncode == 2 and len(stderr.strip().splitlines()) == 2  # the payer and the id
    assert all(line.startswith(f"error: {path}") for line in stderr.strip().splitlines())
    assert "\u202e" not in stderr


def test_facts_never_print_a_live_line_from_an_id(tmp_path: Path) -> None:
    path = tmp_path / "id.json"
    path.write_text(json.dumps({"id": "x\nencounter(1).", "date": "2025-06-02", "procedures": []}))
    proc = tpkb("facts", str(path))
    assert proc.returncode == 2 and proc.stdout == b""
    path.write_text(json.dumps({"id": 'x" % encounter(1).', "date": "2025-06-02", "procedures": []}))
    proc = tpkb("facts", str(path))
    assert proc.returncode == 0
    assert next(ln for ln in proc.stdout.decode().splitlines() if not ln.startswith("%")) == "encounter(1)."


def test_brackets_inside_quoted_text_do_not_refuse_a_yaml_file(tmp_path: Path) -> None:
    # More brackets than libyaml is given, all inside a string: the Python parser reads it.
    path = with_good(tmp_path, "brackets.yaml", f"id: '{'[' * 70}'\ndate: 2025-06-02\nprocedures: []\n")
    proc = tpkb("code", str(path), "--format", "jsonl")
    assert proc.returncode == 0, proc.stderr
    assert [json.loads(x)["id"] for x in proc.stdout.decode().splitlines()] == ["[" * 70]


def test_only_what_aliases_add_counts_against_the_alias_limit() -> None:
    from bridge.load import MAX_VALUES, _alias_growth

    written = [{"muscle": f"m{i}", "injectate": ["lidocaine"]} for i in range(MAX_VALUES)]  # 400,000 values
    assert _alias_growth(written) == 0
    shared = ["x"] * 10
    assert _alias_growth([shared, shared, shared]) == 2 * 11
    looped: list = []
    looped.append(looped)
    assert _alias_growth(looped) > MAX_VALUES


def test_an_overlong_jsonl_line_is_one_error_record_and_the_next_is_coded() -> None:
    from bridge.load import MAX_LINE

    long_line = b'{"id": "' + b"x" * (MAX_LINE + 10) + b'"}'
    good = json.dumps(GOOD).encode()
    proc = tpkb("code", "-", "--format", "jsonl", stdin=good + b"\n" + long_line + b"\n" + good + b"\n")
    records = [json.loads(x) for x in proc.stdout.decode().splitlines()]
    assert [(r.get("line"), r.get("id")) for r in records] == [(None, "good"), (2, None), (None, "good")]
    assert "longer than 1,000,000 bytes" in records[1]["errors"][0]
    assert proc.returncode == 2


def test_problems_of_one_record_are_capped() -> None:
    line = json.dumps({**GOOD, **{f"k{i}": i for i in range(500)}})
    proc = tpkb("code", "-", "--format", "jsonl", stdin=line.encode() + b"\n")
    errors = proc.stderr.decode().strip().splitlines()
    assert proc.returncode == 2 and len(errors) == 21
    assert errors[-1].endswith("and 480 more problems not listed")


@pytest.mark.parametrize("written", [" a  b ", "\u00a0x", "12"])
def test_an_id_is_reported_back_exactly_as_written(written: str) -> None:
    proc = tpkb("code", "-", "--format", "jsonl", stdin=json.dumps({**GOOD, "id": written}).encode())
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["id"] == written


def test_an_id_that_is_not_text_or_a_whole_number_is_refused() -> None:
    proc = tpkb("code", "-", "--format", "jsonl", stdin=json.dumps({**GOOD, "id": 1.5}).encode())
    assert proc.returncode == 2
    assert "id: must be text or a whole number, not the number 1.5" in proc.stderr.decode()


def test_a_file_name_cannot_forge_an_output_line(tmp_path: Path) -> None:
    bad = tmp_path / "a\nerror: forged.yaml"
    bad.write_text("date: 2025-13-01\nprocedures: []\n")
    proc = tpkb("code", str(tmp_path), "--format", "jsonl")
    errors = proc.stderr.decode().strip().splitlines()
    assert proc.returncode == 2 and len(errors) == 1 and "a\\x0aerror: forged.yaml:1: date:" in errors[0]


@pytest.mark.parametrize("written,profile", [
    ("Medicare WPS", "medicare-wps"), ("EmblemHealth", "emblemhealth"), ("eviCore CMM-202", "evicore"),
    ("BCBSA 2.01.103", "bcbsa"), ("Emblem", "emblemhealth"), ("Novitas", "medicare-novitas"), ("cpt", "cpt")])
def test_a_payer_written_as_people_write_it_names_its_profile(kb, written, profile):
    from helpers import encounters
    assert encounters(kb, {"payer": written, "procedures": []})[0].payer == profile


@pytest.mark.parametrize("written", ["medicare", "aetna", "cp", "cpt error: forged", "BCBS", "cpt-medicare-wps-5"])
def test_a_payer_that_fits_no_profile_or_several_is_a_field_error(kb, written):
    from helpers import encounters
    with pytest.raises(Exception, match="unknown payer profile"):
        encounters(kb, {"payer": written, "procedures": []})
