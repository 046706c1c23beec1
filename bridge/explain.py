"""Explanations as graphs: every line, finding and billed-line verdict of an encounter,
the rule firings that derived it, the facts under them and the negative conditions that
held. A sub-derivation shared by several conclusions is one node.

Two views of the same graph:
- the summary (the default): policy rules only. A rule marked `%@ kind: plumbing` (reading
  text, normalising a side, joining a table) is folded into the policy rule above it, which
  then rests directly on the facts the plumbing read. Table rows are left out (the rule's
  label and source name them);
- the full graph (`--full`): every firing, every fact, every table row.

Renderings: text for people (no ASP syntax), JSON (nodes with ids, edges), Graphviz DOT.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

from .kb import KB
from .outcome import Answer, Firing, Outcome, render_label
from .rules import PLACEHOLDER as _PLACEHOLDER
from .rules import Rule
from .terms import ANY, Atom, Pat, atom_text, instantiate, matches, show


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


class GraphBuilder:
    """Builds one encounter's explanation graph from the firings of a fully instrumented
    solve, the encounter's input facts and the KB's tables."""

    def __init__(self, kb: KB, answer: Answer, key: int, facts: list[Atom]):
        self.kb = kb
        self.tables = kb.tables.names()
        self.heads: dict[int, Atom] = {}
        self.by_head: dict[Any, list[Firing]] = defaultdict(list)
        self.by_name: dict[str, list[Atom]] = defaultdict(list)
        for firing in answer.firings.get(key, ()):
            head = firing.head()
            self.by_head[head].append(firing)
            self.by_name[head[0]].append(head)
            self.heads[id(firing)] = head
        for firing in answer.firings.get(0, ()):  # rules about the tables alone
            self.by_head[firing.head()].append(firing)
        self.inputs = set(facts)
        for fact in facts:
            self.by_name[fact[0]].append(fact)
        self.nodes: list[Node] = []
        self.indexes: dict[tuple, dict[Any, list[Atom]]] = {}
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
            roots = [n for a in self.by_name.get("finding", ()) if a[2].name == f.id and show(a[3], "raw") == f.subject
                     for n in self.derive(a)]
            conclusions.append(Conclusion("finding", f"finding {f.severity} {f.id}: {f.message}", roots))
        for b, billed in enumerate(outcome.billed or [], start=1):
            verdict = [a for a in self.by_name.get("verdict", ()) if a[2] == b]
            mods = "".join("-" + m for m in billed.modifiers)
            conclusions.append(Conclusion("verdict", f"billed line {b}: {billed.code}{mods} x{billed.units}: "
                                          f"{billed.verdict}", [n for a in verdict for n in self.derive(a)]))
            for reason in billed.reasons:
                atoms = [a for a in self.by_name.get("reason", ()) if a[2] == b and a[3].name == reason.id]
                roots = [n for a in atoms for n in self.derive(a) if self._message(n) == reason.message]
                conclusions.append(Conclusion("reason", f"reason {reason.id}: {reason.message}", roots))
        return Graph(self.nodes, conclusions)

    def _message(self, n: int) -> str | None:
        firing = self.nodes[n].firing
        return render_label(firing.rule, firing.values) if firing is not None else None

    def derive(self, atom: Atom) -> list[int]:
        """The nodes that derived `atom`: one per rule firing, or one fact node."""
        if atom in self.atom_nodes:
            return self.atom_nodes[atom]
        firings = self.by_head.get(atom)
        if firings:
            ids = self.atom_nodes[atom] = []
            ids.extend(self.fired(f) for f in firings)
            return ids
        kind = "input" if atom in self.inputs else "table" if atom[0] in self.tables else "kb"
        node = self._node(kind, atom)
        self.atom_nodes[atom] = [node.id]
        return [node.id]

    def fired(self, firing: Firing) -> int:
        rule, values = firing.rule, firing.values
        key = (rule.number, values)
        known = self.firing_nodes.get(key)
        if known is not None:
            return known
        head = self.heads.get(id(firing))
        node = self._node("rule", head if head is not None else firing.head(), firing)
        self.firing_nodes[key] = node.id
        children = node.children
        derive, lookup = self.derive, self.lookup
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

    def lookup(self, atom: Atom | Pat) -> list[Atom]:
        """The atoms a body atom stands for: itself, or every known atom that fits a pattern
        (from the encounter's conclusions and facts, else from the tables)."""
        if not isinstance(atom, Pat):
            return [atom]
        found = [a for a in self._candidates(atom, False) if matches(atom, a)]
        if not found:
            found = [a for a in self._candidates(atom, True) if matches(atom, a)]
        return list(dict.fromkeys(found))

    def _candidates(self, pattern: Pat, table: bool) -> list[Atom]:
        """The known atoms of the pattern's predicate that agree with it on its most
        selective bound argument (indexes built on first use)."""
        atoms = self.kb.tables.rows(pattern.name) if table else self.by_name.get(pattern.name, [])
        best: list[Atom] | None = None
        best_size = 0
        for position, value in enumerate(pattern.args, start=1):
            if value is ANY or isinstance(value, Pat):
                continue
            index = self._index(pattern.name, position, table, atoms)
            if len(index) > best_size:
                best, best_size = index.get(value, []), len(index)
        return atoms if best is None else best

    def _index(self, name: str, position: int, table: bool, atoms: list[Atom]) -> dict[Any, list[Atom]]:
        key = (name, position, table)
        index = self.indexes.get(key)
        if index is None:
            index = self.indexes[key] = {}
            for a in atoms:
                if len(a) > position:
                    index.setdefault(a[position], []).append(a)
        return index

    def reading(self, atom: Atom | Pat, negated: bool = False) -> str:
        return reading(self.kb, atom, negated)

    def _node(self, kind: str, atom: Atom | Pat, firing: Firing | None = None) -> Node:
        plumbing = firing is not None and firing.rule.plumbing
        node = Node(len(self.nodes), kind, atom, firing, [], [], plumbing, kind == "input" or
                    (kind == "rule" and not plumbing))
        self.nodes.append(node)
        return node


_PLANS: dict[tuple[int, str, int], tuple] = {}


def _premises(rule: Rule, values: tuple) -> list[tuple[bool, Atom | Pat]]:
    """The body atoms of a firing, in order: (negated, atom or pattern). Each rule's plan is
    worked out once: the values and the rule's written-out arguments make one tuple from
    which an itemgetter picks every atom's arguments."""
    key = (id(rule), rule.id, rule.number)
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


def _compare_text(text: str, terms: tuple, bindings: dict) -> str:
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


# ---------------------------------------------------------------------- renderings
def to_json(kb: KB, graph: Graph, full: bool = False) -> dict:
    """The graph as JSON: nodes with ids, edges (from a conclusion to what it rests on),
    and each conclusion's root nodes."""
    order, edges, roots = view(graph, full)
    ids = {n: i for i, n in enumerate(sorted(order))}
    nodes = []
    for n in sorted(order):
        node = graph.nodes[n]
        item: dict[str, Any] = {"id": ids[n]}
        if node.firing is not None:
            rule = node.firing.rule
            item.update(kind="rule", rule=rule.id, label=render_label(rule, node.firing.values),
                        source=rule.source, at=rule.at,
                        bindings={v: _json_value(x) for v, x in zip(rule.variables, node.firing.values)
                                  if v != rule.encounter})
            if rule.plumbing:
                item["plumbing"] = True
            if node.negated:
                item["held"] = [reading(kb, atom, negated=True) for atom in node.negated]
            if full:
                checks = [_compare_text(lit.text, lit.guards, rule.bindings(node.firing.values))
                          for lit in rule.body if lit.kind == "compare"]
                if checks:
                    item["checks"] = checks
        else:
            item.update(kind=node.kind, text=reading(kb, node.atom))
            if full:
                item["atom"] = atom_text(node.atom) if isinstance(node.atom, tuple) else str(node.atom)
        nodes.append(item)
    return {
        "view": "full" if full else "summary",
        "conclusions": [{"kind": c.kind, "conclusion": c.text, "nodes": [ids[r] for r in rs]}
                        for c, rs in zip(graph.conclusions, roots)],
        "nodes": nodes,
        "edges": [[ids[a], ids[b]] for a in sorted(order) for b in edges[a]],
    }


def _json_value(value: Any) -> Any:
    return value if isinstance(value, (int, str)) and not isinstance(value, bool) else show(value, "raw")


def to_text(kb: KB, graph: Graph, full: bool = False, depth: int | None = None, indent: str = "  ") -> list[str]:
    """Each conclusion and the chain of rules under it, as indented lines, for people:
    rule labels with their values, each rule's source the first time it appears, the
    documentation facts a rule rests on (not repeated along one chain), and the negative
    conditions that held. A rule already shown above is referred to by its id, not
    expanded again. A billed line's reasons are shown under its verdict."""
    _order, edges, roots = view(graph, full)
    shown: set[int] = set()
    sourced: set[str] = set()
    out: list[str] = []

    def tag(node: Node) -> str:
        rule = node.firing.rule  # type: ignore[union-attr]
        if rule.id in sourced:
            return f"[{rule.id}]"
        sourced.add(rule.id)
        return f"[{rule.id}: {rule.source}]"

    def notes(node: Node, kids: list[int], pad: str, above: frozenset[str]) -> frozenset[str]:
        """Print the facts and negative conditions under a node (on the node's own line
        where they are short); the facts now on screen."""
        facts = [reading(kb, graph.nodes[k].atom) for k in kids if _documentation(graph.nodes[k])]
        fresh = [f for f in dict.fromkeys(facts) if f not in above]
        items = fresh + [reading(kb, atom, negated=True) for atom in node.negated]
        text = "; ".join(items)
        if items and len(text) <= INLINE and out and node.id >= 0:
            out[-1] += f"  <- {text}"
        elif items:
            out.append(f"{pad}- {text}")
        return above | frozenset(fresh)

    def again(kids: list[int]) -> str:
        ids = [graph.nodes[k].firing.rule.id for k in kids  # type: ignore[union-attr]
               if graph.nodes[k].firing is not None and k in shown]
        return f"  (and {', '.join(dict.fromkeys(ids))}, shown above)" if ids else ""

    def walk(n: int, level: int, skip: set[int], above: frozenset[str]) -> None:
        node = graph.nodes[n]
        shown.add(n)
        kids = [k for k in edges.get(n, []) if k not in skip]
        label = render_label(node.firing.rule, node.firing.values)  # type: ignore[union-attr]
        out.append(f"{indent * level}{label}  {tag(node)}{again(kids)}")
        below(node, kids, level, skip, above)

    def below(node: Node, kids: list[int], level: int, skip: set[int], above: frozenset[str]) -> None:
        pad = indent * (level + 1)
        fresh = [k for k in kids if graph.nodes[k].firing is not None and k not in shown]
        above = notes(node, [k for k in kids if k not in fresh], pad, above)
        if depth is not None and level >= depth:
            if fresh:
                out.append(f"{pad}... ({len(fresh)} more rule(s); --depth {level + 1} or --full to see them)")
            return
        for k in fresh:
            if k not in shown:
                walk(k, level + 1, skip, above)

    reasons_by_line = _reasons_by_line(graph, roots)
    for index, (conclusion, rs) in enumerate(zip(graph.conclusions, roots)):
        if conclusion.kind == "reason":
            continue
        rules = [r for r in rs if graph.nodes[r].firing is not None]
        head = graph.nodes[rules[0]] if len(rules) == 1 else None
        if head is not None and head.id not in shown:
            shown.add(head.id)
            skip = {n for r in reasons_by_line.get(index, []) for n in r}
            kids = [k for k in edges.get(head.id, []) if k not in skip]
            out.append(f"{conclusion.text}  {tag(head)}{again(kids)}")
            below(head, kids, 0, skip, frozenset())
        else:
            out.append(conclusion.text)
            notes(Node(-1, "conclusion", ("",)), rs, indent, frozenset())
            for r in rules:
                if r not in shown:
                    walk(r, 1, set(), frozenset())
        for reason_roots in reasons_by_line.get(index, []):
            for r in reason_roots:
                if graph.nodes[r].firing is not None and r not in shown:
                    walk(r, 1, {rs[0]} if rs else set(), frozenset())
    return out


INLINE = 80  # facts and conditions this short go on the rule's own line
# The claim as billed: every audit conclusion names its billed line, so the summary does not
# repeat the billed lines under it (--full shows them).
CLAIM = frozenset({"billed", "billed_modifier"})


def _documentation(node: Node) -> bool:
    """A fact the summary shows: documentation, not the claim, not the bare encounter."""
    atom = node.atom
    return node.firing is None and node.kind == "input" and isinstance(atom, tuple) and len(atom) > 2 \
        and atom[0] not in CLAIM


def _reasons_by_line(graph: Graph, roots: list[list[int]]) -> dict[int, list[list[int]]]:
    """For each verdict conclusion (by index), the roots of the reasons that follow it."""
    out: dict[int, list[list[int]]] = {}
    current = None
    for index, conclusion in enumerate(graph.conclusions):
        if conclusion.kind == "verdict":
            current = index
        elif conclusion.kind == "reason" and current is not None:
            out.setdefault(current, []).append(roots[index])
    return out


def to_dot(kb: KB, graphs: Iterable[tuple[str, Graph]], full: bool = False) -> str:
    """Graphviz DOT: one cluster per encounter, conclusions as boxes, rules as ellipses,
    facts as notes."""
    lines = ["digraph tpkb {", "  rankdir=LR;", '  node [fontname="Helvetica", fontsize=10];']
    for g, (title, graph) in enumerate(graphs):
        order, edges, roots = view(graph, full)
        lines.append(f"  subgraph cluster_{g} {{")
        lines.append(f"    label={_dot(title)};")
        for n in order:
            node = graph.nodes[n]
            if node.firing is not None:
                text = f"{node.firing.rule.id}\\n{render_label(node.firing.rule, node.firing.values)}"
                lines.append(f"    n{g}_{n} [shape=ellipse, label={_dot(text, raw_breaks=True)}];")
            else:
                lines.append(f"    n{g}_{n} [shape=note, label={_dot(reading(kb, node.atom))}];")
        for c, (conclusion, rs) in enumerate(zip(graph.conclusions, roots)):
            lines.append(f"    c{g}_{c} [shape=box, style=bold, label={_dot(conclusion.text)}];")
            lines.extend(f"    c{g}_{c} -> n{g}_{r};" for r in rs)
        for a in order:
            lines.extend(f"    n{g}_{a} -> n{g}_{b};" for b in edges[a])
        lines.append("  }")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _dot(text: str, raw_breaks: bool = False) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    if raw_breaks:
        escaped = escaped.replace("\\\\n", "\\n")
    return f'"{escaped}"'
