"""Read the facts of a citizen's letter: ages, years paid, salary, dates, who died, contract.

`extract_facts("Bố tôi đóng BHXH 10 năm, lương 8 triệu, mất tháng 3/2026 …")`
returns a frozen `Facts` with None for whatever the letter does not say. It is a
reader of stories, not of questions: the calculators (`knowledge.calc_intent`)
decide from these facts whether a computation can be done.

Design:
- Matching runs on the accent-folded lower-case text, so letters typed without
  diacritics work; the few words whose meaning the accents decide ("nữ",
  "năm" as five) are checked on the accented text.
- Only the first `MAX_CHARS` characters are read, every pattern is a plain
  regular expression without nested repetition, and every loop is over the
  matches: time is linear in the (cut) text, and no input raises.
- A figure is attributed by the words right before it (a window of a few dozen
  characters): "đóng BHXH 10 năm" is a contribution period, "nghỉ hưu được 3
  năm" is time on a pension, "mất tháng 3/2026" a date of death.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, fields
from decimal import Decimal, InvalidOperation

from retrieval.normalize import fold_accents, nfc

MAX_CHARS = 2000

RELATIONS = ("father", "mother", "husband", "wife", "child", "sibling", "grandparent", "father_in_law",
             "mother_in_law")
RELATION_VI = {"father": "bố", "mother": "mẹ", "husband": "chồng", "wife": "vợ", "child": "con",
               "sibling": "anh/chị/em", "grandparent": "ông/bà", "father_in_law": "bố chồng/bố vợ",
               "mother_in_law": "mẹ chồng/mẹ vợ"}


@dataclass(frozen=True)
class Facts:
    """What a letter states; None (or 0 children etc. never assumed) when it does not say."""

    age: int | None = None  # the writer's (or the insured person's) age in years
    birth_year: int | None = None
    sex: str | None = None  # "male" | "female": the writer's
    years_paid: int | None = None  # total contribution time: whole years …
    months_paid: int | None = None  # … and odd months (0–11)
    years_compulsory: int | None = None
    months_compulsory: int | None = None
    years_voluntary: int | None = None
    months_voluntary: int | None = None
    years_before_2014: int | None = None
    months_before_2014: int | None = None
    years_from_2014: int | None = None
    months_from_2014: int | None = None
    paid_before_2025_07: bool | None = None  # started contributing before 1/7/2025 (stated)
    salary: int | None = None  # monthly salary / income on which BHXH is paid, đồng
    pension_amount: int | None = None  # monthly pension being drawn, đồng
    months_on_pension: int | None = None  # how long the (deceased) pensioner drew the pension
    death_date: dt.date | None = None  # day 1 when only month/year is given
    death_year: int | None = None
    child_birth_date: dt.date | None = None  # birth (or expected birth) of a child
    leave_date: dt.date | None = None  # when the person left the job / stopped paying
    deceased_relation: str | None = None  # one of RELATIONS (relation to the writer)
    deceased: bool = False  # the letter tells of a death
    death_at_work: bool | None = None  # died of a work accident / occupational disease
    insured_status: str | None = None  # "contributing" | "reserved" | "retired"
    contract_type: str | None = None  # "indefinite" | "fixed_term" | "seasonal" | "probation" | "none"
    contract_months: int | None = None
    scheme: str | None = None  # "compulsory" | "voluntary" | "both"
    children: int | None = None  # number of children the writer has
    child_order: int | None = None  # 2 for "con thứ hai"
    babies: int | None = None  # babies in this birth (2 for twins)
    child_age: int | None = None
    lost_capacity_percent: int | None = None  # suy giảm khả năng lao động, %
    sick_days: int | None = None  # days off sick (or caring for a sick child)
    age_of_insured: int | None = None  # age of the deceased / person the letter is about, if different
    relative_age: int | None = None  # age of a named relative who did not die (a widow, a parent)
    caesarean: bool = False  # sinh mổ
    sick_child: bool = False  # the days off are to care for a sick child
    long_term_illness: bool = False  # bệnh cần chữa trị dài ngày

    def known(self) -> dict[str, object]:
        """The facts the letter stated (for logs and tests)."""
        return {f.name: getattr(self, f.name) for f in fields(self)
                if getattr(self, f.name) not in (None, False)}

    @property
    def total_months_paid(self) -> int | None:
        if self.years_paid is None and self.months_paid is None:
            return None
        return (self.years_paid or 0) * 12 + (self.months_paid or 0)


# ---------------------------------------------------------------- small readers

_NUMBER_WORDS_ACCENTED = {
    "một": 1, "hai": 2, "ba": 3, "bốn": 4, "tư": 4, "năm": 5, "sáu": 6, "bảy": 7, "bẩy": 7, "tám": 8,
    "chín": 9, "mười": 10, "mười một": 11, "mười hai": 12, "mười lăm": 15, "hai mươi": 20, "ba mươi": 30,
    "mười năm": 15,
}
# Unaccented "ba", "nam", "tu" are too ambiguous (father, male/year, from): left out.
_NUMBER_WORDS_FOLDED = {"mot": 1, "hai": 2, "bon": 4, "sau": 6, "bay": 7, "tam": 8, "chin": 9, "muoi": 10,
                        "muoi lam": 15, "hai muoi": 20, "muoi hai": 12}
_UNITS_ACCENTED = r"(năm|tháng|tuổi|con|ngày|đứa|bé|lần)"
_WORDS_ACCENTED = re.compile(
    r"(?<!\w)(" + "|".join(sorted(map(re.escape, _NUMBER_WORDS_ACCENTED), key=len, reverse=True)) + r")\s+"
    + _UNITS_ACCENTED + r"(?!\w)")
_WORDS_FOLDED = re.compile(
    r"\b(" + "|".join(sorted(map(re.escape, _NUMBER_WORDS_FOLDED), key=len, reverse=True)) + r")\s+"
    r"(nam|thang|tuoi|con|ngay|dua|be|lan)\b")


def _prepare(text: object) -> tuple[str, str]:
    """(accented lower-case, folded lower-case) views of the first MAX_CHARS characters, number words as digits."""
    if not isinstance(text, str):
        return "", ""
    accented = nfc(text[:MAX_CHARS]).lower()
    accented = _WORDS_ACCENTED.sub(lambda m: f"{_NUMBER_WORDS_ACCENTED[m.group(1)]} {m.group(2)}", accented)
    folded = fold_accents(accented)
    folded = _WORDS_FOLDED.sub(lambda m: f"{_NUMBER_WORDS_FOLDED[m.group(1)]} {m.group(2)}", folded)
    folded = re.sub(r"\bb\.?h\.?x\.?h\b", "bhxh", folded)
    return accented, folded


def _before(folded: str, pos: int, width: int = 50) -> str:
    """The text just before `pos`, cut at the previous sentence end."""
    window = folded[max(0, pos - width):pos]
    cut = max(window.rfind("."), window.rfind("?"), window.rfind("!"), window.rfind("\n"), window.rfind(";"))
    return window[cut + 1:] if cut >= 0 else window


def _after(folded: str, pos: int, width: int = 30) -> str:
    window = folded[pos:pos + width]
    cut = min((i for i in (window.find("."), window.find("?"), window.find("!"), window.find("\n")) if i >= 0),
              default=len(window))
    return window[:cut]


# ---------------------------------------------------------------- money

_NUM = r"(\d+(?:[.,]\d+)?)"
_MILLION = re.compile(_NUM + r"\s*(?:trieu|tr|cu)(?![a-z])"
                      r"(?:(\d{1,3})(?!\d)|\s*(ruoi)\b|\s+(\d{1,3})\s*(?:nghin|ngan|k)\b)?")
_THOUSAND = re.compile(_NUM + r"\s*(?:nghin|ngan|k)\b")
_GROUPED = re.compile(r"(?<![\d.,])\d{1,3}(?:([.,])\d{3})(?:\1\d{3})*(?![.,]?\d)")
_PLAIN = re.compile(r"(?<![\d.,/])[1-9]\d{5,8}(?![.,/]?\d)")


def amounts(folded: str) -> list[tuple[int, int, int]]:
    """(start, end, amount in đồng) of every amount of money written in folded text."""
    found: list[tuple[int, int, int]] = []

    def add(start: int, end: int, value: Decimal) -> None:
        if not any(start < e and s < end for s, e, _ in found) and 0 < value < 10**13:
            found.append((start, end, int(value)))

    try:
        for m in _MILLION.finditer(folded):
            value = Decimal(m.group(1).replace(",", ".")) * 1_000_000
            if m.group(2):
                value += Decimal(m.group(2)) * 10 ** (6 - len(m.group(2)))
            elif m.group(3):
                value += 500_000
            elif m.group(4):
                value += Decimal(m.group(4)) * 1000
            add(m.start(), m.end(), value)
        for m in _GROUPED.finditer(folded):
            value = Decimal(re.sub(r"[.,]", "", m.group(0)))
            if value >= 100_000:  # "1.500" is not a salary; "1.500.000" is
                add(m.start(), m.end(), value)
        for m in _THOUSAND.finditer(folded):
            add(m.start(), m.end(), Decimal(m.group(1).replace(",", ".")) * 1000)
        for m in _PLAIN.finditer(folded):
            add(m.start(), m.end(), Decimal(m.group(0)))
    except InvalidOperation:
        pass
    return sorted(found)


_SALARY_CUE = re.compile(
    r"(?:luong|thu nhap|muc dong|muc luong|dong tren|dong theo|dong muc|binh quan|can cu dong|thu nhap chon)"
    r"(?!\s*huu)")
_PENSION_CUE = re.compile(r"luong huu|tien huu|huong huu|tro cap huu")

# ---------------------------------------------------------------- durations

_DURATION = re.compile(
    r"(?<![\d.,/])(\d{1,2})\s*(?:nam|n)\b(?!\s*\d{4})(?:\s*(?:va\s*|,\s*)?(\d{1,2})\s*(?:thang|th)\b|\s*(ruoi)\b)?"
    r"|(?<![\d.,/])(\d{1,3})\s*thang\b(?!\s*(?:/|nam\s*\d|\d))")
_DONG = r"(?<!lao )(?<!hop )(?<!hoat )(?<!chu )\bdong\b(?! y\b)"  # đóng (pay), not lao động, hợp đồng
_PAID_CUE = re.compile(_DONG + r"|\b(?:tham gia|bhxh|bao hiem|bh|so bhxh|qua trinh)\b")
_PAID_AFTER = re.compile(r"^\s*(?:dong|tham gia|bhxh|bao hiem|lien tuc)\b")
_ON_PENSION_CUE = re.compile(r"(?:nghi huu|ve huu|huong luong huu|huong huu|lanh luong huu|an luong huu|"
                             r"linh luong huu)\s*(?:duoc|da|roi)?\s*(?:duoc)?\s*$")
_NOT_PAID_CUE = re.compile(r"(?:nghi viec|nghi lam|thoi viec|ket hon|o nha|that nghiep|nghi|chet|mat|cach day|"
                           r"truoc|sau|duoi|tren|hop dong|hd|hdld|thu viec|ky|benh|om|nam vien|dieu tri)"
                           r"\s*(?:duoc|da|khoang|gan|hon)?\s*$")
# "làm ở công ty được 12 năm, (có) tham gia BHXH đầy đủ": years of work that the letter says were all paid.
_WORKED_BEFORE = re.compile(r"\b(?:lam viec|lam|cong tac|di lam)\b[^.?!;]{0,40}$")
_PAID_THROUGHOUT_AFTER = re.compile(
    r"^[^.?!;]{0,30}?\b(?:co\s+)?(?:tham gia|dong)\s+(?:day du\s+)?(?:bhxh|bao hiem|bh)\b"
    r"|^[^.?!;]{0,40}?\b(?:tham gia|dong)\b[^.?!;]{0,25}\bday du\b")
_TOTAL_CUE = re.compile(r"\b(?:tong|tat ca|ca thay|tong cong|tong thoi gian)\b")
_VOLUNTARY_CUE = re.compile(r"\btu nguyen\b|\bbhxh ?tn\b")
_COMPULSORY_CUE = re.compile(r"\bbat buoc\b|\bcong ty\b|\bdoanh nghiep\b|\bco quan\b|\bxi nghiep\b|\bnha may\b|"
                             r"\bbhxh ?bb\b")
_BEFORE_2014 = re.compile(r"\btruoc\s*(?:nam\s*)?2014\b")
_FROM_2014 = re.compile(r"\b(?:tu|sau)\s*(?:nam\s*)?2014\b")
_RANGE = re.compile(
    r"\btu\s*(?:thang\s*)?(?:(\d{1,2})\s*[/.-]\s*)?(?:nam\s*)?((?:19|20)\d{2})\s*(?:den|toi|-|–)\s*"
    r"(?:(?:thang\s*)?(?:(\d{1,2})\s*[/.-]\s*)?(?:nam\s*)?((?:19|20)\d{2})|(nay|bay gio|hien nay|hien tai))")


@dataclass
class _Paid:
    months: int
    label: str  # "total" | "plain" | "compulsory" | "voluntary" | "before_2014" | "from_2014"
    part: bool = False  # "…, trong đó 5 năm tự nguyện": a part of a total stated before


_BOUND_BEFORE = re.compile(r"\b(?:chua (?:du|den|toi)|duoi|khong du|it hon)\s*$")


def _durations(folded: str) -> tuple[list[_Paid], int | None]:
    """Contribution periods the letter states, and the months a pensioner drew a pension."""
    paid: list[_Paid] = []
    on_pension: int | None = None
    for m in _DURATION.finditer(folded):
        if m.group(4) is not None:
            months = int(m.group(4))
        else:
            months = int(m.group(1)) * 12 + (int(m.group(2)) if m.group(2) else 6 if m.group(3) else 0)
            if m.group(2) and int(m.group(2)) > 11:
                continue
        if months <= 0 or months > 70 * 12:
            continue
        before, after = _before(folded, m.start(), 60), _after(folded, m.end(), 30)
        near = before[-25:]
        if _ON_PENSION_CUE.search(near):
            on_pension = on_pension if on_pension is not None else months
            continue
        if re.search(r"\b(?:tuoi|con|be|chau)\s*$", near) or re.match(r"\s*tuoi\b", after):
            continue
        if _BOUND_BEFORE.search(near):  # "chưa đủ 15 năm": a threshold the letter names, not what was paid
            continue
        sentence = _before(folded, m.start(), 160)
        paid_before = _PAID_CUE.search(sentence)
        paid_throughout = _PAID_THROUGHOUT_AFTER.match(_after(folded, m.end(), 80))
        worked_and_paid = bool(_WORKED_BEFORE.search(before) and paid_throughout
                               and not re.search(r"\b(?:khong|chua|ko|k|chang)\b", paid_throughout.group(0)))
        if (_NOT_PAID_CUE.search(near) and not re.search(_DONG + r"[^,]{0,12}$|tham gia[^,]{0,12}$", near)) or not (
                paid_before or _PAID_AFTER.match(after) or worked_and_paid):
            continue
        label = "total" if _TOTAL_CUE.search(before[-30:]) else _label(before[-45:], after.split(",")[0])
        paid.append(_Paid(months, label, bool(re.search(r"\btrong do\b", before[-40:]))))
    return paid, on_pension


_LABELS = (("before_2014", _BEFORE_2014), ("from_2014", _FROM_2014), ("voluntary", _VOLUNTARY_CUE),
           ("compulsory", _COMPULSORY_CUE))


def _label(before: str, after: str) -> str:
    """The label whose cue is nearest before the duration, else the first one right after it."""
    best: tuple[int, str] | None = None
    for label, pattern in _LABELS:
        for m in pattern.finditer(before):
            if best is None or m.end() > best[0]:
                best = (m.end(), label)
    if best is not None and (best[1] != "compulsory" or re.search(r"\btrong do\b|\bva\b|,", before)):
        return best[1]
    for label, pattern in _LABELS[:3]:
        if pattern.search(after):
            return label
    return "plain"


def _range_paid(folded: str, today: dt.date) -> list[tuple[_Paid, int]]:
    """"đóng từ 3/2010 đến 6/2020" (or "đến nay") as a period, with its months before 2014."""
    out: list[tuple[_Paid, int]] = []
    for m in _RANGE.finditer(folded):
        before = _before(folded, m.start(), 40)
        if not _PAID_CUE.search(before):
            continue
        y1, m1 = int(m.group(2)), int(m.group(1) or 1)
        if m.group(5):
            y2, m2, inclusive = today.year, today.month, 0
        else:
            y2 = int(m.group(4))
            m2 = int(m.group(3)) if m.group(3) else 1
            inclusive = 1 if m.group(3) else 0  # "từ 1/2010 đến 12/2020" counts both ends
        if not (1 <= m1 <= 12 and 1 <= m2 <= 12):
            continue
        total = (y2 - y1) * 12 + m2 - m1 + inclusive
        if re.match(r"[^.,;]{0,15}?\d{1,2}\s*(?:nam|thang)\b", folded[m.end():m.end() + 25]):
            continue  # "từ 2014 đến nay được 9 năm": the stated duration is used
        if 0 < total <= 70 * 12:
            label = "voluntary" if _VOLUNTARY_CUE.search(before + _after(folded, m.end(), 20)) else "plain"
            out.append((_Paid(total, label), max(0, min(total, (2014 - y1) * 12 - (m1 - 1)))))
    return out


# ---------------------------------------------------------------- dates

_FULL_DATE = re.compile(r"(?<!\d)(\d{1,2})\s*[/.-]\s*(\d{1,2})\s*[/.-]\s*((?:19|20)\d{2})(?!\d)"
                        r"|\bngay\s*(\d{1,2})\s*thang\s*(\d{1,2})\s*(?:nam\s*)?((?:19|20)\d{2})\b")
_MONTH_YEAR = re.compile(r"\bthang\s*(\d{1,2})\s*(?:[/.-]\s*|nam\s*)((?:19|20)\d{2})\b"
                         r"|(?<![\d/.])(\d{1,2})\s*/\s*((?:19|20)\d{2})\b")
_YEAR = re.compile(r"\b(?:nam|hoi|vao|cuoi|dau|giua)\s*((?:19|20)\d{2})\b")
_DEATH = re.compile(r"\b(?:chet|qua doi|tu vong|tu tran|ta the|hy sinh|bi mat|da mat|vua mat|moi mat|mat)\b")
_NOT_DEATH_AFTER = re.compile(
    r"^\s*(?:viec|so|suc|bao|tien|phi|gi|quyen|het|thoi gian|nhieu|lien lac|kha nang|trang|ngu|ngay cong|"
    r"luong|tinh|di|ca|khoan|chi phi|cong|may|thoi|giay|ho so|dien|mot|khong|cong viec|an|mang|nuoc)\b")
_DEATH_AFTER_CUE = re.compile(r"^\s*(?:nam|thang|ngay|vao|do|vi|dot ngot|roi|a|cach day|tu|hoi|luc|khi|"
                              r"duoc|nay|sau|trong|tai|ma|[.,!?;]|$)")
_DEATH_BEFORE_CUE = re.compile(r"(?:da|vua|moi|bi|thi|lai|khi|nay|khong may|dot ngot|khi|ma)\s*$")
_BIRTH_EVENT = re.compile(r"\b(?:sinh con|sinh be|sinh em be|du sinh|du kien sinh|sinh chau|sinh ngay|"
                          r"sinh vao|sinh mo|sinh thuong|sinh doi|de|sinh)\b")
_LEAVE_EVENT = re.compile(r"\b(?:nghi viec|thoi viec|nghi lam|cham dut hop dong|cham dut hd|cham dut hdld|"
                          r"mat viec|bi cho nghi|dung dong|ngung dong|nghi tu|nghi)\b")
_WRITER_BIRTH = re.compile(r"\b(?:sinh nam|sn|sinh)\s*((?:19|20)\d{2})\b|\b(?:toi|em|minh|chau)\s+sinh\s+"
                           r"(?:ngay\s*)?(?:\d{1,2}\s*[/.-]\s*)?(?:thang\s*)?(?:\d{1,2}\s*[/.-]\s*|nam\s*)?"
                           r"((?:19|20)\d{2})\b")


def _safe_date(year: int, month: int, day: int) -> dt.date | None:
    try:
        return dt.date(year, month, day)
    except ValueError:
        return None


_DEATH_NEAR = re.compile(r"\b(?:chet|qua doi|tu vong|tu tran|ta the|hy sinh|mat)\b")


def _means_death(folded: str, m: re.Match[str]) -> bool:
    if m.group(0) != "mat":
        return True
    after, before = folded[m.end():m.end() + 20], folded[max(0, m.start() - 15):m.start()]
    return not _NOT_DEATH_AFTER.match(after) and bool(
        _DEATH_AFTER_CUE.match(after) or _DEATH_BEFORE_CUE.search(before))


def _death_words(folded: str) -> list[int]:
    """Positions (end) of words telling of a death ("mất" only where it means died)."""
    return [m.end() for m in _DEATH.finditer(folded) if _means_death(folded, m)]


def _events(folded: str, today: dt.date) -> dict[str, object]:
    """Dates attached to the event named just before them."""
    found: dict[str, object] = {}
    spans: list[tuple[int, int, dt.date | None, int]] = []  # start, end, date (or None), year
    for m in _FULL_DATE.finditer(folded):
        d, mo, y = (m.group(1), m.group(2), m.group(3)) if m.group(1) else (m.group(4), m.group(5), m.group(6))
        spans.append((m.start(), m.end(), _safe_date(int(y), int(mo), int(d)), int(y)))
    for m in _MONTH_YEAR.finditer(folded):
        if any(s <= m.start() < e for s, e, _, _ in spans):
            continue
        mo, y = (m.group(1), m.group(2)) if m.group(1) else (m.group(3), m.group(4))
        spans.append((m.start(), m.end(), _safe_date(int(y), int(mo), 1), int(y)))
    for m in _YEAR.finditer(folded):
        if any(s <= m.start() < e or s <= m.start(1) < e for s, e, _, _ in spans):
            continue
        spans.append((m.start(), m.end(), None, int(m.group(1))))
    spans.sort(key=lambda s: s[0])
    for start, end, date, year in spans:
        if year > today.year + 2:
            continue
        back, ahead = _before(folded, start, 45), _after(folded, end, 30)
        best: tuple[int, str] | None = None  # (distance, event)
        for kind, pattern in (("death", _DEATH_NEAR), ("birth", _BIRTH_EVENT), ("leave", _LEAVE_EVENT)):
            words = [(start - m.end(), m) for m in pattern.finditer(folded, start - len(back), start)]
            # a word after the date counts too, a little farther ("tháng 5/2026 bố em mất")
            words += [(m.start() - end + 8, m) for m in pattern.finditer(folded, end, end + len(ahead))]
            distances = [d for d, m in words if kind != "death" or _means_death(folded, m)]
            if distances and (best is None or min(distances) < best[0]):
                best = (min(distances), kind)
        if best is None:
            continue
        window = back
        kind = best[1]
        if kind == "death" and "death_year" not in found:
            found["death_year"] = year
            if date is not None:
                found["death_date"] = date
        elif kind == "birth" and "child_birth_date" not in found and date is not None:
            if re.search(r"\b(?:toi|em|minh|chau)\s+sinh\s*(?:ngay|nam|vao)?\s*$", window) or \
                    year <= today.year - 14:
                continue  # the writer's own birth
            found["child_birth_date"] = date
        elif kind == "leave" and "leave_date" not in found and date is not None:
            found["leave_date"] = date
    return found


# ---------------------------------------------------------------- people

_POSSESSOR = r"(?:\s+(?:ruot|de|cua|ben|nha)?\s*(?:toi|em|minh|chau|con|chung toi|chung em|nha toi|ban|anh|chi|to))"
_RELATION_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    ("father_in_law", re.compile(r"\b(?:bo|ba|cha)\s+(?:chong|vo)\b")),
    ("mother_in_law", re.compile(r"\b(?:me|ma)\s+(?:chong|vo)\b")),
    ("father", re.compile(r"\b(?:bo|ba|cha|thay|tia)(?:\s+de)?" + _POSSESSOR + r"\b|\bbo\s+(?:em|toi)\b")),
    ("mother", re.compile(r"\b(?:me|ma|u|bu)(?:\s+de)?" + _POSSESSOR + r"\b")),
    ("husband", re.compile(r"\b(?:chong|ong xa)" + _POSSESSOR + r"\b|\bchong\s+(?:minh|em|toi|chi|co)\b")),
    ("wife", re.compile(r"\b(?:vo|ba xa)" + _POSSESSOR + r"\b")),
    ("child", re.compile(r"\bcon\s+(?:trai|gai)\b|\b(?:dua|chau)\s+con\b|\bcon\s+(?:toi|em|minh)\b")),
    ("sibling", re.compile(r"\b(?:anh|chi|em)\s+(?:trai|gai|ruot|ho)\b|\b(?:anh|chi)\s+(?:toi|em|minh)\b")),
    ("grandparent", re.compile(r"\b(?:ong|ba)\s+(?:noi|ngoai)\b")),
]
_FEMALE = re.compile(r"\b(?:phu nu|dan ba|gioi tinh nu|lao dong nu|nu gioi|la nu|mang thai|mang bau|co bau|"
                     r"co thai|dang bau|bau|sinh con|nghi sinh|vo\s+(?:cu|da mat)|chong\s+(?:toi|em|minh))\b")
_MALE = re.compile(r"\b(?:dan ong|nam gioi|gioi tinh nam|lao dong nam|vo\s+(?:toi|em|minh)\s+(?:sinh|de|mang|"
                   r"co bau|bau))\b")
_MALE_ACCENTED = re.compile(r"(?:^|\s)(?:là|giới tính|lao động)\s+nam(?!\w)|(?:^|\s)nam\s+\d{2}\s*tuổi")
_FEMALE_ACCENTED = re.compile(r"(?:^|[\s,(])nữ(?!\w)")


def _relation(folded: str, deaths: list[int]) -> str | None:
    """The relation to the writer of the person who died (nearest relation word before a death word)."""
    best: tuple[int, str] | None = None
    for kind, pattern in _RELATION_PATTERNS:
        for m in pattern.finditer(folded):
            for death in deaths:
                gap = death - m.end()
                if 0 <= gap <= 120 and (best is None or gap < best[0]):
                    best = (gap, kind)
    if best is None:  # "tuất" without a death word: the first relation named
        if re.search(r"\btuat\b|\bmai tang\b|\btu tuat\b", folded):
            first: tuple[int, str] | None = None
            for kind, pattern in _RELATION_PATTERNS:
                if (m := pattern.search(folded)) and (first is None or m.start() < first[0]):
                    first = (m.start(), kind)
            return first[1] if first else None
        return None
    return best[1]


def _relation_named(text: str) -> str | None:
    """The last relation word in a short text ("mẹ em năm nay" → "mother")."""
    last: tuple[int, str] | None = None
    for kind, pattern in _RELATION_PATTERNS:
        for m in pattern.finditer(text):
            if last is None or m.start() > last[0]:
                last = (m.start(), kind)
    return last[1] if last else None


def _sex(accented: str, folded: str) -> str | None:
    if _MALE.search(folded) or _MALE_ACCENTED.search(accented):
        return "male"
    if _FEMALE_ACCENTED.search(accented) or _FEMALE.search(folded):
        return "female"
    return None


# ---------------------------------------------------------------- the rest

_AGE = re.compile(r"(?<![\d.,])(\d{1,3})\s*tuoi\b")
_STATUS = [
    ("retired", re.compile(r"\b(?:dang|da)?\s*(?:huong|lanh|linh|an|nhan)\s+(?:luong huu|huu)\b|\bnghi huu\b|"
                           r"\bve huu\b|\bhuu tri\b|\bdang co luong huu\b")),
    ("reserved", re.compile(r"\bbao luu\b|\b(?:da|thi)\s+nghi viec\b|\bnghi viec\s+(?:roi|tu|duoc|nam|da)\b|"
                            r"\b(?:dung|ngung|khong|chua)\s+dong\s+(?:nua|tiep)?\b|\bdung dong\b|\bngung dong\b|"
                            r"\bkhong con dong\b|\bchua rut\b|\bchua huong (?:bhxh )?(?:mot|1) lan\b")),
    ("contributing", re.compile(r"\bdang\s+(?:dong|tham gia|lam viec|lam|cong tac|di lam)\b|\bcong ty dang dong\b|"
                                r"\bvan dang dong\b|\btrong (?:khi|luc) (?:dang )?(?:lam|di lam|cong tac)\b")),
]
_CONTRACT = re.compile(r"\b(?:hop dong|hd|hdld)(?:\s+lao dong)?")
_CONTRACT_INDEFINITE = re.compile(r"\bkhong xac dinh(?: thoi)? han\b|\bkhong thoi han\b|\bkhong ky han\b|"
                                  r"\bvo thoi han\b|\bdai han\b")
_CONTRACT_SEASONAL = re.compile(r"\bthoi vu\b|\btheo mua vu\b|\bkhoan viec\b|\bcong nhat\b")
_CONTRACT_PROBATION = re.compile(r"\bthu viec\b")
_CONTRACT_FIXED = re.compile(r"\bxac dinh thoi han\b|\bco thoi han\b|\bngan han\b|\bco ky han\b")
_CONTRACT_LENGTH = re.compile(r"(?<![\d.,])(\d{1,2})\s*(nam|thang)\b")
_NO_CONTRACT = re.compile(r"\bkhong (?:co|ky) hop dong\b|\bkhong ky hd\b|\blam tu do\b|\blao dong tu do\b")
_CHILD_ORDER = re.compile(r"\b(?:con|be|chau|lan|bau)\s+(?:thu\s+)?(?:(2|hai)|(3|ba)|(1|nhat|dau))\b"
                          r"|\bcon\s+dau(?:\s+long)?\b|\bsinh\s+(?:lan|bau)\s+(2|hai|3|ba)\b")
_BABIES = re.compile(r"\bsinh\s+(?:doi|ba|tu)\b|\bthai\s+(?:doi|ba)\b|\bsong thai\b|\bsinh\s+(2|3)\s+be\b")
_CHILDREN = re.compile(r"(?<![\d.,])(\d{1,2})\s*(?:dua\s+)?(?:con|chau)\b(?!\s+(?:trai|gai)?\s*(?:thu|dau))")
_CAPACITY = re.compile(r"(?:suy giam|mat suc|ty le|ti le|thuong tat|giam dinh|kha nang lao dong)[^%\d]{0,40}"
                       r"(\d{1,3})\s*%|(\d{1,3})\s*%\s*(?:suy giam|kha nang lao dong|mat suc|thuong tat)")
# "dưới 5%", "chưa đến 5%": a bound, not the assessed degree (below 5% the fund pays nothing).
_BELOW_BOUND = re.compile(r"(?:\bduoi|\bchua (?:den|toi|du|toi muc)|\bkhong (?:du|den|toi)|\b(?:nho|thap|it) hon)\s*$")
_SICK_DAYS = re.compile(r"(?:nghi om|om|nam vien|dieu tri|nghi benh|cham con om|con om|nghi)[^.\d]{0,25}"
                        r"(\d{1,3})\s*ngay\b|(\d{1,3})\s*ngay\s*(?:nghi om|om|nam vien|dieu tri|nghi)")
_WORK_DEATH = re.compile(r"\btai nan lao dong\b|\btnld\b|\bbenh nghe nghiep\b|\btai nan tren duong di lam\b|"
                         r"\btrong khi (?:dang )?lam viec\b")
_NOT_WORK_DEATH = re.compile(r"\b(?:khong phai|khong do|khong bi|chu khong phai|khong duoc tinh la|ngoai)\s+"
                             r"(?:la\s+|do\s+)?$")


def extract_facts(text: object, today: dt.date | None = None) -> Facts:
    """The facts a citizen's message states; never raises (non-text gives an empty Facts)."""
    try:
        return _extract(text, today or dt.date.today())
    except (ValueError, OverflowError, InvalidOperation, IndexError, KeyError):
        return Facts()  # a pattern we did not foresee: better nothing than a crash


def _extract(text: object, today: dt.date) -> Facts:
    accented, folded = _prepare(text)
    if not folded.strip():
        return Facts()
    out: dict[str, object] = {}
    deaths = _death_words(folded)
    out["deceased"] = bool(deaths) or bool(re.search(r"\btuat\b|\btu tuat\b", folded))
    out["sex"] = _sex(accented, folded)
    if out["deceased"]:
        out["deceased_relation"] = _relation(folded, deaths)
        # "(không phải tai nạn lao động)" rules the work accident out rather than in
        if any(not _NOT_WORK_DEATH.search(folded[max(0, m.start() - 25):m.start()])
               for m in _WORK_DEATH.finditer(folded)):
            out["death_at_work"] = True
    out.update(_events(folded, today))

    # ages: the first age not of a child; an age near the death word is the insured person's
    for m in _AGE.finditer(folded):
        value = int(m.group(1))
        if not 0 < value < 120:
            continue
        near = _before(folded, m.start(), 25)
        if re.search(r"\b(?:con|be|chau|dua nho|em be)\b", near):
            out.setdefault("child_age", value)
        elif (kind := _relation_named(near)) is not None:
            if out.get("deceased") and kind == out.get("deceased_relation"):
                out.setdefault("age_of_insured", value)
            else:
                out.setdefault("relative_age", value)
        elif out.get("deceased") and re.search(r"\b(?:mat|chet|qua doi|luc|khi|hoi)\b", near):
            out.setdefault("age_of_insured", value)
        else:
            out.setdefault("age", value)
    if m := _WRITER_BIRTH.search(folded):
        year = int(m.group(1) or m.group(2))
        if 1920 <= year <= today.year - 14 and not re.search(r"\bcon\b", _before(folded, m.start(), 12)):
            out["birth_year"] = year

    # contributions
    _contributions(folded, out, today)
    if _paid_before_new_law(folded, out, today):
        out["paid_before_2025_07"] = True

    has_voluntary, has_compulsory = bool(_VOLUNTARY_CUE.search(folded)), bool(_COMPULSORY_CUE.search(folded))
    if has_voluntary and (has_compulsory or "years_compulsory" in out):
        out["scheme"] = "both"
    elif has_voluntary:
        out["scheme"] = "voluntary"
    elif has_compulsory or _CONTRACT.search(folded):
        out["scheme"] = "compulsory"

    # money: salary vs pension being drawn
    for start, _end, value in amounts(folded):
        before = _before(folded, start, 40)
        if _PENSION_CUE.search(before[-25:]):
            out.setdefault("pension_amount", value)
        elif _SALARY_CUE.search(before) and value >= 100_000:
            out.setdefault("salary", value)

    for status, pattern in _STATUS:
        if pattern.search(folded):
            out["insured_status"] = status
            break

    _contract(folded, out)
    _children(folded, out)
    if m := _CAPACITY.search(folded):
        value = int(m.group(1) or m.group(2))
        number_at = m.start(1) if m.group(1) else m.start(2)
        if 0 < value <= 100 and not _BELOW_BOUND.search(folded[max(0, number_at - 20):number_at]):
            out["lost_capacity_percent"] = value
    if m := _SICK_DAYS.search(folded):
        value = int(m.group(1) or m.group(2))
        if 0 < value <= 366:
            out["sick_days"] = value
    out["caesarean"] = bool(re.search(r"\bsinh mo\b|\bmo de\b|\bde mo\b|\bphau thuat\b|\bmo lay thai\b", folded))
    out["sick_child"] = bool(re.search(r"\b(?:con|be|chau)\s+(?:bi\s+)?(?:om|sot|benh|nhap vien|nam vien)\b|"
                                       r"\bcham\s+(?:con|be)\b", folded))
    out["long_term_illness"] = bool(re.search(r"\bdai ngay\b|\bung thu\b|\blao\b(?! dong)|\bsuy than\b|\bchay than\b|"
                                              r"\bbenh man tinh\b|\btai bien\b", folded))
    return Facts(**{k: v for k, v in out.items() if v is not None})  # type: ignore[arg-type]


def _contributions(folded: str, out: dict[str, object], today: dt.date) -> None:
    """Total, compulsory/voluntary and before/from-2014 periods from the stated durations and ranges."""
    paid, on_pension = _durations(folded)
    if on_pension is not None:
        out["months_on_pension"] = on_pension
    before_2014 = 0
    covered = {p.months for p in paid}
    for period, months_before in _range_paid(folded, today):
        if period.months not in covered:  # "từ 2008 đến 2020 được 12 năm": counted once
            paid.append(period)
            before_2014 += months_before
    sums: dict[str, int] = {}
    for p in paid:
        sums[p.label] = sums.get(p.label, 0) + p.months
    plain = [p for p in paid if p.label == "plain"]
    voluntary, compulsory = sums.get("voluntary"), sums.get("compulsory")
    parts_of_total = any(p.part for p in paid)
    if voluntary is not None and compulsory is None and plain and not parts_of_total:
        compulsory = sum(p.months for p in plain)  # the unlabelled period beside a voluntary one
    if "before_2014" in sums or before_2014:
        before = sums.get("before_2014", 0) + before_2014
        after = sums.get("from_2014", 0) + (sum(p.months for p in plain) - before_2014 if before_2014 else 0)
        out["years_before_2014"], out["months_before_2014"] = divmod(before, 12)
        if after > 0:
            out["years_from_2014"], out["months_from_2014"] = divmod(after, 12)
    elif "from_2014" in sums:
        out["years_from_2014"], out["months_from_2014"] = divmod(sums["from_2014"], 12)
    if compulsory is not None:
        out["years_compulsory"], out["months_compulsory"] = divmod(compulsory, 12)
    if voluntary is not None:
        out["years_voluntary"], out["months_voluntary"] = divmod(voluntary, 12)
    if "total" in sums:
        total: int | None = sums["total"]
    elif parts_of_total and plain:
        total = plain[0].months
    elif voluntary is not None or compulsory is not None:
        total = (voluntary or 0) + (compulsory or 0)
    elif plain:
        total = plain[0].months
    elif "before_2014" in sums or "from_2014" in sums:
        total = sums.get("before_2014", 0) + sums.get("from_2014", 0)
    else:
        total = None
    if total is not None:
        out["years_paid"], out["months_paid"] = divmod(total, 12)
        before_total = (out.get("years_before_2014") or 0) * 12 + (out.get("months_before_2014") or 0)  # type: ignore[operator]
        if before_total and "from_2014" not in sums and total > before_total:
            out["years_from_2014"], out["months_from_2014"] = divmod(total - before_total, 12)
    if parts_of_total and voluntary is not None and compulsory is None and total is not None and total > voluntary:
        out["years_compulsory"], out["months_compulsory"] = divmod(total - voluntary, 12)


_START_YEAR = re.compile(r"\b(?:dong|tham gia|di lam|lam viec|vao lam)\b[^.?!]{0,25}?\btu\s*(?:thang\s*\d{1,2}\s*"
                         r"[/.-]?\s*)?(?:nam\s*)?((?:19|20)\d{2})\b")
_BEFORE_NEW_LAW = re.compile(r"\btruoc\s*(?:ngay\s*)?(?:1|01)\s*[/.-]\s*(?:7|07)\s*[/.-]\s*2025\b")


def _paid_before_new_law(folded: str, out: dict[str, object], today: dt.date) -> bool:
    """The letter shows contributions before 1/7/2025: said so, a start year, or paid years ending before it."""
    if _BEFORE_NEW_LAW.search(folded) or out.get("years_before_2014"):
        return True
    if (m := _START_YEAR.search(folded)) and int(m.group(1)) < 2025:
        return True
    total = (out.get("years_paid") or 0) * 12 + (out.get("months_paid") or 0)  # type: ignore[operator]
    if total:
        for key in ("leave_date", "death_date"):
            date = out.get(key)
            if isinstance(date, dt.date) and date < dt.date(2025, 7, 1):
                return True
        # more months paid than have passed since 1/7/2025
        since = (today.year - 2025) * 12 + today.month - 7
        return total > since
    return False


def _contract(folded: str, out: dict[str, object]) -> None:
    if _NO_CONTRACT.search(folded):
        out["contract_type"] = "none"
        return
    m = _CONTRACT.search(folded)
    if not m:
        if _CONTRACT_SEASONAL.search(folded):
            out["contract_type"] = "seasonal"
        return
    window = folded[m.end():m.end() + 60]
    if _CONTRACT_INDEFINITE.search(window):
        out["contract_type"] = "indefinite"
    elif _CONTRACT_PROBATION.search(window) or _CONTRACT_PROBATION.search(folded[max(0, m.start() - 10):m.end()]):
        out["contract_type"] = "probation"
    elif _CONTRACT_SEASONAL.search(window):
        out["contract_type"] = "seasonal"
    elif _CONTRACT_FIXED.search(window):
        out["contract_type"] = "fixed_term"
    length = _CONTRACT_LENGTH.search(window[:40])
    if length and not re.match(r"\s*\d{4}", window[length.end():length.end() + 5]):
        n = int(length.group(1))
        out["contract_months"] = n * 12 if length.group(2) == "nam" else n
        out.setdefault("contract_type", "fixed_term")


def _children(folded: str, out: dict[str, object]) -> None:
    if m := _CHILD_ORDER.search(folded):
        if m.group(1) or m.group(4) in ("2", "hai"):
            out["child_order"] = 2
        elif m.group(2) or m.group(4) in ("3", "ba"):
            out["child_order"] = 3
        else:
            out["child_order"] = 1
    if m := _BABIES.search(folded):
        word = m.group(0)
        out["babies"] = int(m.group(1)) if m.group(1) else 3 if re.search(r"\bba\b", word) else \
            4 if re.search(r"\btu\b", word) else 2
    if m := _CHILDREN.search(folded):
        value = int(m.group(1))
        if 0 < value <= 15:
            out["children"] = value
