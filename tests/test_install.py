"""A non-editable install carries the KB and works from any directory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_wheel_carries_the_kb_and_codes_from_another_directory(tmp_path):
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), str(ROOT)],
                   check=True, capture_output=True)
    wheel = next(wheels.glob("tpkb-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    kb_files = {p.relative_to(ROOT / "kb").as_posix() for p in (ROOT / "kb").rglob("*.lp")}
    assert {f"bridge/kb/{f}" for f in kb_files} <= names

    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site), str(wheel)],
                   check=True, capture_output=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "schema.lp").write_text("this is not the KB's schema.lp.\n")  # must not be picked up
    env = {k: v for k, v in os.environ.items() if k not in ("TPKB_KB", "PYTHONPATH")}
    env["PYTHONPATH"] = str(site)
    proc = subprocess.run([sys.executable, "-m", "bridge", "code", str(ROOT / "examples" / "encounter.yaml"),
                           "--format", "json"], capture_output=True, text=True, cwd=elsewhere, env=env)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)["encounters"][0]
    assert [ln["code"] for ln in out["lines"]] == ["20553", "20560", "76942", "J3301"]
    check = subprocess.run([sys.executable, "-c", "import bridge.api as a; print(a.default_kb_path())"],
                           capture_output=True, text=True, cwd=elsewhere, env=env)
    assert check.stdout.strip().startswith(str(site))
