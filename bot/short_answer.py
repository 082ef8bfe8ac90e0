"""The short answer a phone shows first, the details behind "Xem chi tiết" (issue 17 item 2).

An entry's authored `short` (knowledge/schema.py) is used when it has one. Until then the short
answer is derived from the rendered answer by one rule:

- the answer's first paragraph when it is at most `MAX_SHORT_LINES` lines and `MAX_DERIVED_CHARS`
  characters (most answers open with the direct answer, then "Cần biết:" lists and examples);
- else its first sentence (a first line that only introduces a list, "…như sau:", takes the
  list's first lines with it while they fit).

A derived short answer is the start of the answer, so the details are the rest of it (nothing is
said twice); an authored one is a summary, so the details are the whole answer.

"Có." / "Không." / "Được." only open an answer when they answer what was asked (`fit_to_question`):
for a question that is not a yes/no question the leading verdict sentence is dropped, and a question
asking "bao nhiêu / mấy / bao lâu" leads with the answer's first sentence that holds a figure.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import replace
from typing import Any

from bot.messages import DETAILS_TITLE, DETAILS_WORDS
from bot.reply import Reply
from retrieval.normalize import folded_tokens, normalize_query

MAX_SHORT_LINES = 3
MAX_DERIVED_CHARS = 300
MAX_THIN_CHARS = 450
MIN_DERIVED_CHARS = 50  # "Có." or "Không mất." alone says too little: the next sentence comes with it

# A sentence ends at . ! ? followed by spaces and a capital, a digit or a quote ("1.500.000" and
# "01/7/2025" never end one); `_split_sentences` checks the capital (re has no \p{Lu}).
_SENTENCE_GAP = re.compile(r"(?<=[.!?])\s+(?=\S)")
_BULLET = re.compile(r"^\s*[-•*]\s+")

# The words a yes/no answer opens with, as a sentence of its own ("Có.", "Không đúng với luật hiện
# hành.", "Vẫn còn, nhưng hẹp hơn trước."): one of these, then at most VERDICT_WORDS words in all.
_VERDICT = re.compile(
    r"^(?:(?:Có|Không|Được|Chưa|Đúng|Phải|Không phải)[.,!]"
    r"|(?:Không đúng|Đúng một phần|Vẫn còn|Vẫn kịp|Vẫn được|Chưa được|Không được)\b)")
VERDICT_WORDS = 6
# "Có, nếu con dưới 7 tuổi: …", "Được, theo chỉ định của bác sĩ …": the yes before a condition goes, the
# condition stays ("Nếu con dưới 7 tuổi: …"); "Có, và …" is left alone.
_VERDICT_BEFORE_CONDITION = re.compile(r"^(?:Có|Được|Không|Chưa),\s+(?=(?:nếu|khi|theo|với|trong|tùy)\b)")

# Accent-folded words a Vietnamese question is closed with: "… không?", "… chưa ạ?".
_CLOSING = {"khong", "chua", "hong", "hok", "khg"}
_TRAILING_PARTICLES = {"a", "ah", "ak", "nhe", "nha", "nhi", "vay", "z", "the", "ha", "ne", "chu", "day", "oi",
                       "ban", "ad", "admin", "anh", "chi", "em", "co", "ba", "ong", "chau"}
_YES_NO_PHRASES = re.compile(r"\b(?:co phai|phai khong|dung khong|co dung la|hay khong|hay chua|duoc khong)\b")
_ASKS_AMOUNT = re.compile(r"\b(?:bao nhieu|bn|may (?:thang|nam|ngay|tuoi|lan|phan tram|%)|bao lau|muc nao"
                          r"|muc bao nhieu|toi da|toi thieu|it nhat)\b")


def _split_sentences(line: str, maxsplit: int = 0) -> list[str]:
    """A line cut after each sentence's end (at most `maxsplit` cuts when given)."""
    pieces, start = [], 0
    for gap in _SENTENCE_GAP.finditer(line):
        following = line[gap.end()]
        if following.isupper() or following.isdigit() or following in "\"“(":
            pieces.append(line[start:gap.start()])
            start = gap.end()
            if maxsplit and len(pieces) == maxsplit:
                break
    return [*pieces, line[start:]]


def sentences(text: str) -> list[str]:
    """The sentences of a text, lines kept apart (a list item is a sentence of its own)."""
    out: list[str] = []
    for line in text.splitlines():
        out.extend(s.strip() for s in _split_sentences(line.strip()) if s.strip())
    return out


def _unit_ends(text: str) -> list[int]:
    """Offsets in `text` where a sentence or a line ends, in order."""
    ends: list[int] = []
    for line in re.finditer(r"[^\n]+", text):
        offset = line.start()
        for piece in _split_sentences(line.group()):
            offset = text.index(piece, offset) + len(piece)
            ends.append(offset)
    return ends


def _fits(short: str, limit: int | None = None) -> bool:
    lines = [line for line in short.splitlines() if line.strip()]
    return len(short) <= (limit or MAX_DERIVED_CHARS) and len(lines) <= MAX_SHORT_LINES


def derived_short(text: str) -> str:
    """The start of an answer that answers it (see the module's rule): the first paragraph when it fits,
    else the first sentence; a bare "Có." or a line that opens a list ("Gia đình được nhận:") takes the
    next sentences or lines with it while they fit."""
    text = text.strip()
    if not text:
        return ""
    ends = _unit_ends(text)
    paragraph = re.search(r"\n\s*\n", text)
    first_paragraph = paragraph.start() if paragraph else len(text)
    end = first_paragraph if _fits(text[:first_paragraph]) else ends[0]
    for following in (e for e in ends if e > end):
        short = text[:end].rstrip()
        thin = len(short) < MIN_DERIVED_CHARS  # a bare "Có.": the next sentence may run a little long
        if not (thin or short.endswith(":")) or not _fits(text[:following], MAX_THIN_CHARS if thin else None):
            break
        end = following
    return text[:end].strip()


def short_and_details(text: str, short: str = "") -> tuple[str, str]:
    """(short answer, details) for a rendered answer and its rendered authored short ("" = derive it).

    A short answer that is the start of the text leaves the rest as details ("" when nothing is left:
    the whole answer is short); any other short answer leaves the whole text as details."""
    text = text.strip()
    short = short.strip() or derived_short(text)
    if text.startswith(short):
        return short, text[len(short):].strip()
    return short, text


# ------------------------------------------------------------------ fitting the question


def _clauses(question: str) -> list[list[str]]:
    return [folded_tokens(part) for part in re.split(r"[,.;?!\n]+", question) if part.strip()]


def is_yes_no_question(question: str) -> bool:
    """Whether a (normalized) question asks yes or no: a clause closed by "không" / "chưa" (particles such
    as "ạ", "nhé" aside), or "có phải", "đúng không", "được không". Questions naming what they want
    ("bao nhiêu", "thế nào", "ở đâu", a bare topic like "rút bhxh 1 lần") are not."""
    folded = " ".join(folded_tokens(question))
    if _YES_NO_PHRASES.search(folded):
        return True
    for words in _clauses(question):
        while words and words[-1] in _TRAILING_PARTICLES:
            words = words[:-1]
        if words and words[-1] in _CLOSING:
            return True
    return False


def asks_amount(question: str) -> bool:
    """Whether a (normalized) question asks for a figure: "bao nhiêu", "mấy tháng", "bao lâu", "tối đa"."""
    return bool(_ASKS_AMOUNT.search(" ".join(folded_tokens(question))))


def drop_verdict(text: str) -> str:
    """The text without its opening yes/no sentence ("Có. Nhà nước hỗ trợ…" → "Nhà nước hỗ trợ…")."""
    stripped = text.lstrip()
    condition = _VERDICT_BEFORE_CONDITION.match(stripped)
    if condition:
        remainder = stripped[condition.end():]
        return remainder[:1].upper() + remainder[1:]
    if not _VERDICT.match(stripped):
        return text
    first, _, rest = stripped.partition("\n")
    parts = _split_sentences(first, maxsplit=1)
    if len(parts) < 2 or len(parts[0].split()) > VERDICT_WORDS:
        # "Có, nếu con dưới 7 tuổi…": the condition is the answer; only a bare verdict is dropped
        return text
    remainder = parts[1] + ("\n" + rest if rest else "")
    return remainder[:1].upper() + remainder[1:]


def _figure_sentence(text: str) -> str | None:
    for sentence in sentences(text):
        if any(ch.isdigit() for ch in sentence) and len(sentence) <= MAX_DERIVED_CHARS:
            return _BULLET.sub("", sentence)
    return None


def fit_to_question(question: str, text: str, short: str = "") -> tuple[str, str]:
    """(text, short) fitted to the question asked: see the module's rule. `short` may be "" (derived later)."""
    if not question or is_yes_no_question(question):
        return text, short
    text = drop_verdict(text)
    short = drop_verdict(short) if short else short
    if asks_amount(question):
        lead = short or derived_short(text)
        if not any(ch.isdigit() for ch in lead):
            short = _figure_sentence(text) or short
    return text, short


# ------------------------------------------------------------------ the details, asked for


def asks_details(text: object) -> bool:
    """Whether a message asks for the details of the last answer: "0", "chi tiết", "xem chi tiết"."""
    return isinstance(text, str) and " ".join(text.lower().split()).strip(" .!?") in DETAILS_WORDS


def details_reply(reply: Reply, question: str) -> Reply:
    """An answer's details as a reply of their own ("Xem chi tiết", "0"): titled with the entry's question,
    with the sources (they stand alone when forwarded) and the date note; no short form, so channels show
    all of it."""
    return replace(reply, text=reply.details, short="", details="", title=f"{DETAILS_TITLE} {question}",
                   related=(), choices=(), calculator=None)


def details_of(engine: Any, entry_id: str, on: dt.date | None = None, *, asked: str = "") -> Reply | None:
    """The details of an entry's answer, rendered like the answer was: for the date `asked` (the question
    it answered) asks about. None for an unknown entry or an answer that is all short."""
    reply = engine.entry_reply(entry_id, on, question=asked)
    if reply is None or not reply.details:
        return None
    if asked and not is_yes_no_question(normalize_query(asked)):  # as the answer it follows was fitted
        reply = replace(reply, details=drop_verdict(reply.details))
    return details_reply(reply, engine.kb.entries[entry_id].question)
