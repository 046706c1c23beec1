"""bridge/facts.py: the one mapping from model fields to the KB's input predicates."""

from __future__ import annotations

from pathlib import Path

from helpers import encounters

from bridge.facts import BATCH_INPUTS, INPUTS, NOT_INPUTS, check_inputs, day_facts, encounter_facts
from bridge.kb import KB
from bridge.model import BilledLine, Encounter, Guidance, PriorSession, Procedure, Service

ROOT = Path(__file__).resolve().parent.parent


def test_every_field_of_the_encounter_model_is_placed_once() -> None:
    for model in (Encounter, Procedure, Guidance, Service, BilledLine, PriorSession):
        for name in model.model_fields:
            mapped = [inp.predicate for inp in INPUTS if inp.model is model and name in inp.fields]
            excused = (model, name) in NOT_INPUTS
            assert bool(mapped) != excused, f"{model.__name__}.{name}: mapped to {mapped}, excused: {excused}"


def test_the_mapping_and_the_schema_agree(kb: KB) -> None:
    assert check_inputs(kb.inputs) == []
    assert check_inputs(kb.inputs | {("weight", 2)}) == [
        "kb/schema.lp: input weight/2 has no entry in bridge/facts.py INPUTS (no field fills it)"]


def test_every_fact_is_an_input_predicate_with_the_key_first(kb: KB) -> None:
    enc = encounters(kb, {"procedures": [{"muscle": "rt SCM and zzz", "side": "right",
                                          "injectate": ["a", "b", "Kenalog-40 40 mg", "Kenalog-40 1 mL"]}],
                          "guidance": [{"modality": "ultrasound", "necessity": "n", "images_recorded": True}],
                          "services": [{"code": "99213", "separately_identifiable": True, "site": "left SCM"}],
                          "billed": [{"code": "20552", "modifiers": ["59"]}], "diagnoses": ["M79.12"],
                          "history": [{"date": "2025-01-02", "codes": ["20553"], "muscles": "R trapezius"}],
                          "abn": True, "provider": {"type": "nurse_practitioner", "acupuncture_license": True},
                          "low_back_pain_weeks": 12})[0]
    facts = encounter_facts(7, enc, kb.reader())
    assert {(f[0], len(f) - 1) for f in facts} == {inp.signature for inp in INPUTS} == kb.inputs - BATCH_INPUTS
    assert all(f[1] == 7 for f in facts)
    days = day_facts(encounters(kb, {"patient": "p", "procedures": []}, {"patient": "p", "procedures": []}))
    assert {(f[0], len(f) - 1) for f in days} == BATCH_INPUTS


def test_ids_never_reach_the_solver(kb: KB) -> None:
    a, b = encounters(kb, {"id": "same", "procedures": []}, {"id": "same", "procedures": []})
    assert encounter_facts(1, a, kb.reader()) != encounter_facts(2, b, kb.reader())
    assert not any("same" in f for f in encounter_facts(1, a, kb.reader()))
