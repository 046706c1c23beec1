"""What if: the smallest changes to an encounter's documented facts that would make a code
reportable (or every billed line accepted, or a rule fire), found by the solver.

The candidate changes are declared here, per input predicate (CHANGES): name one more
muscle, name a muscle in place of a region or group term, document a side, document why
guidance was necessary, add a diagnosis a policy lists, add or remove a billed modifier,
document a signed ABN. Each candidate is a change to the encounter as a model; the bridge
turns it into the facts it adds and removes. The choice program is generated here and
added to the KB for this one solve: the solver chooses a set of candidates (at most one
per slot: one per procedure's text, one per billed line's modifiers...), the facts follow
from the choice, the goal must hold, and the number of changes is minimised. No user text
becomes program text: the facts, the goal's code and the candidates reach clingo as
symbols. The KB itself stays deductive.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from . import engine
from .api import batch_input, solve_batch
from .engine import Program
from .facts import INPUTS, batch_facts
from .kb import FIRED, KB
from .model import BilledLine, Encounter, Guidance, Procedure
from .outcome import Outcome
from .terms import Atom

PROCEDURE_INPUTS = {i.predicate for i in INPUTS if i.model is Procedure}
LIMIT = 5  # answers shown
NEW_PROCEDURES = 2  # at most this many muscles added


@dataclass(frozen=True)
class Change:
    """One candidate change: what it says, the slot it takes, and the encounter it makes."""

    slot: str
    text: str
    apply: Callable[[Encounter], Encounter]
    kind: str  # the input predicate it changes (CHANGES)
    also: tuple[str, ...] = ()  # other slots it takes (no other change may take them)


@dataclass
class Answer:
    changes: list[Change]
    encounter: Encounter
    outcome: Outcome
    fired: list[str]  # policy rules that fire after the changes and did not before
    reaches: bool  # the goal holds for the changed encounter, coded on its own

    def json(self) -> dict:
        return {"changes": [{"kind": c.kind, "change": c.text} for c in self.changes],
                "lines": [ln.text() for ln in self.outcome.lines], "then_fire": self.fired, "reaches": self.reaches}


@dataclass
class WhatIf:
    goal: str
    answers: list[Answer] = field(default_factory=list)
    already: bool = False

    def json(self) -> dict:
        return {"goal": self.goal, "already": self.already, "answers": [a.json() for a in self.answers]}

    def text(self) -> list[str]:
        if self.already:
            return [f"what if {self.goal}: it holds already; nothing to change"]
        if not self.answers:
            return [f"what if {self.goal}: no set of the candidate changes reaches it"]
        n = len(self.answers[0].changes)
        out = [f"what if {self.goal}: {n} change{'s' if n != 1 else ''} at least; "
               f"{len(self.answers)} way{'s' if len(self.answers) != 1 else ''} shown"]
        for i, a in enumerate(self.answers, start=1):
            out.append(f"  {i}. " + "; ".join(c.text for c in a.changes))
            out.append(f"     then: lines {', '.join(ln.text() for ln in a.outcome.lines) or 'none'}"
                       + (f"; rules that now fire: {', '.join(a.fired)}" if a.fired else ""))
            if not a.reaches:
                out.append("     (coded on its own, the changed encounter does not reach the goal: please report)")
        return out


# ---------------------------------------------------------------------- the candidates, per input
def _with_procedures(enc: Encounter, procedures: list[Procedure]) -> Encounter:
    return enc.model_copy(update={"procedures": procedures})


def _name_a_muscle(kb: KB, enc: Encounter) -> Iterator[Change]:
    """mention: one more muscle, by its lexicon name (a side where it is paired), injected
    (or needled) as a procedure of the session was; or a text the reader knows that names
    no one muscle (a region or group term), which a rule about such text may need."""
    injectates = list(dict.fromkeys(tuple(p.injectate) for p in enc.procedures)) or [()]
    texts = [(str(row[2]).lower(), str(row[3]) == "paired") for row in kb.table_rows("muscle")]
    texts += [(str(row[1]), False) for name in ("region_term", "group_name") for row in kb.table_rows(name)]
    for k in range(NEW_PROCEDURES):
        for name, paired in texts:
            for side in (("left", "right") if paired else (None,)):
                for inj in injectates:
                    proc = Procedure.model_validate({"muscle": f"{side} {name}" if side else name,
                                                     "injectate": list(inj)})
                    what = "injected" if inj else "needled"
                    yield Change(f"new procedure {k + 1}", f"document one more muscle, {what}: "
                                 f"\"{proc.muscle}\"",
                                 _appender(proc, len(enc.procedures) + k), "mention")


def _appender(proc: Procedure, position: int) -> Callable[[Encounter], Encounter]:
    """Append `proc` at `position` (from 0); placeholders (itself) fill the gap, where the
    changes before it were not applied: they only keep the positions of the facts."""
    def apply(enc: Encounter) -> Encounter:
        procs = list(enc.procedures)
        while len(procs) < position:
            procs.append(proc)
        return _with_procedures(enc, [*procs, proc])
    return apply


def _name_in_place_of_a_term(kb: KB, enc: Encounter) -> Iterator[Change]:
    """mention: a named muscle in place of a procedure text that names a region or group
    (a group's members; any muscle for a region, which the lexicon does not divide)."""
    reader = kb.reader()
    regions = {row[1] for row in kb.table_rows("region_term")}
    groups: dict[str, list] = {}
    for row in kb.table_rows("group_name"):
        groups.setdefault(row[1], []).append(row[2])
    members: dict[Any, list] = {}
    for row in kb.table_rows("group_member"):
        members.setdefault(row[1], []).append(row[2])
    names = {row[1]: str(row[2]).lower() for row in kb.table_rows("muscle")}
    for p, proc in enumerate(enc.procedures):
        for mention in reader.read(proc.muscle).mentions:
            term = mention.term
            if term in regions:
                choices = list(names.values())
            elif term in groups:
                choices = [names[m] for g in groups[term] for m in members.get(g, []) if m in names]
            else:
                continue
            side = " ".join(mention.sides) if mention.sides else ""
            for name in choices:
                text = f"{side} {name}".strip()
                new = proc.model_copy(update={"muscle": text})
                yield Change(f"procedure {p + 1}", f"procedure {p + 1}: name the muscle in place of the "
                             f"{'region' if term in regions else 'group'} term \"{term}\": \"{text}\"",
                             _replacer(p, new), "mention")


def _replacer(p: int, proc: Procedure) -> Callable[[Encounter], Encounter]:
    def apply(enc: Encounter) -> Encounter:
        procs = list(enc.procedures)
        procs[p] = proc
        return _with_procedures(enc, procs)
    return apply


def _document_a_side(kb: KB, enc: Encounter) -> Iterator[Change]:
    """side: a side for a procedure whose text gives none."""
    reader = kb.reader()
    for p, proc in enumerate(enc.procedures):
        if proc.side is None and not any(m.sides for m in reader.read(proc.muscle).mentions):
            for side in ("left", "right", "bilateral"):
                yield Change(f"procedure {p + 1} side", f"procedure {p + 1} (\"{proc.muscle}\"): document the side, "
                             f"{side}", _replacer(p, proc.model_copy(update={"side": side})), "side")


def _document_necessity(kb: KB, enc: Encounter) -> Iterator[Change]:
    """guidance_necessity: why guidance was necessary, for an entry that does not say."""
    for g, entry in enumerate(enc.guidance):
        if not entry.necessity:
            new = Guidance.model_validate({**entry.model_dump(), "necessity": "documented (what-if)"})

            def apply(e: Encounter, g: int = g, new: Guidance = new) -> Encounter:
                guidance = list(e.guidance)
                guidance[g] = new
                return e.model_copy(update={"guidance": guidance})
            yield Change(f"guidance {g + 1}", f"guidance {g + 1} ({entry.modality}): document why it was medically "
                         "necessary", apply, "guidance_necessity")


def _add_a_diagnosis(kb: KB, enc: Encounter) -> Iterator[Change]:
    """diagnosis: a diagnosis some policy lists (covered diagnoses, NCD low back pain codes)."""
    listed = sorted({str(row[3]) for row in kb.table_rows("covered_diagnosis")} |
                    {str(row[1]) for row in kb.table_rows("ncd_lbp_diagnosis")})
    for code in listed:
        if code not in enc.diagnoses:
            yield Change(f"diagnosis {code}", f"document the diagnosis {code}", _diagnosis(code), "diagnosis")


def _diagnosis(code: str) -> Callable[[Encounter], Encounter]:
    def apply(enc: Encounter) -> Encounter:
        return enc.model_copy(update={"diagnoses": [*enc.diagnoses, code]})
    return apply


def _billed_modifiers(kb: KB, enc: Encounter) -> Iterator[Change]:
    """billed_modifier: add a modifier the KB knows to a billed line, or remove one."""
    known = sorted(s for s in kb.tables.program_strings if len(s) == 2 and s.isalnum() and s.upper() == s)
    for b, line in enumerate(enc.billed or []):
        for m in known:
            if m not in line.modifiers:
                yield Change(f"billed {b + 1}", f"billed line {b + 1} ({line.code}): add modifier {m}",
                             _billed(b, BilledLine.model_validate({**line.model_dump(),
                                                                  "modifiers": [*line.modifiers, m]})),
                             "billed_modifier")
        for m in line.modifiers:
            yield Change(f"billed {b + 1}", f"billed line {b + 1} ({line.code}): remove modifier {m}",
                         _billed(b, line.model_copy(update={"modifiers": [x for x in line.modifiers if x != m]})),
                         "billed_modifier")


def _billed(b: int, line: BilledLine) -> Callable[[Encounter], Encounter]:
    def apply(enc: Encounter) -> Encounter:
        billed = list(enc.billed or [])
        billed[b] = line
        return enc.model_copy(update={"billed": billed})
    return apply


def _document_abn(kb: KB, enc: Encounter) -> Iterator[Change]:
    """abn: the patient signed an advance beneficiary notice."""
    if not enc.abn:
        yield Change("abn", "document that the patient signed an ABN", lambda e: e.model_copy(update={"abn": True}),
                     "abn")


def drop_last_procedure(kb: KB, enc: Encounter) -> Iterator[Change]:
    """mention (fewer): the session's last procedure left out. Not a change to suggest on a
    real encounter (documentation is not taken back); `tpkb generate` uses it on library
    encounters to reach a rule that needs fewer muscles. It takes the new procedures' slots
    too, so that the positions of the facts stay as computed."""
    n = len(enc.procedures)
    if n > 1:
        last = enc.procedures[-1]
        yield Change(f"procedure {n}", f"leave out procedure {n} (\"{last.muscle}\")",
                     lambda e: _with_procedures(e, list(e.procedures[:n - 1])), "mention",
                     tuple(f"new procedure {k + 1}" for k in range(NEW_PROCEDURES)))


#: The candidate changes, per input predicate: what the solver may choose among.
CHANGES: tuple[Callable[[KB, Encounter], Iterator[Change]], ...] = (
    _name_a_muscle, _name_in_place_of_a_term, _document_a_side, _document_necessity, _add_a_diagnosis,
    _billed_modifiers, _document_abn,
)


# ---------------------------------------------------------------------- the search
def make(kb: KB, enc: Encounter, code: str) -> WhatIf:
    """The smallest changes that make `code` a reported line."""
    goal = [("_whatif_goal_code", code)]
    text = "_whatif_goal :- _whatif_goal_code(C), line(1, C, _).\n"
    return search(kb, enc, f"--make {code}", text, goal, lambda o: any(ln.code == code for ln in o.lines))


def accept_billed(kb: KB, enc: Encounter) -> WhatIf:
    """The smallest changes that make every billed line accepted."""
    if not enc.billed:
        raise ValueError("the encounter has no billed lines")
    text = ("_whatif_unaccepted :- billed(1, B, _, _), not verdict(1, B, accept).\n"
            "_whatif_goal :- not _whatif_unaccepted.\n")
    return search(kb, enc, "--accept-billed", text, [],
                  lambda o: all(b.verdict == "accept" for b in o.billed or []))


def fire(kb: KB, enc: Encounter, rule_id: str,
         extra: tuple[Callable[[KB, Encounter], Iterator[Change]], ...] = ()) -> WhatIf:
    """The smallest changes that make a rule fire (bridge/generate.py)."""
    rule = kb.rules[rule_id]
    arity = len(rule.variables) + (2 if rule.encounter is None else 1)
    args = ", ".join(["_"] * (arity - 2))
    text = f"_whatif_goal :- _whatif_goal_rule(N), {FIRED}(1, N{', ' + args if args else ''}).\n"
    return search(kb, enc, f"fire {rule_id}", text, [("_whatif_goal_rule", rule.number)],
                  lambda o: rule_id in (o.fired or []), mode="full", extra=extra)


def search(kb: KB, enc: Encounter, goal: str, goal_text: str, goal_rows: list[Atom],
           reached: Callable[[Outcome], bool], mode: str = "plain",
           check: Callable[[Outcome], bool] | None = None,
           extra: tuple[Callable[[KB, Encounter], Iterator[Change]], ...] = ()) -> WhatIf:
    """The fewest candidate changes for which `goal_text` derives _whatif_goal; `reached`
    says whether an outcome has the goal already, `check` (default `reached`) whether a
    changed encounter, coded on its own, does."""
    before = solve_batch(kb, [enc], mode="full")
    base_outcome = before.outcome(1, enc)
    result = WhatIf(goal)
    if reached(base_outcome):
        result.already = True
        return result
    changes = [c for make_changes in (*CHANGES, *extra) for c in make_changes(kb, enc)]
    facts, rows = batch_input(kb, [enc])
    base = set(facts)
    choice_rows, kept, program_text = _choice_facts(kb, enc, changes, base)
    all_facts = [f for f in facts if f not in kept] + choice_rows + goal_rows
    strings = {a for f in choice_rows for a in f[2:] if isinstance(a, str)}
    rows = list(dict.fromkeys([*rows, *kb.tables.for_batch(strings)]))
    program = kb.program(mode)
    text = program.text + program_text + goal_text + ":- not _whatif_goal.\n#show _whatif/1.\n"
    models = engine.optimize(Program(text, program.origins + (("kb (what-if)", 0),) * (text.count("\n") -
                                                                                          len(program.origins))),
                             all_facts, rows, limit=LIMIT * 20)
    fired_before = set(before.fired(1))
    for picked in _diverse([[changes[i] for i in sorted(a[1] for a in m if a[0] == "_whatif")] for m in models]):
        changed = enc
        for change in sorted(picked, key=lambda c: c.slot):
            changed = change.apply(changed)
        after = solve_batch(kb, [changed], mode="full")
        outcome = after.outcome(1, changed)
        new = sorted(r for r in after.fired(1) - fired_before if not kb.rules[r].plumbing)
        result.answers.append(Answer(picked, changed, outcome, new, (check or reached)(outcome)))
        if len(result.answers) >= LIMIT:
            break
    return result


def _diverse(answers: list[list[Change]]) -> list[list[Change]]:
    """The answers, one of each sort first (which slots and kinds they change), in turn."""
    groups: dict[tuple, list[list[Change]]] = {}
    seen: set[tuple] = set()
    for picked in answers:
        key = tuple(sorted(c.text for c in picked))
        if key not in seen:
            seen.add(key)
            groups.setdefault(tuple(sorted((c.slot.split(" ")[0], c.kind) for c in picked)), []).append(picked)
    out: list[list[Change]] = []
    while any(groups.values()):
        for group in groups.values():
            if group:
                out.append(group.pop(0))
    return out


def _choice_facts(kb: KB, enc: Encounter, changes: list[Change], base: set[Atom]
                  ) -> tuple[list[Atom], set[Atom], str]:
    """The rows that say, for each candidate, its slot and the facts it adds and drops; the
    base facts some candidate drops (given conditionally); and the rules that read them."""
    rows: list[Atom] = []
    dropped: set[Atom] = set()
    slots: dict[str, int] = {}
    preds: set[tuple[str, int]] = set()
    n = len(enc.procedures)
    for i, change in enumerate(changes):
        rows.append(("_whatif_edit", i))
        for slot in (change.slot, *change.also):
            rows.append(("_whatif_slot", i, slots.setdefault(slot, len(slots))))
        if change.slot.startswith("new procedure "):
            rows.append(("_whatif_new", i))
        if change.slot.startswith("new procedure ") and not change.slot.endswith(" 1"):
            # the second new muscle only after the first: one order of the same choice
            rows.append(("_whatif_after", i, slots.setdefault("new procedure 1", len(slots))))
        after = set(batch_facts([change.apply(enc)], kb.reader()))
        if change.slot.startswith("new procedure "):
            k = int(change.slot.rsplit(" ", 1)[1])
            # only the new procedure's facts, at position n + k (a placeholder stood before it)
            after = {f for f in after if f[0] not in PROCEDURE_INPUTS or f[2] <= n or f[2] == n + k}
        for f in after - base:
            rows.append((f"_whatif_add_{f[0]}", i, *f[1:]))
            preds.add((f[0], len(f) - 1))
        for f in base - after:
            rows.append((f"_whatif_drop_{f[0]}", i, *f[1:]))
            dropped.add(f)
            preds.add((f[0], len(f) - 1))
    for f in dropped:
        rows.append((f"_whatif_keep_{f[0]}", *f[1:]))
    lines = ["{ _whatif(I) : _whatif_edit(I) }.",
             ":- _whatif_slot(I, S), _whatif_slot(J, S), _whatif(I), _whatif(J), I < J.",
             # fewest changes; among those, fewest new procedures: better to name what the
             # documentation already says (a region term) than to add a muscle it does not
             "#minimize { 1@2,I : _whatif(I) }.",
             "#minimize { 1@1,I : _whatif(I), _whatif_new(I) }.",
             "#defined _whatif_new/1.",
             "_whatif_used(S) :- _whatif(I), _whatif_slot(I, S).",
             ":- _whatif(I), _whatif_after(I, S), not _whatif_used(S).",
             "#defined _whatif_after/2."]
    for name, arity in sorted(preds):
        args = ",".join(f"A{j}" for j in range(1, arity + 1))
        lines += [f"{name}({args}) :- _whatif_add_{name}(I,{args}), _whatif(I).",
                  f"{name}({args}) :- _whatif_keep_{name}({args}), not _whatif_gone_{name}({args}).",
                  f"_whatif_gone_{name}({args}) :- _whatif_drop_{name}(I,{args}), _whatif(I).",
                  f"#defined _whatif_add_{name}/{arity + 1}.", f"#defined _whatif_keep_{name}/{arity}.",
                  f"#defined _whatif_drop_{name}/{arity + 1}."]
    lines += ["#defined _whatif_goal_code/1.", "#defined _whatif_goal_rule/1."]
    return rows, dropped, "\n".join(lines) + "\n"
