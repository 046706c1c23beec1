"""Outcomes and explanations as text, JSON and Graphviz DOT: one function per format,
each turning one record into its output (so worker processes can render too), and the
renderings of an explanation graph (bridge/explain.py): the summary or full text, the JSON
graph, the DOT drawing.

User text (ids, muscle names) is printed escaped (bridge/printable.py); JSON escapes it
by itself."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from .api import explain, solve_batch
from .explain import Graph, Node, compare_text, reading, view
from .kb import KB
from .load import Record
from .outcome import Outcome, render_label
from .printable import escape
from .sources import citations
from .terms import atom_text, show


def error_record(record: Record) -> dict[str, Any]:
    """What a malformed record becomes on JSON output: where it was and what is wrong."""
    return {"file": record.file, "line": record.line, "id": record.id,
            "errors": [f"{p.field}: {p.message}" if p.field else p.message for p in record.problems]}


# One encoder for every record (outcomes hold no cycles to check for).
_ENCODE = json.JSONEncoder(check_circular=False).encode


def as_json(kb: KB, record: Record, outcome: Outcome | None, graph: Graph | None, full: bool = False) -> str:
    if outcome is None:
        return _ENCODE(error_record(record))
    out = outcome.json()
    if graph is not None:
        out["explanation"] = to_json(kb, graph, full)
    return _ENCODE(out)


def as_text(kb: KB, record: Record, outcome: Outcome | None, graph: Graph | None, full: bool = False,
            depth: int | None = None) -> str:
    if outcome is None:
        return ""
    if graph is not None:
        return "\n".join([header(outcome), *to_text(kb, graph, full, depth, "  ")]) + "\n"
    return outcome_text(outcome) + "\n"


def header(outcome: Outcome) -> str:
    return f"{escape(outcome.id)}  {outcome.date}  profile {outcome.payer}"


def outcome_text(out: Outcome) -> str:
    lines = [header(out)]
    if out.lines:
        lines.append("  lines:")
        lines.extend(f"    {ln.text()}" for ln in out.lines)
    else:
        lines.append("  lines: none")
    if out.findings:
        lines.append("  findings:")
        lines.extend(f"    {f.severity:<7} {f.id}: {f.message}  [{f.rule}]" for f in out.findings)
    if out.billed is not None:
        lines.append("  audit:")
        for i, b in enumerate(out.billed, start=1):
            lines.append(f"    {i}. {b.text()}: {b.verdict}")
            lines.extend(f"         {r.id}: {r.message}" for r in b.reasons)
    return "\n".join(lines)


def as_dot_graphs(kb: KB, records: list[Record], full: bool = False) -> str:
    """Graphviz DOT of the explanations of every good record, one cluster each."""
    good = [r for r in records if r.ok and r.encounter is not None]
    answer = solve_batch(kb, [r.encounter for r in good], mode="full")  # type: ignore[misc]
    graphs = []
    for key, record in enumerate(good, start=1):
        enc = record.encounter
        assert enc is not None
        graphs.append((f"{record.id} ({record.where})", explain(kb, answer, key, enc, answer.outcome(key, enc))))
    return to_dot(kb, graphs, full)


# ---------------------------------------------------------------------- explanations
def to_json(kb: KB, graph: Graph, full: bool = False) -> dict:
    """The graph as JSON: nodes with ids, edges (from a conclusion to what it rests on),
    and each conclusion's root nodes."""
    order, edges, roots = view(graph, full)
    ids = {n: i for i, n in enumerate(sorted(order))}
    nodes = []
    static: dict[int, dict[str, Any]] = {}
    for n in sorted(order):
        node = graph.nodes[n]
        item: dict[str, Any] = {"id": ids[n]}
        if node.firing is not None:
            rule = node.firing.rule
            fixed = static.get(rule.number)
            if fixed is None:
                fixed = static[rule.number] = {"kind": "rule", "rule": rule.id, "source": rule.source,
                                               "cites": citations(rule.source), "at": rule.at}
                if rule.plumbing:
                    fixed["plumbing"] = True
            item.update(fixed)
            item["label"] = render_label(rule, node.firing.values, graph.names)
            item["bindings"] = {v: _json_value(x) for v, x in zip(rule.variables, node.firing.values)
                                if v != rule.encounter}
            if node.negated:
                item["held"] = [reading(kb, atom, negated=True) for atom in node.negated]
            if full:
                checks = [compare_text(lit.text, lit.guards, rule.bindings(node.firing.values))
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
        label = render_label(node.firing.rule, node.firing.values, graph.names)  # type: ignore[union-attr]
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
                text = f"{node.firing.rule.id}\\n{render_label(node.firing.rule, node.firing.values, graph.names)}"
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
