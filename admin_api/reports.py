"""Whose data and when: the hour-of-day and weekday patterns of the questions, and what the CSV exports
share (Vietnam time with its offset in the header, the province, a file name that says the period).

Times in the log are UTC; staff read Vietnam time (Asia/Ho_Chi_Minh, UTC+07:00 all year, no daylight
saving), so the patterns and the exports convert. BHXH_PROVINCE (Settings.province) names the deployment.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from typing import Any

from pydantic import BaseModel, Field

from admin_api.trends import LOCAL_OFFSET, local_day, ts_string, utc_now

TIMEZONE = "Asia/Ho_Chi_Minh"
OFFSET_TEXT = "UTC+07:00"
TIME_HEADER = f"time ({TIMEZONE}, {OFFSET_TEXT})"  # the exported `ts` column's header
WEEKDAYS_VI = ("Thứ Hai", "Thứ Ba", "Thứ Tư", "Thứ Năm", "Thứ Sáu", "Thứ Bảy", "Chủ Nhật")


class PatternsReport(BaseModel):
    days: int
    channel: str | None
    topic: str | None
    province: str = Field(description="BHXH_PROVINCE: whose data this is (empty: not set)")
    timezone: str = TIMEZONE
    first_day: str = Field(description="First Vietnam day counted (inclusive)")
    last_day: str = Field(description="Last Vietnam day counted (today, inclusive)")
    hours: list[int] = Field(description="Questions per hour of the day in Vietnam time, 0-23")
    weekdays: list[int] = Field(description="Questions per weekday, Monday first")
    weekday_days: list[int] = Field(description="How many of each weekday the period holds")
    weekday_average: list[float] = Field(description="weekdays / weekday_days: questions on an average such day")
    weekday_labels: list[str] = list(WEEKDAYS_VI)


def local_window(days: int, now: dt.datetime | None = None) -> tuple[dt.datetime, dt.datetime, dt.date, dt.date]:
    """The last `days` Vietnam days, today included: (start, end) in UTC and the first and last day."""
    now = now or utc_now()
    last = local_day(now)
    first = last - dt.timedelta(days=days - 1)
    start = dt.datetime.combine(first, dt.time(), dt.UTC) - LOCAL_OFFSET
    return start, start + dt.timedelta(days=days), first, last


def patterns(store: Any, days: int, channel: str | None = None, topic: str | None = None, *, province: str = "",
             now: dt.datetime | None = None) -> PatternsReport:
    """Hour-of-day (from the log) and weekday (from the daily counts) patterns over the last `days` days."""
    start, end, first, last = local_window(days, now)
    hours = store.hour_counts(ts_string(start), ts_string(end), channel, topic)
    where, params = ["day >= ?", "day <= ?"], [first.isoformat(), last.isoformat()]
    for column, value in (("channel", channel), ("topic", topic)):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    weekdays, present = [0] * 7, [0] * 7
    rows = store.db.execute(f"SELECT day, SUM(n) FROM question_daily WHERE {' AND '.join(where)} GROUP BY day",
                            params).fetchall()
    for day, n in rows:
        weekdays[dt.date.fromisoformat(str(day)[:10]).weekday()] += int(n or 0)
    for offset in range(days):
        present[(first + dt.timedelta(days=offset)).weekday()] += 1
    average = [round(n / d, 1) if d else 0.0 for n, d in zip(weekdays, present, strict=True)]
    return PatternsReport(days=days, channel=channel, topic=topic, province=province, first_day=first.isoformat(),
                          last_day=last.isoformat(), hours=hours, weekdays=weekdays, weekday_days=present,
                          weekday_average=average)


def local_time_text(stored: Any) -> Any:
    """A stored UTC time ("2026-12-03T10:05:00.123456Z") as Vietnam time "2026-12-03 17:05:00"."""
    if not isinstance(stored, str):
        return stored
    try:
        moment = dt.datetime.fromisoformat(stored.replace("Z", "+00:00"))
    except ValueError:
        return stored
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return (moment.astimezone(dt.UTC) + LOCAL_OFFSET).strftime("%Y-%m-%d %H:%M:%S")


def slug(text: str) -> str:
    """ASCII file-name part: "Tỉnh Lâm Đồng" -> "tinh-lam-dong"."""
    plain = unicodedata.normalize("NFKD", text.replace("đ", "d").replace("Đ", "D"))
    plain = "".join(ch for ch in plain if not unicodedata.combining(ch)).lower()
    return re.sub(r"[^a-z0-9]+", "-", plain).strip("-")[:40]


def export_name(stem: str, province: str, first: dt.date | None, last: dt.date | None) -> str:
    """e.g. questions_tinh-lam-dong_2026-11-27_2026-12-03.csv (the parts that are known)."""
    parts = [stem, slug(province)] + [d.isoformat() for d in (first, last) if d is not None]
    return "_".join(p for p in parts if p) + ".csv"


def question_rows(rows: Any, columns: tuple[str, ...], province: str) -> Any:
    """Exported question rows: `ts` in Vietnam time, the province appended when one is set."""
    at = columns.index("ts")
    for row in rows:
        out = list(row)
        out[at] = local_time_text(out[at])
        yield (*out, province) if province else tuple(out)


def question_header(columns: tuple[str, ...], province: str) -> list[str]:
    header = [TIME_HEADER if c == "ts" else c for c in columns]
    return [*header, "province"] if province else header
