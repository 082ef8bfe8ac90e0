"""The date a question asks its figures for: "từ 1/1/2027 mức đóng…", "năm sau", "tháng 7/2026".

`asked_date("từ 1/1/2027 đóng tự nguyện thấp nhất bao nhiêu", today)` returns an `AskedDate` (the date and
the words that named it); a question that names no such date returns None and is answered for today.

The rule, so that a date inside a story is not taken for a date to render figures for:
- a date counts only when it is written as a period the figures apply to: a full date (d/m/yyyy), a month
  (tháng m/yyyy, tháng m năm sau), a year (năm 2027) or "năm sau / năm tới / sang năm";
- a future date counts, in a story too: "dự sinh tháng 2/2027", "nghỉ hưu từ 1/1/2027" ask what is due
  then, and that is the date the figures are in force (a birth year never counts);
- a past date counts only when it is not an event of the story (a story verb right before it: "bố tôi mất
  tháng 3/2026", "đóng từ năm 2016", "tính đến tháng 2/2024"; or right after it: "năm 2020 tôi nghỉ việc"),
  unless the verb belongs to a figure ("mức đóng từ 1/7/2025"), and the message asks for a figure ("bao
  nhiêu", "mức") and names the date as a period ("từ", "năm", "áp dụng", "vào", or opening a clause);
- a date in the current month or "năm nay" is today: None.
Matching runs on the accent-folded lower-case text, so unaccented messages work too.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from retrieval.normalize import fold_accents, nfc

MAX_CHARS = 2000
EARLIEST_YEAR = 1995  # the first Law on social insurance; an earlier "year" is something else
LATEST_YEARS_AHEAD = 10


@dataclass(frozen=True)
class AskedDate:
    on: dt.date
    phrase: str  # the words that named it, as written (folded)
    start: int  # where they are in the folded text
    end: int


_DAY = r"(?:ngay\s+)?(\d{1,2})\s*[/.-]\s*(\d{1,2})\s*[/.-]\s*(\d{4})"
_MONTH = r"thang\s+(\d{1,2})\s*(?:[/.-]|\s+nam\s+)\s*(\d{4})"
_MONTH_NEXT_YEAR = r"thang\s+(\d{1,2})\s+(?:nam sau|nam toi|sang nam)"
_YEAR = r"nam\s+(\d{4})"
_NEXT_YEAR = r"nam sau|nam toi|sang nam"
_DATE = re.compile(
    rf"\b(?:(?P<day>{_DAY})|(?P<mnext>{_MONTH_NEXT_YEAR})|(?P<month>{_MONTH})|(?P<year>{_YEAR})"
    rf"|(?P<next>{_NEXT_YEAR}))\b")
# "Năm sau" as "the year after that event" ("nghỉ việc năm 2020, năm sau thì…") is a story; handled by
# the story check below like any other date.

# Words that make a date an event of the asker's story (accent-folded), right before or right after it.
_STORY_VERB = (r"mat|chet|qua doi|tu tran|hy sinh|sinh|de|sinh con|nghi viec|nghi lam|thoi viec|mat viec"
               r"|dong|tham gia|bat dau|lam viec|di lam|vao lam|ky|ky hop dong|bi|nam vien|nhap vien|om"
               r"|nghi huu|ve huu|huong|rut|lanh|linh|nhan|cuoi|ket hon|ly hon|chuyen|mua|nop|du tuoi"
               r"|tinh den|den|het han|cham dut|tai nan|sinh nam|xuat canh|ra nuoc ngoai|bao luu|nang luong|len luong"
               r"|tang luong|giam dinh|suy giam")
_STORY_BEFORE = re.compile(rf"\b(?:{_STORY_VERB})\s+(?:(?:bhxh|bao hiem(?: xa hoi)?|tu|ke tu|vao|vao ngay"
                           rf"|hoi|tu ngay|duoc|roi|luc|nam|tai|tu nam|ngay)\s+){{0,3}}$")
_STORY_AFTER = re.compile(rf"^[\s,]*(?:(?:toi|em|minh|anh|chi|bo|me|ong|ba|vo|chong|con|co|chu|bac|ho"
                          rf"|thi|da|moi|vua|bi|duoc)\s+){{0,3}}(?:{_STORY_VERB})\b")
_ASKS_FIGURE = re.compile(r"\b(?:bao nhieu|bn|bnhieu|bao nhiu|may tien|la bao nhieu)\b")
# What the words right before a date say about it (accent-folded; each pattern ends at the date).
_BEFORE = {name: re.compile(pattern + "$") for name, pattern in {
    # a story verb that is part of a figure's name: "mức đóng từ…", "tiền đóng năm 2027", "mức hưởng…"
    "figure": r"\b(?:muc|tien|ty le|ti le|so tien|chuan|muc luong)\s+(?:\w+\s+){0,2}",
    # "một năm sau", "mấy năm sau", "3 năm sau": years later, not next year
    "quantity": r"\b(?:\d+|mot|hai|ba|bon|nam|may|vai|nhieu|bao nhieu|it|cac|nhung)\s+",
    # when a rule began ("quy định mới từ 01.07.2025"): the asker wants today's figures
    "rule_began": r"\b(?:quy dinh|luat|nghi dinh|hieu luc|thay doi)\b[^.?!,]{0,20}",
    "clause_start": r"(?:^|[.,;:?!\n])\s*(?:(?:con|the con|vay|vay con|the)\s+)?",
    "born": r"\bsinh\s+",  # "sinh năm 1990": a birth year is never a date to render for
    "period": r"\b(?:tu|ke tu|ap dung(?: tu)?|vao|trong|tai thoi diem|nam)\s+(?:ngay\s+)?",
}.items()}


def asked_date(text: object, today: dt.date) -> AskedDate | None:
    """The first date in `text` the figures should be rendered for, by the rule in the module docstring."""
    if not isinstance(text, str):
        return None
    accented = nfc(text[:MAX_CHARS]).lower()
    folded = fold_accents(accented)
    for m in _DATE.finditer(folded):
        on = _date_of(m, today)
        before = folded[max(0, m.start() - 40):m.start()]
        if on is None or (m.group("next") and (_BEFORE["quantity"].search(before) or _means_my_year(accented, m))):
            continue
        if (on.year, on.month) == (today.year, today.month) or (m.group("year") and on.year == today.year):
            return None  # "năm nay", this month: today's figures
        if on < today and (_is_story(folded, m) or not _ASKS_FIGURE.search(_sentence(folded, m))
                           or not _introduced_as_period(folded, m) or _BEFORE["rule_began"].search(before)):
            continue
        if on > today and m.group("year") and _BEFORE["born"].search(folded[max(0, m.start() - 12):m.start()]):
            continue
        return AskedDate(on, m.group(0), m.start(), m.end())
    return None


def date_spans(text: str) -> list[tuple[int, int]]:
    """Where every date-like phrase is in the folded text (to drop them when a follow-up changes the year)."""
    folded = fold_accents(nfc(text[:MAX_CHARS]).lower())
    return [m.span() for m in _DATE.finditer(folded)]


def _date_of(m: re.Match[str], today: dt.date) -> dt.date | None:
    try:
        if m.group("day"):
            day, month, year = (int(x) for x in re.findall(r"\d+", m.group("day")))
            on = dt.date(year, month, day)
        elif m.group("mnext"):
            on = dt.date(today.year + 1, int(re.findall(r"\d+", m.group("mnext"))[0]), 1)
        elif m.group("month"):
            month, year = (int(x) for x in re.findall(r"\d+", m.group("month")))
            on = dt.date(year, month, 1)
        elif m.group("year"):
            on = dt.date(int(re.findall(r"\d+", m.group("year"))[0]), 1, 1)
        else:
            on = dt.date(today.year + 1, 1, 1)
    except ValueError:  # 31/2/2027, tháng 13
        return None
    if not EARLIEST_YEAR <= on.year <= today.year + LATEST_YEARS_AHEAD:
        return None
    return on


def _means_my_year(accented: str, m: re.Match[str]) -> bool:
    """Unaccented "nam toi" is "năm tôi" ("một năm tôi được nghỉ…") as often as "năm tới": only with accents."""
    return m.group("next") == "nam toi" and "năm tới" not in accented[m.start():m.end() + 2]


def _sentence(folded: str, m: re.Match[str]) -> str:
    """The sentence holding the date."""
    start = max(folded.rfind(c, 0, m.start()) for c in ".?!\n") + 1
    ends = [i for i in (folded.find(c, m.end()) for c in ".?!\n") if i >= 0]
    return folded[start:min(ends) if ends else len(folded)]


def _is_story(folded: str, m: re.Match[str]) -> bool:
    before = folded[max(0, m.start() - 60):m.start()]
    cut = max(before.rfind("."), before.rfind("?"), before.rfind("!"), before.rfind("\n"), before.rfind(","))
    before = before[cut + 1:]
    story = _STORY_BEFORE.search(before)
    if story and not _BEFORE["figure"].search(before[:story.start()]):
        return True
    return bool(_STORY_AFTER.search(folded[m.end():m.end() + 40]))


def _introduced_as_period(folded: str, m: re.Match[str]) -> bool:
    """"từ 1/7/2024", "năm 2024", or the date opening the message or a clause ("tháng 7/2024, mức…")."""
    before = folded[max(0, m.start() - 25):m.start()]
    return bool(m.group("year") or _BEFORE["period"].search(before) or _BEFORE["clause_start"].search(before)
                or m.start() == 0)
