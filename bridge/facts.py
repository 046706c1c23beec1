"""From the input model to the KB's input predicates: one declared mapping.

Each entry names an input predicate of kb/schema.lp, the model fields it carries, and how
one record becomes its rows. Every field of the models appears in exactly one place: an
entry here, or NOT_INPUTS with the reason it is not given to the KB. The KB refuses to load
when an entry has no `#defined` predicate in kb/schema.lp or a predicate has no entry
(`check_inputs`), and tests/test_facts.py checks that every field is placed.

Every encounter-level fact takes the encounter's key first: its position in the batch
(1, 2, ...), assigned by the bridge. Ids never reach the solver, so two records with the
same id, or an id holding any text at all, cannot mix.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from .model import BilledLine, Encounter, Guidance, PriorSession, Procedure, Service
from .reading import Reader, normalise
from .terms import Atom, Const


def date_number(d: object) -> int:
    """A date as the KB compares dates: the integer yyyymmdd."""
    return d.year * 10000 + d.month * 100 + d.day  # type: ignore[attr-defined]


def day_number(d: object) -> int:
    """A date as a count of days (day 1 is 0001-01-01): windows of days ("6 weeks", "90
    days") are differences of day numbers, right across month and year ends and leap days."""
    return d.toordinal()  # type: ignore[attr-defined]


def _history_mentions(h: PriorSession, r: Reader) -> list:
    """The mentions of a prior session's muscle texts, numbered across its texts."""
    return [m for text in h.muscles or () for m in r.read(text).mentions]


@dataclass(frozen=True)
class Input:
    """An input predicate, the model and fields it carries, and the rows of one record
    (without the encounter key, and without the record's position where `per_item`)."""

    predicate: str
    arity: int
    model: type
    fields: tuple[str, ...]
    rows: Callable[..., Iterable[tuple]]

    @property
    def signature(self) -> tuple[str, int]:
        return (self.predicate, self.arity)


def _one(*values: object) -> list[tuple]:
    return [values]


INPUTS: tuple[Input, ...] = (
    Input("encounter", 1, Encounter, (), lambda e, r: _one()),
    Input("date", 2, Encounter, ("date",), lambda e, r: _one(date_number(e.date))),
    Input("day", 2, Encounter, ("date",), lambda e, r: _one(day_number(e.date))),
    Input("payer", 2, Encounter, ("payer",), lambda e, r: _one(e.payer)),
    Input("diagnosis", 2, Encounter, ("diagnoses",), lambda e, r: [(d,) for d in e.diagnoses]),
    Input("abn", 1, Encounter, ("abn",), lambda e, r: _one() if e.abn else []),
    Input("provider", 2, Encounter, ("provider",), lambda e, r: _one(Const(e.provider.type)) if e.provider else []),
    Input("provider_acupuncture_license", 1, Encounter, ("provider",),
          lambda e, r: _one() if e.provider and e.provider.acupuncture_license else []),
    Input("low_back_pain_weeks", 2, Encounter, ("low_back_pain_weeks",),
          lambda e, r: _one(e.low_back_pain_weeks) if e.low_back_pain_weeks is not None else []),
    # procedure P (1, 2, ...) of the encounter
    Input("procedure", 3, Procedure, ("muscle",), lambda p, r: _one(normalise(p.muscle))),
    # the muscle text as the reader splits it (bridge/reading.py): mention I of procedure P
    Input("mention", 4, Procedure, ("muscle",),
          lambda p, r: [(i, m.term) for i, m in enumerate(r.read(p.muscle).mentions, start=1)]),
    Input("mention_side", 4, Procedure, ("muscle",),
          lambda p, r: [(i, w) for i, m in enumerate(r.read(p.muscle).mentions, start=1) for w in m.sides]),
    Input("unread", 3, Procedure, ("muscle",), lambda p, r: [(t,) for t in r.read(p.muscle).unread]),
    Input("side", 3, Procedure, ("side",), lambda p, r: _one(Const(p.side)) if p.side else []),
    Input("injectate", 3, Procedure, ("injectate",), lambda p, r: [(s,) for s in p.injectate]),
    # each substance as the reader of injectate text reads it: drug names, dose, volume
    Input("injectate_drug", 4, Procedure, ("injectate",),
          lambda p, r: [(s, d.name) for s in p.injectate for d in r.substance(s)]),
    Input("injectate_dose", 5, Procedure, ("injectate",),
          lambda p, r: [(s, d.name, d.dose) for s in p.injectate for d in r.substance(s) if d.dose is not None]),
    Input("injectate_volume", 5, Procedure, ("injectate",),
          lambda p, r: [(s, d.name, d.volume) for s in p.injectate for d in r.substance(s) if d.volume is not None]),
    # guidance entry G
    Input("guidance", 3, Guidance, ("modality",), lambda g, r: _one(Const(g.modality))),
    Input("guidance_necessity", 3, Guidance, ("necessity",), lambda g, r: _one(g.necessity) if g.necessity else []),
    Input("guidance_images", 2, Guidance, ("images_recorded",), lambda g, r: _one() if g.images_recorded else []),
    # service S (another service of the session)
    Input("service", 3, Service, ("code",), lambda s, r: _one(s.code)),
    Input("service_identifiable", 2, Service, ("separately_identifiable",),
          lambda s, r: _one() if s.separately_identifiable else []),
    Input("service_site", 3, Service, ("site",), lambda s, r: _one(normalise(s.site)) if s.site else []),
    # the muscles the site names, as the reader of muscle text reads it
    Input("service_site_term", 3, Service, ("site",),
          lambda s, r: [(m.term,) for m in r.read(s.site).mentions] if s.site else []),
    # prior session H of the patient's (history): its date (yyyymmdd and day number), codes, muscles
    Input("history", 4, PriorSession, ("date",), lambda h, r: _one(date_number(h.date), day_number(h.date))),
    Input("history_code", 3, PriorSession, ("codes",), lambda h, r: [(c,) for c in h.codes]),
    Input("history_muscles", 2, PriorSession, ("muscles",), lambda h, r: _one() if h.muscles else []),
    Input("history_mention", 4, PriorSession, ("muscles",),
          lambda h, r: [(i, m.term) for i, m in enumerate(_history_mentions(h, r), start=1)]),
    Input("history_mention_side", 4, PriorSession, ("muscles",),
          lambda h, r: [(i, w) for i, m in enumerate(_history_mentions(h, r), start=1) for w in m.sides]),
    # billed line B
    Input("billed", 4, BilledLine, ("code", "units"), lambda b, r: _one(b.code, b.units)),
    Input("billed_modifier", 3, BilledLine, ("modifiers",), lambda b, r: [(m,) for m in b.modifiers]),
)

#: Fields that are not given to the KB, and why.
NOT_INPUTS: dict[tuple[type, str], str] = {
    (Encounter, "id"): "reported back with the outcome; the KB sees the batch key, never the id",
    (Encounter, "procedures"): "each procedure's fields are inputs, under its position P",
    (Encounter, "guidance"): "each entry's fields are inputs, under its position G",
    (Encounter, "billed"): "each line's fields are inputs, under its position B; absent means no audit",
    (Encounter, "services"): "each service's fields are inputs, under its position S",
    (Procedure, "trigger_points"): "CPT counts muscles, not trigger points: no rule may depend on it",
    (Encounter, "patient"): "grouped here into same_day/2 (day_facts): the KB sees keys, never the patient",
    (Encounter, "history"): "each prior session's fields are inputs, under its position H",
    (Encounter, "time"): "orders a patient's sessions of one day in day_facts (the first session is found here)",
}

#: Inputs of a batch, not of one encounter: a patient's sessions of one day (day_facts).
BATCH_INPUTS = {("same_day", 2), ("day_includes", 2)}

_ITEMS: tuple[tuple[Callable[[Encounter], list], tuple[tuple[str, Callable], ...]], ...] = tuple(
    (items, tuple((inp.predicate, inp.rows) for inp in INPUTS if inp.model is model))
    for model, items in ((Procedure, lambda e: e.procedures), (Guidance, lambda e: e.guidance),
                         (Service, lambda e: e.services), (BilledLine, lambda e: e.billed or []),
                         (PriorSession, lambda e: e.history)))
_TOP = tuple((inp.predicate, inp.rows) for inp in INPUTS if inp.model is Encounter)


def encounter_facts(key: int, enc: Encounter, reader: Reader) -> list[Atom]:
    """The input facts of one encounter, its key first."""
    out: list[Atom] = []
    add = out.append
    for predicate, rows in _TOP:
        for row in rows(enc, reader):
            add((predicate, key, *row))
    for items, entries in _ITEMS:
        for position, item in enumerate(items(enc), start=1):
            for predicate, rows in entries:
                for row in rows(item, reader):
                    add((predicate, key, position, *row))
    return out


def batch_facts(encounters: Sequence[Encounter], reader: Reader, scopes: Sequence[object] | None = None) -> list[Atom]:
    """Facts of a batch; the encounter at position i (from 1) has key i."""
    out: list[Atom] = []
    for key, enc in enumerate(encounters, start=1):
        out.extend(encounter_facts(key, enc, reader))
    out.extend(day_facts(encounters, scopes))
    return out


def day_facts(encounters: Sequence[Encounter], scopes: Sequence[object] | None = None) -> list[Atom]:
    """same_day(E, F): encounter E is one of two or more sessions of its patient on its date
    of service, and F (maybe E itself) is the first of them, by time (a session without one
    last), then id, then position; day_includes(F, E), the same read from the first.
    Patients are told apart within a scope (a case of the library is its own scope); the
    stream keeps a patient's day in one batch."""
    groups: dict[tuple, list[tuple[int, Encounter]]] = {}
    for key, enc in enumerate(encounters, start=1):
        if enc.patient is not None:
            scope = scopes[key - 1] if scopes is not None else None
            groups.setdefault((scope, enc.patient, enc.date), []).append((key, enc))
    out: list[Atom] = []
    for members in groups.values():
        if len(members) > 1:
            members.sort(key=lambda m: (m[1].time is None, m[1].time or "", m[1].id or "", m[0]))
            first = members[0][0]
            out.extend(("same_day", key, first) for key, _ in members)
            out.extend(("day_includes", first, key) for key, _ in members)
    return out


def check_inputs(declared: set[tuple[str, int]]) -> list[str]:
    """Problems between this mapping and the `#defined` inputs of kb/schema.lp."""
    mapped = {inp.signature for inp in INPUTS} | BATCH_INPUTS
    problems = [f"kb/schema.lp: input {name}/{arity} has no entry in bridge/facts.py INPUTS (no field fills it)"
                for name, arity in sorted(declared - mapped)]
    problems += [f"bridge/facts.py: INPUTS writes {name}/{arity}, which kb/schema.lp does not declare (#defined)"
                 for name, arity in sorted(mapped - declared)]
    return problems
