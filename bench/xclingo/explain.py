"""Explain encounters with xclingo: run by bench/alternatives.py in the virtual environment
of xclingo (.tpkb/venv-xclingo: xclingo 2.0b24 requires clingo 5.8.0, tpkb pins 5.8.3).

    python bench/xclingo/explain.py KB_TRACED BATCH.lp ...

KB_TRACED is the KB annotated for xclingo (bench/xclingo/tpkb_traced.lp, written by
bench/alternatives.py); each BATCH.lp holds a batch's table rows and encounter facts
(encounter keys 1..n) and, in its first line, `% ids: ID ID ...`. For each batch: one
xclingo control (xclingo's Python API, as its command line uses it) reads the program,
grounds and solves it; then xclingo explains every public conclusion (the
`%!show_trace` atoms: lines, modifiers, findings, verdicts, rejection reasons) of the
answer set. One JSON line per encounter: its conclusions, how many xclingo explained,
and the explanation trees as xclingo renders them.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from xclingo import XclingoControl  # type: ignore[attr-defined]  # only in its own venv; mypy sees bench/xclingo

SHOW_TRACE = """
%!show_trace {line(E,C,U)}.
%!show_trace {line_modifier(E,C,M)}.
%!show_trace {finding(E,I,S)}.
%!show_trace {not_covered(E,C,I)}.
%!show_trace {verdict(E,B,V)}.
%!show_trace {reject_reason(E,B,R,X)}.
"""


def value(sym: Any) -> Any:
    """A clingo symbol as JSON: strings and numbers as themselves, the rest as text."""
    if sym.type.name == "String":
        return sym.string
    if sym.type.name == "Number":
        return sym.number
    return str(sym)


STAGES = dict.fromkeys(("read, translate (add)", "ground", "solve", "explain", "trees"), 0.0)


def explain_batch(kb: str, batch: str) -> list[dict[str, Any]]:
    first, _, _ = batch.partition("\n")
    ids = first.removeprefix("% ids:").split()
    out: list[dict[str, Any]] = [{"id": i, "atoms": [], "explained": 0, "unexplained": 0, "explanation": []}
                                 for i in ids]
    t0 = time.perf_counter()
    control = XclingoControl(["1", "--warn=none"], n_explanations="1")
    control.add("base", [], kb + batch + SHOW_TRACE)
    t1 = time.perf_counter()
    control.ground([("base", [])])
    t2 = time.perf_counter()
    STAGES["read, translate (add)"] += t1 - t0
    STAGES["ground"] += t2 - t1
    for model in control.solve():
        traced = model.symbols(shown=True)
        for sym in traced:
            out[sym.arguments[0].number - 1]["atoms"].append([sym.name, *(value(a) for a in sym.arguments[1:])])
        explained: set[Any] = set()
        t3 = time.perf_counter()
        STAGES["solve"] += t3 - t2
        for graph in model.explain_model():
            t4 = time.perf_counter()
            STAGES["explain"] += t4 - t3
            for sym in graph.show_trace:
                tree = graph.explain(sym)
                if tree is not None and sym not in explained:
                    explained.add(sym)
                    record = out[sym.arguments[0].number - 1]
                    record["explanation"].append(f"{sym}\n{tree.ascii_tree()}")
            STAGES["trees"] += time.perf_counter() - t4
            break  # one explanation per answer set, as tpkb gives
        for sym in traced:
            out[sym.arguments[0].number - 1]["explained" if sym in explained else "unexplained"] += 1
        break
    return out


def main() -> None:
    start = time.perf_counter()
    kb = Path(sys.argv[1]).read_text()
    write = sys.stdout.write
    for path in sys.argv[2:]:
        for record in explain_batch(kb, Path(path).read_text()):
            write(json.dumps(record) + "\n")
    STAGES["other (start, JSON out)"] = time.perf_counter() - start - sum(STAGES.values())
    sys.stderr.write(", ".join(f"{k} {v:.2f}" for k, v in STAGES.items()) + "\n")


if __name__ == "__main__":
    main()
