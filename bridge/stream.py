"""Streams of records coded in batches, each batch one solve, every record rendered and
handed on in input order, in bounded memory however long the stream: a short input in
this process, full batches by worker processes (bridge/worker.py) on several cores, each
replaced by a fresh one once it has grown."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import threading
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import islice

from . import engine, worker
from .api import batch_input, explain, paused_gc
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


IN_PROCESS = 1000  # encounters this process codes itself: a short input, batches after a pause, the first
WORKER_MB = 45  # a worker whose own memory has grown past this (MB) retires after its batch
DAY_WINDOW = 10_000  # input records a patient's day is held open for its other sessions
AHEAD = 3  # batches per coder taken ahead of the one next handed on


@dataclass
class Tally:
    """What a stream noticed beyond the records themselves (for a closing warning)."""

    late_days: int = 0  # records of a patient's day that came after the day was coded
    workers_started: int = 0


def code_stream(kb: KB, items: Iterable[Record | Pending], options: Options, *, batch_size: int = 500,
                jobs: int = 1, flush_after: float | None = None, day_window: int = DAY_WINDOW,
                worker_mb: float = WORKER_MB, in_process: int = IN_PROCESS, tally: Tally | None = None,
                waiting: Callable[[], None] | None = None) -> Iterator[Coded]:
    """Code records in batches (each one solve) and yield each coded, in input order, with
    memory bounded however long the input.

    A batch that comes while this process is idle and no worker has started (a short input,
    what came before a pause, the first batch of a long input) is coded in this process,
    up to `in_process` encounters in all; the others by `jobs` worker processes (bridge/worker.py), each
    retired and replaced once its own memory has grown past `worker_mb`. At most AHEAD
    batches per coder are read ahead of the output.
    With `flush_after` (seconds), a partial batch is coded once the input has been quiet
    that long, so that a slow producer gets its answers at once. `waiting` is called
    whenever the next record is not ready yet (to flush the output meanwhile)."""
    tally = tally if tally is not None else Tally()
    worker.one_arena()
    order: deque[int] = deque()
    source: Iterable[Record | Pending | _Flush] = _timed(items, flush_after) if flush_after else items
    batches = _days_together(source, batch_size, order, window=day_window, tally=tally)
    coders = _Coders(kb, options, batches, jobs, worker_mb, in_process, tally)
    yield from _in_input_order(coders.run(waiting), order)


# ---------------------------------------------------------------------- coders
class _Coders:
    """Batches coded by this process and by worker processes, handed on in input order.

    A feeder thread reads the batches (reading may block: standard input) and routes each:
    a batch read while this process's coder is idle and no worker has started is coded by
    a thread here, up to `in_process` encounters in all (a short input, what a slow
    producer sent before a pause, the first batch of a long one while the workers start:
    none waits for a worker); any other batch goes to `jobs` threads, each sending batches
    to its worker process and waiting for the answer (the pipe lets go of Python's lock
    meanwhile). So memory stays bounded: this process holds the symbols of at most
    `in_process` encounters and codes nothing once the workers run, and each worker is
    retired once it has grown. The output waits for the next batch in order."""

    def __init__(self, kb: KB, options: Options, batches: Iterator[list[Record | Pending]], jobs: int,
                 worker_mb: float, in_process: int, tally: Tally):
        self.kb, self.options, self.batches, self.jobs = kb, options, batches, jobs
        self.worker_mb, self.in_process, self.tally = worker_mb, in_process, tally
        Todo = queue.Queue[tuple[int, list[Record | Pending]] | None]
        self.here: Todo = queue.Queue()  # batches for this process
        self.todo: Todo = queue.Queue()  # batches for the workers
        self.room = threading.Semaphore(AHEAD * (jobs + 1))  # batches read ahead of the output
        self.done = threading.Condition()  # guards what follows
        self.results: dict[int, list[Coded] | BaseException] = {}
        self.fed: int | None = None  # the number of batches, once the input has ended
        self.failure: BaseException | None = None  # raised by the feeder
        self.stopping = False
        self.threads: list[threading.Thread] = []
        self.processes: list[_Process] = []
        self.workers = False  # their threads started
        self.here_busy = 0  # batches handed to this process's coder and not yet coded

    def run(self, waiting: Callable[[], None] | None) -> Iterator[Coded]:
        self._thread(self._feed)
        self._thread(self._code_here)
        try:
            emitted = 0
            while True:
                with self.done:
                    if emitted not in self.results and self.failure is None and self.fed != emitted:
                        if waiting is not None:
                            waiting()
                        while emitted not in self.results and self.failure is None and self.fed != emitted:
                            self.done.wait()
                    if self.failure is not None:
                        raise self.failure
                    if self.fed == emitted:
                        return
                    result = self.results.pop(emitted)
                if isinstance(result, BaseException):
                    raise result
                emitted += 1
                self.room.release()
                yield from result
        finally:
            self._stop()

    # -- the threads
    def _thread(self, target: Callable[[], None]) -> None:
        thread = threading.Thread(target=target, daemon=True, name=f"tpkb-{target.__name__}")
        self.threads.append(thread)
        thread.start()

    def _feed(self) -> None:
        fed = here = 0

        def route(batch: list[Record | Pending]) -> None:
            nonlocal fed, here
            with self.done:  # this process codes it if idle, no worker started, within its budget
                mine = not self.workers and not self.here_busy and here + len(batch) <= self.in_process
                self.here_busy += mine
            if mine:
                here += len(batch)
                self.here.put((fed, batch))
            else:
                if not self.workers:
                    self.workers = True
                    for _ in range(self.jobs):
                        self._thread(self._code_in_worker)
                self.todo.put((fed, batch))
            fed += 1

        try:
            while True:
                while not self.room.acquire(timeout=0.1):
                    if self.stopping:
                        return
                with paused_gc():
                    batch = next(self.batches, None)
                if self.stopping:
                    return
                if batch is None:
                    break
                if batch:
                    route(batch)
                else:  # the input paused, with nothing new to code
                    self.room.release()
        except BaseException as exc:  # noqa: BLE001 - raised again where the output is read
            with self.done:
                self.failure = exc
                self.done.notify_all()
        with self.done:
            self.fed = fed if self.failure is None else self.fed
            self.done.notify_all()
        self.here.put(None)
        for _ in range(self.jobs):
            self.todo.put(None)

    def _code_here(self) -> None:
        while (item := self.here.get()) is not None:
            number, batch = item
            try:
                result: list[Coded] | BaseException = code_records(self.kb, batch, self.options)
            except BaseException as exc:  # noqa: BLE001 - raised again where the output is read
                result = exc
            del batch
            self._deliver(number, result)
            worker.release_memory()
            with self.done:
                self.here_busy -= 1

    def _code_in_worker(self) -> None:
        process: _Process | None = None
        try:
            while not self.stopping:
                item = self.todo.get()
                if item is None:
                    return
                number, batch = item
                result: list[Coded] | BaseException
                try:
                    if process is None:
                        process = self._process()
                    result, retiring = process.code(batch)
                except (EOFError, ConnectionError) as exc:  # the process died
                    result, retiring = (_died(process, exc) if process is not None else exc), True
                except BaseException as exc:  # noqa: BLE001 - raised again where the output is read
                    result, retiring = exc, True
                if retiring and process is not None:
                    process.close()
                    process = None
                self._deliver(number, result)
        finally:
            if process is not None:
                process.close()

    def _process(self) -> _Process:
        process = _Process(self.kb, self.options, self.worker_mb)
        with self.done:
            self.processes.append(process)
            self.tally.workers_started += 1
        return process

    def _deliver(self, number: int, result: list[Coded] | BaseException) -> None:
        with self.done:
            self.results[number] = result
            self.done.notify_all()

    def _stop(self) -> None:
        """The output is done, or its reader stopped early: stop the threads and workers."""
        self.stopping = True
        self.here.put(None)
        for _ in range(self.jobs):
            self.todo.put(None)
        with self.done:
            processes = list(self.processes)
        for process in processes:
            process.close()
        for thread in self.threads:
            if thread is not threading.current_thread():
                thread.join(timeout=5)


def _died(process: _Process, exc: BaseException) -> RuntimeError:
    code = process.exitcode()
    how = f" (exit status {code}{': out of memory?' if code in (-9, 137) else ''})" if code is not None else ""
    return RuntimeError(f"a worker process stopped before it finished its batch{how}: {type(exc).__name__}")


class _Process:
    """One worker process (bridge/worker.py) and the pipe to it."""

    def __init__(self, kb: KB, options: Options, limit_mb: float):
        ctx = worker.start_server(str(kb.root))
        self.conn, theirs = ctx.Pipe()
        self.process = ctx.Process(target=worker.serve, args=(theirs, str(kb.root), options, limit_mb),
                                   daemon=True, name="tpkb-worker")
        self.process.start()
        theirs.close()
        self.lock = threading.Lock()
        self.closed = False

    def code(self, batch: list[Record | Pending]) -> tuple[list[Coded] | BaseException, bool]:
        self.conn.send(batch)
        result, retiring = self.conn.recv()
        return result, retiring

    def exitcode(self) -> int | None:
        self.process.join(timeout=1)
        return self.process.exitcode

    def close(self) -> None:
        with self.lock:  # the worker's thread and a stopping stream may both close it
            if self.closed:
                return
            self.closed = True
        with contextlib.suppress(OSError, ValueError):
            self.conn.send(None)
        self.conn.close()
        self.process.join(timeout=2)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(timeout=2)


# ---------------------------------------------------------------------- reading the input
class _Flush:
    """In the input: the producer has been quiet for a while; code what has come."""


FLUSH = _Flush()


def _timed(items: Iterable[Record | Pending], seconds: float) -> Iterator[Record | Pending | _Flush]:
    """The items, read in a thread, with FLUSH each time none has come for `seconds`
    after one did."""
    arrived: queue.Queue[tuple[str, object]] = queue.Queue(maxsize=10_000)

    def read() -> None:
        try:
            for item in items:
                arrived.put(("item", item))
        except BaseException as exc:  # noqa: BLE001 - raised again in the reader of the items
            arrived.put(("error", exc))
        arrived.put(("end", None))

    threading.Thread(target=read, daemon=True, name="tpkb-read").start()
    quiet = True
    while True:
        try:
            kind, value = arrived.get(timeout=None if quiet else seconds)
        except queue.Empty:
            quiet = True
            yield FLUSH
            continue
        if kind == "end":
            return
        if kind == "error":
            assert isinstance(value, BaseException)
            raise value
        quiet = False
        yield value  # type: ignore[misc]


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


def _days_together(items: Iterable[Record | Pending | _Flush], size: int, order: deque[int], *,
                   window: int = DAY_WINDOW, tally: Tally | None = None) -> Iterator[list[Record | Pending]]:
    """Batches of `size` records in which a patient's day is never split (issue 7, item 7),
    so that the answer never depends on the batch size. Records that name a patient are
    held back, a day at a time, until `window` further records have come (or the input
    ends, or pauses: FLUSH), then batched together; memory stays bounded however long the
    input. A record of a day already coded (its sessions further apart than the window) is
    counted in `tally.late_days` and starts the day anew. The input position of each record
    batched goes to `order`, for putting the output back in input order."""
    batch: list[Record | Pending] = []
    positions: list[int] = []
    held: dict[tuple[str, str], list[tuple[int, Record | Pending]]] = {}  # oldest day first
    coded: OrderedDict[tuple[str, str], None] = OrderedDict()  # days released, the latest few
    position = 0

    def release(members: list[tuple[int, Record | Pending]]) -> Iterator[list[Record | Pending]]:
        nonlocal batch, positions
        if batch and len(batch) + len(members) > size:
            yield take()
        batch.extend(item for _, item in members)
        positions.extend(at for at, _ in members)

    def take() -> list[Record | Pending]:
        nonlocal batch, positions
        order.extend(positions)
        done, batch, positions = batch, [], []
        return done

    for item in items:
        if isinstance(item, _Flush):  # code all that has come (an empty batch: nothing had)
            for opened in list(held):
                coded[opened] = None
                yield from release(held.pop(opened))
            yield take()
            continue
        day = _patient_day(item)
        if day is not None:
            if day in coded and day not in held and tally is not None:
                tally.late_days += 1
            held.setdefault(day, []).append((position, item))
        else:
            batch.append(item)
            positions.append(position)
        position += 1
        while held:  # the days opened more than `window` records ago
            oldest = next(iter(held))
            if held[oldest][0][0] > position - window:
                break
            coded[oldest] = None
            coded.move_to_end(oldest)
            if len(coded) > 4 * window:
                coded.popitem(last=False)
            yield from release(held.pop(oldest))
        if len(batch) >= size:
            yield take()
    for members in held.values():
        yield from release(members)
    if batch:
        yield take()


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
