"""Calculators: worked examples computed by hand from Law 41/2024/QH15, properties, the CLI, intents."""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot import calc_flow
from bot.calc_cli import add_calc_parser
from bot.calculator_replies import calculator_reply
from knowledge import calc_intent as intent
from knowledge import calculators as calc
from knowledge.calc_intent import detect_calculator_request, parse_amount
from knowledge.calculators import (
    PAYMENT_PERIODS,
    SUPPORT_GROUPS,
    CalculatorInputError,
    lump_sum,
    maternity_benefit,
    pension_estimate,
    sickness_benefit,
    survivor_benefits,
    voluntary_contribution,
)
from knowledge.params import ParameterTable, default_table
from knowledge.sources import parse_citation

ON = dt.date(2026, 3, 1)
LAW_TEXT = Path(__file__).resolve().parents[2] / "shared" / "legal" / "luat-bhxh-41-2024-QH15.md"


# ---------------------------------------------------------------- voluntary: worked examples


def test_near_poor_monthly_worked_example() -> None:
    # 22% × 1.500.000 = 330.000; support 40% × 22% × 1.500.000 (poverty line) = 132.000; 330.000 − 132.000.
    r = voluntary_contribution(1_500_000, "near_poor", 1, ON)
    assert (r.contribution_per_month, r.support_per_month, r.net_per_month) == (330_000, 132_000, 198_000)
    assert (r.contribution_per_period, r.support_per_period, r.net_per_period) == (330_000, 132_000, 198_000)
    assert "Luật 41/2024/QH15, Điều 36, khoản 1" in r.sources
    assert "Luật 41/2024/QH15, Điều 31, khoản 2" in r.sources
    assert any("132.000 đồng" in s for s in r.steps)


@pytest.mark.parametrize(("group", "support", "net"), [
    ("poor", 165_000, 165_000),  # 50% × 330.000
    ("island", 165_000, 165_000),  # xã đảo, đặc khu: same 50% as poor households
    ("ethnic_minority", 99_000, 231_000),  # 30% × 330.000
    ("other", 66_000, 264_000),  # 20% × 330.000
])
def test_same_income_other_groups(group: str, support: int, net: int) -> None:
    r = voluntary_contribution(1_500_000, group, 1, ON)
    assert (r.contribution_per_month, r.support_per_month, r.net_per_month) == (330_000, support, net)


def test_support_is_on_the_poverty_line_not_the_income() -> None:
    # 22% × 3.000.000 = 660.000; support still 40% × 22% × 1.500.000 = 132.000.
    r = voluntary_contribution(3_000_000, "near_poor", 1, ON)
    assert (r.contribution_per_month, r.support_per_month, r.net_per_month) == (660_000, 132_000, 528_000)


def test_three_and_twelve_month_periods() -> None:
    r3 = voluntary_contribution(1_500_000, "near_poor", 3, ON)
    assert (r3.contribution_per_period, r3.support_per_period, r3.net_per_period) == (990_000, 396_000, 594_000)
    assert "Luật 41/2024/QH15, Điều 36, khoản 2, điểm b" in r3.sources
    r12 = voluntary_contribution(1_500_000, "near_poor", 12, ON)
    assert (r12.contribution_per_period, r12.support_per_period, r12.net_per_period) == (
        3_960_000, 1_584_000, 2_376_000)
    assert any("07 tháng đầu" in s for s in r12.steps)


def test_several_groups_get_the_highest_rate() -> None:
    r = voluntary_contribution(1_500_000, {"ethnic_minority", "near_poor", "other"}, 1, ON)
    assert r.group == "near_poor" and r.support_per_month == 132_000
    assert any("nhiều nhóm" in s for s in r.steps)


def test_support_month_cap() -> None:
    # 120 months in all (Decree 159): 118 used → only 2 of a 6-month period are supported.
    r = voluntary_contribution(1_500_000, "poor", 6, ON, supported_months_used=118)
    assert r.supported_months == 2
    assert r.support_per_period == 2 * 165_000
    assert r.net_per_period == 6 * 330_000 - 2 * 165_000


def test_rounding_to_whole_dong_half_up() -> None:
    # 22% × 1.500.003 = 330.000,66 → 330.001 đồng.
    assert voluntary_contribution(1_500_003, "other", 1, ON).contribution_per_month == 330_001


def test_ceiling_moves_on_1_july_2026() -> None:
    # 20 × 2.340.000 = 46.800.000 until 30/6/2026; 20 × 2.530.000 = 50.600.000 from 1/7/2026.
    r = voluntary_contribution(50_000_000, "other", 1, dt.date(2026, 7, 1))
    assert r.income_ceiling == 50_600_000 and r.contribution_per_month == 11_000_000
    with pytest.raises(CalculatorInputError) as err:
        voluntary_contribution(50_000_000, "other", 1, dt.date(2026, 6, 30))
    assert "46.800.000 đồng" in str(err.value) and "50.000.000 đồng" in str(err.value)


def test_floor_moves_in_2027() -> None:
    with pytest.raises(CalculatorInputError, match=r"2\.200\.000 đồng"):
        voluntary_contribution(1_500_000, "other", 1, dt.date(2027, 1, 1))
    assert voluntary_contribution(2_200_000, "other", 1, dt.date(2027, 1, 1)).contribution_per_month == 484_000


def test_figures_come_from_the_table() -> None:
    table = default_table()
    row = table.parameters["voluntary_rate"]
    changed = dataclasses.replace(row, periods=(dataclasses.replace(row.periods[0], value=25.0),))
    custom = ParameterTable({**table.parameters, "voluntary_rate": changed})
    r = voluntary_contribution(1_500_000, "near_poor", 1, ON, table=custom)
    assert (r.contribution_per_month, r.support_per_month) == (375_000, 150_000)


# ---------------------------------------------------------------- error messages


@pytest.mark.parametrize(("call", "expected"), [
    (lambda: voluntary_contribution(1_000_000, "poor", 1, ON), ["1.500.000 đồng", "46.800.000 đồng", "thấp hơn"]),
    (lambda: voluntary_contribution(47_000_000, "poor", 1, ON), ["1.500.000 đồng", "46.800.000 đồng", "cao hơn"]),
    (lambda: voluntary_contribution(1_500_000, "rich", 1, ON), ["không hợp lệ", "near_poor", "hộ cận nghèo"]),
    (lambda: voluntary_contribution(1_500_000, "poor", 2, ON), ["1, 3, 6 hoặc 12"]),
    (lambda: pension_estimate("male", dt.date(2030, 1, 1), 1, 0, None, ON), ["Ngày sinh", "01/01/2030"]),
    (lambda: pension_estimate("female", dt.date(1970, 1, 1), -1, 0, None, ON), ["Số năm đóng", "từ 0"]),
    (lambda: pension_estimate("female", dt.date(1970, 1, 1), 10, 12, None, ON), ["từ 0 đến 11"]),
    (lambda: pension_estimate("x", dt.date(1970, 1, 1), 10, 0, None, ON), ["Giới tính", "nữ"]),
    (lambda: lump_sum(-1, 0, 2, 0, 5_000_000, ON), ["trước năm 2014", "từ 0"]),
    (lambda: lump_sum(0, 0, 2, 12, 5_000_000, ON), ["từ năm 2014", "từ 0 đến 11"]),
    (lambda: lump_sum(0, 0, 2, 0, 5_000_000, ON, reason="bored"), ["Lý do", "settle_abroad"]),
    (lambda: voluntary_contribution(1_500_000, "poor", 1, dt.date(2024, 1, 1)), ["Chưa có số liệu", "01/01/2024"]),
])
def test_errors_are_vietnamese_sentences_with_the_range(call, expected: list[str]) -> None:
    with pytest.raises(CalculatorInputError) as err:
        call()
    assert isinstance(err.value, ValueError)
    for fragment in expected:
        assert fragment in str(err.value)


# ---------------------------------------------------------------- pension: worked examples


def test_woman_20_years() -> None:
    # Điều 99 khoản 1 điểm a: 45% for 15 years + 2% × (20 − 15) = 55%; 55% × 10.000.000 = 5.500.000.
    r = pension_estimate("female", dt.date(1970, 1, 1), 20, 0, 10_000_000, ON)
    assert r.eligible and r.rate_percent == 55 and r.monthly_pension == 5_500_000
    # Women reaching retirement age in 2027: 57 years 4 months → 01/01/1970 + 57y4m = 01/05/2027.
    assert r.retirement_date == dt.date(2027, 5, 1) and r.retirement_age == "57 tuổi 4 tháng"
    assert r.pension_start == dt.date(2027, 6, 1)


def test_man_18_years_7_months() -> None:
    # Eligible: 18 full years ≥ 15. Rate: 7 odd months count as a full year (Điều 5 khoản 6) → 19 years;
    # men with 15 to under 20 years: 40% + 1% × (19 − 15) = 44%; 44% × 8.000.000 = 3.520.000.
    r = pension_estimate("male", dt.date(1966, 5, 10), 18, 7, 8_000_000, ON)
    assert r.eligible and r.rate_years == 19 and r.rate_percent == 44 and r.monthly_pension == 3_520_000
    # Men reaching retirement age from 2028: 62 → 10/05/2028.
    assert r.retirement_date == dt.date(2028, 5, 10)
    assert "Luật 41/2024/QH15, Điều 99, khoản 1, điểm b" in r.sources


def test_man_half_year_and_full_anchor() -> None:
    # 19 years 3 months → 19,5 years → 40% + 1% × 4,5 = 44,5%; 19 years 7 months → 20 years → 45%.
    assert pension_estimate("male", dt.date(1966, 5, 10), 19, 3, None, ON).rate_percent == 44.5
    assert pension_estimate("male", dt.date(1966, 5, 10), 19, 7, None, ON).rate_percent == 45


def test_man_35_years_reaches_the_cap() -> None:
    # 45% for 20 years + 2% × (35 − 20) = 75% = the cap; 38 years would be 81% → capped at 75%.
    assert pension_estimate("male", dt.date(1966, 5, 10), 35, 0, None, ON).rate_percent == 75
    r = pension_estimate("male", dt.date(1966, 5, 10), 38, 0, 10_000_000, ON)
    assert r.rate_percent == 75 and r.monthly_pension == 7_500_000
    assert any("trợ cấp một lần" in n for n in r.notes)


def test_not_eligible_explains_the_options() -> None:
    # 14 years 11 months: rate years would be 15, but eligibility needs 15 full years.
    r = pension_estimate("male", dt.date(1966, 5, 10), 14, 11, 8_000_000, ON)
    assert not r.eligible and r.rate_percent is None and r.monthly_pension is None and r.missing_months == 1
    text = " ".join(r.steps)
    for option in ("đóng tiếp", "đóng BHXH tự nguyện một lần", "trợ cấp hằng tháng", "rút BHXH một lần"):
        assert option in text
    assert "Luật 41/2024/QH15, Điều 23, khoản 1" in r.sources


@pytest.mark.parametrize(("sex", "birth", "expected"), [
    ("male", dt.date(1964, 10, 15), dt.date(2026, 4, 15)),  # 61y3m falls in 2026, so 2026's 61y6m applies
    ("male", dt.date(1964, 3, 15), dt.date(2025, 6, 15)),  # 61y3m in 2025
    ("female", dt.date(1969, 3, 1), dt.date(2025, 11, 1)),  # 56y8m in 2025 (the first year that fits)
    ("female", dt.date(1990, 6, 1), dt.date(2050, 6, 1)),  # 60 from 2035 on
])
def test_retirement_date_walks_the_roadmap(sex: str, birth: dt.date, expected: dt.date) -> None:
    assert pension_estimate(sex, birth, 15, 0, None, ON).retirement_date == expected


def test_already_retired_before_the_roadmap_rows() -> None:
    r = pension_estimate("female", dt.date(1960, 5, 10), 16, 0, None, ON)
    assert r.reached_retirement_age and r.retirement_date is None and r.rate_percent == 47


# ---------------------------------------------------------------- lump sum: worked examples


def test_lump_sum_before_and_from_2014() -> None:
    # 5 years before 2014: 5 × 1,5 = 7,5 months; 6 years 4 months from 2014: 4 odd months = ½ year →
    # 6,5 × 2 = 13 months; 20,5 × 5.000.000 = 102.500.000.
    r = lump_sum(5, 0, 6, 4, 5_000_000, ON)
    assert r.months_of_base == 20.5 and r.amount == 102_500_000 and r.eligible
    assert "Luật 41/2024/QH15, Điều 102, khoản 2, điểm a" in r.sources
    # Keeping the record: 11y4m, 3y8m short of 15 years; at 15 years women 45%, men 40%.
    assert r.missing_months_for_pension == 44 and r.pension_rate_if_kept == {"female": 45, "male": 40}


def test_odd_months_before_2014_move_to_the_later_period() -> None:
    # 5y4m before + 6y4m from 2014 → 5 years before (7,5) and 6y8m from 2014 → 7 years (14): 21,5 months.
    r = lump_sum(5, 4, 6, 4, 4_000_000, ON)
    assert r.years_before_2014_counted == 5 and r.years_from_2014_counted == 7
    assert r.amount == 86_000_000


def test_lump_sum_under_one_year() -> None:
    # Under one year: the amount paid in, 22% × 5.000.000 × 5 = 5.500.000, at most 2 × 5.000.000.
    assert lump_sum(0, 0, 0, 5, 5_000_000, ON).amount == 5_500_000
    # 11 months: 22% × 11 = 2,42 months of the base > 2 → capped at 10.000.000.
    r = lump_sum(0, 0, 0, 11, 5_000_000, ON)
    assert r.under_one_year and r.amount == 10_000_000


def test_state_support_is_deducted_except_illness() -> None:
    assert lump_sum(0, 0, 5, 0, 5_000_000, ON, state_support_received=3_000_000).amount == 47_000_000
    r = lump_sum(0, 0, 5, 0, 5_000_000, ON, reason="serious_illness", state_support_received=3_000_000)
    assert r.amount == 50_000_000 and r.support_deducted == 0


@pytest.mark.parametrize(("kwargs", "eligible", "phrase"), [
    ({"first_contribution_before_2025_07": False}, False, "01/07/2025"),
    ({"first_contribution_before_2025_07": False, "reason": "settle_abroad"}, True, "định cư"),
    ({"reason": "incapacity_81"}, True, "81%"),
])
def test_lump_sum_eligibility(kwargs: dict, eligible: bool, phrase: str) -> None:
    r = lump_sum(0, 0, 3, 0, 5_000_000, ON, **kwargs)
    assert r.eligible is eligible and phrase in r.eligibility


def test_transitional_case_needs_under_20_years() -> None:
    assert lump_sum(10, 0, 9, 11, 5_000_000, ON).eligible
    r = lump_sum(10, 0, 10, 0, 5_000_000, ON)
    assert not r.eligible and "20 năm" in r.eligibility
    assert not lump_sum(5, 0, 11, 0, 5_000_000, ON, reason="retirement_age_under_15_years").eligible


# ---------------------------------------------------------------- properties

INCOMES = st.integers(min_value=1_500_000, max_value=46_800_000)
GROUPS = st.sampled_from(sorted(SUPPORT_GROUPS))
PERIODS = st.sampled_from(sorted(PAYMENT_PERIODS))


@settings(max_examples=150, deadline=None)
@given(INCOMES, INCOMES, GROUPS, PERIODS)
def test_contribution_monotone_in_income(a: int, b: int, group: str, months: int) -> None:
    low, high = sorted((a, b))
    r_low, r_high = voluntary_contribution(low, group, months, ON), voluntary_contribution(high, group, months, ON)
    assert r_low.contribution_per_month <= r_high.contribution_per_month
    assert r_low.net_per_period <= r_high.net_per_period


@settings(max_examples=150, deadline=None)
@given(INCOMES, st.sets(GROUPS, min_size=1), PERIODS, st.integers(0, 130))
def test_net_and_support_bounds(income: int, groups: set[str], months: int, used: int) -> None:
    r = voluntary_contribution(income, groups, months, ON, supported_months_used=used)
    assert 0 <= r.support_per_month <= r.contribution_per_month
    assert r.net_per_month == r.contribution_per_month - r.support_per_month >= 0
    assert r.net_per_period == r.contribution_per_period - r.support_per_period >= 0
    assert r.contribution_per_period == r.contribution_per_month * months
    for value in (r.contribution_per_month, r.support_per_month, r.net_per_month, r.contribution_per_period,
                  r.support_per_period, r.net_per_period):
        assert isinstance(value, int)


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(["male", "female"]), st.integers(15 * 12, 45 * 12), st.integers(0, 24),
       st.integers(1_000_000, 100_000_000))
def test_pension_rate_monotone_and_capped(sex: str, total: int, extra: int, base: int) -> None:
    birth = dt.date(1960, 1, 1)
    a = pension_estimate(sex, birth, *divmod(total, 12), base, ON)
    b = pension_estimate(sex, birth, *divmod(total + extra, 12), base, ON)
    assert a.rate_percent is not None and b.rate_percent is not None
    assert a.rate_percent <= b.rate_percent <= 75
    assert isinstance(a.monthly_pension, int) and a.monthly_pension <= base


@settings(max_examples=150, deadline=None)
@given(st.integers(0, 20), st.integers(0, 11), st.integers(0, 20), st.integers(0, 11), st.integers(0, 5),
       st.integers(1_000_000, 50_000_000))
def test_lump_sum_monotone_in_years(yb: int, mb: int, ya: int, ma: int, more: int, base: int) -> None:
    if yb * 12 + mb + ya * 12 + ma < 12:
        ya = 1
    r = lump_sum(yb, mb, ya, ma, base, ON)
    assert lump_sum(yb, mb, ya + more, ma, base, ON).amount >= r.amount
    assert lump_sum(yb + more, mb, ya, ma, base, ON).amount >= r.amount
    assert isinstance(r.amount, int) and r.amount > 0


# ---------------------------------------------------------------- citations


def _law_structure() -> dict[int, dict[int, set[str]]]:
    articles: dict[int, dict[int, set[str]]] = {}
    article = clause = None
    for line in LAW_TEXT.read_text(encoding="utf-8").splitlines():
        if m := re.match(r"\s*Điều (\d+)\.", line):
            article, clause = int(m.group(1)), None
            articles[article] = {}
        elif article is not None and (m := re.match(r"\s*(\d+)\.\s", line)):
            clause = int(m.group(1))
            articles[article][clause] = set()
        elif article is not None and clause is not None and (m := re.match(r"\s*([a-zđ])\)\s", line)):
            articles[article][clause].add(m.group(1))
    return articles


@pytest.mark.skipif(not LAW_TEXT.exists(), reason="shared legal texts not available")
def assert_cited_in_law(results: list, law: dict) -> None:
    """Every article, clause and point of Law 41/2024 the results cite exists in the law's text."""
    for source in (s for r in results for s in r.sources):
        citation = parse_citation(source)
        if citation.number != "41/2024/QH15":
            continue
        assert citation.article in law, source
        if citation.clause is not None:
            assert citation.clause in law[citation.article], source
        if citation.point is not None:
            assert citation.point in law[citation.article][citation.clause], source


def test_every_citation_exists() -> None:
    law = _law_structure()
    results = [
        voluntary_contribution(1_500_000, "near_poor", 12, ON),
        pension_estimate("male", dt.date(1966, 5, 10), 38, 0, 9_000_000, ON, scheme="compulsory"),
        pension_estimate("female", dt.date(1966, 5, 10), 10, 0, 9_000_000, ON),
        lump_sum(5, 4, 6, 4, 5_000_000, ON, state_support_received=1_000_000),
        lump_sum(0, 0, 0, 4, 5_000_000, ON, scheme="compulsory", reason="settle_abroad"),
    ]
    assert_cited_in_law(results, law)


# ---------------------------------------------------------------- intent detection


@pytest.mark.parametrize(("text", "calculator", "fields"), [
    ("tôi chọn mức 3 triệu thì đóng bao nhiêu", intent.VOLUNTARY, {"amount": 3_000_000}),
    ("dong tu nguyen muc 2 trieu thi moi thang bao nhieu", intent.VOLUNTARY, {"amount": 2_000_000, "period_months": 1}),
    ("chọn mức 2.500.000 thì mỗi tháng đóng bn", intent.VOLUNTARY, {"amount": 2_500_000}),
    ("đóng tự nguyện mức 1,5 triệu hết bao nhiêu", intent.VOLUNTARY, {"amount": 1_500_000}),
    ("muc 2tr dong bao nhieu", intent.VOLUNTARY, {"amount": 2_000_000}),
    ("hộ cận nghèo đóng tự nguyện 3 tháng 1 lần hết bao nhiêu", intent.VOLUNTARY,
     {"groups": ("near_poor",), "period_months": 3}),
    ("tôi 55 tuổi đóng 18 năm thì lương hưu bao nhiêu", intent.PENSION, {"age": 55, "years": 18}),
    ("tôi là nữ đóng 20 năm thì lương hưu được bao nhiêu %", intent.PENSION, {"years": 20, "sex": "female"}),
    ("toi dong 18 nam 7 thang luong huu duoc bao nhieu", intent.PENSION, {"years": 18, "months": 7}),
    ("rút 1 lần được bao nhiêu tiền", intent.LUMP_SUM, {}),
    ("rut bhxh mot lan duoc bao nhieu, em dong 6 nam luong 7tr", intent.LUMP_SUM, {"years": 6, "amount": 7_000_000}),
    # the older calculators keep their questions beside the benefit calculators' words
    ("tôi bị ốm nặng, đóng 18 năm, 55 tuổi, lương hưu được bao nhiêu", intent.PENSION, {}),
    ("đóng bhxh tự nguyện mức 2 triệu có được hưởng thai sản không, mỗi tháng đóng bao nhiêu", intent.VOLUNTARY, {}),
    ("dang mang thai muon rut bhxh 1 lan duoc bao nhieu, dong 6 nam luong 7tr", intent.LUMP_SUM, {}),
])
def test_intent_positives(text: str, calculator: str, fields: dict) -> None:
    request = detect_calculator_request(text)
    assert request is not None and request.calculator == calculator
    for key, value in fields.items():
        assert getattr(request, key) == value


@pytest.mark.parametrize("text", [
    "BHXH tự nguyện là gì",
    "bhxh tu nguyen la gi",
    "mức đóng bhxh tự nguyện thấp nhất là bao nhiêu",
    "lương hưu tối thiểu là bao nhiêu",
    "đóng bao nhiêu năm thì được rút bhxh 1 lần",
    "rút bhxh 1 lần cần giấy tờ gì",
    "rút bảo hiểm xã hội một lần mất bao lâu",
    "nghỉ hưu ở tuổi bao nhiêu",
    "làm thế nào để đăng ký đóng bhxh tự nguyện",
    "",
    # the benefit calculators' words without figures to compute with
    "tuất một lần là gì",
    "tuat mot lan la gi",
    "điều kiện hưởng tuất hằng tháng",
    "dieu kien huong tuat hang thang",
    "hồ sơ hưởng chế độ tử tuất gồm những gì",
    "nghỉ thai sản được bao nhiêu tháng",
    "nghi om duoc bao nhieu ngay mot nam",
    "tai nạn lao động là gì",
    "mất bao lâu thì nhận được tiền thai sản",
    "tôi bị mất sổ bhxh thì làm thế nào",
])
def test_ordinary_questions_are_not_calculations(text: str) -> None:
    assert detect_calculator_request(text) is None


@pytest.mark.parametrize(("text", "amount"), [
    ("3 triệu", 3_000_000), ("2tr", 2_000_000), ("2.500.000", 2_500_000), ("1,5 triệu", 1_500_000),
    ("1tr5", 1_500_000), ("2 triệu rưỡi", 2_500_000), ("500k", 500_000), ("1500000", 1_500_000),
    ("không có số", None),
])
def test_parse_amount(text: str, amount: int | None) -> None:
    assert parse_amount(text) == amount


# ---------------------------------------------------------------- CLI


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser(prog="bhxh")
    add_calc_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    code = args.func(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_cli_voluntary_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(["calc", "tu-nguyen", "--thu-nhap", "1500000", "--nhom", "can-ngheo", "--ky", "1",
                              "--ngay", "2026-03-01", "--json"], capsys)
    data = json.loads(out)
    assert code == 0 and not err
    assert data["calculator"] == "tu-nguyen"
    assert {"contribution_per_month", "support_per_month", "net_per_month", "steps", "sources"} <= set(data)
    assert (data["contribution_per_month"], data["support_per_month"], data["net_per_month"]) == (
        330_000, 132_000, 198_000)


def test_cli_english_aliases_and_text(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(["calc", "voluntary", "--income", "1,5tr", "--group", "ethnic-minority",
                            "--period", "3", "--date", "01/03/2026"], capsys)
    assert code == 0 and "Bạn thực đóng: 231.000 đồng/tháng" in out and "Căn cứ pháp lý:" in out


def test_cli_pension_and_lump_sum(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(["calc", "luong-huu", "--gioi-tinh", "nam", "--ngay-sinh", "1966-05-10", "--nam", "18",
                            "--thang", "7", "--binh-quan", "8000000", "--ngay", "2026-03-01", "--json"], capsys)
    data = json.loads(out)
    assert code == 0 and data["rate_percent"] == 44 and data["retirement_date"] == "2028-05-10"
    code, out, _ = run_cli(["calc", "lump-sum", "--years-before-2014", "5", "--years-from-2014", "6",
                            "--months-from-2014", "4", "--average-base", "5.000.000", "--date", "2026-03-01",
                            "--json"], capsys)
    data = json.loads(out)
    assert code == 0 and data["amount"] == 102_500_000 and data["eligible"] is True
    code, out, _ = run_cli(["calc", "mot-lan", "--nam-tu-2014", "2", "--binh-quan", "5tr",
                            "--dong-lan-dau", "2025-09-01", "--ngay", "2026-03-01", "--json"], capsys)
    assert code == 0 and json.loads(out)["eligible"] is False


@pytest.mark.parametrize(("argv", "fragment"), [
    (["calc", "tu-nguyen", "--thu-nhap", "50000000", "--ngay", "2026-06-30"], "46.800.000 đồng"),
    (["calc", "tu-nguyen", "--thu-nhap", "2000000", "--nhom", "giau"], "Nhóm đối tượng"),
    (["calc", "tu-nguyen", "--thu-nhap", "abc"], "không đọc được"),
    (["calc", "tu-nguyen"], "Thiếu"),
    (["calc", "tu-nguyen", "--thu-nhap", "2000000", "--ngay", "31/02/2026"], "Ngày tính"),
    (["calc", "luong-huu", "--gioi-tinh", "nu", "--ngay-sinh", "2099-01-01", "--nam", "1"], "Ngày sinh"),
    (["calc", "luong-huu", "--gioi-tinh", "nam"], "ngày sinh"),
    (["calc", "mot-lan", "--nam-tu-2014", "-2", "--binh-quan", "5000000"], "từ 0"),
])
def test_cli_bad_input_exit_2(argv: list[str], fragment: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(argv, capsys)
    assert code == 2 and out == "" and fragment in err


def test_result_to_dict_is_json_ready() -> None:
    data = calc.result_to_dict(pension_estimate("female", dt.date(1970, 1, 1), 20, 0, 10_000_000, ON))
    assert json.loads(json.dumps(data))["birth_date"] == "1970-01-01"


def test_absurd_amounts_get_a_clear_message_not_a_crash():
    import datetime as dt

    from knowledge.calculators import CalculatorInputError, lump_sum, voluntary_contribution

    for income in (1e300, -1e300, 10**20):
        with pytest.raises(CalculatorInputError, match=r"từ 1\.500\.000 đồng"):
            voluntary_contribution(income, "other", 1, dt.date(2026, 3, 1))
    with pytest.raises(CalculatorInputError):
        lump_sum(1, 0, 1, 0, 1e300, dt.date(2026, 3, 1))


# ================================================================ survivor, maternity, sickness, accident
# Reference level: 2.340.000 đồng until 30/6/2026, 2.530.000 đồng from 1/7/2026 (parameter table).

MARCH, AUGUST = dt.date(2026, 3, 15), dt.date(2026, 8, 10)


# ---------------------------------------------------------------- survivors


def test_survivor_ten_years_from_2014() -> None:
    # 10 years from 2014 × 2 months = 20 months × 8.000.000 = 160.000.000;
    # funeral 10 × 2.340.000 (March 2026) = 23.400.000; under 15 compulsory years: no monthly benefit.
    r = survivor_benefits("contributing", MARCH, years_from_2014=10, average_base=8_000_000)
    assert (r.lump_sum, r.lump_sum_months_of_base, r.funeral_allowance) == (160_000_000, 20, 23_400_000)
    assert not r.monthly_eligible and r.monthly_total is None
    assert "Luật 41/2024/QH15, Điều 89, khoản 1, điểm b" in r.sources
    assert any("160.000.000 đồng" in s for s in r.steps)


def test_survivor_odd_months_before_2014_move_and_round() -> None:
    # 5y4m before 2014 + 6y4m from 2014: the 4 odd months move → 5y and 6y8m (= 7 years);
    # 1,5 × 5 + 2 × 7 = 21,5 months × 5.000.000 = 107.500.000; funeral 10 × 2.530.000 = 25.300.000.
    r = survivor_benefits("reserved", AUGUST, years_before_2014=5, months_before_2014=4, years_from_2014=6,
                          months_from_2014=4, average_base=5_000_000)
    assert (r.lump_sum, r.lump_sum_months_of_base, r.funeral_allowance) == (107_500_000, 21.5, 25_300_000)


def test_survivor_floor_of_three_months_and_no_funeral_under_12_months() -> None:
    # 8 months from 2014 → 1 year × 2 = 2 months, below the floor of 3: 3 × 6.000.000 = 18.000.000.
    r = survivor_benefits("contributing", AUGUST, months_from_2014=8, average_base=6_000_000)
    assert (r.lump_sum, r.lump_sum_months_of_base) == (18_000_000, 3)
    assert not r.funeral_eligible and r.funeral_allowance == 0


def test_survivor_monthly_for_relatives_capped_at_four() -> None:
    # 8 years before + 12 from 2014: 1,5 × 8 + 2 × 12 = 36 months × 10.000.000 = 360.000.000.
    # Monthly (≥ 15 compulsory years): 50% × 2.530.000 = 1.265.000; no carer 70% = 1.771.000.
    # 2 relatives + 1 without a carer: 2 × 1.265.000 + 1.771.000 = 4.301.000, from 01/10/2026.
    death = dt.date(2026, 9, 20)
    r = survivor_benefits("contributing", death, years_before_2014=8, years_from_2014=12,
                          average_base=10_000_000, relatives=2, relatives_no_carer=1)
    assert r.lump_sum == 360_000_000 and r.monthly_eligible
    assert (r.monthly_per_relative, r.monthly_per_relative_no_carer, r.monthly_total) == (1_265_000, 1_771_000,
                                                                                       4_301_000)
    assert r.monthly_start == dt.date(2026, 10, 1)
    # 5 relatives: at most 4 are paid, 4 × 1.265.000 = 5.060.000.
    r5 = survivor_benefits("contributing", death, years_from_2014=20, average_base=10_000_000, relatives=5)
    assert (r5.relatives_counted, r5.monthly_total) == (4, 5_060_000)


@pytest.mark.parametrize(("drawn", "months", "amount"), [
    (1, 48, 288_000_000),  # died in the first 2 months: 48 × 6.000.000
    (36, 31, 186_000_000),  # 48 − 0,5 × (36 − 2) = 31 months × 6.000.000
    (100, 3, 18_000_000),  # 48 − 0,5 × 98 < 3: the floor, 3 × 6.000.000
])
def test_survivor_of_a_pensioner(drawn: int, months: float, amount: int) -> None:
    r = survivor_benefits("retired", dt.date(2026, 4, 12), pension=6_000_000, months_on_pension=drawn)
    assert (r.lump_sum_months_of_base, r.lump_sum) == (months, amount)
    assert r.funeral_allowance == 23_400_000 and r.monthly_eligible


def test_survivor_voluntary_short_record_gets_what_was_paid() -> None:
    # Voluntary, 36 months (< 60): the contributions, 22% × 3.000.000 × 36 = 23.760.000; no funeral (< 60 months).
    r = survivor_benefits("contributing", AUGUST, scheme="voluntary", years_from_2014=3, average_base=3_000_000)
    assert r.lump_sum == 23_760_000 and not r.funeral_eligible and not r.monthly_eligible
    assert "Luật 41/2024/QH15, Điều 110, khoản 2, điểm c" in r.sources
    # 6 voluntary years: 2 × 6 = 12 × 3.000.000 = 36.000.000, funeral 25.300.000.
    r6 = survivor_benefits("contributing", AUGUST, scheme="voluntary", years_from_2014=6, average_base=3_000_000)
    assert (r6.lump_sum, r6.funeral_allowance) == (36_000_000, 25_300_000)


def test_survivor_mixed_record_needs_15_compulsory_years_for_monthly() -> None:
    r = survivor_benefits("reserved", AUGUST, scheme="both", years_from_2014=15, compulsory_years=12,
                          average_base=5_000_000)
    assert not r.monthly_eligible and r.funeral_eligible and r.lump_sum == 150_000_000  # 30 × 5.000.000
    with pytest.raises(CalculatorInputError, match="bắt buộc"):
        survivor_benefits("reserved", AUGUST, scheme="both", years_from_2014=5, average_base=5_000_000)


def test_survivor_death_at_work() -> None:
    # 2 years: 4 months × 7.000.000 = 28.000.000; monthly allowed; OSH Art. 53: 36 × 2.530.000 = 91.080.000.
    r = survivor_benefits("contributing", AUGUST, years_from_2014=2, average_base=7_000_000, died_at_work=True)
    assert (r.lump_sum, r.work_death_allowance) == (28_000_000, 91_080_000) and r.monthly_eligible
    assert "Luật 84/2015/QH13, Điều 53" in r.sources


@pytest.mark.parametrize(("call", "fragment"), [
    (lambda: survivor_benefits("dead", AUGUST, years_from_2014=2), "Tình trạng"),
    (lambda: survivor_benefits("contributing", AUGUST), "ít nhất 1 tháng"),
    (lambda: survivor_benefits("contributing", AUGUST, years_from_2014=2, months_from_2014=14), "0 đến 11"),
    (lambda: survivor_benefits("contributing", AUGUST, years_from_2014=2, average_base=-5), "lớn hơn 0"),
    (lambda: survivor_benefits("contributing", dt.date(2024, 5, 1), years_from_2014=2), "Chưa có số liệu"),
])
def test_survivor_refuses_bad_input(call, fragment: str) -> None:
    with pytest.raises(CalculatorInputError, match=fragment):
        call()


# ---------------------------------------------------------------- maternity


def test_maternity_mother_before_july_2026() -> None:
    # 2 × 2.340.000 = 4.680.000; 6 months × 100% × 7.500.000 = 45.000.000; total 49.680.000.
    r = maternity_benefit(dt.date(2026, 3, 10), 7_500_000)
    assert (r.lump_sum, r.leave_months, r.leave_pay, r.total) == (4_680_000, 6, 45_000_000, 49_680_000)
    assert r.second_child_leave is None
    assert "Bộ luật 45/2019/QH14, Điều 139, khoản 1" in r.sources


def test_maternity_second_child_from_july_2026_is_flagged_not_asserted() -> None:
    # 2 × 2.530.000 = 5.060.000; held law: 6 × 7.500.000 = 45.000.000; reported rule: 7 × 7.500.000 = 52.500.000.
    r = maternity_benefit(AUGUST, 7_500_000, child_order=2)
    assert (r.lump_sum, r.leave_months, r.leave_pay) == (5_060_000, 6, 45_000_000)
    assert (r.second_child_leave, r.second_child_leave_pay) == (7, 52_500_000)
    assert any("chưa có văn bản gốc" in s and "52.500.000 đồng" in s for s in r.steps)
    first = maternity_benefit(AUGUST, 7_500_000, child_order=1)
    assert first.second_child_leave is None


def test_maternity_twins_and_ceiling() -> None:
    # Twins: 2 × 2.340.000 × 2 = 9.360.000; 6 + 1 = 7 months × 6.000.000 = 42.000.000.
    r = maternity_benefit(dt.date(2026, 3, 10), 6_000_000, babies=2)
    assert (r.lump_sum, r.leave_months, r.leave_pay) == (9_360_000, 7, 42_000_000)
    # 60 million is above the contribution ceiling 20 × 2.340.000 = 46.800.000: 6 × 46.800.000 = 280.800.000.
    assert maternity_benefit(dt.date(2026, 3, 10), 60_000_000).leave_pay == 280_800_000


@pytest.mark.parametrize(("kwargs", "days", "pay"), [
    ({"caesarean": True}, 7, 2_625_000),  # 7 × 9.000.000 ÷ 24 = 7 × 375.000
    ({}, 5, 1_875_000),  # 5 × 375.000
    ({"babies": 2, "caesarean": True}, 14, 5_250_000),
    ({"babies": 3}, 13, 4_875_000),  # twins 10 + 3 for the third
])
def test_maternity_father(kwargs: dict, days: int, pay: int) -> None:
    r = maternity_benefit(dt.date(2026, 3, 10), 9_000_000, role="father", **kwargs)
    assert (r.leave_days, r.leave_pay, r.lump_sum) == (days, pay, 0)


def test_maternity_conditions_and_voluntary() -> None:
    r = maternity_benefit(AUGUST, 7_000_000, months_paid_in_12=4)
    assert r.eligible is False and r.total == 0 and "Chưa đủ điều kiện" in r.steps[0]
    v = maternity_benefit(AUGUST, scheme="voluntary", babies=2)  # 2.000.000 per child
    assert v.lump_sum == 4_000_000 and v.total == 4_000_000
    with pytest.raises(CalculatorInputError, match="Số con"):
        maternity_benefit(AUGUST, 7_000_000, babies=0)


# ---------------------------------------------------------------- sickness


def test_sickness_ordinary_days() -> None:
    # 75% × 6.000.000 ÷ 24 = 187.500 a day × 10 = 1.875.000.
    r = sickness_benefit(ON, 6_000_000, 10, years_paid=12)
    assert (r.daily_amount, r.amount, r.annual_limit) == (187_500, 1_875_000, 30)
    assert "Luật 41/2024/QH15, Điều 45, khoản 5" in r.sources


def test_sickness_limit_long_term_and_heavy_work() -> None:
    # 35 days, under 15 years: 30 paid × 187.500 = 5.625.000, 5 unpaid.
    r = sickness_benefit(ON, 6_000_000, 35, years_paid=12)
    assert (r.days_at_full_rate, r.days_unpaid, r.amount) == (30, 5, 5_625_000)
    # Long-term illness, 20 years: 40 × 187.500 = 7.500.000 + 10 × 55% × 6.000.000 ÷ 24 (137.500) = 8.875.000.
    r = sickness_benefit(ON, 6_000_000, 50, years_paid=20, kind="long_term")
    assert (r.days_at_long_term_rate, r.long_term_rate_percent, r.amount) == (10, 55, 8_875_000)
    assert sickness_benefit(ON, 6_000_000, 1, years_paid=16, heavy_work=True).annual_limit == 50
    assert sickness_benefit(ON, 6_000_000, 1, years_paid=30).annual_limit == 60
    # 25 days already used of 30: 5 of 10 days paid.
    assert sickness_benefit(ON, 6_000_000, 10, days_used=25).days_at_full_rate == 5


def test_sickness_child() -> None:
    # 75% × 8.000.000 ÷ 24 = 250.000 × 5 = 1.250.000; limit 20 days under 3, 15 from 3 to under 7.
    r = sickness_benefit(ON, 8_000_000, 5, kind="child", child_age=2)
    assert (r.amount, r.annual_limit) == (1_250_000, 20)
    assert sickness_benefit(ON, 8_000_000, 5, kind="child", child_age=5).annual_limit == 15
    with pytest.raises(CalculatorInputError, match="dưới 7 tuổi"):
        sickness_benefit(ON, 8_000_000, 5, kind="child", child_age=7)
    with pytest.raises(CalculatorInputError, match="1 đến 366"):
        sickness_benefit(ON, 8_000_000, 0)


# ---------------------------------------------------------------- occupational accident


def test_accident_monthly() -> None:
    # (30% + 2% × (35 − 31)) × 2.340.000 = 38% × 2.340.000 = 889.200;
    # (0,5% + 0,3% × (8 − 1)) × 9.000.000 = 2,6% × 9.000.000 = 234.000; total 1.123.200 a month.
    r = calc.occupational_allowance(ON, 35, 9_000_000, 8)
    assert (r.kind, r.degree_part, r.years_part, r.amount) == ("monthly", 889_200, 234_000, 1_123_200)
    assert "Luật 84/2015/QH13, Điều 49, khoản 2, điểm b" in r.sources


def test_accident_lump_sum() -> None:
    # (5 + 0,5 × (20 − 5)) × 2.530.000 = 12,5 × 2.530.000 = 31.625.000;
    # (0,5 + 0,3 × 7) × 9.000.000 = 2,6 × 9.000.000 = 23.400.000; total 55.025.000.
    r = calc.occupational_allowance(AUGUST, 20, 9_000_000, 8)
    assert (r.kind, r.degree_part, r.years_part, r.amount) == ("lump_sum", 31_625_000, 23_400_000, 55_025_000)
    # 5%, 1 year: 5 × 2.530.000 = 12.650.000 + 0,5 × 6.000.000 = 3.000.000 → 15.650.000.
    assert calc.occupational_allowance(AUGUST, 5, 6_000_000, 1).amount == 15_650_000


def test_accident_attendant_and_thresholds() -> None:
    # 85%: (30% + 2% × 54) = 138% × 2.530.000 = 3.491.400; 0 years → 0,5% × 10.000.000 = 50.000;
    # attendant 1 × 2.530.000; total 6.071.400.
    r = calc.occupational_allowance(AUGUST, 85, 10_000_000, 0, attendant=True)
    assert (r.degree_part, r.years_part, r.attendant_allowance, r.amount) == (3_491_400, 50_000, 2_530_000,
                                                                             6_071_400)
    assert calc.occupational_allowance(AUGUST, 3, 10_000_000, 5).kind == "none"
    assert calc.occupational_allowance(AUGUST, 40).amount is None  # no salary: only the degree part
    # … and the rule for the years part is still stated, for the reader to apply to their own salary.
    assert any("0,5%, mỗi năm đóng thêm tính thêm 0,3%" in step
               for step in calc.occupational_allowance(AUGUST, 40).steps)
    assert any("0,5 tháng, mỗi năm đóng thêm tính thêm 0,3 tháng" in step
               for step in calc.occupational_allowance(AUGUST, 20).steps)
    for bad in (101, -1):
        with pytest.raises(CalculatorInputError, match="0 đến 100"):
            calc.occupational_allowance(AUGUST, bad, 10_000_000, 5)


@pytest.mark.skipif(not LAW_TEXT.exists(), reason="shared legal texts not available")
def test_new_calculators_cite_existing_articles() -> None:
    law = _law_structure()
    results = [
        survivor_benefits("contributing", AUGUST, years_before_2014=8, years_from_2014=12, average_base=10_000_000,
                          relatives=1),
        survivor_benefits("retired", AUGUST, pension=6_000_000, months_on_pension=30),
        survivor_benefits("contributing", AUGUST, scheme="voluntary", years_from_2014=3, average_base=3_000_000),
        survivor_benefits("reserved", AUGUST, scheme="both", years_from_2014=15, compulsory_years=12,
                          average_base=5_000_000, died_at_work=True),
        maternity_benefit(AUGUST, 7_500_000, child_order=2),
        maternity_benefit(AUGUST, 7_500_000, role="father", babies=2, caesarean=True),
        maternity_benefit(AUGUST, scheme="voluntary"),
        sickness_benefit(ON, 6_000_000, 50, years_paid=20, kind="long_term"),
        sickness_benefit(ON, 6_000_000, 5, kind="child", child_age=2),
    ]
    assert_cited_in_law(results, law)


# ---------------------------------------------------------------- triggering from letters


@pytest.mark.parametrize(("text", "calculator"), [
    ("bố tôi đóng bhxh 10 năm, lương bình quân 8 triệu, mất tháng 3/2026, gia đình được tuất một lần bao nhiêu?",
     intent.SURVIVOR),
    ("bo toi dong bhxh 10 nam, luong binh quan 8 trieu, mat thang 3/2026, gia dinh duoc tuat mot lan bao nhieu?",
     intent.SURVIVOR),
    ("Chồng tôi đóng bảo hiểm 16 năm ở công ty, lương 9 triệu, mất tháng 9/2026. Gia đình tôi được những khoản gì?",
     intent.SURVIVOR),
    ("ba em dang huong luong huu 5tr, ve huu duoc 2 nam thi mat thang 10/2026, nha em duoc nhan bao nhieu tien",
     intent.SURVIVOR),
    ("Em lương đóng BHXH 7,5 triệu, dự sinh con tháng 8/2026, nghỉ thai sản được bao nhiêu tiền ạ?", intent.MATERNITY),
    ("em luong 7tr, sinh con thu 2 vao thang 9/2026 thi duoc huong thai san bao nhieu", intent.MATERNITY),
    ("tôi nghỉ ốm 10 ngày, lương đóng bảo hiểm 6 triệu, được bao nhiêu tiền", intent.SICKNESS),
    ("toi bi tai nan lao dong suy giam 35%, luong 9 trieu, dong 8 nam, duoc tro cap bao nhieu", intent.OCCUPATIONAL),
])
def test_letters_trigger_the_benefit_calculators(text: str, calculator: str) -> None:
    request = detect_calculator_request(text)
    assert request is not None and request.calculator == calculator
    reply = calculator_reply(request, dt.date(2026, 12, 3), default_table())
    assert reply is not None and reply.kind == "calculator" and "Căn cứ:" in reply.text


def test_the_guided_flow_and_a_one_message_request_word_the_voluntary_result_alike() -> None:
    on, table = dt.date(2026, 12, 3), default_table()
    flow = calc_flow.typed(calc_flow.typed(calc_flow.typed(None, "tính", table, on).state, "1", table, on).state,
                           "2", table, on)  # group 1 (poor), period 2 (every 3 months)
    guided = calc_flow.typed(flow.state, "3 triệu", table, on).text
    request = detect_calculator_request("tôi thuộc hộ nghèo, chọn mức 3 triệu, đóng 3 tháng một lần thì bao nhiêu")
    assert request is not None and request.groups == ("poor",) and request.period_months == 3
    reply = calculator_reply(request, on, table)
    assert reply is not None and guided is not None and reply.text == guided
    assert "- Bạn thực đóng: 495.000 đồng/tháng\n- Đóng 3 tháng một lần: 1.485.000 đồng mỗi kỳ" in guided
    unnamed = calculator_reply(detect_calculator_request("chọn mức 3 triệu thì đóng bao nhiêu"), on, table)  # type: ignore[arg-type]
    assert unnamed is not None and "nhóm người tham gia khác" in unnamed.text and "hãy nói rõ nhóm" in unnamed.text


def test_letter_reply_shows_the_worked_amounts() -> None:
    text = "bố tôi đóng bhxh 10 năm, lương bình quân 8 triệu, mất tháng 3/2026, gia đình được tuất một lần bao nhiêu?"
    reply = calculator_reply(detect_calculator_request(text), dt.date(2026, 12, 3), default_table())  # type: ignore
    assert reply is not None
    assert "160.000.000 đồng" in reply.text and "23.400.000 đồng" in reply.text and "Giả định" in reply.text
    assert reply.topic == "survivors"


def test_how_much_without_figures_asks_the_knowledge_base() -> None:
    request = detect_calculator_request("sinh con được bao nhiêu tiền")
    assert request is not None and request.calculator == intent.MATERNITY
    assert calculator_reply(request, dt.date(2026, 12, 3), default_table()) is None


def test_cli_new_calculators(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(["calc", "tu-tuat", "--ngay", "2026-03-15", "--nam-tu-2014", "10", "--binh-quan",
                            "8000000", "--json"], capsys)
    assert code == 0 and json.loads(out)["lump_sum"] == 160_000_000
    code, out, _ = run_cli(["calc", "thai-san", "--ngay", "2026-08-10", "--binh-quan", "7,5tr", "--con-thu", "2"],
                           capsys)
    assert code == 0 and "52.500.000 đồng" in out and "45.000.000 đồng" in out
    code, out, _ = run_cli(["calc", "sickness", "--salary", "6000000", "--days", "10", "--years", "12",
                            "--date", "2026-03-01", "--json"], capsys)
    assert code == 0 and json.loads(out)["amount"] == 1_875_000
    code, out, _ = run_cli(["calc", "tai-nan", "--suy-giam", "35", "--luong", "9000000", "--nam", "8", "--ngay",
                            "2026-03-01"], capsys)
    assert code == 0 and "1.123.200 đồng" in out
    code, out, err = run_cli(["calc", "tai-nan", "--suy-giam", "135"], capsys)
    assert code == 2 and "0 đến 100" in err
    code, out, err = run_cli(["calc", "tu-tuat", "--nam-tu-2014", "3"], capsys)
    assert code == 2 and "ngày mất" in err
