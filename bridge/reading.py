"""Reading documentation text: the muscle text of a procedure, as clinicians write it,
into the lexicon terms it mentions, the side words that govern each, and what is left.

This is the one place where documentation wording is normalised and split; what a term
or a side word means is the KB's business (kb/reference/muscles.lp, generated from
kb/lexicon/muscles.yaml): the reader only knows which texts are terms and which are side
words, and hands on the texts. Every form it reads has a unit test (tests/test_reading.py)
and a case (cases/muscles/).

    "R levator scapulae, L trapezius"      levator scapulae (r), trapezius (l)
    "bilateral splenius capitis and cervicis"  splenius capitis (bilateral), splenius cervicis (bilateral)
    "upper and middle trapezius"           upper trapezius, middle trapezius
    "lumbar paraspinals L3-L5"             lumbar paraspinals (the level is set apart)
    "trapezius (upper), SCM (R)"           upper trapezius, scm (r)

How a side word governs (as a reader takes it): the text is a list of items joined by
commas, "and", "&", "+", "/" or "with" (";" ends a list). A side word before the names
of an item governs that item and the items after it that have no side word of their own,
until the list ends; a side word after the names governs its item and the items before
it that have none. An item that is only a side word ("right trapezius and left") repeats
the item before it on that side. A word that is not a term and not part of one
("upper" in "upper and middle trapezius") is read with the term of a neighbouring item
("upper trapezius", "rhomboid major and minor": "rhomboid minor") where that makes a
lexicon term; anything else is left over, and the KB reports it.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field

# Words that carry no muscle and no side: the reader passes over them.
FILLERS = frozenset({
    "a", "an", "the", "of", "at", "on", "in", "into", "to", "muscle", "muscles", "musculus", "musc", "m", "mm",
    "belly", "bellies", "level", "levels", "trigger", "point", "points", "tp", "tps", "tpi", "tpis", "x",
    "injection", "injections", "injected", "inj", "needled", "needling", "dry", "side", "sides", "sided",
    "trp", "trps", "mtrp", "mtrps", "fiber", "fibers", "fibre", "fibres", "portion", "portions", "area", "areas",
    "region", "regions", "insertion", "insertions", "origin", "attachment", "site", "sites", "each", "etc",
    "as", "well", "ml", "cc",
})
# Words and marks that join the items of a list; ";" ends the list, and so does the end of
# a sentence or a line (SENTENCE, see tokens()).
JOINERS = frozenset({",", "and", "&", "+", "/", "with", "plus", "also", "including"})
SENTENCE = "\u00b6"
ENDS = frozenset({";", SENTENCE})

_DASHES = dict.fromkeys(map(ord, "\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58\ufe63\uff0d"), "-")
_QUOTES = dict.fromkeys(map(ord, "\u2018\u2019\u02bc\u2032"), "'")
_SIGNS = {ord("\u2265"): ">", ord("\u2264"): "<", ord(SENTENCE): " "}
# A level or segment: "c3-c6", "l4/5", "l5-s1", "t4 to t8"; a space after the letter only
# where a range follows ("l 4-5"), so that "L 2 TPs" stays a side and a count.
_LEVEL = re.compile(r"(?<![a-z0-9])[clts](?:[0-9]{1,2}|\s[0-9]{1,2}(?=\s*(?:-|/|to\b|through|thru|level)))"
                    r"(?:\s*(?:-|/|to|through|thru)\s*[clts]?[0-9]{1,2})*(?![a-z0-9])")
_TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?|[,;/&+()<>\u00b6-]")
_COUNT = re.compile(r"x?[0-9]+x?")
# The end of a sentence (a full stop, then a capital) or of a line, marked before the text
# is put in lower case.
_SENTENCE_END = re.compile(r"\.\s+(?=[A-Z])|\s*[\r\n]+\s*")


def normalise(text: str, sentences: bool = False) -> str:
    """NFKC (full-width letters, ligatures, non-breaking spaces), lower case, one kind of
    dash and apostrophe, single spaces. With `sentences`, the end of a sentence or a line
    is kept as a mark of its own."""
    text = unicodedata.normalize("NFKC", text).translate(_DASHES).translate(_QUOTES).translate(_SIGNS)
    if sentences:
        text = _SENTENCE_END.sub(f" {SENTENCE} ", text)
    return " ".join(text.lower().split())


def tokens(text: str) -> list[str]:
    """The words and marks of normalised text; a level ("l4-5", "c3 to c6") is one token,
    written '#l4-5'; full stops and other marks are spaces."""
    out: list[str] = []
    pos = 0
    for match in _LEVEL.finditer(text):
        out.extend(_TOKEN.findall(text[pos:match.start()]))
        out.append("#" + re.sub(r"\s+", "", match.group()))
        pos = match.end()
    out.extend(_TOKEN.findall(text[pos:]))
    return out


def term_key(text: str) -> tuple[str, ...]:
    """A lexicon text as the reader matches it: its tokens, hyphens read as spaces."""
    return tuple(t for t in tokens(normalise(text)) if t != "-")


@dataclass
class _Node:
    children: dict[str, _Node] = field(default_factory=dict)
    term: str | None = None  # the lexicon term ending here
    side: str | None = None  # the side word ending here


class Vocabulary:
    """The texts the reader recognises: lexicon terms (names, parts, groups, region terms,
    ambiguous names) and side words, each as the KB writes it, matched token by token."""

    def __init__(self, terms: Iterable[str], sides: Iterable[str]):
        self.root = _Node()
        self.words: set[str] = set()  # every word of a term, for joining hyphenated words
        for text in terms:
            self._node(text).term = text
        for text in sides:
            self._node(text).side = text
        self._cache: dict[str, Reading] = {}

    def _node(self, text: str) -> _Node:
        node = self.root
        for token in term_key(text):
            node = node.children.setdefault(token, _Node())
            self.words.add(token)
        return node

    def read(self, text: str) -> Reading:
        """The mentions and the left-over text of one procedure's muscle text."""
        reading = self._cache.get(text)
        if reading is None:
            reading = _Reader(self, text).read()
            if len(self._cache) < 200_000:
                self._cache[text] = reading
        return reading

    def terms_in(self, text: str) -> list[str]:
        """The terms of normalised text, each by longest match, left to right (no lists, no
        side words: the reader of injectate text)."""
        toks = _joined(tokens(text), self.words)
        found: list[str] = []
        i = 0
        while i < len(toks):
            match = self.match(toks, i)
            if match is not None and match[1].term is not None:
                found.append(match[1].term)
                i = match[0]
            else:
                i += 1
        return found

    def match(self, toks: list[str] | tuple[str, ...], i: int) -> tuple[int, _Node] | None:
        """The longest term or side word starting at token i: (end, node)."""
        node, best, j = self.root, None, i
        while j < len(toks):
            if toks[j] in ("-", SENTENCE) and j > i:  # "upper-trapezius", "Lev. Scap.": a space
                j += 1
                continue
            child = None
            for form in _forms(toks[j]):
                child = node.children.get(form)
                if child is not None:
                    break
            if child is None:
                break
            node, j = child, j + 1
            if node.term is not None or node.side is not None:
                best = (j, node)
        return best


def _forms(token: str) -> tuple[str, ...]:
    """A word as written, then as its singular: "scms", "scm's", "qls", "traps",
    "multifidi", "splenii"."""
    if token.endswith("'s"):
        return (token, token[:-2])
    if len(token) <= 2:
        return (token,)
    forms = [token]
    if len(token) == 3:
        if token.endswith("s"):  # "qls", "uts"
            forms.append(token[:-1])
        return tuple(forms)
    if token.endswith("ii"):
        forms.append(token[:-2] + "ius")
    elif token.endswith("i"):
        forms.append(token[:-1] + "us")
    if token.endswith("es"):
        forms.append(token[:-2])
    if token.endswith("s") and not token.endswith(("ss", "us", "is")):
        forms.append(token[:-1])
    return tuple(forms)


@dataclass(frozen=True)
class Mention:
    term: str  # the lexicon text
    sides: tuple[str, ...]  # the side words that govern it, as the lexicon writes them


@dataclass(frozen=True)
class Reading:
    mentions: tuple[Mention, ...]
    unread: tuple[str, ...]  # text left over, each piece as written (normalised)


Sides = tuple[str, ...]  # the side words that govern one mention together


@dataclass
class _Item:
    """One item of a list: its terms, its side words before and after them, and the words
    nothing read."""

    terms: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)  # (lexicon text, tokens)
    before: list[str] = field(default_factory=list)
    after: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    end: bool = False  # ";" or the end of a sentence follows: the list ends here
    hard: bool = False  # the end is a ";"
    # a term that begins a longer lexicon term and is followed at once by an unknown word
    # ("levator scapuale", "gluteus medeus"): if no neighbour explains the word, the two
    # are one misspelt name, left over whole, rather than the short term and a stray word
    continued: tuple[str, ...] | None = None
    # Each alternative gives the item's terms one mention; two side words written as a pair
    # ("R/L", "right and left") are two alternatives, one per side.
    own_before: list[Sides] = field(default_factory=list)
    own_after: list[Sides] = field(default_factory=list)
    sides: list[Sides] = field(default_factory=list)  # resolved by _govern()

    def own(self) -> bool:
        return bool(self.own_before or self.own_after)


class _Reader:
    def __init__(self, vocabulary: Vocabulary, text: str):
        self.vocabulary = vocabulary
        self.toks = _joined(tokens(normalise(text, sentences=True)), vocabulary.words)

    def read(self) -> Reading:
        items = self.items()
        self.share_words(items)
        for item in items:
            if item.unknown and item.continued is not None:
                item.terms = [t for t in item.terms if t[1] != item.continued]
                item.unknown = [*item.continued, *item.unknown]
            item.own_before = [tuple(item.before)] if item.before else []
            item.own_after = [tuple(item.after)] if item.after else []
        unread = _side_only_items(items)
        _govern(items)
        mentions: list[Mention] = []
        for item in items:
            for term, _ in item.terms:
                mentions.extend(Mention(term, sides) for sides in item.sides or [()])
            if item.unknown:
                unread.append(" ".join(item.unknown))
        return Reading(tuple(dict.fromkeys(mentions)), tuple(dict.fromkeys(unread)))

    def items(self) -> list[_Item]:
        """Split the tokens into items at joiners; terms and side words by longest match;
        fillers, levels and counts set aside; any other word unknown."""
        items: list[_Item] = []
        item = _Item()
        toks, i = self.toks, 0
        open_term: tuple[str, ...] | None = None  # the term just read, if a longer term begins with it
        while i < len(toks):
            found = self.vocabulary.match(toks, i)
            if found is not None:
                end, node = found
                if node.term is not None:
                    item.terms.append((node.term, tuple(toks[i:end])))
                    open_term = tuple(toks[i:end]) if node.children else None
                else:
                    (item.after if item.terms or item.unknown else item.before).append(node.side or "")
                    open_term = None
                i = end
                continue
            token = toks[i]
            if token == SENTENCE and not (item.terms or item.unknown):
                pass  # "R. Piriformis": a full stop after a side word alone ends nothing
            elif token in JOINERS or token in ENDS:
                if token in ENDS:
                    last = item if (item.terms or item.before or item.after or item.unknown) else \
                        (items[-1] if items else None)
                    if last is not None:
                        last.end, last.hard = True, last.hard or token == ";"
                items.append(item)
                item = _Item()
                open_term = None
            elif not (token.startswith("#") or token in FILLERS or token in "()<>-" or _COUNT.fullmatch(token)):
                if open_term is not None and not item.unknown:
                    item.continued = open_term
                item.unknown.append(token)
                open_term = None
            elif token not in "()":
                open_term = None
            i += 1
        items.append(item)
        return [it for it in items if it.terms or it.before or it.after or it.unknown]

    def share_words(self, items: list[_Item]) -> None:
        """Words that are no term, read with a term of their own item ("trapezius (upper)")
        or of a neighbouring item ("upper and middle trapezius", "rhomboid major and
        minor") where the two make a lexicon term."""
        changed = True
        while changed:
            changed = False
            for k, item in enumerate(items):
                if not item.unknown:
                    continue
                own = [term for _, term in item.terms]
                # a neighbour lends its term only to an item without one ("upper and middle
                # trapezius"), never to one with a term of its own ("tibialis anterior,
                # posterior calf" is not tibialis posterior)
                before = [items[k - 1].terms[-1][1]] if k and items[k - 1].terms and not own else []
                after = [items[k + 1].terms[0][1]] if k + 1 < len(items) and items[k + 1].terms and not own else []
                for term in own + before + after:
                    shared = self.shared(item.unknown, term)
                    if shared is not None:
                        if term in own:  # the qualifier names part of the item's own term
                            item.terms = [t for t in item.terms if t[1] != term]
                        item.terms.append(shared)
                        item.unknown = []
                        changed = True
                        break

    def shared(self, words: list[str], term: tuple[str, ...]) -> tuple[str, tuple[str, ...]] | None:
        """The lexicon term made of `words` and part of `term` ("upper" + "trapezius",
        "rhomboid" + "minor"), or of `words` and the whole term ("upper" + "trapezius")."""
        for cut in range(len(term)):
            for candidate in (tuple(words) + term[cut:], term[:len(term) - cut] + tuple(words)):
                found = self.vocabulary.match(candidate, 0)
                if found is not None and found[0] == len(candidate) and found[1].term is not None \
                        and candidate != term:
                    return found[1].term, candidate
        return None


def _side_only_items(items: list[_Item]) -> list[str]:
    """What an item that is only a side word does, and the side words that govern nothing
    (returned, to be reported as text left over):
    - with the item after it, a pair ("R/L SCM", "right & left SCM, scalenes"): one
      mention per side, for that item and those its side words govern;
    - after an item with a side word of its own, a pair with that side word ("right
      trapezius and left"; "UT, LS R/L");
    - after items with no side word, it governs them from behind ("trapezius, levator
      scapulae, bilateral"), even across the end of a sentence ("Glut. Med. L")."""
    left_over: list[str] = []
    for k, item in enumerate(items):
        if item.terms or item.unknown or not item.before:
            continue
        word = tuple(item.before)
        after = items[k + 1] if k + 1 < len(items) else None
        before = items[k - 1] if k and items[k - 1].terms else None
        if before is not None and before.end and (before.hard or not (item.end or after is None)):
            before = None
        if after is not None and after.terms and after.own_before and not item.end:
            after.own_before.insert(0, word)
        elif before is not None and before.own_after:
            before.own_after.append(word)
        elif before is not None and before.own_before:
            before.own_before.append(word)
        elif before is not None:
            before.end = before.hard = False  # the full stop was an abbreviation's
            before.own_after.append(word)
        else:
            left_over.append(" ".join(item.before))
        item.before = []
    return left_over


def _govern(items: list[_Item]) -> None:
    """Each item's sides: its own; else those written before the names of an earlier item
    of the same list, and those written after the names of a later item (two different
    ones are kept both, and the KB reports the conflict: a side is never guessed)."""
    forward: list[list[Sides]] = [[] for _ in items]
    backward: list[list[Sides]] = [[] for _ in items]
    carried: list[Sides] = []
    for k, item in enumerate(items):
        if item.own():
            carried = list(item.own_before)
        else:
            forward[k] = list(carried)
        if item.end:
            carried = []
    carried = []
    for k in reversed(range(len(items))):
        item = items[k]
        if item.end:
            carried = []
        if item.own_after:
            carried = list(item.own_after)
        elif item.own_before:
            carried = []
        else:
            backward[k] = list(carried)
    for k, item in enumerate(items):
        if item.own_before and item.own_after:  # "R trapezius L": one mention, both words
            item.sides = [tuple(w for sides in item.own_before + item.own_after for w in sides)]
        elif item.own():
            item.sides = item.own_before or item.own_after
        elif forward[k] and backward[k] and forward[k] != backward[k]:
            item.sides = [tuple(dict.fromkeys(w for sides in forward[k] + backward[k] for w in sides))]
        else:
            item.sides = forward[k] or backward[k]


def _joined(toks: list[str], words: set[str]) -> list[str]:
    """Hyphenated words that the lexicon writes as one word are one word:
    "sterno-cleido-mastoid" is "sternocleidomastoid"."""
    out: list[str] = []
    i = 0
    while i < len(toks):
        j = i
        while j + 2 < len(toks) and toks[j + 1] == "-" and toks[j + 2].isalpha():
            j += 2
        if j > i:
            whole = "".join(toks[i:j + 1:2])
            if whole in words:
                out.append(whole)
                i = j + 1
                continue
        out.append(toks[i])
        i += 1
    return out


# ---------------------------------------------------------------------- injectate text
@dataclass(frozen=True)
class Dose:
    """What an injectate text says of one drug: its name (as the lexicon writes it), and the
    dose (tenths of a mg) or, where no dose is written, the volume (tenths of a mL)."""

    name: str
    dose: int | None
    volume: int | None


_NUMBER = r"(\d*\.?\d+)"
_ML = r"(?:ml|cc)\b"
_PER = rf"mg\s*/\s*{_NUMBER}?\s*{_ML}"  # "mg/mL", "mg/1 mL", "mg/2 mL"
_VOLUME_OF_STRENGTH = re.compile(rf"{_NUMBER}\s*{_ML}(?:\s*of)?[^0-9.]*?{_NUMBER}\s*{_PER}")
_STRENGTH_THEN_VOLUME = re.compile(rf"{_NUMBER}\s*{_PER}[^0-9.]*?{_NUMBER}\s*{_ML}")
_MG = re.compile(rf"{_NUMBER}\s*mg\b(?!\s*/)")
_STATED = re.compile(rf"{_NUMBER}\s*mg\s*/\s*{_NUMBER}\s*{_ML}")
_VOLUME = re.compile(rf"{_NUMBER}\s*{_ML}")
# Where one injectate text names several drugs, each with its own dose
# ("Kenalog 40 mg + dexamethasone 4 mg", "lidocaine 1% 4 mL with Kenalog-40 1 mL").
_PARTS = re.compile(r"\s*(?:\+|,|;|&|\bwith\b|\band\b)\s*")


def dose(text: str) -> tuple[int | None, int | None]:
    """(dose, volume) of normalised injectate text about one drug, in tenths of a mg and of a
    mL: "40 mg", "40mg", "1 mL of 40 mg/mL", "40 mg/1 mL, 0.5 mL", ".5 mL of 40 mg/mL",
    "3 mg + 3 mg" (the sum); a volume alone ("1 mL") where no dose is written."""
    found = _VOLUME_OF_STRENGTH.search(text)
    if found:
        volume, strength, per = found.group(1), found.group(2), found.group(3) or "1"
        return round(float(volume) * float(strength) / float(per) * 10), None
    found = _STRENGTH_THEN_VOLUME.search(text)
    if found:
        strength, per, volume = found.group(1), found.group(2) or "1", found.group(3)
        return round(float(volume) * float(strength) / float(per) * 10), None
    amounts = _MG.findall(text)
    if amounts:
        return sum(round(float(a) * 10) for a in amounts), None
    found = _STATED.search(text)
    if found:  # "40 mg/1 mL" with no other volume: the stated volume, so 40 mg
        return round(float(found.group(1)) * 10), None
    volume = _VOLUME.search(text)
    return None, (round(float(volume.group(1)) * 10) if volume else None)


class Reader:
    """The readers of an encounter's documentation text: muscle text (Vocabulary.read) and
    injectate text (substance), each with the KB's own names."""

    def __init__(self, muscles: Vocabulary, drugs: Vocabulary):
        self.muscles = muscles
        self.drugs = drugs
        self._substances: dict[str, tuple[Dose, ...]] = {}

    def read(self, text: str) -> Reading:
        return self.muscles.read(text)

    def substance(self, text: str) -> tuple[Dose, ...]:
        """Each drug an injectate text names, with its own dose: the text is cut where one
        drug's part ends ("+", ",", "with", "and"); a part that names no drug belongs to the
        drug before it ("betamethasone 3 mg + 3 mg"), or the first one."""
        found = self._substances.get(text)
        if found is None:
            groups: list[tuple[list[str], list[str]]] = []  # (names, texts)
            loose: list[str] = []
            for part in _PARTS.split(normalise(text)):
                names = self.drugs.terms_in(part)
                if names:
                    groups.append((names, [*loose, part]))
                    loose = []
                elif groups:
                    groups[-1][1].append(part)
                else:
                    loose.append(part)
            doses: dict[str, Dose] = {}
            for names, texts in groups:
                amount, volume = dose(" ".join(texts))
                for name in names:
                    doses.setdefault(name, Dose(name, amount, volume))
            found = tuple(doses.values())
            if len(self._substances) < 100_000:
                self._substances[text] = found
        return found
