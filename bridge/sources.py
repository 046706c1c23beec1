"""The source register, kb/sources.yaml: the sources the KB cites, one entry each.

A rule cites sources by register id in square brackets on its `%@ source:` line, with the
detail in plain words: `%@ source: [seed] Coding Guidelines bullet 1; [cpt] 20553`. This
module only reads the register and the citations of a source line; what must hold between
them is checked by `tpkb lint` (bridge/lint.py), and the rule reference can reuse both.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .rules import did_you_mean

REGISTER = "sources.yaml"  # in the KB root
FIELDS = ("id", "title", "publisher", "version", "where", "note")
REQUIRED = ("id", "title", "where", "note")
CITATION = re.compile(r"\[([^\[\]]*)\]")


@dataclass(frozen=True)
class Source:
    id: str
    title: str
    publisher: str
    version: str
    where: str
    note: str
    line: int  # of the entry in kb/sources.yaml


def citations(source_text: str) -> list[str]:
    """The register ids a `%@ source:` text cites, in order: `[seed] bullet 1; [cpt]` ->
    ['seed', 'cpt']. An empty `[]` is kept as '' so that it can be reported."""
    return [m.strip() for m in CITATION.findall(source_text)]


def read_register(root: Path) -> tuple[list[Source], list[str]]:
    """The entries of `root`/sources.yaml and its problems, each 'kb/sources.yaml:LINE: what'.
    A missing register is ([], []): the caller decides whether that matters."""
    path = Path(root) / REGISTER
    try:
        text = path.read_bytes()
    except OSError:
        return [], []
    return _parse(text)


def _parse(content: bytes) -> tuple[list[Source], list[str]]:
    from ruamel.yaml import YAML
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    where = f"kb/{REGISTER}"
    try:
        data = YAML(typ="rt").load(content.decode("utf-8"))
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        return [], [f"{where}:{line}: not valid YAML: {exc.problem or exc.context}"]
    except (YAMLError, UnicodeDecodeError, OSError) as exc:
        return [], [f"{where}:1: cannot be read: {exc}"]
    if data is None:
        return [], []
    if not isinstance(data, list):
        return [], [f"{where}:1: the register is a YAML list of entries (- id: ...)"]
    entries: list[Source] = []
    problems: list[str] = []
    seen: dict[str, int] = {}
    for index, item in enumerate(data):
        line = _line(data, index)
        if not isinstance(item, dict):
            problems.append(f"{where}:{line}: an entry is a mapping with keys {', '.join(FIELDS)}")
            continue
        unknown = [str(k) for k in item if k not in FIELDS]
        for key in unknown:
            problems.append(f"{where}:{_key_line(item, key, line)}: unknown key '{key}'{did_you_mean(key, FIELDS)}")
        values = {k: str(item[k]).strip() if item.get(k) is not None else "" for k in FIELDS}
        missing = [k for k in REQUIRED if not values[k]]
        label = f"entry '{values['id']}'" if values["id"] else "entry"
        if missing:
            problems.append(f"{where}:{line}: {label} lacks {', '.join(missing)}")
        ident = values["id"]
        if ident and ident in seen:
            problems.append(f"{where}:{line}: id '{ident}' is already used at {where}:{seen[ident]}")
            continue
        if ident:
            seen[ident] = line
            entries.append(Source(line=line, **values))
    return entries, problems


def _line(data: Any, index: int) -> int:
    try:
        return data.lc.item(index)[0] + 1
    except (AttributeError, KeyError, IndexError, TypeError):
        return 1


def _key_line(item: Any, key: Any, default: int) -> int:
    try:
        return item.lc.key(key)[0] + 1
    except (AttributeError, KeyError, IndexError, TypeError):
        return default
