"""Draft cases for rules no case fires: the solver finds the fewest changes (bridge/whatif.py)
to an encounter of the library (or one given) that make the rule fire, or, with `almost`,
that make every condition of the rule but the last hold while the rule does not fire. The
draft's `expect` is the outcome as the KB decides it today, marked for an analyst's review:
the KB proposes the encounter; only a person can say the expectation is right.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ruamel.yaml import YAML

from . import whatif
from .api import solve_batch
from .kb import FIRED, KB
from .load import read_paths
from .model import Encounter
from .outcome import Outcome
from .whynot import PREFIX, prefix_rules

SEEDS = 6  # library encounters tried, nearest first
DRAFT_CHANGES = (whatif.drop_last_procedure,)  # a draft may also leave documentation out


@dataclass
class Draft:
    rule: str
    seed: str  # where the encounter came from
    changes: list[str]
    encounter: Encounter
    outcome: Outcome
    almost: bool

    def case(self) -> dict:
        o = self.outcome
        name = f"draft-{'almost-' if self.almost else ''}{self.rule.replace('_', '-')}"
        expect: dict = {"lines": [{"code": ln.code, **({"units": ln.units} if ln.units != 1 else {}),
                                   **({"modifiers": list(ln.modifiers)} if ln.modifiers else {})} for ln in o.lines]}
        if o.findings:
            expect["findings"] = sorted({f.id for f in o.findings})
        if o.billed:
            expect["billed"] = [{"code": b.code, "verdict": b.verdict,
                                 **({"reasons": sorted({r.id for r in b.reasons})} if b.reasons else {})}
                                for b in o.billed]
        expect["not_fired" if self.almost else "fired"] = [self.rule]
        encounter = self.encounter.model_dump(mode="json", exclude_none=True, exclude_defaults=True)
        encounter.pop("id", None)
        what = "almost fires (every condition but the last holds)" if self.almost else "fires"
        return {"name": name,
                "description": f"DRAFT for review: an encounter where rule {self.rule} {what}, made by "
                               f"`tpkb generate` from {self.seed} with these changes: " +
                               ("; ".join(self.changes) or "none") +
                               ". The expectation is what the KB decides today: check it against the policy, "
                               "then give the case a name, a description and its source, and drop the draft tag.",
                "source": "DRAFT: cite the policy this case pins",
                "tags": ["draft", "generated"],
                "encounter": encounter, "expect": expect}

    def yaml(self) -> str:
        out = io.StringIO()
        yaml = YAML()
        yaml.default_flow_style = None
        yaml.width = 100
        out.write(f"# DRAFT made by `tpkb generate --rule {self.rule}{' --not' if self.almost else ''}`: "
                  "review it before it joins the library.\n")
        yaml.dump([self.case()], out)
        return out.getvalue()


def seeds(kb: KB, rule_id: str, paths: Iterable[str | Path]) -> list[tuple[str, Encounter]]:
    """Encounters to start from, nearest first: those whose fired rules derive most of the
    predicates the rule's body reads."""
    rule = kb.rules[rule_id]
    wanted = {(lit.atom.name, len(lit.atom.args)) for lit in rule.body if lit.atom is not None}
    feeders = {r.id for r in kb.by_number if r.signature in wanted}
    found = []
    for record in read_paths(paths, kb.profiles(), lines=True):
        if record.problems:
            continue
        enc = record.encounter if record.case is None else record.case.encounter
        if enc is None or (record.case is not None and record.case.sessions):
            continue
        found.append((f"{record.where} ({record.case.name if record.case else record.id})", enc))
    if not found:
        return []
    answer = solve_batch(kb, [e for _, e in found], mode="full")
    scored = sorted(range(len(found)), key=lambda i: (-len(answer.fired(i + 1) & feeders), i))
    return [found[i] for i in scored[:SEEDS]]


def generate(kb: KB, rule_id: str, paths: Iterable[str | Path], almost: bool = False) -> Draft | None:
    """A draft case that fires (or almost fires) the rule, or None where no seed reaches it."""
    if rule_id not in kb.rules:
        raise ValueError(f"unknown rule id {rule_id!r}")
    rule = kb.rules[rule_id]
    if rule.encounter is None:
        raise ValueError(f"rule {rule_id} is about the KB's tables alone: no encounter fires it")
    for where, enc in seeds(kb, rule_id, paths):
        result = _almost(kb, enc, rule_id) if almost else whatif.fire(kb, enc, rule_id, DRAFT_CHANGES)
        picked = result.answers[0] if result.answers else None
        if result.already:
            outcome = solve_batch(kb, [enc], mode="full").outcome(1, enc)
            return Draft(rule_id, where, [], enc, outcome, almost)
        if picked is not None and picked.reaches:
            return Draft(rule_id, where, [c.text for c in picked.changes], picked.encounter, picked.outcome, almost)
    return None


def _almost(kb: KB, enc: Encounter, rule_id: str) -> whatif.WhatIf:
    rule = kb.rules[rule_id]
    text, plans = prefix_rules(kb)
    last = len(plans[rule.number]) - 1
    arity = len(rule.variables) + 1
    fired = f"{FIRED}(1, N{', _' * (arity - 2)})"
    goal = (text + f"_whatif_goal :- _whatif_goal_rule(N), {PREFIX}(1, N, {max(last, 1)}, _), not _whatif_fired.\n"
            f"_whatif_fired :- _whatif_goal_rule(N), {fired}.\n")
    return whatif.search(kb, enc, f"almost {rule_id}", goal, [("_whatif_goal_rule", rule.number)],
                         lambda o: False, mode="full", check=lambda o: rule_id not in (o.fired or []),
                         extra=DRAFT_CHANGES)
