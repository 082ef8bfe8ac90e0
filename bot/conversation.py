"""One user's conversation state between two messages, owned by `Service`.

Three things are remembered per (channel, user), in one stored record:
- `choices`: the entries last offered as "1, 2, 3" (a reply of "2" picks the second; "0" or
  "Không phải các câu trên" says none of them fits);
- `calc`: the step reached in the guided voluntary-contribution calculator (`bot.calc_flow`);
- `last`: the last question answered (its text as read, PII-redacted, the entry or calculator, what it
  said of sex, scheme, year, amount, age and years paid), for a while (`Settings.conversation_minutes`),
  so that a short follow-up changing one of these ("còn nếu tôi là nữ thì sao?", "thế còn tự nguyện?",
  "nếu đóng 20 năm thì sao", "còn năm 2027?") is asked again as the previous question with that fact
  changed (`follow_up`). Anything else is a new question and is answered on its own.

`Service` loads the record once per message and saves or deletes it once; nothing else writes it.
The JSON shape ({"choices": [...], "calc": {...}, "last": {...}}) extends the one earlier versions
stored, so a restart across an upgrade keeps pending choices.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, fields, replace
from typing import Any

from bot.engine import STOPWORDS
from bot.messages import NONE_OF_THESE
from bot.reply import Choice
from knowledge.asked_date import asked_date, date_spans
from knowledge.calc_intent import parse_amount
from knowledge.facts import extract_facts
from retrieval.normalize import fold_accents, nfc, redact_pii

CALC_STEPS = ("group", "period", "income")
MAX_PICK_DIGITS = 2
NONE_PICK = 0  # "0": none of the choices offered
NONE_OF_THESE_ID = "khong-phai-cac-cau-tren"  # what the "Không phải các câu trên" button sends instead of an entry id
MAX_QUESTION_KEPT = 600  # characters of the last question kept for a follow-up
MAX_FOLLOW_UP_WORDS = 12
# Words a follow-up may hold besides the changed facts and its opening/closing words ("lương" in "còn lương
# 10 triệu thì sao"): more, and it is a question of its own ("còn con tôi 5 tuổi bị ốm thì nghỉ mấy ngày").
MAX_OTHER_WORDS = 2


def parse_pick(text: object) -> int | None:
    """The number in a reply like "2" (spaces allowed), else None.

    isdecimal, not isdigit: "²" or "①" are digits that int() refuses."""
    if not isinstance(text, str):
        return None
    text = text.strip()
    if not text.isdecimal() or len(text) > MAX_PICK_DIGITS:
        return None
    return int(text)


@dataclass(frozen=True)
class FlowState:
    """Where the guided calculator is: the step it waits for and what was chosen so far."""

    step: str
    group: str | None = None
    months: int | None = None


_NONE_WORDS = re.compile(r"^(?:khong phai(?: cac| nhung)? cau (?:tren|nao)(?: ca)?|khong phai|khong co cau nao"
                         r"(?: dung)?|khong cau nao(?: dung)?|khong dung cau nao|deu khong phai)[\s.!]*$")


def picks_none(text: object) -> bool:
    """"0", "Không phải các câu trên", "không phải", "không có câu nào": none of the choices fits."""
    if not isinstance(text, str):
        return False
    folded = " ".join(fold_accents(nfc(text).lower()).replace("«", " ").replace("»", " ").split())
    return text.strip() == str(NONE_PICK) or folded == fold_accents(NONE_OF_THESE.lower()) or bool(
        _NONE_WORDS.match(folded))


@dataclass(frozen=True)
class Said:
    """What a question said of the facts a follow-up may change (None: not said)."""

    sex: str | None = None  # "male" | "female"
    scheme: str | None = None  # "compulsory" | "voluntary"
    year: int | None = None  # the year its figures are asked for ("năm 2027", "từ 1/1/2027")
    amount: int | None = None  # đồng
    age: int | None = None
    years_paid: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}

    @classmethod
    def from_json(cls, data: object) -> Said:
        if not isinstance(data, dict):
            return cls()
        def pick(name: str, kind: type) -> Any:
            value = data.get(name)
            return value if isinstance(value, kind) and not isinstance(value, bool) else None
        return cls(pick("sex", str), pick("scheme", str), pick("year", int), pick("amount", int), pick("age", int),
                   pick("years_paid", int))

    def changed_in(self, other: Said) -> tuple[str, ...]:
        """The facts `other` states that differ from these."""
        return tuple(f.name for f in fields(self)
                     if getattr(other, f.name) is not None and getattr(other, f.name) != getattr(self, f.name))


# A bare "nữ" / "nam" in a short follow-up is the asker's sex ("còn nữ thì sao?"); unaccented "nam" only
# away from numbers ("20 nam" is twenty years).
_FEMALE_SHORT = re.compile(r"(?<!\w)(?:nữ|phụ nữ|nữ giới|đàn bà|con gái|lao động nữ)(?!\w)")
_MALE_SHORT = re.compile(r"(?<!\w)(?:nam|nam giới|đàn ông|con trai|lao động nam)(?!\w)(?!\s*\d{4})")
_FEMALE_FOLDED = re.compile(r"^(?:(?:con|the con|vay con|neu|con neu|toi la|la)\s+)*(?:nu|phu nu|nu gioi)\b")
_MALE_FOLDED = re.compile(r"^(?:(?:con|the con|vay con|neu|con neu|toi la|la)\s+)*(?:nam gioi|dan ong|nam)"
                          r"\b(?!\s*\d{4})")


def said_in(text: str, today: dt.date) -> Said:
    """The facts of `Said` a message states (knowledge/facts.py's reader, plus the short forms of a follow-up)."""
    facts = extract_facts(text, today)
    accented = nfc(text).lower()
    folded = fold_accents(accented)
    sex = facts.sex
    if sex is None:
        if _FEMALE_SHORT.search(accented) or _FEMALE_FOLDED.search(folded):
            sex = "female"
        elif _MALE_SHORT.search(accented) or _MALE_FOLDED.search(folded):
            sex = "male"
    asked = asked_date(text, today)
    year = asked.on.year if asked else None
    if year is None and (m := _YEAR.search(folded)):  # "thế còn năm 2025?": a past year, named as the change
        year = int(m.group(1))
    scheme = facts.scheme if facts.scheme in ("compulsory", "voluntary") else None
    age = facts.age
    if age is None and (m := _AGE.search(folded)):  # "còn nếu tôi 58 tuổi": the letter reader wants more context
        age = int(m.group(1))
    return Said(sex, scheme, year, facts.salary or parse_amount(text), age,
                facts.years_paid)


@dataclass(frozen=True)
class LastQuestion:
    """The last question answered, kept for a follow-up."""

    question: str  # as read: PII-redacted, at most MAX_QUESTION_KEPT characters
    at: float  # when, in seconds since the epoch
    said: Said = Said()
    entry_id: str | None = None
    topic: str | None = None
    calculator: str | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"question": self.question, "at": self.at, "said": self.said.to_json()}
        data.update({k: v for k, v in (("entry_id", self.entry_id), ("topic", self.topic),
                                        ("calculator", self.calculator)) if v})
        return data

    @classmethod
    def from_json(cls, data: object) -> LastQuestion | None:
        if not isinstance(data, dict) or not isinstance(data.get("question"), str) or not data["question"]:
            return None
        at = data.get("at")
        if not isinstance(at, (int, float)) or isinstance(at, bool):
            return None
        text = lambda k: str(data[k]) if isinstance(data.get(k), str) else None  # noqa: E731
        return cls(data["question"][:MAX_QUESTION_KEPT], float(at), Said.from_json(data.get("said")),
                   text("entry_id"), text("topic"), text("calculator"))

    @classmethod
    def of(cls, question: str, at: float, today: dt.date, *, entry_id: str | None = None,
           topic: str | None = None, calculator: str | None = None) -> LastQuestion:
        kept = redact_pii(" ".join(nfc(question).split()))[:MAX_QUESTION_KEPT]
        return cls(kept, at, said_in(kept, today), entry_id, topic, calculator)


# ---------------------------------------------------------------- follow-ups

# A follow-up opens with "còn", "thế còn", "vậy còn", "nếu", "trường hợp"… or ends with "thì sao", "thế nào".
_OPENS = re.compile(r"^(?:(?:vay|the|con|nhung|ma|neu|con neu|the neu|vay neu|truong hop|con truong hop|con voi"
                    r"|voi|lo|ngo)\b)")
_CLOSES = re.compile(r"\b(?:thi sao|the sao|thi the nao|the nao|thi nhu the nao|nhu the nao|thi sao a|thi sao nhi"
                     r"|thi bao nhieu|thi duoc bao nhieu|thi sao vay|thi sao z|thi ra sao)\s*[?.!]*\s*(?:a|nhi|vay|z)?"
                     r"\s*[?.!]*$")
_LEAD_WORDS = {"con", "the", "vay", "neu", "nhung", "ma", "truong", "hop", "voi", "lo", "ngo", "a", "oi"}
_TRAIL_WORDS = {"thi", "sao", "the", "nao", "nhu", "a", "nhi", "vay", "z", "ha", "ra", "bao", "nhieu", "duoc"}
_WORD = re.compile(r"\w+")
# Words that only introduce a fact ("lương 10 triệu", "mức 3 triệu", "tôi là nữ", "đóng 20 năm").
_FACT_WORDS = frozenset("luong muc thu nhap binh quan dong tuoi nam nu gioi tinh bhxh bao hiem xa hoi".split())

# What is dropped from the previous question when a follow-up changes that fact.
_DROP = {
    "sex": re.compile(r"(?<!\w)(?:nam giới|nữ giới|đàn ông|đàn bà|phụ nữ|nam gioi|nu gioi|dan ong|dan ba|phu nu"
                      r"|nữ|nu|(?<!\d)(?<!\d\s)nam(?!\s*\d{4}))(?!\w)", re.IGNORECASE),
    "scheme": re.compile(r"(?<!\w)(?:bắt buộc|tự nguyện|bat buoc|tu nguyen)(?!\w)", re.IGNORECASE),
    "amount": re.compile(r"(?<![\w.,])\d+(?:[.,]\d+)?\s*(?:triệu|trieu|tr|nghìn|nghin|ngàn|ngan|k)(?!\w)"
                         r"(?:\s*\d{1,3}(?!\d))?|(?<![\w.,])\d{1,3}(?:[.,]\d{3})+(?:\s*(?:đồng|dong|đ))?(?!\w)",
                         re.IGNORECASE),
    "age": re.compile(r"(?<![\w.,])\d{1,3}\s*(?:tuổi|tuoi)(?!\w)", re.IGNORECASE),
    "years_paid": re.compile(r"(?<![\w.,])\d{1,2}\s*(?:năm|nam)(?:\s*(?:và\s*|va\s*)?\d{1,2}\s*(?:tháng|thang))?"
                             r"(?!\w)(?!\s*\d)", re.IGNORECASE),
}


_THIS_YEAR = re.compile(r"(?i)(?<!\w)(?:năm nay|nam nay)(?!\w)")
_AGE = re.compile(r"(?<![\d.,])(\d{2,3})\s*tuoi\b")
_YEAR = re.compile(r"\bnam\s+((?:19|20)\d\d)\b")


def _other_words(text: str, changed: tuple[str, ...]) -> list[str]:
    """The follow-up's words that are neither a changed fact, nor its opening and closing, nor function words."""
    text = nfc(text)
    for kind in changed:
        for start, end in reversed(_spans(text, kind)):
            text = text[:start] + " " + text[end:]
    return [w for w in (fold_accents(t.lower()) for t in _WORD.findall(text))
            if w not in STOPWORDS and w not in _LEAD_WORDS and w not in _TRAIL_WORDS and not w.isdigit()
            and w not in _FACT_WORDS]


def _core(text: str) -> str:
    """A follow-up without its opening and closing words: "còn nếu tôi là nữ thì sao?" → "tôi là nữ"."""
    words = [(m.group(0), fold_accents(m.group(0).lower())) for m in _WORD.finditer(nfc(text))]
    while words and words[0][1] in _LEAD_WORDS:
        words.pop(0)
    while words and words[-1][1] in _TRAIL_WORDS:
        words.pop()
    return " ".join(w for w, _ in words)


def _spans(text: str, kind: str) -> list[tuple[int, int]]:
    """Where `text` states a fact of this kind (positions in the NFC text)."""
    text = nfc(text)
    if kind == "year":
        return date_spans(text) + [m.span() for m in _THIS_YEAR.finditer(text)]
    return [m.span() for m in _DROP[kind].finditer(text)]


def _change(question: str, kind: str, follow: str) -> tuple[str, bool]:
    """The previous question with this fact as the follow-up states it: the first mention replaced by the
    follow-up's words, any other dropped. (question, False) with the mentions dropped when the follow-up's
    words for it cannot be found or the question never said it: the caller puts the follow-up first."""
    question = nfc(question)
    old = _spans(question, kind)
    new = _spans(follow, kind)
    words = nfc(follow)[new[0][0]:new[0][1]].strip() if new else ""
    if kind == "sex" and words:  # "tôi là nữ", "nu" replace "nam" by the one accented word
        words = "nữ" if said_in(follow, dt.date.today()).sex == "female" else "nam"
    for n, (start, end) in reversed(list(enumerate(old))):
        put = words if n == 0 and words else " "
        question = question[:start] + put + question[end:]
    return " ".join(question.split()), bool(old and words)


def follow_up(last: LastQuestion | None, text: object, *, now: float, memory_seconds: float,
              today: dt.date) -> tuple[str, Said] | None:
    """The question a short follow-up stands for (the previous one with the changed facts), with what it
    says; None when `text` is a question of its own (or the last one is too old to follow)."""
    if last is None or not isinstance(text, str) or now - last.at > memory_seconds or now < last.at:
        return None
    folded = " ".join(fold_accents(nfc(text).lower()).split())
    if len(_WORD.findall(folded)) > MAX_FOLLOW_UP_WORDS or not (_OPENS.search(folded) or _CLOSES.search(folded)):
        return None
    said = said_in(text, today)
    changed = last.said.changed_in(said)
    if not changed or len(_other_words(text, changed)) > MAX_OTHER_WORDS:
        return None  # "còn thai sản thì sao?" names a new subject, not a changed fact: a question of its own
    question, placed = last.question, True
    for kind in changed:
        question, done = _change(question, kind, text)
        placed = placed and done
    core = _core(text)
    if not placed and core:  # a fact the previous question did not state: the follow-up's words go first
        question = f"{core}, {question[:1].lower()}{question[1:]}"
    new_said = replace(last.said, **{k: getattr(said, k) for k in changed})
    return question[:MAX_QUESTION_KEPT], new_said


@dataclass(frozen=True)
class ConversationState:
    choices: tuple[Choice, ...] = ()
    calc: FlowState | None = None
    last: LastQuestion | None = None

    @property
    def empty(self) -> bool:
        return not self.choices and self.calc is None and self.last is None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {}
        if self.choices:
            data["choices"] = [c.to_json() for c in self.choices]
        if self.calc is not None:
            data["calc"] = {"step": self.calc.step, "group": self.calc.group, "months": self.calc.months}
        if self.last is not None:
            data["last"] = self.last.to_json()
        return data

    @classmethod
    def from_json(cls, data: object, *, groups: tuple[str, ...], periods: tuple[int, ...]) -> ConversationState:
        """Whatever was stored, read defensively: unknown steps, groups or periods are dropped."""
        if not isinstance(data, dict):
            return cls()
        choices = tuple(Choice(str(c["entry_id"]), str(c.get("question") or ""))
                        for c in data.get("choices") or [] if isinstance(c, dict) and c.get("entry_id"))
        raw = data.get("calc")
        calc = None
        if isinstance(raw, dict) and raw.get("step") in CALC_STEPS:
            calc = FlowState(str(raw["step"]), raw.get("group") if raw.get("group") in groups else None,
                             raw.get("months") if raw.get("months") in periods else None)
        return cls(choices, calc, LastQuestion.from_json(data.get("last")))
