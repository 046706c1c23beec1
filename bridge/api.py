"""The pipeline end to end, for the CLI and for Python callers: find and load the KB,
code a batch of encounters in one solve, explain it, and code a stream of records in
batches, in order, on several cores.

    from bridge.api import load_kb, code
    kb = load_kb()
    outcomes = code(kb, [encounter, ...])          # typed bridge.outcome.Outcome objects
"""

from __future__ import annotations

import gc
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

from . import engine
from .explain import Graph, GraphBuilder
from .facts import batch_facts, check_inputs, encounter_facts
from .kb import KB
from .load import Pending, Record
from .model import Encounter
from .outcome import Answer, Outcome
from .terms import Atom


def default_kb_path() -> Path:
    """TPKB_KB if set; else the KB inside the installed package; else kb/ of a checkout."""
    env = os.environ.get("TPKB_KB")
    if env:
        return Path(env)
    here = Path(__file__).resolve().parent
    packaged = here / "kb"
    return packaged if (packaged / "main.lp").is_file() else here.parent / "kb"


def load_kb(path: Path | str | None = None) -> KB:
    """Load (or take from the cache) the KB, and check the input mapping against it."""
    kb = KB.load(Path(path) if path is not None else default_kb_path())
    problems = check_inputs(kb.inputs)
    if problems:
        raise engine.KBError(problems)
    return kb


@contextmanager
def paused_gc() -> Iterator[None]:
    """Python's cyclic garbage collector paused while a batch is coded.

    A batch builds hundreds of thousands of small objects (facts, atoms, outcomes), none
    of them in a reference cycle, so reference counting frees them all; with the collector
    running, it would rescan the growing heap again and again (a third of a 10,000-encounter
    run). It runs again, and collects anything left, once the batch is done."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def strings_in_play(facts: Iterable[Atom]) -> set:
    """The strings a batch's facts hold: what decides which keyed table rows it needs."""
    play: set = set()
    for atom in facts:
        play.update(atom[2:])  # numbers and constants too: they match no table key
    return play


def solve_batch(kb: KB, encounters: Sequence[Encounter], *, mode: str = "full", all_rows: bool = False) -> Answer:
    """One ground-and-solve for the whole batch; encounter i (from 1) has key i."""
    facts = batch_facts(encounters, kb.side_words())
    rows = list(kb.tables.all_rows()) if all_rows else kb.tables.for_batch(strings_in_play(facts))
    return Answer.of(kb, engine.solve(kb.program(mode), facts, rows), mode)


def code(kb: KB, encounters: Sequence[Encounter], *, explain: bool = False) -> list[Outcome]:
    """Outcomes for a batch. Without explain only the message rules are instrumented."""
    answer = solve_batch(kb, encounters, mode="full" if explain else "messages")
    return [answer.outcome(key, enc) for key, enc in enumerate(encounters, start=1)]


def explain(kb: KB, answer: Answer, key: int, enc: Encounter, outcome: Outcome) -> Graph:
    """The explanation graph of one encounter of a fully instrumented solve."""
    facts = encounter_facts(key, enc, kb.side_words())
    return GraphBuilder(kb, answer, key, facts).build(outcome, key)


# ---------------------------------------------------------------------- streams of records
@dataclass(frozen=True)
class Options:
    """How a stream is coded and rendered; `render` turns one record into output text."""

    explain: bool = False
    render: Callable[[KB, Record, Outcome | None, Graph | None], str] | None = None


@dataclass(frozen=True)
class Coded:
    """One input record, coded and rendered: what a worker process hands back."""

    ok: bool
    problems: tuple[str, ...]  # one line each: file:line: case: field: message
    text: str


def code_records(kb: KB, items: Sequence[Record | Pending], options: Options) -> list[Coded]:
    """Read (where not read yet) and code the records of a batch in one solve; render
    every record, in order."""
    with paused_gc():
        profiles = frozenset(kb.profiles())
        records = [item.read(profiles) if isinstance(item, Pending) else item for item in items]
        good = [r for r in records if r.ok and r.encounter is not None]
        outcomes: dict[int, tuple[Outcome, Graph | None]] = {}
        if good:
            encounters = [r.encounter for r in good if r.encounter is not None]
            answer = solve_batch(kb, encounters, mode="full" if options.explain else "messages")
            for key, enc in enumerate(encounters, start=1):
                outcome = answer.outcome(key, enc)
                graph = explain(kb, answer, key, enc, outcome) if options.explain else None
                outcomes[id(good[key - 1])] = (outcome, graph)
        render = options.render
        assert render is not None
        return [Coded(r.ok, tuple(str(p) for p in r.problems), render(kb, r, *outcomes.get(id(r), (None, None))))
                for r in records]


def default_jobs() -> int:
    return max(1, min(os.cpu_count() or 1, 8))


_WORKER: tuple[KB, Options] | None = None


def _start_worker(kb_path: str, options: Options) -> None:
    global _WORKER
    gc.disable()  # a worker only codes batches; it collects after each (see _work)
    _WORKER = (load_kb(kb_path), options)


def _work(batch: list[Record | Pending]) -> list[Coded] | Exception:
    assert _WORKER is not None
    kb, options = _WORKER
    try:
        return code_records(kb, batch, options)
    except Exception as exc:  # noqa: BLE001 - handed back to the parent, which raises it
        return exc
    finally:
        gc.collect()


def code_stream(kb: KB, items: Iterable[Record | Pending], options: Options, *, batch_size: int = 1000,
                jobs: int = 1) -> Iterator[Coded]:
    """Code records in batches (each one solve) and yield each coded, in input order.

    With jobs > 1 and more than one batch, this process and jobs - 1 worker processes
    (started with 'spawn': each loads the KB from its cache) take the next batch whenever
    they are free, so no core waits for another; results are yielded in input order."""
    batches = _paused(_batches(items, batch_size))
    first = next(batches, None)
    if first is None:
        return
    second = next(batches, None)
    if second is None or jobs <= 1:
        for batch in _chain([first] + ([second] if second else []), batches):
            yield from code_records(kb, batch, options)
        return
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    with context.Pool(jobs - 1, initializer=_start_worker, initargs=(str(kb.root), options)) as pool:
        yield from _Shared(kb, options, pool, enumerate(_chain([first, second], batches))).run(jobs - 1)


class _Shared:
    """Batches shared between this process and the workers: whoever is free takes the next
    one (workers through a completion callback, this process between its own batches);
    results are handed on in input order."""

    def __init__(self, kb: KB, options: Options, pool: Any, batches: Iterator[tuple[int, list]]):
        self.kb, self.options, self.pool, self.batches = kb, options, pool, batches
        self.lock = threading.Lock()
        self.results: dict[int, Any] = {}  # batch number -> coded records, or a worker's pending result
        self.taken = 0
        self.count: int | None = None  # the number of batches, once the input is exhausted

    def take(self) -> tuple[int, list] | None:
        with self.lock:
            item = next(self.batches, None)
            if item is None:
                if self.count is None:
                    self.count = self.taken
            else:
                self.taken += 1
            return item

    def send(self, _previous: object = None) -> None:
        """Give the next batch to a worker (called again whenever it finishes one)."""
        item = self.take()
        if item is not None:
            number, batch = item
            pending = self.pool.apply_async(_work, (batch,), callback=self.send, error_callback=self.send)
            with self.lock:
                self.results[number] = pending

    def run(self, workers: int) -> Iterator[Coded]:
        for _ in range(workers):
            self.send()
        emitted = 0
        while True:
            item = self.take()
            if item is not None:
                number, batch = item
                coded = code_records(self.kb, batch, self.options)
                with self.lock:
                    self.results[number] = coded
            while True:  # hand on what is ready, in order
                with self.lock:
                    if self.count is not None and emitted >= self.count:
                        return
                    result = self.results.get(emitted)
                ready = result is not None and (isinstance(result, list) or result.ready())
                if not ready and item is not None:
                    break  # code another batch meanwhile
                if not ready:
                    time.sleep(0.002) if result is None else result.wait()
                    continue
                yield from result if isinstance(result, list) else _done(result)
                with self.lock:
                    del self.results[emitted]
                emitted += 1


def _done(future: Any) -> list[Coded]:
    """A batch's coded records, as a worker handed them back."""
    result = future.get()
    if isinstance(result, Exception):
        raise result
    return result


def _paused(batches: Iterator[list[Record | Pending]]) -> Iterator[list[Record | Pending]]:
    """Each batch read (and validated) with the collector paused."""
    while True:
        with paused_gc():
            batch = next(batches, None)
        if batch is None:
            return
        yield batch


def _batches(records: Iterable[Record | Pending], size: int) -> Iterator[list[Record | Pending]]:
    iterator = iter(records)
    while True:
        batch = list(islice(iterator, size))
        if not batch:
            return
        yield batch


def _chain(head: list, tail: Iterator) -> Iterator:
    yield from head
    yield from tail
