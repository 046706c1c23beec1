"""Read case and encounter files (YAML, JSON, JSONL, or JSONL on standard input) into
records, in input order, each holding a validated encounter (and its case) or the
problems that kept it from being read.

Hostile input never costs a good record: every decode, parse and validation error is
caught at the record it belongs to; a file or line that cannot be read is one problem and
the next one is read. Messages name the file, line, case and field, and quote user text
short and escaped (bridge/printable.py).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from pydantic import BaseModel, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.constructor import RoundTripConstructor, SafeConstructor
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from .model import Case, Encounter, is_case
from .printable import BigNumber, excerpt, kind, quote, too_big

SUFFIXES = (".yaml", ".yml", ".json", ".jsonl")
MAX_DOCUMENT = 5_000_000  # bytes in one YAML or JSON file
MAX_LINE = 1_000_000  # bytes in one JSONL line
MAX_VALUES = 100_000  # values YAML aliases may add to a document, once expanded
MAX_DEPTH = 64  # nesting libyaml is given (deeper: the Python parser, which fails gracefully)
MAX_NESTING = 1_000  # nesting no parser is given
MAX_PROBLEMS = 20  # problems reported for one record; the rest are counted


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the input, as a person reads it: file:line: case: field: what."""

    file: str
    line: int | None
    case: str | None
    field: str
    message: str

    def __str__(self) -> str:
        file = excerpt(self.file, 200)
        where = f"{file}:{self.line}" if self.line else file
        case = f" case {quote(self.case)}:" if self.case else ""
        fld = f" {self.field}:" if self.field else ""
        return f"{where}:{case}{fld} {self.message}"


@dataclass
class Record:
    """One input record (a JSONL line, a file, or an item of a file's list), in input order."""

    file: str
    line: int | None
    id: str | None  # the encounter's id as reported back (its own, or the default)
    encounter: Encounter | None = None
    case: Case | None = None
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.encounter is not None and not self.problems

    @property
    def where(self) -> str:
        """file:line, escaped and short, for messages."""
        file = excerpt(self.file, 200)
        return f"{file}:{self.line}" if self.line else file


# ---------------------------------------------------------------------- files
def expand(paths: Iterable[str | Path]) -> tuple[list[Path], list[Problem]]:
    """Files named, and files under directories named, in a stable order."""
    files, problems = [], []
    for p in paths:
        path = Path(p)
        if path.is_dir():
            files.extend(sorted(f for f in path.rglob("*") if f.suffix in SUFFIXES and f.is_file()
                                and not f.name.endswith(".schema.json")))
        elif path.is_file():
            files.append(path)
        else:
            problems.append(Problem(str(path), None, None, "", "no such file or directory"))
    return files, problems


def read_paths(paths: Iterable[str | Path], profiles: Iterable[str] = (), lines: bool = False) -> Iterator[Record]:
    """Every record of the files and directories named, in order. With `lines`, every
    record of a YAML file knows its line (a case library wants it for its reports);
    without, a YAML file is read fast and only a file with a problem is read for lines."""
    for item in read_items(paths, profiles, lines):
        yield item if isinstance(item, Record) else item.read(frozenset(profiles))


def read_items(paths: Iterable[str | Path], profiles: Iterable[str] = (), lines: bool = False,
               lazy: bool = False) -> Iterator[Record | Pending]:
    """As read_paths; with `lazy`, the lines of JSONL files come back unread (Pending)."""
    files, problems = expand(paths)
    for problem in problems:
        yield Record(problem.file, None, None, problems=[problem])
    known = frozenset(profiles)
    for path in files:
        yield from read_file(path, known, lines, lazy)


def read_file(path: Path, profiles: frozenset[str] = frozenset(), lines: bool = False,
              lazy: bool = False) -> Iterator[Record | Pending]:
    name = str(path)
    try:
        if path.suffix == ".jsonl":
            with path.open("rb") as stream:
                yield from (pending if lazy else pending.read(profiles) for pending in jsonl_lines(stream, name))
            return
        if path.stat().st_size > MAX_DOCUMENT:
            yield _unreadable(name, None, f"is larger than {MAX_DOCUMENT:,} bytes; split it, or use JSONL")
            return
        raw = path.read_bytes()
    except OSError as exc:
        yield _unreadable(name, None, f"cannot be read: {exc.strerror or exc}")
        return
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        yield _unreadable(name, _line_at(raw, exc.start), f"is not UTF-8 text (byte 0x{raw[exc.start]:02x})")
        return
    if path.suffix == ".json":
        data, problem = _parse_json(text, name)
        if problem:
            yield problem
            return
        records = list(_document(data, name, None, path.stem, profiles))
        if any(r.problems for r in records):
            # JSON is YAML too: read again by the round-trip YAML reader for the line of
            # every key, where it reads the same values.
            lined, trouble = _parse_yaml(text, name, lines=True)
            if trouble is None and lined == data:
                records = list(_document(lined, name, None, path.stem, profiles))
        yield from records
        return
    # YAML is read by libyaml first; only a file with a problem is read again, slowly, for
    # the line of every key.
    data, problem = _parse_yaml(text, name, lines=lines)
    records = [problem] if problem else list(_document(data, name, None, path.stem, profiles))
    if not lines and any(r.problems for r in records):
        data, problem = _parse_yaml(text, name, lines=True)
        records = [problem] if problem else list(_document(data, name, None, path.stem, profiles))
    yield from records


@dataclass(frozen=True)
class Pending:
    """A JSONL line not read yet: worker processes read it, so that parsing and validating
    a large stream is spread over every core."""

    file: str
    line: int
    raw: bytes

    def read(self, profiles: frozenset[str]) -> Record:
        return _jsonl_record(self.raw, self.file, self.line, profiles)


def jsonl_lines(stream: IO[bytes], name: str) -> Iterator[Pending]:
    """The non-blank lines of a JSONL stream, each to be read later, as bytes (a line that
    is not UTF-8 is an error record, and the next line is still read). A line longer than
    MAX_LINE is kept only up to there (it becomes an error record); the rest of it is
    skipped unread, so that no line, however long, is held whole."""
    lineno = 0
    while True:
        raw = stream.readline(MAX_LINE + 1)
        if not raw:
            return
        lineno += 1
        if len(raw) > MAX_LINE and not raw.endswith(b"\n"):
            while True:  # the rest of the overlong line
                rest = stream.readline(1 << 20)
                if not rest or rest.endswith(b"\n"):
                    break
        if raw.strip():
            yield Pending(name, lineno, raw)


def _jsonl_record(raw: bytes, name: str, lineno: int, profiles: frozenset[str]) -> Record:
    if len(raw) > MAX_LINE:
        return _unreadable(name, lineno, f"is longer than {MAX_LINE:,} bytes")
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        byte = f"0x{raw[exc.start]:02x}"
        return _unreadable(name, lineno, f"is not UTF-8 text (byte {byte} at column {exc.start + 1})")
    stem = Path(name).stem if not name.startswith("<") else "stdin"
    return read_jsonl_line(line, name, lineno, f"{stem}:{lineno}", profiles)


def read_jsonl_line(line: str, name: str, lineno: int, default_id: str, profiles: frozenset[str]) -> Record:
    data, problem = _parse_json(line, name, lineno)
    if problem:
        return problem
    if not isinstance(data, dict):
        return _unreadable(name, lineno, f"a JSONL line holds one encounter or case (a JSON object), not {kind(data)}")
    return _item(data, name, lineno, default_id, profiles, None)


def _unreadable(name: str, line: int | None, message: str) -> Record:
    return Record(name, line, None, problems=[Problem(name, line, None, "", message)])


def _line_at(raw: bytes, offset: int) -> int:
    return raw.count(b"\n", 0, offset) + 1


# ---------------------------------------------------------------------- parsing
def _json_int(literal: str) -> int | BigNumber:
    return BigNumber(literal) if too_big(literal) else int(literal)


# Python refuses to convert an integer of more than 4,300 digits, failing the whole text;
# such a number (any of more than 20 digits, which no field takes) is read as a BigNumber
# instead, so the message names its field. Text without one is read by the plain decoder.
class _DuplicateKey(ValueError):
    pass


def _object(pairs: list[tuple[str, Any]]) -> dict:
    """A JSON object; a key written twice is an error, as it is in YAML (JSON itself lets
    the last one win silently, which would drop what the first one said)."""
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        twice = next(k for k, _ in pairs if k in seen or seen.add(k))  # type: ignore[func-returns-value]
        raise _DuplicateKey(twice)
    return obj


_JSON = json.JSONDecoder(object_pairs_hook=_object)
_BIG_JSON = json.JSONDecoder(object_pairs_hook=_object, parse_int=_json_int)
_LONG_NUMBER = re.compile(r"[0-9]{21}")


def _parse_json(text: str, name: str, line: int | None = None) -> tuple[Any, Record | None]:
    try:
        return (_BIG_JSON if _LONG_NUMBER.search(text) else _JSON).decode(text), None
    except json.JSONDecodeError as exc:
        at = line or exc.lineno
        return None, _unreadable(name, at, f"broken JSON: {exc.msg} (column {exc.colno})")
    except _DuplicateKey as exc:
        return None, _unreadable(name, line, f"broken JSON: the key {quote(str(exc))} is written twice in one object")
    except RecursionError:
        return None, _unreadable(name, line, "broken JSON: nested too deeply")
    except ValueError as exc:  # a number Python refuses to convert, and the like
        return None, _unreadable(name, line, f"broken JSON: {quote(str(exc))}")


class _Literal:
    """What both YAML loaders share: YAML never guesses a date, and never converts a number
    too long for any field; the model decides what a date or a number is."""

    def construct_yaml_timestamp(self, node: Any, values: Any = None) -> Any:
        return self.construct_scalar(node)  # type: ignore[attr-defined]

    def construct_yaml_int(self, node: Any) -> Any:
        literal = str(self.construct_scalar(node))  # type: ignore[attr-defined]
        if too_big(literal.replace("_", "")):
            return BigNumber(literal)
        return super().construct_yaml_int(node)  # type: ignore[misc]


class _Lines(_Literal, RoundTripConstructor):
    """Round-trip YAML: slow, but it keeps the line of every key, for messages."""


class _Fast(_Literal, SafeConstructor):
    """Plain YAML through libyaml: for files that turn out to have nothing wrong."""


for _cls in (_Lines, _Fast):
    _cls.add_constructor("tag:yaml.org,2002:timestamp", _cls.construct_yaml_timestamp)
    _cls.add_constructor("tag:yaml.org,2002:int", _cls.construct_yaml_int)
_BRACKET = re.compile(r"[\[\]{}]")
_BLOCK_START = re.compile(r"^ *(?:[-?:][ \t]+)*", re.M)


def _nesting_bound(text: str) -> int:
    """At least how deep the YAML text nests, read without parsing it: its flow brackets
    (counted in strings and comments too, so never fewer than it has), plus twice the
    column where its deepest block node starts (each block level is indented further,
    but a list may stand at its key's indentation)."""
    depth = deepest = 0
    for match in _BRACKET.finditer(text):
        if match.group() in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif depth:
            depth -= 1
    column = max((match.end() - match.start() for match in _BLOCK_START.finditer(text)), default=0)
    return deepest + 2 * column + 2


def _parse_yaml(text: str, name: str, lines: bool = True) -> tuple[Any, Record | None]:
    """libyaml is fast but recurses in C (a deep enough document crashes the process), so
    it reads only text whose nesting bound is small; the Python parser reads the rest and
    stops, with a message, where Python's recursion limit stops it."""
    bound = _nesting_bound(text)
    if bound > MAX_NESTING:
        return None, _unreadable(name, None, f"broken YAML: nested more than {MAX_NESTING:,} deep")
    if lines or bound > MAX_DEPTH:
        yaml = YAML(typ="rt", pure=True)
        yaml.Constructor = _Lines
    else:
        yaml = YAML(typ="safe", pure=False)
        yaml.Constructor = _Fast
    try:
        data = yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        return None, _unreadable(name, mark.line + 1 if mark else None,
                                 f"broken YAML: {quote(exc.problem or exc.context, 120)}")
    except RecursionError:
        return None, _unreadable(name, None, "broken YAML: nested too deeply")
    except (YAMLError, ValueError, TypeError) as exc:
        return None, _unreadable(name, None, f"broken YAML: {quote(str(exc) or type(exc).__name__, 120)}")
    if _alias_growth(data) > MAX_VALUES:
        return None, _unreadable(name, None, f"its YAML aliases expand to more than {MAX_VALUES:,} further "
                                 "values; write the values out, or split the file")
    return data, None


def _alias_growth(data: Any) -> int:
    """How many values YAML aliases add to `data` once expanded, counted without expanding
    them: an alias is the same Python object as its anchor, so each object's expanded size
    is counted once and reused. A document without aliases adds none, however large."""
    limit = MAX_VALUES + 1
    sizes: dict[int, int] = {}
    written = 0  # values as written: each object once
    visiting: set[int] = set()
    stack: list[tuple[Any, bool]] = [(data, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        children = list(node.values()) if isinstance(node, dict) else node if isinstance(node, list) else []
        if done:
            visiting.discard(key)
            sizes[key] = min(1 + sum(sizes.get(id(c), 1) for c in children), written + limit)
            continue
        if key in sizes:
            continue
        if key in visiting:  # an alias to itself: endless once expanded
            return limit
        visiting.add(key)
        written += 1 + sum(1 for c in children if not isinstance(c, (dict, list)))
        stack.append((node, True))
        stack.extend((c, False) for c in children if isinstance(c, (dict, list)))
    return sizes.get(id(data), 1) - written


# ---------------------------------------------------------------------- documents
def _document(data: Any, name: str, line: int | None, default_id: str, profiles: frozenset[str]) -> Iterator[Record]:
    if data is None:
        yield _unreadable(name, line, "the file is empty")
        return
    if isinstance(data, list):
        for i, item in enumerate(data):
            yield _item(item, name, _line_of(data, i, line), f"{default_id}[{i}]", profiles, f"[{i}]")
    else:
        yield _item(data, name, line if line is not None else _line_of(data, None, None), default_id, profiles, None)


def _item(data: Any, name: str, line: int | None, default_id: str, profiles: frozenset[str],
          prefix: str | None) -> Record:
    """One case or encounter: validated against the model, problems named by field."""
    context = {"profiles": profiles}
    if is_case(data):
        case_name = data.get("name")
        label = case_name if isinstance(case_name, str) else None
        try:
            case = Case.model_validate(data, context=context)
        except ValidationError as exc:
            return Record(name, line, label, problems=_problems(exc, Case, data, name, line, label, ""))
        enc = case.encounter if case.encounter.id is not None else case.encounter.model_copy(update={"id": case.name})
        return Record(name, line, enc.id, enc, case.model_copy(update={"encounter": enc}))
    if not isinstance(data, dict):
        message = f"must be an encounter or a case (a mapping), not {kind(data)}"
        return Record(name, line, None, problems=[Problem(name, line, None, prefix or "", message)])
    raw_id = data.get("id")
    try:
        enc = Encounter.model_validate(data, context=context)
    except ValidationError as exc:
        rid = raw_id if isinstance(raw_id, str) else None
        return Record(name, line, rid, problems=_problems(exc, Encounter, data, name, line, None, prefix or ""))
    if enc.id is None:
        enc = enc.model_copy(update={"id": default_id})
    return Record(name, line, enc.id, enc)


# ---------------------------------------------------------------------- messages
_HINTS = {
    "date": "required (the date of service, YYYY-MM-DD)",
    "injectate": "required: list what was injected, or [] for a needle without injection",
}


def _problems(exc: ValidationError, model: type[BaseModel], data: Any, name: str, line: int | None,
              case: str | None, prefix: str) -> list[Problem]:
    out = []
    errors = exc.errors(include_url=False, include_context=False, include_input=True)
    for err in errors[:MAX_PROBLEMS]:
        loc = err["loc"]
        path = _path(loc, prefix)
        at = _line_at_loc(data, loc, line)
        out.append(Problem(name, at, case, path, _message(err, model, loc)))
    if len(errors) > MAX_PROBLEMS:
        out.append(Problem(name, line, case, prefix, f"and {len(errors) - MAX_PROBLEMS:,} more problems not listed"))
    return out


def _path(loc: tuple, prefix: str) -> str:
    """The field path, as `procedures[0].muscle`; a key of the input escaped and short."""
    text = prefix
    for part in loc:
        key = excerpt(str(part), 40)
        text += f"[{part}]" if isinstance(part, int) else (f".{key}" if text else key)
    return text


def _message(err: Any, model: type[BaseModel], loc: tuple) -> str:
    kind_ = err["type"]
    value = err.get("input")
    if kind_ == "tpkb":
        return str(err["msg"])
    if kind_ == "missing":
        return _HINTS.get(str(loc[-1]), "required")
    if kind_ == "extra_forbidden":
        import difflib

        allowed = sorted(_model_at(model, loc[:-1]).model_fields)
        near = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
        hint = f"; did you mean '{near[0]}'?" if near else ""
        return f"unknown key (allowed: {', '.join(allowed)}){hint}"
    if kind_ in ("model_type", "dict_type", "model_attributes_type"):
        return f"must be a mapping, not {kind(value)}"
    if kind_ == "list_type":
        return f"must be a list, not {kind(value)}"
    if kind_ in ("bool_type", "bool_parsing"):
        return f"must be true or false, not {quote(value)}"
    if kind_ in ("string_type", "str_type"):
        return f"must be text, not {kind(value)}"
    return f"{err['msg']} (not {quote(value)})"


def _model_at(model: type[BaseModel], loc: tuple) -> type[BaseModel]:
    """The model class that validates the value at `loc` (for the keys it allows)."""
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        info = current.model_fields.get(part)
        if info is None:
            break
        current = _inner_model(info.annotation) or current
    return current


def _inner_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _inner_model(arg)
        if found:
            return found
    origin = getattr(annotation, "__origin__", None)
    return _inner_model(origin) if origin not in (None, annotation) else None


def _line_at_loc(data: Any, loc: tuple, default: int | None) -> int | None:
    """The line of the deepest node along `loc` that ruamel recorded a line for."""
    line, node = default, data
    for part in loc:
        found = _line_of(node, part, None)
        if found:
            line = found
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            break
    return line


def _line_of(node: Any, key: Any, default: int | None) -> int | None:
    """1-based line of `key` in a ruamel node (or of the node itself)."""
    lc = getattr(node, "lc", None)
    if lc is None:
        return default
    try:
        if isinstance(node, list):
            return lc.item(key)[0] + 1
        return lc.key(key)[0] + 1
    except (KeyError, IndexError, TypeError, AttributeError):
        return lc.line + 1 if lc.line is not None else default
