"""A patient's day (issue 7, item 7): sessions of one patient on one date of service are
counted together, whatever the batch size or the number of jobs, and the output keeps
input order."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import encounters

from bridge.api import code
from bridge.kb import KB

ROOT = Path(__file__).resolve().parent.parent
MUSCLES = ["right trapezius", "left trapezius", "right levator scapulae", "left SCM", "right piriformis"]


def library(n: int = 150, seed: int = 7) -> list[dict]:
    """Sessions of a few patients over a few days, shuffled, some without a patient."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        doc: dict = {"id": f"s{i:03d}", "date": f"2025-06-0{rng.randint(1, 3)}",
                     "procedures": [{"muscle": m, "injectate": rng.choice([["lidocaine 1%"], []])}
                                    for m in rng.sample(MUSCLES, rng.randint(1, 3))],
                     "billed": [{"code": "20552"}]}
        if rng.random() < 0.8:
            doc["patient"] = f"P{rng.randint(1, 12)}"
            if rng.random() < 0.7:
                doc["time"] = f"{rng.randint(7, 18):02d}:{rng.choice(['00', '30'])}"
        out.append(doc)
    return out


@pytest.fixture(scope="module")
def stream(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("days") / "library.jsonl"
    path.write_text("".join(json.dumps(doc) + "\n" for doc in library()))
    return path


def coded(path: Path, *options: str) -> list[dict]:
    proc = subprocess.run([sys.executable, "-m", "bridge", "code", "--format", "jsonl", *options, str(path)],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    return [json.loads(line) for line in proc.stdout.splitlines()]


def test_the_answer_does_not_depend_on_batch_size_or_jobs(stream: Path) -> None:
    runs = {options: coded(stream, *options) for options in
            (("--batch-size", "1", "--jobs", "1"), ("--batch-size", "7", "--jobs", "1"),
             ("--batch-size", "5000", "--jobs", "1"), ("--batch-size", "7", "--jobs", "2"))}
    first = next(iter(runs.values()))
    assert [r["id"] for r in first] == [d["id"] for d in library()]  # input order
    for options, outcomes in runs.items():
        assert outcomes == first, options
    later = [r for r in first if any(f["id"] == "same_day_later_session" for f in r["findings"])]
    assert len(later) > 20 and all(not r["lines"] or all(ln["code"][0] == "J" for ln in r["lines"]) for r in later)


def test_the_first_session_is_by_time_then_id(kb: KB) -> None:
    docs = [{"id": "b", "patient": "P", "time": "10:00", "procedures": [{"muscle": "right trapezius",
                                                                         "injectate": ["x"]}]},
            {"id": "a", "patient": "P", "time": "10:00", "procedures": [{"muscle": "left trapezius",
                                                                         "injectate": ["x"]}]},
            {"id": "c", "patient": "P", "time": "9:45", "procedures": [{"muscle": "right SCM", "injectate": ["x"]}]},
            {"id": "d", "patient": "P", "procedures": [{"muscle": "left SCM", "injectate": ["x"]}]}]
    out = code(kb, encounters(kb, *docs))
    assert [[ln.code for ln in o.lines] for o in out] == [[], [], ["20553"], []]
    messages = [f.message for o in out for f in o.findings if f.id == "same_day_later_session"]
    assert len(messages) == 3 and all('("c")' in m for m in messages)


def test_time_is_hh_mm(kb: KB) -> None:
    (enc,) = encounters(kb, {"patient": 12, "time": "9:30:15", "procedures": []})
    assert (enc.patient, enc.time) == ("12", "09:30")
    for bad in ("25:00", 930):
        with pytest.raises(ValueError, match="time of day"):
            encounters(kb, {"time": bad, "procedures": []})
