"""Turn validated encounters into clingo facts, with the Symbol API only: user text becomes
a String symbol and is never pasted into program text."""

from __future__ import annotations

import re
from typing import Collection, Iterable, Iterator

from clingo.symbol import Function, Number, String, Symbol

from .load import Encounter

#: The input predicates, mirroring the %*! docs in kb/schema.lp.
INPUTS = {
    "encounter": 1, "date": 2, "payer": 2, "diagnosis": 2, "procedure": 3, "procedure_split": 4,
    "side": 3, "injectate": 3, "guidance": 3, "guidance_necessity": 3,
    "guidance_images": 2, "billed": 4, "billed_modifier": 3,
}

_SPACE = re.compile(r"[\s,]+")
_SPLIT_WORDS = 3  # the longest side phrase ("left and right") has three words


def normalise(text: str) -> str:
    """Lower case, commas as spaces, single spaces: how the lexicon writes its names."""
    return _SPACE.sub(" ", text.lower()).strip()


def splits(text: str, side_words: Collection[str]) -> Iterator[tuple[str, str]]:
    """(side word, rest) readings of a text: up to three words off the front or the back.
    Only readings whose word is one of the KB's side words are written; the KB decides."""
    words = text.split(" ")
    for k in range(1, min(_SPLIT_WORDS, len(words) - 1) + 1):
        for word, rest in ((" ".join(words[:k]), " ".join(words[k:])),
                           (" ".join(words[-k:]), " ".join(words[:-k]))):
            if word in side_words:
                yield word, rest


def encounter_facts(enc: Encounter, side_words: Collection[str]) -> list[Symbol]:
    e = String(enc.key or enc.id)
    d = enc.date
    facts = [
        Function("encounter", [e]),
        Function("date", [e, Number(d.year * 10000 + d.month * 100 + d.day)]),
        Function("payer", [e, String(enc.payer)]),
    ]
    facts.extend(Function("diagnosis", [e, String(code)]) for code in enc.diagnoses)
    for p, proc in enumerate(enc.procedures, start=1):
        n = Number(p)
        text = normalise(proc.muscle)
        facts.append(Function("procedure", [e, n, String(text)]))
        facts.extend(Function("procedure_split", [e, n, String(w), String(r)]) for w, r in splits(text, side_words))
        if proc.side:
            facts.append(Function("side", [e, n, Function(proc.side)]))
        facts.extend(Function("injectate", [e, n, String(s)]) for s in proc.injectate)
    for g, guide in enumerate(enc.guidance, start=1):
        n = Number(g)
        facts.append(Function("guidance", [e, n, Function(guide.modality)]))
        if guide.necessity:
            facts.append(Function("guidance_necessity", [e, n, String(guide.necessity)]))
        if guide.images_recorded:
            facts.append(Function("guidance_images", [e, n]))
    for b, line in enumerate(enc.billed or [], start=1):
        n = Number(b)
        facts.append(Function("billed", [e, n, String(line.code), Number(line.units)]))
        facts.extend(Function("billed_modifier", [e, n, String(m)]) for m in line.modifiers)
    return facts


def batch_facts(encounters: Iterable[Encounter], side_words: Collection[str]) -> list[Symbol]:
    out: list[Symbol] = []
    for enc in encounters:
        out.extend(encounter_facts(enc, side_words))
    return out
