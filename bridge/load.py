"""Load and validate case and encounter files (YAML, JSON, JSONL) into typed objects.

Every problem becomes one InputProblem naming the file, line, case and field; a file with
problems is skipped whole, and the rest of the batch is still coded.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError

SIDES = ("left", "right", "bilateral")
MODALITIES = ("ultrasound", "fluoroscopy", "ct", "mri")
SUFFIXES = (".yaml", ".yml", ".json", ".jsonl")

_CODE = re.compile(r"^(\d{4}[0-9A-Z]|[A-Z]\d{4})$")
_MODIFIER = re.compile(r"^[0-9A-Z]{2}$")
_ICD10 = re.compile(r"^[A-TV-Z]\d[0-9A-Z](\.[0-9A-Z]{1,4})?$")

CASE_KEYS = {"name", "description", "source", "tags", "encounter", "expect"}
ENCOUNTER_KEYS = {"id", "date", "payer", "diagnoses", "procedures", "guidance", "billed"}
PROCEDURE_KEYS = {"muscle", "side", "trigger_points", "injectate"}
GUIDANCE_KEYS = {"modality", "necessity", "images_recorded"}
BILLED_KEYS = {"code", "units", "modifiers"}
EXPECT_KEYS = {"lines", "findings", "no_findings", "rejected", "fired", "not_fired"}
LINE_KEYS = {"code", "units", "modifiers"}


@dataclass(frozen=True)
class InputProblem:
    file: str
    line: int | None
    case: str | None
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        case = f" case '{self.case}':" if self.case else ""
        fld = f" {self.field}:" if self.field else ""
        return f"{where}:{case}{fld} {self.message}"


@dataclass
class Procedure:
    muscle: str
    side: str | None
    trigger_points: int
    injectate: list[str]


@dataclass
class Guidance:
    modality: str
    necessity: str | None
    images_recorded: bool


@dataclass
class BilledLine:
    code: str
    units: int
    modifiers: list[str]


@dataclass
class Encounter:
    id: str
    date: dt.date
    payer: str
    diagnoses: list[str]
    procedures: list[Procedure]
    guidance: list[Guidance]
    billed: list[BilledLine] | None
    file: str = ""
    line: int | None = None
    key: str = ""  # the id used in facts; unique within one batch


@dataclass
class ExpectedLine:
    code: str
    units: int = 1
    modifiers: tuple[str, ...] = ()


@dataclass
class Case:
    name: str
    description: str
    source: str
    tags: list[str]
    encounter: Encounter
    expect: dict[str, Any]
    file: str
    line: int | None


@dataclass
class Loaded:
    cases: list[Case] = field(default_factory=list)
    encounters: list[Encounter] = field(default_factory=list)
    problems: list[InputProblem] = field(default_factory=list)


class _Invalid(Exception):
    pass


class _Reader:
    """Validates one document (a case or an encounter), collecting one problem per field."""

    def __init__(self, file: str, line: int | None, case: str | None, profiles: Iterable[str]):
        self.file, self.base_line, self.case = file, line, case
        self.profiles = set(profiles)
        self.problems: list[InputProblem] = []

    # -- helpers
    def problem(self, node, key, fld: str, message: str) -> None:
        self.problems.append(InputProblem(self.file, _line_of(node, key, self.base_line), self.case, fld, message))

    def mapping(self, node, fld: str, allowed: set[str], parent=None, key=None) -> dict | None:
        if not isinstance(node, dict):
            self.problem(parent, key, fld, f"must be a mapping, not {_kind(node)}")
            return None
        for k in node:
            if k not in allowed:
                self.problem(node, k, f"{fld}.{k}" if fld else str(k),
                             f"unknown key (allowed: {', '.join(sorted(allowed))})")
        return node

    def seq(self, node, key, fld: str, required=False) -> list | None:
        if key not in node or node[key] is None:
            if required:
                self.problem(node, None, fld, "required")
            return None
        value = node[key]
        if not isinstance(value, list):
            self.problem(node, key, fld, f"must be a list, not {_kind(value)}")
            return None
        return value

    def text(self, node, key, fld: str, required=False) -> str | None:
        if key not in node or node[key] is None:
            if required:
                self.problem(node, None, fld, "required")
            return None
        value = node[key]
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            self.problem(node, key, fld, f"must be text, not {_kind(value)}")
            return None
        value = str(value).strip()
        if required and not value:
            self.problem(node, key, fld, "must not be empty")
            return None
        return value

    def integer(self, node, key, fld: str, default: int, low: int, high: int) -> int:
        if key not in node or node[key] is None:
            return default
        value = node[key]
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            self.problem(node, key, fld, f"must be a whole number from {low} to {high}, not {value!r}")
            return default
        return value

    def code(self, node, key, fld: str) -> str | None:
        value = self.text(node, key, fld, required=True)
        if value is None:
            return None
        value = value.upper()
        if not _CODE.match(value):
            self.problem(node, key, fld, f"'{value}' is not a CPT or HCPCS code (5 characters, e.g. 20553 or J3301)")
            return None
        return value

    def modifiers(self, node, key, fld: str) -> list[str]:
        values = self.seq(node, key, fld) or []
        out = []
        for i, m in enumerate(values):
            text = str(m).strip().upper() if isinstance(m, (str, int)) and not isinstance(m, bool) else None
            if not text or not _MODIFIER.match(text):
                self.problem(values, i, f"{fld}[{i}]", f"{m!r} is not a modifier (two letters or digits, e.g. 59 or XS)")
                continue
            out.append(text)
        return out

    # -- documents
    def encounter(self, node, fld: str, default_id: str, parent=None, key=None) -> Encounter | None:
        node = self.mapping(node, fld, ENCOUNTER_KEYS, parent, key)
        if node is None:
            return None
        p = (fld + ".") if fld else ""
        enc_id = self.text(node, "id", p + "id") or default_id
        date = self.date(node, p + "date")
        payer = self.text(node, "payer", p + "payer") or "cpt"
        if self.profiles and payer not in self.profiles:
            self.problem(node, "payer", p + "payer",
                         f"unknown payer profile '{payer}' (known: {', '.join(sorted(self.profiles))})")
        diagnoses = []
        for i, d in enumerate(self.seq(node, "diagnoses", p + "diagnoses") or []):
            text = str(d).strip().upper() if isinstance(d, str) else None
            if not text or not _ICD10.match(text):
                self.problem(node["diagnoses"], i, f"{p}diagnoses[{i}]", f"{d!r} is not an ICD-10-CM code (e.g. M79.12)")
            else:
                diagnoses.append(text)
        procedures = []
        items = self.seq(node, "procedures", p + "procedures", required=True) or []
        for i, item in enumerate(items):
            proc = self.procedure(item, f"{p}procedures[{i}]", items, i)
            if proc:
                procedures.append(proc)
        guidance = []
        items = self.seq(node, "guidance", p + "guidance") or []
        for i, item in enumerate(items):
            g = self.guidance(item, f"{p}guidance[{i}]", items, i)
            if g:
                guidance.append(g)
        billed = None
        if "billed" in node and node["billed"] is not None:
            items = self.seq(node, "billed", p + "billed") or []
            billed = []
            for i, item in enumerate(items):
                b = self.billed(item, f"{p}billed[{i}]", items, i)
                if b:
                    billed.append(b)
        if date is None:
            return None
        return Encounter(enc_id, date, payer, diagnoses, procedures, guidance, billed,
                         self.file, _line_of(node, None, self.base_line))

    def date(self, node, fld: str) -> dt.date | None:
        if "date" not in node or node["date"] is None:
            self.problem(node, None, fld, "required (the date of service, YYYY-MM-DD)")
            return None
        value = node["date"]
        if isinstance(value, dt.datetime):
            return value.date()
        if isinstance(value, dt.date):
            return value
        if isinstance(value, str):
            try:
                return dt.date.fromisoformat(value.strip())
            except ValueError:
                pass
        self.problem(node, "date", fld, f"{value!r} is not a date (YYYY-MM-DD)")
        return None

    def procedure(self, node, fld, parent, index) -> Procedure | None:
        node = self.mapping(node, fld, PROCEDURE_KEYS, parent, index)
        if node is None:
            return None
        before = len(self.problems)
        muscle = self.text(node, "muscle", fld + ".muscle", required=True)
        side = self.text(node, "side", fld + ".side")
        if side is not None:
            side = side.lower()
            if side not in SIDES:
                self.problem(node, "side", fld + ".side", f"unknown side '{side}' (use left, right or bilateral)")
        tps = self.integer(node, "trigger_points", fld + ".trigger_points", 1, 1, 1000)
        if "injectate" not in node:
            self.problem(node, None, fld + ".injectate", "required: list what was injected, or [] for a needle without injection")
            injectate = None
        else:
            injectate = []
            value = node["injectate"]
            if not isinstance(value, list):
                self.problem(node, "injectate", fld + ".injectate",
                             f"must be a list, not {_kind(value)} (write [] for a needle without injection)")
            else:
                for i, sub in enumerate(value):
                    if isinstance(sub, bool) or not isinstance(sub, (str, int, float)) or not str(sub).strip():
                        self.problem(value, i, f"{fld}.injectate[{i}]", "must be the text of a substance")
                    else:
                        injectate.append(str(sub).strip())
        if len(self.problems) > before:
            return None
        return Procedure(muscle, side, tps, injectate)

    def guidance(self, node, fld, parent, index) -> Guidance | None:
        node = self.mapping(node, fld, GUIDANCE_KEYS, parent, index)
        if node is None:
            return None
        before = len(self.problems)
        modality = self.text(node, "modality", fld + ".modality", required=True)
        if modality is not None:
            modality = modality.lower()
            if modality not in MODALITIES:
                self.problem(node, "modality", fld + ".modality",
                             f"unknown modality '{modality}' (use {', '.join(MODALITIES)})")
        necessity = self.text(node, "necessity", fld + ".necessity") or None
        images = node.get("images_recorded", False)
        if images is None:
            images = False
        if not isinstance(images, bool):
            self.problem(node, "images_recorded", fld + ".images_recorded", f"must be true or false, not {images!r}")
        if len(self.problems) > before:
            return None
        return Guidance(modality, necessity, images)

    def billed(self, node, fld, parent, index) -> BilledLine | None:
        node = self.mapping(node, fld, BILLED_KEYS, parent, index)
        if node is None:
            return None
        before = len(self.problems)
        code = self.code(node, "code", fld + ".code")
        units = self.integer(node, "units", fld + ".units", 1, 1, 999)
        mods = self.modifiers(node, "modifiers", fld + ".modifiers")
        if len(self.problems) > before:
            return None
        return BilledLine(code, units, mods)

    def expect(self, node, fld: str) -> dict | None:
        node = self.mapping(node, fld, EXPECT_KEYS)
        if node is None:
            return None
        out: dict[str, Any] = {}
        if "lines" in node:
            lines = []
            for i, item in enumerate(self.seq(node, "lines", fld + ".lines") or []):
                item_fld = f"{fld}.lines[{i}]"
                item = self.mapping(item, item_fld, LINE_KEYS, node["lines"], i)
                if item is None:
                    continue
                code = self.code(item, "code", item_fld + ".code")
                units = self.integer(item, "units", item_fld + ".units", 1, 1, 999)
                mods = self.modifiers(item, "modifiers", item_fld + ".modifiers")
                if code:
                    lines.append(ExpectedLine(code, units, tuple(sorted(mods))))
            out["lines"] = lines
        for key in ("findings", "no_findings", "fired", "not_fired"):
            if key in node:
                values = self.seq(node, key, f"{fld}.{key}") or []
                bad = [v for v in values if not isinstance(v, str) or not re.match(r"^\w+$", v)]
                for v in bad:
                    self.problem(node, key, f"{fld}.{key}", f"{v!r} is not an id")
                out[key] = [v for v in values if v not in bad]
        if "rejected" in node:
            rejected = []
            values = self.seq(node, "rejected", fld + ".rejected") or []
            for i in range(len(values)):
                code = self.code({"code": values[i]}, "code", f"{fld}.rejected[{i}]")
                if code:
                    rejected.append(code)
            out["rejected"] = rejected
        return out


def _kind(value) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, (int, float)):
        return f"the number {value}"
    return f"the text {str(value)!r}"


def _line_of(node, key, default: int | None) -> int | None:
    """1-based line of `key` in a ruamel node (or of the node itself)."""
    lc = getattr(node, "lc", None)
    if lc is None:
        return default
    try:
        if key is None:
            return lc.line + 1
        if isinstance(node, list):
            return lc.item(key)[0] + 1
        return lc.key(key)[0] + 1
    except (KeyError, IndexError, TypeError, AttributeError):
        return lc.line + 1


# ---------------------------------------------------------------------- files
def expand(paths: Iterable[str | Path]) -> tuple[list[Path], list[InputProblem]]:
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
            problems.append(InputProblem(str(path), None, None, "", "no such file or directory"))
    return files, problems


def load_paths(paths: Iterable[str | Path], profiles: Iterable[str] = ()) -> Loaded:
    files, problems = expand(paths)
    out = Loaded(problems=problems)
    for f in files:
        load_file(f, profiles, out)
    assign_keys(out.encounters + [c.encounter for c in out.cases])
    return out


def load_file(path: Path, profiles: Iterable[str], out: Loaded) -> None:
    name = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        out.problems.append(InputProblem(name, None, None, "", f"cannot be read: {exc}"))
        return
    if path.suffix == ".jsonl":
        for lineno, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                load_record(line, name, lineno, profiles, out)
        return
    if path.suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            out.problems.append(InputProblem(name, exc.lineno, None, "", f"broken JSON: {exc.msg}"))
            return
    else:
        try:
            data = YAML(typ="rt", pure=True).load(text)
        except MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = mark.line + 1 if mark else None
            out.problems.append(InputProblem(name, line, None, "", f"broken YAML: {exc.problem or exc.context}"))
            return
        except YAMLError as exc:
            out.problems.append(InputProblem(name, None, None, "", f"broken YAML: {exc}"))
            return
    load_document(data, name, None, path.stem, profiles, out)


def load_record(line: str, name: str, lineno: int, profiles: Iterable[str], out: Loaded) -> None:
    try:
        data = json.loads(line)
    except json.JSONDecodeError as exc:
        out.problems.append(InputProblem(name, lineno, None, "", f"broken JSON: {exc.msg}"))
        return
    load_document(data, name, lineno, f"{Path(name).stem}:{lineno}", profiles, out)


def load_document(data, name: str, line: int | None, default_id: str, profiles, out: Loaded) -> None:
    if data is None:
        out.problems.append(InputProblem(name, line, None, "", "the file is empty"))
        return
    items = data if isinstance(data, list) else [data]
    for i, item in enumerate(items):
        item_line = _line_of(items, i, line) if isinstance(data, list) else line
        if isinstance(item, dict) and ("encounter" in item or "expect" in item or "name" in item):
            case = read_case(item, name, item_line, profiles, out.problems)
            if case:
                out.cases.append(case)
        else:
            suffix = f"[{i}]" if isinstance(data, list) else ""
            reader = _Reader(name, item_line, None, profiles)
            enc = reader.encounter(item, suffix, default_id + suffix)
            out.problems.extend(reader.problems)
            if enc and not reader.problems:
                out.encounters.append(enc)


def read_case(node: dict, name: str, line: int | None, profiles, problems: list[InputProblem]) -> Case | None:
    case_name = node.get("name")
    label = str(case_name) if isinstance(case_name, (str, int)) else None
    reader = _Reader(name, line, label, profiles)
    reader.mapping(node, "", CASE_KEYS)
    title = reader.text(node, "name", "name", required=True)
    description = reader.text(node, "description", "description") or ""
    source = reader.text(node, "source", "source") or ""
    tags = [str(t) for t in (reader.seq(node, "tags", "tags") or [])]
    if "encounter" not in node:
        reader.problem(node, None, "encounter", "required")
        enc = None
    else:
        enc = reader.encounter(node["encounter"], "encounter", title or "case", node, "encounter")
    expect = reader.expect(node["expect"], "expect") if "expect" in node else {}
    problems.extend(reader.problems)
    if reader.problems or enc is None or title is None:
        return None
    enc.file = name
    return Case(title, description, source, tags, enc, expect or {}, name, _line_of(node, None, line))


def assign_keys(encounters: list[Encounter]) -> None:
    """Give each encounter a batch-unique key for its facts: its id, or id#n when an id repeats."""
    seen: dict[str, int] = {}
    for enc in encounters:
        n = seen.get(enc.id, 0) + 1
        seen[enc.id] = n
        enc.key = enc.id if n == 1 else f"{enc.id}#{n}"


def iter_jsonl(lines: Iterable[str], name: str, profiles) -> Iterator[tuple[Encounter | None, list[InputProblem]]]:
    """Stream encounters from JSONL lines, one record at a time."""
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        out = Loaded()
        load_record(line, name, lineno, profiles, out)
        enc = out.encounters[0] if out.encounters else (out.cases[0].encounter if out.cases else None)
        yield enc, out.problems
