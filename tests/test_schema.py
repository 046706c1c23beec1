"""The JSON Schema and the key tables of cases/README.md come from bridge/model.py and
stay in step with it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from bridge.kb import KB
from bridge.schema import json_schema, markdown

ROOT = Path(__file__).resolve().parent.parent
BEGIN, END = "<!-- tpkb schema --format markdown: begin -->", "<!-- tpkb schema --format markdown: end -->"


def test_tpkb_schema_prints_the_committed_schema() -> None:
    proc = subprocess.run([sys.executable, "-m", "bridge", "schema"], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    committed = (ROOT / "cases" / "tpkb.schema.json").read_text()
    assert proc.stdout == committed, "cases/tpkb.schema.json differs: run `tpkb schema > cases/tpkb.schema.json`"


def test_the_schema_names_the_profiles_of_the_kb(kb: KB) -> None:
    schema = json_schema(kb.profiles())
    assert set(schema["$defs"]["Encounter"]["properties"]["payer"]["enum"]) == set(kb.profiles())
    assert set(schema["$defs"]["Procedure"]["properties"]) == {"muscle", "side", "trigger_points", "injectate"}
    assert schema["$defs"]["Procedure"]["additionalProperties"] is False


def test_the_readme_tables_are_generated() -> None:
    readme = (ROOT / "cases" / "README.md").read_text()
    assert BEGIN in readme and END in readme
    between = readme.split(BEGIN, 1)[1].split(END, 1)[0]
    assert between.strip() == markdown().strip(), "cases/README.md: run `tpkb schema --format markdown` and paste"


def test_the_schema_is_valid_json_schema_for_the_library() -> None:
    schema = json.loads((ROOT / "cases" / "tpkb.schema.json").read_text())
    assert schema["$schema"].endswith("2020-12/schema")
    assert {"Case", "Encounter", "Expect", "ExpectedBilled"} <= set(schema["$defs"])
