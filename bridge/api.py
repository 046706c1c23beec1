"""The pipeline end to end: find and load the KB, code a batch of encounters in one solve."""

from __future__ import annotations

import multiprocessing
import os
from itertools import chain
from pathlib import Path
from typing import Callable, Iterable, Iterator

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


def default_jobs() -> int:
    return max(1, min(os.cpu_count() or 1, 8))


# The worker's KB and renderer: set in the parent before forking, so workers inherit them.
_WORKER: tuple | None = None


def _code_rendered(batch: list[Encounter]) -> list[str] | Exception:
    kb, render, explain = _WORKER
    try:
        return [render(out, explain) for out in code(kb, batch, explain=explain)]
    except Exception as exc:  # handed back to the parent, which raises it
        return exc


def code_batches(kb: KB, batches: Iterable[list[Encounter]], *, explain: bool,
                 render: Callable[[dict, bool], str], jobs: int = 1) -> Iterator[str]:
    """Code batches (each one solve) and yield each outcome rendered, in input order.

    With more than one batch and jobs > 1, up to `jobs` batches are coded at once in
    worker processes: grounding and decoding are CPU-bound, one core each."""
    batches = iter(b for b in batches if b)
    first = next(batches, None)
    if first is None:
        return
    second = next(batches, None)
    if second is None or jobs <= 1 or "fork" not in multiprocessing.get_all_start_methods():
        for batch in chain([first], [second] if second else [], batches):
            for out in code(kb, batch, explain=explain):
                yield render(out, explain)
        return
    global _WORKER
    _WORKER = (kb, render, explain)
    with multiprocessing.get_context("fork").Pool(jobs) as pool:
        for result in pool.imap(_code_rendered, chain([first, second], batches)):
            if isinstance(result, Exception):
                raise result
            yield from result
