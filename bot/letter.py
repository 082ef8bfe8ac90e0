"""Reading a letter: find what is asked in a message that tells a story first.

Real letters open with a greeting, tell a story (ages, years paid, who died,
what contract) and end with one or two questions. Retrieval should weigh the
question sentences most, yet keep the story's key words: "gia đình tôi được
hưởng chế độ gì?" means survivors' benefits only because of "bố tôi mất" earlier.

`read_letter(text)` splits the message into sentences, drops letter
boilerplate (greetings, thanks, sign-offs) and returns the question sentences,
the story, and a short `focus` text for the encoder: the questions, preceded by
the sentence before them when the questions alone are too short to stand.
All matching is on accent-folded lower-case text, so unaccented letters work.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from retrieval.normalize import fold_accents

# A message with at least this many words is read as a letter.
LETTER_MIN_WORDS = 30
# Question sentences shorter than this get the sentence before them as context.
SHORT_QUESTION_WORDS = 14
# "Cho em hỏi, bố em đóng BHXH 9 năm thì mất…" (no question word) opens a story past this length.
ASKING_MAX_WORDS = 15
FOCUS_MAX_WORDS = 100  # most letters (median ~58 words) fit whole, minus greetings; very long ones are cut

_SENTENCE_END = re.compile(r"(?<=[.?!;…])\s+|\n+|(?<=[?!])(?=\S)")
_WORD = re.compile(r"\w+")

# Sentence openers and endings that ask (accent-folded).
_ASKING = re.compile(
    r"^(?:\W*)(?:(?:vay|the|nhu vay|vay thi|trong truong hop nay|truong hop nay|truong hop cua (?:toi|em|minh)"
    r"(?: nhu vay)?)\s+)?"
    r"(?:xin (?:duoc )?hoi|cho (?:em |toi |minh |chau |con )?(?:xin )?hoi|(?:toi|em|minh|chau|con)"
    r" (?:xin |muon |can )?hoi|hoi\b|kinh hoi|nho (?:ban|bao|luat su|chuyen gia|co quan)|mong (?:ban|bao|quy|co quan)"
    r"|de nghi (?:co quan|bhxh)|xin (?:tu van|giai dap|huong dan))"
)
_QUESTION_WORDS = re.compile(
    r"\b(?:bao nhieu|bao lau|bao gio|khi nao|luc nao|the nao|nhu the nao|ra sao|lam sao|lam the nao|o dau"
    r"|nhung gi|nhung ai|cai gi|che do gi|gi khong|gi a|gi vay|gi\s*$|ai\s*$|nao\s*$|hay khong|hay chua"
    r"|duoc khong|dc ko|duoc ko|dc khong|co duoc|co phai|phai khong|dung khong|co dung|co bi|co can"
    r"|co nen|nen (?:rut|dong|lam|chon)|co the .{0,40}khong|khong a|chua a|k a|ko a|khong\s*$|ko\s*$|chua\s*$"
    r"|the nao a|sao a|vay a)\b"
)
# Boilerplate sentences: greetings, thanks, sign-offs, contact lines.
_BOILERPLATE = re.compile(
    r"^(?:\W*)(?:kinh gui|kinh thua|xin chao|chao (?:ban|ad|admin|anh|chi|bao|luat su|quy)|thua (?:ban|quy)"
    r"|(?:xin )?(?:chan thanh )?cam on|tran trong|than ai|tran trong cam on|mong (?:som )?nhan duoc"
    r"|rat mong|mong duoc (?:giai dap|tra loi|tu van|phan hoi)|so dien thoai|dien thoai|email|e-mail|dia chi"
    r"|nguoi gui|ho (?:va )?ten)\b"
)


@dataclass(frozen=True)
class Letter:
    text: str
    sentences: tuple[str, ...]  # boilerplate removed
    questions: tuple[str, ...]  # the sentences that ask, in order

    @property
    def words(self) -> int:
        return len(_WORD.findall(self.text))

    @property
    def is_letter(self) -> bool:
        """Long enough that the story could drown the question."""
        return self.words >= LETTER_MIN_WORDS and bool(self.questions) and len(self.questions) < len(self.sentences)

    @property
    def focus(self) -> str:
        """What the encoder should read: the questions, plus the story sentences that name the event.

        Story sentences are ranked by how many event words they hold (a death, a
        birth, leaving a job, retiring…) and added in their original order while
        the focus stays under FOCUS_MAX_WORDS.
        """
        if not self.questions:
            return " ".join(self.sentences) or self.text
        budget = FOCUS_MAX_WORDS - sum(len(_WORD.findall(q)) for q in self.questions)
        story = [(n, s) for n, s in enumerate(self.sentences) if s not in self.questions]
        salient = sorted((s for s in story if event_words(s[1])), key=lambda s: -event_words(s[1]))
        chosen: set[int] = set()
        for n, sentence in salient:
            size = len(_WORD.findall(sentence))
            if size <= budget:
                chosen.add(n)
                budget -= size
        kept = [s for n, s in enumerate(self.sentences) if n in chosen or s in self.questions]
        return " ".join(kept)


def split_sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_END.split(text) if s and s.strip()]


def is_question(sentence: str) -> bool:
    """Ends with "?", holds a question word, or is a short "cho em hỏi…" (a long one opens the story)."""
    folded = _folded(sentence)
    if sentence.rstrip().endswith("?") or _QUESTION_WORDS.search(folded):
        return True
    return bool(_ASKING.match(folded)) and len(_WORD.findall(folded)) <= ASKING_MAX_WORDS


def strip_boilerplate(sentence: str) -> str:
    """The sentence without its greeting or sign-off; "" when nothing else is in it.

    "Kính gửi BHXH, mẹ tôi đóng tự nguyện…" keeps what follows the first comma.
    """
    folded = _folded(sentence)
    if not _BOILERPLATE.match(folded) or folded.rstrip().endswith("?"):
        return sentence
    head, comma, rest = sentence.partition(",")
    if comma and len(_WORD.findall(head)) <= 8 and len(_WORD.findall(rest)) >= 4:
        return strip_boilerplate(rest.strip())
    return "" if len(_WORD.findall(folded)) <= 25 else sentence


# Words that name what happened to whom: they carry the topic of a story (accent-folded).
_EVENT = re.compile(
    r"\b(?:mat|qua doi|chet|tu vong|hy sinh|tai nan|benh nghe nghiep|om|nam vien|phau thuat|sinh con|sinh|mang thai"
    r"|thai san|nghi viec|thoi viec|that nghiep|nghi huu|luong huu|huu tri|rut|mot lan|bao luu|tu nguyen|bat buoc"
    r"|hop dong|dong bhxh|dong bao hiem|bhyt|bao hiem y te|tuat|mai tang|no bhxh|cham dong|tron dong|xuat khau"
    r"|nuoc ngoai|ho kinh doanh|tro cap)\b"
)


def event_words(sentence: str) -> int:
    return len(_EVENT.findall(_folded(sentence)))


@lru_cache(maxsize=4096)
def _folded(sentence: str) -> str:
    return fold_accents(sentence.lower())


def read_letter(text: str) -> Letter:
    sentences = tuple(kept for s in split_sentences(text) if (kept := strip_boilerplate(s)))
    questions = tuple(s for s in sentences if is_question(s))
    return Letter(text, sentences, questions)
