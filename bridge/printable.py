"""User text as it may be printed: escaped, and short.

Every message that quotes what a user wrote goes through `quote`, so a newline, a NUL, a
terminal escape or a bidirectional override in an id or a muscle name cannot forge an
output line, and a huge value cannot flood the terminal."""

from __future__ import annotations

import unicodedata

EXCERPT = 60  # characters of user text quoted in a message

# Characters that are never part of documentation text: controls, format characters
# (bidirectional overrides, zero-width joiners), surrogates, private use, line and
# paragraph separators.
_UNPRINTABLE = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}


def unprintable(ch: str) -> bool:
    return unicodedata.category(ch) in _UNPRINTABLE


def escape(text: str) -> str:
    """The text with every unprintable character written as a Python escape."""
    if text.isprintable() and text.isascii():
        return text
    out = []
    for ch in text:
        if ch == "\\":
            out.append("\\\\")
        elif unprintable(ch):
            code = ord(ch)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")
        else:
            out.append(ch)
    return "".join(out)


def excerpt(text: str, limit: int = EXCERPT) -> str:
    """Escaped, and cut at `limit` characters (marked with an ellipsis): for text printed
    unquoted, such as a key of the input in a field path, or a file name."""
    return escape(text[:limit]) + ("…" if len(text) > limit else "")


def quote(value: object, limit: int = EXCERPT) -> str:
    """A short, escaped excerpt of a user value, quoted: 'right trap…' or a description of
    a structure (never the structure itself: an expanded YAML alias can be enormous)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "nothing"
    if isinstance(value, int):
        digits = len(str(abs(value))) if abs(value) < 10**50 else None
        return str(value) if digits is not None and digits <= 20 else "a number of more than 20 digits"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, BigNumber):
        return repr(value)
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, (list, tuple)):
        return "a list"
    text = str(value)
    cut = text[:limit]
    return "'" + escape(cut).replace("'", "\\'") + ("…'" if len(text) > limit else "'")


def kind(value: object) -> str:
    """What a value is, for 'must be a list, not ...' messages."""
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, (int, float)):
        return f"the number {quote(value)}"
    if isinstance(value, BigNumber):
        return repr(value)
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, (list, tuple)):
        return "a list"
    return f"the text {quote(value)}"


class BigNumber:
    """A number written with more digits than any field takes (JSON and YAML loaders turn
    such a literal into this, not into a Python int: converting 5,000 digits is refused
    by Python and would abort the whole file)."""

    __slots__ = ("digits",)

    def __init__(self, digits: str):
        self.digits = digits

    def __repr__(self) -> str:
        return f"a number of {len(self.digits)} characters"


def too_big(literal: str) -> bool:
    return len(literal) > 20
