"""The impact of a KB edit on the case library: run every case under the base KB (a git
revision of the KB folder, or another folder) and under the current one, and say which
cases came out differently, grouped by the rules whose firing changed, with the
explanation of each conclusion that differs.

An analyst reads this before committing a rule edit: it is the whole library's answer to
"what else did I change?". `--accept` (bridge/accept.py) then writes the new outcomes into
the `expect` blocks of the cases they meant to change."""

from __future__ import annotations

import io
import re
import subprocess
import tarfile
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from .cases import Result, Run
from .explain import Graph
from .kb import KB
from .printable import escape
from .render import to_text


class ImpactError(Exception):
    """Bad input for the comparison (a revision git does not know, a KB folder outside git):
    one line for the user."""


# ---------------------------------------------------------------------- the base KB
def _git(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(["git", "-C", str(cwd), *args], capture_output=True, check=False)
    except FileNotFoundError as exc:
        raise ImpactError("git is not installed (use --base-kb DIR instead of --base REV)") from exc


@contextmanager
def kb_at_revision(kb_dir: Path, rev: str) -> Iterator[Path]:
    """The KB folder as it was at `rev` of the git repository holding `kb_dir`, extracted
    into a temporary folder that is removed afterwards."""
    top = _git(kb_dir, "rev-parse", "--show-toplevel")
    if top.returncode != 0:
        raise ImpactError(f"--base {escape(rev)}: the KB folder {escape(str(kb_dir))} is not in a git repository "
                          "(use --base-kb DIR)")
    root = Path(top.stdout.decode().strip())
    prefix = _git(kb_dir, "rev-parse", "--show-prefix").stdout.decode().strip()
    commit = _git(root, "rev-parse", "--verify", "--quiet", "--end-of-options", f"{rev}^{{commit}}")
    if commit.returncode != 0 or not rev.strip():
        raise ImpactError(f"--base {escape(rev)}: not a revision of the git repository {escape(str(root))}")
    sha = commit.stdout.decode().strip()
    archive = _git(root, "archive", "--format=tar", sha, "--", prefix or ".")
    if archive.returncode != 0:
        raise ImpactError(f"--base {escape(rev)}: the revision has no {escape(prefix or 'KB')} folder")
    with tempfile.TemporaryDirectory(prefix="tpkb-base-") as tmp:
        _extract(archive.stdout, Path(tmp))
        yield Path(tmp) / prefix


def _extract(data: bytes, into: Path) -> None:
    """Regular files and folders of a tar made by git archive, none outside `into`."""
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        for member in tar.getmembers():
            target = (into / member.name).resolve()
            if not target.is_relative_to(into.resolve()):
                continue
            if member.isdir():
                target.mkdir(parents=True, exist_ok=True)
            elif member.isfile():
                target.parent.mkdir(parents=True, exist_ok=True)
                stream = tar.extractfile(member)
                target.write_bytes(stream.read() if stream else b"")


# ---------------------------------------------------------------------- comparing
def _billed_text(result: Result) -> list[str]:
    return [f"{b.text()}: {b.verdict}"
            + (f" ({', '.join(sorted({r.id for r in b.reasons}))})" if b.reasons else "")
            for b in result.outcome.billed or []]


def snapshot(result: Result) -> dict[str, list[str]]:
    """What a case came out as, in the terms compared: lines, findings (with their message),
    the audit line by line, and the rules fired."""
    out = result.outcome
    return {
        "lines": sorted(ln.text() for ln in out.lines),
        "findings": sorted({f"{f.id}: {f.message}" for f in out.findings}),
        "billed": _billed_text(result),
        "fired": sorted(set(out.fired or [])),
    }


@dataclass
class CaseChange:
    name: str
    where: str  # file:line under the current KB (else under the base)
    before: Result | None
    after: Result | None
    problem: str = ""  # for a case run under one KB only: why not under the other
    fired_plus: list[str] = field(default_factory=list)  # rules that fire now and did not
    fired_minus: list[str] = field(default_factory=list)
    why_before: list[str] = field(default_factory=list)  # explanations of the conclusions that differ
    why_after: list[str] = field(default_factory=list)

    @property
    def is_new(self) -> bool:
        return self.before is None or self.after is None

    def differences(self) -> dict[str, tuple[list[str], list[str]]]:
        """Per compared key that differs: (before, after)."""
        if self.before is None or self.after is None:
            return {}
        old, new = snapshot(self.before), snapshot(self.after)
        return {k: (old[k], new[k]) for k in old if old[k] != new[k]}


@dataclass
class RuleChange:
    id: str
    at: str
    status: str  # changed, added (only in the current KB), removed (only in the base KB)
    plumbing: bool
    now: list[str] = field(default_factory=list)  # cases where it fires now and did not
    no_longer: list[str] = field(default_factory=list)

    @property
    def cases(self) -> list[str]:
        return sorted(set(self.now) | set(self.no_longer))


@dataclass
class Impact:
    base: str
    current: str
    total: int
    changed: list[CaseChange]
    new: list[CaseChange]
    unchanged: int
    rules: list[RuleChange]  # every rule whose firing changed, or that only one KB has
    plumbing: frozenset[str] = frozenset()  # ids of the plumbing rules of either KB

    def shown_rules(self, plumbing: bool) -> list[RuleChange]:
        return [r for r in self.rules if plumbing or not r.plumbing]


def compare_runs(base_kb: KB, base_run: Run, kb: KB, run: Run, base: str, current: str) -> Impact:
    """Every case of either run, matched by name, and every rule whose firing changed."""
    before = {r.case.name: r for r in base_run.results}
    after = {r.case.name: r for r in run.results}
    base_problems = {p.case: f"{p.field}: {p.message}" if p.field else p.message for p in base_run.problems if p.case}
    problems = {p.case: f"{p.field}: {p.message}" if p.field else p.message for p in run.problems if p.case}
    changed, new = [], []
    for name in sorted(set(before) | set(after)):
        old, now = before.get(name), after.get(name)
        where = (now or old).record.where  # type: ignore[union-attr]
        if old is None or now is None:
            why = base_problems.get(name, "") if old is None else problems.get(name, "")
            new.append(CaseChange(name, where, old, now, problem=why))
            continue
        if snapshot(old) == snapshot(now):
            continue
        fired_old, fired_new = set(old.outcome.fired or []), set(now.outcome.fired or [])
        change = CaseChange(name, where, old, now, fired_plus=sorted(fired_new - fired_old),
                            fired_minus=sorted(fired_old - fired_new))
        change.why_before, change.why_after = _why(base_kb, base_run, old, kb, run, now)
        changed.append(change)
    rules = _rule_changes(base_kb, kb, changed)
    total = len(set(before) | set(after))
    plumbing = frozenset(rid for k in (base_kb, kb) for rid, r in k.rules.items() if r.plumbing)
    return Impact(base, current, total, changed, new, total - len(changed) - len(new), rules, plumbing)


def _rule_changes(base_kb: KB, kb: KB, changed: list[CaseChange]) -> list[RuleChange]:
    found: dict[str, RuleChange] = {}

    def rule(rid: str) -> RuleChange:
        if rid not in found:
            r = kb.rules.get(rid) or base_kb.rules[rid]
            status = "changed" if rid in kb.rules and rid in base_kb.rules else \
                "added" if rid in kb.rules else "removed"
            found[rid] = RuleChange(rid, r.at, status, r.plumbing)
        return found[rid]

    for change in changed:
        for rid in change.fired_plus:
            rule(rid).now.append(change.name)
        for rid in change.fired_minus:
            rule(rid).no_longer.append(change.name)
    for rid in set(kb.rules) ^ set(base_kb.rules):
        rule(rid)
    return sorted(found.values(), key=lambda r: (-len(r.cases), r.id))


def _why(base_kb: KB, base_run: Run, old: Result, kb: KB, run: Run, now: Result) -> tuple[list[str], list[str]]:
    """The explanation, under each KB, of the conclusions (lines, modifiers, findings,
    verdicts with their reasons) that the other KB does not reach."""
    g_old, g_new = base_run.graph(old), run.graph(now)
    if g_old is None or g_new is None:
        return [], []
    texts_old = {c.text for c in g_old.conclusions}
    texts_new = {c.text for c in g_new.conclusions}
    return _only(base_kb, g_old, texts_new), _only(kb, g_new, texts_old)


def _only(kb: KB, graph: Graph, other: set[str]) -> list[str]:
    """The text explanation of the graph's conclusions the other graph lacks; a verdict is
    kept with its reasons where any of them differs."""
    keep, verdict = [], None
    for c in graph.conclusions:
        if c.kind == "verdict":
            verdict = c
        differs = c.text not in other
        if c.kind == "reason" and differs and verdict is not None and verdict not in keep:
            keep.append(verdict)
        if differs or (c.kind == "reason" and verdict in keep):
            keep.append(c)
    if not keep:
        return []
    lines = to_text(kb, Graph(graph.nodes, keep, graph.names), depth=WHY_DEPTH, indent="  ")
    return [_MORE.sub("; tpkb explain shows them)", line) for line in lines]


_MORE = re.compile(r"; --depth \d+ or --full to see them\)$")


# ---------------------------------------------------------------------- text
WHY_DEPTH = 2  # levels of rules under each conclusion that differs: `tpkb explain` shows the rest
SUMMARY_RULES = 15  # rule lines in the summary; the rest are counted, and listed in the details


def _names(ids: Iterable[str]) -> str:
    return ", ".join(ids) or "none"


def summary_text(impact: Impact, plumbing: bool) -> list[str]:
    """The first screen: totals and one line per rule whose firing changed."""
    out = [f"impact of the KB edit: base {impact.base} -> current {impact.current}",
           f"{impact.total} cases: {len(impact.changed)} changed, {len(impact.new)} new (only under one KB), "
           f"{impact.unchanged} unchanged"]
    shown = impact.shown_rules(plumbing)
    hidden = len(impact.rules) - len(shown)
    if shown:
        note = "" if plumbing else " (policy rules)" if not hidden else \
            f" (policy rules; {hidden} plumbing rule(s) hidden, --plumbing shows them)"
        out.append(f"rules whose firing changed{note}:")
    elif hidden:
        out.append(f"no policy rule's firing changed ({hidden} plumbing rule(s); --plumbing shows them)")
    for r in shown[:SUMMARY_RULES]:
        out.append("  " + _rule_line(r))
    if len(shown) > SUMMARY_RULES:
        out.append(f"  ... and {len(shown) - SUMMARY_RULES} more rule(s), listed below")
    other = _ungrouped(impact, plumbing)
    if other:
        out.append(f"  {len(other)} case(s) changed where no {'' if plumbing else 'policy '}rule's firing changed "
                   "(messages, or plumbing only)")
    return out


def _rule_line(r: RuleChange) -> str:
    n = len(r.cases)
    counts = f"{n} case{'s' if n != 1 else ''}" if n else "fired by no case"
    detail = f" (fires now in {len(r.now)}, no longer in {len(r.no_longer)})" if r.now and r.no_longer else \
        " (fires now)" if r.now and r.status == "changed" else " (no longer fires)" if r.no_longer and \
        r.status == "changed" else ""
    status = "" if r.status == "changed" else \
        "added in the current KB; " if r.status == "added" else "removed from the current KB; "
    kind = " [plumbing]" if r.plumbing else ""
    return f"{r.id} ({r.at}){kind}: {status}{counts}{detail}"


def _ungrouped(impact: Impact, plumbing: bool) -> list[CaseChange]:
    grouped = {name for r in impact.shown_rules(plumbing) for name in r.cases}
    return [c for c in impact.changed if c.name not in grouped]


def details_text(impact: Impact, plumbing: bool) -> list[str]:
    """Each changed case once, under the first (largest) group of rules it falls in."""
    by_name = {c.name: c for c in impact.changed}
    out: list[str] = []
    done: set[str] = set()
    for r in impact.shown_rules(plumbing):
        if not r.cases:
            continue
        fresh = [name for name in r.cases if name not in done]
        above = len(r.cases) - len(fresh)
        out += ["", f"== {_rule_line(r)}" + (f"; {'all' if not fresh else above} shown above" if above else "")]
        for name in fresh:
            done.add(name)
            out += _case_text(by_name[name], plumbing, impact.plumbing)
    rest = _ungrouped(impact, plumbing)
    if rest:
        out += ["", f"== no {'' if plumbing else 'policy '}rule's firing changed: {len(rest)} case(s)"]
        for change in rest:
            out += _case_text(change, plumbing, impact.plumbing)
    if impact.new:
        out += ["", f"== only under one KB: {len(impact.new)} case(s)"]
        for change in impact.new:
            under = "current" if change.after is not None else "base"
            result = change.after or change.before
            assert result is not None
            out.append(f"{change.where}  {escape(change.name)}: only under the {under} KB; "
                       f"lines {_names(snapshot(result)['lines'])}")
            if change.problem:
                out.append(f"  under the other KB: {change.problem}")
    return out


def _case_text(change: CaseChange, plumbing: bool, hidden: frozenset[str]) -> list[str]:
    out = [f"{change.where}  {escape(change.name)}"]
    diffs = change.differences()
    if "lines" in diffs:
        old, new = diffs["lines"]
        out.append(f"  lines: {_names(old)} -> {_names(new)}")
    if "findings" in diffs:
        old, new = diffs["findings"]
        out += [f"  findings: -{f}" for f in old if f not in new] + [f"  findings: +{f}" for f in new if f not in old]
    if "billed" in diffs:
        old, new = diffs["billed"]
        out += [f"  billed line {i}: {a} -> {b}" for i, (a, b) in enumerate(zip(old, new), start=1) if a != b]
    plus = [r for r in change.fired_plus if plumbing or r not in hidden]
    minus = [r for r in change.fired_minus if plumbing or r not in hidden]
    folded = len(change.fired_plus) + len(change.fired_minus) - len(plus) - len(minus)
    if plus or minus or folded:
        out.append("  rules: " + " ".join([f"+{r}" for r in plus] + [f"-{r}" for r in minus]
                                          + ([f"(and {folded} plumbing)"] if folded else [])))
    if change.why_before:
        out.append("  under the base KB:")
        out += [f"    {line}" for line in change.why_before]
    if change.why_after:
        out.append("  under the current KB:")
        out += [f"    {line}" for line in change.why_after]
    return out


# ---------------------------------------------------------------------- JSON
def as_json(impact: Impact, plumbing: bool) -> dict:
    """The same content as the text, as one object."""
    def case(change: CaseChange) -> dict:
        item: dict = {"name": change.name, "where": change.where}
        if change.is_new:
            item["only_under"] = "current" if change.after is not None else "base"
            if change.problem:
                item["problem"] = change.problem
            return item
        assert change.before is not None and change.after is not None
        item.update(before=snapshot(change.before), after=snapshot(change.after),
                    changed=sorted(change.differences()), rules_fired_now=change.fired_plus,
                    rules_no_longer_fired=change.fired_minus,
                    why_before=change.why_before, why_after=change.why_after)
        return item

    return {
        "base": impact.base, "current": impact.current,
        "totals": {"cases": impact.total, "changed": len(impact.changed), "new": len(impact.new),
                   "unchanged": impact.unchanged},
        "rules": [{"rule": r.id, "at": r.at, "status": r.status, "plumbing": r.plumbing, "cases": r.cases,
                   "fires_now": sorted(r.now), "no_longer_fires": sorted(r.no_longer)}
                  for r in impact.shown_rules(plumbing)],
        "hidden_plumbing_rules": 0 if plumbing else len(impact.rules) - len(impact.shown_rules(False)),
        "changed": [case(c) for c in impact.changed],
        "new": [case(c) for c in impact.new],
    }


def measure(base_kb: KB, kb: KB, paths: list[str], base: str, current: str) -> tuple[Impact, Run]:
    """Run the cases under both KBs and compare; the current KB's run too, for its problems."""
    from .cases import run_cases

    base_run = run_cases(base_kb, paths)
    run = run_cases(kb, paths)
    return compare_runs(base_kb, base_run, kb, run, base, current), run
