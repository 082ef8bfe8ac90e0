"""The month a death happened, read from a citizen's message: the date the funeral allowance's figures are for.

The funeral allowance (trợ cấp mai táng) is a multiple of the reference level of the month the person died
(Luật 41/2024/QH15, Điều 85, khoản 2): a letter saying "bố tôi mất tháng 3/2026" asks for the allowance at
March 2026's reference level, not today's. `knowledge.asked_date` deliberately never reads such a story date
(it is an event, not a period the figures apply to); this module reads exactly that one event, and only the
entries in `FOLLOWS_MONTH_OF_DEATH` use it (an entry that also shows a monthly survivor allowance is paid at
today's level, so it is not one of them).

What counts (on the accent-folded lower-case text, so unaccented messages work too):
- a full date or a month with its year (d/m/yyyy, tháng m/yyyy, tháng m năm yyyy) right after a death verb
  ("mất", "qua đời", "từ trần", "chết", "hy sinh", "tử vong", "tạ thế"), a few linking words allowed
  ("mất vào ngày 5/3/2026", "qua đời đột ngột hồi tháng 3/2026"), or right before one with its subject
  ("tháng 3/2026 bố tôi mất", "ngày 5/3/2026, mẹ em đã qua đời");
- not "mất việc", "mất sổ" and the like: the verb must be followed by the date or end the phrase;
- a year alone does not count (the reference level changes mid-year, on 1 July);
- a date in the future is not a death; a date in the current month is today's figures anyway (None).
"""

from __future__ import annotations

import datetime as dt
import re

from knowledge.asked_date import EARLIEST_YEAR, MAX_CHARS, AskedDate
from retrieval.normalize import fold_accents, nfc

# The entries whose every regulated figure follows the month of death: the funeral allowance itself.
FOLLOWS_MONTH_OF_DEATH = frozenset({"tt-tro-cap-mai-tang"})

_DIED = r"(?:mat|qua doi|tu tran|chet|hy sinh|tu vong|ta the)"
_DATE = (r"(?:ngay\s+)?(?P<day>\d{1,2})\s*[/.-]\s*(?P<month>\d{1,2})\s*[/.-]\s*(?P<year>\d{4})"
         r"|thang\s+(?P<m_month>\d{1,2})\s*(?:[/.-]|\s+nam\s+)\s*(?P<m_year>\d{4})")
# Between the verb and the date: "vào", "hồi", "lúc", "ngày", "đột ngột", "vì bệnh", "do tai nạn" …
_LINK = r"(?:(?:vao|hoi|luc|ngay|dot|ngot|do|vi|benh|om|tai|nan|giao|thong|lao|dong)\s+){0,4}"
# Between the date and the verb: the person who died ("bố tôi", "mẹ em đã", "thì chồng tôi") …
_WHO = (r"[\s,]*(?:(?:thi|toi|em|minh|bo|me|ong|ba|vo|chong|con|anh|chi|cha|cu|nguoi|nha|cua|da|bi|vua|trai"
        r"|gai|noi|ngoai|ruot)\s+){0,4}")
_NOT_DEATH = r"(?!\s+(?:viec|so|giay|the|tien|kha nang|lien lac|suc|dien|nuoc|ngu|cap|trom))"
_AFTER_VERB = re.compile(rf"\b{_DIED}\s+{_LINK}(?:{_DATE})\b")
_BEFORE_VERB = re.compile(rf"\b(?:{_DATE}){_WHO}{_DIED}\b{_NOT_DEATH}")


def month_of_death(text: object, today: dt.date) -> AskedDate | None:
    """The first month of death `text` names (its first day), None when it names none, or only this month."""
    if not isinstance(text, str):
        return None
    folded = fold_accents(nfc(text[:MAX_CHARS]).lower())
    found = sorted((m for pattern in (_AFTER_VERB, _BEFORE_VERB) for m in pattern.finditer(folded)),
                   key=lambda m: m.start())
    for m in found:
        on = _month_of(m)
        if on is None or on > today or on.year < EARLIEST_YEAR:
            continue
        if (on.year, on.month) == (today.year, today.month):
            return None
        return AskedDate(on, m.group(0), m.start(), m.end())
    return None


def _month_of(m: re.Match[str]) -> dt.date | None:
    try:
        if m.group("day"):
            dt.date(int(m.group("year")), int(m.group("month")), int(m.group("day")))  # a real day (not 31/2)
            return dt.date(int(m.group("year")), int(m.group("month")), 1)
        return dt.date(int(m.group("m_year")), int(m.group("m_month")), 1)
    except ValueError:
        return None
