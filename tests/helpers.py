"""Small helpers for building encounters and reading outcomes in tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bridge.kb import KB
from bridge.model import Encounter
from bridge.outcome import Outcome


def lines(out: Outcome) -> set[str]:
    """Lines as '20560-59 x1' strings."""
    return {ln.text() for ln in out.lines}


def finding_ids(out: Outcome) -> set[str]:
    return {f.id for f in out.findings}


def rejected(out: Outcome) -> dict[str, set[str]]:
    return {b.code: {r.id for r in b.reasons} for b in out.billed or [] if b.verdict == "reject"}


def inj(muscle: str, side: str | None = None, injectate: tuple[str, ...] = ("lidocaine 1%",)) -> dict:
    proc: dict[str, Any] = {"muscle": muscle, "injectate": list(injectate)}
    if side:
        proc["side"] = side
    return proc


def dry(muscle: str, side: str | None = None) -> dict:
    return inj(muscle, side, ())


def encounters(kb: KB, *docs: dict) -> list[Encounter]:
    """Validated encounters from case-format dicts (date defaults to 2025-06-02)."""
    context = {"profiles": frozenset(kb.profiles())}
    return [Encounter.model_validate({"date": "2025-06-02", "id": f"t{i}", **doc}, context=context)
            for i, doc in enumerate(docs)]


def edit(path: Path, old: str, new: str) -> int:
    """Replace `old` (which must occur) in a file by `new`; the line where it stood."""
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, 1))
    return text[: text.index(old)].count("\n") + 1
