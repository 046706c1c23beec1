"""The knowledge base as the bridge loads it: compiled once from kb/main.lp and the files
it includes, checked, and cached on disk so that the next process starts in milliseconds.

Compiling reads every file with clingo.ast (bridge/engine.py), checks every rule
(bridge/rules.py), reads the reference tables into Python rows (bridge/tables.py) and
writes three program texts: plain, with the message rules instrumented (`tpkb code`), and
with every rule instrumented (explanations, `tpkb test`). Instrumenting turns

    calls_for(E, "20553") :- injected_count(E, N), N >= 3.

into two rules, so that the body is grounded once:

    _tpkb_fired(E, 12, N) :- injected_count(E, N), N >= 3.
    calls_for(E, "20553") :- _tpkb_fired(E, 12, N).

The firing atom carries the encounter, the rule's number and its variable values; the
head is rebuilt from them in Python.

The cache (one file per KB folder, in $TPKB_CACHE or ~/.cache/tpkb; TPKB_CACHE=off turns
it off) is used only while every KB file and every bridge module has the content it was
compiled from. A KB with errors is never cached.
"""

from __future__ import annotations

import hashlib
import os
import pickle
from dataclasses import dataclass, field
from pathlib import Path

from . import engine
from .engine import KBError, Program, Statement
from .reading import Reader, Vocabulary
from .rules import (
    FINDING_ID_AT,
    REASON_ID_AT,
    Doc,
    Note,
    Rule,
    body_signatures,
    constants_in_head,
    did_you_mean,
    encounter_level,
    make_rule,
    read_annotations,
    read_docs,
)
from .sources import REGISTER, Source, read_register
from .tables import Signature, Table, Tables
from .terms import Atom, Pat, Var, strings

FIRED = "_tpkb_fired"
# The lexicon tables whose first column is a term the reader of documentation recognises.
TERM_TABLES = ("muscle_name", "muscle_part_name", "group_name", "region_term", "ambiguous_term")
# not_covered(E, C, Id) is a finding too (id Id, subject C): kept apart from finding/3 so
# that the coverage layer, which findings of the audit depend on, does not depend on them.
MESSAGE_HEADS = {("finding", 3), ("not_covered", 3), ("reason", 4)}  # their labels are messages of an outcome
MESSAGE_HIDDEN = {("finding", 3), ("not_covered", 3), ("reject_reason", 4)}  # carried by the firings ("messages")
MODES = ("plain", "messages", "full")
SCHEMA, SHOW, REFERENCE, PAYERS = "kb/schema.lp", "kb/show.lp", "kb/reference/", "kb/payers/"


@dataclass
class KB:
    root: Path
    fingerprint: dict[str, str]
    rules: dict[str, Rule]
    by_number: list[Rule]
    docs: dict[Signature, Doc]
    inputs: set[Signature]
    public: set[Signature]
    tables: Tables
    programs: dict[str, Program]
    # The source register (kb/sources.yaml), by id. A citation it lacks is not a load error:
    # `tpkb lint` reports it; `tpkb doc` links each [id] of a rule's source to its entry.
    sources: dict[str, Source] = field(default_factory=dict)
    _memo: dict = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def load(cls, root: Path | str, cache: bool = True) -> KB:
        return load(Path(root), cache)

    def program(self, mode: str) -> Program:
        return self.programs[mode]

    def table_rows(self, name: str) -> list[Atom]:
        return self.tables.rows(name)

    def coverage_denials(self) -> dict[str, str]:
        """Coverage finding id -> necessity or excluded (kb/reference/coverage.lp)."""
        return self._lookup("coverage_denial")

    def severities(self) -> dict[str, str]:
        """Finding id -> error, warning or info (kb/reference/findings.lp)."""
        return self._lookup("finding_severity")

    def reasons(self) -> dict[str, str]:
        """Audit reason id -> what it means (kb/reference/reasons.lp)."""
        return self._lookup("audit_reason")

    def profiles(self) -> list[str]:
        return sorted(row[1] for row in self.table_rows("profile"))

    def vocabulary(self) -> Vocabulary:
        """What the reader of documentation text recognises: the lexicon's terms and side
        words (kb/reference/muscles.lp)."""
        if "vocabulary" not in self._memo:
            terms = [row[1] for name in TERM_TABLES for row in self.table_rows(name)]
            self._memo["vocabulary"] = Vocabulary(terms, [row[1] for row in self.table_rows("side_word")])
        return self._memo["vocabulary"]

    def reader(self) -> Reader:
        """The readers of documentation text: muscle text with the lexicon, injectate text with
        the drug names (kb/reference/drugs.lp)."""
        if "reader" not in self._memo:
            drugs = Vocabulary([row[1] for row in self.table_rows("drug_name")], [])
            self._memo["reader"] = Reader(self.vocabulary(), drugs)
        return self._memo["reader"]

    def suggest(self, text: str) -> list[str]:
        """The lexicon names nearest to a text no term matched (rapidfuzz's weighted ratio)."""
        from rapidfuzz import fuzz, process

        cache = self._memo.setdefault("suggest", {})
        if text not in cache:
            names = self._memo.get("names")
            if names is None:
                names = self._memo["names"] = sorted({row[1] for name in ("muscle_name", "muscle_part_name",
                                                                          "group_name")
                                                      for row in self.table_rows(name)})
            found = process.extract(text, names, scorer=fuzz.WRatio, limit=3, score_cutoff=80)
            cache[text] = [name for name, _score, _index in found]
        return cache[text]

    def _lookup(self, table: str) -> dict[str, str]:
        if table not in self._memo:
            self._memo[table] = {str(row[1]): str(row[2]) for row in self.table_rows(table)}
        return self._memo[table]

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_memo"] = {}
        return state


# ---------------------------------------------------------------------- loading and the cache
def load(root: Path, cache: bool = True) -> KB:
    """The compiled KB, from the cache where it is current; `cache=False` neither reads nor
    writes it (a temporary KB folder would leave a compiled copy behind)."""
    root = root.resolve()
    main = root / "main.lp"
    if not main.is_file():
        raise KBError([f"{main}: the KB root file main.lp is missing"])
    version = _bridge_version()
    path = _cache_path(root) if cache else None
    if path is not None:
        kb = _read_cache(path, root, version)
        if kb is not None:
            return kb
    kb = compile_kb(root)
    if path is not None:
        _write_cache(path, kb, version)
    return kb


def _bridge_version() -> str:
    digest = hashlib.blake2b(digest_size=16)
    for module in sorted(Path(__file__).parent.glob("*.py")):
        digest.update(module.read_bytes())
    return digest.hexdigest()


def _cache_path(root: Path) -> Path | None:
    setting = os.environ.get("TPKB_CACHE")
    if setting is not None and setting.strip().lower() in ("", "0", "off", "no", "false"):
        return None
    base = Path(setting) if setting else Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "tpkb"
    name = hashlib.blake2b(str(root).encode(), digest_size=10).hexdigest()
    return base / f"kb-{name}.pickle"


def _fingerprint(root: Path, files: list[str]) -> dict[str, str]:
    """Each file's content hash; and, under "kb/payers/", the names of the overlays there (a
    new payer file is read without an #include, so it must refresh the cache too)."""
    out = {}
    for rel in files:
        path = root / rel.removeprefix("kb/")
        try:
            data = ("\n".join(sorted(p.name for p in path.glob("*.lp"))).encode() if rel.endswith("/")
                    else path.read_bytes())
            out[rel] = hashlib.blake2b(data, digest_size=16).hexdigest()
        except OSError:
            out[rel] = "missing"
    return out


def _read_cache(path: Path, root: Path, version: str) -> KB | None:
    try:
        with path.open("rb") as stream:
            stored_version, kb = pickle.load(stream)
    except Exception:  # noqa: BLE001 - a missing, stale or damaged cache is rebuilt
        return None
    if stored_version != version or not isinstance(kb, KB) or kb.root != root:
        return None
    if _fingerprint(root, list(kb.fingerprint)) != kb.fingerprint:
        return None
    return kb


def _write_cache(path: Path, kb: KB, version: str) -> None:
    import tempfile

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("wb", dir=path.parent, delete=False, prefix=".kb-") as tmp:
            pickle.dump((version, kb), tmp, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp.name, path)
    except OSError:
        pass  # no cache where the directory is not writable: each process compiles


# ---------------------------------------------------------------------- compiling
@dataclass
class Compiled:
    """What compiling a KB found. The KB is built even when there are errors, so that
    `tpkb lint` (bridge/lint.py) can report every problem of every stage in one run; the
    loader refuses a KB with any."""

    kb: KB
    statements: list[Statement]  # as read, files named kb/...
    parse_errors: list[str]  # clingo's messages while reading: kb/FILE:LINE:COL: text
    errors: list[str]  # every other check of the loader: kb/FILE:LINE: text
    register_problems: list[str] = field(default_factory=list)  # kb/sources.yaml's (lint reports them)


def compile_kb(root: Path) -> KB:
    compiled = check_kb(root)
    if compiled.parse_errors or compiled.errors:  # a parse error first: the rest may only follow from it
        raise KBError(compiled.parse_errors or compiled.errors)
    return compiled.kb


def check_kb(root: Path) -> Compiled:
    """Read the KB and run every check of the loader, keeping every message."""
    statements, messages = engine.read_kb(root / "main.lp")
    parse_errors = [f"kb/{file}:{line}{f':{col}' if col else ''}: {text}" if file else text
                    for file, line, col, text in messages]
    for stmt in statements:
        stmt.file = "kb/" + stmt.file
    files = list(dict.fromkeys(["kb/main.lp", PAYERS, f"kb/{REGISTER}",
                                *(s.file for s in statements)]))
    errors: list[str] = []
    notes = read_annotations(statements, errors)
    documented = read_docs(statements, errors)
    inputs = {s.signature for s in statements if s.kind == "defined" and s.file == SCHEMA and s.signature}
    public = {s.signature for s in statements if s.kind == "show" and s.file == SHOW and s.signature}
    tables = _tables(statements, notes, documented, errors)
    level = encounter_level(statements, inputs)
    rules, by_stmt = _rules(statements, notes, level, set(tables), errors)
    _check(statements, rules, tables, inputs, public, errors)
    program_strings = frozenset(_strings(statements))
    entries, register_problems = read_register(root)
    kb = KB(root=root, fingerprint=_fingerprint(root, files), rules={r.id: r for r in rules}, by_number=rules,
            docs=documented, inputs=inputs, public=public, tables=Tables(tables, program_strings),
            programs={mode: _program(statements, by_stmt, set(tables), public, mode) for mode in MODES},
            sources={s.id: s for s in entries})
    _check_registries(kb, errors)
    return Compiled(kb, statements, parse_errors, errors, register_problems)


def _tables(statements: list[Statement], notes: dict[tuple[str, int], Note], documented: dict[Signature, Doc],
            errors: list[str]) -> dict[Signature, Table]:
    tables: dict[Signature, Table] = {}
    docs_at = {(d.file, d.line): d for d in documented.values()}
    for stmt in statements:
        if not stmt.file.startswith(REFERENCE) or stmt.kind in ("comment", "defined"):
            continue
        if stmt.kind != "fact" or stmt.fact is None:
            errors.append(f"{stmt.file}:{stmt.line}: files in kb/reference/ hold facts only (ground, one atom); "
                          "put rules in kb/rules/")
            continue
        sig = (stmt.fact[0], len(stmt.fact) - 1)
        table = tables.get(sig)
        if table is None:
            table = tables[sig] = Table(sig, stmt.file, stmt.line)
        table.rows.append(stmt.fact)
    for stmt in statements:  # a payer file may add rows to a reference table (its profile row)
        if stmt.file.startswith(PAYERS) and stmt.kind == "fact" and stmt.fact is not None:
            sig = (stmt.fact[0], len(stmt.fact) - 1)
            if sig in tables:
                tables[sig].rows.append(stmt.fact)
                stmt.kind = "row"
    for (file, _end), note in notes.items():
        if not file.startswith(REFERENCE):
            continue
        doc = next((d for (f, line), d in docs_at.items() if f == file and line == note.line - 1), None)
        if set(note.keys) - {"_file"} != {"keys"} or doc is None:
            errors.append(f"{file}:{note.line}: in kb/reference/ the only annotation is '%@ keys: A, B', directly "
                          "under a table's %*! documentation")
            continue
        names = [n.strip() for n in note.keys["keys"].split(",") if n.strip()]
        unknown = [n for n in names if n not in doc.args]
        if unknown or not names:
            errors.append(f"{file}:{note.line}: %@ keys: {', '.join(unknown) or 'nothing'} is not an argument of "
                          f"{doc.name}({', '.join(doc.args)})")
            continue
        target = tables.get((doc.name, len(doc.args)))
        if target is not None:
            target.keys = tuple(doc.args.index(n) + 1 for n in names)
    return tables


def _rules(statements: list[Statement], notes: dict[tuple[str, int], Note], level: set[Signature],
           tables: set[Signature], errors: list[str]) -> tuple[list[Rule], dict[int, Rule]]:
    rules: list[Rule] = []
    by_stmt: dict[int, Rule] = {}
    seen: dict[str, Rule] = {}
    used_notes: set[tuple[str, int]] = set()
    for i, stmt in enumerate(statements):
        if stmt.file.startswith(REFERENCE) or stmt.kind not in ("rule", "fact"):
            continue
        key = (stmt.file, stmt.line - 1)
        note = notes.get(key)
        if note is not None:
            used_notes.add(key)
        if stmt.kind == "fact":
            if note is not None:
                errors.append(f"{stmt.file}:{stmt.line}: a %@ annotation stands above a fact; annotate rules only")
            continue
        if note is None:
            errors.append(f"{stmt.file}:{stmt.line}: rule has no %@ rule/label/source annotation above it: {stmt.text}")
            continue
        rule = make_rule(stmt, note, len(rules), level, errors)
        if rule is None:
            continue
        if rule.id in seen:
            errors.append(f"{stmt.file}:{stmt.line}: rule id '{rule.id}' is already used at {seen[rule.id].at}")
            continue
        seen[rule.id] = rule
        rules.append(rule)
        by_stmt[i] = rule
    for key, note in notes.items():
        if key not in used_notes and not key[0].startswith(REFERENCE):
            errors.append(f"{key[0]}:{note.line}: %@ annotation is not directly followed by a rule")
    return rules, by_stmt


def _check(statements: list[Statement], rules: list[Rule], tables: dict[Signature, Table],
           inputs: set[Signature], public: set[Signature], errors: list[str]) -> None:
    """A derived predicate that nothing uses is most likely misspelt; so is a body predicate
    that nothing defines, and a #show of a predicate nothing derives."""
    heads: set[Signature] = {(s.head.name, len(s.head.args)) for s in statements
                             if s.kind in ("rule", "fact") and s.head is not None}
    defined = {s.signature for s in statements if s.kind == "defined" and s.signature is not None}
    known = heads | set(tables) | inputs | defined
    names = sorted(f"{sig[0]}/{sig[1]}" for sig in known)
    used: set[Signature] = set()
    for stmt in statements:
        if stmt.kind != "rule":
            continue
        for sig in body_signatures(stmt):
            used.add(sig)
            if sig not in known:
                errors.append(f"{stmt.file}:{stmt.line}: {sig[0]}/{sig[1]} occurs in no rule head, table or input "
                              f"{did_you_mean(f'{sig[0]}/{sig[1]}', names) or ' (misspelt?)'}")
    for stmt in statements:
        if stmt.kind == "show" and stmt.signature and stmt.signature not in heads | set(tables):
            shown = f"{stmt.signature[0]}/{stmt.signature[1]}"
            hint = did_you_mean(shown, (f"{n}/{a}" for n, a in heads | set(tables))) or " (misspelt?)"
            errors.append(f"{stmt.file}:{stmt.line}: #show {shown}: no rule derives it{hint}")
    for rule in rules:
        if rule.signature not in used and rule.signature not in public:
            errors.append(f"{rule.at}: rule '{rule.id}' derives {rule.signature[0]}/{rule.signature[1]}, which no "
                          "rule uses and the KB does not show (misspelt?)")


def _check_registries(kb: KB, errors: list[str]) -> None:
    """Every finding id a rule derives has a severity, every reason id is registered."""
    severity = (kb.severities(), "has no severity in kb/reference/findings.lp")
    checks = {**{sig: [(at, *severity)] for sig, at in FINDING_ID_AT.items()},
              **{sig: [(at, kb.reasons(), "is not in kb/reference/reasons.lp")] for sig, at in REASON_ID_AT.items()}}
    checks[("not_covered", 3)].append((FINDING_ID_AT[("not_covered", 3)], kb.coverage_denials(),
                                       "has no basis in kb/reference/coverage.lp (coverage_denial)"))
    for rule, position, registry, missing in ((r, *c) for r in kb.by_number for c in checks.get(r.signature, ())):
        ident = constants_in_head(rule, position)
        if ident is None:
            errors.append(f"{rule.at}: rule '{rule.id}': the id in its head must be written out (a constant)")
        elif ident not in registry:
            errors.append(f"{rule.at}: rule '{rule.id}': '{ident}' {missing}{did_you_mean(ident, registry)}")


def _strings(statements: list[Statement]) -> set[str]:
    """Every string written in the program (codes a rule can derive, above all)."""
    out: set[str] = set()
    for stmt in statements:
        if stmt.file.startswith(REFERENCE):
            continue
        atoms: list[Pat] = [stmt.head] if stmt.head else []
        for lit in stmt.body:
            atoms.extend([lit.atom] if lit.atom else [])
            atoms.extend(lit.elements)
        for atom in atoms:
            out.update(strings(_values(atom.args)))
    return out


def _values(args: tuple) -> list:
    out: list = []
    for a in args:
        if isinstance(a, Pat):
            out.extend(_values(a.args))
        elif not isinstance(a, Var):
            out.append(a)
    return out


# ---------------------------------------------------------------------- program texts
def _program(statements: list[Statement], by_stmt: dict[int, Rule], tables: set[Signature],
             public: set[Signature], mode: str) -> Program:
    lines: list[str] = []
    origins: list[tuple[str, int]] = []

    def emit(text: str, stmt: Statement | None) -> None:
        for part in text.splitlines() or [""]:
            lines.append(part)
            origins.append((stmt.file, stmt.line) if stmt else ("kb (added by the bridge)", 0))

    arities: set[int] = set()
    for i, stmt in enumerate(statements):
        if stmt.file.startswith(REFERENCE) or stmt.kind in ("comment", "row"):
            continue
        rule = by_stmt.get(i)
        if stmt.kind == "show":
            if mode == "plain" or (mode == "messages" and stmt.signature not in MESSAGE_HIDDEN):
                emit(stmt.text, stmt)
        elif rule is not None and (mode == "full" or (mode == "messages" and rule.signature in MESSAGE_HEADS)):
            fired = firing(rule)
            arities.add(len(rule.variables) + (2 if rule.encounter is None else 1))
            emit(f"{fired} :- {'; '.join(stmt.body_text)}.", stmt)
            emit(f"{stmt.head_text} :- {fired}.", stmt)
        else:
            emit(stmt.text, stmt)
    for name, arity in sorted(tables):
        emit(f"#defined {name}/{arity}.", None)
    for arity in sorted(arities):
        emit(f"#show {FIRED}/{arity}.", None)
    return Program("\n".join(lines) + "\n", tuple(origins))


def firing(rule: Rule) -> str:
    """The firing atom of a rule as program text: encounter (or 0), rule number, values."""
    others = [v for v in rule.variables if v != rule.encounter]
    args = [rule.encounter or "0", str(rule.number), *others]
    return f"{FIRED}({','.join(args)})"
