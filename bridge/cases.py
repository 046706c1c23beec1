"""Run the case library: one solve for all cases, then compare each outcome with its
`expect` block and say, for a failure, what was expected, what came out and why."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .api import solve_batch
from .engine import KB
from .explain import format_tree
from .load import Case, InputProblem, load_paths


@dataclass
class Result:
    case: Case
    outcome: dict
    failures: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures

    def report(self, *, explain: bool = True) -> str:
        """What went wrong, as a person reads it: file, case, expected versus actual, why."""
        c = self.case
        where = f"{c.file}:{c.line}" if c.line else c.file
        lines = [f"{where}: case '{c.name}' failed"]
        lines += [f"  {f}" for f in self.failures]
        if explain:
            lines.append("  what happened:")
            out = self.outcome
            got = ", ".join(_line_text(ln) for ln in out["lines"]) or "no lines"
            lines.append(f"    lines: {got}")
            for f in out["findings"]:
                lines.append(f"    finding {f['id']}: {f['message']}  [{f['rule']}]")
            for i, b in enumerate(out.get("billed", []), start=1):
                lines.append(f"    billed {i}. {b['code']}: {b['verdict']}")
                lines += [f"      {r}" for r in b["reasons"]]
            seen: set = set()
            for item in out.get("explanation", []):
                lines.append(f"    why {item['conclusion']}:")
                lines += format_tree(item["tree"], 3, seen)
        return "\n".join(lines)


@dataclass
class Run:
    results: list[Result]
    problems: list[InputProblem]
    fired: set[str]

    @property
    def failed(self) -> list[Result]:
        return [r for r in self.results if not r.passed]


def _line_text(line: dict) -> str:
    mods = ("-" + "-".join(line["modifiers"])) if line["modifiers"] else ""
    return f"{line['code']}{mods} x{line['units']}"


def run_cases(kb: KB, paths: list[str | Path], keyword: str | None = None) -> Run:
    """Load every case under `paths`, solve them in one program, and compare."""
    loaded = load_paths(paths, kb.profiles())
    problems = list(loaded.problems)
    for enc in loaded.encounters:
        problems.append(InputProblem(enc.file, enc.line, None, "", "is an encounter, not a case (it has nothing to check)"))
    cases, seen = [], {}
    for case in loaded.cases:
        if case.name in seen:
            problems.append(InputProblem(case.file, case.line, case.name, "name",
                                         f"case name already used at {seen[case.name]}"))
            continue
        seen[case.name] = f"{case.file}:{case.line}"
        problem = _check_expect(kb, case)
        if problem:
            problems.append(problem)
            continue
        if keyword is None or keyword in case.name:
            cases.append(case)
    if not cases:
        return Run([], problems, set())
    answer = solve_batch(kb, [c.encounter for c in cases], mode="full")
    results = []
    for case in cases:
        outcome = answer.outcome(case.encounter)
        result = Result(case, outcome, compare(case, outcome))
        if not result.passed:
            result.outcome = answer.outcome(case.encounter, explain=True)
        results.append(result)
    return Run(results, problems, answer.fired_anywhere())


def _check_expect(kb: KB, case: Case) -> InputProblem | None:
    expect = case.expect
    # lines: [] and rejected: [] are checks (nothing reported, nothing rejected); empty id lists are not.
    checks = "lines" in expect or "rejected" in expect or any(
        expect.get(k) for k in ("findings", "no_findings", "fired", "not_fired"))
    if not checks:
        return InputProblem(case.file, case.line, case.name, "expect",
                            "the case has nothing to check (give lines, findings, rejected, fired ...)")
    severities = kb.severities()
    for key in ("findings", "no_findings"):
        for fid in expect.get(key, []):
            if fid not in severities:
                return InputProblem(case.file, case.line, case.name, f"expect.{key}",
                                    f"unknown finding id '{fid}' (known: {', '.join(sorted(severities))})")
    for key in ("fired", "not_fired"):
        for rid in expect.get(key, []):
            if rid not in kb.rules:
                return InputProblem(case.file, case.line, case.name, f"expect.{key}", f"unknown rule id '{rid}'")
    if "rejected" in expect and case.encounter.billed is None:
        return InputProblem(case.file, case.line, case.name, "expect.rejected",
                            "the encounter has no billed lines to audit")
    return None


def compare(case: Case, out: dict) -> list[str]:
    expect, failures = case.expect, []
    if "lines" in expect:
        want = {(ln.code, ln.units, tuple(sorted(ln.modifiers))) for ln in expect["lines"]}
        got = {(ln["code"], ln["units"], tuple(ln["modifiers"])) for ln in out["lines"]}
        if want != got:
            text = lambda s: ", ".join(_line_text({"code": c, "units": u, "modifiers": list(m)}) for c, u, m in sorted(s)) or "none"
            failures.append(f"lines: expected {text(want)}; got {text(got)}")
            if want - got:
                failures.append(f"  missing: {text(want - got)}")
            if got - want:
                failures.append(f"  unexpected: {text(got - want)}")
    found = {f["id"] for f in out["findings"]}
    for fid in expect.get("findings", []):
        if fid not in found:
            failures.append(f"findings: expected {fid}; got {', '.join(sorted(found)) or 'none'}")
    for fid in expect.get("no_findings", []):
        if fid in found:
            msg = next(f["message"] for f in out["findings"] if f["id"] == fid)
            failures.append(f"no_findings: {fid} must not appear, but did: {msg}")
    if "rejected" in expect:
        want = sorted(expect["rejected"])
        got = sorted(b["code"] for b in out.get("billed", []) if b["verdict"] == "reject")
        if want != got:
            failures.append(f"rejected: expected [{', '.join(want)}]; got [{', '.join(got)}]")
    fired = set(out.get("fired", []))
    for rid in expect.get("fired", []):
        if rid not in fired:
            failures.append(f"fired: rule {rid} was expected to fire and did not")
    for rid in expect.get("not_fired", []):
        if rid in fired:
            failures.append(f"not_fired: rule {rid} fired")
    return failures


def summary(run: Run) -> dict[str, dict]:
    """What each case came out as: enough to say later what changed."""
    out = {}
    for r in run.results:
        o = r.outcome
        out[r.case.name] = {
            "lines": sorted(_line_text(ln) for ln in o["lines"]),
            "findings": sorted({f["id"] for f in o["findings"]}),
            "rejected": sorted(b["code"] for b in o.get("billed", []) if b["verdict"] == "reject"),
            "fired": sorted(o.get("fired", [])),
        }
    return out


def changes(before: dict[str, dict], after: dict[str, dict]) -> list[str]:
    """One line per case whose outcome differs from the previous run, saying how."""
    lines = []
    for name in sorted(set(before) & set(after)):
        old, new, parts = before[name], after[name], []
        if old["lines"] != new["lines"]:
            parts.append(f"lines {', '.join(old['lines']) or 'none'} -> {', '.join(new['lines']) or 'none'}")
        for key, label in (("findings", "findings"), ("rejected", "rejected"), ("fired", "rules")):
            added = sorted(set(new[key]) - set(old[key]))
            gone = sorted(set(old[key]) - set(new[key]))
            if added or gone:
                parts.append(f"{label} " + " ".join([f"+{x}" for x in added] + [f"-{x}" for x in gone]))
        if parts:
            lines.append(f"{name}: " + "; ".join(parts))
    return lines
