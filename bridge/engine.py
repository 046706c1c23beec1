"""The one module that talks to clingo.

- `read_kb` parses kb/main.lp and every file it includes with clingo.ast and hands back
  each statement as plain Python (bridge/terms.py values and patterns): rules with their
  head and body, facts, comments (the %@ annotations and %*! docs are comments clingo
  reads for us), #defined and #show.
- `solve` grounds and solves one program text for a whole batch of facts and hands back
  the shown atoms of the one answer set as Python tuples.
- `fact_text` writes an atom as clingo writes it (for `tpkb facts`).

Facts reach clingo through the Symbol API and the backend: user text becomes a String
symbol and is never pasted into program text.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import clingo
from clingo import ast
from clingo.symbol import Function, Number, String, Symbol, Tuple_

from .terms import Atom, Const, Fn, Op, Other, Pat, Value, Var, parse_atom


class KBError(Exception):
    """The KB cannot be loaded or grounded cleanly. Each message names an .lp file and line."""

    def __init__(self, messages: Iterable[str]):
        self.messages = list(dict.fromkeys(messages))
        super().__init__("\n".join(self.messages))

    def __reduce__(self) -> tuple:  # keep the messages when passed back from a worker process
        return (KBError, (self.messages,))


class SolveError(Exception):
    """The program did not have exactly one answer set."""


# ---------------------------------------------------------------------- reading ASP
@dataclass(frozen=True)
class Literal:
    """One body literal. kind: "atom" (symbolic atom, possibly negated), "compare" (`guards`
    holds its terms), "aggregate" (`elements` are the positive atoms of its conditions;
    `guards` the terms of its guards) or "other"."""

    kind: str
    negated: bool
    atom: Pat | None
    text: str
    elements: tuple[Pat, ...] = ()
    guards: tuple[Any, ...] = ()


@dataclass
class Statement:
    """One statement of a KB file, as plain data. kind is one of rule, fact, comment,
    defined, show, other. `head` is the head atom of a rule or fact with a single atom
    head (None for a constraint, choice or disjunction)."""

    kind: str  # "row": a fact of a payer file that is a row of a reference table (bridge/kb.py)
    file: str  # relative to the KB root
    line: int
    end: int
    text: str
    head: Pat | None = None
    body: tuple[Literal, ...] = ()
    comment: str = ""
    block: bool = False
    signature: tuple[str, int] | None = None
    fact: Atom | None = None  # a ground fact, as a Python atom
    head_text: str = ""
    body_text: tuple[str, ...] = field(default_factory=tuple)


_CWD = threading.Lock()
PAYERS = "payers"  # the folder of payer overlays, read without an #include


def read_kb(main: Path) -> tuple[list[Statement], list[tuple[str, int, int, str]]]:
    """Every statement of main.lp and the files it includes, in order, and clingo's
    messages as (file, line, column, text); column 0 where clingo gives none.

    #include paths are relative to the KB root; clingo looks them up relative to the
    working directory first, so the parse runs inside the root (a stray schema.lp in the
    user's directory is never picked up).

    Every payer overlay, kb/payers/*.lp, is read after main.lp (in name order) without an
    #include: a new payer's policy is a new file, with no edit to the base."""
    root = main.parent
    statements: list[Statement] = []
    messages: list[tuple[str, int, int, str]] = []

    def logger(_code: Any, message: str) -> None:
        messages.append(_located(message))

    def add(node: Any) -> None:
        stmt = _statement(node)
        if stmt is not None:
            statements.append(stmt)

    with _CWD:
        before = os.getcwd()
        os.chdir(root)
        try:
            ast.parse_files([main.name], add, logger=logger, message_limit=100)
            read = {s.file for s in statements}
            overlays = [f"{PAYERS}/{p.name}" for p in sorted((root / PAYERS).glob("*.lp"))
                        if f"{PAYERS}/{p.name}" not in read]
            if overlays and not messages:
                ast.parse_files(overlays, add, logger=logger, message_limit=100)
        except RuntimeError:
            if not messages:
                messages.append((main.name, 0, 0, "could not be parsed"))
        finally:
            os.chdir(before)
    return statements, messages


_WHERE = re.compile(r"(.*?):(\d+)(?::(\d+)(?:-\d+(?::\d+)?)?)?:(.*)")  # file:line[:col[-[line:]col]]: text


def _located(message: str) -> tuple[str, int, int, str]:
    """clingo's 'file:line:col-col: text' split into (file, line, column, text on one line)."""
    first, _, rest = message.partition("\n")
    match = _WHERE.fullmatch(first)
    if match:
        detail = " ".join(p.strip() for p in rest.splitlines() if p.strip())
        body = match.group(4).strip()
        text = (body + (" " if body.endswith(":") else ": ") + detail if detail else body).strip()
        return match.group(1), int(match.group(2)), int(match.group(3) or 0), text
    return "", 0, 0, " ".join(p.strip() for p in message.splitlines() if p.strip())


def _statement(node: Any) -> Statement | None:
    kind = node.ast_type
    loc = node.location
    begin = loc.begin
    text = str(node)
    if kind == ast.ASTType.Rule and text.endswith(".") and ":-" not in text:
        # A fact: read it from its text (tables hold tens of thousands; walking each
        # through the AST would take seconds). A fact with a variable or an operator
        # falls through to the general case.
        try:
            fact = parse_atom(text[:-1], strict=True)
        except (ValueError, IndexError):
            fact = None
        if fact is not None:
            head = Pat(fact[0], tuple(fact[1:]))
            return Statement("fact", begin.filename, begin.line, begin.line, text, head=head, fact=fact,
                             head_text=text[:-1])
    common = {"file": begin.filename, "line": begin.line, "end": loc.end.line, "text": text}
    if kind == ast.ASTType.Program:
        return None
    if kind == ast.ASTType.Comment:
        return Statement("comment", comment=node.value, block=node.comment_type == ast.CommentType.Block, **common)
    if kind == ast.ASTType.Defined:
        return Statement("defined", signature=(node.name, node.arity), **common)
    if kind == ast.ASTType.ShowSignature:
        return Statement("show", signature=(node.name, node.arity), **common)
    if kind != ast.ASTType.Rule:
        return Statement("other", **common)
    head = node.head
    atom = None
    if head.ast_type == ast.ASTType.Literal and head.sign == ast.Sign.NoSign and \
            head.atom.ast_type == ast.ASTType.SymbolicAtom:
        atom = _atom(head.atom.symbol)
    if not node.body:
        fact = None
        if atom is not None and not _has_variables(head):
            try:
                fact = parse_atom(str(head))
            except (ValueError, IndexError):
                fact = None
        return Statement("fact", head=atom, fact=fact, head_text=str(head), **common)
    return Statement("rule", head=atom, body=tuple(_literal(lit) for lit in node.body), head_text=str(head),
                     body_text=tuple(str(lit) for lit in node.body), **common)


def _has_variables(node: Any) -> bool:
    found: list[str] = []

    class Visit(ast.Transformer):
        def visit_Variable(self, var: Any) -> Any:
            found.append(var.name)
            return var

    Visit()(node)
    return bool(found)


def _literal(lit: Any) -> Literal:
    text = str(lit)
    if lit.ast_type != ast.ASTType.Literal:
        return Literal("other", False, None, text)
    negated = lit.sign != ast.Sign.NoSign
    atom = lit.atom
    if atom.ast_type == ast.ASTType.SymbolicAtom:
        return Literal("atom", negated, _atom(atom.symbol), text)
    if atom.ast_type == ast.ASTType.BodyAggregate:
        elements = tuple(
            _atom(c.atom.symbol)
            for element in atom.elements
            for c in element.condition
            if c.ast_type == ast.ASTType.Literal and c.sign == ast.Sign.NoSign
            and c.atom.ast_type == ast.ASTType.SymbolicAtom
        )
        guards = tuple(_term(g.term) for g in (atom.left_guard, atom.right_guard) if g is not None)
        return Literal("aggregate", negated, None, text, elements, guards)
    if atom.ast_type == ast.ASTType.Comparison:
        terms = (_term(atom.term), *(_term(g.term) for g in atom.guards))
        return Literal("compare", negated, None, text, (), terms)
    return Literal("other", negated, None, text)


def _atom(term: Any) -> Pat:
    value = _term(term)
    if isinstance(value, Pat):
        return value
    if isinstance(value, Const):
        return Pat(value.name, ())
    if isinstance(value, Fn):
        return Pat(value.name, value.args)
    return Pat(str(term), ())


def _term(term: Any) -> Any:
    """A clingo.ast term as a rule term of bridge/terms.py."""
    kind = term.ast_type
    if kind == ast.ASTType.Variable:
        return Var(term.name)
    if kind == ast.ASTType.SymbolicTerm:
        return _value(term.symbol)
    if kind == ast.ASTType.Function:
        args = tuple(_term(a) for a in term.arguments)
        if term.external:
            return Other(str(term))
        return Pat(term.name, args) if args or term.name == "" else Const(term.name)
    if kind == ast.ASTType.UnaryOperation and term.operator_type == ast.UnaryOperator.Minus:
        return Op("neg", _term(term.argument))
    if kind == ast.ASTType.BinaryOperation:
        op = {ast.BinaryOperator.Plus: "+", ast.BinaryOperator.Minus: "-", ast.BinaryOperator.Multiplication: "*",
              ast.BinaryOperator.Division: "/", ast.BinaryOperator.Modulo: "\\"}.get(term.operator_type)
        if op:
            return Op(op, _term(term.left), _term(term.right))
    return Other(str(term))


def _value(sym: Symbol) -> Value:
    return parse_atom(f"x({sym})")[1]


# ---------------------------------------------------------------------- solving
@dataclass(frozen=True)
class Program:
    """Program text for one solve, and for each of its lines the KB file and line it came
    from (so a message about line 212 of the text names kb/rules/audit.lp:97)."""

    text: str
    origins: tuple[tuple[str, int], ...]

    def where(self, line: int) -> str:
        if 1 <= line <= len(self.origins):
            file, at = self.origins[line - 1]
            return f"{file}:{at}" if at else file
        return "kb"


_SPURIOUS = "no atoms over signature occur in program"  # #show of a predicate only the backend adds


def solve(program: Program, facts: Iterable[Atom], tables: Iterable[Atom] = ()) -> list[Atom]:
    """Ground and solve `program` with `facts` (and table rows); the shown atoms of the one
    answer set. Raises KBError for any clingo message, SolveError unless exactly one model."""
    grounding = Grounding(program, facts, tables)
    grounding.ground()
    return grounding.answer()


def optimize(program: Program, facts: Iterable[Atom], tables: Iterable[Atom] = (), limit: int = 10) -> list[list[Atom]]:
    """The shown atoms of up to `limit` optimal answer sets of a program with choices and a
    #minimize (the what-if search of bridge/whatif.py); [] where there is none."""
    grounding = Grounding(program, facts, tables, ("--opt-mode=optN", "--models=0"))
    grounding.ground()
    models: list[list[Atom]] = []

    def on_model(model: clingo.Model) -> bool:
        if model.optimality_proven:
            models.append([parse_atom(str(s)) for s in model.symbols(shown=True)])
        return len(models) < limit

    grounding.control.solve(on_model=on_model)
    return models


class Grounding:
    """One batch through clingo in three steps: `Grounding(...)` builds the facts as symbols
    and hands clingo the program; `ground()` grounds it, without holding Python's lock, so
    another thread may do Python work meanwhile; `answer()` solves and reads the one
    answer set.

    Facts reach clingo as symbols built with the Symbol API, handed over while grounding
    by a context function, one list per predicate: the program gets one bridge-written
    rule per predicate, `procedure(A1,A2,A3) :- (A1,A2,A3) = @_tpkb_rows(4).`, and no user
    text. (Adding each fact through the backend costs two more calls into clingo per fact,
    a fifth of a large batch.)"""

    def __init__(self, program: Program, facts: Iterable[Atom], tables: Iterable[Atom] = (),
                 arguments: tuple[str, ...] = ("--models=2",)):
        self.program = program
        self.messages: list[str] = []
        rows = self.rows = _Rows()
        for sym, (name, arity) in _table_symbols(tables):
            rows.add(name, arity, sym)
        groups = rows.groups
        convert = _CONVERT
        for atom in facts:
            key = (atom[0], len(atom) - 1)
            group = groups.get(key)
            if group is None:
                group = groups[key] = []
            group.append(Tuple_([convert[type(a)](a) for a in atom[1:]]))
        self.control = clingo.Control(list(arguments), logger=self._log, message_limit=50)
        try:
            self.control.add("base", [], program.text)
            self.control.add("base", [], rows.program())
        except RuntimeError as exc:
            raise KBError(self.messages or [str(exc)]) from None

    def _log(self, _code: Any, message: str) -> None:
        if _SPURIOUS not in message:
            self.messages.append(_message(self.program, message))

    def ground(self) -> None:
        try:
            self.control.ground([("base", [])], context=self.rows)
        except RuntimeError as exc:
            raise KBError(self.messages or [str(exc)]) from None
        if self.messages:
            raise KBError(self.messages)

    def answer(self) -> list[Atom]:
        models: list[list[Atom]] = []
        self.control.solve(on_model=lambda m: models.append([parse_atom(str(s)) for s in m.symbols(shown=True)]))
        if len(models) != 1:
            raise SolveError("the KB has no answer set for this batch" if not models else
                             "the KB has more than one answer set for this batch (it must be deterministic)")
        return models[0]


class _Rows:
    """The facts of one solve, as argument tuples by predicate, for the grounder to fetch."""

    def __init__(self) -> None:
        self.groups: dict[tuple[str, int], list[Symbol]] = {}

    def add(self, name: str, arity: int, args: Symbol) -> None:
        group = self.groups.get((name, arity))
        if group is None:
            group = self.groups[(name, arity)] = []
        group.append(args)

    def program(self) -> str:
        lines = []
        for index, (name, arity) in enumerate(self.groups):
            names = ",".join(f"A{i}" for i in range(1, arity + 1))
            pattern = f"({names},)" if arity == 1 else f"({names})"
            lines.append(f"{name}({names}) :- {pattern} = @_tpkb_rows({index})." if arity else
                         f"{name} :- () = @_tpkb_rows({index}).")
        return "\n".join(lines) + "\n"

    def _tpkb_rows(self, index: Symbol) -> list[Symbol]:
        return list(self.groups.values())[index.number]


def _message(program: Program, message: str) -> str:
    file, line, _col, text = _located(message)
    if file == "<block>":
        return f"{program.where(line)}: {text}"
    return f"{file}:{line}: {text}" if file else text


# Symbols repeat across a batch (muscle texts, codes, positions) and table rows across
# batches; building each once saves calls into clingo, the main cost of a large batch.
_string = lru_cache(maxsize=1 << 16)(String)
_number = lru_cache(maxsize=1 << 12)(Number)
_constant = lru_cache(maxsize=1 << 10)(Function)
_TABLE_SYMBOLS: dict[Atom, Symbol] = {}


def symbol(atom: Atom) -> Symbol:
    convert = _CONVERT
    return Function(atom[0], [convert[type(a)](a) for a in atom[1:]])


def _arg(value: Value) -> Symbol:
    return _CONVERT[type(value)](value)


_CONVERT: dict[type, Any] = {
    str: _string,
    int: _number,
    Const: lambda c: _constant(c.name),
    tuple: lambda t: Tuple_([_arg(v) for v in t]),
    Fn: lambda f: Function(f.name, [_arg(v) for v in f.args]),
}


def _table_symbols(rows: Iterable[Atom]) -> Iterator[tuple[Symbol, tuple[str, int]]]:
    cache = _TABLE_SYMBOLS
    for row in rows:
        sym = cache.get(row)
        if sym is None:
            sym = cache[row] = Tuple_([_arg(a) for a in row[1:]])
        yield sym, (row[0], len(row) - 1)


def fact_text(atom: Atom) -> str:
    """The atom as a clingo fact, escaped by clingo itself."""
    return f"{symbol(atom)}."
