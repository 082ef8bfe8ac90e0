"""Vietnamese text normalization: the one place that decides how text is cleaned.

Order matters: PII is redacted first (so nothing downstream ever sees it), then
Unicode NFC, case, letter boilerplate, abbreviations/teen-code, whitespace.
Accent folding (marks removed, đ→d) gives the second, unaccented view of a text
that lets queries typed without diacritics match.
"""

from __future__ import annotations

import functools
import re
import unicodedata

# ---------------------------------------------------------------- accents


def valid_unicode(text: str) -> str:
    """`text` encodable as UTF-8: lone surrogates (a JSON "\\ud800" escape) become "?".

    They cannot be stored, hashed or sent, so every entry point cleans its text with this.
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace").decode("utf-8")
    return text


def nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


_D_TABLE = str.maketrans({"đ": "d", "Đ": "D"})


@functools.lru_cache(maxsize=65536)  # called per token on every query; the vocabulary is small
def fold_accents(text: str) -> str:
    """Remove Vietnamese tone and vowel marks and map đ→d ("Bảo hiểm" → "Bao hiem")."""
    decomposed = unicodedata.normalize("NFD", text.translate(_D_TABLE))
    stripped = "".join(ch for ch in decomposed if unicodedata.category(ch) != "Mn")
    return unicodedata.normalize("NFC", stripped)


def has_accents(token: str) -> bool:
    return fold_accents(token) != token


# \w in Python's re is Unicode-aware, so "ở", "y" and "tế" are kept whole:
# one-letter syllables are meaningful in Vietnamese and must not be dropped.
_TOKEN_RE = re.compile(r"\w+", re.UNICODE)


def tokenize(text: str) -> list[str]:
    """Lower-cased NFC syllables; keeps one-letter syllables and digits."""
    return _TOKEN_RE.findall(nfc(text).lower().replace("_", " "))


def folded_tokens(text: str) -> list[str]:
    return [fold_accents(t) for t in tokenize(text)]


# ---------------------------------------------------------------- PII

# Redaction lives in retrieval/pii.py (its own module: bounded, linear, every written form);
# re-exported here because every caller has always imported it from this module.
from retrieval.pii import MAX_REDACT_CHARS, redact_pii  # noqa: E402, F401

# ---------------------------------------------------------------- boilerplate

_BOILERPLATE = [
    # Salutations and sign-offs of letters sent to the portal.
    r"^\s*(?:kính\s+gửi|kinh\s+gui|gửi|gui|thưa|thua)\b[^.\n?!]*[,:.\n]",
    r"\b(?:xin\s+chào|xin\s+chao|chào|chao|hello|hi|alo)\s+(?:anh\s+chị|anh\s+chi|ad|admin|bạn|ban|mọi\s+người|moi\s+nguoi|bot|cơ\s+quan|co\s+quan)?[\s,.!]*",
    r"(?:\b(?:em|tôi|toi|con|cháu|chau|mình|minh)\s+)?(?:xin\s+)?(?:chân\s+thành\s+)?"
    r"(?:cảm\s+ơn|cám\s+ơn|cam\s+on|thanks|thank\s+you|tks|thks)[^.?!\n]*[.!]?\s*$",
    r"(?:trân\s+trọng|tran\s+trong)[.!]?\s*$",
    r"\[TÊN\]",
]
_BOILERPLATE_RE = [re.compile(p, re.IGNORECASE | re.UNICODE) for p in _BOILERPLATE]


def strip_boilerplate(text: str) -> str:
    for pattern in _BOILERPLATE_RE:
        text = pattern.sub(" ", text)
    return text


# ---------------------------------------------------------------- abbreviations

# Keys are accent-folded lower-case tokens (so "đc" and "dc" share one key);
# values are the accented expansion. Only unambiguous short forms belong here.
ABBREVIATIONS: dict[str, str] = {
    "bhxh": "bảo hiểm xã hội",
    "bhyt": "bảo hiểm y tế",
    "bhtn": "bảo hiểm thất nghiệp",
    "bhxhtn": "bảo hiểm xã hội tự nguyện",
    "bhxhbb": "bảo hiểm xã hội bắt buộc",
    "bh": "bảo hiểm",
    "tnld": "tai nạn lao động",
    "bnn": "bệnh nghề nghiệp",
    "nld": "người lao động",
    "nsdld": "người sử dụng lao động",
    "nsd": "người sử dụng",
    "hdld": "hợp đồng lao động",
    "cccd": "căn cước công dân",
    "cmnd": "chứng minh nhân dân",
    "cmt": "chứng minh thư",
    "dn": "doanh nghiệp",
    "cty": "công ty",
    "ctv": "cộng tác viên",
    "ubnd": "ủy ban nhân dân",
    "sdt": "số điện thoại",
    "ko": "không",
    "k": "không",
    "kg": "không",
    "khg": "không",
    "hok": "không",
    "hong": "không",
    "hem": "không",
    "kh": "không",
    "dc": "được",
    "dk": "được",
    "duoc": "được",
    "j": "gì",
    "gi": "gì",
    "ntn": "như thế nào",
    "bn": "bao nhiêu",
    "bnhieu": "bao nhiêu",
    "mn": "mọi người",
    "vs": "với",
    "ng": "người",
    "ngta": "người ta",
    "tg": "thời gian",
    "tgian": "thời gian",
    "thg": "tháng",
    "trc": "trước",
    "mk": "mình",
    "mik": "mình",
    "mh": "mình",
    "e": "em",
    "z": "vậy",
    "v": "vậy",
    "r": "rồi",
    "ak": "à",
    "wa": "qua",
    "bít": "biết",
    "bit": "biết",
    "lm": "làm",
    "ib": "nhắn tin",
    "nhiu": "nhiêu",
    "lquan": "liên quan",
    "hs": "hồ sơ",
    "tks": "cảm ơn",
}

# Multi-word and number forms, applied on folded text before token expansion.
_PHRASES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"\b1\s*lan\b"), "một lần"),
    (re.compile(r"\b1\s*lần\b"), "một lần"),
    (re.compile(r"\b1\s*cuc\b"), "một cục"),
    (re.compile(r"\b1\s*cục\b"), "một cục"),
    (re.compile(r"\bthai\s*san\b"), "thai sản"),
    (re.compile(r"\bdk\s*(?=tham\s*gia|tham gia|nhận|nhan|hưởng|huong|rút|rut)"), "điều kiện "),
    (re.compile(r"\bđk\s*(?=tham|nhận|nhan|hưởng|huong|rút|rut)"), "điều kiện "),
]

# Runs of a repeated letter ("đcccc", "khôngggg") are typed for emphasis.
_REPEATS = re.compile(r"([^\W\d_])\1{2,}\b", re.UNICODE)
_PLACEHOLDERS = re.compile(r"\[[^\]\n]{1,20}\]")


def expand_abbreviations(text: str) -> str:
    """Expand teen-code and abbreviations; input should already be lower-case NFC."""
    for pattern, replacement in _PHRASES:
        text = pattern.sub(replacement, text)
    out: list[str] = []
    for raw in re.split(r"(\W+)", text):
        if not raw or not raw[0].isalnum():
            out.append(raw)
            continue
        key = fold_accents(raw)
        # Only expand a token that is typed exactly as the short form (accented
        # or not): "gì" stays "gì", "gi" becomes "gì", but "dễ" is never touched.
        expansion = ABBREVIATIONS.get(key)
        if expansion is not None and (raw == key or raw == "đc"):
            out.append(expansion)
        else:
            out.append(raw)
    return "".join(out)


_SPACES = re.compile(r"\s+")


def collapse_spaces(text: str) -> str:
    return _SPACES.sub(" ", text).strip()


def normalize_query(text: str) -> str:
    """Full pipeline for a user question: redact, NFC, lower, strip letters, expand."""
    text = _PLACEHOLDERS.sub(" ", redact_pii(text))
    text = nfc(text).lower()
    text = _REPEATS.sub(r"\1", text)
    text = strip_boilerplate(text)
    text = expand_abbreviations(text)
    return collapse_spaces(text)


def normalize_document(text: str) -> str:
    """Documents are written text: NFC, lower case, spaces; no teen-code expansion."""
    return collapse_spaces(nfc(text).lower())
