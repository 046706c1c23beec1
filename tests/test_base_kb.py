"""The base KB stands alone: with kb/payers/ removed, it loads, and
the unit tests of every base rule file pass against it. Payer hooks are #defined in the
base, so nothing else is needed."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from bridge.api import default_kb_path, load_kb

ROOT = Path(__file__).resolve().parent.parent
BASE_TESTS = ["test_muscles.py", "test_counting.py", "test_codes.py", "test_ncci.py", "test_guidance.py",
              "test_audit.py"]


def base_kb(tmp_path: Path) -> Path:
    kb = tmp_path / "kb"
    shutil.copytree(default_kb_path(), kb)
    shutil.rmtree(kb / "payers")  # read without an #include: nothing else to edit
    return kb


def test_the_base_kb_loads_without_payers(tmp_path: Path) -> None:
    kb = load_kb(base_kb(tmp_path))
    assert not any(rule.file.startswith("kb/payers/") for rule in kb.rules.values())
    assert "medicare_distinct_modifier_xs" not in kb.rules


def test_the_base_unit_tests_pass_without_payers(tmp_path: Path) -> None:
    env = {**os.environ, "TPKB_KB": str(base_kb(tmp_path))}
    tests = [str(ROOT / "tests" / "kb" / name) for name in BASE_TESTS]
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-o", "addopts=", "-p", "no:cacheprovider", *tests],
                          capture_output=True, text=True, cwd=ROOT, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert " passed" in proc.stdout
