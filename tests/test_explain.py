"""bridge/explain.py: explanations an analyst reads in seconds. The summary shows the
policy rules that decided each conclusion, with the documentation they rest on; plumbing
folds away; no ASP syntax; a shared sub-derivation is one node; the JSON is a graph."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import encounters, inj

from bridge.api import explain, solve_batch
from bridge.explain import view
from bridge.kb import KB
from bridge.load import read_paths
from bridge.render import to_dot, to_json, to_text

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "encounter.yaml"


@pytest.fixture(scope="module")
def graphs(kb: KB):
    """The example and every case of the library, explained."""
    encs = [r.encounter for r in read_paths([EXAMPLE, ROOT / "cases"], kb.profiles()) if r.encounter is not None]
    answer = solve_batch(kb, encs, mode="full")
    return [(enc, explain(kb, answer, key, enc, answer.outcome(key, enc)))
            for key, enc in enumerate(encs, start=1) if enc is not None]


def tpkb(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bridge", *args], capture_output=True, text=True, cwd=ROOT)


def test_the_example_summary_fits_on_a_screen() -> None:
    proc = tpkb("explain", str(EXAMPLE))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) <= 50, len(lines)  # 45 before the example's steroid became a line of its own (issue 7)
    full = tpkb("explain", str(EXAMPLE), "--full").stdout.splitlines()
    assert len(full) > 2 * len(lines)


def test_no_asp_syntax_reaches_the_text(kb: KB, graphs) -> None:
    asp = re.compile(r":-|#count|#sum|_tpkb|\b[a-z_]+\([0-9]+,|[A-Z]\w* = |\bnot [a-z_]+\(")
    for enc, graph in graphs:
        for full in (False, True):
            text = "\n".join(to_text(kb, graph, full=full))
            found = asp.search(text)
            assert found is None, (enc.id, found.group())


def test_plumbing_folds_into_policy_rules(kb: KB, graphs) -> None:
    for _enc, graph in graphs:
        order, _edges, _roots = view(graph, full=False)
        shown = [graph.nodes[n] for n in order]
        assert not any(n.firing is not None and n.firing.rule.plumbing for n in shown)
        assert not any(n.kind == "table" for n in shown)
        assert len(view(graph, full=True)[0]) >= len(order)


def test_each_counted_muscle_shows_the_text_it_came_from(kb: KB) -> None:
    enc = encounters(kb, {"procedures": [inj("rt upper trap"), inj("lev scap", "left"), inj("SCM", "bilateral")]})
    answer = solve_batch(kb, enc, mode="full")
    graph = explain(kb, answer, 1, enc[0], answer.outcome(1, enc[0]))
    text = "\n".join(to_text(kb, graph))
    for muscle, documented in (("trapezius, right side", '"upper trap"'), ("trapezius, right side", '"rt"'),
                               ("levator scapulae, left side", '"lev scap"'),
                               ("sternocleidomastoid, left side", '"scm"'), ("sternocleidomastoid, right side", '"scm"')):
        at = text.index(muscle)
        assert documented in text[at:text.index("\n", text.index("\n", at) + 1)], (muscle, text)


def test_no_coding_conclusion_rests_on_what_was_billed(kb: KB, graphs) -> None:
    checked = 0
    for enc, graph in graphs:
        _order, edges, roots = view(graph, full=True)
        for conclusion, rs in zip(graph.conclusions, roots):
            if conclusion.kind not in ("line", "modifier"):
                continue
            seen, stack = set(), list(rs)
            while stack:
                n = stack.pop()
                if n in seen:
                    continue
                seen.add(n)
                atom = graph.nodes[n].atom
                assert atom[0] not in ("billed", "billed_modifier"), (enc.id, conclusion.text)
                stack.extend(edges[n])
            checked += 1
    assert checked > 100


def test_a_shared_sub_derivation_is_one_node(kb: KB, graphs) -> None:
    for _enc, graph in graphs:
        keys = [(n.firing.rule.number, n.firing.values) for n in graph.nodes if n.firing is not None]
        assert len(keys) == len(set(keys))
        facts = [n.atom for n in graph.nodes if n.firing is None]
        assert len(facts) == len(set(facts))


def test_json_is_a_graph_of_kilobytes(kb: KB, graphs) -> None:
    sizes = []
    for _enc, graph in graphs:
        data = to_json(kb, graph)
        ids = {n["id"] for n in data["nodes"]}
        assert ids == set(range(len(data["nodes"])))
        assert all(a in ids and b in ids for a, b in data["edges"])
        assert all(set(c["nodes"]) <= ids for c in data["conclusions"])
        for node in data["nodes"]:
            if node["kind"] == "rule":
                assert {"rule", "label", "source", "at", "bindings"} <= set(node)
        sizes.append(len(json.dumps(data)))
    assert max(sizes) < 30_000 and sum(sizes) / len(sizes) < 10_000


def test_the_example_json_is_small() -> None:
    proc = tpkb("explain", str(EXAMPLE), "--format", "json")
    assert proc.returncode == 0 and len(proc.stdout) < 100_000
    full = tpkb("explain", str(EXAMPLE), "--format", "json", "--full")
    assert len(full.stdout) < 100_000 and len(full.stdout) > len(proc.stdout)
    data = json.loads(proc.stdout)["encounters"][0]["explanation"]
    assert data["view"] == "summary" and json.loads(full.stdout)["encounters"][0]["explanation"]["view"] == "full"


def test_depth_limits_the_levels_shown() -> None:
    one = tpkb("explain", str(EXAMPLE), "--depth", "1").stdout
    assert "--depth 2 or --full to see them" in one
    assert len(one.splitlines()) < len(tpkb("explain", str(EXAMPLE)).stdout.splitlines())


def test_dot_draws_every_encounter(kb: KB, graphs) -> None:
    dot = to_dot(kb, [(enc.id or "", graph) for enc, graph in graphs[:3]])
    assert dot.startswith("digraph tpkb {") and dot.rstrip().endswith("}")
    assert dot.count("subgraph cluster_") == 3 and dot.count("{") == dot.count("}")
    proc = tpkb("explain", str(EXAMPLE), "--format", "dot")
    assert proc.returncode == 0 and "calls_for_20553" in proc.stdout


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz is not installed")
def test_svg_where_graphviz_is_installed() -> None:
    proc = tpkb("explain", str(EXAMPLE), "--format", "svg")
    assert proc.returncode == 0 and "<svg" in proc.stdout


def test_svg_without_graphviz_says_so(monkeypatch, tmp_path: Path) -> None:
    env_path = str(tmp_path)  # a PATH with no dot on it
    proc = subprocess.run([sys.executable, "-m", "bridge", "explain", str(EXAMPLE), "--format", "svg"],
                          capture_output=True, text=True, cwd=ROOT, env={"PATH": env_path, "TPKB_CACHE": "off"})
    assert proc.returncode == 2 and "Graphviz is not installed" in proc.stderr
