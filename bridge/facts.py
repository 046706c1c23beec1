"""Turn validated encounters into clingo facts, with the Symbol API only: user text becomes
a String symbol and is never pasted into program text."""

from __future__ import annotations

import re
from functools import lru_cache
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


# Strings, numbers and constants repeat across a batch (muscle texts, substances, codes,
# indexes); building each once saves calls into clingo, the main cost of a large batch.
_string = lru_cache(maxsize=1 << 16)(String)
_number = lru_cache(maxsize=4096)(Number)
_constant = lru_cache(maxsize=256)(lambda name: Function(name))


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
        Function("payer", [e, _string(enc.payer)]),
    ]
    facts.extend(Function("diagnosis", [e, _string(code)]) for code in enc.diagnoses)
    for p, proc in enumerate(enc.procedures, start=1):
        n = _number(p)
        text = normalise(proc.muscle)
        facts.append(Function("procedure", [e, n, _string(text)]))
        facts.extend(Function("procedure_split", [e, n, _string(w), _string(r)]) for w, r in splits(text, side_words))
        if proc.side:
            facts.append(Function("side", [e, n, _constant(proc.side)]))
        facts.extend(Function("injectate", [e, n, _string(s)]) for s in proc.injectate)
    for g, guide in enumerate(enc.guidance, start=1):
        n = _number(g)
        facts.append(Function("guidance", [e, n, _constant(guide.modality)]))
        if guide.necessity:
            facts.append(Function("guidance_necessity", [e, n, _string(guide.necessity)]))
        if guide.images_recorded:
            facts.append(Function("guidance_images", [e, n]))
    for b, line in enumerate(enc.billed or [], start=1):
        n = _number(b)
        facts.append(Function("billed", [e, n, _string(line.code), _number(line.units)]))
        facts.extend(Function("billed_modifier", [e, n, _string(m)]) for m in line.modifiers)
    return facts


def batch_facts(encounters: Iterable[Encounter], side_words: Collection[str]) -> list[Symbol]:
    out: list[Symbol] = []
    for enc in encounters:
        out.extend(encounter_facts(enc, side_words))
    return out
