"""Streams shared with workers: input order kept, a bounded number of batches held, and a
worker that dies is an error, never a hang. (Whole-process runs are in test_cli.py.)"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool

import pytest

from bridge import stream
from bridge.stream import Coded, _coded, _Shared


def fake_work(batch: list) -> list[Coded]:
    if batch == [0]:
        time.sleep(0.5)  # the first batch is slow: meanwhile this process could read on
    return [Coded(True, (), f"worker {item}") for item in batch]


def fake_code_records(_kb: object, batch: list, _options: object) -> list[Coded]:
    return [Coded(True, (), f"here {item}") for item in batch]


def test_batches_come_out_in_input_order_and_few_are_held(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stream, "_work", fake_work)
    monkeypatch.setattr(stream, "code_records", fake_code_records)
    taken = []

    def batches() -> Iterator[list[int]]:
        for n in range(200):
            taken.append(n)
            yield [n]

    with ThreadPoolExecutor(2) as pool:
        shared = _Shared(None, None, pool, 2, batches())  # type: ignore[arg-type]
        out = shared.run()
        first = next(out)
        held = len(taken)  # batches read by the time the first one is handed on
        rest = list(out)
    assert [c.text.split()[1] for c in [first, *rest]] == [str(n) for n in range(200)]
    assert {c.text.split()[0] for c in rest} == {"worker", "here"}
    assert held <= _Shared.AHEAD * 3 + 1 < 200


def test_a_worker_that_died_is_an_error_not_a_hang() -> None:
    dead: Future = Future()
    dead.set_exception(BrokenProcessPool("gone"))
    with pytest.raises(RuntimeError, match="a worker process stopped before it finished its batch"):
        _coded(dead)
