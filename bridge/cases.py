"""Run the case library: one solve for all cases, then compare each outcome with its
`expect` block and say, for a failure, what was expected, what came out and why. Also
what changed since the previous run, and which rules the cases fire."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from .api import explain, paused_gc, solve_batch
from .explain import Graph
from .kb import KB
from .load import Problem, Record, read_paths
from .model import Case
from .outcome import Answer, Outcome, line_text
from .render import to_text


@dataclass
class Result:
    case: Case
    record: Record
    outcome: Outcome
    failures: list[str] = field(default_factory=list)
    key: int = 0  # the encounter's key in Run.answer (for its explanation: Run.graph)

    @property
    def passed(self) -> bool:
        return not self.failures


@dataclass
class Run:
    results: list[Result]
    problems: list[Problem]
    fired: set[str]
    errored: int = 0  # cases that could not be run (each problem is reported)
    answer: Answer | None = None  # the fully instrumented solve, kept to explain any case later
    kb: KB | None = None

    def graph(self, result: Result) -> Graph | None:
        """The explanation of a case, built when asked (most runs explain none)."""
        if self.answer is None or self.kb is None:
            return None
        return explain(self.kb, self.answer, result.key, result.case.encounter, result.outcome)

    def why(self, result: Result) -> list[str]:
        graph = self.graph(result)
        return to_text(self.kb, graph, indent="  ") if graph is not None and self.kb is not None else []

    def report(self, result: Result) -> str:
        """What went wrong, as a person reads it: file, case, expected versus actual, why."""
        lines = [f"{result.record.where}: case '{result.case.name}' failed"]
        lines += [f"  {f}" for f in result.failures]
        lines.append("  what happened:")
        lines += [f"    {line}" for line in self.why(result)]
        return "\n".join(lines)

    @property
    def failed(self) -> list[Result]:
        return [r for r in self.results if not r.passed]

    def tally(self) -> str:
        failed = len(self.failed)
        text = f"{len(self.results) - failed} passed, {failed} failed"
        return text + (f", {self.errored} could not be run" if self.errored else "")


def run_cases(kb: KB, paths: Iterable[str | Path], keyword: str | None = None) -> Run:
    """Load every case under `paths`, solve them in one program, and compare."""
    problems: list[Problem] = []
    cases: list[tuple[Case, Record]] = []
    seen: dict[str, str] = {}
    errored = 0
    for record in read_paths(paths, kb.profiles(), lines=True):
        if record.problems:
            problems.extend(record.problems)
            errored += 1
            continue
        case = record.case
        if case is None:
            problems.append(Problem(record.file, record.line, None, "", "is an encounter, not a case (it has "
                                    "nothing to check)"))
            errored += 1
            continue
        if case.name in seen:
            problems.append(Problem(record.file, record.line, case.name, "name",
                                    f"case name already used at {seen[case.name]}"))
            errored += 1
            continue
        seen[case.name] = record.where
        problem = check_expect(kb, case, record)
        if problem:
            problems.append(problem)
            errored += 1
            continue
        if keyword is None or keyword in case.name:
            cases.append((case, record))
    if not cases:
        return Run([], problems, set(), errored)
    with paused_gc():
        # a case's other sessions of the patient's day come after every case's encounter,
        # so that case i keeps key i; each case is its own scope for patients
        sessions = [(i, s) for i, (c, _) in enumerate(cases) for s in c.sessions]
        answer = solve_batch(kb, [c.encounter for c, _ in cases] + [s for _, s in sessions], mode="full",
                             scopes=list(range(len(cases))) + [i for i, _ in sessions])
    results = []
    for key, (case, record) in enumerate(cases, start=1):
        outcome = answer.outcome(key, case.encounter)
        results.append(Result(case, record, outcome, compare(case, outcome), key=key))
    return Run(results, problems, answer.fired_anywhere(), errored, answer, kb)


def check_expect(kb: KB, case: Case, record: Record) -> Problem | None:
    """A case must check something, and name only ids the KB knows."""
    expect = case.expect

    def problem(fld: str, message: str) -> Problem:
        return Problem(record.file, record.line, case.name, f"expect.{fld}" if fld else "expect", message)

    if not expect.checks_something():
        return problem("", "the case has nothing to check (give lines, findings, rejected, billed, fired ...)")
    registries = (("findings", kb.severities(), "finding id", "kb/reference/findings.lp"),
                  ("no_findings", kb.severities(), "finding id", "kb/reference/findings.lp"),
                  ("fired", kb.rules, "rule id", "a %@ rule: line in kb/"),
                  ("not_fired", kb.rules, "rule id", "a %@ rule: line in kb/"))
    for key, known, what, where in registries:
        for ident in getattr(expect, key) or []:
            if ident not in known:
                return problem(key, f"unknown {what} '{ident}' (not in {where})")
    for i, line in enumerate(expect.billed or []):
        for reason in line.reasons or []:
            if reason not in kb.reasons():
                return problem(f"billed[{i}].reasons", f"unknown reason id '{reason}' (not in kb/reference/reasons.lp)")
    billed = case.encounter.billed
    if (expect.rejected is not None or expect.billed is not None) and billed is None:
        return problem("rejected" if expect.rejected is not None else "billed",
                       "the encounter has no billed lines to audit")
    if expect.billed is not None and billed is not None:
        if len(expect.billed) != len(billed):
            return problem("billed", f"lists {len(expect.billed)} line(s); the claim has {len(billed)} (one entry "
                           "per billed line, in order)")
        for i, (want, claimed) in enumerate(zip(expect.billed, billed)):
            if want.code != claimed.code:
                return problem(f"billed[{i}].code", f"is {want.code}, but billed line {i + 1} is {claimed.code} "
                               "(one entry per billed line, in order)")
    return None


def compare(case: Case, out: Outcome) -> list[str]:
    expect, failures = case.expect, []
    if expect.lines is not None:
        want = {(ln.code, ln.units, tuple(sorted(ln.modifiers))) for ln in expect.lines}
        got = {(ln.code, ln.units, tuple(ln.modifiers)) for ln in out.lines}
        if want != got:
            def text(s: set) -> str:
                return ", ".join(line_text(c, u, m) for c, u, m in sorted(s)) or "none"
            failures.append(f"lines: expected {text(want)}; got {text(got)}")
            if want - got:
                failures.append(f"  missing: {text(want - got)}")
            if got - want:
                failures.append(f"  unexpected: {text(got - want)}")
    found = {f.id for f in out.findings}
    for fid in expect.findings or []:
        if fid not in found:
            failures.append(f"findings: expected {fid}; got {', '.join(sorted(found)) or 'none'}")
    for fid in expect.no_findings or []:
        if fid in found:
            message = next(f.message for f in out.findings if f.id == fid)
            failures.append(f"no_findings: {fid} must not appear, but did: {message}")
    billed = out.billed or []
    if expect.rejected is not None:
        want_codes = sorted(expect.rejected)
        got_codes = sorted(b.code for b in billed if b.verdict == "reject")
        if want_codes != got_codes:
            failures.append(f"rejected: expected [{', '.join(want_codes)}]; got [{', '.join(got_codes)}]")
    for i, (want_line, got_line) in enumerate(zip(expect.billed or [], billed), start=1):
        if want_line.verdict != got_line.verdict:
            failures.append(f"billed line {i} ({got_line.code}): expected {want_line.verdict}; got {got_line.verdict}")
        got_reasons = sorted({r.id for r in got_line.reasons})
        if want_line.reasons is not None and sorted(set(want_line.reasons)) != got_reasons:
            failures.append(f"billed line {i} ({got_line.code}) reasons: expected "
                            f"[{', '.join(sorted(set(want_line.reasons)))}]; got [{', '.join(got_reasons)}]")
    fired = set(out.fired or [])
    for rid in expect.fired or []:
        if rid not in fired:
            failures.append(f"fired: rule {rid} was expected to fire and did not")
    for rid in expect.not_fired or []:
        if rid in fired:
            failures.append(f"not_fired: rule {rid} fired")
    return failures


# ---------------------------------------------------------------------- between runs
def summary(run: Run) -> dict[str, dict]:
    """What each case came out as: enough to say later what changed."""
    out = {}
    for r in run.results:
        o = r.outcome
        out[r.case.name] = {
            "lines": sorted(ln.text() for ln in o.lines),
            "findings": sorted({f.id for f in o.findings}),
            "rejected": sorted(b.code for b in o.billed or [] if b.verdict == "reject"),
            "fired": sorted(o.fired or []),
        }
    return out


def changes(before: dict[str, dict], after: dict[str, dict]) -> list[tuple[str, str]]:
    """Each case whose outcome differs from the previous run, and how (one line of text)."""
    lines = []
    for name in sorted(set(before) & set(after)):
        old, new, parts = before[name], after[name], []
        if old.get("lines") != new["lines"]:
            parts.append(f"lines {', '.join(old.get('lines', [])) or 'none'} -> {', '.join(new['lines']) or 'none'}")
        for key, label in (("findings", "findings"), ("rejected", "rejected"), ("fired", "rules")):
            added = sorted(set(new[key]) - set(old.get(key, [])))
            gone = sorted(set(old.get(key, [])) - set(new[key]))
            if added or gone:
                parts.append(f"{label} " + " ".join([f"+{x}" for x in added] + [f"-{x}" for x in gone]))
        if parts:
            lines.append((name, "; ".join(parts)))
    return lines


def remember(path: Path, run: Run) -> tuple[list[tuple[str, str]], str]:
    """The changes since the run recorded in `path`, and this run recorded there (with a
    warning where it cannot be written)."""
    now = summary(run)
    try:
        before = json.loads(path.read_text())
    except (OSError, ValueError):
        before = {}
    changed = changes(before if isinstance(before, dict) else {}, now)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({**before, **now}, indent=0, sort_keys=True))
    except OSError as exc:
        return changed, f"could not record this run in {path}: {exc.strerror or exc}"
    return changed, ""


def coverage(kb: KB, run: Run) -> list[tuple[str, int]]:
    """Every rule id with the number of cases that fire it."""
    counts = Counter(dict.fromkeys(kb.rules, 0))
    for result in run.results:
        counts.update(result.outcome.fired or [])
    return sorted(counts.items())
