"""Golden files for what a person reads: the explanation (summary and full), its JSON
graph, and the facts an encounter becomes. They key on rule ids and labels: `.lp` line
numbers are masked, so moving a rule changes no golden file.

Refresh them on purpose with `TPKB_UPDATE_GOLDEN=1 python -m pytest tests/test_golden.py`
(README, "Tests"), then read the diff before committing it."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = Path(__file__).resolve().parent / "golden"
UPDATE = os.environ.get("TPKB_UPDATE_GOLDEN") == "1"
LINE_NUMBER = re.compile(r"(kb/[\w/]+\.lp):\d+")

CASES = {
    "explain_example.txt": ["explain", "examples/encounter.yaml"],
    "explain_example_full.txt": ["explain", "examples/encounter.yaml", "--full"],
    "explain_medicare_lcd.txt": ["explain", "tests/data/medicare_lcd.yaml"],
    "explain_coverage.txt": ["explain", "tests/data/coverage.yaml"],
    "explain_example.json": ["explain", "examples/encounter.yaml", "--format", "json"],
    "facts_example.lp": ["facts", "examples/encounter.yaml"],
}


def masked(text: str) -> str:
    return LINE_NUMBER.sub(r"\1:*", text)


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden(name: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "bridge", *CASES[name]], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    actual = proc.stdout
    if name.endswith(".json"):
        actual = json.dumps(json.loads(actual), indent=1) + "\n"
    actual = masked(actual)
    path = GOLDEN / name
    if UPDATE or not path.exists():
        path.write_text(actual)
        if not UPDATE:
            pytest.fail(f"{path} did not exist; written now: read it, then commit it")
    assert actual == path.read_text(), f"{name} differs from the golden file; see the diff above"


def test_golden_files_hold_no_line_numbers() -> None:
    for path in GOLDEN.iterdir():
        assert not LINE_NUMBER.search(path.read_text()), path
