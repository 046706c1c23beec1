"""The input, declared once: the encounter, its procedures, guidance entries and billed
lines, and a case with its expectations, as pydantic models.

Validation, the JSON Schema (`tpkb schema`, `cases/tpkb.schema.json`), the key tables of
`cases/README.md` and, through bridge/facts.py, the input predicates of the KB all come
from these classes. A new key is one field here, one entry in bridge/facts.py and one
`#defined` predicate in kb/schema.lp.

Strict where a silent default would code wrongly: an impossible calendar date, a code
that is not in CPT/HCPCS form, units that are not a positive whole number, a modifier
that is not two characters, an unknown key. Forgiving where it is safe: a code written as
20553 or "20553", a side or modality in any case. Text may not hold control characters;
tabs and line breaks in free text read as spaces.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
)
from pydantic_core import PydanticCustomError

from .printable import kind, quote, unprintable

# Size limits: a record beyond them is refused with a message, never half read.
MAX_TEXT = 500  # characters in one text field
MAX_ID = 200
MAX_ITEMS = 200  # procedures, guidance entries, billed lines, list items

SIDES = ("left", "right", "bilateral")
MODALITIES = ("ultrasound", "fluoroscopy", "ct", "mri")
VERDICTS = ("accept", "reject", "not_reviewed")
PROVIDER_TYPES = ("physician", "nurse_practitioner", "physician_assistant", "clinical_nurse_specialist",
                  "physical_therapist", "chiropractor", "acupuncturist")

# CPT: five digits (Category I), four digits and F (Category II), T (Category III),
# U (proprietary laboratory analyses) or M (multianalyte assays); HCPCS Level II: a letter
# and four digits. ASCII only: a full-width digit is not a digit of a code.
_CODE = re.compile(r"[0-9]{5}|[0-9]{4}[FTUM]|[A-Z][0-9]{4}", re.ASCII)
_MODIFIER = re.compile(r"[0-9A-Z]{2}", re.ASCII)
_ICD10 = re.compile(r"[A-TV-Z][0-9][0-9A-Z](\.[0-9A-Z]{1,4})?", re.ASCII)
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", re.ASCII)
_POLICY_NUMBER = re.compile(r"([a-z]{1,4}-?)?[0-9][0-9-]*", re.ASCII)  # "cmm-202", "2-01-103"
_IDENT = re.compile(r"[a-z][a-z0-9_]*", re.ASCII)
_FOLD = re.compile(r"\s+")
_FOLD_LINE = re.compile(r"[^\S\n]+")  # white space other than a line break
_LINES = re.compile(r"\r\n|[\r\n\v\f\x1c-\x1e\x85\u2028\u2029]")


def _fail(message: str, **ctx: Any) -> PydanticCustomError:
    return PydanticCustomError("tpkb", message, ctx or None)


def _text(value: Any, *, limit: int = MAX_TEXT, what: str = "text", lines: bool = False) -> str:
    """Text from a string (or a number written bare). Tabs and line breaks fold to spaces
    (with `lines`, line breaks are kept, one between two lines of text); any other control
    or format character, or a lone surrogate, is refused."""
    if type(value) is str and len(value) <= limit and value.isprintable() and "  " not in value \
            and value[:1] != " " and value[-1:] != " ":
        return value  # the common case, checked in C
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise _fail("must be {what}, not {kind}", what=what, kind=kind(value))
    if isinstance(value, str) and lines:
        text = "\n".join(line for line in (_FOLD_LINE.sub(" ", part).strip() for part in _LINES.split(value)) if line)
    elif isinstance(value, str):
        text = value.strip() if value.isprintable() and "  " not in value else _FOLD.sub(" ", value).strip()
    elif isinstance(value, int) and abs(value) >= 10**20:
        raise _fail("must be {what}, not {kind}", what=what, kind=kind(value))
    else:
        text = str(value)
    bad = None if text.isprintable() else next((ch for ch in text if unprintable(ch) and ch != "\n"), None)
    if bad is not None:
        raise _fail("contains the control or invalid character {char}; write plain text",
                    char=f"U+{ord(bad):04X}")
    if len(text) > limit:
        raise _fail("is {n} characters long; at most {limit} are read", n=len(text), limit=limit)
    return text


def text_field(value: Any) -> str:
    text = _text(value)
    if not text:
        raise _fail("must not be empty")
    return text


def lines_field(value: Any) -> str:
    """Text whose line breaks mean something (a procedure's muscle text: a line ends a list)."""
    text = _text(value, lines=True)
    if not text:
        raise _fail("must not be empty")
    return text


def blank_is_absent(value: Any) -> str | None:
    """Free text where writing nothing (or only spaces) means it is not documented."""
    if value is None:
        return None
    return _text(value) or None


def id_field(value: Any) -> str:
    """An id is reported back exactly as written (no folding or trimming: downstream
    systems match on it); text or a whole number, printable, at most MAX_ID characters."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) < 10**20:
        return str(value)
    if not isinstance(value, str):
        raise _fail("must be text or a whole number, not {kind}", kind=kind(value))
    bad = None if value.isprintable() else next((ch for ch in value if unprintable(ch)), None)
    if bad is not None:
        raise _fail("contains the control or invalid character {char}; an id is plain text",
                    char=f"U+{ord(bad):04X}")
    if not value.strip():
        raise _fail("must not be empty")
    if len(value) > MAX_ID:
        raise _fail("is {n} characters long; at most {limit} are read", n=len(value), limit=MAX_ID)
    return value


def code_field(value: Any) -> str:
    text = _text(value, limit=20, what="a code")
    upper = text.upper() if text.isascii() else text
    if not _CODE.fullmatch(upper):
        raise _fail("{value} is not a CPT or HCPCS code (five digits, four digits and F, T, U or M, "
                    "or a letter and four digits: 20553, 0232T, J3301)", value=quote(text))
    return upper


def modifier_field(value: Any) -> str:
    text = _text(value, limit=10, what="a modifier")
    upper = text.upper() if text.isascii() else text
    if not _MODIFIER.fullmatch(upper):
        raise _fail("{value} is not a modifier (two letters or digits, e.g. 59 or XS)", value=quote(text))
    return upper


def diagnosis_field(value: Any) -> str:
    text = _text(value, limit=20, what="an ICD-10-CM code")
    upper = text.upper() if text.isascii() else text
    if not _ICD10.fullmatch(upper):
        raise _fail("{value} is not an ICD-10-CM code (e.g. M79.12)", value=quote(text))
    return upper


def date_field(value: Any) -> dt.date:
    """YYYY-MM-DD, a real calendar day from year 1. YAML dates arrive as text (the loader
    does not let YAML guess), so 2025-02-30 is a field error, not a crash."""
    if isinstance(value, dt.datetime):
        value = value.date().isoformat()
    if isinstance(value, dt.date):
        value = value.isoformat()
    if not isinstance(value, str) or not _DATE.fullmatch(value.strip()):
        raise _fail("{value} is not a date (YYYY-MM-DD)", value=quote(value))
    try:
        return dt.date.fromisoformat(value.strip())
    except ValueError as exc:
        raise _fail("{value} is not a real date ({why})", value=quote(value), why=str(exc)) from None


def _choice(options: tuple[str, ...], what: str):
    def check(value: Any) -> str:
        if not isinstance(value, str):
            raise _fail("must be one of {options}, not {kind}", options=", ".join(options), kind=kind(value))
        word = value.strip().lower()
        if word not in options:
            raise _fail("unknown {what} {value} (use {options})", what=what, value=quote(value.strip()),
                        options=_or(options))
        return word

    return check


def _or(options: tuple[str, ...]) -> str:
    return ", ".join(options[:-1]) + " or " + options[-1] if len(options) > 1 else options[0]


def ident_field(value: Any) -> str:
    if not isinstance(value, str) or not _IDENT.fullmatch(value):
        raise _fail("{value} is not an id (lower case letters, digits and _)", value=quote(value))
    return value


def whole_number(low: int, high: int):
    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise _fail("must be a whole number from {low} to {high}, not {value}", low=low, high=high,
                        value=quote(value))
        return value

    return check


def _list_of(what: str, hint: str = ""):
    def check(value: Any) -> Any:
        if not isinstance(value, list):
            raise _fail("must be a list, not {kind}{hint}", kind=kind(value), hint=hint)
        if len(value) > MAX_ITEMS:
            raise _fail("has {n} {what}; at most {limit} are read", n=len(value), what=what, limit=MAX_ITEMS)
        return value

    return check


Text = Annotated[str, BeforeValidator(text_field),
                 WithJsonSchema({"type": "string", "minLength": 1, "maxLength": MAX_TEXT})]
Lines = Annotated[str, BeforeValidator(lines_field),
                  WithJsonSchema({"type": "string", "minLength": 1, "maxLength": MAX_TEXT})]
Documented = Annotated[str | None, BeforeValidator(blank_is_absent), WithJsonSchema({"type": ["string", "null"]})]
Id = Annotated[str, BeforeValidator(id_field), WithJsonSchema({"type": ["string", "integer"], "maxLength": MAX_ID})]


def time_field(value: Any) -> str:
    """A time of day, `HH:MM` (or `H:MM`, or `HH:MM:SS`: the seconds are dropped), written
    `HH:MM`. A number is refused: JSON has no time, and 930 could be 09:30 or 15:30."""
    found = re.fullmatch(r"([01]?[0-9]|2[0-3]):([0-5][0-9])(?::[0-5][0-9])?", value.strip()) \
        if isinstance(value, str) else None
    if found is None:
        raise _fail("must be a time of day HH:MM (00:00 to 23:59), not {value}", value=quote(str(value)[:20]))
    return f"{int(found.group(1)):02d}:{found.group(2)}"


Time = Annotated[str, BeforeValidator(time_field), WithJsonSchema(
    {"type": "string", "pattern": "^([01]?[0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9])?$"})]
Code = Annotated[str, BeforeValidator(code_field), WithJsonSchema(
    {"type": ["string", "integer"], "pattern": "^([0-9]{5}|[0-9]{4}[FTUM]|[A-Z][0-9]{4})$"})]
Modifier = Annotated[str, BeforeValidator(modifier_field),
                     WithJsonSchema({"type": ["string", "integer"], "pattern": "^[0-9A-Z]{2}$"})]
Diagnosis = Annotated[str, BeforeValidator(diagnosis_field),
                      WithJsonSchema({"type": "string", "pattern": r"^[A-TV-Z][0-9][0-9A-Z](\.[0-9A-Z]{1,4})?$"})]
Date = Annotated[dt.date, BeforeValidator(date_field), WithJsonSchema({"type": "string", "format": "date"})]
Side = Annotated[str, BeforeValidator(_choice(SIDES, "side")), WithJsonSchema({"enum": list(SIDES)})]
Modality = Annotated[str, BeforeValidator(_choice(MODALITIES, "modality")), WithJsonSchema({"enum": list(MODALITIES)})]
Verdict = Annotated[str, BeforeValidator(_choice(VERDICTS, "verdict")), WithJsonSchema({"enum": list(VERDICTS)})]
ProviderType = Annotated[str, BeforeValidator(_choice(PROVIDER_TYPES, "provider type")),
                         WithJsonSchema({"enum": list(PROVIDER_TYPES)})]
Ident = Annotated[str, BeforeValidator(ident_field), WithJsonSchema({"type": "string", "pattern": "^[a-z][a-z0-9_]*$"})]


# Lists, each with its size limit and its own message when a single value stands where a
# list belongs.
Injectate = Annotated[list[Text], BeforeValidator(_list_of("substances", " (write [] for a needle without injection)"))]
Modifiers = Annotated[list[Modifier], BeforeValidator(_list_of("modifiers"))]
Diagnoses = Annotated[list[Diagnosis], BeforeValidator(_list_of("diagnoses"))]
Tags = Annotated[list[Text], BeforeValidator(_list_of("tags"))]
Idents = Annotated[list[Ident], BeforeValidator(_list_of("ids"))]
Codes = Annotated[list[Code], BeforeValidator(_list_of("codes"))]
Positive = Annotated[int, BeforeValidator(whole_number(1, 999)),
                     WithJsonSchema({"type": "integer", "minimum": 1, "maximum": 999})]
Weeks = Annotated[int, BeforeValidator(whole_number(0, 5200)),
                  WithJsonSchema({"type": "integer", "minimum": 0, "maximum": 5200})]
TriggerPoints = Annotated[int, BeforeValidator(whole_number(1, 1000)),
                          WithJsonSchema({"type": "integer", "minimum": 1, "maximum": 1000})]


class Strict(BaseModel):
    """Unknown keys are an error; models are plain records once read."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=False)


# ---------------------------------------------------------------------- the encounter
class Procedure(Strict):
    """One needle procedure of the session: a muscle and what was injected into it."""

    muscle: Lines = Field(description="The muscle text as documented: one muscle or several, each a lexicon name, "
                         "synonym, abbreviation, part (\"upper trap\"), group (\"rhomboids\") or region term "
                         "(\"paraspinals\"), with side words before or after (\"rt upper trap\", \"lev scap L\", "
                         "\"R levator scapulae, L trapezius\", \"bilateral splenius capitis and cervicis\", "
                         "\"R/L SCM\"). Case, Unicode forms, punctuation, plurals, parentheses (\"trapezius (upper)\") "
                         "and levels (\"L3-L5\") are read as a coder reads them (bridge/reading.py); a line break "
                         "or the end of a sentence ends a list; text left over is a finding. The procedure's other "
                         "fields apply to every muscle it names.")
    side: Side | None = Field(None, description="`left`, `right` or `bilateral` (= right plus left); may instead "
                              "be written in `muscle`.")
    trigger_points: TriggerPoints = Field(
        1, description="How many trigger points, default 1. Recorded and checked; the count of muscles never "
        "depends on it (CPT counts muscles, not trigger points).")
    injectate: Injectate = Field(
        description="What was injected, a list of substances; `[]` means a needle without injection (dry needling). "
        "Required: a silent default would code wrongly.")


class Guidance(Strict):
    """One imaging guidance entry of the session."""

    modality: Modality = Field(description="`ultrasound`, `fluoroscopy`, `ct` or `mri`.")
    necessity: Documented = Field(None, description="Why guidance was medically necessary, as documented; absent "
                                  "or blank means not documented.")
    images_recorded: StrictBool = Field(False, description="`true` where permanent images and a report were "
                                        "recorded; default `false`.")


class BilledLine(Strict):
    """One line of the claim as submitted."""

    code: Code = Field(description="CPT or HCPCS code, `20553` or `\"20553\"`.")
    units: Positive = Field(1, description="A whole number from 1 to 999, default 1.")
    modifiers: Modifiers = Field(default_factory=list, description="Two-character modifiers, default `[]`.")


class Service(Strict):
    """Another service of the session: an E/M visit, an injection administration code, a
    nerve block, a joint or tendon injection."""

    code: Code = Field(description="CPT or HCPCS code of the service, `99213` or `\"64405\"`.")
    separately_identifiable: StrictBool | None = Field(
        None, description="For an E/M visit on the day of a procedure: `true` where the documentation shows a "
        "significant, separately identifiable E/M service beyond the pre-procedure assessment (then it is "
        "reported with modifier 25); absent or `false` otherwise.")
    site: Documented = Field(None, description="Where the service was done, as documented (\"left knee\", "
                             "\"right greater occipital nerve\"); it decides whether the service is distinct from "
                             "the muscles injected (modifier 59 or XS).")


def _muscle_list(value: Any) -> Any:
    """A prior session's muscles: a list of muscle texts, or one text (read as a list of one)."""
    return [value] if isinstance(value, str) else _list_of("muscle texts")(value)


class PriorSession(Strict):
    """A session of the patient's before this one, as the record shows it: what payer
    coverage policies count (sessions in 12 months, a repeat in the same muscle within
    six weeks)."""

    date: Date = Field(description="Its date of service, `YYYY-MM-DD`; not after the encounter's date.")
    codes: Annotated[list[Code], BeforeValidator(_list_of("codes"))] = Field(
        description="The codes reported for it, e.g. `[20553]`; the policies count sessions by their codes.")
    muscles: Annotated[list[Lines] | None, BeforeValidator(_muscle_list)] = Field(
        None, description="The muscles it treated, written as in a procedure's `muscle` (\"R trapezius, L levator "
        "scapulae\"); absent: not known, and a policy that asks for the same location assumes it was the same "
        "(and says so).")


class Provider(Strict):
    """Who performed the session: payer policies cover some services only from some providers."""

    type: ProviderType = Field(description="One of " + ", ".join(f"`{t}`" for t in PROVIDER_TYPES) + ".")
    acupuncture_license: StrictBool = Field(
        False, description="`true` where the provider holds the master's or doctoral degree in acupuncture or "
        "Oriental Medicine from an ACAOM-accredited school and a current, full, active and unrestricted state "
        "licence to practise acupuncture (NCD 30.3.3); default `false`.")


Procedures = Annotated[list[Procedure], BeforeValidator(_list_of("procedures"))]
Services = Annotated[list[Service], BeforeValidator(_list_of("services"))]
History = Annotated[list[PriorSession], BeforeValidator(_list_of("prior sessions"))]
GuidanceEntries = Annotated[list[Guidance], BeforeValidator(_list_of("guidance entries"))]
BilledLines = Annotated[list[BilledLine], BeforeValidator(_list_of("billed lines"))]


class Encounter(Strict):
    """One needle-procedure session: the documentation, and optionally the claim."""

    id: Id | None = Field(None, description="Reported back with the outcome, exactly as written; defaults to the case "
                          "name, else to the file's name without its suffix (in a list `name[i]`; on a JSONL line "
                          "`name:line`, `stdin:line` on standard input). Ids may repeat: records are told apart by "
                          "their position, never by id.")
    date: Date = Field(description="Date of service, `YYYY-MM-DD`; a real calendar day.")
    patient: Id | None = Field(None, description="The patient, as the submitter identifies them. Encounters of one "
                               "patient on one date of service are one day for the count (one 20552/20553 for every "
                               "distinct muscle of the day, on the first session); absent: a patient of their own. "
                               "Like the id, it never reaches the solver.")
    time: Time | None = Field(None, description="Time of the session, `HH:MM`; orders a patient's sessions of one "
                              "day (then the id).")
    payer: str = Field("cpt", description="Payer profile (kb/reference/profiles.lp): `cpt` (default), "
                       "`medicare-cgs`, `medicare-ngs`, `medicare-noridian`, `medicare-palmetto`, `medicare-wps`, "
                       "`medicare-novitas`, `medicare-fcso`, `bcbsa`, `emblemhealth`, `evicore`. Case, spaces and "
                       "punctuation do not matter, and a name that adds to a profile id or shortens it "
                       "(\"eviCore CMM-202\", \"Emblem\", \"Novitas\") means it where no other profile fits; the "
                       "outcome names the profile.")
    diagnoses: Diagnoses = Field(default_factory=list, description="ICD-10-CM codes, e.g. `[M79.12]`.")
    procedures: Procedures = Field(description="The needle procedures of the session, a list "
                                                       "(may be empty).")
    guidance: GuidanceEntries = Field(default_factory=list, description="Imaging guidance "
                                                          "entries, a list.")
    services: Services = Field(default_factory=list, description="Other services of the session "
                               "(E/M visit, injection administration, nerve block, joint injection), a list.")
    billed: BilledLines | None = Field(None, description="The claim as submitted; its "
                                                             "presence turns on the audit.")
    history: History = Field(default_factory=list, description="The patient's prior sessions, a list of "
                             "`{date, codes, muscles}`; payer coverage policies count them (kb/payers/).")
    abn: StrictBool = Field(False, description="`true` where the patient signed an advance beneficiary notice "
                            "(Medicare) for this service; a line that is not covered is then reported with GA.")
    provider: Provider | None = Field(None, description="Who performed the session, `{type, "
                                      "acupuncture_license}`; absent: a physician is assumed where a policy asks "
                                      "(and a finding says so).")
    low_back_pain_weeks: Weeks | None = Field(None, description="How many weeks the patient's low back pain has "
                                              "lasted, as documented (NCD 30.3.3 asks for 12 or more).")

    @field_validator("history", mode="after")
    @classmethod
    def _history_before(cls, value: list[PriorSession], info: ValidationInfo) -> list[PriorSession]:
        dos = info.data.get("date")
        for i, prior in enumerate(value):
            if dos is not None and prior.date > dos:
                raise _fail("entry {i} has date {d}, after the date of service {dos}: history holds prior sessions",
                            i=i + 1, d=prior.date.isoformat(), dos=dos.isoformat())
        return value

    @field_validator("payer", mode="before")
    @classmethod
    def _known_payer(cls, value: Any, info: ValidationInfo) -> str:
        text = _text(value, limit=60)
        profiles = (info.context or {}).get("profiles")
        if not profiles or text in profiles:
            return text
        found = profile_named(text, profiles)
        if found is None:
            raise _fail("unknown payer profile {value} (known: {known})", value=quote(text),
                        known=", ".join(sorted(profiles)))
        return found


def profile_named(text: str, profiles: Iterable[str]) -> str | None:
    """The profile a payer name means, written as people write it: case, spaces and
    punctuation do not matter ("Medicare WPS", "EmblemHealth"), and a name that adds a policy
    number to a profile id ("eviCore CMM-202", "BCBSA 2.01.103"), shortens it to five letters
    or more ("Emblem"), or names the end of one ("Novitas", "WPS") means that profile where no
    other one fits. None where no profile, or more than one, fits ("medicare" alone is one of
    seven; "BCBS" could be any Blue plan)."""
    key = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    if key in profiles:
        return key
    fits = [p for p in profiles if (key.startswith(p + "-") and _POLICY_NUMBER.fullmatch(key[len(p) + 1:]))
            or p.endswith("-" + key) or (len(key) >= 5 and p.startswith(key))]
    return fits[0] if len(fits) == 1 else None


# ---------------------------------------------------------------------- a case
class ExpectedLine(Strict):
    """A line the KB must report."""

    code: Code = Field(description="The code.")
    units: Positive = Field(1, description="Default 1.")
    modifiers: Modifiers = Field(default_factory=list, description="Default `[]`; order-free.")


class ExpectedBilled(Strict):
    """What the audit must say of one billed line."""

    code: Code = Field(description="The billed line's code (a check that the lines are listed in order).")
    verdict: Verdict = Field(description="`accept`, `reject`, or `not_reviewed` (a code the KB has no policy "
                             "for, which no NCCI edit or MUE rejects).")
    reasons: Idents | None = Field(None, description="The EXACT set of reason ids "
                                                       "(kb/reference/reasons.lp); absent: not checked.")


ExpectedLines = Annotated[list[ExpectedLine], BeforeValidator(_list_of("lines"))]
ExpectedBilledLines = Annotated[list[ExpectedBilled], BeforeValidator(_list_of("billed lines"))]


class Expect(Strict):
    """What must come out. Only the keys present are checked; a case with nothing to check
    is an error, not a pass."""

    lines: ExpectedLines | None = Field(None, description="The EXACT set of lines to report, "
                                                       "order-free; each `{code, units: 1, modifiers: []}`.")
    findings: Idents | None = Field(None, description="Finding ids that must appear (others "
                                                         "may).")
    no_findings: Idents | None = Field(None, description="Finding ids that must not appear.")
    rejected: Codes | None = Field(None, description="The EXACT set of billed codes the audit "
                                                  "rejects (`[]`: none).")
    billed: ExpectedBilledLines | None = Field(None, description="One entry per billed line, "
                                                                 "in claim order: `{code, verdict, reasons}`.")
    fired: Idents | None = Field(None, description="Rule ids that must fire for this encounter.")
    not_fired: Idents | None = Field(None, description="Rule ids that must not fire.")

    def checks_something(self) -> bool:
        # lines: [], rejected: [] and billed: [] are checks (nothing reported, rejected, billed);
        # an empty list of ids is not.
        return (self.lines is not None or self.rejected is not None or self.billed is not None
                or any((self.findings, self.no_findings, self.fired, self.not_fired)))


Sessions = Annotated[list[Encounter], BeforeValidator(_list_of("sessions"))]


class Case(Strict):
    """A case of the library: an encounter and what the KB must make of it."""

    name: Text = Field(description="Unique in the library; prefix it with the folder (`counting-...`).")
    description: str = Field("", description="What the encounter is, in a sentence or two.")
    source: str = Field("", description="The policy the expectation comes from (seed guideline, coding-facts.md "
                        "section, LCD, NCCI table and quarter); required in the library.")
    tags: Tags = Field(default_factory=list, description="Free words.")
    encounter: Encounter = Field(description="The encounter (the same keys as an encounter file).")
    sessions: Sessions = Field(default_factory=list, description="Other sessions of the same patient's day "
                               "(encounters with the encounter's `patient` and `date`), coded with it; `expect` "
                               "is about the encounter alone.")
    expect: Expect = Field(default_factory=Expect, description="What must come out.")

    @field_validator("description", "source", mode="before")
    @classmethod
    def _plain_text(cls, value: Any) -> str:
        return _text(value, limit=4000)



def is_case(doc: object) -> bool:
    """A mapping is a case when it has a case's own keys; otherwise it is an encounter."""
    return isinstance(doc, dict) and any(k in doc for k in ("name", "encounter", "expect"))
