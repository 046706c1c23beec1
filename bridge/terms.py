"""Clingo terms as plain Python values, so that only bridge/engine.py touches clingo.

Values: a number is an int, a string a str, a constant a `Const`, a tuple a tuple, any
other function an `Fn`. An atom is a tuple whose first item is the predicate name:
`("line", 1, "20553", 1)` is line(1,"20553",1).

Rule terms (from clingo.ast, for explanations) may hold variables: `Var`, `Pat` (a
function with variables) and `Op` (arithmetic). `instantiate` fills them from a rule's
bindings; what stays unknown (an anonymous variable) becomes `ANY`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, ClassVar

# ---------------------------------------------------------------------- values


class Const:
    """A constant such as `left` or `ultrasound` (interned: one object per name)."""

    __slots__ = ("name",)
    _table: ClassVar[dict[str, Const]] = {}
    name: str

    def __new__(cls, name: str) -> Const:
        obj = cls._table.get(name)
        if obj is None:
            obj = super().__new__(cls)
            obj.name = name
            cls._table[name] = obj
        return obj

    def __reduce__(self) -> tuple:
        return (Const, (self.name,))

    def __repr__(self) -> str:
        return self.name

    __str__ = __repr__

    def __lt__(self, other: object) -> bool:
        return sort_key(self) < sort_key(other)


@dataclass(frozen=True, slots=True)
class Fn:
    """A function term with arguments, such as f(1,"a")."""

    name: str
    args: tuple

    def __str__(self) -> str:
        return f"{self.name}({','.join(clingo_text(a) for a in self.args)})"


Value = Any  # int | str | Const | tuple | Fn
Atom = tuple  # (name, *args)


class _Any:
    """An argument no binding determines (an anonymous or aggregate-local variable)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "_"

    def __reduce__(self) -> str:
        return "ANY"  # unpickles as this module's one ANY


ANY = _Any()


def clingo_text(value: Value) -> str:
    """A value written as clingo writes it (for JSON 'atom' fields and messages to engineers)."""
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    if isinstance(value, tuple):
        inner = ",".join(clingo_text(v) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    return str(value)


def atom_text(atom: Atom) -> str:
    name, args = atom[0], atom[1:]
    return f"{name}({','.join(clingo_text(a) for a in args)})" if args else name


def sort_key(value: Value) -> tuple:
    """Clingo's order of symbols: numbers < constants and functions < strings < tuples."""
    if isinstance(value, int):
        return (0, value)
    if isinstance(value, Const):
        return (1, value.name, ())
    if isinstance(value, Fn):
        return (1, value.name, tuple(sort_key(a) for a in value.args))
    if isinstance(value, str):
        return (2, value)
    if isinstance(value, tuple):
        return (1, "", tuple(sort_key(a) for a in value))
    return (3, str(value))


# ---------------------------------------------------------------------- reading clingo's text
_TOKEN = re.compile(r'\s*(?:"((?:[^"\\]|\\.)*)"|(-?[0-9]+)|(#inf|#sup)|(-?[_a-z][A-Za-z0-9_\']*)|([(),]))')
_STRICT = re.compile(r'\s*("(?:[^"\\]|\\.)*"|-?[0-9]+|#inf|#sup|-?[_a-z][A-Za-z0-9_\']*|[(),])\s*')
_ESCAPE = re.compile(r"\\(.)")
_ESCAPES = {"n": "\n", "t": "\t", "\\": "\\", '"': '"'}


def _unescape(text: str) -> str:
    return _ESCAPE.sub(lambda m: _ESCAPES.get(m.group(1), m.group(1)), text) if "\\" in text else text


def parse_atom(text: str, strict: bool = False) -> Atom:
    """An atom from clingo's text form of its symbol: 'line(1,"20553",1)' -> ("line", 1, "20553", 1).

    Reading the text (one call into clingo per symbol) is several times faster than
    walking a symbol's arguments through the Python API. `strict` refuses text that is not
    a ground atom (a variable, an operator), for text clingo did not write itself."""
    if strict and sum(len(t) for t in _STRICT.findall(text)) != len(text):
        raise ValueError(f"not a ground atom: {text!r}")
    if not strict:
        flat = _flat(text)
        if flat is not None:
            return flat
    tokens = _TOKEN.findall(text)
    if text.count("(") == 1 and text.endswith(")") and not strict:
        # The common case: name(arg,...,arg) with no nested term.
        out: list = [tokens[0][3]]
        for string, number, special, name, _punct in tokens[2:]:
            if number:
                out.append(int(number))
            elif name:
                out.append(Const(name))
            elif special:
                out.append(Const(special))
            elif _punct == "":
                out.append(_unescape(string))
        if len(out) > 1 or tokens[1][4] == "(":
            return tuple(out)
    _pos, value = _read(tokens, 0)
    if isinstance(value, Const):
        return (value.name,)
    if isinstance(value, Fn):
        return (value.name, *value.args)
    raise ValueError(f"not an atom: {text!r}")


def _flat(text: str) -> Atom | None:
    """name(a,b,c) with numbers, constants and strings holding no comma, quote, backslash
    or parenthesis: split in C, no regular expression. None for anything else."""
    open_at = text.find("(")
    if open_at < 0 or "\\" in text or text.count("(") != 1:
        return None
    out: list = [text[:open_at]]
    for part in text[open_at + 1:-1].split(","):
        first = part[:1]
        if first == '"':
            if len(part) < 2 or part[-1] != '"' or '"' in part[1:-1]:
                return None
            out.append(part[1:-1])
        elif first.isdigit() or (first == "-" and part[1:2].isdigit()):
            out.append(int(part))
        elif first.isalpha() or first == "_":
            out.append(Const(part))
        else:
            return None
    return tuple(out)


def _read(tokens: list, pos: int) -> tuple[int, Value]:
    string, number, special, name, punct = tokens[pos]
    pos += 1
    if number:
        return pos, int(number)
    if punct == "(":
        items: list = []
        if tokens[pos][4] == ")":
            return pos + 1, ()
        while True:
            if tokens[pos][4] == ")":  # a trailing comma: (a,)
                return pos + 1, tuple(items)
            pos, item = _read(tokens, pos)
            items.append(item)
            sep = tokens[pos][4]
            pos += 1
            if sep == ")":
                return pos, tuple(items)
    if name:
        if pos < len(tokens) and tokens[pos][4] == "(":
            pos, args = _read(tokens, pos)
            return pos, Fn(name, args)
        return pos, Const(name)
    if special:
        return pos, Const(special)
    if punct:
        raise ValueError(f"unexpected {punct!r}")
    return pos, _unescape(string)


# ---------------------------------------------------------------------- rule terms
@dataclass(frozen=True, slots=True)
class Var:
    name: str


@dataclass(frozen=True, slots=True)
class Pat:
    """A function term whose arguments may hold variables; name "" is a tuple."""

    name: str
    args: tuple


@dataclass(frozen=True, slots=True)
class Op:
    """Arithmetic: op is one of + - * / \\ (modulo) or 'neg' (unary minus, right unused)."""

    op: str
    left: Any
    right: Any = None


@dataclass(frozen=True, slots=True)
class Other:
    """A term the bridge does not evaluate (an interval, a pool): shown as written."""

    text: str


_ARITH = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b,
          "/": lambda a, b: a // b if b else None, "\\": lambda a, b: a % b if b else None}


def instantiate(term: Any, bindings: dict[str, Value]) -> Value:
    """The value of a rule term under `bindings`; ANY where a variable is unbound. A
    function with an unbound argument stays a Pat whose unknown arguments are ANY."""
    if isinstance(term, Var):
        return bindings.get(term.name, ANY)
    if isinstance(term, Pat):
        args = tuple(instantiate(a, bindings) for a in term.args)
        if any(a is ANY or isinstance(a, Pat) for a in args):
            return Pat(term.name, args)
        return args if term.name == "" else Fn(term.name, args) if args else Const(term.name)
    if isinstance(term, Op):
        left = instantiate(term.left, bindings)
        if term.op == "neg":
            return -left if isinstance(left, int) else ANY
        right = instantiate(term.right, bindings)
        if isinstance(left, int) and isinstance(right, int):
            result = _ARITH[term.op](left, right)
            return ANY if result is None else result
        return ANY
    if isinstance(term, Other):
        return ANY
    return term


def instantiate_atom(atom: Pat, bindings: dict[str, Value]) -> Atom | Pat:
    """An atom of a rule body or head: a ground atom tuple, or a Pat where some argument is
    unknown."""
    args = tuple(instantiate(a, bindings) for a in atom.args)
    if any(a is ANY or isinstance(a, Pat) for a in args):
        return Pat(atom.name, args)
    return (atom.name, *args)


def matches(pattern: Pat, atom: Atom) -> bool:
    """Whether a ground atom fits a pattern with unknown (ANY) arguments."""
    if atom[0] != pattern.name or len(atom) != len(pattern.args) + 1:
        return False
    return all(_fits(p, v) for p, v in zip(pattern.args, atom[1:]))


def _fits(p: Value, v: Value) -> bool:
    if p is ANY:
        return True
    if isinstance(p, Pat):
        if p.name == "":
            return isinstance(v, tuple) and len(v) == len(p.args) and all(_fits(a, b) for a, b in zip(p.args, v))
        return isinstance(v, Fn) and v.name == p.name and len(v.args) == len(p.args) and \
            all(_fits(a, b) for a, b in zip(p.args, v.args))
    return bool(p == v)


def variables(term: Any, out: list[str] | None = None) -> list[str]:
    out = [] if out is None else out
    if isinstance(term, Var):
        if term.name != "_" and term.name not in out:
            out.append(term.name)
    elif isinstance(term, (Pat, tuple)):
        for a in (term.args if isinstance(term, Pat) else term):
            variables(a, out)
    elif isinstance(term, Op):
        variables(term.left, out)
        variables(term.right, out)
    return out


# ---------------------------------------------------------------------- reading for people
def show(value: Value, fmt: str = "") -> str:
    """A value as a person reads it: strings bare, constants by name with spaces for
    underscores (levator_scapulae: "levator scapulae"; fmt "raw" keeps the name), dates
    as YYYY-MM-DD (fmt "date"), tenths as a decimal (fmt "tenths": 75 is "7.5"), tuples
    as "a, b"."""
    if isinstance(value, int) and not isinstance(value, bool):
        if fmt == "date" and 10000101 <= value <= 99991231:
            return f"{value // 10000:04d}-{value // 100 % 100:02d}-{value % 100:02d}"
        if fmt == "tenths":
            return str(value // 10) if value % 10 == 0 else f"{value / 10:g}"
        return str(value)
    if isinstance(value, str):
        return value
    if isinstance(value, tuple):
        return ", ".join(show(v, fmt) for v in value)
    if value is ANY:
        return "any"
    if isinstance(value, Pat):
        return f"{value.name}({', '.join(show(a, fmt) for a in value.args)})"
    if isinstance(value, Const) and fmt != "raw":
        return value.name.replace("_", " ")
    return str(value)


def strings(values: Iterable[Value]) -> Iterable[str]:
    """Every string inside values (for giving a batch the table rows it can use)."""
    for v in values:
        if isinstance(v, str):
            yield v
        elif isinstance(v, tuple):
            yield from strings(v)
        elif isinstance(v, Fn):
            yield from strings(v.args)
