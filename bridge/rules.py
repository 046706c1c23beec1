"""The rules of a KB as the bridge knows them: each annotated rule with its id, label,
source and role, its head and body as plain terms, and the checks an analyst's edit must
pass (each problem one message naming the .lp file and line).

Annotations. A rule in kb/ is preceded by its annotation lines:

    %@ rule: calls_for_20553
    %@ label: {N} muscles injected (3 or more) call for 20553
    %@ source: [cpt] 20553; [seed] Coding Guidelines bullet 1
    calls_for(E, "20553") :- injected_count(E, N), N >= 3.

and optionally `%@ kind: plumbing` for a rule that only moves data along (reading text,
normalising a side, joining a table): explanations fold such a rule into the policy rule
above it. In kb/reference/, `%@ keys: A, B` under a table's %*! documentation says that
a batch needs only the rows whose A and B occur in it (bridge/tables.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from .engine import Literal, Statement
from .terms import ANY, Atom, Const, Op, Other, Pat, Value, Var, instantiate_atom, variables

ANNOTATION_KEYS = ("rule", "label", "source", "kind")
KINDS = ("policy", "plumbing")
LABEL_FORMATS = ("date", "tenths", "session")
_ANNOTATION = re.compile(r"%@\s*(\w+)\s*:\s*(.*?)\s*")
PLACEHOLDER = re.compile(r"\{(\w+)(?::(\w+))?\}")
_DOC = re.compile(r"%\*!\s*(\w+)\(([^)]*)\)\s*:(.*?)\*%", re.S)


@dataclass(frozen=True)
class Rule:
    id: str
    number: int  # the firing atom carries this number, not the id
    label: str
    source: str
    plumbing: bool
    file: str  # kb/rules/codes.lp
    line: int
    text: str
    variables: tuple[str, ...]  # the encounter variable first, where the rule has one
    encounter: str | None  # name of the encounter variable
    head: Pat
    body: tuple[Literal, ...]
    # How to build the head from the firing's values: per argument, the index of its
    # variable in `variables`, or a Fixed value. None where an argument is a compound term.
    template: tuple | None = None
    # The same for each positive or negative atom of the body (None: a compound argument;
    # an argument no variable of the rule binds is ANY): explanations read premises fast.
    body_templates: tuple = ()

    @property
    def at(self) -> str:
        return f"{self.file}:{self.line}"

    @property
    def signature(self) -> tuple[str, int]:
        return (self.head.name, len(self.head.args))

    def bindings(self, values: tuple) -> dict[str, Value]:
        return dict(zip(self.variables, values))

    def head_atom(self, values: tuple) -> Atom:
        """The atom a firing with these values derived."""
        if self.template is None:
            return instantiate_atom(self.head, self.bindings(values))  # type: ignore[return-value]
        return (self.head.name, *[values[a] if type(a) is int else a.value for a in self.template])

    def premise(self, index: int, atom: Pat, values: tuple) -> Atom | Pat:
        """Body atom `index` (a positive or negative literal, or an aggregate element) under a
        firing's values: a ground atom, or a Pat where an argument stays unknown."""
        template = self.body_templates[index] if index < len(self.body_templates) else None
        if template is None:
            return instantiate_atom(atom, self.bindings(values))
        args = tuple(values[a] if type(a) is int else a.value for a in template)
        if ANY in args:
            return Pat(atom.name, args)
        return (atom.name, *args)


@dataclass(frozen=True)
class Fixed:
    """A head argument written out in the rule (a constant, a string, a number)."""

    value: Value


def _template(head: Pat, names: tuple[str, ...], unbound: bool = False) -> tuple | None:
    """Per argument of an atom, the index of its variable in `names` or a Fixed value; with
    `unbound`, a variable not in `names` is Fixed(ANY). None for a compound argument."""
    out: list = []
    for arg in head.args:
        if isinstance(arg, Var) and arg.name in names:
            out.append(names.index(arg.name))
        elif isinstance(arg, Var) and unbound:
            out.append(Fixed(ANY))
        elif isinstance(arg, (Var, Pat, Op, Other)):
            return None
        else:
            out.append(Fixed(arg))
    return tuple(out)


def _body_templates(body: tuple[Literal, ...], names: tuple[str, ...]) -> tuple:
    """Templates of the body's atoms, in the order explanations visit them: each atom
    literal, then the elements of each aggregate."""
    atoms = [lit.atom for lit in body if lit.kind == "atom" and lit.atom is not None]
    atoms += [element for lit in body if lit.kind == "aggregate" for element in lit.elements]
    return tuple(_template(atom, names, unbound=True) for atom in atoms)


@dataclass(frozen=True)
class Doc:
    """%*! pred(A, B): a reading with {A} and {B} | what it means when it does not hold. *%

    The second reading, after ' | ', is optional; without it a negative condition reads
    'not: ' and the first."""

    name: str
    args: tuple[str, ...]
    reading: str
    file: str
    line: int
    negative: str = ""


@dataclass(frozen=True)
class Note:
    """The %@ annotation block above a statement."""

    keys: dict
    line: int  # of its first line
    end: int  # of its last line


def read_annotations(statements: list[Statement], errors: list[str]) -> dict[tuple[str, int], Note]:
    """The %@ blocks of every file, keyed by (file, last line of the block)."""
    notes: dict[tuple[str, int], Note] = {}
    current: Note | None = None
    for stmt in statements:
        if stmt.kind != "comment" or stmt.block or not stmt.comment.startswith("%@"):
            current = None
            continue
        match = _ANNOTATION.fullmatch(stmt.comment)
        where = f"{stmt.file}:{stmt.line}"
        if not match:
            errors.append(f"{where}: annotation lines read '%@ key: value' (keys: {', '.join(ANNOTATION_KEYS)}, keys)")
            current = None
            continue
        key, value = match.groups()
        if current is None or current.end != stmt.line - 1 or (current.keys.get("_file") != stmt.file):
            current = Note({"_file": stmt.file}, stmt.line, stmt.line)
        if key in current.keys:
            errors.append(f"{where}: annotation key '{key}' given twice")
        current.keys[key] = value
        notes.pop((stmt.file, current.end), None)
        current = Note(current.keys, current.line, stmt.line)
        notes[(stmt.file, stmt.line)] = current
    return notes


def read_docs(statements: list[Statement], errors: list[str]) -> dict[tuple[str, int], Doc]:
    out: dict[tuple[str, int], Doc] = {}
    for stmt in statements:
        if stmt.kind != "comment" or not stmt.comment.startswith("%*!"):
            continue
        match = _DOC.fullmatch(stmt.comment.strip())
        if not match:
            errors.append(f"{stmt.file}:{stmt.line}: %*! documentation reads '%*! pred(A, B): reading with {{A}}. *%'")
            continue
        name, args_text, text = match.group(1), match.group(2), " ".join(match.group(3).split())
        args = tuple(a.strip() for a in args_text.split(",") if a.strip())
        reading, _, negative = text.rstrip(".").partition(" | ")
        for var, _fmt in PLACEHOLDER.findall(text):
            if var not in args:
                errors.append(f"{stmt.file}:{stmt.line}: %*! {name}: {{{var}}} is not an argument")
        out[(name, len(args))] = Doc(name, args, reading.strip(), stmt.file, stmt.line, negative.strip())
    return out


def make_rule(stmt: Statement, note: Note, number: int, encounter_level: set[tuple[str, int]],
              errors: list[str]) -> Rule | None:
    where = f"{stmt.file}:{stmt.line}"
    misspelt = set()
    for key in note.keys:
        if key != "_file" and key not in ANNOTATION_KEYS:
            meant = nearest(key, ANNOTATION_KEYS)
            misspelt.add(meant)
            hint = f" (did you mean '{meant}'?)" if meant else ""
            errors.append(f"{stmt.file}:{note.line}: unknown annotation key '{key}'{hint} "
                          f"(keys: {', '.join(ANNOTATION_KEYS)})")
    missing = [k for k in ("rule", "label", "source") if not note.keys.get(k)]
    if missing:
        if set(missing) - misspelt:  # a key written wrong is reported once, above
            errors.append(f"{where}: annotation lacks {', '.join(missing)}")
        return None
    kind = note.keys.get("kind", "policy")
    if kind not in KINDS:
        errors.append(f"{where}: unknown rule kind '{kind}'{did_you_mean(kind, KINDS)} (kinds: {', '.join(KINDS)})")
    rid = note.keys["rule"]
    if stmt.head is None:
        errors.append(f"{where}: rule '{rid}': the head must be a single atom (the KB is deductive)")
        return None
    names = global_variables(stmt)
    evar = encounter_variable(stmt, encounter_level)
    if evar is not None:
        first = stmt.head.args[0] if stmt.head.args else None
        if not (isinstance(first, Var) and first.name == evar):
            errors.append(f"{where}: rule '{rid}': the head must take the encounter id {evar} as its first "
                          "argument (facts would leak between encounters)")
        names = (evar, *[n for n in names if n != evar])
    for name, fmt in PLACEHOLDER.findall(note.keys["label"]):
        if name not in names:
            errors.append(f"{where}: rule '{rid}': label names {{{name}}}, which is not a variable of the rule")
        if fmt and fmt not in LABEL_FORMATS:
            errors.append(f"{where}: rule '{rid}': unknown label format ':{fmt}' (known: {', '.join(LABEL_FORMATS)})")
    return Rule(id=rid, number=number, label=note.keys["label"], source=note.keys["source"],
                plumbing=kind == "plumbing", file=stmt.file, line=stmt.line, text=stmt.text, variables=names,
                encounter=evar, head=stmt.head, body=stmt.body, template=_template(stmt.head, names),
                body_templates=_body_templates(stmt.body, names))


def nearest(word: str, choices: Iterable[str]) -> str | None:
    """The name nearest to a misspelt `word` (rapidfuzz's weighted ratio), if any is near."""
    from rapidfuzz import fuzz, process

    found = process.extractOne(word, [c for c in choices if c != word], scorer=fuzz.WRatio, score_cutoff=80)
    return found[0] if found else None


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """' (did you mean 'x'?)' with the name nearest to `word`, or ''."""
    meant = nearest(word, choices)
    return f" (did you mean '{meant}'?)" if meant else ""


def global_variables(stmt: Statement) -> tuple[str, ...]:
    """Variables bound for the whole rule: head, plain body literals and aggregate guards
    (not the local variables of aggregate elements)."""
    names: list[str] = []
    if stmt.head is not None:
        variables(stmt.head, names)
    for lit in stmt.body:
        if lit.kind == "atom" and lit.atom is not None:
            variables(lit.atom, names)
        elif lit.kind in ("aggregate", "compare"):
            for term in lit.guards:
                variables(term, names)
    return tuple(names)


def encounter_variable(stmt: Statement, encounter_level: set[tuple[str, int]]) -> str | None:
    """The variable in the first argument of the rule's positive encounter-level body atoms."""
    for lit in stmt.body:
        if lit.kind == "atom" and not lit.negated and lit.atom is not None and lit.atom.args and \
                (lit.atom.name, len(lit.atom.args)) in encounter_level and isinstance(lit.atom.args[0], Var):
            return lit.atom.args[0].name
    return None


def encounter_level(statements: list[Statement], inputs: set[tuple[str, int]]) -> set[tuple[str, int]]:
    """Predicates about one encounter: the inputs, and every head of a rule whose body
    reads one (to a fixpoint)."""
    level = set(inputs)
    changed = True
    while changed:
        changed = False
        for stmt in statements:
            if stmt.kind != "rule" or stmt.head is None:
                continue
            sig = (stmt.head.name, len(stmt.head.args))
            if sig not in level and encounter_variable(stmt, level) is not None:
                level.add(sig)
                changed = True
    return level


def body_signatures(stmt: Statement) -> Iterable[tuple[str, int]]:
    for lit in stmt.body:
        if lit.atom is not None:
            yield (lit.atom.name, len(lit.atom.args))
        for element in lit.elements:
            yield (element.name, len(element.args))


# Where a message rule's head holds its id: a finding (finding/3, and not_covered/3, the
# coverage layer's findings), or an audit reason.
FINDING_ID_AT: dict[tuple[str, int], int] = {("finding", 3): 1, ("not_covered", 3): 2}
REASON_ID_AT: dict[tuple[str, int], int] = {("reason", 4): 2}


def finding_id(rule: Rule) -> str | None:
    position = FINDING_ID_AT.get(rule.signature)
    return constants_in_head(rule, position) if position is not None else None


def reason_id(rule: Rule) -> str | None:
    position = REASON_ID_AT.get(rule.signature)
    return constants_in_head(rule, position) if position is not None else None


def constants_in_head(rule: Rule, position: int) -> str | None:
    """The constant a rule's head has at `position` (a finding id, a reason id), if any."""
    args = rule.head.args
    if len(args) > position and isinstance(args[position], Const):
        return args[position].name
    return None


