"""The month of death read from a message (knowledge/month_of_death.py): the date the funeral allowance's
figures are for (Luật 41/2024/QH15, Điều 85, khoản 2: 10 times the reference level of the month of death)."""

from __future__ import annotations

import datetime as dt

import pytest

from knowledge.asked_date import asked_date
from knowledge.month_of_death import FOLLOWS_MONTH_OF_DEATH, month_of_death
from knowledge.schema import load_knowledge

TODAY = dt.date(2026, 12, 3)


@pytest.mark.parametrize(("text", "month"), [
    ("bố tôi mất tháng 3/2026, gia đình được tiền mai táng bao nhiêu", (2026, 3)),
    ("Mẹ em qua đời ngày 5/3/2026 thì được trợ cấp mai táng bao nhiêu ạ", (2026, 3)),
    ("tháng 3/2026 bố tôi mất, nhận mai táng bao nhiêu", (2026, 3)),
    ("ngày 15/02/2026, chồng tôi đã qua đời vì tai nạn", (2026, 2)),
    ("bo toi mat thang 3 nam 2026 thi tien mai tang bao nhieu", (2026, 3)),  # no diacritics
    ("mẹ tôi mất đột ngột hồi tháng 8/2025", (2025, 8)),
    ("Kính gửi BHXH, bố tôi đóng BHXH 20 năm, từ trần ngày 10/6/2026. Xin hỏi tiền mai táng?", (2026, 6)),
    ("ông tôi mất tháng 3/2020", (2020, 3)),  # before the table's figures: the engine says so
])
def test_a_stated_month_of_death_is_read(text, month):
    read = month_of_death(text, TODAY)
    assert read is not None and (read.on.year, read.on.month, read.on.day) == (*month, 1)
    assert asked_date(text, TODAY) is None  # a story date: never a date for figures in general


@pytest.mark.parametrize("text", [
    "tiền mai táng bao nhiêu",
    "tôi mất việc tháng 3/2026 thì được trợ cấp gì",  # losing a job is not a death
    "tháng 3/2026 tôi mất sổ bhxh",
    "bố tôi mất năm 2025",  # a year alone: the reference level changed on 1 July
    "bố tôi mất tháng 12/2026",  # this month: today's figures anyway
    "bố tôi mất tháng 1/2027",  # not yet
    "bố mất 31/2/2026",  # no such day
    "mẹ tôi sinh tháng 3/1960, đóng bhxh từ tháng 5/2000",
])
def test_no_month_of_death(text):
    assert month_of_death(text, TODAY) is None


def test_only_entries_whose_every_figure_follows_the_month_of_death():
    """The funeral allowance entry: its dated figures are the allowance and its parts, nothing paid monthly
    at today's level (a monthly survivor allowance follows each change of the reference level)."""
    entries = load_knowledge().entries
    assert FOLLOWS_MONTH_OF_DEATH and FOLLOWS_MONTH_OF_DEATH.issubset(entries)
    for entry_id in FOLLOWS_MONTH_OF_DEATH:
        text = entries[entry_id].answer + (entries[entry_id].short or "")
        assert "{{funeral_allowance}}" in text and "survivor_monthly_amount" not in text
