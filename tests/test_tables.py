"""bridge/tables.py: a batch is given only the table rows it can use, and that never
changes an answer."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from helpers import encounters, inj

from bridge.api import solve_batch, strings_in_play
from bridge.facts import batch_facts
from bridge.kb import KB
from bridge.load import read_paths

ROOT = Path(__file__).resolve().parent.parent


def test_the_large_tables_are_keyed_by_code(kb: KB) -> None:
    keyed = {sig[0]: table.keys for sig, table in kb.tables.tables.items() if table.keys}
    assert keyed["ptp"] == (1, 2) and keyed["mue"] == (1,)
    assert keyed["muscle_name"] == (1,)


def test_one_encounter_reads_a_few_rows_of_twenty_thousand(kb: KB) -> None:
    enc = encounters(kb, {"procedures": [inj("trapezius", "left")], "billed": [{"code": "20552"}, {"code": "99213"}]})
    facts = batch_facts(enc, kb.reader())
    rows = kb.tables.for_batch(strings_in_play(facts))
    everything = list(kb.tables.all_rows())
    assert len(everything) > 20000 and len(rows) < 1000
    assert any(r[:2] == ("mue", "99213") for r in rows)
    assert any(r[0] == "ptp" and {"20552", "99213"} == {r[1], r[2]} for r in rows)
    assert not any(r[0] == "ptp" and "00100" in (r[1], r[2]) for r in rows)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_outcomes_are_the_same_with_every_row(kb: KB, tmp_path: Path, seed: int) -> None:
    path = tmp_path / "random.jsonl"
    with path.open("w") as out:
        subprocess.run([sys.executable, str(ROOT / "bench" / "generate.py"), "300", str(seed)], stdout=out, check=True)
    sources = [path] + ([ROOT / "cases"] if seed == 1 else [])
    batch = [r.encounter for r in read_paths(sources, kb.profiles()) if r.encounter is not None]
    filtered = solve_batch(kb, batch, mode="full")
    everything = solve_batch(kb, batch, mode="full", all_rows=True)
    for key, enc in enumerate(batch, start=1):
        assert filtered.outcome(key, enc) == everything.outcome(key, enc), enc.id
