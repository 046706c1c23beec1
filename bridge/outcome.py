"""What a batch's answer set says about each encounter: typed outcomes.

`Answer` splits the shown atoms of one solve by encounter key and turns rule firings back
into the conclusions they derived. `Outcome` is one encounter's lines, findings and audit
verdicts, each finding and reason with the message its rule's label gives, as the JSON of
CASE-FORMAT.md. A billed line with no verdict is a KB error, never a silent "reject".
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .engine import KBError
from .kb import FIRED, KB
from .model import Encounter
from .rules import PLACEHOLDER as _PLACEHOLDER
from .rules import Rule
from .terms import Atom, Var, show

SEVERITY_ORDER = {"error": 0, "warning": 1, "info": 2}


# ---------------------------------------------------------------------- the outcome types
def line_text(code: str, units: int, modifiers: Iterable[str]) -> str:
    """A line as people write it: 20560-59 x1."""
    return code + "".join("-" + m for m in modifiers) + f" x{units}"


@dataclass(slots=True)
class Line:
    code: str
    units: int
    modifiers: list[str]

    def text(self) -> str:
        return line_text(self.code, self.units, self.modifiers)

    def json(self) -> dict:
        return {"code": self.code, "units": self.units, "modifiers": self.modifiers}


@dataclass(slots=True)
class Finding:
    id: str
    severity: str
    subject: str
    message: str
    rule: str
    source: str

    def json(self) -> dict:
        return {"id": self.id, "severity": self.severity, "subject": self.subject, "message": self.message,
                "rule": self.rule, "source": self.source}


@dataclass(slots=True)
class Reason:
    id: str
    message: str
    rule: str
    source: str

    def json(self) -> dict:
        return {"id": self.id, "rule": self.rule, "message": self.message, "source": self.source}


@dataclass(slots=True)
class Billed:
    code: str
    units: int
    modifiers: list[str]
    verdict: str
    reasons: list[Reason]

    def text(self) -> str:
        return line_text(self.code, self.units, self.modifiers)

    def json(self) -> dict:
        return {"code": self.code, "units": self.units, "modifiers": self.modifiers, "verdict": self.verdict,
                "reasons": [f"{r.id}: {r.message}" for r in self.reasons],
                "reason_details": [r.json() for r in self.reasons]}


@dataclass(slots=True)
class Outcome:
    id: str
    date: str
    payer: str
    lines: list[Line]
    findings: list[Finding]
    billed: list[Billed] | None
    fired: list[str] | None = None
    explanation: dict | None = None

    def json(self) -> dict:
        out: dict[str, Any] = {"id": self.id, "date": self.date, "payer": self.payer,
                               "lines": [ln.json() for ln in self.lines],
                               "findings": [f.json() for f in self.findings]}
        if self.billed is not None:
            out["billed"] = [b.json() for b in self.billed]
        if self.fired is not None:
            out["fired"] = self.fired
        if self.explanation is not None:
            out["explanation"] = self.explanation
        return out


# ---------------------------------------------------------------------- decoding
@dataclass(slots=True)
class Firing:
    rule: Rule
    values: tuple  # the rule's variable values, in rule.variables order

    def head(self) -> Atom:
        return self.rule.head_atom(self.values)


@dataclass
class Answer:
    """One batch's answer set, split by encounter key (1, 2, ... in batch order)."""

    kb: KB
    mode: str
    atoms: dict[int, list[Atom]] = field(default_factory=lambda: defaultdict(list))
    firings: dict[int, list[Firing]] = field(default_factory=lambda: defaultdict(list))
    # the ids of the batch's encounters, by key: a later session's finding names the first
    names: list[str | None] = field(default_factory=list)
    _table_heads: dict[Atom, list[Firing]] | None = field(default=None, repr=False, compare=False)

    @classmethod
    def of(cls, kb: KB, shown: Iterable[Atom], mode: str) -> Answer:
        answer = cls(kb, mode)
        rules = kb.by_number
        atoms, firings = answer.atoms, answer.firings
        for atom in shown:
            if atom[0] == FIRED:
                rule = rules[atom[2]]
                # (FIRED, E, number, values...): E is 0 for a rule about tables alone
                values = atom[3:] if rule.encounter is None else (atom[1], *atom[3:])
                firings[atom[1]].append(Firing(rule, values))
            else:
                atoms[atom[1]].append(atom)
        return answer

    def table_firings(self) -> dict[Atom, list[Firing]]:
        """The firings of rules about the tables alone (key 0), by head. Every encounter's
        explanation may rest on them: built once per batch, not once per encounter."""
        if self._table_heads is None:
            self._table_heads = defaultdict(list)
            for firing in self.firings.get(0, ()):
                self._table_heads[firing.head()].append(firing)
        return self._table_heads

    def fired(self, key: int) -> set[str]:
        return {f.rule.id for f in self.firings.get(key, ())}

    def fired_anywhere(self) -> set[str]:
        return {f.rule.id for entries in self.firings.values() for f in entries}

    def outcome(self, key: int, enc: Encounter) -> Outcome:
        return OutcomeReader(self, key, enc).read()


_PUBLIC_FROM_FIRINGS = {("line", 3), ("line_modifier", 3), ("verdict", 3)}
FINDING_HEADS = ("finding", "not_covered")


def as_finding(atom: Atom) -> Atom:
    """A finding atom: finding(E, Id, Subject) as it is, or not_covered(E, C, Id) as the
    finding Id about C (kb/rules/coverage.lp)."""
    return ("finding", atom[1], atom[3], atom[2]) if atom[0] == "not_covered" else atom


class OutcomeReader:
    """Reads one encounter's outcome from the answer: conclusions, and messages from the
    labels of the rules that derived findings and reasons."""

    def __init__(self, answer: Answer, key: int, enc: Encounter):
        self.answer, self.kb, self.key, self.enc = answer, answer.kb, key, enc

    def read(self) -> Outcome:
        lines: dict[str, int] = {}
        mods: dict[str, list[str]] = defaultdict(list)
        verdicts: dict[int, str] = {}
        findings: dict[tuple, Finding] = {}
        reasons: dict[int, dict[tuple, Reason]] = defaultdict(dict)
        public: list[Atom] = list(self.answer.atoms.get(self.key, ()))
        for firing in self.answer.firings.get(self.key, ()):
            rule = firing.rule
            name = rule.head.name
            if name in FINDING_HEADS:
                # One finding per id and subject; where several firings say it, the one
                # whose message sorts first, whatever the answer set's order.
                head = as_finding(firing.head())
                key = (head[2], show(head[3], "raw"))
                found = self.finding(head, rule, firing.values)
                kept = findings.get(key)
                if kept is None or (found.message, found.rule) < (kept.message, kept.rule):
                    findings[key] = found
            elif name == "reason":
                head = firing.head()
                message = render_label(rule, firing.values, self.answer.names)
                reason = Reason(head[3].name, message, rule.id, rule.source)
                reasons[head[2]].setdefault((reason.id, message), reason)
            elif rule.signature in _PUBLIC_FROM_FIRINGS:
                public.append(firing.head())
        for atom in public:
            name = atom[0]
            if name == "line":
                lines[atom[2]] = atom[3]
            elif name == "line_modifier":
                mods[atom[2]].append(atom[3])
            elif name == "verdict":
                verdicts[atom[2]] = atom[3].name
            elif name in FINDING_HEADS:  # plain mode: no firings to take messages from
                atom = as_finding(atom)
                findings.setdefault((atom[2], show(atom[3], "raw")), self.finding(atom, None, ()))
            elif name == "reject_reason":
                reasons[atom[2]].setdefault((atom[3].name, atom[3].name), Reason(atom[3].name, atom[3].name, "", ""))
        return Outcome(
            id=self.enc.id or "",
            date=self.enc.date.isoformat(),
            payer=self.enc.payer,
            lines=[Line(code, lines[code], sorted(set(mods.get(code, [])))) for code in sorted(lines)],
            findings=sorted(findings.values(), key=lambda f: (SEVERITY_ORDER.get(f.severity, 9), f.id, f.subject,
                                                               f.message)),
            billed=self.billed(verdicts, reasons),
            fired=sorted(self.answer.fired(self.key)) if self.answer.mode == "full" else None,
        )

    def billed(self, verdicts: dict[int, str], reasons: dict[int, dict[tuple, Reason]]) -> list[Billed] | None:
        if self.enc.billed is None:
            return None
        out = []
        for b, line in enumerate(self.enc.billed, start=1):
            verdict = verdicts.get(b)
            if verdict is None:
                raise KBError([f"kb/rules/audit.lp: the KB derived no verdict for billed line {b} ({line.code}) of "
                               f"encounter {self.enc.id!r}; every billed line needs one"])
            out.append(Billed(line.code, line.units, sorted(line.modifiers), verdict,
                              sorted(reasons.get(b, {}).values(), key=lambda r: (r.id, r.message))))
        return out

    def finding(self, head: Atom, rule: Rule | None, values: tuple) -> Finding:
        fid = head[2].name
        subject = head[3]
        message = render_label(rule, values, self.answer.names) if rule else fid
        if fid == "muscle_unmatched" and isinstance(subject, tuple) and len(subject) == 2 \
                and isinstance(subject[1], str):
            near = self.kb.suggest(subject[1])  # the piece of text nothing read
            if near:
                message += ". Did you mean: " + ", ".join(near) + "?"
        return Finding(fid, self.kb.severities().get(fid, "warning"), subject_text(rule, head, self.answer.names),
                       message, rule.id if rule else "", rule.source if rule else "")


_TEMPLATES: dict[tuple[str, str], list[tuple[str, int, str]]] = {}


def _template(rule: Rule) -> list[tuple[str, int, str]]:
    """The rule's label cut at its placeholders: (text before, index of the variable, format)."""
    parts = _TEMPLATES.get((rule.id, rule.label))
    if parts is None:
        parts, pos = [], 0
        for match in _PLACEHOLDER.finditer(rule.label):
            index = rule.variables.index(match.group(1)) if match.group(1) in rule.variables else -1
            parts.append((rule.label[pos:match.start()], index, match.group(2) or ""))
            pos = match.end()
        parts.append((rule.label[pos:], -1, ""))
        _TEMPLATES[(rule.id, rule.label)] = parts
    return parts


def session_name(key: object, names: Sequence[str | None]) -> object:
    """The id of the batch's encounter with this key ({F:session} in a label): keys mean
    nothing outside the batch. The key itself where the id is not known."""
    if isinstance(key, int) and 0 < key <= len(names) and names[key - 1] is not None:
        return names[key - 1]
    return key


def render_label(rule: Rule, values: tuple, names: Sequence[str | None] = ()) -> str:
    """The rule's label with each {Var} replaced by the rule's value for it."""
    out = []
    for text, index, fmt in _template(rule):
        out.append(text)
        if index >= 0:
            value = values[index]
            if fmt == "session":
                named = session_name(value, names)
                out.append(json.dumps(named) if named is not value else show(value))
            else:
                out.append(value if type(value) is str else show(value, fmt))
    return "".join(out)


def subject_text(rule: Rule | None, head: Atom, names: Sequence[str | None]) -> str:
    """A finding's subject as the outcome shows it: a session ({F:session} in the label) by
    its id, anything else as written."""
    arg = rule.head.args[2] if rule is not None and rule.head.name == "finding" and len(rule.head.args) > 2 else None
    if isinstance(arg, Var) and any(rule.variables[i] == arg.name and fmt == "session"  # type: ignore[union-attr]
                                    for _, i, fmt in _template(rule) if i >= 0):  # type: ignore[arg-type]
        return str(session_name(head[3], names))
    return show(head[3], "raw")
