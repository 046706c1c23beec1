"""Why not: for a line, finding or billed verdict an encounter did not get, every rule that
could derive it and the first condition of that rule that failed, with the values of the
instance that got furthest, and, under a failed derived condition, why that one failed.

Computed from the rules, never written per code: the bridge instruments every rule body's
prefixes. A rule `H :- L1, ..., Ln.` (its literals in an order where each is safe) gives

    _tpkb_prefix(E, R, K, (V1, ..., Vm)) :- L1, ..., LK.        for K = 1 .. n

where V are the rule's variables bound by L1..LK. One solve of the encounter with the KB
and these rules says, for each rule, how far its body got and with which values; the
target's values (the code asked about) select the instances that matter. The KB itself
is unchanged: the prefixes derive nothing it reads.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from . import engine
from .api import batch_input
from .engine import Literal, Program
from .explain import Conclusion, Graph, GraphBuilder, compare_text, reading
from .facts import encounter_facts
from .kb import KB
from .model import Encounter
from .outcome import Answer, Outcome, render_label
from .render import to_text
from .rules import Rule
from .terms import ANY, Atom, Const, Pat, Var, show

PREFIX = "_tpkb_prefix"
_VAR = re.compile(r"(?<![\w\"'])([A-Z][A-Za-z0-9_']*)")
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_ASSIGN = re.compile(r"^\s*([A-Z][A-Za-z0-9_']*)\s*=\s*(.+)$", re.S)
_AGG_ASSIGN_RIGHT = re.compile(r"^(#\w+\s*\{.*\})\s*=\s*([A-Z][A-Za-z0-9_']*)\s*$", re.S)
MAX_DEPTH = 8  # a chain of derived conditions is followed this far
MAX_SHOWN = 3  # instances shown per failed rule


# ---------------------------------------------------------------------- the prefix program
def _names(text: str) -> set[str]:
    return set(_VAR.findall(_STRING.sub('""', text))) - {"_"}


@dataclass(frozen=True)
class Step:
    """One literal of a rule body in a safe order: what it needs bound, what it binds."""

    literal: Literal
    needs: frozenset[str]
    binds: frozenset[str]


def safe_order(rule: Rule) -> list[Step]:
    """The body's literals in text order, except that a literal whose variables are not yet
    bound waits until they are (a negative condition, a comparison, an aggregate)."""
    glob = set(rule.variables)
    pending: list[Step] = []
    for lit in rule.body:
        text = lit.text
        if lit.kind == "atom" and not lit.negated:
            pending.append(Step(lit, frozenset(), frozenset(_names(text))))
            continue
        if lit.kind == "compare" and not lit.negated:
            match = _ASSIGN.match(text)
            if match and _VAR.fullmatch(match.group(1).strip()):
                pending.append(Step(lit, frozenset(_names(match.group(2)) & glob), frozenset({match.group(1)})))
                continue
        if lit.kind == "aggregate" and not lit.negated:
            left, right = _ASSIGN.match(text), _AGG_ASSIGN_RIGHT.match(text)
            var = left.group(1) if left and left.group(2).lstrip().startswith("#") else (right.group(2) if right
                                                                                         else None)
            if var is not None:
                pending.append(Step(lit, frozenset((_names(text) & glob) - {var}), frozenset({var})))
                continue
        pending.append(Step(lit, frozenset(_names(text) & glob), frozenset()))
    # the encounter first: a prefix atom carries it
    first = next((s for s in pending if rule.encounter in s.binds and s.literal.kind == "atom"), None)
    if first is not None:
        pending.remove(first)
        pending.insert(0, first)
    order: list[Step] = []
    bound: set[str] = set()
    while pending:
        ready = next((s for s in pending if s.needs <= bound), pending[0])
        pending.remove(ready)
        order.append(ready)
        bound |= ready.binds
    return order


def prefix_rules(kb: KB) -> tuple[str, dict[int, list[tuple[Step, tuple[str, ...]]]]]:
    """The prefix rules of every encounter-level rule, and per rule number its steps with
    the variables each prefix binds (the values of its prefix atom, in rule order)."""
    memo = kb._memo.get("prefixes")
    if memo is not None:
        return memo
    lines: list[str] = []
    plans: dict[int, list[tuple[Step, tuple[str, ...]]]] = {}
    for rule in kb.by_number:
        if rule.encounter is None:
            continue
        steps = safe_order(rule)
        bound: set[str] = set()
        plan = []
        for k, step in enumerate(steps, start=1):
            bound |= step.binds
            names = tuple(v for v in rule.variables if v in bound and v != rule.encounter)
            values = "(" + ",".join(names) + ("," if len(names) == 1 else "") + ")"
            body = "; ".join(s.literal.text for s in steps[:k])
            lines.append(f"{PREFIX}({rule.encounter},{rule.number},{k},{values}) :- {body}.")
            plan.append((step, names))
        plans[rule.number] = plan
    lines.append(f"#show {PREFIX}/4.")
    memo = kb._memo["prefixes"] = ("\n".join(lines) + "\n", plans)
    return memo


# ---------------------------------------------------------------------- targets
@dataclass(frozen=True)
class Target:
    """What was asked about: a line (a code), a finding id, or the acceptance of a billed line."""

    kind: str  # line, finding, accept
    value: str  # a code, a finding id, a billed line's code or number
    text: str

    @classmethod
    def parse(cls, text: str) -> Target:
        raw = text.strip()
        kind, _, value = raw.partition(":") if ":" in raw else ("line", "", raw)
        kind = kind.strip().lower()
        value = value.strip()
        if kind not in ("line", "finding", "accept") or not value:
            raise ValueError(f"--why-not {raw!r}: write a code (20553), finding:ID or accept:CODE (or accept:N, "
                             "the billed line's number)")
        return cls(kind, value, raw)


@dataclass
class Failure:
    """One rule that could derive the target, and where it stopped."""

    rule: Rule
    held: int  # literals of its body that held (in safe order)
    of: int
    bindings: list[dict[str, Any]]  # the instances that got furthest (values of the bound variables)
    failed: str  # the first condition that failed, in words
    literal: str  # the same, as written in the rule
    kind: str  # compare, negated, derived, input, table, aggregate
    held_atoms: list[Atom] = field(default_factory=list)  # the derived conditions that held (for their why)
    because: list[Failure] = field(default_factory=list)  # under a derived condition: why it failed
    blocked_by: list[Atom] = field(default_factory=list)  # under a negative condition: the atoms that hold

    def json(self, kb: KB, graph: Graph) -> dict:
        out: dict[str, Any] = {"rule": self.rule.id, "at": self.rule.at, "label": self.rule.label,
                               "source": self.rule.source, "held": self.held, "of": self.of,
                               "failed": self.failed, "literal": self.literal, "kind": self.kind,
                               "bindings": [{k: show(v) for k, v in b.items()} for b in self.bindings]}
        if self.held_atoms:
            out["held_conditions"] = [reading(kb, a) for a in self.held_atoms]
        if self.blocked_by:
            out["blocked_by"] = [_atom_text(kb, graph, a) for a in self.blocked_by]
        if self.because:
            out["because"] = [f.json(kb, graph) for f in self.because]
        return out


@dataclass
class WhyNot:
    target: Target
    holds: bool  # the encounter has it after all
    failures: list[Failure]
    not_counted: list[str]  # findings about documentation of the same kind that did not count
    graph: Graph
    kb: KB

    def json(self) -> dict:
        return {"why_not": self.target.text, "holds": self.holds, "summary": self.summary(),
                "rules": [f.json(self.kb, self.graph) for f in self.failures],
                "not_counted": self.not_counted}

    def summary(self) -> str:
        """The first rule's deepest failed condition, in one line."""
        if self.holds:
            return f"{self.target.text}: it is there (see the explanation)"
        if not self.failures:
            return f"{self.target.text}: no rule of the KB can derive it"
        leaf = self.failures[0]
        while leaf.because:
            leaf = leaf.because[0]
        return f"{self.target.text}: {leaf.rule.id} fails at {leaf.failed}"

    def text(self) -> list[str]:
        out = [f"why not {self.summary()}"]
        if self.holds:
            return out
        printed: set = set()
        for failure in self.failures:
            _failure_text(self.kb, self.graph, failure, "  ", out, printed)
        if self.not_counted:
            out.append("  documented, but not counted:")
            out += [f"    - {t}" for t in self.not_counted]
        return out


def _failure_text(kb: KB, graph: Graph, f: Failure, pad: str, out: list[str], printed: set) -> None:
    key = (f.rule.number, repr(f.bindings))
    if key in printed:
        out.append(f"{pad}{f.rule.id}: fails at {f.failed} (shown above)")
        return
    printed.add(key)
    out.append(f"{pad}{f.rule.id} ({f.rule.at}): {f.rule.label}")
    out.append(f"{pad}  held {f.held} of {f.of} conditions" + (
        "; " + "; ".join(", ".join(f"{k} = {show(v)}" for k, v in b.items()) for b in f.bindings if b)
        if any(f.bindings) else ""))
    for atom in f.held_atoms:
        for line in _explained(kb, graph, atom):
            out.append(f"{pad}    {line}")
    out.append(f"{pad}  fails: {f.failed}")
    for atom in f.blocked_by:
        out.append(f"{pad}    because: {_atom_text(kb, graph, atom)}")
    for sub in f.because:
        _failure_text(kb, graph, sub, pad + "    ", out, printed)


def _explained(kb: KB, graph: Graph, atom: Atom) -> list[str]:
    """A condition that held, and the policy rules under it (the explanation's summary)."""
    roots = [n.id for n in graph.nodes if n.atom == atom and n.firing is not None]
    if not roots:
        return [reading(kb, atom)]
    sub = Graph(graph.nodes, [Conclusion("why", reading(kb, atom), roots[:1])], graph.names)
    return to_text(kb, sub, depth=3, indent="  ")[1:] or [reading(kb, atom)]


def _atom_text(kb: KB, graph: Graph, atom: Atom) -> str:
    node = next((n for n in graph.nodes if n.atom == atom and n.firing is not None), None)
    if node is not None and node.firing is not None:
        return f"{render_label(node.firing.rule, node.firing.values, graph.names)} [{node.firing.rule.id}]"
    return reading(kb, atom)


# ---------------------------------------------------------------------- the search
class Search:
    """The prefix instances of one encounter's solve, and the walk from the target down."""

    def __init__(self, kb: KB, enc: Encounter, key: int = 1):
        self.kb, self.key = kb, key
        text, self.plans = prefix_rules(kb)
        facts, rows = batch_input(kb, [enc])
        own = encounter_facts(key, enc, kb.reader())
        base = kb.program("full")
        program = Program(base.text + text, base.origins + (("kb (why-not prefixes)", 0),) * text.count("\n"))
        shown = engine.solve(program, facts, rows)
        self.prefixes: dict[tuple[int, int], list[tuple]] = {}
        rest = []
        for atom in shown:
            if atom[0] == PREFIX:
                self.prefixes.setdefault((atom[2], atom[3]), []).append(atom[4])
            else:
                rest.append(atom)
        self.answer = Answer.of(kb, rest, "full")
        self.answer.names = [enc.id]
        self.outcome: Outcome = self.answer.outcome(key, enc)
        # one builder: the explanation's graph, and the nodes of the conditions shown later
        self.builder = GraphBuilder(kb, self.answer, key, own)
        self.graph = self.builder.build(self.outcome, key)
        self.known = ({f.head() for f in self.answer.firings.get(key, ())} | set(self.answer.atoms.get(key, ()))
                      | set(own))
        self.derived = {r.signature for r in kb.by_number}
        self._memo: dict[tuple, bool] = {}

    def holds(self, pattern: Pat) -> list[Atom]:
        return [a for a in self.known if _fits(pattern, a)]

    def why(self, pattern: Pat, depth: int = 0, seen: frozenset = frozenset()) -> list[Failure]:
        """For each rule whose head fits `pattern` (not yet derived), where it stopped."""
        if depth > MAX_DEPTH or pattern in seen:
            return []
        seen = seen | {pattern}
        out = []
        for rule in self.kb.by_number:
            if rule.encounter is None or rule.signature != (pattern.name, len(pattern.args)):
                continue
            head_bindings = _unify(rule.head, pattern, rule.encounter, self.key)
            if head_bindings is None or not self._possible(rule, head_bindings):
                continue
            failure = self._failure(rule, head_bindings, depth, seen)
            if failure is not None:
                out.append(failure)
        out.sort(key=lambda f: (-(f.held / f.of if f.of else 0), f.rule.number))
        return out

    def _possible(self, rule: Rule, bindings: dict[str, Any], seen: frozenset = frozenset()) -> bool:
        """Whether a rule can derive the target at all, whatever the documentation: its table
        conditions must have rows that fit the target's values (20553 is no guidance code, so
        the guidance rule cannot), a negative table condition must not be certain to fail
        (20553 is in the code table, so it is no 'other procedure'), and each derived
        condition must itself be derivable by a rule that can."""
        tables = self.kb.tables.names()
        for lit in rule.body:
            if lit.kind != "atom" or lit.atom is None:
                continue
            pattern = _pattern(lit.atom, bindings)
            if all(a is ANY for a in pattern.args[1:]):
                continue
            if lit.atom.name in tables:
                rows = self.kb.tables.rows(lit.atom.name)
                if lit.negated:
                    unbound = [a for a in lit.atom.args if isinstance(a, Var) and a.name != "_" and
                               a.name not in bindings]
                    if not unbound and any(_fits(pattern, r) for r in rows):
                        return False
                elif not any(_fits(pattern, row) for row in rows):
                    return False
            elif not lit.negated and (pattern.name, len(pattern.args)) in self.derived and \
                    not self._derivable(pattern, seen):
                return False
        return True

    def _derivable(self, pattern: Pat, seen: frozenset) -> bool:
        key = (pattern.name, pattern.args[1:])
        if key in seen:
            return True  # a cycle: do not rule it out
        memo = self._memo.get(key)
        if memo is None:
            memo = self._memo[key] = any(
                self._possible(rule, bindings, seen | {key})
                for rule in self.kb.by_number
                if rule.encounter is not None and rule.signature == (pattern.name, len(pattern.args))
                and (bindings := _unify(rule.head, pattern, rule.encounter, self.key)) is not None)
        return memo

    def _failure(self, rule: Rule, head: dict[str, Any], depth: int, seen: frozenset) -> Failure | None:
        plan = self.plans.get(rule.number, [])
        best_k, best = 0, [dict(head)]
        for k, (_step, names) in enumerate(plan, start=1):
            found = []
            for values in self.prefixes.get((rule.number, k), ()):
                inst = dict(zip(names, values if isinstance(values, tuple) else (values,)))
                if all(inst.get(v, val) == val for v, val in head.items()):
                    found.append({**head, **inst})
            if not found:
                break
            best_k, best = k, found
        if best_k == len(plan):
            return None  # the rule fired for the target: something after it is the matter
        step = plan[best_k][0]
        lit = step.literal
        shown = best[:MAX_SHOWN]
        failure = Failure(rule, best_k, len(plan), [_visible(b, rule) for b in shown], "", lit.text, "")
        failure.held_atoms = self._held(rule, plan[:best_k], shown[0])
        bindings = shown[0]
        if lit.kind == "compare":
            failure.kind, failure.failed = "compare", _compare(lit, bindings)
        elif lit.kind == "atom" and lit.atom is not None and lit.negated:
            pattern = _pattern(lit.atom, bindings)
            failure.kind = "negated"
            failure.blocked_by = self.holds(pattern)[:MAX_SHOWN]
            for atom in failure.blocked_by:
                self.builder.derive(atom)
            held = [reading(self.kb, a) for a in failure.blocked_by] or [reading(self.kb, pattern)]
            failure.failed = f"{'; '.join(held)} (the rule needs this not to hold)"
        elif lit.kind == "atom" and lit.atom is not None:
            pattern = _pattern(lit.atom, bindings)
            sig = (pattern.name, len(pattern.args))
            doc = self.kb.docs.get(sig)
            failure.failed = reading(self.kb, pattern, negated=True) if doc is not None and doc.negative else \
                f"{reading(self.kb, pattern)}: does not hold"
            if sig in self.derived:
                failure.kind = "derived"
                failure.because = self.why(pattern, depth + 1, seen)
            else:
                failure.kind = "table" if pattern.name in self.kb.tables.names() else "input"
        else:
            failure.kind, failure.failed = lit.kind, f"{lit.text} (with {_bindings_text(bindings, rule)})"
        return failure

    def _held(self, rule: Rule, steps: list, bindings: dict[str, Any]) -> list[Atom]:
        """The derived conditions that held for the instance shown (counts, lines...)."""
        out: list[Atom] = []
        for step, _names in steps:
            lit = step.literal
            if lit.kind != "atom" or lit.negated or lit.atom is None:
                continue
            if (lit.atom.name, len(lit.atom.args)) not in self.derived:
                continue
            for atom in self.holds(_pattern(lit.atom, bindings))[:1]:
                self.builder.derive(atom)  # its node, for the explanation of what held
                out.append(atom)
        return out

    def not_counted(self, failures: list[Failure]) -> list[str]:
        """Findings that rest on documentation of the kind the held conditions rest on, but
        on none of the same facts: text that was documented and did not count."""
        inputs_used: set[Atom] = set()
        for f in _walk(failures):
            for atom in f.held_atoms:
                inputs_used |= self._inputs_under(atom)
        kinds = {a[0] for a in inputs_used}
        if not kinds:
            return []
        out = []
        for conclusion in self.graph.conclusions:
            if conclusion.kind != "finding":
                continue
            under: set[Atom] = set()
            for root in conclusion.roots:
                under |= self._inputs_below(root)
            same_kind = {a for a in under if a[0] in kinds}
            if same_kind and not same_kind & inputs_used:
                out.append(conclusion.text.removeprefix("finding "))
        return out

    def _inputs_under(self, atom: Atom) -> set[Atom]:
        roots = self.builder.derive(atom)
        return self._inputs_below(roots[0]) if roots else set()

    def _inputs_below(self, root: int) -> set[Atom]:
        nodes = self.graph.nodes
        out: set[Atom] = set()
        stack, seen = [root], set()
        while stack:
            n = stack.pop()
            if n in seen:
                continue
            seen.add(n)
            node = nodes[n]
            if node.kind == "input" and isinstance(node.atom, tuple):
                out.add(node.atom)
            stack.extend(node.children)
        return out


def _walk(failures: Iterable[Failure]) -> Iterable[Failure]:
    for f in failures:
        yield f
        yield from _walk(f.because)


def why_not(kb: KB, enc: Encounter, target: Target) -> WhyNot:
    """Why the encounter does not have the target (a line, a finding, an accepted billed line)."""
    search = Search(kb, enc)
    key = search.key
    patterns: list[Pat]
    if target.kind == "line":
        patterns = [Pat("line", (key, target.value, ANY))]
    elif target.kind == "finding":
        ident = Const(target.value)
        patterns = [Pat("finding", (key, ident, ANY)), Pat("not_covered", (key, ANY, ident))]
    else:
        billed = enc.billed or []
        lines = [i for i, b in enumerate(billed, start=1) if b.code == target.value or str(i) == target.value]
        if not lines:
            raise ValueError(f"--why-not {target.text}: the claim bills no line {target.value!r} "
                             f"(billed: {', '.join(b.code for b in billed) or 'nothing'})")
        patterns = [Pat("verdict", (key, b, Const("accept"))) for b in lines]
    holds = any(search.holds(p) for p in patterns)
    failures = [] if holds else [f for p in patterns for f in search.why(p)]
    return WhyNot(target, holds, failures, search.not_counted(failures), search.graph, kb)


# ---------------------------------------------------------------------- terms
def _unify(head: Pat, pattern: Pat, evar: str | None, key: int) -> dict[str, Any] | None:
    """The bindings of a rule head's variables that make it fit the pattern, or None."""
    out: dict[str, Any] = {}
    for i, (h, p) in enumerate(zip(head.args, pattern.args)):
        if i == 0 and isinstance(h, Var) and h.name == evar:
            continue  # the encounter: the prefix atoms carry it apart
        if p is ANY:
            continue
        if isinstance(h, Var):
            if h.name == "_":
                continue
            if h.name in out and out[h.name] != p:
                return None
            out[h.name] = p
        elif isinstance(h, Pat) or h != p:
            if isinstance(h, Pat):
                continue  # a compound head argument: let the prefixes decide
            return None
    return out


def _pattern(atom: Pat, bindings: dict[str, Any]) -> Pat:
    args = []
    for a in atom.args:
        if isinstance(a, Var):
            args.append(bindings.get(a.name, ANY))
        elif isinstance(a, Pat):
            args.append(ANY)
        else:
            args.append(a)
    return Pat(atom.name, tuple(args))


def _fits(pattern: Pat, atom: Atom) -> bool:
    if atom[0] != pattern.name or len(atom) - 1 != len(pattern.args):
        return False
    return all(p is ANY or p == a for p, a in zip(pattern.args, atom[1:]))


def _visible(bindings: dict[str, Any], rule: Rule) -> dict[str, Any]:
    return {k: v for k, v in bindings.items() if k != rule.encounter and not k.startswith("_")}


def _bindings_text(bindings: dict[str, Any], rule: Rule) -> str:
    shown = _visible(bindings, rule)
    return ", ".join(f"{k} = {show(v)}" for k, v in shown.items()) or "no values"


def _compare(lit: Literal, bindings: dict[str, Any]) -> str:
    text = compare_text(lit.text, lit.guards, bindings)
    names = sorted(_names(lit.text))
    values = [f"{n} = {show(bindings[n])}" for n in names if n in bindings]
    return f"{lit.text}" + (f", with {', '.join(values)}" if values else "") + (
        f" ({text} does not hold)" if text != lit.text else " does not hold")
