"""`tpkb lint`: every problem of a KB in one run, one line each, `kb/FILE:LINE[:COL]: message`
(the form editors and CI annotate), so that an analyst fixes them all at once rather than
one load error at a time.

The loader's own checks (bridge/kb.py `check_kb`, bridge/rules.py, bridge/facts.py
`check_inputs`) run unchanged and all of them report: lint only adds what the loader does
not refuse a KB for:

- the grounding check: the plain program grounded once with every table and no encounter,
  so that clingo's messages (an atom no rule derives, an unsafe variable) name a file:line;
- `%@ source:` lines that cite nothing (empty or a placeholder) and, once kb/sources.yaml
  exists, citations that are not register ids (bridge/sources.py reads the register);
- policy text (`%* ... *%`) with nothing under it, inputs no rule reads, findings and
  reasons registered but never derived, codes in table rows that no code table lists, and
  .lp files the loader never reads.

Each check is written once: the loader's are called here, not copied. After a syntax
error the statement clingo could not read is missing, so only the checks within a file
run (and nothing is said about its annotation); the rest wait until it parses.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from . import engine
from .engine import KBError, SolveError, Statement
from .facts import check_inputs
from .kb import KB, PAYERS, REFERENCE, SCHEMA, check_kb
from .model import _CODE as CODE_FORM  # the CPT/HCPCS form the loader accepts in input
from .rules import FINDING_ID_AT, REASON_ID_AT, body_signatures, constants_in_head, did_you_mean, nearest
from .sources import REGISTER, citations
from .tables import Signature

RULES = "kb/rules/"
_AT = re.compile(r"(?P<file>[^\s:][^:]*?):(?P<line>\d+)(?::(?P<col>\d+))?: (?P<message>.*)", re.S)
# A source line that cites nothing. Compared whole, lower case, without surrounding
# punctuation: "TODO" and "n/a." are placeholders, "CPT 20553; TODO: the bullet" is not.
PLACEHOLDERS = {"todo", "tbd", "tba", "tbc", "fixme", "xxx", "source", "sources", "none", "n/a", "na", "nil", "null",
                "unknown", "?", "citation needed", "ref", "reference", "see above", "same", "same as above", "ditto"}
_ONLY_PUNCTUATION = re.compile(r"[\W_]*")
_INTERNAL = re.compile(r"<block>:\d+:\d+(?:-\d+)?:\s*|\[#inc_base\];\s*")


@dataclass(frozen=True, order=True)
class Problem:
    file: str
    line: int
    col: int
    message: str

    def __str__(self) -> str:
        where = self.file + (f":{self.line}" if self.line else "") + (f":{self.col}" if self.col else "")
        return f"{where}: {self.message}"


def parse(message: str) -> Problem:
    """A loader message 'kb/FILE:LINE[:COL]: text' as a Problem (one without a line: line 0)."""
    match = _AT.fullmatch(message)
    if match is None:
        file, _, text = message.partition(": ")
        return Problem(file if text else "kb", 0, 0, text or message)
    return Problem(match["file"], int(match["line"]), int(match["col"] or 0), " ".join(match["message"].split()))


def lint(root: Path) -> list[Problem]:
    """Every problem of the KB in folder `root`, sorted by file and line."""
    root = Path(root).resolve()
    if not (root / "main.lp").is_file():
        return [Problem(f"{root}/main.lp", 0, 0, "the KB root file main.lp is missing")]
    compiled = check_kb(root)
    kb, statements = compiled.kb, compiled.statements
    found = [parse(m) for m in compiled.errors]
    found += _inputs_mapping(kb, statements)
    found += _sources(kb, compiled.register_problems, statements)
    found += _orphan_text(statements)
    if compiled.parse_errors:
        # What clingo could not read is missing (and the payer overlays are not read after
        # an error): the checks across files wait until it parses, and a problem where the
        # unreadable statement stood (its annotation) is not reported.
        parse_errors = [parse(m) for m in compiled.parse_errors]
        return sorted({p for p in found if not _shadowed(p, parse_errors, statements)} | set(parse_errors))
    found += _unread_inputs(kb, statements)
    found += _never_derived(kb, statements)
    found += _unknown_codes(statements)
    found += _unread_files(root, statements)
    at = {(p.file, p.line) for p in found}
    found += [p for p in _grounding(kb) if (p.file, p.line) not in at]  # already said, at that line
    return sorted(set(found))


# ---------------------------------------------------------------------- the checks
def _inputs_mapping(kb: KB, statements: list[Statement]) -> list[Problem]:
    """bridge/facts.py's check that the inputs and its mapping agree, at the #defined line."""
    lines = {s.signature: s.line for s in statements if s.kind == "defined" and s.file == SCHEMA}
    out = []
    for message in check_inputs(kb.inputs):
        problem = parse(message)
        named = re.search(r"input (\w+)/(\d+)", problem.message)
        if problem.file == SCHEMA and named:
            problem = Problem(SCHEMA, lines.get((named[1], int(named[2])), 0), 0, problem.message)
        out.append(problem)
    return out


def _grounding(kb: KB) -> list[Problem]:
    """Clingo's messages on grounding the plain program with every table and no encounter."""
    try:
        engine.solve(kb.program("plain"), [], kb.tables.all_rows())
    except KBError as exc:
        # clingo's notes name lines of the program text ("<block>:103:46-47: note: ..."):
        # the message's own file:line says where; its internal include marker goes too.
        return [parse(_INTERNAL.sub("", m)) for m in exc.messages]
    except SolveError as exc:
        return [Problem("kb/main.lp", 1, 0, f"with no encounter, {exc}")]
    return []


def _source_lines(statements: list[Statement]) -> list[tuple[Statement, str]]:
    """Each `%@ source:` annotation line and its text."""
    out = []
    for stmt in statements:
        if stmt.kind == "comment" and not stmt.block:
            match = re.fullmatch(r"%@\s*source\s*:\s*(.*?)\s*", stmt.comment)
            if match:
                out.append((stmt, match[1]))
    return out


def _sources(kb: KB, register_problems: list[str], statements: list[Statement]) -> list[Problem]:
    """A source that cites nothing; with a register, a citation that is not a register id.
    (An empty source is the loader's: 'annotation lacks source'.)"""
    out = [parse(m) for m in register_problems]
    ids = set(kb.sources)
    check_ids = bool(ids)  # no register, or one that cannot be read (reported once, above)
    for stmt, text in _source_lines(statements):
        if not text:
            continue
        if _placeholder(text):
            out.append(Problem(stmt.file, stmt.line, 0, f"source '{text}' is a placeholder: cite where the policy "
                               "comes from"))
            continue
        if not check_ids:
            continue
        cited = citations(text)
        if not cited:
            out.append(Problem(stmt.file, stmt.line, 0, f"source cites no register id: write [id] from kb/{REGISTER}, "
                               "then the detail (e.g. '[cpt] 20553')"))
        for ident in cited:
            if ident not in ids:
                out.append(Problem(stmt.file, stmt.line, 0, f"source cites [{ident}], which is not an id in "
                                   f"kb/{REGISTER}{did_you_mean(ident, ids)}"))
    return out


def _placeholder(text: str) -> bool:
    plain = " ".join(text.lower().split()).strip(" .:;,!")
    return plain in PLACEHOLDERS or bool(_ONLY_PUNCTUATION.fullmatch(plain)) or bool(re.fullmatch(r"x+", plain))


def _orphan_text(statements: list[Statement]) -> list[Problem]:
    """A `%* ... *%` policy block in kb/rules/ or kb/payers/ with no rule, fact or table row
    under it before the next such block (or the end of the file). The file's header block
    (its first statement) and `%*!` documentation are not policy text."""
    out = []
    for file, stmts in _by_file(statements).items():
        if not file.startswith((RULES, PAYERS)):
            continue
        pending: Statement | None = None
        for index, stmt in enumerate(stmts):
            if _policy_text(stmt):
                if pending is not None:
                    out.append(_orphan(pending))
                pending = None if index == 0 else stmt
            elif stmt.kind in ("rule", "fact", "row"):
                pending = None
        if pending is not None:
            out.append(_orphan(pending))
    return out


def _policy_text(stmt: Statement) -> bool:
    return stmt.kind == "comment" and stmt.block and not stmt.comment.startswith("%*!")


def _orphan(stmt: Statement) -> Problem:
    return Problem(stmt.file, stmt.line, 0, "policy text with no rule, fact or table row under it (before the next "
                   "%* block or the end of the file)")


def _unread_inputs(kb: KB, statements: list[Statement]) -> list[Problem]:
    """An input of kb/schema.lp that no rule body reads: a field filled for nothing."""
    used = {sig for s in statements if s.kind == "rule" for sig in body_signatures(s)}
    return [Problem(s.file, s.line, 0, f"input {s.signature[0]}/{s.signature[1]} is read by no rule")
            for s in statements if s.kind == "defined" and s.file == SCHEMA and s.signature in kb.inputs
            and s.signature not in used]


# registry table -> (derived predicate, position of the id in its head) per way of deriving it
REGISTRIES: dict[Signature, tuple[str, dict[Signature, int]]] = {
    ("finding_severity", 2): ("finding", FINDING_ID_AT),
    ("audit_reason", 2): ("audit reason", REASON_ID_AT),
}


def _never_derived(kb: KB, statements: list[Statement]) -> list[Problem]:
    """A finding or reason registered that no rule derives (misspelt, or left behind). The
    reverse, a derived id with no registry row, is the loader's: where it names this row as
    the one meant, the row is not reported again."""
    out = []
    for registry, (what, ways) in REGISTRIES.items():
        rows = [s for s in statements if s.fact is not None and s.file.startswith(REFERENCE)
                and (s.fact[0], len(s.fact) - 1) == registry]
        registered = {str(s.fact[1]) for s in rows if s.fact is not None}
        derived = {ident for rule in kb.by_number if rule.signature in ways
                   for ident in [constants_in_head(rule, ways[rule.signature])] if ident is not None}
        meant = {nearest(ident, registered) for ident in derived - registered}
        heads = " or ".join(f"{name}/{arity}" for name, arity in ways)
        for stmt in rows:
            assert stmt.fact is not None
            ident = str(stmt.fact[1])
            if ident not in derived and ident not in meant:
                out.append(Problem(stmt.file, stmt.line, 0, f"{what} '{ident}' is registered but no rule derives it "
                                   f"({heads})"))
    return out


# Which table rows name codes, and which tables say what a code is. code/4 is the KB's
# code table. Two other tables of kb/reference/ list codes on purpose outside it:
# session_kind/2 (codes a prior session may report, acupuncture's 978xx among them, which
# the KB never codes) and other_injection_codes/3 (ranges of other procedures, compared as
# text). The other rows of kb/reference/ (drug codes, guidance, add-ons, descriptions,
# components) are about codes the KB reports, so they may only name codes these define.
# A payer row may also name a code the KB does not code but a claim can bill (Medicare's
# status of 97014): that is a real code if CMS's own tables list it, the MUE (mue/6) or
# NCCI pairs (ptp/7). Those CMS imports are not checked themselves (their pairs name any
# code CMS pairs with ours), nor are diagnosis rows (ICD-10: a letter and digits can look
# like HCPCS).
CODE_LISTS = {("code", 4): (1,), ("session_kind", 2): (1,)}
CODE_RANGES = ("other_injection_codes", 3)
CMS_LISTS = {("mue", 6): (1,), ("ptp", 7): (1, 2)}
NOT_CHECKED = {("ptp_release", 3), ("mue_release", 2)}


def _unknown_codes(statements: list[Statement]) -> list[Problem]:
    rows = [(s, s.fact) for s in statements if s.fact is not None and s.file.startswith((REFERENCE, PAYERS))]
    known: set[str] = set()
    cms: set[str] = set()
    ranges: list[tuple[str, str]] = []
    for _stmt, fact in rows:
        sig = (fact[0], len(fact) - 1)
        if sig in CODE_LISTS or sig in CMS_LISTS:
            (known if sig in CODE_LISTS else cms).update(str(fact[i]) for i in {**CODE_LISTS, **CMS_LISTS}[sig])
        elif sig == CODE_RANGES:
            ranges.append((str(fact[1]), str(fact[2])))
    out = []
    for stmt, fact in rows:
        sig = (fact[0], len(fact) - 1)
        if sig in CODE_LISTS or sig in CMS_LISTS or sig == CODE_RANGES or sig in NOT_CHECKED or "diagnosis" in sig[0]:
            continue
        payer = stmt.file.startswith(PAYERS)
        for value in fact[1:]:
            if isinstance(value, str) and CODE_FORM.fullmatch(value) and value not in known and \
                    not (payer and value in cms) and not any(lo <= value <= hi for lo, hi in ranges):
                tables = "code/4, session_kind/2, other_injection_codes/3" + (", mue/6 or ptp/7" if payer else "")
                out.append(Problem(stmt.file, stmt.line, 0, f"{sig[0]}: code \"{value}\" is in no code table "
                                   f"({tables})"))
    return out


def _unread_files(root: Path, statements: list[Statement]) -> list[Problem]:
    """An .lp file under the KB folder that the loader never reads: neither included from
    main.lp nor a payer overlay (kb/payers/*.lp, read without an #include)."""
    read = {s.file for s in statements} | {"kb/main.lp"}
    out = []
    for path in sorted(root.rglob("*.lp")):
        rel = "kb/" + path.relative_to(root).as_posix()
        if rel not in read and path.read_text(encoding="utf-8", errors="replace").strip():
            out.append(Problem(rel, 1, 0, "the loader never reads this file: #include it from kb/main.lp (payer "
                               "overlays in kb/payers/ are read without one)"))
    return out


# ---------------------------------------------------------------------- helpers
def _by_file(statements: list[Statement]) -> dict[str, list[Statement]]:
    out: dict[str, list[Statement]] = {}
    for stmt in statements:
        out.setdefault(stmt.file, []).append(stmt)
    for stmts in out.values():
        stmts.sort(key=lambda s: s.line)
    return out


def _shadowed(problem: Problem, parse_errors: list[Problem], statements: list[Statement]) -> bool:
    """Whether a problem stands where a statement clingo could not parse was: between the
    last statement before the error and the next one after it (its annotation lines)."""
    for error in parse_errors:
        if error.file != problem.file:
            continue
        before = [s.end for s in statements if s.file == error.file and s.kind != "comment" and s.end < error.line]
        after = [s.line for s in statements if s.file == error.file and s.line > error.line]
        if max(before, default=0) < problem.line < min(after, default=1 << 30):
            return True
    return False
