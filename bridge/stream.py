"""Streams of records coded in batches, each batch one solve, every record rendered and
handed on in input order: in this process alone (grounding one batch while Python reads
the next and renders the one before), or shared with worker processes on several cores."""

from __future__ import annotations

import gc
import json
import os
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import islice

from . import engine
from .api import batch_input, explain, load_kb, paused_gc
from .explain import Graph
from .kb import KB
from .load import Pending, Record
from .outcome import Answer, Outcome
from .terms import Atom


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


@dataclass
class _Batch:
    """One batch of records on its way: read (Python), ground (clingo, which lets go of
    Python's lock), answer (clingo and Python), finish (outcomes, explanations and
    renderings: Python)."""

    kb: KB
    options: Options
    records: list[Record]
    good: list[Record]  # the records that hold an encounter to code, key i is good[i - 1]
    facts: list[Atom]
    rows: list[Atom]

    @classmethod
    def read(cls, kb: KB, items: Sequence[Record | Pending], options: Options) -> _Batch:
        profiles = frozenset(kb.profiles())
        records = [item.read(profiles) if isinstance(item, Pending) else item for item in items]
        good = [r for r in records if r.ok and r.encounter is not None]
        facts, rows = batch_input(kb, [r.encounter for r in good if r.encounter is not None])
        return cls(kb, options, records, good, facts, rows)

    @property
    def mode(self) -> str:
        return "full" if self.options.explain else "messages"

    def grounding(self) -> engine.Grounding | None:
        return engine.Grounding(self.kb.program(self.mode), self.facts, self.rows) if self.good else None

    def answer(self, grounding: engine.Grounding | None) -> Answer | None:
        if grounding is None:
            return None
        answer = Answer.of(self.kb, grounding.answer(), self.mode)
        answer.names = [r.encounter.id if r.encounter is not None else None for r in self.good]
        return answer

    def finish(self, answer: Answer | None) -> list[Coded]:
        kb, options = self.kb, self.options
        outcomes: dict[int, tuple[Outcome, Graph | None]] = {}
        if answer is not None:
            for key, record in enumerate(self.good, start=1):
                enc = record.encounter
                assert enc is not None
                outcome = answer.outcome(key, enc)
                graph = explain(kb, answer, key, enc, outcome) if options.explain else None
                outcomes[id(record)] = (outcome, graph)
        render = options.render
        assert render is not None
        return [Coded(r.ok, tuple(str(p) for p in r.problems), render(kb, r, *outcomes.get(id(r), (None, None))))
                for r in self.records]


def code_records(kb: KB, items: Sequence[Record | Pending], options: Options) -> list[Coded]:
    """Read (where not read yet) and code the records of a batch in one solve; render
    every record, in order."""
    with paused_gc():
        batch = _Batch.read(kb, items, options)
        grounding = batch.grounding()
        if grounding is not None:
            grounding.ground()
        return batch.finish(batch.answer(grounding))


def default_jobs() -> int:
    return max(1, min(os.cpu_count() or 1, 8))


def code_stream(kb: KB, items: Iterable[Record | Pending], options: Options, *, batch_size: int = 1000,
                jobs: int = 1) -> Iterator[Coded]:
    """Code records in batches (each one solve) and yield each coded, in input order.

    With jobs > 1 and more than one batch, this process and jobs - 1 worker processes
    (started with 'spawn': each loads the KB from its cache) share the batches, so no core
    waits for another (see _Shared). With one job, batches go through a pipeline in this
    process (see _pipelined)."""
    order: deque[int] = deque()
    yield from _in_input_order(_code_batches(kb, _paused(_days_together(items, batch_size, order)), options, jobs),
                               order)


def _code_batches(kb: KB, batches: Iterator[list[Record | Pending]], options: Options, jobs: int) -> Iterator[Coded]:
    first = next(batches, None)
    if first is None:
        return
    second = next(batches, None)
    if second is None:
        yield from code_records(kb, first, options)
        return
    if jobs <= 1:
        yield from _pipelined(kb, _chain([first, second], batches), options)
        return
    import multiprocessing

    others = set(multiprocessing.active_children())
    pool = ProcessPoolExecutor(jobs - 1, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_start_worker, initargs=(str(kb.root), options))
    try:
        yield from _Shared(kb, options, pool, jobs - 1, _chain([first, second], batches)).run()
    except BaseException:  # an error, or the reader stopped early: stop our busy workers now
        for child in set(multiprocessing.active_children()) - others:
            child.terminate()
        raise
    finally:
        # Wait for the workers to end: a worker left behind would hold this process's
        # output open after it ends.
        pool.shutdown(wait=True, cancel_futures=True)


# ---------------------------------------------------------------------- one process
def _pipelined(kb: KB, batches: Iterator[list[Record | Pending]], options: Options) -> Iterator[Coded]:
    """Batches through one process as a pipeline: while clingo grounds batch i in a
    second thread (it holds no Python lock while it grounds), this thread finishes batch
    i - 1 and reads batch i + 1. What calls into clingo (building symbols, reading the
    answer set) stays out of the overlap: clingo's symbol table is shared by all threads,
    and contending for it made grounding slower than the overlap saved."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="tpkb-ground") as grounder, _prompt_handoff():
        items = next(batches, None)
        with paused_gc():
            batch = _Batch.read(kb, items, options) if items is not None else None
        decoded: tuple[_Batch, Answer | None] | None = None
        while batch is not None:
            with paused_gc():
                grounding = batch.grounding()
                grounded: Future | None = grounder.submit(grounding.ground) if grounding is not None else None
                finished = decoded[0].finish(decoded[1]) if decoded is not None else []
                items = next(batches, None)
                upcoming = _Batch.read(kb, items, options) if items is not None else None
                if grounded is not None:
                    grounded.result()  # re-raises what grounding raised
                decoded = (batch, batch.answer(grounding))
            yield from finished
            batch = upcoming
        if decoded is not None:
            with paused_gc():
                finished = decoded[0].finish(decoded[1])
            yield from finished


@contextmanager
def _prompt_handoff() -> Iterator[None]:
    """While grounding, clingo calls back into Python once per input predicate (to fetch
    its facts), and waits for Python's lock each time; by default the busy thread keeps
    it for up to 5 ms per request. Hand it over sooner while the pipeline runs."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(0.0001)
    try:
        yield
    finally:
        sys.setswitchinterval(before)


# ---------------------------------------------------------------------- worker processes
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


class _Shared:
    """Batches shared between this process and the workers: a worker takes the next batch
    the moment it finishes one (in a completion callback), this process between its own.
    At most AHEAD batches per process are taken before they are handed on, in input order,
    so a slow reader of the output holds a few batches, not the whole input."""

    AHEAD = 4

    def __init__(self, kb: KB, options: Options, pool: ProcessPoolExecutor, workers: int,
                 batches: Iterator[list[Record | Pending]]):
        self.kb, self.options, self.pool, self.workers, self.batches = kb, options, pool, workers, batches
        self.lock = threading.Lock()  # what follows is shared with the callbacks
        self.results: dict[int, Future | list[Coded]] = {}  # batch number -> a worker's or ours
        self.taken = self.emitted = 0
        self.exhausted = False
        self.idle = 0  # workers that found nothing to take (AHEAD reached)
        self.failure: BaseException | None = None  # raised reading the input in a callback

    def take(self) -> tuple[int, list[Record | Pending]] | None:
        """The next batch and its number; None at the end of the input, or AHEAD reached.
        The caller holds the lock."""
        if self.exhausted or self.taken - self.emitted >= self.AHEAD * (self.workers + 1):
            return None
        try:
            batch = next(self.batches, None)
        except BaseException as exc:  # noqa: BLE001 - raised again in run(), not in a callback
            self.failure, batch = exc, None
        if batch is None:
            self.exhausted = True
            return None
        self.taken += 1
        return self.taken - 1, batch

    def send(self, finished: Future | None = None) -> None:
        """A worker is free: give it the next batch."""
        if finished is not None and (finished.cancelled() or finished.exception() is not None):
            return  # the pool is broken or shutting down; run() reports why
        with self.lock:
            item = self.take()
            if item is None:
                self.idle += 1
                return
            try:
                future = self.pool.submit(_work, item[1])
            except (BrokenProcessPool, RuntimeError) as exc:  # broken, or shut down meanwhile
                future = Future()
                future.set_exception(exc)
            self.results[item[0]] = future
        future.add_done_callback(self.send)

    def run(self) -> Iterator[Coded]:
        self.idle = self.workers
        while True:
            with self.lock:
                if self.failure is not None:
                    raise self.failure
                free, self.idle = self.idle, 0
            for _ in range(free):
                self.send()
            while True:  # hand on what is ready, in order
                with self.lock:
                    result = self.results.get(self.emitted)
                if result is None or not _ready(result):
                    break
                yield from _coded(result)
                with self.lock:
                    del self.results[self.emitted]
                    self.emitted += 1
            with self.lock:
                if self.exhausted and self.emitted == self.taken and self.failure is None:
                    return
                item = self.take()
            if item is not None:  # code one here meanwhile
                coded = code_records(self.kb, item[1], self.options)
                with self.lock:
                    self.results[item[0]] = coded
            elif isinstance(result, Future):  # nothing to code here: wait for the next in order
                wait([result])


def _ready(result: Future | list[Coded]) -> bool:
    return isinstance(result, list) or result.done()


def _coded(result: Future | list[Coded]) -> list[Coded]:
    """A batch's coded records: ours, or as a worker handed them back."""
    if isinstance(result, list):
        return result
    try:
        coded = result.result()
    except BrokenProcessPool:
        raise RuntimeError("a worker process stopped before it finished its batch (out of memory?)") from None
    if isinstance(coded, Exception):
        raise coded
    return coded


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


def _patient_day(item: Record | Pending) -> tuple[str, str] | None:
    """(patient, date) of a record that names its patient; None for one that does not (it
    is a patient of its own) or cannot be read (its error is reported when it is coded)."""
    if isinstance(item, Pending):
        if b'"patient"' not in item.raw:  # the common case, without parsing the line
            return None
        try:
            doc = json.loads(item.raw)
        except ValueError:
            return None
        if isinstance(doc, dict) and isinstance(doc.get("encounter"), dict):
            doc = doc["encounter"]  # a case on a line
        if not isinstance(doc, dict) or doc.get("patient") is None:
            return None
        return str(doc["patient"]), str(doc.get("date")).strip()
    enc = item.encounter if item.ok else None
    if enc is None or enc.patient is None:
        return None
    return enc.patient, enc.date.isoformat()


def _days_together(items: Iterable[Record | Pending], size: int, order: deque[int]) -> Iterator[list[Record | Pending]]:
    """Batches of `size` records in which a patient's day is never split: records that name
    a patient are held back to the end of the input and then batched a whole day at a time
    (issue 7, item 7), so that the answer never depends on the batch size. The input
    position of each record batched goes to `order`, for putting the output back in input
    order. (Holding them costs memory in proportion to such records.)"""
    batch: list[Record | Pending] = []
    positions: list[int] = []
    held: dict[tuple[str, str], list[tuple[int, Record | Pending]]] = {}
    for position, item in enumerate(items):
        day = _patient_day(item)
        if day is not None:
            held.setdefault(day, []).append((position, item))
            continue
        batch.append(item)
        positions.append(position)
        if len(batch) >= size:
            order.extend(positions)
            yield batch
            batch, positions = [], []
    for members in held.values():
        if batch and len(batch) + len(members) > size:
            order.extend(positions)
            yield batch
            batch, positions = [], []
        batch.extend(item for _, item in members)
        positions.extend(position for position, _ in members)
    if batch:
        order.extend(positions)
        yield batch


def _in_input_order(coded: Iterator[Coded], order: deque[int]) -> Iterator[Coded]:
    """The coded records in input order; `order` gives the input position of each as it
    comes (filled as batches are made, always ahead of what they yield)."""
    waiting: dict[int, Coded] = {}
    upcoming = 0
    for item in coded:
        waiting[order.popleft()] = item
        while upcoming in waiting:
            yield waiting.pop(upcoming)
            upcoming += 1


def _chain(head: list, tail: Iterator) -> Iterator:
    yield from head
    yield from tail
