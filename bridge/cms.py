"""CMS's NCCI releases into the KB's dated fact files: the practitioner PTP edits and the
practitioner MUEs, in the layouts CMS ships them (../shared/reference/cms-file-layouts.md),
and the third-party extracts shipped in ../shared/reference/data/ through the same path.

    tpkb import ptp FILE... [--release NAME] [--out kb/reference/ncci_ptp.lp]
    tpkb import mue FILE... [--release NAME] [--effective YYYY-MM-DD] [--out kb/reference/mue.lp]

Every malformed row is one problem naming its file and line; with any problem nothing is
written. Every value reaches the fact file through clingo's own writer (engine.fact_text):
no text of a file becomes program text.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
import textwrap
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .engine import fact_text
from .terms import Const

# The codes whose pairs the KB keeps: every PTP edit with one of them on either side.
FOCUS = ("20550", "20551", "20552", "20553", "20560", "20561", "76942", "77002")
OPEN = 99991231  # a deletion date of "*": in force until further notice
_CODE = re.compile(r"[0-9A-Z]{4}[0-9A-Z]")
_PTP_ROW = re.compile(r"^[0-9A-Z]{5}\t")


@dataclass
class Import:
    """Rows read from one or more files, and the problems met."""

    rows: list[tuple] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)

    def problem(self, where: str, message: str) -> None:
        self.problems.append(f"{where}: {message}")


def _date(text: str) -> int | None:
    if not re.fullmatch(r"[0-9]{8}", text):
        return None
    try:
        dt.date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError:
        return None
    return int(text)


def _text(path: Path) -> str:
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")  # CMS's notice; codes and dates are ASCII


# ---------------------------------------------------------------------- PTP
def read_ptp(paths: Sequence[Path], focus: Iterable[str] = FOCUS) -> Import:
    """CMS practitioner PTP text files (tab-separated; notice, title and a wrapped header
    first): column 1, column 2, `*` if in existence before 1996, effective date, deletion
    date or `*`, modifier indicator, rationale. Rows whose deletion date equals their
    effective date were withdrawn and never applied; they are left out."""
    keep = set(focus)
    out = Import()
    for path in paths:
        out.sources.append(path.name)
        started = False
        for number, line in enumerate(_text(path).splitlines(), start=1):
            where = f"{path}:{number}"
            if not started:
                started = bool(_PTP_ROW.match(line))
                if not started:
                    continue
            if not line.strip():
                continue
            cells = [c.strip() for c in line.rstrip("\r\n").split("\t")]
            if len(cells) < 7:
                out.problem(where, f"a PTP row has 7 tab-separated columns; this one has {len(cells)}")
                continue
            col1, col2, before_1996, effective, deletion, indicator, rationale = cells[:7]
            bad = [f"column {i} {v!r} is not a HCPCS/CPT code" for i, v in ((1, col1), (2, col2))
                   if not _CODE.fullmatch(v)]
            if before_1996 not in ("", "*"):
                bad.append(f"column 3 (in existence before 1996) is {before_1996!r}, not '*' or empty")
            start = _date(effective)
            if start is None:
                bad.append(f"effective date {effective!r} is not a date yyyymmdd")
            end = OPEN if deletion == "*" else _date(deletion)
            if end is None:
                bad.append(f"deletion date {deletion!r} is not a date yyyymmdd or '*'")
            elif start is not None and end < start:
                bad.append(f"deletion date {deletion} is before the effective date {effective}")
            if indicator not in ("0", "1", "9"):
                bad.append(f"modifier indicator {indicator!r} is not 0, 1 or 9")
            if not rationale:
                bad.append("no rationale")
            if bad:
                out.problem(where, "; ".join(bad))
                continue
            if end == start or not ({col1, col2} & keep):
                continue
            out.rows.append((col1, col2, int(indicator), start, end, rationale))
        if not started:
            out.problem(str(path), "no PTP row found (is this a CMS practitioner PTP text file?)")
    return out


def _extract(path: Path, kind: type) -> tuple[Import, Any]:
    """A shipped extract's JSON (a `kind`: dict or list), and its Import; None (and the
    problem) if it cannot be read as one."""
    out = Import(sources=[path.name])
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        out.problem(str(path), f"cannot be read as JSON: {exc}")
        return out, None
    if not isinstance(data, kind):
        out.problem(str(path), f"holds a JSON {type(data).__name__}, not the {kind.__name__} of the extract")
        return out, None
    return out, data


def read_ptp_extract(path: Path) -> Import:
    """The shipped extract (ptp_focus_pairs_2026q2.json): {code: [[other, indicator,
    rationale], ...]}. Column direction and dates were not kept: each pair is written once,
    lower code first, in force on every date (the caveat goes with the facts)."""
    out, data = _extract(path, dict)
    if data is None:
        return out
    seen: dict[tuple[str, str], tuple] = {}
    for code, partners in sorted(data.items()):
        for k, entry in enumerate(partners, start=1):
            where = f"{path}: {code}[{k}]"
            if not (isinstance(entry, list) and len(entry) == 3 and _CODE.fullmatch(str(entry[0]))
                    and entry[1] in (0, 1, 9) and isinstance(entry[2], str)):
                out.problem(where, "an entry is [code, indicator 0/1/9, rationale]")
                continue
            a, b = sorted((code, entry[0]))
            seen[(a, b)] = (a, b, entry[1], 0, OPEN, entry[2])
    out.rows = [seen[k] for k in sorted(seen)]
    return out


def ptp_facts(imported: Import, release: str, directed: bool) -> str:
    caveat = ("Column 1 is the first code, column 2 the second (the code not paid when both are billed)."
              if directed else
              "CAVEAT: a third-party extract. Column direction was not kept (each pair is written once, lower "
              "code first) and neither were the dates (every pair is in force on every date of service). "
              "Explanations of an edit from this release say so.")
    out = [
        "%* NCCI procedure-to-procedure (PTP) edits, practitioner services.",
        "",
        f"   Release: {release}, from {', '.join(imported.sources)}. Generated by `tpkb import ptp`",
        "   (bridge/cms.py); edit the source, not this file. Every pair with one of",
        f"   {', '.join(FOCUS)} on either side.",
        *textwrap.wrap(caveat, 92, initial_indent="   ", subsequent_indent="   "),
        "   Modifier indicator: 0 never together; 1 together only with an NCCI-associated",
        "   modifier for a distinct service; 9 no edit. An edit applies to dates of service from its",
        "   effective date to its deletion date (the last date it applies to; 99991231: none). *%",
        "",
        "%*! ptp_release(Release, Directed, Note): the PTP edits of release {Release} ({Note}). *%",
        fact_text(("ptp_release", release, Const("directed" if directed else "undirected"),
                   "column 1 and column 2 as CMS ships them" if directed
                   else "an extract: direction and dates of each edit unknown")),
        "",
        "%*! ptp(A, B, Indicator, From, To, Rationale, Release): NCCI PTP edit {A}/{B}, modifier indicator "
        "{Indicator} ({Rationale}), in force {From:date} to {To:date}, release {Release}. *%",
        "%@ keys: A, B",
    ]
    out += [fact_text(("ptp", a, b, i, start, end, r, release)) for a, b, i, start, end, r in sorted(imported.rows)]
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------------- MUE
def _mai(text: str) -> int | None:
    found = re.match(r"\s*([123])\b", text)
    return int(found.group(1)) if found else None


def read_mue(paths: Sequence[Path], effective: int | None = None) -> Import:
    """CMS practitioner MUE CSV files, one quarter each: a quoted, multi-line notice first,
    then the header (HCPCS/CPT Code, Practitioner Services MUE Values, MUE Adjudication
    Indicator, MUE Rationale), then one code per row; the indicator cell is a digit and
    text. Each file is its own release, in force from the date in its name
    (..._Eff_10-01-2025.csv) or `effective`."""
    out = Import()
    for path in paths:
        out.sources.append(path.name)
        since = effective or effective_from_name(path.name)
        if since is None:
            out.problem(str(path), "no effective date in the file name (..._Eff_MM-DD-YYYY.csv): give --effective")
            continue
        reader = csv.reader(io.StringIO(_text(path), newline=""))
        header = False
        for cells in reader:
            where = f"{path}:{reader.line_num}"
            if not header:
                first = " ".join(cells[0].split()).lower() if cells else ""
                header = "hcpcs" in first and "code" in first
                continue
            if not any(c.strip() for c in cells):
                continue
            if len(cells) < 4:
                out.problem(where, f"an MUE row has 4 columns; this one has {len(cells)}")
                continue
            code, value, indicator, rationale = (c.strip() for c in cells[:4])
            bad = []
            if not _CODE.fullmatch(code):
                bad.append(f"{code!r} is not a HCPCS/CPT code")
            if not value.isdigit():
                bad.append(f"MUE value {value!r} is not a whole number")
            mai = _mai(indicator)
            if mai is None:
                bad.append(f"adjudication indicator {indicator!r} does not start with 1, 2 or 3")
            if bad:
                out.problem(where, "; ".join(bad))
                continue
            out.rows.append((code, int(value), mai, rationale, path.stem, since))
        if not header:
            out.problem(str(path), "no header row (HCPCS/CPT Code, ...) found: is this a CMS practitioner MUE file?")
    return out


def read_mue_extract(path: Path) -> Import:
    """The shipped extract (mue_practitioner_2026q2_full.json): [[code, value, MAI,
    rationale], ...]."""
    out, data = _extract(path, list)
    if data is None:
        return out
    for k, entry in enumerate(data, start=1):
        if not (isinstance(entry, list) and len(entry) == 4 and _CODE.fullmatch(str(entry[0]))
                and isinstance(entry[1], int) and entry[2] in (1, 2, 3)):
            out.problem(f"{path}: entry {k}", "an entry is [code, value, MAI 1/2/3, rationale]")
            continue
        out.rows.append((*entry, "2026Q2 extract", 0))
    return out


def release_from_name(name: str) -> str:
    """The release in a CMS PTP file name: ccipra-v321r0-f1.txt is "ccipra-v321r0"."""
    found = re.search(r"(ccipra-v\d+r\d+)", name)
    return found.group(1) if found else Path(name).stem


def effective_from_name(name: str) -> int | None:
    """The effective date in a CMS MUE file name (..._Eff_10-01-2025.csv)."""
    found = re.search(r"(\d{2})-(\d{2})-(\d{4})", name)
    return int(found.group(3) + found.group(1) + found.group(2)) if found else None


def mue_facts(imported: Import) -> str:
    releases = sorted({(row[5], row[4]) for row in imported.rows})
    said = "; ".join(f"{name}, in force from {d // 10000}-{d // 100 % 100:02d}-{d % 100:02d}" if d else
                     f"{name}: CAVEAT, an extract without its effective date, applied to every date of service"
                     for d, name in releases)
    out = [
        "%* Medically Unlikely Edits (MUE), practitioner services.",
        "",
        *textwrap.wrap(f"Releases: {said}. From {', '.join(imported.sources)}.", 92, initial_indent="   ",
                       subsequent_indent="   "),
        "   Generated by `tpkb import mue` (bridge/cms.py); edit the source, not this file. The MUE in force on a",
        "   date of service is that of the latest release in force on it (rules/ncci.lp); a code",
        "   absent from that release has no unit limit from it. MAI: 1 line edit, 2 absolute date-of-",
        "   service edit (policy), 3 date-of-service edit (clinical). *%",
        "",
        "%*! mue_release(Release, From): the MUE release {Release} is in force from {From:date}. *%",
        *(fact_text(("mue_release", name, d)) for d, name in releases),
        "",
        "%*! mue(Code, Units, MAI, Rationale, Release, From): the MUE of {Code} is {Units} per date of service "
        "(MAI {MAI}, {Rationale}; release {Release}, from {From:date}). *%",
        "%@ keys: Code",
    ]
    out += [fact_text(("mue", *row)) for row in sorted(imported.rows)]
    return "\n".join(out) + "\n"
