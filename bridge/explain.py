"""Explanations as graphs: every line, finding and billed-line verdict of an encounter,
the rule firings that derived it, the facts under them and the negative conditions that
held. A sub-derivation shared by several conclusions is one node.

Two views of the same graph:
- the summary (the default): policy rules only. A rule marked `%@ kind: plumbing` (reading
  text, normalising a side, joining a table) is folded into the policy rule above it, which
  then rests directly on the facts the plumbing read. Table rows are left out (the rule's
  label and source name them);
- the full graph (`--full`): every firing, every fact, every table row.

bridge/render.py draws them: text for people (no ASP syntax), JSON (nodes with ids and
edges), Graphviz DOT.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

from .kb import KB
from .outcome import FINDING_HEADS, Answer, Firing, Outcome, as_finding, render_label, subject_text
from .rules import PLACEHOLDER as _PLACEHOLDER
from .rules import Rule
from .terms import ANY, Atom, Pat, instantiate, matches, show


@dataclass
class Node:
    id: int
    kind: str  # rule, input, table, kb
    atom: Atom | Pat
    firing: Firing | None = None
    children: list[int] = field(default_factory=list)
    negated: list[Any] = field(default_factory=list)  # atoms of the negative conditions that held
    plumbing: bool = False  # a plumbing rule: the summary folds it into the rule above
    shown: bool = False  # a policy rule or an input fact: the summary shows it

    @property
    def rule(self) -> Rule | None:
        return self.firing.rule if self.firing else None


@dataclass
class Conclusion:
    kind: str  # line, modifier, finding, verdict, reason
    text: str
    roots: list[int]


@dataclass
class Graph:
    nodes: list[Node]
    conclusions: list[Conclusion]
    names: list[str | None] = field(default_factory=list)  # the batch's ids, for {F:session} in labels


class Known:
    """What one encounter's explanation can rest on: the atoms its rule firings derived,
    its input facts and the KB's tables, indexed for the patterns rule bodies ask for. The
    firings about the tables alone and the tables' indexes are the batch's and the KB's,
    shared by every encounter."""

    def __init__(self, kb: KB, answer: Answer, key: int, facts: list[Atom]):
        self.kb = kb
        self.tables = kb.tables.names()
        self.heads: dict[int, Atom] = {}
        self.own: dict[Any, list[Firing]] = defaultdict(list)
        self.by_name: dict[str, list[Atom]] = defaultdict(list)
        for firing in answer.firings.get(key, ()):
            head = firing.head()
            self.own[head].append(firing)
            self.by_name[head[0]].append(head)
            self.heads[id(firing)] = head
        self.about_tables = answer.table_firings()
        self.inputs = set(facts)
        for fact in facts:
            self.by_name[fact[0]].append(fact)

    def firings(self, atom: Atom) -> list[Firing]:
        """The firings that derived `atom`: the encounter's own, then those about the tables."""
        own, shared = self.own.get(atom), self.about_tables.get(atom)
        if own and shared:
            return own + shared
        return own or shared or []

    def kind(self, atom: Atom) -> str:
        return "input" if atom in self.inputs else "table" if atom[0] in self.tables else "kb"

    def lookup(self, atom: Atom | Pat) -> list[Atom]:
        """The atoms a body atom stands for: itself, or every known atom that fits a pattern
        (from the encounter's conclusions and facts, else from the tables)."""
        if not isinstance(atom, Pat):
            return [atom]
        found = [a for a in self.by_name.get(atom.name, []) if matches(atom, a)]
        if not found:
            found = [a for a in self._table_candidates(atom) if matches(atom, a)]
        return list(dict.fromkeys(found))

    def _table_candidates(self, pattern: Pat) -> list[Atom]:
        """The table rows of the pattern's predicate that may fit it, by the pattern's first
        bound argument (an encounter's own atoms of one predicate are few, and scanned)."""
        for position, value in enumerate(pattern.args, start=1):
            if value is not ANY and not isinstance(value, Pat):
                return self.kb.tables.rows_by(pattern.name, position).get(value, [])
        return self.kb.tables.rows(pattern.name)


class GraphBuilder:
    """Builds one encounter's explanation graph from the firings of a fully instrumented
    solve, the encounter's input facts and the KB's tables."""

    def __init__(self, kb: KB, answer: Answer, key: int, facts: list[Atom]):
        self.known = Known(kb, answer, key, facts)
        self.names = answer.names
        self.nodes: list[Node] = []
        self.atom_nodes: dict[Any, list[int]] = {}
        self.firing_nodes: dict[tuple, int] = {}

    def build(self, outcome: Outcome, key: int) -> Graph:
        conclusions = []
        for line in outcome.lines:
            conclusions.append(Conclusion("line", f"line {line.text()}", self.derive(("line", key, line.code,
                                                                                     line.units))))
            for m in line.modifiers:
                conclusions.append(Conclusion("modifier", f"modifier {m} on {line.code}",
                                              self.derive(("line_modifier", key, line.code, m))))
        for f in outcome.findings:
            atoms = [a for name in FINDING_HEADS for a in self.known.by_name.get(name, ())
                     if as_finding(a)[2].name == f.id]
            roots = [n for a in atoms for n in self.derive(a)
                     if subject_text(self._rule(n), as_finding(a), self.names) == f.subject]
            conclusions.append(Conclusion("finding", f"finding {f.severity} {f.id}: {f.message}", roots))
        for b, billed in enumerate(outcome.billed or [], start=1):
            verdict = [a for a in self.known.by_name.get("verdict", ()) if a[2] == b]
            mods = "".join("-" + m for m in billed.modifiers)
            conclusions.append(Conclusion("verdict", f"billed line {b}: {billed.code}{mods} x{billed.units}: "
                                          f"{billed.verdict}", [n for a in verdict for n in self.derive(a)]))
            for reason in billed.reasons:
                atoms = [a for a in self.known.by_name.get("reason", ()) if a[2] == b and a[3].name == reason.id]
                roots = [n for a in atoms for n in self.derive(a) if self._message(n) == reason.message]
                conclusions.append(Conclusion("reason", f"reason {reason.id}: {reason.message}", roots))
        return Graph(self.nodes, conclusions, self.names)

    def _rule(self, n: int) -> Rule | None:
        firing = self.nodes[n].firing
        return firing.rule if firing is not None else None

    def _message(self, n: int) -> str | None:
        firing = self.nodes[n].firing
        return render_label(firing.rule, firing.values, self.names) if firing is not None else None

    def derive(self, atom: Atom) -> list[int]:
        """The nodes that derived `atom`: one per rule firing, or one fact node."""
        if atom in self.atom_nodes:
            return self.atom_nodes[atom]
        firings = self.known.firings(atom)
        if firings:
            ids = self.atom_nodes[atom] = []
            ids.extend(self.fired(f) for f in firings)
            return ids
        node = self._node(self.known.kind(atom), atom)
        self.atom_nodes[atom] = [node.id]
        return [node.id]

    def fired(self, firing: Firing) -> int:
        rule, values = firing.rule, firing.values
        key = (rule.number, values)
        known = self.firing_nodes.get(key)
        if known is not None:
            return known
        head = self.known.heads.get(id(firing))
        node = self._node("rule", head if head is not None else firing.head(), firing)
        self.firing_nodes[key] = node.id
        children = node.children
        derive, lookup = self.derive, self.known.lookup
        for negated, premise in _premises(rule, values):
            if negated:
                node.negated.append(premise)
            elif type(premise) is tuple:
                children.extend(derive(premise))
            else:
                for found in lookup(premise):
                    children.extend(derive(found))
        if len(children) > 1:
            node.children = list(dict.fromkeys(children))
        return node.id

    def _node(self, kind: str, atom: Atom | Pat, firing: Firing | None = None) -> Node:
        plumbing = firing is not None and firing.rule.plumbing
        node = Node(len(self.nodes), kind, atom, firing, [], [], plumbing, kind == "input" or
                    (kind == "rule" and not plumbing))
        self.nodes.append(node)
        return node


_PLANS: dict[tuple[int, str, str], tuple] = {}


def _premises(rule: Rule, values: tuple) -> list[tuple[bool, Atom | Pat]]:
    """The body atoms of a firing, in order: (negated, atom or pattern). Each rule's plan is
    worked out once: the values and the rule's written-out arguments make one tuple from
    which an itemgetter picks every atom's arguments."""
    key = (rule.number, rule.id, rule.text)  # the text fixes the body: plans survive KB reloads
    plan = _PLANS.get(key)
    if plan is None:
        plan = _PLANS[key] = _plan(rule)
    constants, steps = plan
    if steps is None:
        return _slow_premises(rule, values)
    pool = values + constants
    out = []
    for negated, name, pick, unary, may_be_open in steps:
        args = (pick(pool),) if unary else pick(pool) if pick is not None else ()
        out.append((negated, Pat(name, args) if may_be_open and ANY in args else (name, *args)))
    return out


def _plan(rule: Rule) -> tuple:
    atoms = [(lit.negated, lit.atom) for lit in rule.body if lit.kind == "atom" and lit.atom is not None]
    atoms += [(False, element) for lit in rule.body if lit.kind == "aggregate" for element in lit.elements]
    constants: list = []
    steps = []
    for (negated, atom), template in zip(atoms, rule.body_templates):
        if template is None:
            return (), None
        indexes = []
        for entry in template:
            if type(entry) is int:
                indexes.append(entry)
            else:
                indexes.append(len(rule.variables) + len(constants))
                constants.append(entry.value)
        pick = itemgetter(*indexes) if indexes else None
        steps.append((negated, atom.name, pick, len(indexes) == 1,
                      any(type(e) is not int and e.value is ANY for e in template)))
    return tuple(constants), steps


def _slow_premises(rule: Rule, values: tuple) -> list[tuple[bool, Atom | Pat]]:
    atoms = [(lit.negated, lit.atom) for lit in rule.body if lit.kind == "atom" and lit.atom is not None]
    atoms += [(False, element) for lit in rule.body if lit.kind == "aggregate" for element in lit.elements]
    return [(negated, rule.premise(i, atom, values)) for i, (negated, atom) in enumerate(atoms)]


def reading(kb: KB, atom: Atom | Pat, negated: bool = False) -> str:
    """An atom in plain words, from the %*! documentation of its predicate."""
    name, args = (atom.name, atom.args) if isinstance(atom, Pat) else (atom[0], atom[1:])
    doc = kb.docs.get((name, len(args)))
    if doc is None:
        text = f"{name.replace('_', ' ')} ({', '.join(show(a) for a in args[1:])})"
        return f"not: {text}" if negated else text
    template = doc.negative if negated and doc.negative else doc.reading
    values = dict(zip(doc.args, args))

    def fill(match: re.Match) -> str:
        value = values.get(match.group(1), ANY)
        return "any" if value is ANY else show(value, match.group(2) or "")

    text = _PLACEHOLDER.sub(fill, template)
    return f"not: {text}" if negated and not doc.negative else text


def compare_text(text: str, terms: tuple, bindings: dict) -> str:
    values = [instantiate(t, bindings) for t in terms]
    if len(values) == 2 and all(v is not ANY for v in values):
        op = text.replace(" ", "")
        for symbol in ("<=", ">=", "!=", "<", ">", "="):
            if symbol in op:
                return f"{show(values[0])} {symbol} {show(values[1])}"
    return text


# ---------------------------------------------------------------------- the summary view
def folded_children(graph: Graph, node: Node, full: bool, memo: dict[int, list[int]] | None = None) -> list[int]:
    """A node's children as a view shows them: in the summary, plumbing rules are replaced
    by what they rest on, and table and KB facts are left out. `memo` keeps what each
    plumbing node folds into, for a view that asks many times."""
    if full:
        return node.children
    memo = {} if memo is None else memo
    nodes = graph.nodes
    out: list[int] = []
    for child_id in node.children:
        child = nodes[child_id]
        if child.plumbing:
            folded = memo.get(child_id)
            if folded is None:
                memo[child_id] = []  # a cycle through plumbing folds into nothing more
                folded = memo[child_id] = folded_children(graph, child, False, memo)
            out.extend(folded)
        elif child.shown:
            out.append(child_id)
    return list(dict.fromkeys(out)) if len(out) > 1 else out


def view(graph: Graph, full: bool) -> tuple[list[int], dict[int, list[int]], list[list[int]]]:
    """The nodes a view shows, its edges, and each conclusion's roots in it."""
    memo: dict[int, list[int]] = {}
    roots = [[r for n in c.roots for r in ([n] if full or not graph.nodes[n].plumbing else
                                           folded_children(graph, graph.nodes[n], False, memo))]
             for c in graph.conclusions]
    edges: dict[int, list[int]] = {}
    order: list[int] = []
    stack = [n for rs in roots for n in reversed(rs)]
    seen: set[int] = set()
    while stack:
        n = stack.pop()
        if n in seen:
            continue
        seen.add(n)
        order.append(n)
        edges[n] = folded_children(graph, graph.nodes[n], full, memo)
        stack.extend(reversed(edges[n]))
    return order, edges, roots
