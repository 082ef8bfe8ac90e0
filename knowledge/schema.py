"""Knowledge entries: the YAML schema, loading, and validation.

Every problem is reported with its file, entry id and field, e.g.
"entries/pension.yaml: entry 'luong-huu-toi-thieu': field 'sources': …".
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from knowledge.params import PLACEHOLDER, ParameterTable, default_table
from knowledge.sources import parse_citation
from knowledge.topics import TOPICS

ENTRY_DIR = Path(__file__).parent / "entries"
MAX_ANSWER_CHARS = 1500
# The short answer a phone shows first (issue 17 item 2): one to three lines, the details behind it.
MAX_SHORT_CHARS = 320
MAX_SHORT_LINES = 3
MIN_PARAPHRASES = 6
ID_PATTERN = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
REQUIRED = ("id", "topic", "question", "paraphrases", "answer", "sources", "effective_from", "reviewed_on")
OPTIONAL = ("details", "related", "audience", "low_confidence", "short")
AUDIENCES = {"citizen", "employer", "collaborator", "staff"}


_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when available: same results as safe_load, faster


class Problem(str):
    """One validation problem with its parts: `file`, `entry` (the entry's id, None for the file
    itself), `field` and `message`. Its text is the line `bhxh kb check` prints,
    "file: entry 'id': field 'x': message", so callers read the parts instead of parsing the line.
    A str subclass (as the header objects of `email.headerregistry` are), so code that prints,
    joins or compares the lines keeps working."""

    file: str
    entry: str | None
    field: str | None
    message: str

    def __new__(cls, file: str, entry: object = None, field: str | None = None, message: str = "") -> Problem:
        if field is not None:
            line = f"{file}: entry {entry!r}: field '{field}': {message}"
        elif entry is not None:
            line = f"{file}: entry {entry!r}: {message}"
        else:
            line = f"{file}: {message}"
        problem = super().__new__(cls, line)
        problem.file, problem.field, problem.message = file, field, message
        problem.entry = None if entry is None else str(entry)
        return problem

    def __getnewargs__(self) -> tuple[str, str | None, str | None, str]:  # type: ignore[override]
        return self.file, self.entry, self.field, self.message  # copy and pickle rebuild it from its parts


class KnowledgeError(ValueError):
    """One or more validation problems, each naming file, entry and field."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Entry:
    id: str
    topic: str
    question: str
    paraphrases: tuple[str, ...]
    answer: str  # a template: {{parameter}} placeholders are rendered per date
    sources: tuple[str, ...]
    effective_from: dt.date
    reviewed_on: dt.date
    details: str = ""
    short: str = ""  # a template like `answer`: the one-to-three-line direct answer shown first ("" = none yet)
    related: tuple[str, ...] = ()
    audience: tuple[str, ...] = ("citizen",)
    file: str = ""

    def texts(self) -> list[str]:
        """Everything a question may be matched against."""
        return [self.question, *self.paraphrases]


@dataclass
class KnowledgeBase:
    entries: dict[str, Entry]
    parameters: ParameterTable
    problems: list[Problem] = field(default_factory=list)

    def by_topic(self) -> dict[str, list[Entry]]:
        out: dict[str, list[Entry]] = {t: [] for t in TOPICS}
        for entry in self.entries.values():
            out[entry.topic].append(entry)
        return out

    def render_answer(self, entry: Entry, on: dt.date) -> str:
        return self.parameters.render(entry.answer, on)

    def render_short(self, entry: Entry, on: dt.date) -> str:
        """The entry's short answer with the figures in force on `on`; "" when it has none yet."""
        return self.parameters.render(entry.short, on)

    def lacking_short(self) -> list[Entry]:
        """Entries without a short answer yet (`bhxh kb check` counts them as a warning)."""
        return [e for e in self.entries.values() if not e.short]

    def uncertain_figures(self, entry: Entry, on: dt.date, *, short: bool = False) -> list[str]:
        """Parameters in the answer (or its short answer) whose source is only medium or low confidence on `on`."""
        names = dict.fromkeys(m.group(1) for m in PLACEHOLDER.finditer(entry.short if short else entry.answer))
        return [n for n in names if self.parameters.confidence(n, on) != "high"]

    def caution(self, entry: Entry, on: dt.date) -> str:
        """A short warning for answers that render a figure of medium or low confidence."""
        if not self.uncertain_figures(entry, on):
            return ""
        return ("Lưu ý: một số con số ở trên dựa trên văn bản chưa đối chiếu được bản chính thức; "
                "bạn nên kiểm tra lại với cơ quan BHXH hoặc tổng đài 1900 9068 trước khi quyết định.")

    def short_caution(self, entry: Entry, on: dt.date) -> str:
        """One line under a short answer that itself shows a figure of medium or low confidence: a reader who
        never opens the details still learns it is unconfirmed."""
        if not entry.short or not self.uncertain_figures(entry, on, short=True):
            return ""
        return "Lưu ý: con số này chưa đối chiếu được văn bản chính thức, nên hỏi lại 1900 9068."


def _date(value: object) -> dt.date | None:
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        return None


def _str_list(value: object) -> list[str] | None:
    if isinstance(value, list) and all(isinstance(v, str) and v.strip() for v in value):
        return [v.strip() for v in value]
    return None


def _short_problem(short: object, answer: str, params: ParameterTable, today: dt.date) -> str | None:
    """What is wrong with an entry's `short` answer, or None. It is optional; when given it is text
    whose figures are placeholders the full answer also uses (so it says nothing the answer does not,
    and the answer's caution covers them), at most MAX_SHORT_LINES lines and MAX_SHORT_CHARS once rendered."""
    if short is None:
        return None
    if not isinstance(short, str) or not short.strip():
        return "must be non-empty text when given"
    unknown = params.unknown_placeholders(short)
    if unknown:
        return f"unknown parameter(s) {', '.join(sorted(set(unknown)))}"
    not_in_answer = set(PLACEHOLDER.findall(short)) - set(PLACEHOLDER.findall(answer))
    if not_in_answer:
        return f"uses parameter(s) the answer does not: {', '.join(sorted(not_in_answer))}"
    lines = short.strip().splitlines()
    if len(lines) > MAX_SHORT_LINES:
        return f"has {len(lines)} lines; the limit is {MAX_SHORT_LINES}"
    rendered = params.render(short.strip(), today)
    if len(rendered) > MAX_SHORT_CHARS:
        return f"is {len(rendered)} characters once rendered; the limit is {MAX_SHORT_CHARS}"
    return None


def parse_entry(raw: object, where: str, params: ParameterTable, today: dt.date
                ) -> tuple[Entry | None, list[Problem]]:
    """Validate one raw YAML record; return the entry (or None) and its problems."""
    if not isinstance(raw, dict):
        return None, [Problem(where, message="each entry must be a mapping")]
    entry_id = raw.get("id")
    problems: list[Problem] = []

    def bad(field_name: str, message: str) -> None:
        problems.append(Problem(where, entry_id, field_name, message))

    for name in REQUIRED:
        if raw.get(name) in (None, "", []):
            bad(name, "is required")
    for name in raw:
        if name not in REQUIRED and name not in OPTIONAL:
            bad(str(name), "unknown field")
    if problems:
        return None, problems
    if not isinstance(entry_id, str) or not ID_PATTERN.match(entry_id):
        bad("id", "must be a lower-case slug like 'rut-bhxh-mot-lan'")
    if raw["topic"] not in TOPICS:
        bad("topic", f"unknown topic {raw['topic']!r}; known: {', '.join(TOPICS)}")
    paraphrases = _str_list(raw["paraphrases"])
    if paraphrases is None:
        bad("paraphrases", "must be a list of non-empty strings")
        paraphrases = []
    elif len(paraphrases) < MIN_PARAPHRASES:
        bad("paraphrases", f"has {len(paraphrases)}, needs at least {MIN_PARAPHRASES}")
    elif len(set(p.lower() for p in paraphrases)) != len(paraphrases):
        bad("paraphrases", "contains duplicates")
    answer = raw["answer"]
    if not isinstance(answer, str):
        bad("answer", "must be text")
        answer = ""
    for text_field in ("answer", "details"):
        text = raw.get(text_field) or ""
        unknown = params.unknown_placeholders(str(text))
        if unknown:
            bad(text_field, f"unknown parameter(s) {', '.join(sorted(set(unknown)))}")
        elif text_field == "answer" and text:
            rendered = params.render(str(text), today)
            if len(rendered) > MAX_ANSWER_CHARS:
                bad("answer", f"is {len(rendered)} characters once rendered; the limit is {MAX_ANSWER_CHARS}")
    short = _short_problem(raw.get("short"), answer, params, today)
    if short is not None:
        bad("short", short)
    sources = _str_list(raw["sources"])
    if sources is None:
        bad("sources", "must be a list of citations")
        sources = []
    for citation in sources:
        try:
            parse_citation(citation)
        except ValueError as exc:
            bad("sources", str(exc))
    dates = {}
    for name in ("effective_from", "reviewed_on"):
        dates[name] = _date(raw[name])
        if dates[name] is None:
            bad(name, f"must be a date YYYY-MM-DD, got {raw[name]!r}")
    related = raw.get("related") or []
    if _str_list(related) is None and related:
        bad("related", "must be a list of entry ids")
        related = []
    audience = raw.get("audience") or ["citizen"]
    if _str_list(audience) is None or not set(audience) <= AUDIENCES:
        bad("audience", f"must be a list drawn from {sorted(AUDIENCES)}")
        audience = ["citizen"]
    if problems:
        return None, problems
    return Entry(
        id=entry_id,
        topic=raw["topic"],
        question=str(raw["question"]).strip(),
        paraphrases=tuple(paraphrases),
        answer=answer.strip(),
        sources=tuple(sources),
        effective_from=dates["effective_from"],
        reviewed_on=dates["reviewed_on"],
        details=str(raw.get("details") or "").strip(),
        short=str(raw.get("short") or "").strip(),
        related=tuple(related),
        audience=tuple(audience),
        file=where,
    ), []


def read_entry_records(directory: Path = ENTRY_DIR) -> tuple[list[tuple[str, object]], list[Problem]]:
    """Every raw record of the `*.yaml` files under `directory`, each with the file name problems use
    ("entries/pension.yaml"), and the problems of files that are not a YAML list."""
    records: list[tuple[str, object]] = []
    problems: list[Problem] = []
    for path in sorted(Path(directory).rglob("*.yaml")):
        name = str(path.relative_to(Path(directory).parent))
        try:
            raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)
        except yaml.YAMLError as exc:
            problems.append(Problem(name, message=f"invalid YAML: {exc}"))
            continue
        if raw is None:
            continue
        if not isinstance(raw, list):
            problems.append(Problem(name, message="must be a list of entries"))
            continue
        records.extend((name, r) for r in raw)
    return records, problems


def validate_records(records: list[tuple[str, object]], params: ParameterTable, *, today: dt.date | None = None
                     ) -> tuple[dict[str, Entry], list[Problem]]:
    """Validate (file name, raw record) pairs as one knowledge base: each entry's fields, then ids
    unique and `related` ids known. Returns the valid entries and every problem."""
    today = today or dt.date.today()
    problems: list[Problem] = []
    entries: dict[str, Entry] = {}
    ids = Counter(r.get("id") for _, r in records if isinstance(r, dict))
    for where, raw in records:
        entry, entry_problems = parse_entry(raw, where, params, today)
        problems.extend(entry_problems)
        if entry is None:
            continue
        if ids[entry.id] > 1:
            problems.append(Problem(where, entry.id, "id", "duplicate id"))
            if entry.id in entries:
                continue
        entries[entry.id] = entry
    for entry in entries.values():
        for target in entry.related:
            if target not in entries:
                problems.append(Problem(entry.file, entry.id, "related", f"unknown entry {target!r}"))
            elif target == entry.id:
                problems.append(Problem(entry.file, entry.id, "related", "refers to itself"))
    return entries, problems


def load_knowledge(
    directory: Path = ENTRY_DIR,
    params: ParameterTable | None = None,
    *,
    today: dt.date | None = None,
    extra: list[tuple[str, dict]] | None = None,
    strict: bool = True,
) -> KnowledgeBase:
    """Load and validate every `*.yaml` under `directory` (plus `extra` records).

    With strict=True any problem raises KnowledgeError listing all of them;
    otherwise the valid entries are returned with `problems` filled in.
    """
    params = params or default_table()
    records, problems = read_entry_records(directory)
    entries, entry_problems = validate_records([*records, *(extra or [])], params, today=today)
    problems.extend(entry_problems)
    if problems and strict:
        raise KnowledgeError(problems)
    return KnowledgeBase(entries, params, problems)


def stats(kb: KnowledgeBase) -> dict[str, object]:
    by_topic = kb.by_topic()
    entries = list(kb.entries.values())
    return {
        "entries": len(entries),
        "paraphrases": sum(len(e.paraphrases) for e in entries),
        "sources": sum(len(e.sources) for e in entries),
        "distinct_sources": len({s for e in entries for s in e.sources}),
        "parameters": len(kb.parameters.parameters),
        "topics": {
            topic: {
                "label": TOPICS[topic],
                "entries": len(items),
                "paraphrases": sum(len(e.paraphrases) for e in items),
                "sources": sum(len(e.sources) for e in items),
            }
            for topic, items in by_topic.items()
        },
    }
