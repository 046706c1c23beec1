"""Properties of the whole pipeline over generated encounters (issue 10, item 3).

Encounters are drawn from the KB itself: muscle names, parts, groups, region terms,
ambiguous short names and side words from the lexicon tables, codes from the code, NCCI
and service tables, diagnoses from the payer policies, payers from kb.profiles(); with
guidance, services, billed lines, history, providers, ABNs and patients' days, as rich as
bench/generate.py. One example is a batch of encounters, solved together where the
property allows (a solve costs a tenth of a second, whatever its size).

The default run draws a few examples per property, the same every time (seconds). The
marked run, selected by TPKB_PROPERTY_EXAMPLES, draws that many random examples per
property (the variants that start processes a twentieth of that):

    TPKB_PROPERTY_EXAMPLES=2000 .venv/bin/python -m pytest tests/test_properties.py
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML, YAMLError
from test_engine import PUBLIC, public  # the plain-versus-instrumented comparison of the case library

from bridge import engine
from bridge.api import batch_input, code, default_kb_path, load_kb, solve_batch, strings_in_play
from bridge.cli import main
from bridge.engine import SolveError
from bridge.facts import batch_facts
from bridge.kb import KB
from bridge.model import MODALITIES, PROVIDER_TYPES, Encounter
from bridge.outcome import SEVERITY_ORDER, Answer
from bridge.terms import Pat, Var

ROOT = Path(__file__).resolve().parent.parent
KB_ = load_kb()  # once per module: the strategies are built from its tables
PROFILES = frozenset(KB_.profiles())

# ---------------------------------------------------------------------- how many examples
EXAMPLES = int(os.environ.get("TPKB_PROPERTY_EXAMPLES") or 0)


def examples(default: int, share: int = 1) -> settings:
    """`default` examples in the plain run (derandomized: the same every time, for CI);
    TPKB_PROPERTY_EXAMPLES (random, shrunk, saved) in the marked run, divided by `share` for
    the tests that start processes. Generation health checks are off: an example is a
    whole batch, large on purpose."""
    return settings(max_examples=max(1, EXAMPLES // share) if EXAMPLES else default, deadline=None,
                    derandomize=not EXAMPLES, print_blob=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                           HealthCheck.data_too_large, HealthCheck.large_base_example])


# ---------------------------------------------------------------------- the KB's vocabulary
def _texts(table: str) -> list[str]:
    return sorted({row[1] for row in KB_.table_rows(table) if isinstance(row[1], str)})


MUSCLE_NAMES = _texts("muscle_name")
PART_NAMES = _texts("muscle_part_name")
GROUP_NAMES = _texts("group_name")
REGION_TERMS = _texts("region_term")
AMBIGUOUS_TERMS = _texts("ambiguous_term")
SIDE_WORDS = _texts("side_word")
DRUG_NAMES = _texts("drug_name")
DRUG_STRENGTHS = _texts("drug_strength")
# A name or part name -> the muscle it names (for "is this muscle documented already?").
MUSCLE_OF = {row[1]: row[2].name for table in ("muscle_name", "muscle_part_name") for row in KB_.table_rows(table)}
GROUPED = {row[2].name for row in KB_.table_rows("group_member")}
# Names of muscles in no group: one more of them is one more muscle, exactly.
LONE_NAMES = [name for name in MUSCLE_NAMES if MUSCLE_OF[name] not in GROUPED]
UNKNOWN_TEXT = ["trapz", "glute medd", "musc", "foo", "neck and shoulder area", "L3-L5", "x3", "TPs", "mm."]

CODE_FAMILY = {row[1]: row[2].name for row in KB_.table_rows("code")}
DRUG_CODES = {c for c, family in CODE_FAMILY.items() if family in ("drug", "local_anaesthetic_iv")}
NEEDLE_CODES = {"20552", "20553", "20560", "20561"}
TPI_RANK = {"20552": 1, "20553": 2}
# Codes NCCI pairs with the KB's own codes, and codes no table knows (verdict not_reviewed).
PTP_PARTNERS = sorted({c for row in KB_.table_rows("ptp") if {row[1], row[2]} & set(CODE_FAMILY)
                       for c in (row[1], row[2])})
UNKNOWN_CODES = ["97140", "0232T", "J9999", "A4550", "99499"]
BILLED_CODES = sorted(CODE_FAMILY) + UNKNOWN_CODES
SERVICE_CODES = sorted({c for c, family in CODE_FAMILY.items() if family in ("em", "injection_admin")}
                       | {c for row in KB_.table_rows("other_injection_codes") for c in (row[1], row[2])}
                       | {"64400", "64405", "64450", "20610"})
MODIFIERS = sorted({row[1] for row in KB_.table_rows("ncci_modifier")} | {row[1] for row in KB_.table_rows(
    "payment_modifier")} | {"25", "59", "50", "RT", "LT", "KX", "76"})


def _kb_diagnoses() -> list[str]:
    """The ICD-10-CM codes the KB names (the payer policies' diagnosis lists), and a few others."""
    found = {m for path in KB_.root.rglob("*.lp")
             for m in re.findall(r'"([A-TV-Z][0-9][0-9A-Z](?:\.[0-9A-Z]{1,4})?)"', path.read_text())}
    return sorted(found | {"M54.2", "M79.7", "O26.891", "S13.4XXA"})


DIAGNOSES = _kb_diagnoses()
SHARED_DATES = [dt.date(2025, 6, 2), dt.date(2025, 6, 3), dt.date(2020, 1, 21), dt.date(2024, 4, 1),
                dt.date(2019, 12, 31)]


# ---------------------------------------------------------------------- strategies
def _cased(text: str, how: int) -> str:
    return (text, text.upper(), text.title(), text)[how]


@st.composite
def muscle_texts(draw: st.DrawFn) -> str:
    """A procedure's muscle text: one to three items, each a lexicon term with or without
    a side word before or after, joined as clinicians join them."""
    term = st.one_of(st.sampled_from(MUSCLE_NAMES), st.sampled_from(MUSCLE_NAMES), st.sampled_from(MUSCLE_NAMES),
                     st.sampled_from(PART_NAMES), st.sampled_from(GROUP_NAMES), st.sampled_from(REGION_TERMS),
                     st.sampled_from(AMBIGUOUS_TERMS), st.sampled_from(UNKNOWN_TEXT))
    items = []
    for _ in range(draw(st.integers(1, 3))):
        word = draw(term)
        if draw(st.integers(0, 5)) == 0:
            word += "s"  # plurals are read as the singular, or left over
        where = draw(st.sampled_from(["", "", "before", "after"]))
        side = draw(st.sampled_from(SIDE_WORDS))
        item = f"{side} {word}" if where == "before" else f"{word} {side}" if where == "after" else word
        items.append(_cased(item, draw(st.integers(0, 3))))
    text = items[0]
    for item in items[1:]:
        text += draw(st.sampled_from([", ", " and ", " & ", "/", "; ", ". ", "\n"])) + item
    if draw(st.integers(0, 6)) == 0:
        text += draw(st.sampled_from([" L3-L5", " C4-C6", " (upper)", " x2"]))
    return text


SUBSTANCES = st.one_of(
    st.just("lidocaine 1%"),
    st.sampled_from(DRUG_NAMES),
    st.tuples(st.sampled_from(DRUG_NAMES), st.sampled_from([5, 10, 20, 40, 80, 100])).map(lambda d: f"{d[0]} {d[1]} mg"),
    st.tuples(st.sampled_from(DRUG_STRENGTHS), st.sampled_from([0.5, 1, 2])).map(lambda d: f"{d[0]} {d[1]} mL"),
    st.sampled_from(["normal saline", "PRP 3 mL", "bupivacaine 0.25%", "dextrose 12.5%"]),
)
INJECTATES: st.SearchStrategy[list[str]] = st.one_of(st.just([]), st.lists(SUBSTANCES, min_size=1, max_size=2,
                                                                          unique=True))


@st.composite
def procedures(draw: st.DrawFn) -> dict[str, Any]:
    proc: dict[str, Any] = {"muscle": draw(muscle_texts()), "injectate": draw(INJECTATES)}
    side = draw(st.sampled_from([None, None, "left", "right", "bilateral"]))
    if side:
        proc["side"] = side
    if draw(st.integers(0, 3)) == 0:
        proc["trigger_points"] = draw(st.integers(1, 6))
    return proc


Fields = dict[str, st.SearchStrategy[Any]]


def entries(required: Fields, optional: Fields) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(required, optional=optional)


GUIDANCE = entries(
    {"modality": st.sampled_from(MODALITIES)},
    {"necessity": st.sampled_from(["", "deep muscle near the pleura", "obese patient, landmarks not palpable"]),
     "images_recorded": st.booleans()})
SERVICES = entries(
    {"code": st.sampled_from(SERVICE_CODES)},
    {"separately_identifiable": st.booleans(),
     "site": st.one_of(st.sampled_from(["left knee", "right greater occipital nerve", "right shoulder"]),
                       muscle_texts())})
BILLED = entries(
    {"code": st.one_of(st.sampled_from(sorted(NEEDLE_CODES)), st.sampled_from(BILLED_CODES),
                       st.sampled_from(PTP_PARTNERS))},
    {"units": st.sampled_from([1, 1, 1, 2, 3, 999]),
     "modifiers": st.lists(st.sampled_from(MODIFIERS), max_size=2, unique=True)})
PROVIDER = entries({"type": st.sampled_from(PROVIDER_TYPES)}, {"acupuncture_license": st.booleans()})


@st.composite
def encounter_docs(draw: st.DrawFn, patients: bool = True, min_procedures: int = 0) -> dict[str, Any]:
    """One encounter in the case format (a dict, as a JSONL line holds it); no id."""
    day = draw(st.one_of(st.sampled_from(SHARED_DATES), st.dates(dt.date(2015, 1, 1), dt.date(2027, 12, 31))))
    payer = draw(st.sampled_from(sorted(PROFILES)))
    doc: dict[str, Any] = {"date": day.isoformat(), "payer": payer.upper() if draw(st.integers(0, 9)) == 0 else payer,
                           "procedures": draw(st.lists(procedures(), min_size=min_procedures, max_size=5))}
    if patients and draw(st.booleans()):
        doc["patient"] = draw(st.sampled_from(["p1", "p2", "p3"]))  # few: sessions of one day meet
        if draw(st.booleans()):
            doc["time"] = draw(st.sampled_from(["08:00", "09:30", "09:30", "14:15"]))
    if draw(st.integers(0, 2)) == 0:
        doc["guidance"] = draw(st.lists(GUIDANCE, min_size=1, max_size=2))
    if draw(st.integers(0, 3)) == 0:
        doc["services"] = draw(st.lists(SERVICES, min_size=1, max_size=2))
    if draw(st.booleans()):
        doc["billed"] = draw(st.lists(BILLED, max_size=4))
    if draw(st.booleans()):
        doc["diagnoses"] = draw(st.lists(st.sampled_from(DIAGNOSES), min_size=1, max_size=3, unique=True))
    if draw(st.integers(0, 2)) == 0:
        doc["history"] = [
            {"date": (day - dt.timedelta(days=draw(st.integers(0, 500)))).isoformat(),
             "codes": draw(st.lists(st.sampled_from(["20552", "20553", "20560", "20561", "97810", "97813"]),
                                    min_size=1, max_size=2)),
             **({"muscles": draw(muscle_texts())} if draw(st.booleans()) else {})}
            for _ in range(draw(st.integers(1, 4)))]
    if draw(st.integers(0, 4)) == 0:
        doc["abn"] = True
    if draw(st.integers(0, 3)) == 0:
        doc["provider"] = draw(PROVIDER)
    if draw(st.integers(0, 3)) == 0:
        doc["low_back_pain_weeks"] = draw(st.integers(0, 60))
    return doc


def batches(min_size: int = 1, max_size: int = 8, patients: bool = True,
            min_procedures: int = 0) -> st.SearchStrategy[list[dict[str, Any]]]:
    """Several encounters, each with an id of its own (a patient's sessions of one day are
    ordered by time, then id: with ids unique, never by position)."""
    return st.lists(encounter_docs(patients, min_procedures), min_size=min_size, max_size=max_size).map(
        lambda docs: [{"id": f"e{i}", **doc} for i, doc in enumerate(docs)])


# ---------------------------------------------------------------------- running them
def validated(docs: Sequence[dict[str, Any]]) -> list[Encounter]:
    return [Encounter.model_validate(doc, context={"profiles": PROFILES}) for doc in docs]


def rendered(docs: Sequence[dict[str, Any]]) -> list[str]:
    """Each encounter's outcome as `tpkb code --format jsonl` prints it, from one solve."""
    return [json.dumps(out.json()) for out in code(KB_, validated(docs))]


def jsonl(docs: Sequence[dict[str, Any]]) -> bytes:
    return b"".join(json.dumps(doc).encode() + b"\n" for doc in docs)


def renamed(doc: dict[str, Any]) -> dict[str, Any]:
    """The same encounter for another patient, so that a copy in the same batch never joins
    the original's day (and a copy of a day is a day of its own, alike)."""
    return {**doc, "patient": doc["patient"] + "~copy"} if "patient" in doc else dict(doc)


@dataclass(frozen=True)
class Tally:
    """What the KB counted for one session: muscles injected and needled (None for a later
    session of a day, which counts none), the codes the counts call for, and the lines."""

    injected: int | None
    needled: int | None
    calls_for: frozenset[str]
    lines: dict[str, int]


_PLAIN = KB_.program("plain")
_SHOWN = ("injected_count/2", "needled_count/2", "calls_for/2")
COUNTING = replace(_PLAIN, text=_PLAIN.text + "".join(f"#show {s}.\n" for s in _SHOWN),
                   origins=(*_PLAIN.origins, *((__file__, i + 1) for i in range(len(_SHOWN)))))


def tallies(docs: Sequence[dict[str, Any]]) -> list[Tally]:
    """The counts of every encounter of a batch, in one solve of the plain KB (with the
    counts shown: they are no public conclusion)."""
    shown = engine.solve(COUNTING, *batch_input(KB_, validated(docs)))
    by_key: dict[int, list[tuple]] = {}
    for atom in shown:
        by_key.setdefault(atom[1], []).append(atom)

    def one(name: str, atoms: list[tuple]) -> int | None:
        found = [a[2] for a in atoms if a[0] == name]
        assert len(found) <= 1, found
        return found[0] if found else None

    out = []
    for key in range(1, len(docs) + 1):
        atoms = by_key.get(key, [])
        out.append(Tally(one("injected_count", atoms), one("needled_count", atoms),
                         frozenset(a[2] for a in atoms if a[0] == "calls_for"),
                         {a[2]: a[3] for a in atoms if a[0] == "line"}))
    return out


RUNNER = CliRunner(mix_stderr=False)


def tpkb(*args: str, stdin: bytes | None = None) -> Result:
    """The CLI in this process (click's runner): a fraction of a second a run."""
    return RUNNER.invoke(main, list(args), input=stdin)


def no_traceback(result: Result) -> None:
    """Exit 0 or 2 and never an internal error: any exception other than the exit itself
    is what a user would have seen as 'internal error' (exit 3)."""
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exc_info
    assert result.exit_code in (0, 2), (result.exit_code, result.stderr)
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr, result.stderr


# ---------------------------------------------------------------------- 1. batch order
@examples(8)
@given(batches(max_size=8), st.data())
def test_the_order_of_encounters_in_a_batch_changes_no_answer(batch: list[dict[str, Any]], data: st.DataObject) -> None:
    order = data.draw(st.permutations(range(len(batch))), label="order")
    before = rendered(batch)
    after = rendered([batch[i] for i in order])
    for position, i in enumerate(order):
        assert after[position] == before[i], f"encounter {batch[i]['id']} changed when the batch was reordered"


# ---------------------------------------------------------------------- 2. procedure order
def _procedure_rules() -> frozenset[str]:
    """Finding rules whose label starts "procedure {P}": their message names a procedure by
    its number, and so does their subject where it is (P, ...)."""
    return frozenset(rule.id for rule in KB_.rules.values()
                     if rule.head.name == "finding" and re.match(r"procedure \{\w+\}", rule.label))


PROCEDURE_RULES = _procedure_rules()


def _subject_is_positional(rule_id: str) -> bool:
    rule = KB_.rules[rule_id]
    subject = rule.head.args[2]
    variable = re.match(r"procedure \{(\w+)\}", rule.label).group(1)  # type: ignore[union-attr]
    return isinstance(subject, Pat) and subject.name == "" and subject.args[0] == Var(variable)


def renumbered(outcome: str, number: Callable[[int], int]) -> str:
    """An outcome with every procedure number a finding carries (the "procedure N" of its
    message, and the N of a subject (N, ...)) mapped by `number`, findings sorted again as
    the outcome sorts them. Nothing else is touched."""
    out = json.loads(outcome)
    findings = []
    for finding in out["findings"]:
        if finding["rule"] in PROCEDURE_RULES:
            found = re.match(r"procedure (\d+)", finding["message"])
            assert found, finding
            old = int(found.group(1))
            finding = {**finding, "message": f"procedure {number(old)}" + finding["message"][found.end():]}
            if _subject_is_positional(finding["rule"]):
                head, _, rest = finding["subject"].partition(", ")
                assert head == str(old), finding
                finding["subject"] = f"{number(old)}, {rest}"
        findings.append(finding)
    findings.sort(key=lambda f: (SEVERITY_ORDER.get(f["severity"], 9), f["id"], f["subject"], f["message"]))
    return json.dumps({**out, "findings": findings})


def test_findings_that_name_a_procedure_are_known_and_renumbered() -> None:
    """The normalisation of the next property is needed and is exact: reordered, the
    findings name other numbers (the raw outcomes differ), and mapped back they are equal."""
    assert {"finding_unsided_counted", "finding_region_term", "finding_unread_text"} <= PROCEDURE_RULES
    doc = {"id": "x", "date": "2025-06-02", "procedures": [
        {"muscle": "trapezius", "injectate": ["lidocaine"]}, {"muscle": "paraspinals", "injectate": ["lidocaine"]},
        {"muscle": "trapz", "side": "left", "injectate": []}]}
    swapped = {**doc, "procedures": doc["procedures"][::-1]}
    before, after = rendered([doc, swapped])
    assert before != after and renumbered(after, lambda p: 4 - p) == renumbered(before, lambda p: p)
    assert renumbered(after, lambda p: p) != before  # the mapping is what makes them equal


def _original_number(order: Sequence[int], number: int) -> int:
    return order[number - 1] + 1


def _same_number(number: int) -> int:
    return number


def test_each_procedure_injecting_a_botulinum_toxin_is_a_finding_of_its_own() -> None:
    """Found by the property below: the chemodenervation finding was one per drug, its
    message naming whichever procedure sorted first, so reordering two Botox procedures
    named the other one (kb/rules/drugs.lp now keys it by procedure, as its label says)."""
    doc = {"id": "x", "date": "2025-06-02", "procedures": [{"muscle": "trapezius", "injectate": ["botox"]},
                                                           {"muscle": "levator scapulae", "injectate": ["botox"]}]}
    before, after = rendered([doc, {**doc, "procedures": doc["procedures"][::-1]}])
    assert [f["subject"] for f in json.loads(before)["findings"] if f["id"] == "chemodenervation"] == \
        ["1, onabotulinumtoxina", "2, onabotulinumtoxina"]
    assert renumbered(after, lambda p: 3 - p) == renumbered(before, _same_number)


@examples(8)
@given(batches(max_size=6), st.data())
def test_the_order_of_procedures_changes_no_answer(batch: list[dict[str, Any]], data: st.DataObject) -> None:
    orders = [data.draw(st.permutations(range(len(doc["procedures"]))), label=f"order of {doc['id']}")
              for doc in batch]
    copies = [{**renamed(doc), "procedures": [doc["procedures"][i] for i in order]}
              for doc, order in zip(batch, orders)]
    outs = rendered(batch + copies)  # one solve: each copy is a patient (and day) of its own
    for i, order in enumerate(orders):
        # procedure k + 1 of the copy is procedure order[k] + 1 of the original
        assert renumbered(outs[len(batch) + i], partial(_original_number, order)) == \
            renumbered(outs[i], _same_number), f"encounter {batch[i]['id']}, procedures in the order {order}"


# ---------------------------------------------------------------------- 3. a muscle listed twice
@examples(8)
@given(batches(max_size=6, min_procedures=1), st.data())
def test_listing_a_muscle_twice_changes_no_count_and_no_line(batch: list[dict[str, Any]],
                                                             data: st.DataObject) -> None:
    copies = []
    for doc in batch:
        procs = list(doc["procedures"])
        twice = data.draw(st.sampled_from(procs), label=f"listed twice in {doc['id']}")
        procs.insert(data.draw(st.integers(0, len(procs))), twice)
        copies.append({**renamed(doc), "procedures": procs})
    counted = tallies(batch + copies)
    for i, doc in enumerate(batch):
        once, twice_ = counted[i], counted[len(batch) + i]
        assert (twice_.injected, twice_.needled, twice_.calls_for) == (once.injected, once.needled, once.calls_for), \
            doc["id"]
        # A copied injectate is the drug given twice: drug lines may bill the dose, so
        # their codes are left out; every other line code stays.
        assert {c for c in twice_.lines if c not in DRUG_CODES} == {c for c in once.lines if c not in DRUG_CODES}, \
            doc["id"]


# ---------------------------------------------------------------------- 4. one more muscle
def _documented_muscles(doc: dict[str, Any]) -> set[str]:
    reader = KB_.reader()
    return {MUSCLE_OF[m.term] for p in doc["procedures"] for m in reader.read(p["muscle"]).mentions
            if m.term in MUSCLE_OF}


@examples(8)
@given(batches(max_size=6), st.data())
def test_one_more_injected_muscle_never_lowers_the_code(batch: list[dict[str, Any]], data: st.DataObject) -> None:
    copies, added = [], []
    for doc in batch:
        name = data.draw(st.one_of(st.sampled_from(LONE_NAMES), st.sampled_from(MUSCLE_NAMES)),
                         label=f"added to {doc['id']}")
        side = data.draw(st.sampled_from(["left", "right", "bilateral"]))
        procs = list(doc["procedures"])
        procs.insert(data.draw(st.integers(0, len(procs))), {"muscle": name, "side": side, "injectate": ["lidocaine 1%"]})
        copies.append({**renamed(doc), "procedures": procs})
        added.append((name, side))
    counted = tallies(batch + copies)
    exact = 0
    for i, doc in enumerate(batch):
        before, after = counted[i], counted[len(batch) + i]
        assert (before.injected is None) == (after.injected is None), doc["id"]  # a later session stays one
        if before.injected is None or after.injected is None:
            continue
        assert after.injected >= before.injected, doc["id"]
        rank_before = max((TPI_RANK.get(c, 0) for c in before.calls_for), default=0)
        rank_after = max((TPI_RANK.get(c, 0) for c in after.calls_for), default=0)
        assert rank_after >= max(rank_before, 1), (doc["id"], before.calls_for, after.calls_for)
        assert not ("20553" in before.lines and "20552" in after.lines), (doc["id"], before.lines, after.lines)
        name, side = added[i]
        muscle = MUSCLE_OF[name]
        if "patient" not in doc and muscle not in GROUPED and muscle not in _documented_muscles(doc):
            # a muscle documented nowhere and in no group: one more per side, exactly
            exact += 1
            assert after.injected == before.injected + (2 if side == "bilateral" else 1), (doc["id"], name, side)
            assert after.needled == before.needled, doc["id"]
    note(f"{exact} exact increments")


# ---------------------------------------------------------------------- 5. alone or in a batch
@examples(8)
@given(batches(min_size=2, max_size=8), st.data())
def test_an_encounter_alone_and_in_a_batch_gets_the_same_answer(batch: list[dict[str, Any]],
                                                                data: st.DataObject) -> None:
    target = data.draw(st.integers(0, len(batch) - 1), label="target")
    doc = batch[target]
    # A patient's day is one unit: the target's whole day goes alone.
    day = [i for i, other in enumerate(batch) if "patient" in doc and other.get("patient") == doc["patient"]
           and other["date"] == doc["date"]] or [target]
    alone = rendered([batch[i] for i in day])
    together = rendered(batch)
    assert [together[i] for i in day] == alone


# ---------------------------------------------------------------------- 6. two runs, same bytes
@st.composite
def jsonl_inputs(draw: st.DrawFn) -> bytes:
    """A JSONL batch, now and then with a broken line among the encounters."""
    lines = [json.dumps(doc).encode() for doc in draw(batches(max_size=8))]
    for _ in range(draw(st.integers(0, 2))):
        lines.insert(draw(st.integers(0, len(lines))), draw(st.sampled_from([b"{broken", b"[]", b"\xff", b""])))
    return b"\n".join(lines) + b"\n"


@examples(4)
@given(jsonl_inputs())
def test_two_runs_print_the_same_bytes(stdin: bytes) -> None:
    first = tpkb("code", "-", "--format", "jsonl", stdin=stdin)
    second = tpkb("code", "-", "--format", "jsonl", stdin=stdin)
    no_traceback(first)
    assert first.stdout_bytes and first.stdout_bytes == second.stdout_bytes
    assert (first.exit_code, first.stderr_bytes) == (second.exit_code, second.stderr_bytes)


@examples(1, share=20)
@given(st.lists(jsonl_inputs(), min_size=1, max_size=6).map(b"".join))
def test_two_processes_print_the_same_bytes(stdin: bytes) -> None:
    """In two processes, each with its own string hashing (PYTHONHASHSEED): an answer that
    followed the order of a set would show here and not in one process."""
    runs = [subprocess.run([sys.executable, "-m", "bridge", "code", "-", "--format", "jsonl"], input=stdin,
                           capture_output=True, cwd=ROOT, timeout=120, env={**os.environ, "PYTHONHASHSEED": seed})
            for seed in ("1", "2")]
    assert runs[0].returncode in (0, 2) and b"Traceback" not in runs[0].stderr, runs[0].stderr
    assert runs[0].stdout and (runs[0].stdout, runs[0].stderr, runs[0].returncode) == \
        (runs[1].stdout, runs[1].stderr, runs[1].returncode)


# ---------------------------------------------------------------------- 7. plain = instrumented
@examples(4)
@given(batches(max_size=8))
def test_the_instrumented_kb_concludes_what_the_plain_kb_concludes(batch: list[dict[str, Any]]) -> None:
    encs = validated(batch)
    facts = batch_facts(encs, KB_.reader())
    rows = KB_.tables.for_batch(strings_in_play(facts))
    plain = engine.solve(KB_.program("plain"), facts, rows)
    full = solve_batch(KB_, encs, mode="full")
    assert public(plain) == public({f.head() for firings in full.firings.values() for f in firings})
    assert {a[0] for a in plain} <= PUBLIC
    shown = engine.solve(KB_.program("messages"), facts, rows)
    assert public(shown) <= public(plain)
    messages = Answer.of(KB_, shown, "messages")
    messages.names = full.names
    for key, enc in enumerate(encs, start=1):  # and the outcomes read from them agree
        expected = full.outcome(key, enc)
        expected.fired = None
        assert messages.outcome(key, enc) == expected, enc.id


# ---------------------------------------------------------------------- 8. exactly one answer set
# Rules the loader accepts (one atom in the head) that leave a session with no stable model
# (an odd loop through negation) or two (an even loop), where it carries a diagnosis no
# policy names: one KB copy, broken only for the sessions a test marks.
BREAKS = {"none": ("Z99.88", "no answer set for this batch"),
          "several": ("Z99.89", "more than one answer set for this batch (it must be deterministic)")}
BREAKING_RULES = f"""
%*! test_odd(E): session {{E}} is odd | session {{E}} is not odd. *%
%@ rule: test_odd_loop
%@ label: the session is odd where it is not (no stable model: a broken KB, for a test)
%@ source: [kb-policy] tests/test_properties.py
test_odd(E) :- diagnosis(E, "{BREAKS['none'][0]}"), not test_odd(E).

%*! test_left(E): session {{E}} goes left | session {{E}} does not go left. *%
%@ rule: test_left
%@ label: the session goes left unless it goes right (two stable models: a broken KB, for a test)
%@ source: [kb-policy] tests/test_properties.py
test_left(E) :- diagnosis(E, "{BREAKS['several'][0]}"), not test_right(E).

%*! test_right(E): session {{E}} goes right | session {{E}} does not go right. *%
%@ rule: test_right
%@ label: the session goes right unless it goes left
%@ source: [kb-policy] tests/test_properties.py
test_right(E) :- diagnosis(E, "{BREAKS['several'][0]}"), not test_left(E).
"""


@dataclass(frozen=True)
class Broken:
    folder: Path
    kb: KB


@pytest.fixture(scope="module")
def broken(tmp_path_factory: pytest.TempPathFactory) -> Broken:
    """A copy of the KB (as conftest's kb_copy makes it, but once per module) with the rules
    above, compiled once: into this run's cache, which the commands below read too."""
    folder = tmp_path_factory.mktemp("broken") / "kb"
    shutil.copytree(default_kb_path(), folder)
    with (folder / "rules" / "codes.lp").open("a") as out:
        out.write(BREAKING_RULES)
    return Broken(folder, load_kb(folder))


def breaking(doc: dict[str, Any], how: str) -> dict[str, Any]:
    return {**doc, "diagnoses": [*doc.get("diagnoses", []), BREAKS[how][0]]}


@examples(6)
@given(batches(max_size=6), st.sampled_from(sorted(BREAKS)), st.data())
def test_no_answer_set_or_several_is_an_error(broken: Broken, batch: list[dict[str, Any]], how: str,
                                              data: st.DataObject) -> None:
    # Unmarked, the broken copy has one answer set and concludes what the KB concludes ...
    assert [json.dumps(out.json()) for out in code(broken.kb, validated(batch))] == rendered(batch)
    # ... and one session marked anywhere in the batch makes it none, or several: an error.
    marked = data.draw(st.integers(0, len(batch) - 1), label="marked")
    batch[marked] = breaking(batch[marked], how)
    with pytest.raises(SolveError, match=re.escape(BREAKS[how][1])):
        code(broken.kb, validated(batch))


@examples(4)
@given(jsonl_inputs(), st.sampled_from(sorted(BREAKS)))
def test_the_cli_reports_no_answer_set_or_several_in_one_line(broken: Broken, stdin: bytes, how: str) -> None:
    stdin += jsonl([breaking({"date": "2025-06-02", "procedures": []}, how)])
    result = tpkb("--kb", str(broken.folder), "code", "-", "--format", "jsonl", stdin=stdin)
    assert isinstance(result.exception, SystemExit) and result.exit_code == 2, result.exc_info
    assert "Traceback" not in result.stderr
    # (the problems of broken input lines, if any, are not reached: the batch stops at the KB)
    assert [line for line in result.stderr.splitlines() if not line.startswith("error: <stdin>:")] == \
        [f"kb error: the KB has {BREAKS[how][1]}"], result.stderr


@pytest.mark.parametrize("how", sorted(BREAKS))
def test_a_broken_kb_is_reported_by_the_command_without_a_traceback(broken: Broken, how: str) -> None:
    stdin = jsonl([breaking({"date": "2025-06-02", "procedures": [
        {"muscle": "trapezius", "side": "left", "injectate": ["lidocaine"]}]}, how)])
    proc = subprocess.run([sys.executable, "-m", "bridge", "--kb", str(broken.folder), "code", "-", "--format",
                           "jsonl"], input=stdin, capture_output=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 2 and proc.stdout == b""
    assert proc.stderr.decode().splitlines() == [f"kb error: the KB has {BREAKS[how][1]}"]


# ---------------------------------------------------------------------- 9. hostile input
def _big(digits: int) -> str:
    return "9" * digits


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
    | st.sampled_from(["2025-02-30", "20553", "trapezius", "left", "\x00", "\ud800", "\u202e", "9" * 30]),
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(
        st.one_of(st.text(max_size=8), st.sampled_from(["date", "procedures", "muscle", "injectate", "billed",
                                                        "code", "units", "name", "encounter", "expect", "id"])),
        kids, max_size=4),
    max_leaves=10)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A good encounter with one thing wrong (or, by chance, still right): a value of the
    wrong type, a key missing or unknown, the text cut short, a stray byte."""
    doc = {"id": "mutant", **draw(encounter_docs(patients=False, min_procedures=1))}
    places: list[tuple[Any, Any]] = [(doc, key) for key in doc]
    places += [(proc, key) for proc in doc["procedures"] for key in proc]
    how = draw(st.integers(0, 4))
    if how == 0:
        container, key = draw(st.sampled_from(places))
        container[key] = draw(JSON_VALUES)
    elif how == 1:
        container, key = draw(st.sampled_from(places))
        del container[key]
    elif how == 2:
        container, _ = draw(st.sampled_from(places))
        container[draw(st.text(min_size=1, max_size=8))] = draw(JSON_VALUES)
    text = json.dumps(doc, ensure_ascii=draw(st.booleans())).encode("utf-8", "surrogatepass")
    if how == 3:
        text = text[: draw(st.integers(0, len(text) - 1))]
    elif how == 4:
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(st.sampled_from([b"\x00", b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\\", b'"', b"}",
                                                 b"\r", b"\x0b", b"\t"])) + text[at:]
    return text


HOSTILE_LINES = st.one_of(
    st.binary(max_size=120),
    st.text(max_size=80).map(lambda t: t.encode("utf-8", "surrogatepass")),
    JSON_VALUES.map(lambda v: json.dumps(v).encode()),
    mutated(), mutated(),
    st.sampled_from([2, 999, 1001, 5000, 100_000]).flatmap(
        lambda n: st.sampled_from([b"[" * n + b"]" * n, b'{"a": ' * n + b"1" + b"}" * n, b"[" * n])),
    st.sampled_from([21, 400, 4301, 20_000]).map(lambda n: (
        '{"date": "2025-01-01", "procedures": [], "billed": [{"code": "20552", "units": ' + _big(n) + "}]}").encode()),
    st.sampled_from([b'{"date": "2025-01-01", "procedures": [], "billed": [{"code": 20552, "units": 1e400}]}',
                     b'{"date": 20250101, "procedures": {}}', b'{"date": "2025-01-01", "procedures": [null]}',
                     b'{"id": "a\x00b", "date": "2025-01-01", "procedures": []}', b"\x00" * 10,
                     b"date: 2025-01-01\nprocedures: []", b"- {date: 2025-01-01, procedures: []}", b"\xef\xbb\xbf{}",
                     b'{"date": "2025-01-01", "procedures": [], "date": "2025-01-02"}', b"NaN", b'"just text"',
                     b'{"name": "c", "encounter": {"date": "2025-06-02", "procedures": []}, "expect": {"lines": []}}']),
)


@dataclass
class Fuzz:
    """A JSONL input: good encounters among hostile lines, and for each non-blank line its
    number and which good encounter it is (None for a hostile line: an error record, or
    coded where it happens to be a good one)."""

    data: bytes
    goods: list[dict[str, Any]]
    lines: list[tuple[int, int | None]]


@st.composite
def fuzz_inputs(draw: st.DrawFn) -> Fuzz:
    goods = [{"id": f"good-{i}", **doc} for i, doc in enumerate(draw(st.lists(encounter_docs(patients=False),
                                                                               max_size=4)))]
    pieces: list[bytes | int] = list(range(len(goods)))
    for _ in range(draw(st.integers(1, 6))):
        pieces.insert(draw(st.integers(0, len(pieces))), draw(HOSTILE_LINES))
    data, lines, number = b"", [], 0
    for piece in pieces:
        text = json.dumps(goods[piece]).encode() if isinstance(piece, int) else piece
        data += text + b"\n"
        for k, segment in enumerate(text.split(b"\n")):  # a hostile piece may hold line breaks
            if segment.strip():
                lines.append((number + k + 1, piece if isinstance(piece, int) else None))
        number += text.count(b"\n") + 1
    return Fuzz(data, goods, lines)


def check_fuzz(fuzz: Fuzz, exit_code: int, stdout: bytes, stderr: str) -> None:
    """One output record per non-blank input line, in order; every good line coded as it is
    without the others; every bad one an error record naming <stdin> and its line, with its
    message on standard error; exit 2 exactly when a record is bad."""
    expected = rendered(fuzz.goods) if fuzz.goods else []
    records = stdout.decode().splitlines()
    assert len(records) == len(fuzz.lines), (len(records), len(fuzz.lines))
    bad_lines = set()
    for (number, good), text in zip(fuzz.lines, records):
        record = json.loads(text)
        if good is not None:
            assert text == expected[good], f"good line {number}"
        elif "errors" in record:
            assert record["file"] == "<stdin>" and record["line"] == number and record["errors"], record
            assert all(isinstance(e, str) and e for e in record["errors"]), record
            assert f"error: <stdin>:{number}: " in stderr, (number, stderr)
            bad_lines.add(number)
        else:
            assert "lines" in record and "findings" in record, record
    for line in stderr.splitlines():
        found = re.match(r"error: <stdin>:(\d+): ", line)
        assert found and int(found.group(1)) in bad_lines, line
    assert exit_code == (2 if bad_lines else 0), (exit_code, stderr)


@examples(10)
@given(fuzz_inputs())
def test_hostile_jsonl_costs_no_good_record(fuzz: Fuzz) -> None:
    result = tpkb("code", "-", "--format", "jsonl", stdin=fuzz.data)
    no_traceback(result)
    check_fuzz(fuzz, result.exit_code, result.stdout_bytes, result.stderr)


@examples(1, share=20)
@given(fuzz_inputs())
def test_hostile_jsonl_through_the_command(fuzz: Fuzz) -> None:
    proc = subprocess.run([sys.executable, "-m", "bridge", "code", "-", "--format", "jsonl"], input=fuzz.data,
                          capture_output=True, cwd=ROOT, timeout=120)
    stderr = proc.stderr.decode()
    assert "Traceback" not in stderr and "internal error" not in stderr, stderr
    check_fuzz(fuzz, proc.returncode, proc.stdout, stderr)


YAML_SOUP = st.lists(st.sampled_from(["date:", " 2025-06-02", "procedures:", "\n", "\n  ", "- ", "[", "]", "{", "}",
                                      ": ", ", ", "&a ", "*a", "!!python/object:os.system ", "|", ">", "'", '"', "#",
                                      "%YAML 1.2\n", "---\n", "...\n", "\t", "muscle: trapezius", "injectate: []",
                                      "? ", "!!binary ", "~", "null", "9" * 30, "\x00", "\ud800", "\ufeff"]),
                     max_size=40).map("".join)
FILE_CONTENTS = st.one_of(
    st.binary(max_size=300),
    st.text(max_size=200).map(lambda t: t.encode("utf-8", "surrogatepass")),
    YAML_SOUP.map(lambda t: t.encode("utf-8", "surrogatepass")),
    JSON_VALUES.map(lambda v: json.dumps(v).encode()),  # JSON is YAML too
    st.lists(HOSTILE_LINES, min_size=1, max_size=4).map(b"\n".join),
    st.sampled_from([1001, 5000]).map(lambda n: ("- " * n + "x\n").encode()),
    st.just(("a: &a [" + ", ".join(["lol"] * 9) + "]\n" + "".join(
        f"{b}: &{b} [{', '.join([f'*{a}'] * 9)}]\n" for a, b in zip("abcdefgh", "bcdefghi"))).encode()),
)


def holds_no_record(content: bytes) -> bool:
    """The content is an empty list (of encounters or cases), read by another YAML reader
    than the loader's. (An empty file, or one of comments only, is an error record.)"""
    try:
        return YAML(typ="safe", pure=True).load(content.decode("utf-8")) == []
    except (ValueError, YAMLError, RecursionError):
        return False


@examples(8)
@given(FILE_CONTENTS, st.sampled_from([".yaml", ".yml", ".json", ".jsonl"]), encounter_docs(patients=False))
def test_hostile_files_cost_no_good_record(content: bytes, suffix: str, good: dict[str, Any]) -> None:
    good = {"id": "good-file-record", **good}
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "good.json").write_text(json.dumps(good))
        fuzz = Path(folder) / f"fuzz{suffix}"
        fuzz.write_bytes(content)
        result = tpkb("code", folder, "--format", "jsonl")
    no_traceback(result)
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [json.dumps(r) for r in records if r.get("id") == good["id"]] == rendered([good])
    others = [r for r in records if r.get("id") != good["id"] or "errors" in r]
    if suffix == ".jsonl":  # one record per non-blank line, as on standard input
        assert len(others) == sum(1 for line in content.split(b"\n") if line.strip()), records
    elif not others:  # a file is one record at least, or a list of them: no record means []
        assert holds_no_record(content), records
    bad = [r for r in others if "errors" in r]
    for record in bad:
        assert record["file"] == str(fuzz) and record["errors"], record
        assert record["line"] is None or record["line"] >= 1, record
    for line in result.stderr.splitlines():
        assert line.startswith(f"error: {fuzz}"), line  # each message names the file (and its line where known)
    assert result.exit_code == (2 if bad else 0), result.stderr
