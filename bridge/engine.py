"""The one module that talks to clingo: load the KB, instrument it for provenance, ground
and solve one program for a whole batch, and hand back the shown atoms.

Rule annotations. A rule in kb/ is preceded by three comment lines:

    %@ rule: calls_for_20553
    %@ label: {N} muscles injected (3 or more) call for 20553
    %@ source: CPT 20553; seed guideline, Coding Guidelines bullet 1
    calls_for(E, "20553") :- injected_count(E, N), N >= 3.

Instrumenting turns that rule into two, so the body is grounded once:

    _tpkb_fired(E, "calls_for_20553", calls_for(E, "20553"), (E, N)) :- <body>.
    calls_for(E, "20553") :- _tpkb_fired(E, "calls_for_20553", calls_for(E, "20553"), (E, N)).

The firing atom carries the rule id, the atom derived and the rule's variable bindings;
bridge.explain turns those into messages and explanation trees.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

import clingo
from clingo import ast
from clingo.symbol import Function, Number, String, Symbol, SymbolType, Tuple_

from .facts import normalise

FIRED = "_tpkb_fired"
PUBLIC = {("line", 3), ("line_modifier", 3), ("finding", 3), ("verdict", 3), ("reject_reason", 4)}
# Conclusions whose message is the label of the rule that derived them. Mode "messages"
# instruments only the rules deriving these: enough for an outcome, cheap for big batches.
# Their firing atoms carry the conclusions too, so that mode does not show these:
MESSAGE_HEADS = {("finding", 3), ("reason", 4)}
MESSAGE_HIDDEN = {("finding", 3), ("reject_reason", 4)}
_ANNOTATION = re.compile(r"^%@\s*(\w+)\s*:\s*(.*?)\s*$")
_PLACEHOLDER = re.compile(r"\{(\w+)(?::(\w+))?\}")
_INCLUDE = re.compile(r'^\s*#include\s+"([^"]+)"\s*\.', re.M)
_FORMATS = {"date"}
_FACT_NAME = re.compile(r"^([a-z]\w*)\(", re.M)
_DOC = re.compile(r"%\*!\s*(\w+)\(([^)]*)\)\s*:(.*?)\*%", re.S)
# clingo reports this for every #show when facts come through the backend (as ours do);
# show signatures are checked by KB._check_usage instead.
_SPURIOUS = "no atoms over signature occur in program"


class KBError(Exception):
    """The KB cannot be loaded or grounded cleanly. Each message names an .lp file and line."""

    def __init__(self, messages: Iterable[str]):
        self.messages = list(dict.fromkeys(messages))
        super().__init__("\n".join(self.messages))

    def __reduce__(self):  # keep the messages when passed back from a worker process
        return (KBError, (self.messages,))


class SolveError(Exception):
    """The program did not have exactly one answer set."""


@dataclass(frozen=True)
class BodyItem:
    """One body literal of an annotated rule, kept for explanations.

    kind is "atom" (a symbolic atom, positive or negated), "compare" (a comparison) or
    "aggregate" (an aggregate: `conditions` are the positive atoms of its elements)."""

    kind: str
    negated: bool
    term: object  # clingo.ast term of the atom, or the whole literal for compare/aggregate
    conditions: tuple = ()


@dataclass(frozen=True)
class Rule:
    id: str
    label: str
    source: str
    file: str  # relative to the KB root, e.g. "rules/codes.lp"
    line: int
    text: str
    variables: tuple[str, ...]
    head: object  # clingo.ast term of the head atom
    body: tuple[BodyItem, ...]

    def bindings(self, values: Iterable[Symbol]) -> dict[str, Symbol]:
        return dict(zip(self.variables, values))


@dataclass
class KB:
    """The loaded knowledge base: its statements, plain and instrumented, and its rules."""

    root: Path
    plain: list = field(default_factory=list)
    instrumented: list = field(default_factory=list)
    messages: list = field(default_factory=list)
    rules: dict[str, Rule] = field(default_factory=dict)
    reference: list[Path] = field(default_factory=list)
    docs: dict[tuple[str, int], tuple[tuple[str, ...], str]] = field(default_factory=dict)
    _reference_cache: dict[str, list] = field(default_factory=dict)
    fact_names: dict[str, str] = field(default_factory=dict)

    # ------------------------------------------------------------------ loading
    @classmethod
    def load(cls, root: Path | str) -> "KB":
        root = Path(root).resolve()
        main = root / "main.lp"
        if not main.is_file():
            raise KBError([f"{main}: the KB root file main.lp is missing"])
        files = []
        errors = []
        for name in _INCLUDE.findall(main.read_text()):
            path = (root / name).resolve()
            if not path.is_file():
                errors.append(f"kb/main.lp: #include \"{name}\": no such file")
            files.append(path)
        if errors:
            raise KBError(errors)
        kb = cls(root=root)
        for path in files:
            kb._load_docs(path, errors)
            if path.parent.name == "reference":
                kb._load_reference(path, errors)
            else:
                kb._load_file(path, errors)
        kb._check_usage(errors)
        if errors:
            raise KBError(errors)
        return kb

    def rel(self, path: str | Path) -> str:
        try:
            return "kb/" + str(Path(path).resolve().relative_to(self.root))
        except ValueError:
            return str(path)

    def _load_docs(self, path: Path, errors: list[str]) -> None:
        """%*! pred(A, B): a reading with {A} and {B}. *% documents pred/2 in plain words."""
        text = path.read_text()
        for match in _DOC.finditer(text):
            name, args, reading = match.group(1), match.group(2), " ".join(match.group(3).split())
            args = tuple(a.strip() for a in args.split(",") if a.strip())
            line = text[: match.start()].count("\n") + 1
            for var, fmt in _PLACEHOLDER.findall(reading):
                if var not in args:
                    errors.append(f"{self.rel(path)}:{line}: %*! {name}: {{{var}}} is not an argument")
            self.docs[(name, len(args))] = (args, reading.rstrip("."))

    def _load_reference(self, path: Path, errors: list[str]) -> None:
        """Reference tables hold facts only; clingo reads them directly at solve time (they
        are large, and facts need no instrumenting)."""
        rel = self.rel(path)
        text = path.read_text()
        for number, line in enumerate(text.splitlines(), start=1):
            if ":-" in line.split("%", 1)[0]:
                errors.append(f"{rel}:{number}: files in kb/reference/ hold facts only; put rules in kb/rules/")
        for name in set(_FACT_NAME.findall(text)):
            self.fact_names.setdefault(name, rel)
        self.reference.append(path)

    def _load_file(self, path: Path, errors: list[str]) -> None:
        rel = self.rel(path)
        notes = _annotations(path.read_text(), rel, errors)
        messages: list[str] = []

        def logger(_code, message):
            messages.append(self._clean(message))

        statements: list = []
        try:
            ast.parse_files([str(path)], statements.append, logger=logger, message_limit=50)
        except RuntimeError:
            errors.extend(messages or [f"{rel}: could not be parsed"])
            return
        errors.extend(messages)
        used = set()
        for stmt in statements:
            if stmt.ast_type != ast.ASTType.Rule:
                self._add(stmt)
                continue
            line = stmt.location.begin.line
            note = notes.get(line - 1)
            if not stmt.body:
                sig = _signature(stmt.head)
                if sig:
                    self.fact_names.setdefault(sig[0], rel)
                if note:
                    errors.append(f"{rel}:{line}: a %@ annotation stands above a fact; annotate rules only")
                self._add(stmt)
                continue
            if note is None:
                errors.append(f"{rel}:{line}: rule has no %@ rule/label/source annotation above it: {stmt}")
                continue
            used.add(line - 1)
            rule = self._make_rule(stmt, note, rel, errors)
            if rule is None:
                continue
            self.rules[rule.id] = rule
            self._add(stmt, rule)
        for end, note in notes.items():
            if end not in used and not any(stmt.location.begin.line == end + 1 for stmt in statements):
                errors.append(f"{rel}:{note['_line']}: %@ annotation is not directly followed by a rule")

    def _add(self, stmt, rule: Rule | None = None) -> None:
        self.plain.append(stmt)
        if rule is None:
            self.instrumented.append(stmt)
            if not (stmt.ast_type == ast.ASTType.ShowSignature and (stmt.name, stmt.arity) in MESSAGE_HIDDEN):
                self.messages.append(stmt)
            return
        instrumented = _instrument(stmt, rule)
        self.instrumented.extend(instrumented)
        if (rule.head.name, len(rule.head.arguments)) in MESSAGE_HEADS:
            self.messages.extend(instrumented)
        else:
            self.messages.append(stmt)

    def _make_rule(self, stmt, note: dict, rel: str, errors: list[str]) -> Rule | None:
        line = stmt.location.begin.line
        missing = [k for k in ("rule", "label", "source") if not note.get(k)]
        if missing:
            errors.append(f"{rel}:{line}: annotation lacks {', '.join(missing)}")
            return None
        rid = note["rule"]
        if rid in self.rules:
            other = self.rules[rid]
            errors.append(f"{rel}:{line}: rule id '{rid}' is already used at {other.file}:{other.line}")
            return None
        if stmt.head.ast_type != ast.ASTType.Literal or stmt.head.atom.ast_type != ast.ASTType.SymbolicAtom:
            errors.append(f"{rel}:{line}: rule '{rid}': the head must be a single atom (the KB is deductive)")
            return None
        variables = _global_variables(stmt)
        head_vars: list[str] = []
        _variables(stmt.head, head_vars)
        if "E" in variables and "E" not in head_vars:
            errors.append(f"{rel}:{line}: rule '{rid}': the head loses the encounter id E "
                          "(facts would leak between encounters)")
        for name, fmt in _PLACEHOLDER.findall(note["label"]):
            if name not in variables:
                errors.append(f"{rel}:{line}: rule '{rid}': label names {{{name}}}, which is not a variable of the rule")
            if fmt and fmt not in _FORMATS:
                errors.append(f"{rel}:{line}: rule '{rid}': unknown label format ':{fmt}' (known: date)")
        return Rule(
            id=rid,
            label=note["label"],
            source=note["source"],
            file=rel,
            line=line,
            text=str(stmt),
            variables=variables,
            head=stmt.head.atom.symbol,
            body=tuple(_body_item(lit) for lit in stmt.body),
        )

    def _check_usage(self, errors: list[str]) -> None:
        """A derived predicate that nothing uses and nothing shows is most likely misspelt."""
        used: set = set()
        heads: set = set()
        shown: list = []
        for stmt in self.plain:
            if stmt.ast_type == ast.ASTType.Rule:
                for lit in stmt.body:
                    _collect_signatures(lit, used)
                heads.add(_signature(stmt.head))
            elif stmt.ast_type == ast.ASTType.ShowSignature:
                shown.append(stmt)
        for stmt in shown:
            if (stmt.name, stmt.arity) not in heads and stmt.name not in self.fact_names:
                errors.append(
                    f"{self.rel(stmt.location.begin.filename)}:{stmt.location.begin.line}: "
                    f"#show {stmt.name}/{stmt.arity}: no rule derives it (misspelt?)"
                )
        for rule in self.rules.values():
            sig = (rule.head.name, len(rule.head.arguments))
            if sig not in used and sig not in PUBLIC:
                errors.append(
                    f"{rule.file}:{rule.line}: rule '{rule.id}' derives {sig[0]}/{sig[1]}, "
                    "which no rule uses and the KB does not show (misspelt?)"
                )

    def reference_atoms(self, name: str) -> list[Symbol]:
        """The facts of predicate `name` in the reference table that defines it."""
        if name not in self._reference_cache:
            atoms: list[Symbol] = []
            path = self.fact_names.get(name)
            if path:
                ctl = clingo.Control(["--warn=none"])
                ctl.load(str(self.root / path.removeprefix("kb/")))
                ctl.ground([("base", [])])
                atoms = [a.symbol for a in ctl.symbolic_atoms if a.symbol.name == name]
            self._reference_cache[name] = atoms
        return self._reference_cache[name]

    def side_words(self) -> frozenset[str]:
        if "_side_words" not in self._reference_cache:
            self._reference_cache["_side_words"] = frozenset(
                a.arguments[0].string for a in self.reference_atoms("side_word"))
        return self._reference_cache["_side_words"]

    def severities(self) -> dict[str, str]:
        """Finding id -> error, warning or info (kb/reference/findings.lp)."""
        if "_severities" not in self._reference_cache:
            self._reference_cache["_severities"] = {
                a.arguments[0].name: a.arguments[1].name for a in self.reference_atoms("finding_severity")}
        return self._reference_cache["_severities"]

    def profiles(self) -> list[str]:
        return sorted(a.arguments[0].string for a in self.reference_atoms("profile"))

    def suggest(self, text: str) -> list[str]:
        """The lexicon names nearest to an unmatched muscle text (cached per text)."""
        key = normalise(text)
        cache = self._reference_cache.setdefault("_suggest", {})
        if key not in cache:
            names = [a.arguments[0].string for name in ("muscle_name", "muscle_part_name", "group_name")
                     for a in self.reference_atoms(name)]
            cache[key] = difflib.get_close_matches(key, names, n=3, cutoff=0.6)
        return cache[key]

    def _clean(self, message: str) -> str:
        text = message.replace(str(self.root) + "/", "kb/")
        return " ".join(part.strip() for part in text.splitlines() if part.strip())

    # ------------------------------------------------------------------ solving
    def solve(self, facts: Iterable[Symbol], *, mode: str = "full") -> list[Symbol]:
        """Ground and solve the KB with `facts`; return the shown atoms of the one answer set.

        mode: "full" (every rule instrumented: explanations, fired rule ids), "messages"
        (only rules that derive findings and reasons: messages for outcomes), "plain"."""
        messages: list[str] = []

        def logger(_code, message):
            if _SPURIOUS not in message:
                messages.append(self._clean(message))

        ctl = clingo.Control(["--models=2"], logger=logger, message_limit=50)
        statements = {"full": self.instrumented, "messages": self.messages, "plain": self.plain}[mode]
        try:
            for path in self.reference:
                ctl.load(str(path))
            with ast.ProgramBuilder(ctl) as builder:
                for stmt in statements:
                    builder.add(stmt)
                if mode != "plain":
                    builder.add(ast.ShowSignature(_LOC, FIRED, 4, True))
            with ctl.backend() as backend:
                for sym in facts:
                    backend.add_rule([backend.add_atom(sym)])
            ctl.ground([("base", [])])
        except RuntimeError as exc:
            raise KBError(messages or [str(exc)]) from None
        if messages:
            raise KBError(messages)
        models: list[list[Symbol]] = []
        ctl.solve(on_model=lambda m: models.append(m.symbols(shown=True)))
        if len(models) != 1:
            raise SolveError(
                "the KB has no answer set for this batch" if not models else
                "the KB has more than one answer set for this batch (it must be deterministic)"
            )
        return models[0]


# ---------------------------------------------------------------------- annotations
def _annotations(text: str, rel: str, errors: list[str]) -> dict[int, dict]:
    """Map the last line of each %@ block to its keys (rule, label, source)."""
    blocks: dict[int, dict] = {}
    current: dict | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        if line.startswith("%@"):
            match = _ANNOTATION.match(line)
            if not match:
                errors.append(f"{rel}:{number}: annotation lines read '%@ key: value' (keys: rule, label, source)")
                continue
            key, value = match.groups()
            if key not in ("rule", "label", "source"):
                errors.append(f"{rel}:{number}: unknown annotation key '{key}' (keys: rule, label, source)")
                continue
            if current is None:
                current = {"_line": number}
            if key in current:
                errors.append(f"{rel}:{number}: annotation key '{key}' given twice")
            current[key] = value
            blocks.pop(number - 1, None)
            blocks[number] = current
        else:
            current = None
    return blocks


# ---------------------------------------------------------------------- AST helpers
_LOC = ast.Location(ast.Position("<tpkb>", 0, 0), ast.Position("<tpkb>", 0, 0))


def _term_signature(term) -> tuple[str, int] | None:
    """name/arity of an atom's term, written as a function or as a plain constant."""
    if term.ast_type == ast.ASTType.Function:
        return (term.name, len(term.arguments))
    if term.ast_type == ast.ASTType.SymbolicTerm and term.symbol.type == SymbolType.Function:
        return (term.symbol.name, len(term.symbol.arguments))
    return None


def _signature(head) -> tuple[str, int] | None:
    if head.ast_type == ast.ASTType.Literal and head.atom.ast_type == ast.ASTType.SymbolicAtom:
        return _term_signature(head.atom.symbol)
    return None


def _children(node) -> Iterator:
    for key in node.child_keys:
        child = getattr(node, key)
        if child is None:
            continue
        for item in child if isinstance(child, (list, ast.ASTSequence)) else [child]:
            if isinstance(item, ast.AST):
                yield item


def _collect_signatures(node, out: set) -> None:
    if node.ast_type == ast.ASTType.SymbolicAtom:
        sig = _term_signature(node.symbol)
        if sig:
            out.add(sig)
        return
    for child in _children(node):
        _collect_signatures(child, out)


def _variables(node, out: list[str]) -> None:
    if node.ast_type == ast.ASTType.Variable:
        if node.name != "_" and node.name not in out:
            out.append(node.name)
        return
    for child in _children(node):
        _variables(child, out)


def _global_variables(rule) -> tuple[str, ...]:
    """Variables bound for the whole rule: head, plain body literals and aggregate guards
    (not the local variables of aggregate elements). E, when present, comes first."""
    names: list[str] = []
    _variables(rule.head, names)
    for lit in rule.body:
        if lit.ast_type != ast.ASTType.Literal:
            continue
        atom = lit.atom
        if atom.ast_type in (ast.ASTType.BodyAggregate, ast.ASTType.Aggregate):
            for guard in (atom.left_guard, atom.right_guard):
                if guard is not None:
                    _variables(guard.term, names)
        else:
            _variables(atom, names)
    if "E" in names:
        names.remove("E")
        names.insert(0, "E")
    return tuple(names)


def _body_item(lit) -> BodyItem:
    if lit.ast_type == ast.ASTType.Literal:
        atom = lit.atom
        if atom.ast_type == ast.ASTType.SymbolicAtom:
            return BodyItem("atom", lit.sign != ast.Sign.NoSign, atom.symbol)
        if atom.ast_type == ast.ASTType.BodyAggregate:
            conditions = tuple(
                c.atom.symbol
                for element in atom.elements
                for c in element.condition
                if c.ast_type == ast.ASTType.Literal
                and c.sign == ast.Sign.NoSign
                and c.atom.ast_type == ast.ASTType.SymbolicAtom
            )
            return BodyItem("aggregate", lit.sign != ast.Sign.NoSign, lit, conditions)
    return BodyItem("compare", False, lit)


def _instrument(stmt, rule: Rule) -> list:
    loc = stmt.location
    # Rules about the reference tables alone have no encounter: their firings go under "".
    encounter = ast.Variable(loc, "E") if "E" in rule.variables else ast.SymbolicTerm(loc, String(""))
    values = ast.Function(loc, "", [ast.Variable(loc, v) for v in rule.variables], 0)
    fired = ast.Function(
        loc, FIRED, [encounter, ast.SymbolicTerm(loc, String(rule.id)), rule.head, values], 0
    )
    fired_lit = ast.Literal(loc, ast.Sign.NoSign, ast.SymbolicAtom(fired))
    return [ast.Rule(loc, fired_lit, list(stmt.body)), ast.Rule(loc, stmt.head, [fired_lit])]


# ---------------------------------------------------------------------- terms at explain time
class _Wild:
    def __repr__(self):
        return "_"


WILD = _Wild()


@dataclass(frozen=True)
class Pattern:
    """An atom with some arguments unknown (anonymous or aggregate-local variables)."""

    name: str
    arguments: tuple

    def matches(self, sym: Symbol) -> bool:
        if sym.type != SymbolType.Function or sym.name != self.name or len(sym.arguments) != len(self.arguments):
            return False
        return all(_match(a, s) for a, s in zip(self.arguments, sym.arguments))

    def __str__(self) -> str:
        args = ",".join(str(a) for a in self.arguments)
        return f"{self.name}({args})" if self.arguments or not self.name else self.name


def _match(pattern, sym: Symbol) -> bool:
    if pattern is WILD:
        return True
    if isinstance(pattern, Pattern):
        return pattern.matches(sym)
    return pattern == sym


_BINOPS: dict[int, Callable[[int, int], int]] = {
    ast.BinaryOperator.Plus: lambda a, b: a + b,
    ast.BinaryOperator.Minus: lambda a, b: a - b,
    ast.BinaryOperator.Multiplication: lambda a, b: a * b,
}


def instantiate(term, bindings: dict[str, Symbol]):
    """Substitute bindings into an AST term: a Symbol where fully bound, else a Pattern."""
    kind = term.ast_type
    if kind == ast.ASTType.SymbolicTerm:
        return term.symbol
    if kind == ast.ASTType.Variable:
        return bindings.get(term.name, WILD)
    if kind == ast.ASTType.Function:
        args = tuple(instantiate(a, bindings) for a in term.arguments)
        if any(a is WILD or isinstance(a, Pattern) for a in args):
            return Pattern(term.name, args)
        if term.name == "":
            return Tuple_(list(args))
        return Function(term.name, list(args))
    if kind == ast.ASTType.UnaryOperation:
        value = instantiate(term.argument, bindings)
        return Number(-value.number) if isinstance(value, Symbol) and value.type == SymbolType.Number else WILD
    if kind == ast.ASTType.BinaryOperation and term.operator_type in _BINOPS:
        left, right = instantiate(term.left, bindings), instantiate(term.right, bindings)
        if all(isinstance(v, Symbol) and v.type == SymbolType.Number for v in (left, right)):
            return Number(_BINOPS[term.operator_type](left.number, right.number))
    return WILD


def render(node, bindings: dict[str, Symbol]) -> str:
    """The text of an AST node with its bound variables replaced by their values."""

    class Sub(ast.Transformer):
        def visit_Variable(self, var):
            if var.name in bindings:
                return ast.SymbolicTerm(var.location, bindings[var.name])
            return var

    return str(Sub()(node))
