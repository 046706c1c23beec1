"""Streams (bridge/stream.py): input order kept, a bounded number of batches read ahead,
a worker that dies is an error and never a hang, workers retired and replaced without a
change in any answer, a patient's day kept together within a window, and a slow
producer answered at once. (Whole-process runs are in test_cli.py.)"""

from __future__ import annotations

import fcntl
import json
import os
import pty
import select
import struct
import subprocess
import sys
import termios
import threading
import time
from collections import deque
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest

from bridge import stream
from bridge.load import Pending
from bridge.render import as_json
from bridge.stream import FLUSH, Coded, Options, Tally, _days_together, code_records, code_stream

ROOT = Path(__file__).resolve().parent.parent
OPTIONS = Options(render=partial(as_json, full=False))


def line(i: int, patient: str | None = None, date: str = "2025-06-02") -> Pending:
    doc: dict = {"id": f"r{i}", "date": date, "procedures": [
        {"muscle": ["trapezius", "SCM", "QL", "rhomboid major"][i % 4], "side": "left", "injectate": ["lidocaine"]}]}
    if patient:
        doc["patient"] = patient
    return Pending("<test>", i + 1, json.dumps(doc).encode())


class FakeProcess:
    """A worker process stand-in, in this process: the first batch is slow (meanwhile the
    stream could read on), and a batch of ["die"] is a worker that stops."""

    started = 0

    def __init__(self, *_args: object):
        FakeProcess.started += 1

    def code(self, batch: list) -> tuple[list[Coded], bool]:
        if batch == ["die"]:
            raise EOFError
        if batch == [0]:
            time.sleep(0.5)
        return [Coded(True, (), f"worker {item}") for item in batch], False

    def exitcode(self) -> int:
        return -9

    def close(self) -> None:
        pass


def test_batches_come_out_in_input_order_and_few_are_read_ahead(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stream, "_Process", FakeProcess)
    taken = []

    def batches() -> Iterator[list[int]]:
        for n in range(200):
            taken.append(n)
            yield [n]

    coders = stream._Coders(None, OPTIONS, batches(), 2, 1e9, 0, Tally())  # type: ignore[arg-type]
    out = coders.run(None)
    first = next(out)
    held = len(taken)  # batches read by the time the first one is handed on
    rest = list(out)
    assert [c.text for c in [first, *rest]] == [f"worker {n}" for n in range(200)]
    assert held <= stream.AHEAD * 3 + 2 < 200


def test_a_worker_that_died_is_an_error_not_a_hang(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stream, "_Process", FakeProcess)
    batches: list = [[1], ["die"], [3]]
    coders = stream._Coders(None, OPTIONS, iter(batches), 2, 1e9, 0, Tally())  # type: ignore[arg-type]
    out = coders.run(None)
    assert next(out).text == "worker 1"
    with pytest.raises(RuntimeError, match=r"a worker process stopped before it finished its batch \(exit status "
                                           r"-9: out of memory\?\)"):
        next(out)


def test_workers_retired_after_every_batch_give_the_answers_of_one_solve(kb) -> None:
    items = [line(i) for i in range(60)]
    one_solve = [c.text for c in code_records(kb, items, OPTIONS)]
    tally = Tally()
    # worker_mb=0: each worker retires after its first batch, and a fresh one takes its place
    streamed = [c.text for c in code_stream(kb, items, OPTIONS, batch_size=10, jobs=2, worker_mb=0, in_process=0,
                                            tally=tally)]
    assert streamed == one_solve
    assert tally.workers_started == 6


def test_short_input_is_coded_in_this_process(kb, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stream, "_Process", None)  # a worker started would fail
    items = [line(i) for i in range(25)]
    assert len(list(code_stream(kb, items, OPTIONS, batch_size=25, jobs=2))) == 25  # one full batch, the last
    assert len(list(code_stream(kb, items, OPTIONS, batch_size=100, jobs=2))) == 25  # one partial batch


def test_once_a_worker_has_started_this_process_codes_no_more(monkeypatch: pytest.MonkeyPatch) -> None:
    """This process codes the first batch while the workers start; after that it only
    reads and writes, so that its memory stays that of the KB (the bound of bench/memory.py)."""
    monkeypatch.setattr(stream, "_Process", FakeProcess)

    def here(_kb: object, batch: list, _options: object) -> list[Coded]:
        if batch == [0]:
            time.sleep(0.3)  # still busy when the second batch comes: that one starts the workers
        return [Coded(True, (), f"here {item}") for item in batch]

    monkeypatch.setattr(stream, "code_records", here)
    batches = iter([[n] for n in range(20)])
    coders = stream._Coders(None, OPTIONS, batches, 2, 1e9, 1000, Tally())  # type: ignore[arg-type]
    assert [c.text for c in coders.run(None)] == ["here 0"] + [f"worker {n}" for n in range(1, 20)]


def batched(items: list, size: int, window: int) -> tuple[list[list], Tally, deque[int]]:
    order: deque[int] = deque()
    tally = Tally()
    out = [[json.loads(p.raw)["id"] if isinstance(p, Pending) else p for p in b]
           for b in _days_together(items, size, order, window=window, tally=tally)]
    return out, tally, order


def test_a_patients_day_is_kept_together_within_the_window() -> None:
    items = [line(0, "p"), *[line(i) for i in range(1, 6)], line(6, "p")]
    out, tally, order = batched(items, 3, window=10)
    assert ["r0", "r6"] in [[i for i in b if i in ("r0", "r6")] for b in out]  # one batch holds both
    assert sum(len(b) for b in out) == 7 and tally.late_days == 0
    assert sorted(order) == list(range(7))


def test_a_day_further_apart_than_the_window_is_coded_apart_and_counted() -> None:
    items = [line(0, "p"), *[line(i) for i in range(1, 6)], line(6, "p")]
    out, tally, _ = batched(items, 3, window=3)
    together = [b for b in out if "r0" in b or "r6" in b]
    assert len(together) == 2 and tally.late_days == 1


def test_a_pause_codes_what_has_come_a_patients_day_included() -> None:
    items = [line(0, "p"), line(1), FLUSH, line(2, "p")]
    out, _, _ = batched(items, 10, window=100)
    assert out == [["r1", "r0"], ["r2"]]
    assert batched([FLUSH, line(0)], 10, window=100)[0] == [[], ["r0"]]  # a pause with nothing come


def test_a_slow_producer_gets_each_answer_before_it_sends_the_next(kb) -> None:
    answered = threading.Event()
    gaps: list[bool] = []

    def producer() -> Iterator[Pending]:
        for i in range(3):
            yield line(i)
            gaps.append(answered.wait(timeout=10))  # the next line only once this one is answered
            answered.clear()

    for coded in code_stream(kb, producer(), OPTIONS, batch_size=1000, jobs=2, flush_after=0.05):
        assert coded.ok
        answered.set()
    assert gaps == [True, True, True]


def tpkb_on_terminal(*args: str, stdin: str) -> tuple[int, str]:
    """Run tpkb with its standard error on a terminal; what it wrote there."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # a terminal's size
    proc = subprocess.Popen([sys.executable, "-m", "bridge", *args], stdin=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, stderr=follower, cwd=ROOT)
    os.close(follower)
    assert proc.stdin is not None
    proc.stdin.write(stdin.encode())
    proc.stdin.close()
    seen = b""
    while True:
        ready, _, _ = select.select([leader], [], [], 60)
        if not ready:
            break
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the terminal closed: tpkb has ended
            break
        if not chunk:
            break
        seen += chunk
    os.close(leader)
    return proc.wait(timeout=60), seen.decode(errors="replace")


def test_a_progress_bar_on_a_terminal_never_in_a_pipe_or_with_quiet() -> None:
    records = "".join(line(i).raw.decode() + "\n" for i in range(3))
    status, shown = tpkb_on_terminal("code", "-", "--format", "jsonl", stdin=records)
    assert status == 0 and "records [" in shown and "records/s]" in shown, shown  # count and rate
    status, shown = tpkb_on_terminal("code", "-", "--format", "jsonl", "--quiet", stdin=records)
    assert status == 0 and shown == ""
    piped = subprocess.run([sys.executable, "-m", "bridge", "code", "-", "--format", "jsonl"], input=records,
                           capture_output=True, text=True, cwd=ROOT)
    assert piped.returncode == 0 and piped.stderr == ""


def test_a_slow_producer_on_standard_input_gets_each_answer_within_a_second() -> None:
    proc = subprocess.Popen([sys.executable, "-m", "bridge", "code", "-", "--format", "jsonl"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=ROOT)
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(line(0).raw + b"\n")  # the first answer also waits for Python and the KB to load
    proc.stdin.flush()
    assert json.loads(proc.stdout.readline())["id"] == "r0"
    waits = []
    for i in range(1, 4):
        start = time.perf_counter()
        proc.stdin.write(line(i).raw + b"\n")
        proc.stdin.flush()
        assert json.loads(proc.stdout.readline())["id"] == f"r{i}"
        waits.append(time.perf_counter() - start)
    proc.stdin.close()
    assert proc.wait(timeout=30) == 0
    assert max(waits) < 2.5, waits  # about a second; room for a loaded test machine
