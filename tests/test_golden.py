"""Golden files for what a person reads: the explanation (summary and full), its JSON
graph, and the facts an encounter becomes. They key on rule ids and labels: `.lp` line
numbers are masked, so moving a rule changes no golden file.

Refresh them on purpose with `TPKB_UPDATE_GOLDEN=1 python -m pytest tests/test_golden.py`
(README, "Golden explanations"): each file rewritten is reported with its unified diff in
pytest's warnings summary (shown with -q too), to be read before committing it."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import warnings
from difflib import unified_diff
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


class GoldenRefreshed(UserWarning):
    """A golden file rewritten by TPKB_UPDATE_GOLDEN=1; the message is its diff."""


def refresh(path: Path, actual: str) -> None:
    """Write the golden file, and show what changed in it."""
    old = path.read_text() if path.exists() else ""
    if old == actual:
        return
    path.write_text(actual)
    rel = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
    diff = "".join(unified_diff(old.splitlines(keepends=True), actual.splitlines(keepends=True),
                                f"a/{rel}", f"b/{rel}"))
    warnings.warn(GoldenRefreshed(f"rewrote {rel}:\n{diff}"), stacklevel=2)


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
        refresh(path, actual)
        if not UPDATE:
            pytest.fail(f"{path} did not exist; written now: read it, then commit it")
    assert actual == path.read_text(), f"{name} differs from the golden file; see the diff above"


def test_golden_files_hold_no_line_numbers() -> None:
    for path in GOLDEN.iterdir():
        assert not LINE_NUMBER.search(path.read_text()), path


def test_a_refresh_shows_the_diff_of_each_file_it_rewrites(tmp_path: Path) -> None:
    path = tmp_path / "explain.txt"
    path.write_text("line 20553 x1\n  three muscles\n")
    with pytest.warns(GoldenRefreshed) as caught:
        refresh(path, "line 20552 x1\n  three muscles\n")
    assert path.read_text() == "line 20552 x1\n  three muscles\n"
    message = str(caught[0].message)
    assert f"rewrote {path}:" in message and "-line 20553 x1\n+line 20552 x1\n" in message
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        refresh(path, "line 20552 x1\n  three muscles\n")  # unchanged: nothing written, nothing said
