"""`tpkb impact --accept`: write a case's new outcome into its `expect` block.

Only the keys the case already pins change, each to what the current KB concludes (see
`updates`). A YAML file is read with ruamel.yaml's round-trip loader, which knows where
every key and value is; only the text of the values that change is replaced, so that
comments, key order, quoting and layout everywhere else stay exactly as written (ruamel's
own dumper would re-indent and re-wrap the whole file). A JSON file is rewritten by the
json module, its key order kept. Each rewrite is read back and checked before it is
written."""

from __future__ import annotations

import itertools
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML, YAMLError
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.scalarstring import DoubleQuotedScalarString, SingleQuotedScalarString

from .model import Case, Expect
from .outcome import Outcome
from .printable import escape

Value = Any  # a plain value to write: str, int, list or dict of them


@dataclass
class Accepted:
    rewritten: list[str] = field(default_factory=list)  # files written
    notes: list[str] = field(default_factory=list)  # what was done, a line each
    errors: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------- what changes
def updates(case: Case, before: Outcome, after: Outcome) -> tuple[dict[str, Value | None], list[str]]:
    """The new value of each pinned key that the current outcome changes (None: drop the
    key, a list of ids left empty), with a note for each rule or finding dropped.

    lines, rejected: the exact sets now reported and rejected. billed: each line's verdict,
    and its reasons where they were pinned. findings: those still found, and those the edit
    added. no_findings: those still absent. fired / not_fired: a rule that no longer fires
    leaves `fired`, one that now fires leaves `not_fired`."""
    expect = case.expect
    out: dict[str, Value | None] = {}
    notes: list[str] = []
    if expect.lines is not None:
        want = [(ln.code, ln.units, tuple(sorted(ln.modifiers))) for ln in expect.lines]
        got = [(ln.code, ln.units, tuple(sorted(ln.modifiers))) for ln in after.lines]
        if set(want) != set(got):
            added = [g for g in got if g not in want]
            kept = []
            for w in want:  # a new line takes the place of one no longer reported
                if w in got or added:
                    kept.append(w if w in got else added.pop(0))
            kept += added
            out["lines"] = [_line(code, units, mods) for code, units, mods in kept]
    found = {f.id for f in after.findings}
    if expect.findings is not None:
        earlier = {f.id for f in before.findings}
        new: list[str] = [f for f in expect.findings if f in found] + sorted(found - earlier - set(expect.findings))
        if new != expect.findings:
            notes += [f"finding {f} removed from findings (no longer found)" for f in expect.findings if f not in found]
            notes += [f"finding {f} added to findings (found now)" for f in new if f not in expect.findings]
            out["findings"] = new or None
    if expect.no_findings is not None:
        new = [f for f in expect.no_findings if f not in found]
        if new != expect.no_findings:
            notes += [f"finding {f} removed from no_findings (found now)" for f in expect.no_findings if f in found]
            out["no_findings"] = new or None
    billed = after.billed or []
    if expect.rejected is not None:
        rejected = [b.code for b in billed if b.verdict == "reject"]
        if sorted(rejected) != sorted(expect.rejected):
            out["rejected"] = rejected
    if expect.billed is not None:
        lines = []
        for want_line, audited in zip(expect.billed, billed):
            item: dict[str, Value] = {"code": audited.code, "verdict": audited.verdict}
            if want_line.reasons is not None:
                ids = {r.id for r in audited.reasons}
                item["reasons"] = [r for r in want_line.reasons if r in ids] + sorted(ids - set(want_line.reasons))
            lines.append(item)
        old = [{"code": b.code, "verdict": b.verdict, **({"reasons": sorted(set(b.reasons))} if b.reasons is not None
                                                         else {})} for b in expect.billed]
        if [{**x, **({"reasons": sorted(x["reasons"])} if "reasons" in x else {})} for x in lines] != old:
            out["billed"] = lines
    fired = set(after.fired or [])
    if expect.fired is not None:
        new = [r for r in expect.fired if r in fired]
        if new != expect.fired:
            notes += [f"rule {r} removed from fired (it no longer fires)" for r in expect.fired if r not in fired]
            out["fired"] = new or None
    if expect.not_fired is not None:
        new = [r for r in expect.not_fired if r not in fired]
        if new != expect.not_fired:
            notes += [f"rule {r} removed from not_fired (it fires now)" for r in expect.not_fired if r in fired]
            out["not_fired"] = new or None
    return out, notes


def _line(code: str, units: int, modifiers: tuple[str, ...]) -> dict[str, Value]:
    item: dict[str, Value] = {"code": code}
    if units != 1:
        item["units"] = units
    if modifiers:
        item["modifiers"] = list(modifiers)
    return item


def merged(expect: dict, new: dict[str, Value | None]) -> dict:
    """The expect mapping once `new` is applied (None drops a key)."""
    out = {}
    for key, value in expect.items():
        if key in new:
            if new[key] is not None:
                out[key] = new[key]
        else:
            out[key] = value
    return out


def still_checks(expect: dict, new: dict[str, Value | None]) -> bool:
    try:
        return Expect.model_validate(_plain(merged(expect, new))).checks_something()
    except ValueError:
        return False


# ---------------------------------------------------------------------- files
def rewrite(text: str, suffix: str, name: str, new: dict[str, Value | None]) -> str:
    """The text of a case file (`suffix` .json or .yaml) with case `name`'s expect updated.
    Raises ValueError where the case or its expect block cannot be found, or the result
    does not read back as meant."""
    if suffix == ".json":
        return _rewrite_json(text, name, new)
    return _rewrite_yaml(text, name, new)


def _rewrite_json(text: str, name: str, new: dict[str, Value | None]) -> str:
    data = json.loads(text)
    case = _find(data, name)
    case["expect"] = merged(case["expect"], new)
    indent = re.search(r"\n( +)\S", text)
    return json.dumps(data, indent=len(indent.group(1)) if indent else 2, ensure_ascii=False) + \
        ("\n" if text.endswith("\n") else "")


def _find(data: Any, name: str) -> Any:
    items = data if isinstance(data, list) else [data]
    for item in items:
        if isinstance(item, dict) and item.get("name") == name and isinstance(item.get("expect"), dict):
            return item
    raise ValueError(f"case {name!r} with an expect block not found")


def _load(text: str) -> Any:
    yaml = YAML(typ="rt", pure=True)
    yaml.preserve_quotes = True
    return yaml.load(text)


def _rewrite_yaml(text: str, name: str, new: dict[str, Value | None]) -> str:
    data = _load(text)
    case = _find(data, name)
    expect = case["expect"]
    starts = _line_starts(text)

    def offset(pos: tuple[int, int]) -> int:
        return starts[pos[0]] + pos[1]

    if expect.fa.flow_style():  # expect: {lines: [...], fired: [...]}
        begin = offset(case.lc.value("expect"))
        end = _flow_end(text, begin)
        mapping = merged(_plain(expect), new)
        body = "{" + ", ".join(f"{k}: {_flow(v, _quotes(k, expect.get(k), data))}" for k, v in mapping.items()) + "}"
        out = text[:begin] + body + text[end:]
    else:
        edits: list[tuple[int, int, str]] = []
        keys = list(expect.keys())
        limit = _after_expect(data, case, text)
        for i, key in enumerate(keys):
            if key not in new:
                continue
            key_line, key_col = expect.lc.key(key)
            next_line = expect.lc.key(keys[i + 1])[0] if i + 1 < len(keys) else limit
            old = expect[key]
            value_pos = expect.lc.value(key)
            flow = not isinstance(old, CommentedSeq) or old.fa.flow_style() or not old
            if flow:
                begin = offset(value_pos)
                end = _flow_end(text, begin)
            else:
                begin = starts[key_line] + text[starts[key_line]:].index("\n") + 1
                end = starts[_last_content(text, starts, key_line, next_line) + 1]
            value = new[key]
            if value is None:  # drop the key: its lines, to the end of its value
                line_end = text.find("\n", end)
                edits.append((starts[key_line], len(text) if line_end < 0 else line_end + 1, ""))
            elif flow:
                edits.append((begin, end, _flow_wrapped(value, _quotes(key, old, data),
                                                        begin - text.rfind("\n", 0, begin) - 1)))
            else:
                dash = _dash_column(text, starts, old, key_col)
                edits.append((begin, end, _block(value, old, dash, _quotes(key, old, data),
                                                 _item_texts(text, starts, old, end))))
        out = text
        for begin, end, piece in sorted(edits, reverse=True):
            out = out[:begin] + piece + out[end:]
    _check(data, _load(out), name, new)
    return out


def _line_starts(text: str) -> list[int]:
    starts = [0]
    for m in re.finditer("\n", text):
        starts.append(m.end())
    starts.append(len(text))
    return starts


def _after_expect(data: Any, case: CommentedMap, text: str) -> int:
    """The line where what follows the expect block starts (the case's next key, the next
    case of the list, or the end of the file)."""
    keys = list(case.keys())
    i = keys.index("expect")
    if i + 1 < len(keys):
        return case.lc.key(keys[i + 1])[0]
    if isinstance(data, list):
        index = next(j for j, item in enumerate(data) if item is case)
        if index + 1 < len(data):
            return int(data.lc.item(index + 1)[0])  # type: ignore[attr-defined]
    return text.count("\n") + (0 if text.endswith("\n") else 1)


def _last_content(text: str, starts: list[int], first: int, stop: int) -> int:
    """The last line before `stop` (after `first`) that is not blank or a comment: the
    comments and blank lines before the next key belong to what follows."""
    last = first
    for line in range(first + 1, stop):
        stripped = text[starts[line]:starts[line + 1]].strip()
        if stripped and not stripped.startswith("#"):
            last = line
    return last


def _flow_end(text: str, begin: int) -> int:
    """The end of the flow collection (or plain scalar) that starts at `begin`."""
    if text[begin] not in "[{":
        end = text.find("\n", begin)
        end = len(text) if end < 0 else end
        comment = re.search(r"\s#", text[begin:end])
        return begin + comment.start() if comment else end
    depth, i, quote = 0, begin, ""
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == "\\" and quote == '"':
                i += 1
            elif ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    raise ValueError("unterminated flow collection")


def _dash_column(text: str, starts: list[int], old: CommentedSeq, key_col: int) -> int:
    if len(old):
        line, col = old.lc.item(0)
        dash = text.rfind("-", starts[line], starts[line] + col)
        if dash >= 0:
            return dash - starts[line]
    return key_col + 2


def _numbers(node: Any) -> list[bool]:
    """For each code-like number in a value: whether it is written quoted ("20553")."""
    if isinstance(node, dict):
        return [q for v in node.values() for q in _numbers(v)]
    if isinstance(node, list):
        return [q for v in node for q in _numbers(v)]
    if isinstance(node, (DoubleQuotedScalarString, SingleQuotedScalarString)):
        return [True] if node.isdigit() and len(node) >= 5 else []
    return [False] if isinstance(node, int) and not isinstance(node, bool) and node >= 10000 else []


def _quotes(key: str, old: Any, data: Any) -> bool:
    """Whether to quote codes written as numbers in a new value of `key`: as the old value
    does, else as the file's other cases do, else as the library does (quoted in rejected
    and billed, bare in lines)."""
    found = _numbers(old)
    if not found:
        items = data if isinstance(data, list) else [data]
        found = [q for item in items if isinstance(item, dict) and isinstance(item.get("expect"), dict)
                 for q in _numbers(item["expect"].get(key))]
    return any(found) if found else key in ("rejected", "billed")


_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")
_WORDS = {"true", "false", "yes", "no", "on", "off", "y", "n", "null"}


def _scalar(value: Value, quoted: bool) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    text = str(value)
    if re.fullmatch(r"[1-9][0-9]{4}", text) and not quoted:
        return text  # a code written as a number, as the library writes them in lines
    if _PLAIN.fullmatch(text) and text.lower() not in _WORDS and not text.isdigit():
        return text
    return json.dumps(text)


def _flow(value: Value, quoted: bool) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_flow(v, quoted)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_flow(v, quoted) for v in value) + "]"
    return _scalar(value, quoted)


WIDTH = 110  # a flow list longer than this wraps, its items aligned after the bracket


def _flow_wrapped(value: Value, quoted: bool, column: int) -> str:
    text = _flow(value, quoted)
    if column + len(text) <= WIDTH or not isinstance(value, list):
        return text
    lines, current = [], "["
    for i, item in enumerate(value):
        piece = _flow(item, quoted) + ("," if i + 1 < len(value) else "]")
        if len(current) > 1 and column + len(current) + 1 + len(piece) > WIDTH:
            lines.append(current)
            current = " " * (column + 1) + piece
        else:
            current += ("" if current.endswith("[") else " ") + piece
    lines.append(current)
    return "\n".join(lines)


def _block(value: list, old: CommentedSeq, dash: int, quoted: bool, texts: list[str]) -> str:
    """A block list at the old list's indentation: an item the old list holds keeps its
    text (comments and all); a new mapping item is written in the old items' style."""
    flow_items = bool(len(old)) and isinstance(old[0], CommentedMap) and old[0].fa.flow_style()
    pad = " " * dash
    unused = [(_same(item), text) for item, text in zip(old, texts)]
    out = []
    for item in value:
        reuse = next((i for i, (same, _) in enumerate(unused) if same == _same(item)), None)
        if reuse is not None:
            out.append(unused.pop(reuse)[1])
        elif isinstance(item, dict) and not flow_items:
            fields = [f"{k}: {_flow(v, quoted)}" for k, v in item.items()]
            out.append("".join(f"{pad}{'- ' if i == 0 else '  '}{f}\n" for i, f in enumerate(fields)))
        else:
            out.append(f"{pad}- {_flow(item, quoted)}\n")
    return "".join(out)


def _item_texts(text: str, starts: list[int], old: CommentedSeq, end: int) -> list[str]:
    """The text of each item of a block list, from its line to the next item's."""
    lines = [old.lc.item(i)[0] for i in range(len(old))]
    bounds = [starts[line] for line in lines] + [end]
    pieces = [text[a:b] for a, b in itertools.pairwise(bounds)]
    return [piece if piece.endswith("\n") else piece + "\n" for piece in pieces]


def _same(item: Any) -> Any:
    """An item as compared for reuse: defaults dropped (units 1, no modifiers), codes as text."""
    value = _normal(_plain(item))
    if isinstance(value, dict):
        value = {k: sorted(v) if k == "modifiers" else v for k, v in value.items()
                 if not (k == "units" and v == "1") and not (k == "modifiers" and not v)}
    return value


def _plain(node: Any) -> Any:
    if isinstance(node, dict):
        return {str(k): _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    return str(node) if isinstance(node, str) else node


def _check(before: Any, after: Any, name: str, new: dict[str, Value | None]) -> None:
    """The rewritten file reads as the old one but for this case's expect, which reads (as
    the model reads it: `units: 1` is the default) as meant."""
    want, got = _plain(before), _plain(after)
    want_case, got_case = _find(want, name), _find(got, name)
    intended = merged(want_case.pop("expect"), new)
    written = got_case.pop("expect")
    if _normal(want) != _normal(got) or Expect.model_validate(intended) != Expect.model_validate(written):
        raise ValueError("the rewritten file does not read back as intended")


def _normal(node: Any) -> Any:
    """Codes and modifiers compare as text, as the model reads them (20553 is "20553")."""
    if isinstance(node, dict):
        return {k: _normal(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_normal(v) for v in node]
    return str(node) if isinstance(node, int) and not isinstance(node, bool) else node


def accept(changes: list, names: set[str] | None) -> Accepted:
    """Rewrite the expect blocks of the changed cases named (all where `names` is None)."""
    report = Accepted()
    by_file: dict[str, list] = {}
    for change in changes:
        if names is not None and change.name not in names:
            continue
        by_file.setdefault(change.after.record.file, []).append(change)
    for file, group in by_file.items():
        path = Path(file)
        if path.suffix == ".jsonl":  # a line per case: rewriting one would re-serialise the line
            report.errors += [f"{c.where}  {escape(c.name)}: a JSONL case file is not rewritten; edit its expect "
                              "by hand" for c in group]
            continue
        try:
            text = original = path.read_text(encoding="utf-8")
        except OSError as exc:
            report.errors.append(f"{escape(file)}: cannot be read: {exc.strerror or exc}")
            continue
        notes: list[str] = []
        for change in group:
            case = change.after.case
            new, dropped = updates(case, change.before.outcome, change.after.outcome)
            label = f"{change.where}  {escape(change.name)}"
            if not new:
                notes.append(f"{label}: its expect block still holds; not rewritten")
                continue
            try:
                raw = _find(json.loads(text) if path.suffix == ".json" else _plain(_load(text)), change.name)
                if not still_checks(raw["expect"], new):
                    notes.append(f"{label}: its expect block would check nothing; not rewritten (edit it by hand)")
                    continue
                text = rewrite(text, path.suffix, change.name, new)
            except (ValueError, KeyError, YAMLError) as exc:
                report.errors.append(f"{label}: could not rewrite its expect block: {escape(str(exc))}")
                continue
            notes.append(f"{label}: expect {', '.join(sorted(new))} updated")
            notes += [f"  {d}" for d in dropped]
        if text != original:
            path.write_text(text, encoding="utf-8")
            report.rewritten.append(file)
        report.notes += notes
    return report
