"""PII redaction: the one pass every stored or searched text goes through (`redact_pii`).

Two promises, both tested (tests/test_pii.py, tests/test_security.py):

* **Bounded, linear cost.** The text is cut to `limit` (+ a small margin) *before* any other work,
  so a 64 KB body costs what a 4,000-character one does; every pattern is linear in its input
  (possessive quantifiers, bounded repeats, look-behinds that allow one attempt per run), and
  digit sequences are found by one scan and classified in Python, not by one regex per format.
  Python's `re` holds the GIL for a whole match: a slow pattern here would stall the server.
* **Every written form.** Before matching, the text is made to look the way the engine reads
  it: HTML tags removed, entities decoded, full-width and other Unicode digits mapped to ASCII,
  every kind of space (NBSP, thin, ideographic) made a plain space, invisible format characters
  (zero-width space, BOM, bidi marks) dropped. A number may then be split by spaces, newlines,
  dots, hyphens, " - ", "/", "_" or brackets in any grouping.

Redacted (label in brackets): e-mails, also without a domain ending, with spaces, "(at)", "[at]",
"a còng", "(dot)", "chấm" ([EMAIL]); any number of 9 or more digits that is not an amount of
money, a date or a list of years: phones ([SĐT], also +84/0084/(0), landlines, the old
11-digit mobiles, a leading letter O, digits spelled as words), CCCD ([CCCD]), BHXH numbers
([MÃ BHXH]), CMND ([CMND]), bank accounts after "STK"/"tài khoản" ([STK]) and other long
numbers ([SỐ]); 7–8 digit numbers right after a phone, account or passport keyword; passports
("C1234567", [HỘ CHIẾU]); names introduced in the first person ("tôi tên là", "tên em là",
"tôi là Nguyễn Văn An", "em là Lan,"), in a form ("Họ và tên:", "Người gửi:", "Ký tên:") or
under a sign-off ("Trân trọng,\\nĐỗ Thị Hồng") ([TÊN]); an address after "địa chỉ:" up to the
end of its line or sentence ([ĐỊA CHỈ]).

Kept on purpose (people need them answered): ages, years ("đóng 15 năm"), amounts
("lương 8.500.000 đồng", "150000000"), dates, birth dates included ("sinh ngày 12/05/1980":
retirement and benefit answers depend on them), article and decree numbers ("Điều 70",
"41/2024/QH15"), the hotline.
"""

from __future__ import annotations

import functools
import html
import re
import unicodedata

MAX_REDACT_CHARS = 4000  # the longest redacted text returned (the question log keeps this much)
_MARGIN = 64  # read this far past the limit, so a number cut by the limit is still seen whole

# ---------------------------------------------------------------- text as the engine reads it

_TAGS = re.compile(r"<[^<>]{0,200}>")  # the same as the engine's screen(), bounded: linear


@functools.cache
def _char_table() -> dict[int, str]:
    """Unicode digits → ASCII digits, full-width ASCII → ASCII, every space → " ", invisible format
    characters → nothing, control characters → " ". Built once (the Basic Multilingual Plane)."""
    table: dict[int, str] = {}
    for cp in range(0x80, 0x10000):
        ch = chr(cp)
        category = unicodedata.category(ch)
        if category == "Nd":
            table[cp] = str(unicodedata.decimal(ch))
        elif category == "No" and unicodedata.digit(ch, None) is not None:  # ¹ ² ① ⑴
            table[cp] = str(unicodedata.digit(ch))
        elif category == "Zs":
            table[cp] = " "
        elif category == "Cf":  # zero-width space and joiners, BOM, bidi overrides, soft hyphen
            table[cp] = ""
        elif category == "Cc":
            table[cp] = " "
    for cp in range(0xFF01, 0xFF5F):  # full-width ASCII (＠, ０-９, Ａ-Ｚ)
        table[cp] = chr(cp - 0xFEE0)
    for cp in (*range(0, 9), 11, 12, *range(14, 32), 127):
        table[cp] = " "
    return table


def _prepare(text: str) -> str:
    """The text as the engine reads it (tags out, entities decoded), with digits and spaces unified."""
    text = _TAGS.sub(" ", text)
    if "&" in text:
        text = html.unescape(text)
    return unicodedata.normalize("NFC", text.translate(_char_table()))


# ---------------------------------------------------------------- e-mails

_AT = (r"(?:[ \t]{0,2}@[ \t]{0,2}"
       r"|[ \t]{0,2}[(\[][ \t]?(?:at|a[ \t]?còng|a[ \t]?cong)[ \t]?[)\]][ \t]{0,2}"
       r"|[ \t]{1,2}(?:a[ \t]?còng|a[ \t]?cong|acong)[ \t]{1,2})")
_DOT = (r"(?:\.|[ \t]{0,2}[(\[][ \t]?(?:dot|chấm|cham)[ \t]?[)\]][ \t]{0,2}"
        r"|[ \t]{1,2}(?:dot|chấm|cham)[ \t]{1,2})")
# One attempt per run of local-part characters (the look-behind), each bounded: linear.
_EMAIL = re.compile(rf"(?i)(?<![\w.+-])[\w.+-]{{1,64}}{_AT}[\w-]{{1,63}}(?:{_DOT}[\w-]{{1,63}}){{0,6}}")

# ---------------------------------------------------------------- numbers

# A run of digits (a leading letter O typed for zero allowed) with up to 3 separator characters
# between digits: space, newline, ".", "-", "/", "_", brackets ("0912 - 345 - 678", "(024) 3824 5678").
# Separators and digits are disjoint, so a failed continuation backtracks at most 3 characters.
_DIGIT_RUN = re.compile(r"(?:[Oo](?=\d))?\d(?:[ \t\r\n.\-/_()]{1,3}+(?=\d)|\d)*+")
_SPELLED = (r"không|khong|một|mot|mốt|hai|ba|bốn|bon|tư|năm|nam|lăm|sáu|sau|bảy|bẩy|bay|tám|tam|"
            r"chín|chin|linh|lẻ|\d")
# Nine or more digits spelled out ("không chín một hai ...") read out from a phone or an ID card.
_SPELLED_RUN = re.compile(rf"(?i)\b(?:{_SPELLED})\b(?:[ \t,.\-]++(?:{_SPELLED})\b){{8,}}+")
_CURRENCY = re.compile(r"(?i)[ \t]*+(?:đồng|đ\b|dong\b|vnđ|vnd|d\b|triệu|trieu|tr\b|tỷ|tỉ|ty\b|ti\b|nghìn|"
                       r"nghin|ngàn|ngan|k\b|usd|\$|%)")
_THOUSANDS = re.compile(r"[1-9]\d{0,2}(?:\.\d{3})+|[1-9]\d{0,2}(?:,\d{3})+")
_DAY, _MONTH, _YEAR = r"(?:0?[1-9]|[12]\d|3[01])", r"(?:0?[1-9]|1[0-2])", r"(?:19|20)\d{2}"
_DATE = (rf"{_DAY}[/.\-]{_MONTH}[/.\-]{_YEAR}|{_MONTH}[/.\-]{_YEAR}|{_YEAR}"
         rf"|{_DAY}[/.\-]{_MONTH}(?=[ \t\n./\-]{{1,3}}\d)")  # "10/1-09/7/2022": a day/month before another date
_DATES = re.compile(rf"(?:{_DATE})(?:[ \t\n./\-]{{1,3}}(?:{_DATE}))*")
_A_YEAR = re.compile(rf"(?<!\d){_YEAR}(?!\d)")
# What the words just before a number say it is (accent-folded, lower case, last one wins).
_KEYWORDS: list[tuple[str, str]] = [
    (r"cmnd|cmt|chung minh", "[CMND]"),
    (r"cccd|can cuoc|dinh danh", "[CCCD]"),
    (r"ma so bhxh|ma bhxh|so so|so bhxh|ma so bao hiem|ma the|so the|the bhyt|ma so", "[MÃ BHXH]"),
    (r"stk|so tai khoan|tai khoan|so tk|ngan hang|account", "[STK]"),
    (r"ho chieu|passport", "[HỘ CHIẾU]"),
    (r"sdt|dien thoai|dt|so may|goi|zalo|lien he|lh|hotline|phone|tel|mobile|di dong", "[SĐT]"),
]
_KEYWORD = re.compile(r"\b(" + "|".join(f"(?:{p})" for p, _ in _KEYWORDS) + r")\b")
_KEYWORD_LABELS = [(re.compile(rf"^(?:{p})$"), label) for p, label in _KEYWORDS]
# A short number (7–8 digits) is personal only right after such a keyword.
_RIGHT_AFTER = re.compile(r"\b(?:" + "|".join(p for p, _ in _KEYWORDS) + r")\b[ \t:]*+(?:(?:la|so|cua (?:toi|em|minh))"
                          r"\b[ \t:]*+)*+$")
_FOLD_TABLE = str.maketrans({"đ": "d", "Đ": "D"})


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFD", text.translate(_FOLD_TABLE))
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).lower()


def _phone_shape(digits: str) -> bool:
    n = len(digits)
    return ((n == 10 and digits[0] == "0" and digits[1] in "35789")
            or (n == 11 and digits[:2] in ("02", "01"))
            or (n == 11 and digits[:2] == "84" and digits[2] in "235789")
            or (n == 12 and digits[:3] == "840")
            or (n in (13, 14) and digits[:4] == "0084"))


def _label_for_number(run: str, text: str, start: int, end: int) -> str | None:
    """The label of a digit run, or None when it is not personal (an amount, a date, a year, short)."""
    digits = "".join(ch for ch in run if ch.isdigit())
    if run[0] in "Oo":
        digits = "0" + digits
    context = _fold(text[max(0, start - 40):start])
    keywords = _KEYWORD.findall(context)
    keyword_label = next((label for pattern, label in _KEYWORD_LABELS if pattern.match(keywords[-1])), None) \
        if keywords else None
    n = len(digits)
    if n < 9:
        if n >= 7 and (_RIGHT_AFTER.search(context) or _passport_letter(text, start)):
            return "[HỘ CHIẾU]" if _passport_letter(text, start) else keyword_label
        return None
    if _CURRENCY.match(text, end):
        return None  # "số tiền 123456789012345 đồng"
    if n <= 24 and _DATES.fullmatch(run) and _A_YEAR.search(run):
        return None  # "01/01/2020 - 31/12/2025", "10/1-09/7/2022", "2015 2016 2017"
    id_keyword = keyword_label is not None and keyword_label != "[SĐT]"
    if not id_keyword and digits[0] != "0" and (_THOUSANDS.fullmatch(run) or (run.isdigit() and n <= 10
                                                                             and digits.endswith("000"))):
        return None  # "12.500.000.000", "150000000" (an amount typed without its unit)
    if keyword_label is not None:
        return keyword_label
    if _phone_shape(digits):
        return "[SĐT]"
    return {12: "[CCCD]", 10: "[MÃ BHXH]", 9: "[CMND]"}.get(n, "[SỐ]")


def _passport_letter(text: str, start: int) -> bool:
    """ "C1234567": one capital letter glued to the digits, itself not part of a word."""
    return start >= 1 and "A" <= text[start - 1] <= "Z" and (start == 1 or not text[start - 2].isalnum())


def _redact_numbers(text: str) -> str:
    out: list[str] = []
    last = 0
    for m in _DIGIT_RUN.finditer(text):
        label = _label_for_number(m.group(), text, m.start(), m.end())
        if label is None:
            continue
        start = m.start() - (1 if label == "[HỘ CHIẾU]" and _passport_letter(text, m.start()) else 0)
        out += [text[last:start], label]
        last = m.end()
    out.append(text[last:])
    return "".join(out)


# ---------------------------------------------------------------- names

# The first person as people write it to an office ("con", "cháu"), to a peer ("mình", "tớ") or in
# chat shorthand ("e", "a", "c"), and the kinship pronouns used of oneself ("anh", "chị", "cô", "chú", "bác").
_PRONOUN = (r"(?:tôi|toi|em|e|con|cháu|chau|mình|minh|tớ|anh|a|chị|chi|c|cô|chú|chu|bác|bac)")
# First-person intros ("tôi tên là", "tên em là") and form labels ("Họ và tên:", "Người gửi:").
# Atomic groups: "tôi tên là" never falls back to "tôi tên" (which would take "là" for the name).
_NAME_INTRO = re.compile(
    rf"(?i)\b((?>{_PRONOUN}[ \t]++(?:tên[ \t]++là(?!\w)|ten[ \t]++la(?!\w)|tên|ten)"
    rf"|(?:tên|ten)[ \t]++{_PRONOUN}[ \t]++(?:là|la)(?!\w)"
    r"|(?:họ|ho)[ \t]++(?:(?:và|va)[ \t]++)?(?:tên|ten)(?:[ \t]++(?:đầy[ \t]++đủ|day[ \t]++du))?"
    r"|(?:người|nguoi)[ \t]++(?:gửi|gui|viết|viet|hỏi|hoi|làm[ \t]++đơn|lam[ \t]++don)"
    r"|(?:ký|kí|ky|ki)[ \t]++(?:tên|ten)|full[ \t]?name))"
    r"[ \t]*+(?:[:,.\-][ \t]*+)?(?:\n[ \t]*+)?"
    r"(\w++(?:[ \t]++\w++){0,4})")
# "tôi là" introduces a name when capitalized words follow ("tôi là Nguyễn Văn An", "Em là Lan,").
_I_AM_PRONOUN = r"(?:tôi|toi|em|e|con|cháu|chau|mình|minh|tớ|anh|chị|chi|cô|chú|chu|bác|bac)"
_I_AM = re.compile(rf"(?i)\b({_I_AM_PRONOUN}[ \t]++(?:là|la)(?:[ \t]++(?:ông|bà|anh|chị|cô|chú|bác))?)"
                   r"[ \t]++(\w++(?:[ \t]++\w++){0,4})")  # "Bố tôi là ông Phạm Văn Lừng"
# The name under a letter's sign-off: "Trân trọng,\nĐỗ Thị Hồng", "Xin cảm ơn!\nLan".
_SIGN_OFF = re.compile(
    r"(?i)\b((?:trân[ \t]++trọng|tran[ \t]++trong|kính[ \t]++thư|kinh[ \t]++thu|thân[ \t]++ái|than[ \t]++ai)"
    r"[ \t]*+[,.!:;]*+[ \t]*+\n?[ \t]*+"
    r"|(?:cảm[ \t]++ơn|cám[ \t]++ơn|cam[ \t]++on)[^\n]{0,40}?\n[ \t]*+)"
    r"(\w++(?:[ \t]++\w++){0,4})")
# Where a name typed in lower case ends ("tôi tên là lan muốn hỏi…"): words no name is made of
# ("thi" is not one: unaccented, it is the middle name Thị as often as "thì").
_NOT_NAME = frozenset(
    "muốn hỏi xin năm nay đang có ở làm sinh em tôi mình bị đã được cho về và là thì nhưng quê sống hiện "
    "nghỉ đóng tham hay với vừa mới ạ nha nhé cần không bhxh bảo tuổi hiện muon hoi dang co lam "
    "toi minh bi da duoc ve va nhung que song nghi dong tham voi vua moi can khong ko k dc "
    "số so địa dia điện dien sđt sdt cccd cmnd email mail ngày ngay".split())
# Words that end a capitalized name too (the next sentence starting without a full stop).
# (Only accented or unambiguous words: "Minh", "Tran", "Dien" are names typed without marks.)
_NOT_NAME_CAPITALIZED = frozenset("tôi em mình xin muốn hỏi cho kính người họ ký số địa điện sđt sdt cccd cmnd "
                                  "email mail ngày sinh trân cảm".split())
_WORD = re.compile(r"\w+")


def _name_length(words: list[re.Match[str]], *, lower_case_allowed: bool) -> int:
    """How many of `words` make the name: capitalized words, or (when allowed) lower-case words up to
    one that no name is made of."""
    if words[0].group()[0].isupper():
        return next((i for i, w in enumerate(words)
                     if not w.group()[0].isupper() or w.group().lower() in _NOT_NAME_CAPITALIZED), len(words))
    if not lower_case_allowed:
        return 0
    return next((i for i, w in enumerate(words) if w.group().lower() in _NOT_NAME or w.group()[0].isdigit()),
                len(words))


_FORM_LABEL = re.compile(r"(?i)(?:họ|ho|người|nguoi|ký|kí|ky|ki|full)\b")


def _redact_intro(m: re.Match[str]) -> str:
    """After an intro the first word is the name whatever its case; the name ends as `_name_length` says.
    A form label without a colon ("người gửi tiền") introduces a name only if it is capitalized."""
    words = list(_WORD.finditer(m.group(2)))
    separator = m.string[m.end(1):m.start(2)]
    if (_FORM_LABEL.match(m.group(1)) and ":" not in separator and "\n" not in separator
            and not words[0].group()[0].isupper()):
        return m.group(0)
    n = max(_name_length(words, lower_case_allowed=True), 1)
    return f"{m.group(1)}{m.string[m.end(1):m.start(2)]}[TÊN]{m.group(2)[words[n - 1].end():]}"


def _redact_i_am(m: re.Match[str]) -> str:
    """ "tôi là Nguyễn Văn An" → "tôi là [TÊN]"; "Em là Lan, sinh…" too (one capitalized word ending the
    clause); "tôi là người…" and "Tôi là Giáo viên" stay."""
    words = list(_WORD.finditer(m.group(2)))
    n = _name_length(words, lower_case_allowed=False)
    if n == 0:
        return m.group(0)
    if n == 1:
        rest = m.group(2)[words[0].end():]
        next_word = words[1].group().lower() if len(words) > 1 else ""
        ends_clause = not rest.strip() or rest.lstrip(" \t")[:1] in ",.;!?" or next_word in _NOT_NAME
        if not ends_clause or not _ends_word(m.string, m.start(2) + words[0].end()):
            return m.group(0)
    return f"{m.group(1)}{m.string[m.end(1):m.start(2)]}[TÊN]{m.group(2)[words[n - 1].end():]}"


def _ends_word(text: str, index: int) -> bool:
    return index >= len(text) or not text[index].isalnum()


def _redact_sign_off(m: re.Match[str]) -> str:
    """The name under a sign-off: a one-word name ends its line or its clause ("Cảm ơn ạ.\nThời gian
    đóng…" is not one); two or more capitalized words are a name whatever follows them on the line
    ("Kính thư,\nNguyễn Văn Lan hỏi thai sản", as an HTML letter reads once its tags are gone)."""
    words = list(_WORD.finditer(m.group(2)))
    n = _name_length(words, lower_case_allowed=False)
    if n == 0:
        return m.group(0)
    name_end = m.start(2) + words[n - 1].end()
    after = m.string[name_end:name_end + 20].lstrip(" \t")
    if n < 2 and after[:1] not in ("", "\n", "\r", ",", ".", ";", "!", ":", "-", ")"):
        return m.group(0)
    return f"{m.group(1)}[TÊN]{m.group(2)[words[n - 1].end():]}"


# ---------------------------------------------------------------- addresses

# A labelled address ("Địa chỉ: số 12 ngõ 34, phường…"), up to the end of its line or sentence.
_ADDRESS = re.compile(
    r"(?i)\b((?:địa[ \t]++chỉ|dia[ \t]++chi|nơi[ \t]++ở|noi[ \t]++o|thường[ \t]++trú|thuong[ \t]++tru|"
    r"tạm[ \t]++trú|tam[ \t]++tru)(?:[ \t]++\w++){0,3}?[ \t]*+:[ \t]*+)"
    r"([^\n.?!;]{1,160}+)")


# ---------------------------------------------------------------- the pass


def redact_pii(text: str, limit: int = MAX_REDACT_CHARS) -> str:
    """`text` (at most `limit` characters of it) with personal data replaced by labels.

    Cost is bounded and linear: the text is cut before anything else. The result is the text as
    the engine reads it (tags removed, entities decoded, digits and spaces unified), NFC.
    """
    if len(text) > limit + _MARGIN:
        # The tail past the limit is dropped; the last partial word or number too, so no fragment of a
        # cut number (too short to be recognised) can end up inside the limit.
        text = text[:limit + _MARGIN]
        space = max(text.rfind(" "), text.rfind("\n"))
        if space >= limit:
            text = text[:space]
        text = text.rstrip("0123456789 \t\n.-/_()+")
    text = _prepare(text)
    text = _EMAIL.sub("[EMAIL]", text)
    text = _redact_numbers(text)
    text = _SPELLED_RUN.sub("[SỐ]", text)
    text = _ADDRESS.sub(lambda m: f"{m.group(1)}[ĐỊA CHỈ]", text)
    text = _NAME_INTRO.sub(_redact_intro, text)
    text = _SIGN_OFF.sub(_redact_sign_off, text)
    text = _I_AM.sub(_redact_i_am, text)
    return text[:limit]
