"""Coding on a Dask cluster: the same records, batches and output as `tpkb code`, with the
batches solved by Dask workers (the `dask` extra: pip install 'tpkb[dask]').

Two ways in:

- `code_dask(address, kb, items, options, batch_size)`, behind `tpkb code --dask ADDRESS`:
  this process reads the input, makes the batches exactly as the local path does
  (bridge/stream.py `_days_together`), sends them to the cluster with a bounded number in
  flight, and yields every record coded, in input order.
- `code_bag(bag, kb)` and `code_dataframe(frame, kb)` for a pipeline that already lives in
  Dask: a lazy bag or dataframe of coded records, one per input record, in input order.

    import dask.bag as db
    from bridge.distributed import code_bag
    coded = code_bag(db.read_text("encounters/*.jsonl"), "kb/")   # {"json", "ok", "problems"}
    coded.pluck("json").to_textfiles("coded/*.jsonl", last_endline=True)

Each worker loads the KB once, from the path the client names (the same folder on every
worker; the tpkb compiled-KB cache serves it), and refuses to code with a KB or bridge
whose content differs from the client's. A patient's sessions of one date of service are
coded in one batch (bridge/stream.py, issue 7): in a bag or dataframe, the records that
name a patient are shuffled by (patient, date) into a few extra partitions and put back in
place afterwards; the other records are coded where they are.

Dask is imported only by the functions that need it: importing this module costs nothing
where Dask is not installed, and a worker imports only what coding a batch needs.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import threading
import zlib
from collections import deque
from collections.abc import Generator, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .api import default_kb_path, load_kb
from .cli import BATCH
from .engine import KBError
from .kb import KB
from .load import Pending, Problem, Record
from .render import as_json
from .stream import Coded, Options, Tally, _days_together, _in_input_order, _patient_day, code_records

if TYPE_CHECKING:
    import dask.bag
    import dask.dataframe
    from distributed import Client, Future, LocalCluster

PATIENT_PARTITIONS = 16  # at most this many partitions hold the records that name a patient
Item = Record | Pending


class DaskError(Exception):
    """The cluster could not be reached, or lost: one line for a person."""


# ---------------------------------------------------------------------- the KB on a worker
@dataclass(frozen=True)
class KBSource:
    """Where a worker finds the client's KB, and what it must hold: the KB folder's path,
    the content hash of each of its files and of the bridge's modules."""

    path: str
    fingerprint: tuple[tuple[str, str], ...]
    bridge: str

    @classmethod
    def of(cls, kb: KB) -> KBSource:
        return cls(str(kb.root), tuple(sorted(kb.fingerprint.items())), _bridge_version())

    @classmethod
    def at(cls, kb: KB | str | Path | None) -> KBSource:
        return cls.of(kb if isinstance(kb, KB) else load_kb(kb))

    def load(self) -> KB:
        """The KB, loaded once per worker process (and kept while the worker lives)."""
        with _LOCK:
            kb = _KBS.get(self)
            if kb is None:
                kb = self._load()
                if len(_KBS) >= 4:  # a long-lived worker serving clients of several KBs
                    _KBS.pop(next(iter(_KBS)))
                _KBS[self] = kb
                _LOADS.append(self.path)
            return kb

    def _load(self) -> KB:
        if _bridge_version() != self.bridge:
            raise KBError([f"this worker runs another version of tpkb than the client (bridge/*.py differ); "
                           f"install the same tpkb on every worker (KB {self.path})"])
        path = Path(self.path)
        if not (path / "main.lp").is_file() and (default_kb_path() / "main.lp").is_file():
            path = default_kb_path()  # not at the client's path here: the worker's own copy, if the same
        kb = load_kb(path)
        if tuple(sorted(kb.fingerprint.items())) != self.fingerprint:
            theirs = dict(self.fingerprint)
            differ = sorted(f for f in set(theirs) | set(kb.fingerprint) if theirs.get(f) != kb.fingerprint.get(f))
            raise KBError([f"the KB this worker reads at {path} is not the client's ({', '.join(differ[:5])} differ); "
                           "give every worker the same KB folder"])
        return kb


_KBS: dict[KBSource, KB] = {}
_LOADS: list[str] = []  # every KB this process loaded for a task (tests count them)
_LOCK = threading.Lock()


@functools.cache
def _bridge_version() -> str:
    from .kb import _bridge_version as version

    return version()


def _code(source: KBSource, options: Options, size: int, items: Sequence[Item]) -> list[Coded]:
    """Records coded in batches of `size`, a patient's day in one batch, in input order."""
    if not items:
        return []
    kb = source.load()
    order: deque[int] = deque()
    coded = (c for batch in _days_together(items, size, order) for c in code_records(kb, batch, options))
    return list(_in_input_order(coded, order))


def _code_batch(source: KBSource, options: Options, batch: list[Item]) -> list[Coded]:
    """One batch, one solve (what `tpkb code --dask` sends a worker)."""
    return code_records(source.load(), batch, options)


# ---------------------------------------------------------------------- tpkb code --dask
def code_dask(address: str, kb: KB, items: Iterable[Item], options: Options, batch_size: int, *,
              workers: int | None = None, ahead: int | None = None,
              tally: Tally | None = None) -> Streamed:
    """The records coded on the Dask cluster whose scheduler is at `address`
    (tcp://host:8786), or on a new local cluster of `workers` processes ("local"), each
    as `code_stream` yields it, in input order.

    This process reads the input and makes the batches, and keeps at most `ahead` batches
    (default: twice the workers' threads) on the cluster or waiting to be handed on. It
    connects before it returns (DaskError if it cannot); the cluster is let go when the
    records run out or the iterator is closed. `tally` gets the patient's days that came
    too late, as code_stream's does."""
    client, cluster = connect(address, workers)
    try:
        threads = sum(client.nthreads().values())
        source = KBSource.of(kb)
    except BaseException:
        _close(client, cluster)
        raise
    ahead = ahead or max(2, 2 * threads)
    return Streamed(_streamed(client, source, items, options, batch_size, ahead, tally), client, cluster)


class Streamed(Iterator[Coded]):
    """The coded records of code_dask; close() lets the cluster go (also when no record
    was asked for)."""

    def __init__(self, coded: Generator[Coded, None, None], client: Client, cluster: LocalCluster | None):
        self.coded, self.client, self.cluster = coded, client, cluster

    def __next__(self) -> Coded:
        try:
            return next(self.coded)
        except StopIteration:
            self.close()
            raise

    def close(self) -> None:
        try:
            self.coded.close()  # cancels the batches in flight
        finally:
            _close(self.client, self.cluster)


def connect(address: str, workers: int | None = None) -> tuple[Client, LocalCluster | None]:
    """A client of the scheduler at `address`, with a worker; "local": of a new local
    cluster of `workers` single-threaded processes. DaskError if it cannot be had."""
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise DaskError("Dask is not installed: pip install 'tpkb[dask]'") from None
    import dask

    timeout = dask.config.get("distributed.comm.timeouts.connect")
    if address == "local":
        from .stream import default_jobs

        try:
            cluster = LocalCluster(n_workers=workers or default_jobs(), threads_per_worker=1, processes=True,
                                   dashboard_address=":0", silence_logs=logging.ERROR)
        except Exception as exc:  # noqa: BLE001 - whatever stopped it, said in one line
            raise DaskError(f"cannot start a local Dask cluster: {type(exc).__name__}: {exc}") from None
        try:
            return Client(cluster, set_as_default=False), cluster
        except BaseException:
            cluster.close()
            raise
    try:
        if not address.startswith("inproc://"):  # (an in-process cluster, as in tests: no probe)
            _probe(address, dask.utils.parse_timedelta(timeout))
        client = Client(address, set_as_default=False, timeout=timeout)
    except Exception as exc:  # noqa: BLE001 - OSError, TimeoutError, ValueError (a bad address), ...
        raise DaskError(f"cannot connect to the Dask scheduler at {address}: {exc}") from None
    try:
        if not client.nthreads():
            client.wait_for_workers(1, timeout=dask.utils.parse_timedelta(timeout))
    except (TimeoutError, OSError) as exc:
        client.close()
        raise DaskError(f"the Dask scheduler at {address} has no worker ({exc})") from None
    return client, None


def _probe(address: str, timeout: float) -> None:
    """Reach the scheduler once before a Client is made: a Client that fails to connect
    hangs for twice the timeout when it is let go, and prints a traceback."""
    import asyncio

    from distributed.comm import connect

    async def reach() -> None:
        comm = await connect(address, timeout=timeout)
        await comm.close()

    asyncio.run(reach())


def _streamed(client: Client, source: KBSource, items: Iterable[Item], options: Options, size: int, ahead: int,
              tally: Tally | None) -> Generator[Coded, None, None]:
    order: deque[int] = deque()
    flying: deque[Future] = deque()

    def coded() -> Iterator[Coded]:
        for batch in _days_together(items, size, order, tally=tally):
            flying.append(client.submit(_code_batch, source, options, batch, pure=False))
            if len(flying) >= ahead:
                yield from _result(flying.popleft())
        while flying:
            yield from _result(flying.popleft())

    try:
        yield from _in_input_order(coded(), order)
    finally:
        for future in flying:
            future.cancel()
        flying.clear()


def _result(future: Future) -> list[Coded]:
    from distributed import CancelledError, KilledWorker

    try:
        return future.result()
    except KilledWorker:
        raise DaskError("a Dask worker died while coding a batch, each time it was tried (out of memory?)") from None
    except (CancelledError, OSError) as exc:
        raise DaskError(f"lost the Dask cluster while coding ({type(exc).__name__}: {exc})") from None


def _close(client: Client, cluster: LocalCluster | None) -> None:
    """(Again: nothing.)"""
    try:
        client.close()
    finally:
        if cluster is not None:
            cluster.close()


# ---------------------------------------------------------------------- bags and dataframes
def code_bag(bag: dask.bag.Bag, kb: KB | str | Path | None = None, *, explain: bool = False, full: bool = False,
             batch_size: int | None = None, name: str = "bag",
             patient_partitions: int | None = None) -> dask.bag.Bag:
    """A bag of coded records, one per record of `bag`, in its order and partitions.

    A record is a JSONL line (str or bytes, as `dask.bag.read_text` gives them; a blank one
    is no record, and has no coded record), a mapping (an encounter or a case, as
    `json.loads` gives it), or a bridge.load Record or Pending.
    Each coded record is a dict: "json", the text `tpkb code --format jsonl` prints for it
    (an error record for a malformed one); "ok"; "problems", one line each. A record's
    place, in messages and as the id of an encounter without one, is `NAME[P]:N`:
    partition P (from 0), item N (from 1).

    `kb` is the KB folder (default: $TPKB_KB, else the bundled KB), or the KB loaded from
    it: the workers load it from that folder, and refuse to code unless it is the same.
    `explain` and `full` are those of tpkb code; each partition is coded in batches of
    `batch_size` (500), one solve each. The records that name a patient
    go, by (patient, date), through `patient_partitions` extra partitions (at most 16 by
    default), where each day is coded in one batch, and are put back in place."""
    import dask.bag as db

    parts = bag.to_delayed(optimize_graph=True)
    coded = _coded_partitions(parts, functools.partial(_split_items, name=name), KBSource.at(kb),
                              _json_options(explain, full), batch_size or BATCH,
                              patient_partitions)
    return db.from_delayed([_delayed(_as_dicts)(plain, *held) for plain, held, _ in coded])


def code_dataframe(frame: dask.dataframe.DataFrame, kb: KB | str | Path | None = None, *, column: str | None = None,
                   explain: bool = False, full: bool = False, batch_size: int | None = None, name: str = "frame",
                   patient_partitions: int | None = None) -> dask.dataframe.DataFrame:
    """A dataframe of coded records, one row per row of `frame`, with its index and
    divisions: columns "json" (the text `tpkb code --format jsonl` prints), "ok" (bool) and
    "problems" (text: one line per problem, "" for none).

    Each row is one encounter or case. With `column`, that column holds it, as JSON text
    (or a mapping); without, the frame has one column per top-level field (as
    `dask.dataframe.read_json(path, lines=True)` reads encounters), and a row's missing
    values (None, NaN, NaT) are fields left out, timestamps at midnight are dates, whole
    numbers stored as floats are integers. Nested fields (procedures, billed, ...) must
    reach the frame as lists and mappings: Dask's string conversion turns them into text
    (make the frame under `dask.config.set({"dataframe.convert-string": False})`), and each
    such record is reported malformed. A row's place, in messages and as a missing id, is
    `NAME[P]:N`: partition P (from 0), row N (from 1). The rest as code_bag."""
    import dask.dataframe as dd

    if column is not None and column not in frame.columns:
        raise KeyError(f"no column {column!r} in the frame (columns: {', '.join(map(str, frame.columns))})")
    parts = frame.to_delayed(optimize_graph=True)
    split = functools.partial(_split_frame, column=column, name=name)
    coded = _coded_partitions(parts, split, KBSource.at(kb), _json_options(explain, full),
                              batch_size or BATCH, patient_partitions)
    meta = _as_frame(frame._meta.index, [])
    frames = [_delayed(_as_frame)(index, plain, *held) for plain, held, index in coded]
    return dd.from_delayed(frames, meta=meta, divisions=frame.divisions)


def _json_options(explain: bool, full: bool) -> Options:
    return Options(explain=explain, render=partial(as_json, full=full))


def _delayed(fn: Any) -> Any:
    from dask import delayed

    return delayed(fn, pure=False)


def _coded_partitions(parts: Sequence[Any], split: Any, source: KBSource, options: Options, size: int,
                      patient_partitions: int | None) -> list[tuple[Any, list[Any], Any]]:
    """For each partition (a Delayed): its coded records that name no patient and, from
    each patient partition, those of its records that name one (lists of (position,
    Coded)), and its index (None for a bag). The graph: split each partition into its
    own records and its records by patient partition; code each; hand the patient
    records back to the partitions they came from."""
    n = len(parts)
    buckets = max(1, min(n, patient_partitions or PATIENT_PARTITIONS))
    delayed = _delayed
    splits = [delayed(split)(part, p, buckets) for p, part in enumerate(parts)]
    plain = [delayed(_code_plain)(source, options, size, s[0]) for s in splits]
    held = [delayed(_code_held)(source, options, size, *[s[1][k] for s in splits]) for k in range(buckets)]
    return [(plain[p], [h[p] for h in held], splits[p][2]) for p in range(n)]


def _split_items(part: Iterable[Any], index: int, buckets: int, name: str) -> tuple[list, list[list], None]:
    return (*_split(_items(part, f"{name}[{index}]", blank=False), buckets), None)


def _split_frame(frame: Any, index: int, buckets: int, column: str | None, name: str) -> tuple[list, list[list], Any]:
    where = f"{name}[{index}]"
    values = frame[column].tolist() if column is not None else frame.to_dict("records")
    if column is None:
        values = [{k: _cell(v) for k, v in row.items() if not _missing(v)} for row in values]
    return (*_split(_items(values, where, blank=True), buckets), frame.index)


def _split(items: Iterable[Item], buckets: int) -> tuple[list[tuple[int, Item]], list[list[tuple[int, Item]]]]:
    """A partition's records that name no patient, with their positions; and, for each
    patient partition, its records that name one, with their positions (a patient's day
    goes to the same patient partition from every partition)."""
    plain: list[tuple[int, Item]] = []
    held: list[list[tuple[int, Item]]] = [[] for _ in range(buckets)]
    for position, item in enumerate(items):
        day = _patient_day(item)
        if day is None:
            plain.append((position, item))
        else:  # crc32, not hash(): the same in every process
            held[zlib.crc32(json.dumps(day).encode()) % buckets].append((position, item))
    return plain, held


def _code_plain(source: KBSource, options: Options, size: int,
                plain: list[tuple[int, Item]]) -> list[tuple[int, Coded]]:
    coded = _code(source, options, size, [item for _, item in plain])
    return [(position, c) for (position, _), c in zip(plain, coded)]


def _code_held(source: KBSource, options: Options, size: int,
               *pieces: list[tuple[int, Item]]) -> list[list[tuple[int, Coded]]]:
    """The records of one patient partition, from every partition (pieces[p]), coded a day
    at a time (each day's records side by side, however far apart they were), and handed
    back by partition: [[(position, Coded)], ...]."""
    places = [(p, position) for p, piece in enumerate(pieces) for position, _ in piece]
    items = [item for piece in pieces for _, item in piece]
    days: dict[tuple[str, str] | None, list[int]] = {}
    for i, item in enumerate(items):
        days.setdefault(_patient_day(item), []).append(i)
    grouped = [i for members in days.values() for i in members]
    back: list[list[tuple[int, Coded]]] = [[] for _ in pieces]
    for i, coded in zip(grouped, _code(source, options, size, [items[i] for i in grouped])):
        p, position = places[i]
        back[p].append((position, coded))
    return back


def _as_dicts(plain: list[tuple[int, Coded]], *held: list[tuple[int, Coded]]) -> list[dict]:
    """A partition's coded records, in its order: its own, and those back from each patient
    partition."""
    coded = sorted([*plain, *(pair for piece in held for pair in piece)], key=lambda pair: pair[0])
    return [{"json": c.text, "ok": c.ok, "problems": list(c.problems)} for _, c in coded]


def _as_frame(index: Any, plain: list[tuple[int, Coded]], *held: list[tuple[int, Coded]]) -> Any:
    """A partition's coded records as a pandas frame with the partition's index; text
    columns as Arrow strings (what Dask would make of them), problems one line each."""
    import pandas as pd  # type: ignore[import-untyped]

    text = pd.StringDtype("pyarrow")
    rows = _as_dicts(plain, *held)
    return pd.DataFrame({"json": pd.Series([r["json"] for r in rows], dtype=text, index=index),
                         "ok": pd.Series([r["ok"] for r in rows], dtype=bool, index=index),
                         "problems": pd.Series(["\n".join(r["problems"]) for r in rows], dtype=text, index=index)},
                        index=index)


def _items(values: Iterable[Any], where: str, blank: bool) -> Iterator[Item]:
    """The records of a partition; without `blank`, text that is blank is no record (as a
    blank line of a JSONL file is none)."""
    for line, value in enumerate(values, start=1):
        if blank or not isinstance(value, (str, bytes, bytearray)) or value.strip():
            yield _item(value, where, line)


def _item(value: Any, where: str, line: int) -> Item:
    """A record of a bag or a frame as the stream reads it: a JSONL line at `where:line`."""
    if isinstance(value, (Record, Pending)):
        return value
    if isinstance(value, str):
        return Pending(where, line, value.encode("utf-8", "surrogateescape"))
    if isinstance(value, (bytes, bytearray)):
        return Pending(where, line, bytes(value))
    if isinstance(value, Mapping):
        try:
            return Pending(where, line, json.dumps(value, default=_json_value, allow_nan=False).encode())
        except (TypeError, ValueError, RecursionError) as exc:
            message = f"cannot be written as JSON: {exc}"
            return Record(where, line, None, problems=[Problem(where, line, None, "", message)])
    return Pending(where, line, b"null" if _missing(value) else json.dumps(_plain(value), default=str).encode())


def _json_value(value: Any) -> Any:
    """What json.dumps cannot write itself: dates (from YAML or a dataframe), numpy values."""
    plain = _plain(value)
    if plain is value:
        raise TypeError(f"a value of type {type(value).__name__}")
    return plain


def _plain(value: Any) -> Any:
    """A value as JSON holds it: dates and timestamps as text (a timestamp at midnight is a
    date), numpy scalars and arrays as numbers and lists."""
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == datetime.min.time() else value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
        return _plain(value.tolist())
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _cell(value: Any) -> Any:
    """A dataframe's value of a top-level field; a whole number stored as a float (an integer
    column with missing values is a float column) is an integer."""
    value = _plain(value)
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _missing(value: Any) -> bool:
    """A dataframe's missing value: None, NaN, NaT, pandas.NA."""
    if value is None:
        return True
    if isinstance(value, float):
        return math.isnan(value)
    return type(value).__name__ in ("NaTType", "NAType")
