"""pytest collects the case library (cases/**/*.yaml): one item per case, all cases
solved together in one program, and a failure reads as file, case, expected versus
actual, and the explanation of what happened."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bridge.api import load_kb
from bridge.cases import Run, run_cases
from bridge.load import read_file

CASE_SUFFIXES = {".yaml", ".yml"}


def pytest_configure(config: pytest.Config) -> None:
    """The tests compile many KB copies: their caches go to a folder of this run, not to
    the user's ~/.cache/tpkb (subprocesses inherit it)."""
    if "TPKB_CACHE" not in os.environ:
        os.environ["TPKB_CACHE"] = tempfile.mkdtemp(prefix="tpkb-test-cache-")


def pytest_collect_file(parent: pytest.Collector, file_path: Path) -> pytest.Collector | None:
    if file_path.suffix in CASE_SUFFIXES and "cases" in file_path.parts:
        return CaseFile.from_parent(parent, path=file_path)
    return None


class CaseError(Exception):
    pass


class CaseFile(pytest.File):
    def collect(self) -> Iterator[pytest.Item]:
        records = list(read_file(self.path, lines=True))
        problems = [str(p) for r in records for p in r.problems]
        if problems:
            raise CaseError("\n".join(problems))
        for record in records:
            if record.case is not None:
                yield CaseItem.from_parent(self, name=record.case.name)

    def repr_failure(self, excinfo: Any, style: Any = None) -> str:
        if isinstance(excinfo.value, CaseError):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo))


class CaseItem(pytest.Item):
    def runtest(self) -> None:
        run = _library_run(self.session)
        problem = next((p for p in run.problems if p.case == self.name), None)
        if problem:
            raise CaseError(str(problem))
        result = next((r for r in run.results if r.case.name == self.name), None)
        if result is None:
            raise CaseError(f"case '{self.name}' was not run")
        if not result.passed:
            raise CaseError(result.report())

    def repr_failure(self, excinfo: Any, style: Any = None) -> str:
        if isinstance(excinfo.value, CaseError):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, None, str]:
        return self.path, None, f"case: {self.name}"


def _library_run(session: pytest.Session) -> Run:
    """Run every collected case file in one solve, once per session."""
    run = getattr(session, "_tpkb_run", None)
    if run is None:
        files = sorted({item.path for item in session.items if isinstance(item, CaseItem)})
        run = run_cases(load_kb(), files)
        session._tpkb_run = run  # type: ignore[attr-defined]
    return run
