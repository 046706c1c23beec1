"""The pipeline end to end: find and load the KB, code a batch of encounters in one solve."""

from __future__ import annotations

import os
from pathlib import Path

from .engine import KB
from .explain import Answer
from .facts import batch_facts
from .load import Encounter


def default_kb_path() -> Path:
    """TPKB_KB if set; else the KB inside the installed package; else kb/ of a checkout."""
    env = os.environ.get("TPKB_KB")
    if env:
        return Path(env)
    here = Path(__file__).resolve().parent
    packaged = here / "kb"
    return packaged if (packaged / "main.lp").is_file() else here.parent / "kb"


def solve_batch(kb: KB, encounters: list[Encounter], *, mode: str = "full") -> Answer:
    """One ground-and-solve for the whole batch."""
    return Answer(kb, kb.solve(batch_facts(encounters, kb.side_words()), mode=mode), mode=mode)


def code(kb: KB, encounters: list[Encounter], *, explain: bool = False) -> list[dict]:
    """Outcomes for a batch. Without explain, only the message rules are instrumented."""
    answer = solve_batch(kb, encounters, mode="full" if explain else "messages")
    return [answer.outcome(enc, explain=explain) for enc in encounters]
