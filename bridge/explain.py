"""Decode one batch's answer set into an outcome per encounter, and explain each line,
finding and verdict as a tree of the rules that derived it."""

from __future__ import annotations

from collections import defaultdict
from typing import Iterable

import re

from clingo.symbol import Function, Number, String, Symbol, SymbolType

from .engine import FIRED, KB, WILD, BodyItem, Pattern, Rule, instantiate, render
from .facts import INPUTS, encounter_facts
from .load import Encounter

SEVERITY_ORDER = {"error": 0, "warning": 1, "info": 2}
MAX_DEPTH = 40
MAX_MATCHES = 50


class Const(str):
    """A clingo constant (a function without arguments), shown by its name."""


class Text(str):
    """Any other compound term, shown as clingo writes it (tuples as "(a, b)")."""


class Decoder:
    """Python values of clingo symbols, each distinct symbol decoded once per batch.

    clingo's accessors are calls into C and dominate the cost of a large batch. clingo
    interns symbols, so the raw symbol value (Symbol._rep) identifies equal symbols with
    no call; where a clingo version lacks it, the Symbol itself is the key."""

    def __init__(self):
        self.cache: dict = {}

    def __call__(self, sym: Symbol):
        key = getattr(sym, "_rep", sym)
        try:
            return self.cache[key]
        except KeyError:
            value = self.cache[key] = _decode(sym)
            return value


def _decode(sym: Symbol):
    kind = sym.type
    if kind == SymbolType.String:
        return sym.string
    if kind == SymbolType.Number:
        return sym.number
    if kind == SymbolType.Function:
        args = sym.arguments
        if not args:
            return Const(sym.name)
        if sym.name == "":
            return Text("(" + ", ".join(show_value(_decode(a)) for a in args) + ")")
    return Text(str(sym))


def show_value(value, fmt: str = "") -> str:
    """A value as a person reads it: strings bare, constants by name, dates as YYYY-MM-DD."""
    if isinstance(value, int) and fmt == "date" and 10000101 <= value <= 99991231:
        return f"{value // 10000:04d}-{value // 100 % 100:02d}-{value % 100:02d}"
    return str(value)


def show(sym, fmt: str = "") -> str:
    if isinstance(sym, Pattern) or not isinstance(sym, Symbol):
        return str(sym)
    return show_value(_decode(sym), fmt)


_PLACEHOLDER = re.compile(r"\{(\w+)(?::(\w+))?\}")
_LABELS: dict[tuple[str, str], list[tuple[str, int, str]]] = {}


def render_label(rule: Rule, values: Symbol, decode=_decode) -> str:
    """The rule's label with each {Var} replaced by the rule's value for it (`values` is
    the tuple of the rule's variable values, as the firing atom carries it)."""
    parts = _LABELS.get((rule.id, rule.label))
    if parts is None:
        parts, pos = [], 0
        for match in _PLACEHOLDER.finditer(rule.label):
            index = rule.variables.index(match.group(1)) if match.group(1) in rule.variables else -1
            parts.append((rule.label[pos:match.start()], index, match.group(2) or ""))
            pos = match.end()
        parts.append((rule.label[pos:], -2, ""))
        _LABELS[(rule.id, rule.label)] = parts
    args = values.arguments if len(parts) > 1 else ()
    out = []
    for text, index, fmt in parts:
        out.append(text)
        if index >= 0:
            out.append(show_value(decode(args[index]), fmt))
    return "".join(out)


class Answer:
    """The answer set of one batch, split by encounter key.

    Each symbol is decoded once: clingo's accessors are calls into C, the bulk of the
    cost of a large batch."""

    def __init__(self, kb: KB, symbols: Iterable[Symbol], mode: str = "full"):
        self.kb, self.mode = kb, mode
        self.decode = decode = Decoder()
        self.atoms: dict[str, list[tuple[str, list[Symbol]]]] = defaultdict(list)
        self.firings: dict[str, list[tuple]] = defaultdict(list)
        for sym in symbols:
            args = sym.arguments
            name = sym.name
            if name == FIRED:
                self.firings[decode(args[0])].append((decode(args[1]), args[2], args[3]))
            else:
                self.atoms[decode(args[0])].append((name, args))
        self.severity = kb.severities()
        self._global_index: dict[Symbol, list[tuple]] | None = None

    def derivations(self, key: str) -> dict[Symbol, list[tuple]]:
        index: dict[Symbol, list[tuple]] = defaultdict(list)
        for rid, head, values in self.firings.get(key, ()):
            index[head].append((rid, values))
        return index

    def global_derivations(self) -> dict[Symbol, list[tuple]]:
        """Firings of rules about the reference tables alone (no encounter id)."""
        if self._global_index is None:
            self._global_index = self.derivations("")
        return self._global_index

    def fired(self, key: str) -> set[str]:
        return {rid for rid, _, _ in self.firings.get(key, ())}

    def fired_anywhere(self) -> set[str]:
        return {rid for entries in self.firings.values() for rid, _, _ in entries}

    def outcome(self, enc: Encounter, *, explain: bool = False) -> dict:
        return _Outcome(self, enc).build(explain)


class _Outcome:
    def __init__(self, answer: Answer, enc: Encounter):
        self.answer, self.kb, self.enc = answer, answer.kb, enc
        self.key = enc.key or enc.id
        self._index: dict | None = None
        self._facts: list[Symbol] | None = None

    @property
    def index(self) -> dict[Symbol, list[tuple]]:
        if self._index is None:
            self._index = self.answer.derivations(self.key)
        return self._index

    # -- the outcome record
    def build(self, explain: bool) -> dict:
        lines, mods, verdicts = {}, defaultdict(list), {}
        findings: dict[tuple, dict] = {}
        reasons: dict[int, dict[tuple, dict]] = defaultdict(dict)
        d = self.answer.decode
        rules = self.kb.rules
        # Firings first: they carry the messages; bare atoms (plain mode) only fill gaps.
        for rid, head, values in self.answer.firings.get(self.key, ()):
            rule = rules[rid]
            kind = rule.head.name  # from the rule, not the symbol: no call into clingo
            if kind == "finding":
                _, fid, subject = head.arguments
                k = (d(fid), d(subject))
                if k not in findings:
                    findings[k] = self.finding(k[0], subject, rule, values)
            elif kind == "reason":
                _, b, reason, other = head.arguments
                b, k = d(b), (d(reason), d(other))
                if k not in reasons[b]:
                    reasons[b][k] = {"id": k[0], "rule": rule.id, "message": render_label(rule, values, d),
                                     "source": rule.source}
        for name, args in self.answer.atoms.get(self.key, ()):
            if name == "line":
                lines[d(args[1])] = d(args[2])
            elif name == "line_modifier":
                mods[d(args[1])].append(d(args[2]))
            elif name == "verdict":
                verdicts[d(args[1])] = d(args[2])
            elif name == "finding":  # plain mode: no firing atoms to take messages from
                k = (d(args[1]), d(args[2]))
                findings.setdefault(k, self.finding(k[0], args[2], None, None))
            elif name == "reject_reason":
                k = (d(args[2]), d(args[3]))
                reasons[d(args[1])].setdefault(k, {"id": k[0], "message": k[0]})
        out: dict = {
            "id": self.enc.id,
            "date": self.enc.date.isoformat(),
            "payer": self.enc.payer,
            "lines": [
                {"code": code, "units": lines[code], "modifiers": sorted(mods.get(code, []))}
                for code in sorted(lines)
            ],
            "findings": sorted(
                findings.values(),
                key=lambda f: (SEVERITY_ORDER.get(f["severity"], 9), f["id"], f["subject"]),
            ),
        }
        if self.enc.billed is not None:
            out["billed"] = []
            for b, line in enumerate(self.enc.billed, start=1):
                details = sorted(reasons.get(b, {}).values(), key=lambda r: r["id"])
                out["billed"].append({
                    "code": line.code, "units": line.units, "modifiers": sorted(line.modifiers),
                    "verdict": verdicts.get(b, "reject"),
                    "reasons": [f"{r['id']}: {r['message']}" for r in details],
                    "reason_details": details,
                })
        if self.answer.mode == "full":
            out["fired"] = sorted(self.answer.fired(self.key))
        if explain:
            out["explanation"] = self.explanation(lines, mods, verdicts)
        return out

    def finding(self, fid: str, subject: Symbol, rule: Rule | None, values) -> dict:
        d = self.answer.decode
        message = render_label(rule, values, d) if rule else fid
        subject_value = d(subject)
        if fid == "muscle_unmatched" and isinstance(subject_value, int):
            near = self.kb.suggest(self.enc.procedures[subject_value - 1].muscle)
            if near:
                message += ". Did you mean: " + ", ".join(near) + "?"
        return {
            "id": fid,
            "severity": self.answer.severity.get(fid, "warning"),
            "subject": show_value(subject_value),
            "message": message,
            "rule": rule.id if rule else "",
            "source": rule.source if rule else "",
        }

    # -- explanation trees
    def explanation(self, lines, mods, verdicts) -> list[dict]:
        e = String(self.key)
        out = []
        for code in sorted(lines):
            atom = Function("line", [e, String(code), Number(lines[code])])
            out.append({"conclusion": f"line {code} x{lines[code]}", "tree": self.tree(atom)})
            for m in sorted(mods.get(code, [])):
                atom = Function("line_modifier", [e, String(code), String(m)])
                out.append({"conclusion": f"modifier {m} on {code}", "tree": self.tree(atom)})
        wanted = {"finding": [], "verdict": [], "reject_reason": []}
        for name, args in self.answer.atoms.get(self.key, ()):
            if name in wanted:
                wanted[name].append(Function(name, args))
        for atom in sorted(wanted["finding"], key=str):
            out.append({"conclusion": f"finding {atom.arguments[1].name} ({show(atom.arguments[2])})",
                        "tree": self.tree(atom)})
        for atom in sorted(wanted["verdict"], key=str):
            b = atom.arguments[1].number
            out.append({"conclusion": f"billed line {b}: {verdicts[b]}", "tree": self.tree(atom)})
        for atom in sorted(wanted["reject_reason"], key=str):
            out.append({"conclusion": f"billed line {atom.arguments[1].number}: reason {atom.arguments[2].name}",
                        "tree": self.tree(atom)})
        return out

    def facts(self) -> list[Symbol]:
        if self._facts is None:
            self._facts = encounter_facts(self.enc, self.kb.side_words())
        return self._facts

    def known(self) -> Iterable[Symbol]:
        yield from self.index
        yield from self.answer.global_derivations()
        yield from self.facts()

    def tree(self, atom, depth: int = 0) -> list[dict]:
        """The derivations of `atom`: one node per rule firing that derived it, or a fact leaf."""
        if isinstance(atom, Pattern):
            matches = [a for a in self.known() if atom.matches(a)]
            if not matches and atom.name in self.kb.fact_names:
                matches = [a for a in self.kb.reference_atoms(atom.name) if atom.matches(a)]
            if not matches:
                return [self.leaf(atom)]
            nodes = []
            for a in sorted(set(matches), key=str)[:MAX_MATCHES]:
                nodes.extend(self.tree(a, depth))
            return nodes
        firings = self.index.get(atom) or self.answer.global_derivations().get(atom)
        if not firings:
            return [self.leaf(atom)]
        if depth >= MAX_DEPTH:
            return [{"atom": str(atom), "truncated": True}]
        return [self.node(atom, self.kb.rules[rid], values, depth) for rid, values in firings]

    def leaf(self, atom) -> dict:
        name = atom.name
        if name in INPUTS:
            origin = "encounter"
        else:
            origin = self.kb.fact_names.get(name, "kb")
        node = {"atom": str(atom), "fact": origin}
        text = self.reading(atom)
        if text:
            node["text"] = text
        return node

    def reading(self, atom) -> str | None:
        """The atom in plain words, from the %*! documentation of its predicate."""
        args = list(atom.arguments)
        doc = self.kb.docs.get((atom.name, len(args)))
        if doc is None:
            return None
        names, reading = doc
        values = dict(zip(names, args))

        def sub(match):
            value = values.get(match.group(1))
            if value is None or value is WILD:
                return "any"
            return show(value, match.group(2) or "")

        return _PLACEHOLDER.sub(sub, reading)

    def node(self, atom: Symbol, rule: Rule, values: Symbol, depth: int) -> dict:
        bindings = rule.bindings(values.arguments)
        because: list[dict] = []
        held: list[str] = []
        for item in rule.body:
            self.body_item(item, bindings, because, held, depth)
        node = {
            "atom": str(atom),
            "rule": rule.id,
            "label": render_label(rule, values),
            "source": rule.source,
            "at": f"{rule.file}:{rule.line}",
            "because": because,
        }
        if held:
            node["held"] = held
        return node

    def body_item(self, item: BodyItem, bindings, because, held, depth) -> None:
        if item.kind == "atom":
            value = instantiate(item.term, bindings)
            if item.negated:
                text = self.reading(value) if value is not WILD else None
                held.append(f"NOT {text}   [not {value}]" if text else f"not {value}")
            else:
                because.extend(self.tree(value, depth + 1))
        elif item.kind == "aggregate":
            children = []
            for cond in item.conditions:
                children.extend(self.tree(instantiate(cond, bindings), depth + 1))
            because.append({"aggregate": render(item.term, bindings), "because": children})
        else:
            held.append(render(item.term, bindings))


# ---------------------------------------------------------------------- text
def format_tree(nodes: list[dict], indent: int = 0, seen: set | None = None) -> list[str]:
    """Indented text of explanation nodes. A conclusion already explained above (in `seen`)
    is named again but not expanded twice."""
    seen = set() if seen is None else seen
    pad = "  " * indent
    out = []
    for node in nodes:
        if "rule" in node:
            key = (node["atom"], node["rule"], node["label"])
            if key in seen:
                out.append(f"{pad}{node['rule']}: {node['label']}   (explained above)")
                continue
            seen.add(key)
            out.append(f"{pad}{node['rule']}: {node['label']}   [{node['at']}]")
            out.append(f"{pad}  source: {node['source']}")
            out.extend(format_tree(node["because"], indent + 1, seen))
            for h in node.get("held", []):
                out.append(f"{pad}  held: {h}")
        elif "aggregate" in node:
            out.append(f"{pad}counted: {node['aggregate']}")
            out.extend(format_tree(node["because"], indent + 1, seen))
        elif node.get("truncated"):
            out.append(f"{pad}... {node['atom']}")
        elif "text" in node:
            out.append(f"{pad}fact: {node['text']}   [{node['fact']}: {node['atom']}]")
        else:
            out.append(f"{pad}fact: {node['atom']}   ({node['fact']})")
    return out


def format_outcome(out: dict, *, explain: bool = False) -> str:
    lines = [f"{out['id']}  {out['date']}  profile {out['payer']}"]
    if out["lines"]:
        lines.append("  lines:")
        for ln in out["lines"]:
            mods = ("-" + "-".join(ln["modifiers"])) if ln["modifiers"] else ""
            lines.append(f"    {ln['code']}{mods} x{ln['units']}")
    else:
        lines.append("  lines: none")
    if out["findings"]:
        lines.append("  findings:")
        for f in out["findings"]:
            lines.append(f"    {f['severity']:<7} {f['id']}: {f['message']}  [{f['rule']}]")
    if "billed" in out:
        lines.append("  audit:")
        for i, b in enumerate(out["billed"], start=1):
            mods = ("-" + "-".join(b["modifiers"])) if b["modifiers"] else ""
            lines.append(f"    {i}. {b['code']}{mods} x{b['units']}: {b['verdict']}")
            for r in b["reasons"]:
                lines.append(f"         {r}")
    if explain and "explanation" in out:
        lines.append("  explanation:")
        seen: set = set()
        for item in out["explanation"]:
            lines.append(f"    {item['conclusion']}")
            lines.extend(format_tree(item["tree"], 3, seen))
    return "\n".join(lines)
