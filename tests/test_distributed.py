"""Coding on a Dask cluster (bridge/distributed.py): `tpkb code --dask` prints, byte for
byte, what the local path prints; a bag or a dataframe gets one coded record per record, in
order; a patient's day is coded together wherever its sessions are; each worker loads the
KB once; an unreachable scheduler is one line and exit 2."""

from __future__ import annotations

import importlib.util
import json
import os
import random
import socket
import subprocess
import sys
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from bridge import distributed as dist
from bridge.cli import main
from bridge.kb import KB
from bridge.load import Pending, read_items
from bridge.render import as_json
from bridge.stream import Coded, Options, code_stream

pytest.importorskip("distributed")
import dask
import dask.bag as db
import dask.dataframe as dd
import pandas as pd  # type: ignore[import-untyped]
from distributed import Client, LocalCluster

ROOT = Path(__file__).resolve().parent.parent
OPTIONS = Options(render=partial(as_json, full=False))
MALFORMED = [b"{not json", b"[1, 2]", b'{"date": "2025-02-30", "procedures": []}', b'{"id": "x\xff", "date": 1}',
             b'{"patient": "P1", "date": "2025-03-04", "procedures": "none"}']


def _generator() -> Any:
    spec = importlib.util.spec_from_file_location("bench_generate", ROOT / "bench" / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def stream_lines(n: int = 300, seed: int = 10) -> list[bytes]:
    """bench/generate.py's encounters; some are sessions of four patients on two days,
    spread over the whole stream (so over batches and partitions), some lines malformed."""
    rng = random.Random(seed)
    docs = [_generator().encounter(rng, i) for i in range(n)]
    for doc in rng.sample(docs, 40):
        doc["patient"] = rng.choice(["P1", "P2", "P3", 4])
        doc["date"] = rng.choice(["2025-03-04", "2025-03-05"])
        if rng.random() < 0.5:
            doc["time"] = f"{rng.randint(8, 17):02d}:{rng.choice(['00', '30'])}"
    lines = [json.dumps(doc).encode() for doc in docs]
    for k, bad in enumerate(MALFORMED):
        lines.insert(17 + 61 * k, bad)
    return lines


@pytest.fixture(scope="module")
def lines() -> list[bytes]:
    return stream_lines()


@pytest.fixture(scope="module")
def path(lines: list[bytes], tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dask") / "stream.jsonl"
    out.write_bytes(b"".join(line + b"\n" for line in lines))
    return out


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    """Two single-threaded workers in this process: fast to start, and the KB cache is shared
    by both, so that "loaded once" means once."""
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0") as c:
        yield c


@pytest.fixture(scope="module")
def client(cluster: LocalCluster) -> Iterator[Client]:
    with Client(cluster, set_as_default=False) as c:
        yield c


def local(kb: KB, items: Any) -> list[Coded]:
    return list(code_stream(kb, items, OPTIONS, batch_size=1000))


def days_split_by(lines: list[bytes], size: int) -> int:
    """How many patient days have sessions in more than one run of `size` lines."""
    chunks: dict[tuple[str, str], set[int]] = {}
    for i, line in enumerate(lines):
        if b'"patient"' in line:
            doc = json.loads(line)
            chunks.setdefault((str(doc["patient"]), doc["date"]), set()).add(i // size)
    return sum(len(c) > 1 for c in chunks.values())


def test_code_dask_yields_what_the_local_path_yields(kb: KB, path: Path, lines: list[bytes],
                                                     cluster: LocalCluster) -> None:
    assert days_split_by(lines, 40) >= 4  # naive batches of 40 would split patients' days
    expected = local(kb, read_items([path], kb.profiles(), lazy=True))
    assert sum(not c.ok for c in expected) == len(MALFORMED)
    dist._KBS.clear()
    dist._LOADS.clear()
    assert list(dist.code_dask(cluster.scheduler_address, kb, read_items([path], kb.profiles(), lazy=True),
                               OPTIONS, 40)) == expected
    assert [str(kb.root)] == dist._LOADS  # the workers loaded the KB once (they share this process)


def test_code_dask_reads_a_few_batches_ahead(kb: KB, lines: list[bytes], cluster: LocalCluster) -> None:
    plain = [line for line in lines if b'"patient"' not in line][:100]  # (a patient's day is held a while)
    read = []

    def items() -> Iterator[Pending]:
        for n, line in enumerate(plain, start=1):
            read.append(n)
            yield Pending("s", n, line)

    coded = dist.code_dask(cluster.scheduler_address, kb, items(), OPTIONS, 20, ahead=2)
    first = next(coded)
    assert len(read) <= 3 * 20 < len(plain)
    assert [first, *coded] == local(kb, [Pending("s", n, line) for n, line in enumerate(plain, start=1)])


def test_tpkb_code_dask_local_prints_byte_for_byte_what_tpkb_code_prints(path: Path) -> None:
    """Two worker processes (`--dask local --jobs 2`), small batches, malformed lines."""
    def tpkb(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "bridge", "code", str(path), "--format", "jsonl", *args],
                              capture_output=True, cwd=ROOT, check=False)

    here = tpkb("--batch-size", "1000", "--jobs", "1")
    there = tpkb("--dask", "local", "--jobs", "2", "--batch-size", "100")
    assert here.returncode == there.returncode == 2, there.stderr
    assert there.stdout == here.stdout
    assert there.stderr == here.stderr
    assert len(here.stdout.splitlines()) == 305


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_every_format_prints_the_same_through_dask(path: Path, cluster: LocalCluster, fmt: str) -> None:
    runner = CliRunner(mix_stderr=False)
    here = runner.invoke(main, ["code", str(path), "--format", fmt, "--jobs", "1"])
    there = runner.invoke(main, ["code", str(path), "--format", fmt, "--dask", cluster.scheduler_address,
                                 "--batch-size", "100"])
    assert here.exit_code == there.exit_code == 2, there.output
    assert there.stdout == here.stdout and there.stderr == here.stderr


def test_a_scheduler_that_cannot_be_reached_is_one_line_and_exit_2(path: Path) -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT": "1s"}
    address = f"tcp://127.0.0.1:{port}"
    proc = subprocess.run([sys.executable, "-m", "bridge", "code", str(path), "--dask", address],
                          capture_output=True, text=True, cwd=ROOT, env=env, check=False)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.startswith(f"error: --dask: cannot connect to the Dask scheduler at {address}: ")
    assert len(proc.stderr.splitlines()) == 1, proc.stderr
    for address in ("nonsense://host:1", "host-without-port"):
        result = CliRunner(mix_stderr=False).invoke(main, ["code", str(path), "--dask", address])
        assert result.exit_code == 2 and result.stdout == ""
        assert result.stderr.startswith(f"error: --dask: cannot connect to the Dask scheduler at {address}: ")
        assert len(result.stderr.splitlines()) == 1, result.stderr


def test_a_worker_refuses_a_kb_that_is_not_the_clients(kb: KB) -> None:
    source = dist.KBSource.of(kb)
    other = dist.KBSource(source.path, (*source.fingerprint[1:], ("kb/rules/extra.lp", "0")), source.bridge)
    with pytest.raises(dist.KBError, match=r"is not the client's \(.*kb/rules/extra.lp differ\)"):
        other.load()


def expected_by_partition(kb: KB, lines: list[bytes], sizes: list[int], name: str) -> list[Coded]:
    """What the local path codes from the records named as code_bag names them."""
    items, start = [], 0
    for p, size in enumerate(sizes):
        items += [Pending(f"{name}[{p}]", n + 1, lines[start + n]) for n in range(size)]
        start += size
    return local(kb, items)


def test_code_bag_codes_each_record_in_place_and_patients_days_together(kb: KB, lines: list[bytes],
                                                                         client: Client) -> None:
    bag = db.from_sequence([line.decode("utf-8", "surrogateescape") for line in lines], partition_size=40)
    assert bag.npartitions == 8 and days_split_by(lines, 40) >= 4
    coded = dist.code_bag(bag, kb, patient_partitions=3)
    assert coded.npartitions == bag.npartitions
    out = client.compute(coded).result()
    expected = expected_by_partition(kb, lines, [40] * 7 + [25], "bag")
    assert out == [{"json": c.text, "ok": c.ok, "problems": list(c.problems)} for c in expected]
    # Blank text is no record (as a blank line of a JSONL file); records as mappings (json.loads
    # of each line) come out as their lines do.
    one = next(i for i, line in enumerate(lines) if b'"patient"' not in line and line not in MALFORMED)
    blanks = db.from_sequence(["\n", lines[one].decode(), "  "], npartitions=1)
    assert [r["json"] for r in client.compute(dist.code_bag(blanks, kb)).result()] == [out[one]["json"]]
    good = [line for line in lines if line not in MALFORMED]
    docs = db.from_sequence([json.loads(line) for line in good], npartitions=2)
    assert [r["json"] for r in client.compute(dist.code_bag(docs, kb, patient_partitions=1)).result()] == \
        [c.text for c in local(kb, [Pending("x", n, line) for n, line in enumerate(good, start=1)])]


def test_code_dataframe_keeps_index_and_divisions(kb: KB, lines: list[bytes], client: Client) -> None:
    lines = [line for line in lines if b"\xff" not in line]  # Arrow strings hold UTF-8 text only
    text = [line.decode() for line in lines]
    frame = dd.from_pandas(pd.DataFrame({"encounter": text, "n": range(len(text))},
                                        index=pd.RangeIndex(1000, 1000 + len(text))), npartitions=4)
    coded = dist.code_dataframe(frame, kb, column="encounter", patient_partitions=2)
    assert coded.divisions == frame.divisions
    out = client.compute(coded).result()
    assert list(out.index) == list(range(1000, 1000 + len(text)))
    sizes = list(client.compute(frame.map_partitions(len)).result())
    expected = expected_by_partition(kb, lines, sizes, "frame")
    assert list(out["json"]) == [c.text for c in expected]
    assert list(out["ok"]) == [c.ok for c in expected]
    assert list(out["problems"]) == ["\n".join(c.problems) for c in expected]


def test_code_dataframe_of_one_column_per_field(kb: KB, lines: list[bytes], client: Client) -> None:
    """As dask.dataframe.read_json(lines=True) reads encounters (with Dask's string conversion
    off, which would turn nested fields into text): a field a row lacks is a missing value,
    the date a timestamp."""
    good = [line for line in lines if line not in MALFORMED]
    table = pd.DataFrame.from_records([json.loads(line) for line in good])
    table["date"] = pd.to_datetime(table["date"])
    table["patient"] = table["patient"].astype(object).where(table["patient"].isna(), table["patient"].astype(str))
    with dask.config.set({"dataframe.convert-string": False}):
        frame = dd.from_pandas(table, npartitions=3)
    out = client.compute(dist.code_dataframe(frame, kb, patient_partitions=1)).result()
    assert list(out["json"]) == [c.text for c in local(kb, [Pending("x", n, line)
                                                          for n, line in enumerate(good, start=1)])]
