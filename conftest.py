"""pytest collects the case library (cases/**/*.yaml): one item per case, all cases
solved together in one program, and a failure reads as file, case, expected versus
actual, and the explanation of what happened."""

from __future__ import annotations

from pathlib import Path

import pytest

from bridge.api import default_kb_path
from bridge.cases import run_cases
from bridge.engine import KB
from bridge.load import Loaded, load_file

CASE_SUFFIXES = {".yaml", ".yml"}


def pytest_collect_file(parent, file_path: Path):
    if file_path.suffix in CASE_SUFFIXES and "cases" in file_path.parts:
        return CaseFile.from_parent(parent, path=file_path)
    return None


class CaseError(Exception):
    pass


class CaseFile(pytest.File):
    def collect(self):
        loaded = Loaded()
        load_file(self.path, (), loaded)
        if loaded.problems:
            raise CaseError("\n".join(str(p) for p in loaded.problems))
        for case in loaded.cases:
            yield CaseItem.from_parent(self, name=case.name)

    def repr_failure(self, excinfo):
        if isinstance(excinfo.value, CaseError):
            return str(excinfo.value)
        return super().repr_failure(excinfo)


class CaseItem(pytest.Item):
    def runtest(self):
        run = _library_run(self.session)
        problem = next((p for p in run.problems if p.case == self.name), None)
        if problem:
            raise CaseError(str(problem))
        result = run.by_name.get(self.name)
        if result is None:
            raise CaseError(f"case '{self.name}' was not run")
        if not result.passed:
            raise CaseError(result.report())

    def repr_failure(self, excinfo):
        if isinstance(excinfo.value, CaseError):
            return str(excinfo.value)
        return super().repr_failure(excinfo)

    def reportinfo(self):
        return self.path, None, f"case: {self.name}"


def _library_run(session):
    """Run every collected case file in one solve, once per session."""
    run = getattr(session, "_tpkb_run", None)
    if run is None:
        files = sorted({item.path for item in session.items if isinstance(item, CaseItem)})
        run = run_cases(KB.load(default_kb_path()), files)
        run.by_name = {r.case.name: r for r in run.results}
        session._tpkb_run = run
    return run
