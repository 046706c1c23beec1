"""bridge/facts.py: the typed boundary between the bridge and the KB."""

from __future__ import annotations

import re
from pathlib import Path

from bridge.engine import PUBLIC
from bridge.facts import INPUTS, encounter_facts, normalise, splits

ROOT = Path(__file__).resolve().parent.parent


def test_inputs_mirror_the_schema_declarations():
    declared = dict((name, int(arity)) for name, arity in
                    re.findall(r"^#defined (\w+)/(\d+)\.", (ROOT / "kb" / "schema.lp").read_text(), re.M))
    assert declared == INPUTS


def test_public_conclusions_mirror_show():
    shown = {(name, int(arity)) for name, arity in
             re.findall(r"^#show (\w+)/(\d+)\.", (ROOT / "kb" / "show.lp").read_text(), re.M)}
    assert shown == PUBLIC


def test_normalise_case_spaces_commas():
    assert normalise("  Upper   TRAP,  Right ") == "upper trap right"


def test_splits_only_at_side_words():
    words = {"right", "rt", "b/l", "left and right"}
    assert list(splits("rt upper trap", words)) == [("rt", "upper trap")]
    assert list(splits("left and right levator scapulae", words)) == [("left and right", "levator scapulae")]
    assert list(splits("upper trap", words)) == []


def test_every_fact_is_an_input_predicate_with_the_encounter_key_first(kb):
    from helpers import encounters

    enc = encounters(kb, {"procedures": [{"muscle": "rt SCM", "side": "right", "injectate": ["a", "b"]}],
                          "guidance": [{"modality": "ultrasound", "necessity": "n", "images_recorded": True}],
                          "billed": [{"code": "20552", "modifiers": ["59"]}], "diagnoses": ["M79.12"]})[0]
    facts = encounter_facts(enc, kb.side_words())
    assert {(f.name, len(f.arguments)) for f in facts} == set(INPUTS.items())
    assert all(f.arguments[0].string == enc.key for f in facts)
