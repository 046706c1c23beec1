"""`tpkb doc`: the rule reference, as Markdown or as self-contained HTML.

The reference is built once as a list of sections of plain blocks (headings with anchors,
paragraphs of text and links, preformatted policy text, lists), then written by one of
two writers. Per KB file, in include order: its header comment, then every rule with its
label, source (each [id] a link to the register), the policy text above it, file:line,
the predicates it reads and derives, and the cases that fire it. Then the findings, the
audit reasons, every predicate (input, table, derived) with its %*! documentation and the
rules that read and derive it, the source register with the rules citing each entry, and
the cases. Every rule, predicate, case and source is an anchor, so links work both ways.

One page, or (`split`) one page per KB file and one per reference section, with an index.
The HTML needs nothing from the network: inline CSS, no scripts, fonts or images.
"""

from __future__ import annotations

import html
import re
import textwrap
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from . import engine
from .engine import Literal, Statement
from .kb import KB
from .rules import Rule, finding_id, reason_id
from .sources import CITATION, citations
from .tables import Signature

CASES_SHOWN = 20  # under a rule; a plumbing rule fires in most cases, and the Cases section lists them all


# ---------------------------------------------------------------------- the document, as plain blocks
@dataclass(frozen=True)
class Link:
    text: str
    anchor: str


Inline = list  # of str and Link


@dataclass
class Block:
    kind: str  # h (level, text, anchor), p (inline), pre (text), items (list of (label, inline)), list (inlines)
    inline: Inline = field(default_factory=list)
    text: str = ""
    level: int = 0
    anchor: str = ""
    items: list = field(default_factory=list)


@dataclass
class Section:
    page: str  # the page it goes on when split: a file's slug, or a reference section
    title: str
    anchor: str
    blocks: list[Block] = field(default_factory=list)

    def h(self, level: int, text: str, anchor: str = "") -> None:
        self.blocks.append(Block("h", text=text, level=level, anchor=anchor))

    def p(self, *inline: str | Link) -> None:
        self.blocks.append(Block("p", inline=list(inline)))

    def pre(self, text: str) -> None:
        self.blocks.append(Block("pre", text=text))

    def fields(self, items: list[tuple[str, Inline]]) -> None:
        self.blocks.append(Block("items", items=[(k, v) for k, v in items if v]))

    def bullets(self, lines: list[Inline]) -> None:
        if lines:
            self.blocks.append(Block("list", items=lines))


@dataclass
class CaseRef:
    name: str
    where: str
    description: str
    source: str
    fired: list[str]
    anchor: str = ""


# ---------------------------------------------------------------------- anchors
def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-") or "x"


def rule_anchor(rid: str) -> str:
    return "rule-" + _slug(rid)


def pred_anchor(sig: Signature) -> str:
    return f"pred-{_slug(sig[0])}-{sig[1]}"


def source_anchor(sid: str) -> str:
    return "src-" + _slug(sid)


def file_anchor(file: str) -> str:
    return "file-" + _slug(file.removeprefix("kb/").removesuffix(".lp"))


# ---------------------------------------------------------------------- reading the KB files
def policy_text(comment: str) -> str:
    """A %* ... *% block comment as plain text: the markers off, the lines dedented."""
    body = comment.strip()
    body = body[2:] if body.startswith("%*") else body
    body = body[:-2] if body.endswith("*%") else body
    first, _, rest = body.partition("\n")
    return "\n".join(part for part in (first.strip(), textwrap.dedent(rest).strip()) if part)


def _is_policy(stmt: Statement) -> bool:
    return stmt.kind == "comment" and stmt.block and not stmt.comment.startswith("%*!")


@dataclass
class FileText:
    """One KB file as the reference shows it: its header comment and its policy blocks."""

    file: str
    header: str
    blocks: list[tuple[int, str]]  # (last line, text) of each policy block after the header


def read_files(kb: KB) -> list[FileText]:
    """The KB's files in include order, each with its header and policy blocks."""
    statements, _messages = engine.read_kb(kb.root / "main.lp")
    files: dict[str, FileText] = {}
    for stmt in statements:
        name = "kb/" + stmt.file
        entry = files.get(name)
        if entry is None:
            header = policy_text(stmt.comment) if _is_policy(stmt) else ""
            files[name] = FileText(name, header, [])
            continue
        if _is_policy(stmt):
            entry.blocks.append((stmt.end, policy_text(stmt.comment)))
    return list(files.values())


def block_above(text: FileText, rule: Rule) -> str:
    """The policy block that stands nearest above the rule in its file ('' if only the header)."""
    found = ""
    for end, block in text.blocks:
        if end < rule.line:
            found = block
    return found


# ---------------------------------------------------------------------- what reads and derives what
def body_atoms(rule: Rule) -> list[tuple[Signature, bool]]:
    """The predicates a rule's body reads, in order, each with whether it is negated."""
    out: list[tuple[Signature, bool]] = []
    lit: Literal
    for lit in rule.body:
        if lit.atom is not None:
            out.append(((lit.atom.name, len(lit.atom.args)), lit.negated))
        out.extend(((e.name, len(e.args)), False) for e in lit.elements)
    return list(dict.fromkeys(out))


# ---------------------------------------------------------------------- building the reference
class Reference:
    """The reference of one KB as sections of blocks."""

    def __init__(self, kb: KB, cases: list[CaseRef] | None):
        self.kb = kb
        self.cases = cases
        self.readers: dict[Signature, list[str]] = defaultdict(list)
        self.derivers: dict[Signature, list[str]] = defaultdict(list)
        for rule in kb.by_number:
            self.derivers[rule.signature].append(rule.id)
            for sig, _negated in body_atoms(rule):
                if rule.id not in self.readers[sig]:
                    self.readers[sig].append(rule.id)
        self.cited: dict[str, list[str]] = defaultdict(list)
        for rule in kb.by_number:
            for sid in dict.fromkeys(citations(rule.source)):
                self.cited[sid].append(rule.id)
        self.firing: dict[str, list[CaseRef]] = defaultdict(list)
        taken: set[str] = set()
        for case in cases or []:
            anchor = base = "case-" + _slug(case.name)
            n = 1
            while anchor in taken:
                n += 1
                anchor = f"{base}-{n}"
            taken.add(anchor)
            case.anchor = anchor
            for rid in case.fired:
                self.firing[rid].append(case)

    def sections(self) -> list[Section]:
        out = [self.file_section(text) for text in read_files(self.kb)]
        out += [self.findings(), self.predicates(), self.register()]
        if self.cases is not None:
            out.append(self.case_section())
        return out

    # -- inline pieces
    def rule_link(self, rid: str) -> Link:
        return Link(rid, rule_anchor(rid))

    def rule_links(self, rids: Iterable[str]) -> Inline:
        out: Inline = []
        for i, rid in enumerate(rids):
            out += [", "] if i else []
            out.append(self.rule_link(rid))
        return out

    def pred_link(self, sig: Signature) -> Link:
        return Link(f"{sig[0]}/{sig[1]}", pred_anchor(sig))

    def source_inline(self, text: str) -> Inline:
        """A rule's source as written, each registered [id] a link to its entry."""
        out: Inline = []
        last = 0
        for m in CITATION.finditer(text):
            out.append(text[last:m.start()])
            sid = m.group(1).strip()
            out.append(Link(f"[{sid}]", source_anchor(sid)) if sid in self.kb.sources else m.group(0)
                       + " (not in the register)")
            last = m.end()
        out.append(text[last:])
        return [part for part in out if part != ""]

    # -- the sections
    def file_section(self, text: FileText) -> Section:
        rules = [r for r in self.kb.by_number if r.file == text.file]
        section = Section(_slug(text.file.removeprefix("kb/").removesuffix(".lp")).replace(".", "-"), text.file,
                          file_anchor(text.file))
        section.h(2, text.file, section.anchor)
        if text.header:
            section.pre(text.header)
        documented = [sig for sig, doc in self.kb.docs.items() if doc.file == text.file]
        if documented:
            section.p("Documents: ", *self._joined(self.pred_link(sig) for sig in documented))
        if not rules:
            section.p("No rules in this file.")
        for rule in rules:
            self.rule_entry(section, rule, block_above(text, rule))
        return section

    def rule_entry(self, section: Section, rule: Rule, policy: str) -> None:
        section.h(3, rule.id, rule_anchor(rule.id))
        if policy:
            section.pre(policy)
        derives: Inline = [self.pred_link(rule.signature)]
        ident = finding_id(rule)
        if ident is not None:
            derives += [" (finding ", Link(ident, "finding-" + _slug(ident)), ")"]
        ident = reason_id(rule)
        if ident is not None:
            derives += [" (reason ", Link(ident, "reason-" + _slug(ident)), ")"]
        reads: Inline = []
        for i, (sig, negated) in enumerate(body_atoms(rule)):
            reads += ([", "] if i else []) + (["not "] if negated else []) + [self.pred_link(sig)]
        items: list[tuple[str, Inline]] = [
            ("label", [rule.label]),
            ("source", self.source_inline(rule.source)),
            ("at", [rule.at]),
            ("kind", ["plumbing (explanations fold it into the rule above it)"] if rule.plumbing else []),
            ("reads", reads),
            ("derives", derives),
        ]
        if self.cases is not None:
            fired = self.firing.get(rule.id, [])
            shown: Inline = self._joined(Link(c.name, c.anchor) for c in fired[:CASES_SHOWN])
            if len(fired) > CASES_SHOWN:
                shown += [f" and {len(fired) - CASES_SHOWN} more (", Link("Cases", "cases"), ")"]
            items.append(("cases", shown if fired else ["no case fires it"]))
        section.fields(items)

    def findings(self) -> Section:
        section = Section("findings", "Findings and audit reasons", "findings")
        section.h(2, "Findings and audit reasons", section.anchor)
        section.p("A finding is a derived finding(E, Id, Subject) (or not_covered(E, Code, Id)); its severity is in "
                  "kb/reference/findings.lp. An audit reason is a derived reason(E, B, Id, X), listed in "
                  "kb/reference/reasons.lp.")
        by_finding: dict[str, list[str]] = defaultdict(list)
        by_reason: dict[str, list[str]] = defaultdict(list)
        for rule in self.kb.by_number:
            if (ident := finding_id(rule)) is not None:
                by_finding[ident].append(rule.id)
            if (ident := reason_id(rule)) is not None:
                by_reason[ident].append(rule.id)
        section.h(3, "Findings", "findings-list")
        for ident, severity in sorted(self.kb.severities().items()):
            section.h(4, ident, "finding-" + _slug(ident))
            section.fields([("severity", [severity]),
                            ("derived by", self.rule_links(by_finding.get(ident, [])) or ["no rule"])])
        section.h(3, "Audit reasons", "reasons-list")
        for ident, meaning in sorted(self.kb.reasons().items()):
            section.h(4, ident, "reason-" + _slug(ident))
            section.fields([("meaning", [meaning]),
                            ("derived by", self.rule_links(by_reason.get(ident, [])) or ["no rule"])])
        return section

    def predicates(self) -> Section:
        section = Section("predicates", "Predicates", "predicates")
        section.h(2, "Predicates", section.anchor)
        section.p("Inputs (kb/schema.lp: what the bridge writes for each encounter), tables (kb/reference/: facts "
                  "only), and the predicates the rules derive, each with its documentation and the rules that read "
                  "and derive it.")
        table_sigs = set(self.kb.tables.tables) - set(self.derivers)
        groups = (("Inputs", "inputs", sorted(self.kb.inputs)),
                  ("Tables", "tables", sorted(table_sigs - self.kb.inputs)),
                  ("Derived predicates", "derived", sorted(set(self._all_signatures()) - self.kb.inputs - table_sigs)))
        for title, anchor, sigs in groups:
            section.h(3, title, "predicates-" + anchor)
            for sig in sigs:
                self.predicate_entry(section, sig)
        return section

    def predicate_entry(self, section: Section, sig: Signature) -> None:
        section.h(4, f"{sig[0]}/{sig[1]}", pred_anchor(sig))
        doc = self.kb.docs.get(sig)
        items: list[tuple[str, Inline]] = []
        if doc is not None:
            items.append(("reads as", [f"{doc.name}({', '.join(doc.args)}): {doc.reading}"]))
            if doc.negative:
                items.append(("when it does not hold", [doc.negative]))
            items.append(("documented at", [f"{doc.file}:{doc.line}"]))
        table = self.kb.tables.tables.get(sig)
        if table is not None:
            items.append(("table", [f"{table.file}:{table.line}, {len(self.kb.tables.rows(sig[0]))} rows"]))
        items.append(("derived by", self.rule_links(self.derivers.get(sig, []))))
        items.append(("read by", self.rule_links(self.readers.get(sig, [])) or ["no rule"]))
        section.fields(items)

    def register(self) -> Section:
        section = Section("sources", "Sources", "sources")
        section.h(2, "Sources", section.anchor)
        section.p("The register kb/sources.yaml: each source the KB cites, and the rules citing it (a rule cites a "
                  "source as [id] on its %@ source: line).")
        for source in self.kb.sources.values():
            section.h(3, f"[{source.id}] {source.title}", source_anchor(source.id))
            section.fields([("publisher", [source.publisher]), ("version", [source.version]),
                            ("where", [source.where]), ("note", [source.note]),
                            ("cited by", self.rule_links(self.cited.get(source.id, [])) or ["no rule"])])
        unknown = sorted(sid for sid in self.cited if sid not in self.kb.sources)
        if unknown:
            section.h(3, "Citations not in the register", "sources-unregistered")
            section.bullets([[f"[{sid}]: ", *self.rule_links(self.cited[sid])] for sid in unknown])
        return section

    def case_section(self) -> Section:
        section = Section("cases", "Cases", "cases")
        section.h(2, "Cases", section.anchor)
        section.p(f"The case library: {len(self.cases or [])} cases, each with the rules it fires.")
        for case in self.cases or []:
            section.h(3, case.name, case.anchor)
            section.fields([("file", [case.where]), ("description", [case.description]),
                            ("source", [case.source]),
                            ("fires", self.rule_links(r for r in case.fired if r in self.kb.rules) or ["no rule"])])
        return section

    def _all_signatures(self) -> list[Signature]:
        return sorted(set(self.derivers) | set(self.readers) | set(self.kb.inputs) | set(self.kb.docs)
                      | set(self.kb.tables.tables))

    @staticmethod
    def _joined(links: Iterable[str | Link]) -> Inline:
        out: Inline = []
        for i, item in enumerate(links):
            out += [", "] if i else []
            out.append(item)
        return out


def case_refs(kb: KB, directory: str | Path) -> tuple[list[CaseRef], list[str]]:
    """Run the case library once: each case with the rules it fires, and the problems."""
    from .cases import run_cases

    run = run_cases(kb, [directory])
    refs = [CaseRef(r.case.name, r.record.where, r.case.description, r.case.source,
                    sorted(set(r.outcome.fired or []))) for r in run.results]
    return sorted(refs, key=lambda c: (c.where, c.name)), [str(p) for p in run.problems]


# ---------------------------------------------------------------------- writers
CSS = """
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; max-width: 60rem; margin: 2rem auto;
       padding: 0 1rem; color: #1b1f24; }
h1, h2, h3, h4 { line-height: 1.2; } h2 { border-bottom: 1px solid #d0d7de; padding-bottom: .2rem; margin-top: 2.5rem; }
h3 { margin-top: 1.8rem; font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 1.05rem; }
h4 { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: .95rem; margin: 1.2rem 0 .3rem; }
pre { background: #f6f8fa; border-left: 3px solid #d0d7de; padding: .6rem .8rem; white-space: pre-wrap; }
dl { display: grid; grid-template-columns: 9rem 1fr; gap: .15rem .8rem; margin: .4rem 0 1rem; }
dt { color: #57606a; } dd { margin: 0; }
a { color: #0550ae; text-decoration: none; } a:hover { text-decoration: underline; }
nav ul { columns: 2; } :target { background: #fff8c5; }
"""


class Writer:
    ext = ""

    def __init__(self, page_of: dict[str, str], page: str, split: bool):
        self.page_of, self.page, self.split = page_of, page, split

    def href(self, anchor: str) -> str:
        target = self.page_of.get(anchor, self.page)
        if not self.split or target == self.page:
            return "#" + anchor
        return f"{target}.{self.ext}#{anchor}"

    def page_text(self, title: str, sections: list[Section], nav: list[Section]) -> str:
        raise NotImplementedError


class HtmlWriter(Writer):
    ext = "html"

    def inline(self, parts: Inline) -> str:
        return "".join(f'<a href="{html.escape(self.href(p.anchor))}">{html.escape(p.text)}</a>'
                       if isinstance(p, Link) else html.escape(p) for p in parts)

    def block(self, b: Block) -> str:
        if b.kind == "h":
            ident = f' id="{html.escape(b.anchor)}"' if b.anchor else ""
            return f"<h{b.level}{ident}>{html.escape(b.text)}</h{b.level}>"
        if b.kind == "p":
            return f"<p>{self.inline(b.inline)}</p>"
        if b.kind == "pre":
            return f"<pre>{html.escape(b.text)}</pre>"
        if b.kind == "items":
            rows = "".join(f"<dt>{html.escape(k)}</dt><dd>{self.inline(v)}</dd>" for k, v in b.items)
            return f"<dl>{rows}</dl>"
        return "<ul>" + "".join(f"<li>{self.inline(item)}</li>" for item in b.items) + "</ul>"

    def page_text(self, title: str, sections: list[Section], nav: list[Section]) -> str:
        links = "".join(f'<li><a href="{html.escape(self.href(s.anchor))}">{html.escape(s.title)}</a></li>'
                        for s in nav)
        body = "\n".join(self.block(b) for s in sections for b in s.blocks)
        return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
                f"<title>{html.escape(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
                f'<h1 id="top">{html.escape(title)}</h1>\n<nav><ul>{links}</ul></nav>\n{body}\n</body>\n</html>\n')


_MD_SPECIAL = re.compile(r"([\\`*\[\]<>|])")


class MarkdownWriter(Writer):
    ext = "md"

    @staticmethod
    def escape(text: str) -> str:
        return _MD_SPECIAL.sub(r"\\\1", re.sub(r"\s+", " ", text))

    def inline(self, parts: Inline) -> str:
        return "".join(f"[{self.escape(p.text)}]({self.href(p.anchor)})" if isinstance(p, Link)
                       else self.escape(p) for p in parts)

    def block(self, b: Block) -> str:
        if b.kind == "h":
            anchor = f'<a id="{b.anchor}"></a>\n' if b.anchor else ""
            return f"{anchor}{'#' * b.level} {self.escape(b.text)}"
        if b.kind == "p":
            return self.inline(b.inline)
        if b.kind == "pre":
            fence = "~~~~" if "```" in b.text else "```"
            return f"{fence}text\n{b.text}\n{fence}"
        if b.kind == "items":
            return "\n".join(f"- **{self.escape(k)}:** {self.inline(v)}" for k, v in b.items)
        return "\n".join(f"- {self.inline(item)}" for item in b.items)

    def page_text(self, title: str, sections: list[Section], nav: list[Section]) -> str:
        toc = "\n".join(f"- [{self.escape(s.title)}]({self.href(s.anchor)})" for s in nav)
        body = "\n\n".join(self.block(b) for s in sections for b in s.blocks)
        return f'<a id="top"></a>\n# {self.escape(title)}\n\n{toc}\n\n{body}\n'


WRITERS: dict[str, type[Writer]] = {"md": MarkdownWriter, "html": HtmlWriter}


def _anchors(section: Section) -> list[str]:
    return [b.anchor for b in section.blocks if b.kind == "h" and b.anchor]


def render(kb: KB, fmt: str, cases: list[CaseRef] | None, split: bool = False) -> dict[str, str]:
    """The reference as pages: {file name: text}. One page 'reference.<ext>' (the caller
    names it), or with `split` 'index.<ext>' and one page per KB file and reference section."""
    sections = Reference(kb, cases).sections()
    writer_class = WRITERS[fmt]
    title = "tpkb rule reference"
    if not split:
        writer = writer_class({}, "reference", False)
        return {f"reference.{writer_class.ext}": writer.page_text(title, sections, sections)}
    page_of = {anchor: s.page for s in sections for anchor in _anchors(s)}
    pages: dict[str, str] = {}
    for section in sections:
        writer = writer_class(page_of, section.page, True)
        pages[f"{section.page}.{writer.ext}"] = writer.page_text(f"{section.title} - {title}", [section], sections)
    index = Section("index", title, "index")
    index.p(f"{len(kb.rules)} rules in {sum(1 for s in sections if s.page not in REFERENCE_PAGES)} files, "
            f"{len(kb.sources)} sources" + (f", {len(cases)} cases" if cases is not None else "") + ".")
    writer = writer_class(page_of, "index", True)
    pages[f"index.{writer.ext}"] = writer.page_text(title, [index], sections)
    return pages


REFERENCE_PAGES = ("findings", "predicates", "sources", "cases")


def write(kb: KB, fmt: str, out: Path, cases: list[CaseRef] | None, split: bool = False) -> list[Path]:
    """Write the reference to `out` (a file; with `split`, a directory) and return the files written."""
    pages = render(kb, fmt, cases, split)
    if not split:
        (text,) = pages.values()
        out.write_text(text, encoding="utf-8")
        return [out]
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in pages.items():
        path = out / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
