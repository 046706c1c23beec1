"""Regenerate the reference-fact files in kb/reference/: the muscle lexicon from
kb/lexicon/muscles.yaml, the NCCI and MUE tables from the extracts in
../shared/reference/data/ (through bridge/cms.py, the importer of CMS's own files).

    python tools/build_reference.py [DATA_DIR]

The generated files are committed; analysts read and diff them like any rule file.
Every fact is written by clingo itself (bridge.engine.fact_text), so no source text can
become program text.
"""

from __future__ import annotations

import re
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bridge import cms  # noqa: E402  (the project root on the path first)
from bridge.engine import fact_text  # noqa: E402
from bridge.reading import normalise, term_key  # noqa: E402
from bridge.terms import Const  # noqa: E402

OUT = ROOT / "kb" / "reference"


def fact(name: str, *args: object) -> str:
    return fact_text((name, *(Const(a[1]) if isinstance(a, tuple) else a for a in args)))


def const(name: str):
    return ("const", name)


# ---------------------------------------------------------------------- the muscle lexicon
LEXICON = ROOT / "kb" / "lexicon" / "muscles.yaml"
REGIONS = ("head_jaw", "neck", "shoulder_girdle", "arm", "forearm_hand", "chest_wall", "abdominal_wall", "back",
           "pelvis_hip", "thigh", "leg_foot")
SIDES = ("right", "left", "bilateral")
# A batch is given only the name rows whose text it documents (bridge/tables.py).
KEYS_TEXT = "%@ keys: Text"


def read_lexicon(path: Path = LEXICON) -> dict:
    from ruamel.yaml import YAML

    return YAML(typ="safe").load(path.read_text())


def text(name: object) -> str:
    """A name as the KB writes it: normalised as documentation text is, hyphens as spaces."""
    return " ".join(normalise(str(name)).replace("-", " ").split())


class Lexicon:
    """The lexicon file, checked: every text the reader may meet, and what it means."""

    def __init__(self, data: dict):
        self.data = data
        self.problems: list[str] = []
        self.muscles: list[dict] = data.get("muscles") or []
        self.groups: list[dict] = data.get("groups") or []
        self.muscle_ids: list[str] = [str(m.get("id")) for m in self.muscles]
        self.group_ids: list[str] = [str(g.get("id")) for g in self.groups]
        self.members: dict[str, list[str]] = defaultdict(list)
        # term key -> {(kind, target)}; kind: name, part, group, region, ambiguous, side
        self.meanings: dict[tuple, set[tuple[str, Any]]] = defaultdict(set)
        self.texts: dict[tuple, str] = {}
        self._check_entries()
        self._collect()
        self._check_meanings()

    def problem(self, message: str) -> None:
        self.problems.append(message)

    def _sources(self, where: str, value: object) -> None:
        known = set(self.data.get("sources") or {})
        cited = value if isinstance(value, list) else [value] if value else []
        if not cited:
            self.problem(f"{where}: no source")
        for s in cited:
            if s not in known:
                self.problem(f"{where}: unknown source {s!r} (declare it under sources)")

    def _check_entries(self) -> None:
        for ids, what in ((self.muscle_ids, "muscle"), (self.group_ids, "group")):
            for i in sorted({i for i in ids if ids.count(i) > 1}):
                self.problem(f"{what} id {i!r} is used twice")
        for m in self.muscles:
            mid = m.get("id")
            where = f"muscle {mid!r}"
            if not isinstance(mid, str) or not re.fullmatch(r"[a-z][a-z0-9_]*", mid):
                self.problem(f"{where}: the id must be lower case letters, digits and _")
            if not m.get("name"):
                self.problem(f"{where}: no name")
            if m.get("region") not in REGIONS:
                self.problem(f"{where}: region {m.get('region')!r} is not one of {', '.join(REGIONS)}")
            if m.get("paired") is not True:
                self.problem(f"{where}: only paired muscles are counted by kb/rules/muscles.lp; "
                             "write and test a rule for unpaired muscles first")
            self._sources(where, m.get("source"))
            for g in m.get("groups") or []:
                if g not in self.group_ids:
                    self.problem(f"{where}: unknown group {g!r}")
                self.members[g].append(str(mid))
        for g in self.groups:
            self._sources(f"group {g.get('id')!r}", g.get("source"))
            if len(self.members.get(str(g.get("id")), [])) < 2:
                self.problem(f"group {g.get('id')!r}: fewer than two muscles list it in their groups")
        for a in self.data.get("ambiguous") or []:
            self._sources(f"ambiguous {a.get('names')}", a.get("source"))
            candidates = a.get("candidates") or []
            if len(candidates) < 2:
                self.problem(f"ambiguous {a.get('names')}: fewer than two candidates")
            for c in candidates:
                if c not in self.muscle_ids and c not in self.group_ids:
                    self.problem(f"ambiguous {a.get('names')}: unknown candidate {c!r}")
        self._sources("regions", (self.data.get("regions") or {}).get("source"))
        self._sources("sides", (self.data.get("sides") or {}).get("source"))

    def _add(self, name: object, kind: str, target: Any) -> None:
        key = term_key(str(name))
        if key:
            self.meanings[key].add((kind, target))
            self.texts.setdefault(key, text(name))

    def _collect(self) -> None:
        for m in self.muscles:
            for n in [m.get("name"), str(m.get("id", "")).replace("_", " "), *(m.get("names") or [])]:
                self._add(n, "name", m.get("id"))
            for n in m.get("parts") or []:
                self._add(n, "part", m.get("id"))
        for g in self.groups:
            for n in [g.get("name"), *(g.get("names") or [])]:
                self._add(n, "group", g.get("id"))
        for n in (self.data.get("regions") or {}).get("terms") or []:
            self._add(n, "region", None)
        for a in self.data.get("ambiguous") or []:
            for n in a.get("names") or []:
                self._add(n, "ambiguous", tuple(a.get("candidates") or ()))
        for side in SIDES:
            for n in (self.data.get("sides") or {}).get(side) or []:
                self._add(n, "side", side)

    def _check_meanings(self) -> None:
        for key, meanings in self.meanings.items():
            kinds = {k for k, _ in meanings}
            shown = self.texts[key]
            if "side" in kinds and len(meanings) > 1:
                others = {m for m in meanings if m[0] != "side"}
                self.problem(f"{shown!r} is a side word and also {self._said(others)}; "
                             "a side word never names a muscle")
            elif "ambiguous" in kinds and len(meanings) > 1:
                self.problem(f"{shown!r} is declared ambiguous and is also {self._said(meanings)}: "
                             "remove it from the muscle or group")
            elif len({t for _, t in meanings}) > 1 or (len(kinds - {"name", "part"}) > 0 and len(meanings) > 1):
                self.problem(f"{shown!r} means {self._said(meanings)}: keep it on one, "
                             "or declare it under ambiguous")

    @staticmethod
    def _said(meanings: set) -> str:
        return " and ".join(sorted(f"{k} {t}" if t else k for k, t in meanings))

    def meaning(self, key: tuple) -> tuple[str, Any]:
        meanings = self.meanings[key]
        for kind in ("ambiguous", "name", "part", "group", "region", "side"):
            for k, t in sorted(meanings, key=str):
                if k == kind:
                    return k, t
        raise KeyError(key)

    def display(self, ident: str) -> str:
        for m in self.muscles:
            if m["id"] == ident:
                return m["name"]
        for g in self.groups:
            if g["id"] == ident:
                return "the " + g["name"].lower()
        return ident


def build_muscles(lex: Lexicon) -> str:
    if lex.problems:
        raise SystemExit("kb/lexicon/muscles.yaml:\n  " + "\n  ".join(lex.problems))
    by_kind: dict[str, list[tuple[str, Any]]] = defaultdict(list)
    for key in sorted(lex.meanings, key=lambda k: lex.texts[k]):
        kind, target = lex.meaning(key)
        by_kind[kind].append((lex.texts[key], target))
    out = [
        "%* Muscle lexicon: the muscles, their names, groups, region terms, ambiguous short",
        "   names and side words.",
        "",
        "   Generated by tools/build_reference.py from kb/lexicon/muscles.yaml: edit that file,",
        "   not this one. Sources are cited there, per muscle and per block. Texts are written",
        "   as the reader (bridge/reading.py) hands them on: lower case, single spaces. *%",
        "",
        "%*! muscle(M, Display, Paired, Region): {Display} ({M}) is a {Paired} muscle of the {Region} region. *%",
    ]
    for m in lex.muscles:
        ids = ", ".join(f"{k} {m[k]}" for k in ("fma", "snomed", "uberon") if m.get(k))
        out.append(fact("muscle", const(m["id"]), m["name"], const("paired"), const(m["region"]))
                   + (f"  % {ids}" if ids else ""))
    out += ["", "%*! muscle_name(Text, M): \"{Text}\" names the muscle {M}. *%", KEYS_TEXT]
    out += [fact("muscle_name", t, const(target)) for t, target in by_kind["name"]]
    out += ["", "%*! muscle_part_name(Text, M): \"{Text}\" names part of the muscle {M}. *%", KEYS_TEXT]
    out += [fact("muscle_part_name", t, const(target)) for t, target in by_kind["part"]]
    out += ["", "%*! muscle_group(G, Display): {Display} is a muscle group. *%"]
    out += [fact("muscle_group", const(g["id"]), g["name"]) for g in lex.groups]
    out += ["", "%*! group_member(G, M): {M} belongs to the group {G}. *%"]
    out += [fact("group_member", const(g), const(m)) for g in sorted(lex.members) for m in sorted(lex.members[g])]
    out += ["", "%*! group_name(Text, G): \"{Text}\" names the muscle group {G}. *%", KEYS_TEXT]
    out += [fact("group_name", t, const(target)) for t, target in by_kind["group"]]
    out += ["", "%*! region_term(Text): \"{Text}\" is a region or vague term, not a muscle. *%", KEYS_TEXT]
    out += [fact("region_term", t) for t, _ in by_kind["region"]]
    out += ["", "%*! ambiguous_term(Text, Candidates): \"{Text}\" could name {Candidates}. *%", KEYS_TEXT]
    for t, candidates in by_kind["ambiguous"]:
        names = [lex.display(c) for c in candidates]
        out.append(fact("ambiguous_term", t, ", ".join(names[:-1]) + " or " + names[-1]))
    out += ["", "%*! side_word(Text, Side): \"{Text}\" written before or after a muscle means {Side}. *%",
            KEYS_TEXT]
    out += [fact("side_word", t, const(side)) for t, side in by_kind["side"]]
    return "\n".join(out) + "\n"


def build_ptp(data: Path) -> str:
    """The shipped PTP extract, through the importer CMS's own files go through."""
    imported = cms.read_ptp_extract(data / "ptp_focus_pairs_2026q2.json")
    if imported.problems:
        raise SystemExit("\n".join(imported.problems))
    return cms.ptp_facts(imported, "2026Q2 extract", directed=False)


def build_mue(data: Path) -> str:
    """The shipped MUE extract, through the importer CMS's own files go through."""
    imported = cms.read_mue_extract(data / "mue_practitioner_2026q2_full.json")
    if imported.problems:
        raise SystemExit("\n".join(imported.problems))
    return cms.mue_facts(imported)


def main() -> None:
    data = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT.parent / "shared" / "reference" / "data"
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "muscles.lp").write_text(build_muscles(Lexicon(read_lexicon())))
    if not data.is_dir():
        print(f"{data}: no CMS extracts here; kb/reference/ncci_ptp.lp and mue.lp left as they are")
        return
    (OUT / "ncci_ptp.lp").write_text(build_ptp(data))
    (OUT / "mue.lp").write_text(build_mue(data))


if __name__ == "__main__":
    main()
