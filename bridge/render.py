"""Outcomes and explanations as text, JSON and Graphviz DOT: one function per format,
each turning one record into its output (so worker processes can render too).

User text (ids, muscle names) is printed escaped (bridge/printable.py); JSON escapes it
by itself."""

from __future__ import annotations

import json
from typing import Any

from .api import explain, solve_batch
from .explain import Graph, to_dot, to_json, to_text
from .kb import KB
from .load import Record
from .outcome import Outcome
from .printable import escape


def error_record(record: Record) -> dict[str, Any]:
    """What a malformed record becomes on JSON output: where it was and what is wrong."""
    return {"file": record.file, "line": record.line, "id": record.id,
            "errors": [f"{p.field}: {p.message}" if p.field else p.message for p in record.problems]}


def as_json(kb: KB, record: Record, outcome: Outcome | None, graph: Graph | None, full: bool = False) -> str:
    if outcome is None:
        return json.dumps(error_record(record))
    out = outcome.json()
    if graph is not None:
        out["explanation"] = to_json(kb, graph, full)
    return json.dumps(out)


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
            mods = "".join("-" + m for m in b.modifiers)
            lines.append(f"    {i}. {b.code}{mods} x{b.units}: {b.verdict}")
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
