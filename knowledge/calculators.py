"""Calculators: voluntary contribution, pension estimate, one-time withdrawal.

Pure functions over the effective-dated parameter table: every regulated figure
is read with `table.value(name, on)`; only the statutory structure of Law
41/2024/QH15 (payment periods, the odd-month rule, which groups exist, …) is
written here. Each result is a frozen dataclass holding the numbers, the
Vietnamese step-by-step explanation (`steps`), the legal basis (`sources`, in
the form "Luật 41/2024/QH15, Điều 36, khoản 1") and cautions (`notes`).

Rounding rule: money is computed exactly (decimal arithmetic) and rounded to
whole đồng, half up (0,5 đồng → 1 đồng), once per monthly figure; amounts for
a payment period are the rounded monthly figure × the number of months, so the
period figures are always exact multiples of what the person sees per month.
"""

from __future__ import annotations

import calendar
import datetime as dt
import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from knowledge.params import (
    ParameterError,
    ParameterTable,
    default_table,
    format_age,
    format_money,
    format_number,
    format_percent,
)

LAW = "Luật 41/2024/QH15"
# Statutory structure of Law 41/2024/QH15 (law text, not decree figures).
LAW_IN_FORCE = dt.date(2025, 7, 1)  # Điều 140: the law's effective date
TRANSITIONAL_MAX_YEARS = 20  # Điều 70 khoản 1 điểm đ; Điều 102 khoản 1 điểm đ: "chưa đủ 20 năm"
UNDER_ONE_YEAR_CAP_MONTHS = 2  # Điều 70 khoản 3 điểm c; Điều 102 khoản 2 điểm c
MINIMUM_PENSION_YEARS = 20  # Điều 141 khoản 11: floor at the reference level
EARLY_VOLUNTARY_PENSION_YEARS = 20  # Điều 141 khoản 9: joined before 2021, ≥ 20 voluntary years

SUPPORT_GROUPS: dict[str, str] = {  # group → table row of its support percentage
    "poor": "support_poor",
    "island": "support_poor",  # residents of island communes and special zones: same as poor
    "near_poor": "support_near_poor",
    "ethnic_minority": "support_ethnic_minority",
    "other": "support_other",
}
GROUP_LABELS: dict[str, str] = {
    "poor": "hộ nghèo",
    "island": "người sống ở xã đảo, đặc khu",
    "near_poor": "hộ cận nghèo",
    "ethnic_minority": "người dân tộc thiểu số",
    "other": "người tham gia khác",
}
# months per payment → (point of Điều 36 khoản 2 and 3, payment deadline)
PAYMENT_PERIODS: dict[int, tuple[str, str]] = {
    1: ("a", "trong tháng"),
    3: ("b", "trong 03 tháng"),
    6: ("c", "trong 04 tháng đầu"),
    12: ("d", "trong 07 tháng đầu"),
}
SEXES: dict[str, str] = {"male": "nam", "female": "nữ"}
SCHEMES: dict[str, str] = {"voluntary": "BHXH tự nguyện", "compulsory": "BHXH bắt buộc"}
# reason → (point of Điều 70 khoản 1 / Điều 102 khoản 1, Vietnamese label)
REASONS: dict[str, tuple[str, str]] = {
    "retirement_age_under_15_years": ("a", "đủ tuổi nghỉ hưu nhưng chưa đủ số năm đóng để hưởng lương hưu"),
    "settle_abroad": ("b", "ra nước ngoài để định cư"),
    "serious_illness": ("c", "đang mắc bệnh ung thư, bại liệt, xơ gan mất bù, lao nặng, AIDS"),
    "incapacity_81": ("d", "suy giảm khả năng lao động từ 81% trở lên hoặc khuyết tật đặc biệt nặng"),
    "stopped_12_months": ("đ", "sau 12 tháng không tiếp tục đóng BHXH"),
}
SUPPORT_KEPT_REASONS = {"serious_illness", "incapacity_81"}  # Điều 70 khoản 4; Điều 102 khoản 3
CONFIDENCE_VI = {"medium": "trung bình", "low": "thấp"}


# Beyond any real income (10 trillion đồng); also keeps Decimal rounding within its precision.
MAX_AMOUNT = 10**13


class CalculatorInputError(ValueError):
    """Invalid input; the message is a Vietnamese sentence stating the allowed range."""


# ---------------------------------------------------------------- helpers


def cite(article: int, clause: int | None = None, point: str | None = None) -> str:
    text = f"{LAW}, Điều {article}"
    if clause is not None:
        text += f", khoản {clause}"
    if point is not None:
        text += f", điểm {point}"
    return text


def whole_dong(amount: Decimal) -> int:
    """Round to whole đồng, half up."""
    return int(amount.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def format_date(day: dt.date) -> str:
    return f"{day.day:02d}/{day.month:02d}/{day.year}"


def add_months(day: dt.date, months: int) -> dt.date:
    """Same day `months` later (clamped to the month's last day: 29/02 + 12 → 28/02)."""
    year, month0 = divmod(day.month - 1 + months, 12)
    year += day.year
    return dt.date(year, month0 + 1, min(day.day, calendar.monthrange(year, month0 + 1)[1]))


def months_between(start: dt.date, end: dt.date) -> int:
    """Whole months from `start` to `end` (age in months when `start` is a birth date)."""
    months = (end.year - start.year) * 12 + end.month - start.month
    return months - 1 if add_months(start, months) > end else months


def odd_month_years(years: int, months: int) -> Decimal:
    """Years counted for a benefit (Điều 5 khoản 6): 1–6 odd months = ½ year, 7–11 = 1 year."""
    return Decimal(years) + (Decimal(0) if months == 0 else Decimal("0.5") if months <= 6 else Decimal(1))


def split_years_at_2014(before: int, after: int) -> tuple[int, int, int, Decimal, Decimal]:
    """Months paid before and from 2014 as a lump sum counts them: the odd months before 2014 move to the
    period from 2014 when both periods exist. Returns (months moved, before, after, years before, years
    from 2014), the years counted by `odd_month_years`."""
    moved = before % 12 if before and after else 0
    before, after = before - moved, after + moved
    return moved, before, after, odd_month_years(*divmod(before, 12)), odd_month_years(*divmod(after, 12))


def format_years(years: Decimal | float) -> str:
    return f"{_n(years)} năm"


def format_duration(total_months: int) -> str:
    years, months = divmod(total_months, 12)
    parts = [f"{years} năm"] if years else []
    if months or not parts:
        parts.append(f"{months} tháng")
    return " ".join(parts)


def _m(x: Decimal | float | int) -> str:
    return format_money(float(x))


def _p(x: Decimal | float | int) -> str:
    return format_percent(float(x))


def _n(x: Decimal | float | int) -> str:
    return format_number(float(x))


def _num(x: Decimal) -> float | int:
    return int(x) if x == x.to_integral_value() else float(x)


class _Context:
    """Reads table rows for one date and collects the legal bases and cautions used."""

    def __init__(self, table: ParameterTable | None, on: dt.date) -> None:
        if not isinstance(on, dt.date):
            raise CalculatorInputError("Ngày tính phải là một ngày hợp lệ (năm-tháng-ngày).")
        self.table = table or default_table()
        self.on = on
        self.sources: list[str] = []
        self.notes: list[str] = []

    def cite(self, *citations: str) -> None:
        for citation in citations:
            if citation not in self.sources:
                self.sources.append(citation)

    def value(self, name: str, basis: bool = True) -> Decimal:
        """A row's value on the date; its legal basis is cited unless `basis` is False
        (rows shared by both schemes, whose scheme-specific article the caller cites)."""
        try:
            value = Decimal(str(self.table.value(name, self.on)))
            bases, confidence = self.table.bases(name, self.on), self.table.confidence(name, self.on)
        except ParameterError as exc:
            raise CalculatorInputError(
                f"Chưa có số liệu «{self.table.label(name)}» áp dụng cho ngày {format_date(self.on)}; "
                "hãy chọn ngày tính từ khi Luật 41/2024/QH15 có hiệu lực trở đi.") from exc
        for text in bases if basis else []:
            document = text.split(", Điều")[0]
            for part in text.split(";"):
                part = part.strip()
                self.cite(f"{document}, {part}" if part.startswith("Điều") else part)
        if confidence in CONFIDENCE_VI:
            note = (f"Số liệu «{self.table.label(name)}» có độ tin cậy {CONFIDENCE_VI[confidence]}; "
                    "nên đối chiếu với cơ quan BHXH trước khi dùng.")
            if note not in self.notes:
                self.notes.append(note)
        return value

    def money(self, name: str) -> str:
        return _m(self.value(name))


def _check_int(value: object, label: str, low: int, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low or (high is not None and value > high):
        allowed = f"từ {low} đến {high}" if high is not None else f"từ {low} trở lên"
        raise CalculatorInputError(f"{label} phải là số nguyên {allowed}; bạn nhập {value!r}.")
    return value


def _check_money(value: object, label: str) -> Decimal:
    if (isinstance(value, bool) or not isinstance(value, int | float | Decimal) or not math.isfinite(value)
            or abs(value) > MAX_AMOUNT):
        raise CalculatorInputError(f"{label} phải là một số tiền (đồng) hợp lý; bạn nhập {value!r}.")
    amount = Decimal(str(value)).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    if amount <= 0:
        raise CalculatorInputError(f"{label} phải lớn hơn 0 đồng; bạn nhập {_m(value)}.")
    return amount


def _check_choice(value: str, choices: dict[str, Any], label: str) -> str:
    if value not in choices:
        raise CalculatorInputError(f"{label} {value!r} không hợp lệ; chỉ nhận: {', '.join(choices)}.")
    return value


def _check_duration(years: object, months: object, label: str = "") -> int:
    years = _check_int(years, f"Số năm đóng{label}", 0)
    if isinstance(months, bool) or not isinstance(months, int) or not 0 <= months <= 11:
        raise CalculatorInputError(f"Số tháng lẻ{label} phải là số nguyên từ 0 đến 11; bạn nhập {months!r} "
                                   "(12 tháng trở lên hãy cộng vào số năm).")
    return years * 12 + months


def result_to_dict(result: object) -> dict[str, Any]:
    """A result as plain JSON-ready data (dates as ISO strings)."""

    def plain(value: Any) -> Any:
        if isinstance(value, dt.date):
            return value.isoformat()
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [plain(v) for v in value]
        return value

    return plain(asdict(result))  # type: ignore[call-overload]


# ---------------------------------------------------------------- voluntary contribution


@dataclass(frozen=True)
class VoluntaryContribution:
    on: dt.date
    income: int
    groups: tuple[str, ...]
    group: str  # the group whose (highest) support percentage applies
    support_percent: float
    months: int  # months per payment: 1, 3, 6 or 12
    contribution_per_month: int
    support_per_month: int
    net_per_month: int
    supported_months: int  # months of this period that get support (support is capped in months)
    contribution_per_period: int
    support_per_period: int
    net_per_period: int
    income_floor: int
    income_ceiling: int
    steps: list[str]
    sources: list[str]
    notes: list[str]


def _groups(group: str | Iterable[str]) -> tuple[str, ...]:
    groups = (group,) if isinstance(group, str) else tuple(group)
    labels = "; ".join(f"{key} ({label})" for key, label in GROUP_LABELS.items())
    if not groups:
        raise CalculatorInputError(f"Hãy chọn nhóm đối tượng; chỉ nhận: {labels}.")
    for g in groups:
        if g not in SUPPORT_GROUPS:
            raise CalculatorInputError(f"Nhóm đối tượng {g!r} không hợp lệ; chỉ nhận: {labels}.")
    return tuple(dict.fromkeys(groups))


def voluntary_contribution(
    income: float,
    group: str | Iterable[str],
    months: int,
    on: dt.date,
    *,
    supported_months_used: int = 0,
    table: ParameterTable | None = None,
) -> VoluntaryContribution:
    """What a voluntary participant pays: the rate × the chosen income, less the State's support.

    Support is a percentage of (rate × the rural poverty line), not of the chosen
    income; a person in several groups gets the highest percentage; support is
    paid for at most `support_max_months` months in all (`supported_months_used`
    already received are taken off).
    """
    ctx = _Context(table, on)
    groups = _groups(group)
    if isinstance(months, bool) or months not in PAYMENT_PERIODS:
        raise CalculatorInputError(
            f"Phương thức đóng phải là 1, 3, 6 hoặc 12 tháng một lần; bạn nhập {months!r}.")
    used = _check_int(supported_months_used, "Số tháng đã được Nhà nước hỗ trợ", 0)
    floor, multiple = ctx.value("rural_poverty_line"), ctx.value("voluntary_income_ceiling_multiple")
    reference = ctx.value("reference_level")
    ceiling = multiple * reference
    allowed = (f"từ {_m(floor)} (chuẩn hộ nghèo khu vực nông thôn) đến {_m(ceiling)} ({_n(multiple)} lần "
               f"mức tham chiếu {_m(reference)}) áp dụng ngày {format_date(on)}")
    if (isinstance(income, bool) or not isinstance(income, int | float | Decimal) or not math.isfinite(income)
            or abs(income) > MAX_AMOUNT):
        raise CalculatorInputError(f"Thu nhập làm căn cứ đóng phải là một số tiền {allowed}.")
    chosen = Decimal(str(income)).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    if not floor <= chosen <= ceiling:
        side = "thấp hơn mức tối thiểu" if chosen < floor else "cao hơn mức tối đa"
        raise CalculatorInputError(
            f"Thu nhập làm căn cứ đóng BHXH tự nguyện phải {allowed}; mức {_m(chosen)} {side}.")
    ctx.cite(cite(31, 2))

    rate = ctx.value("voluntary_rate")
    ctx.cite(cite(36, 1))
    best = max(groups, key=lambda g: ctx.table.value(SUPPORT_GROUPS[g], on))
    pct = ctx.value(SUPPORT_GROUPS[best])
    max_months = int(ctx.value("support_max_months"))
    contribution = whole_dong(rate / 100 * chosen)
    support = whole_dong(pct / 100 * rate / 100 * floor)
    supported = max(0, min(months, max_months - used))
    point, deadline = PAYMENT_PERIODS[months]
    ctx.cite(cite(36, 2, point), cite(36, 3, point))

    steps = [
        f"Thu nhập bạn chọn làm căn cứ đóng: {_m(chosen)}/tháng, hợp lệ vì nằm trong khung {allowed}.",
        f"Số tiền phải đóng mỗi tháng = {_p(rate)} × {_m(chosen)} = {_m(contribution)}.",
    ]
    if len(groups) > 1:
        listed = ", ".join(f"{GROUP_LABELS[g]} ({ctx.table.format(SUPPORT_GROUPS[g], on)})" for g in groups)
        steps.append(f"Bạn thuộc nhiều nhóm: {listed}; chỉ được hưởng một mức hỗ trợ, là mức cao nhất "
                     f"(nhóm {GROUP_LABELS[best]}).")
    steps += [
        f"Nhà nước hỗ trợ nhóm {GROUP_LABELS[best]} {_p(pct)} số tiền đóng tính trên chuẩn hộ nghèo khu vực "
        f"nông thôn (không tính trên mức thu nhập bạn chọn): {_p(pct)} × {_p(rate)} × {_m(floor)} = "
        f"{_m(support)}/tháng.",
        f"Số tiền bạn thực đóng mỗi tháng = {_m(contribution)} − {_m(support)} = {_m(contribution - support)}.",
    ]
    if supported < months:
        steps.append(f"Nhà nước chỉ hỗ trợ tối đa {max_months} tháng; bạn đã được hỗ trợ {used} tháng nên "
                     f"kỳ này chỉ còn {supported} tháng được hỗ trợ.")
    period_support, period_contribution = support * supported, contribution * months
    if months > 1:
        steps.append(f"Đóng {months} tháng một lần: phải đóng {months} × {_m(contribution)} = "
                     f"{_m(period_contribution)}, được hỗ trợ {_m(period_support)}, bạn thực đóng "
                     f"{_m(period_contribution - period_support)}; hạn nộp: {deadline}.")
    else:
        steps.append(f"Đóng hằng tháng: hạn nộp {deadline}.")
    steps.append("Các số tiền được làm tròn đến đồng (từ 0,5 đồng trở lên làm tròn lên) cho từng tháng; "
                 "số tiền cả kỳ bằng số tiền mỗi tháng nhân với số tháng.")
    ctx.notes.append("Số liệu lấy theo quy định có hiệu lực ngày tính; nếu chuẩn hộ nghèo hoặc mức tham chiếu "
                     "thay đổi trong kỳ đóng thì các tháng sau tính theo mức mới. Địa phương có thể hỗ trợ thêm.")
    return VoluntaryContribution(
        on=on, income=int(chosen), groups=groups, group=best, support_percent=_num(pct), months=months,
        contribution_per_month=contribution, support_per_month=support,
        net_per_month=contribution - support, supported_months=supported,
        contribution_per_period=period_contribution, support_per_period=period_support,
        net_per_period=period_contribution - period_support, income_floor=int(floor),
        income_ceiling=int(ceiling), steps=steps, sources=ctx.sources, notes=ctx.notes)


# ---------------------------------------------------------------- pension


@dataclass(frozen=True)
class PensionRate:
    eligible: bool
    rate_years: float | int  # years counted for the rate after the odd-month rule
    rate_percent: float | int | None
    missing_months: int  # months short of the minimum for a pension (0 if eligible)
    over_cap: bool  # the uncapped rate exceeds the maximum (long-career bonus applies)
    explanation: str


def _pension_rate(ctx: _Context, sex: str, total_months: int, scheme: str) -> PensionRate:
    """Rate under Điều 66 khoản 1 / Điều 99 khoản 1 (the same formula in both schemes)."""
    article = 66 if scheme == "compulsory" else 99
    min_years = ctx.value("min_pension_years", False)
    base, step = ctx.value("pension_base_rate", False), ctx.value("pension_step_rate", False)
    cap = ctx.value("pension_max_rate", False)
    years = odd_month_years(*divmod(total_months, 12))
    ctx.cite(cite(5, 6), cite(article, 1))
    missing = max(0, int(min_years) * 12 - total_months)
    if missing:
        return PensionRate(False, _num(years), None, missing, False,
                           f"Thời gian đóng {format_duration(total_months)} chưa đủ {_n(min_years)} năm (mỗi "
                           "năm tính đủ 12 tháng) nên chưa đủ điều kiện hưởng lương hưu.")
    if sex == "female":
        anchor = min_years
        ctx.cite(cite(article, 1, "a"))
    else:
        ctx.cite(cite(article, 1, "b"))
        short = ctx.value("pension_male_short_rate", False)
        short_step = ctx.value("pension_male_short_step_rate", False)
        # Men: the short-career rate (15 years, +1%/year) meets the base rate at the anchor of
        # Điều 66/99 khoản 1 điểm b (20 years); the anchor follows from the table's own rows.
        anchor = min_years + (base - short) / short_step
        if years < anchor:
            rate = short + short_step * (years - min_years)
            return PensionRate(True, _num(years), _num(rate), 0, False,
                               f"nam đóng từ đủ {_n(min_years)} đến dưới {_n(anchor)} năm: {_p(short)} + "
                               f"{_p(short_step)} × ({_n(years)} − {_n(min_years)}) = {_p(rate)}.")
    rate = base + step * (years - anchor)
    text = f"{_p(base)} cho {_n(anchor)} năm + {_p(step)} × ({_n(years)} − {_n(anchor)}) = {_p(rate)}"
    text += f", vượt mức tối đa nên lấy {_p(cap)}." if rate > cap else "."
    return PensionRate(True, _num(years), _num(min(rate, cap)), 0, rate > cap, text)


def _retirement(ctx: _Context, sex: str, birth: dt.date) -> tuple[dt.date | None, int | None]:
    """Walk the roadmap: the age is the one in force in the calendar year the person reaches it."""
    name = "retirement_age_men" if sex == "male" else "retirement_age_women"
    for year in range(birth.year + 40, birth.year + 90):
        try:
            age = int(ctx.table.value(name, dt.date(year, 1, 1)))
        except ParameterError:
            continue
        reached = add_months(birth, age)
        if reached.year == year:
            ctx.cite(*ctx.table.bases(name, dt.date(year, 1, 1)))
            return reached, age
    return None, None


@dataclass(frozen=True)
class PensionEstimate:
    on: dt.date
    sex: str
    birth_date: dt.date
    years: int
    months: int
    scheme: str
    age_on_date: str
    retirement_age_months: int | None
    retirement_age: str | None
    retirement_date: dt.date | None  # None: reached before the table's roadmap rows begin
    reached_retirement_age: bool
    pension_start: dt.date | None  # voluntary: first day of the next month (Điều 101 khoản 1)
    eligible: bool
    rate_years: float | int
    rate_percent: float | int | None
    average_base: int | None
    monthly_pension: int | None
    missing_months: int
    steps: list[str]
    sources: list[str]
    notes: list[str]


def _sex(sex: object) -> str:
    aliases = {"nam": "male", "nữ": "female", "nu": "female", "m": "male", "f": "female"}
    key = sex.strip().lower() if isinstance(sex, str) else sex
    key = aliases.get(key, key) if isinstance(key, str) else key
    if key not in SEXES:
        raise CalculatorInputError(f"Giới tính {sex!r} không hợp lệ; chỉ nhận: nam (male) hoặc nữ (female).")
    return str(key)


def pension_estimate(
    sex: str,
    birth_date: dt.date,
    years: int,
    months: int,
    average_base: float | None,
    on: dt.date,
    *,
    scheme: str = "voluntary",
    table: ParameterTable | None = None,
) -> PensionEstimate:
    """Retirement date and age, pension rate and monthly pension (rate × average base).

    `years`/`months` is the contribution record; `average_base` the average
    monthly income (voluntary) or wage (compulsory) it was paid on, or None for
    the rate only. Figures are those in force on `on`.
    """
    ctx = _Context(table, on)
    sex = _sex(sex)
    _check_choice(scheme, SCHEMES, "Loại hình BHXH")
    if not isinstance(birth_date, dt.date):
        raise CalculatorInputError("Ngày sinh phải là một ngày hợp lệ (năm-tháng-ngày).")
    if birth_date > on:
        raise CalculatorInputError(f"Ngày sinh {format_date(birth_date)} nằm sau ngày tính "
                                   f"{format_date(on)}; ngày sinh phải là một ngày trong quá khứ.")
    total = _check_duration(years, months)
    age_months = months_between(birth_date, on)
    if total > age_months:
        raise CalculatorInputError(f"Thời gian đóng {format_duration(total)} dài hơn tuổi của bạn "
                                   f"({format_age(age_months)}); hãy kiểm tra lại số năm, số tháng đóng.")
    base = None if average_base is None else _check_money(average_base, "Mức bình quân làm căn cứ đóng")

    steps: list[str] = []
    retire_date, retire_age = _retirement(ctx, sex, birth_date)
    ctx.cite("Bộ luật Lao động 45/2019/QH14, Điều 169, khoản 2")
    if retire_date is None:
        first = ctx.table.parameters[f"retirement_age_{'men' if sex == 'male' else 'women'}"].periods[0]
        if add_months(birth_date, int(first.value)) >= first.start:
            raise CalculatorInputError("Không xác định được tuổi nghỉ hưu theo lộ trình trong bảng tham số.")
        reached = True
        steps.append(f"Bạn đã đủ tuổi nghỉ hưu trước năm {first.start.year} (hiện {format_age(age_months)}).")
    else:
        reached = retire_date <= on
        now = " (đã qua)." if reached else f"; hiện bạn {format_age(age_months)}."
        steps.append(f"Tuổi nghỉ hưu của lao động {SEXES[sex]} đủ tuổi vào năm {retire_date.year} là "
                     f"{format_age(retire_age or 0)} (áp dụng lộ trình của năm bạn đủ tuổi): bạn sinh ngày "
                     f"{format_date(birth_date)} nên đủ tuổi nghỉ hưu vào ngày {format_date(retire_date)}{now}")
    pension_start = None
    if retire_date is not None and scheme == "voluntary":
        pension_start = add_months(retire_date.replace(day=1), 1)

    rate = _pension_rate(ctx, sex, total, scheme)
    ctx.cite(cite(64, 1) if scheme == "compulsory" else cite(98))
    steps.append(f"Thời gian đóng {format_duration(total)}: để hưởng lương hưu cần đủ "
                 f"{_n(ctx.value('min_pension_years', False))} năm (mỗi năm đủ 12 tháng); khi tính tỷ lệ, tháng "
                 "lẻ từ 1 đến 6 tháng tính là nửa năm, từ 7 đến 11 tháng tính là một năm, nên số năm tính tỷ lệ "
                 f"là {format_years(rate.rate_years)}.")
    monthly = None
    if rate.eligible:
        steps.append(f"Tỷ lệ hưởng lương hưu của lao động {SEXES[sex]}: {rate.explanation}")
        if base is not None:
            monthly = whole_dong(Decimal(str(rate.rate_percent)) / 100 * base)
            steps.append(f"Lương hưu hằng tháng = {_p(rate.rate_percent or 0)} × {_m(base)} = {_m(monthly)} "
                         "(làm tròn đến đồng).")
        else:
            steps.append("Cho biết mức bình quân thu nhập (tiền lương) làm căn cứ đóng để tính ra số tiền.")
        if pension_start:
            ctx.cite(cite(101, 1))
            steps.append(f"Lương hưu được hưởng từ ngày {format_date(pension_start)} (ngày đầu tháng liền kề "
                         "sau tháng đủ điều kiện), khi có hồ sơ đề nghị.")
        _pension_notes(ctx, scheme, rate, total)
    else:
        steps.append(rate.explanation)
        _not_eligible_options(ctx, steps, rate, scheme)
    steps.append(f"Tính theo quy định có hiệu lực ngày {format_date(on)}; lương hưu thực tế tính theo quy định "
                 "tại thời điểm hưởng, trên mức bình quân đã điều chỉnh theo chỉ số giá tiêu dùng.")
    ctx.cite(cite(5, 7), cite(104) if scheme == "voluntary" else cite(72))
    return PensionEstimate(
        on=on, sex=sex, birth_date=birth_date, years=years, months=months, scheme=scheme,
        age_on_date=format_age(age_months), retirement_age_months=retire_age,
        retirement_age=format_age(retire_age) if retire_age else None, retirement_date=retire_date,
        reached_retirement_age=reached, pension_start=pension_start, eligible=rate.eligible,
        rate_years=rate.rate_years, rate_percent=rate.rate_percent,
        average_base=None if base is None else int(base), monthly_pension=monthly,
        missing_months=rate.missing_months, steps=steps, sources=ctx.sources, notes=ctx.notes)


def _pension_notes(ctx: _Context, scheme: str, rate: PensionRate, total: int) -> None:
    if rate.over_cap:
        article = 68 if scheme == "compulsory" else 100
        ctx.notes.append("Số năm đóng vượt mức đạt tỷ lệ tối đa nên khi nghỉ hưu còn được trợ cấp một lần "
                         f"({cite(article)}).")
        ctx.cite(cite(article))
    if scheme == "compulsory" and total >= MINIMUM_PENSION_YEARS * 12:
        ctx.notes.append(f"Nếu tham gia BHXH bắt buộc trước 01/07/2025 và có từ đủ {MINIMUM_PENSION_YEARS} năm "
                         "đóng bắt buộc trở lên thì lương hưu thấp nhất bằng mức tham chiếu "
                         f"({ctx.money('reference_level')}).")
        ctx.cite(cite(141, 11))
    if scheme == "voluntary" and total >= EARLY_VOLUNTARY_PENSION_YEARS * 12:
        ctx.notes.append(f"Nếu tham gia BHXH tự nguyện trước 01/01/2021 và có đủ {EARLY_VOLUNTARY_PENSION_YEARS} "
                         "năm đóng tự nguyện thì có thể hưởng lương hưu ở tuổi thấp hơn theo quy định chuyển tiếp.")
        ctx.cite(cite(141, 9))


def _not_eligible_options(ctx: _Context, steps: list[str], rate: PensionRate, scheme: str) -> None:
    steps += [
        f"Lựa chọn 1: đóng tiếp thêm {format_duration(rate.missing_months)} để đủ điều kiện hưởng lương hưu; thời gian "
        "đã đóng được bảo lưu, không mất.",
        "Lựa chọn 2: khi đủ tuổi nghỉ hưu, có thể đóng BHXH tự nguyện một lần cho thời gian còn thiếu; lương hưu hưởng "
        "từ tháng liền kề sau tháng đóng đủ.",
        "Lựa chọn 3: khi đủ tuổi nghỉ hưu mà không đóng tiếp, nhận trợ cấp hằng tháng từ chính khoản đã đóng "
        f"(thấp nhất bằng trợ cấp hưu trí xã hội {ctx.money('social_pension_amount')}/tháng, được Nhà nước "
        "đóng bảo hiểm y tế), hoặc rút BHXH một lần (mất toàn bộ thời gian đã đóng).",
        f"Ngoài ra, từ đủ {_n(ctx.value('social_pension_age'))} tuổi, nếu không có lương hưu, có thể nhận trợ cấp hưu "
        "trí xã hội.",
    ]
    if scheme == "compulsory":
        ctx.cite(cite(70, 1, "a"), cite(71))
    else:
        ctx.cite(cite(102, 1, "a"), cite(103))
    ctx.cite(cite(36, 2, "e"), cite(101, 3), cite(23, 1), cite(23, 3), cite(23, 6), cite(5, 3), cite(21, 1))


# ---------------------------------------------------------------- one-time withdrawal


@dataclass(frozen=True)
class LumpSum:
    on: dt.date
    reason: str
    scheme: str
    eligible: bool
    eligibility: str
    total_months: int
    under_one_year: bool
    years_before_2014_counted: float | int
    years_from_2014_counted: float | int
    months_of_base: float  # the benefit in months of the average base (before deducting support)
    average_base: int
    gross_amount: int
    support_deducted: int
    amount: int
    pension_rate_if_kept: dict[str, float]  # sex → pension rate the record counts toward if kept
    missing_months_for_pension: int
    steps: list[str]
    sources: list[str]
    notes: list[str]


def lump_sum(
    years_before_2014: int,
    months_before_2014: int,
    years_from_2014: int,
    months_from_2014: int,
    average_base: float,
    on: dt.date,
    first_contribution_before_2025_07: bool = True,
    *,
    reason: str = "stopped_12_months",
    scheme: str = "voluntary",
    state_support_received: float = 0,
    sex: str | None = None,
    table: ParameterTable | None = None,
) -> LumpSum:
    """One-time withdrawal (BHXH một lần) next to what keeping the record gives.

    Reading of Điều 70 khoản 3–4 / Điều 102 khoản 2–3: 1.5 months of the average
    base per year before 2014 and 2 months per year from 2014 (table rows); odd
    months before 2014 move to the later period when both periods exist; odd
    months then count ½ year (1–6) or 1 year (7–11). Under one year in all: the
    amount paid in (contribution rate × base × months) but at most 2 months of
    the base. State support for voluntary contributions (`state_support_received`,
    in đồng) is deducted, except for serious illness or ≥ 81% incapacity.
    """
    ctx = _Context(table, on)
    _check_choice(reason, REASONS, "Lý do hưởng BHXH một lần")
    _check_choice(scheme, SCHEMES, "Loại hình BHXH")
    before = _check_duration(years_before_2014, months_before_2014, " trước năm 2014")
    after = _check_duration(years_from_2014, months_from_2014, " từ năm 2014")
    base = _check_money(average_base, "Mức bình quân làm căn cứ đóng")
    support_in = state_support_received
    if isinstance(support_in, bool) or not isinstance(support_in, int | float) or not math.isfinite(support_in) \
            or support_in < 0:
        raise CalculatorInputError("Số tiền Nhà nước đã hỗ trợ phải là số tiền từ 0 đồng trở lên.")
    sexes = [_sex(sex)] if sex is not None else ["female", "male"]
    total = before + after
    if total == 0:
        raise CalculatorInputError("Tổng thời gian đóng phải từ 1 tháng trở lên.")
    article, clause = (70, 3) if scheme == "compulsory" else (102, 2)
    steps: list[str] = []

    if total < 12:
        rate = ctx.value("voluntary_rate") if scheme == "voluntary" else \
            ctx.value("employee_pension_rate") + ctx.value("employer_pension_rate")
        paid, cap = rate / 100 * base * total, base * UNDER_ONE_YEAR_CAP_MONTHS
        gross = whole_dong(min(paid, cap))
        yb = ya = Decimal(0)
        months_of_base = Decimal(gross) / base
        steps.append(f"Thời gian đóng {format_duration(total)}, chưa đủ một năm: mức hưởng bằng số tiền đã "
                     f"đóng {_p(rate)} × {_m(base)} × {total} tháng = {_m(whole_dong(paid))}, nhưng không quá "
                     f"{UNDER_ONE_YEAR_CAP_MONTHS} tháng mức bình quân ({_m(cap)}) → {_m(gross)}.")
        ctx.cite(cite(article, clause, "c"))
    else:
        per_before = ctx.value("lump_sum_months_before_2014", False)
        per_after = ctx.value("lump_sum_months_from_2014", False)
        moved, before, after, yb, ya = split_years_at_2014(before, after)
        if moved:
            steps.append(f"Thời gian đóng trước năm 2014 có {moved} tháng lẻ, được chuyển sang giai đoạn từ "
                         f"năm 2014: trước 2014 còn {format_duration(before)}, từ 2014 thành "
                         f"{format_duration(after)}.")
        months_of_base = per_before * yb + per_after * ya
        gross = whole_dong(months_of_base * base)
        if before:
            steps.append(f"Giai đoạn trước 2014: {format_duration(before)} tính là {format_years(yb)} × "
                         f"{_n(per_before)} tháng = {_n(per_before * yb)} tháng mức bình quân.")
        if after:
            steps.append(f"Giai đoạn từ 2014: {format_duration(after)} tính là {format_years(ya)} (tháng lẻ "
                         f"1–6 tính nửa năm, 7–11 tính một năm) × {_n(per_after)} tháng = "
                         f"{_n(per_after * ya)} tháng mức bình quân.")
        steps.append(f"Mức hưởng = {_n(months_of_base)} tháng × {_m(base)} = {_m(gross)}.")
        ctx.cite(cite(article, clause, "a"), cite(article, clause, "b"), cite(5, 6))

    keeps_support = reason in SUPPORT_KEPT_REASONS
    support = 0 if keeps_support else min(gross, whole_dong(Decimal(str(support_in))))
    if support_in:
        if keeps_support:
            steps.append("Trường hợp bệnh hiểm nghèo hoặc suy giảm khả năng lao động từ 81%: không trừ phần "
                         "Nhà nước đã hỗ trợ tiền đóng.")
        else:
            steps.append(f"Trừ số tiền Nhà nước đã hỗ trợ đóng BHXH tự nguyện: {_m(support)}.")
        ctx.cite(*((cite(70, 3), cite(70, 4)) if scheme == "compulsory" else (cite(102, 3),)))
    amount = gross - support
    steps.append(f"Số tiền BHXH một lần ước tính: {_m(amount)} (làm tròn đến đồng; số tiền thực nhận tính theo "
                 "mức bình quân và quy định tại thời điểm cơ quan BHXH ra quyết định).")
    ctx.cite(cite(70, 5) if scheme == "compulsory" else cite(102, 4))

    eligible, eligibility = _lump_sum_eligibility(ctx, reason, scheme, total, first_contribution_before_2025_07)
    steps.append(eligibility)
    min_months = int(ctx.value("min_pension_years", False)) * 12
    rates = {s: float(_pension_rate(ctx, s, max(total, min_months), scheme).rate_percent or 0) for s in sexes}
    missing = max(0, min_months - total)
    kept = ", ".join(f"{SEXES[s]} {format_percent(r)}" for s, r in rates.items())
    if missing:
        steps.append(f"Nếu không rút mà bảo lưu: {format_duration(total)} đã đóng được giữ nguyên; đóng thêm "
                     f"{format_duration(missing)} là đủ điều kiện lương hưu với tỷ lệ ({kept}) mức bình quân, "
                     "có thẻ bảo hiểm y tế do quỹ BHXH đóng; đủ tuổi nghỉ hưu mà chưa đủ năm đóng thì vẫn có "
                     "thể nhận trợ cấp hằng tháng từ chính khoản đã đóng (được Nhà nước đóng bảo hiểm y tế).")
    else:
        steps.append(f"Nếu không rút mà bảo lưu: thời gian đóng đã đủ số năm; khi đủ tuổi nghỉ hưu được lương "
                     f"hưu với tỷ lệ ({kept}) mức bình quân, hưởng suốt đời, có thẻ bảo hiểm y tế do quỹ BHXH "
                     "đóng.")
    steps.append("Rút BHXH một lần thì thời gian đã đóng không còn được tính cho lương hưu hay chế độ nào khác.")
    ctx.cite(cite(71) if scheme == "compulsory" else cite(103), cite(5, 3), cite(119, 2, "a"), cite(23, 6))
    return LumpSum(
        on=on, reason=reason, scheme=scheme, eligible=eligible, eligibility=eligibility, total_months=total,
        under_one_year=total < 12, years_before_2014_counted=_num(yb), years_from_2014_counted=_num(ya),
        months_of_base=float(months_of_base), average_base=int(base), gross_amount=gross,
        support_deducted=support, amount=amount, pension_rate_if_kept=rates,
        missing_months_for_pension=missing, steps=steps, sources=ctx.sources, notes=ctx.notes)


def _lump_sum_eligibility(
    ctx: _Context, reason: str, scheme: str, total: int, before_cutoff: bool
) -> tuple[bool, str]:
    point, label = REASONS[reason]
    ctx.cite(cite(70 if scheme == "compulsory" else 102, 1, point))
    cutoff = format_date(LAW_IN_FORCE)
    if reason == "stopped_12_months":
        if not before_cutoff:
            others = "; ".join(lbl for key, (_, lbl) in REASONS.items() if key != reason)
            return False, (f"Không đủ điều kiện: người bắt đầu đóng BHXH từ ngày {cutoff} không được rút một lần "
                           f"chỉ vì nghỉ đóng 12 tháng; chỉ được rút khi {others}.")
        if total >= TRANSITIONAL_MAX_YEARS * 12:
            return False, (f"Không đủ điều kiện: trường hợp nghỉ đóng 12 tháng chỉ áp dụng khi có thời gian đóng "
                           f"trước {cutoff} và tổng thời gian đóng chưa đủ {TRANSITIONAL_MAX_YEARS} năm; bạn đã "
                           f"đóng {format_duration(total)}.")
        return True, (f"Đủ điều kiện ({label}): có thời gian đóng trước {cutoff}, sau 12 tháng không đóng và "
                      f"tổng thời gian đóng chưa đủ {TRANSITIONAL_MAX_YEARS} năm.")
    if reason == "retirement_age_under_15_years":
        min_years = ctx.value("min_pension_years", False)
        if total >= int(min_years) * 12:
            return False, (f"Không đủ điều kiện: bạn đã có từ đủ {_n(min_years)} năm đóng nên khi đủ tuổi được "
                           "hưởng lương hưu, không thuộc trường hợp rút một lần vì chưa đủ năm đóng.")
        ctx.cite(cite(23, 1))
        return True, (f"Đủ điều kiện ({label}); thay vì rút một lần, bạn có thể chọn trợ cấp hằng tháng từ "
                      "chính khoản đã đóng.")
    ctx.cite(cite(70, 6) if scheme == "compulsory" else cite(102, 5))
    return True, f"Đủ điều kiện ({label}); nếu cũng đủ điều kiện lương hưu thì được chọn lương hưu hoặc một lần."


# ---------------------------------------------------------------- survivors (tử tuất)

STATUSES: dict[str, str] = {
    "contributing": "đang đóng BHXH",
    "reserved": "đã nghỉ việc, đang bảo lưu thời gian đóng",
    "retired": "đang hưởng lương hưu",
}
SURVIVOR_SCHEMES: dict[str, str] = {**SCHEMES, "both": "vừa BHXH bắt buộc vừa BHXH tự nguyện"}


def _survivor_lump(steps: list[str], months: Decimal, amount: Decimal | None, amount_name: str) -> int | None:
    """The one-time survivor benefit, `months` × `amount` (a pension or the average wage), with its step; when
    the amount is not known, a step asking for it (named by `amount_name`) and None."""
    if amount is None:
        steps.append(f"Cho biết {amount_name} để tính ra số tiền.")
        return None
    lump = whole_dong(months * amount)
    steps.append(f"Tuất một lần = {_n(months)} × {_m(amount)} = {_m(lump)}.")
    return lump


@dataclass(frozen=True)
class SurvivorBenefits:
    on: dt.date  # the date of death: the reference level of that month applies
    status: str
    scheme: str
    total_months: int
    compulsory_months: int
    funeral_eligible: bool
    funeral_allowance: int  # 0 when not eligible
    lump_sum: int | None  # trợ cấp tuất một lần (None when the figures to compute it are missing)
    lump_sum_months_of_base: float | None  # in months of the average base (or of the pension)
    monthly_eligible: bool  # the deceased's record allows a monthly survivor benefit
    monthly_per_relative: int
    monthly_per_relative_no_carer: int
    relatives_counted: int
    monthly_total: int | None  # for the relatives given; None when none were given
    monthly_start: dt.date | None
    work_death_allowance: int  # OSH Law Art. 53 (36 × the base salary) when death was from work
    steps: list[str]
    sources: list[str]
    notes: list[str]


def survivor_benefits(
    status: str,
    on: dt.date,
    *,
    scheme: str = "compulsory",
    years_before_2014: int = 0,
    months_before_2014: int = 0,
    years_from_2014: int = 0,
    months_from_2014: int = 0,
    average_base: float | None = None,
    compulsory_years: int | None = None,
    compulsory_months: int = 0,
    pension: float | None = None,
    months_on_pension: int | None = None,
    relatives: int = 0,
    relatives_no_carer: int = 0,
    died_at_work: bool = False,
    table: ParameterTable | None = None,
) -> SurvivorBenefits:
    """Funeral allowance, one-time and monthly survivor benefits when an insured person dies on `on`.

    Contributing or reserved (Điều 88 khoản 1 điểm a, Điều 89 khoản 1; voluntary:
    Điều 110 khoản 2): 1.5 months of the average base per year before 2014, 2 per
    year from 2014 (odd months before 2014 move to the later period; odd months
    count ½ or 1 year, Điều 5 khoản 6); at least 3 months for compulsory (and
    mixed, Điều 110 khoản 3) records; a voluntary record under 60 months gets
    what was paid (estimated as rate × base × months). Pensioner (Điều 89 khoản
    2, Điều 110 khoản 4): 48 months of pension, 0.5 month less per month drawn
    from the third, at least 3. Monthly (Điều 86, 87): ≥ 15 compulsory years, a
    compulsory pensioner, or death from work; 50% (70% without a carer) of the
    reference level per relative, at most 4 relatives.
    """
    ctx = _Context(table, on)
    _check_choice(status, STATUSES, "Tình trạng của người chết")
    _check_choice(scheme, SURVIVOR_SCHEMES, "Loại hình BHXH")
    before = _check_duration(years_before_2014, months_before_2014, " trước năm 2014")
    after = _check_duration(years_from_2014, months_from_2014, " từ năm 2014")
    total = before + after
    n_relatives = _check_int(relatives, "Số thân nhân hưởng tuất hằng tháng", 0, 20)
    n_no_carer = _check_int(relatives_no_carer, "Số thân nhân không có người trực tiếp nuôi dưỡng", 0, 20)
    if scheme == "both":
        if compulsory_years is None:
            raise CalculatorInputError("Người vừa đóng bắt buộc vừa đóng tự nguyện: hãy cho biết số năm đóng "
                                       "BHXH bắt buộc (để xét trợ cấp mai táng và tuất hằng tháng).")
        compulsory = _check_duration(compulsory_years, compulsory_months, " BHXH bắt buộc")
        if compulsory > total:
            raise CalculatorInputError(f"Thời gian đóng bắt buộc ({format_duration(compulsory)}) không thể dài "
                                       f"hơn tổng thời gian đóng ({format_duration(total)}).")
    else:
        compulsory = total if scheme == "compulsory" else 0
    if status != "retired" and total == 0 and not died_at_work:
        raise CalculatorInputError("Hãy cho biết thời gian người mất đã đóng BHXH (ít nhất 1 tháng).")
    base = _check_money(average_base, "Mức bình quân tiền lương làm căn cứ đóng") \
        if average_base is not None else None
    pension_amount = _check_money(pension, "Lương hưu hằng tháng") if pension is not None else None
    drawn = _check_int(months_on_pension, "Số tháng đã hưởng lương hưu", 0, 12 * 80) \
        if months_on_pension is not None else None
    reference = ctx.value("reference_level")
    steps = [f"Người mất {STATUSES[status]}, tham gia {SURVIVOR_SCHEMES[scheme]}; mất vào tháng "
             f"{on.month:02d}/{on.year} nên tính theo mức tham chiếu của tháng đó: {_m(reference)} "
             "(Điều 85 khoản 2, Điều 89 khoản 4)."]
    ctx.cite(cite(85, 2), cite(89, 4))

    # funeral allowance (Điều 85; Điều 109; Nghị định 158/2025/NĐ-CP, Điều 21, khoản 2)
    multiple = ctx.value("funeral_allowance_multiple", False)
    min_compulsory = int(ctx.value("funeral_min_months_compulsory", False))
    min_voluntary = int(ctx.value("funeral_min_months_voluntary", False))
    if status == "retired":
        funeral_ok, why = True, "người đang hưởng lương hưu"
        ctx.cite(cite(85, 1, "c") if scheme != "voluntary" else cite(109, 1, "b"))
    elif died_at_work:
        funeral_ok, why = True, "chết do tai nạn lao động, bệnh nghề nghiệp"
        ctx.cite(cite(85, 1, "b"))
    elif compulsory >= min_compulsory:
        funeral_ok, why = True, f"có từ đủ {min_compulsory} tháng đóng BHXH bắt buộc"
        ctx.cite(cite(85, 1, "a"))
    elif scheme != "compulsory" and total >= min_voluntary:
        funeral_ok, why = True, f"có từ đủ {min_voluntary} tháng đóng BHXH"
        ctx.cite(cite(109, 1, "a"))
    else:
        funeral_ok = False
        why = (f"chưa đủ {min_compulsory} tháng đóng BHXH bắt buộc" if scheme == "compulsory" else
               f"chưa đủ {min_compulsory} tháng đóng bắt buộc hoặc {min_voluntary} tháng đóng BHXH")
        ctx.cite(cite(85, 1, "a") if scheme == "compulsory" else cite(109, 1, "a"))
    if scheme == "both":
        ctx.cite("Nghị định 158/2025/NĐ-CP, Điều 21, khoản 2")
    funeral = whole_dong(multiple * reference) if funeral_ok else 0
    if funeral_ok:
        steps.append(f"Trợ cấp mai táng ({why}): {_n(multiple)} × {_m(reference)} = {_m(funeral)}, trả một lần "
                     "cho người lo mai táng.")
        ctx.cite(cite(85, 2) if scheme != "voluntary" else cite(109, 2))
    else:
        steps.append(f"Không có trợ cấp mai táng từ quỹ BHXH vì {why}.")

    # monthly survivor benefit: does the record allow it?
    min_monthly = int(ctx.value("survivor_monthly_min_years", False))
    if died_at_work:
        monthly_ok, monthly_why = True, "chết do tai nạn lao động, bệnh nghề nghiệp"
        ctx.cite(cite(86, 1, "c"))
    elif scheme == "voluntary":
        monthly_ok = False
        monthly_why = "người chỉ tham gia BHXH tự nguyện thì thân nhân chỉ hưởng tuất một lần"
        ctx.cite(cite(110, 1))
    elif status == "retired":
        monthly_ok = compulsory >= min_monthly * 12 or scheme == "compulsory"
        monthly_why = "người đang hưởng lương hưu" if monthly_ok else \
            f"lương hưu không dựa trên đủ {min_monthly} năm đóng BHXH bắt buộc"
        ctx.cite(cite(86, 1, "b"))
    else:
        monthly_ok = compulsory >= min_monthly * 12
        monthly_why = (f"có {format_duration(compulsory)} đóng BHXH bắt buộc, từ đủ {min_monthly} năm" if monthly_ok
                       else f"mới có {format_duration(compulsory)} đóng BHXH bắt buộc, chưa đủ {min_monthly} năm")
        ctx.cite(cite(86, 1, "a"))
    if scheme == "both":
        ctx.cite(cite(111, 1, "b"))
    per, per_no_carer = ctx.value("survivor_monthly_rate", False), ctx.value("survivor_monthly_rate_no_carer", False)
    per_amount, per_amount_no_carer = whole_dong(per / 100 * reference), whole_dong(per_no_carer / 100 * reference)
    max_relatives = int(ctx.value("survivor_monthly_max_relatives", False))
    counted = min(n_relatives + n_no_carer, max_relatives)
    counted_no_carer = min(n_no_carer, counted)
    monthly_total = None
    monthly_start = add_months(on.replace(day=1), 1) if monthly_ok else None
    if monthly_ok:
        steps.append(f"Tuất hằng tháng: người mất đủ điều kiện ({monthly_why}). Mỗi thân nhân đủ điều kiện "
                     f"(con dưới 18 tuổi; vợ/chồng, cha mẹ đủ tuổi nghỉ hưu hoặc suy giảm khả năng lao động từ 81%, "
                     f"không có thu nhập từ mức tham chiếu trở lên) được {_p(per)} × {_m(reference)} = "
                     f"{_m(per_amount)}/tháng; thân nhân không có người trực tiếp nuôi dưỡng được {_p(per_no_carer)} "
                     f"= {_m(per_amount_no_carer)}/tháng; tối đa {max_relatives} người, hưởng từ ngày "
                     f"{format_date(monthly_start or on)}.")
        ctx.cite(cite(86, 2), cite(86, 3), cite(87, 1), cite(87, 2), cite(87, 3))
        if counted:
            monthly_total = per_amount * (counted - counted_no_carer) + per_amount_no_carer * counted_no_carer
            extra = (f" (có {n_relatives + n_no_carer} người nhưng chỉ tính tối đa {max_relatives})"
                     if n_relatives + n_no_carer > max_relatives else "")
            steps.append(f"Với {counted} thân nhân{extra}: {counted - counted_no_carer} × {_m(per_amount)}"
                         + (f" + {counted_no_carer} × {_m(per_amount_no_carer)}" if counted_no_carer else "")
                         + f" = {_m(monthly_total)}/tháng.")
    else:
        steps.append(f"Không có tuất hằng tháng: {monthly_why}.")

    # one-time survivor benefit
    lump: int | None = None
    lump_months: Decimal | None = None
    if status == "retired":
        ctx.cite(cite(89, 2) if scheme != "voluntary" else cite(110, 4))
        top = ctx.value("survivor_pensioner_max_months", False)
        cut = ctx.value("survivor_pensioner_monthly_cut", False)
        floor = ctx.value("survivor_lump_sum_min_months", False)
        if drawn is None:
            steps.append(f"Tuất một lần: {_n(top)} tháng lương hưu nếu chết trong 2 tháng đầu hưởng lương hưu, từ "
                         f"tháng thứ ba mỗi tháng giảm {_n(cut)} tháng, thấp nhất {_n(floor)} tháng lương hưu; cho "
                         "biết đã hưởng lương hưu bao lâu và mức lương hưu để tính ra số tiền.")
        else:
            lump_months = max(floor, top - cut * max(0, drawn - 2))
            shown = (f"chết trong 2 tháng đầu: {_n(top)} tháng" if drawn <= 2 else
                     f"{_n(top)} − {_n(cut)} × ({drawn} − 2) = {_n(top - cut * (drawn - 2))} tháng"
                     + (f", thấp hơn mức tối thiểu nên lấy {_n(floor)} tháng" if lump_months == floor else ""))
            steps.append(f"Tuất một lần: đã hưởng lương hưu {format_duration(drawn)} → {shown} lương hưu.")
            lump = _survivor_lump(steps, lump_months, pension_amount, "mức lương hưu đang hưởng")
    else:
        article, clause = (89, 1) if scheme != "voluntary" else (110, 2)
        refund_months = int(ctx.value("survivor_voluntary_refund_months", False))
        if scheme == "voluntary" and total < refund_months:
            rate = ctx.value("voluntary_rate", False)
            ctx.cite(cite(110, 2, "c"))
            if base is not None:
                lump = whole_dong(rate / 100 * base * total)
                lump_months = Decimal(lump) / base
                steps.append(f"Tuất một lần: đóng {format_duration(total)}, chưa đủ {refund_months} tháng nên bằng số "
                             f"tiền đã đóng, ước tính {_p(rate)} × {_m(base)} × {total} tháng = {_m(lump)}.")
            else:
                steps.append(f"Tuất một lần: đóng chưa đủ {refund_months} tháng nên bằng số tiền đã đóng.")
        else:
            per_before = ctx.value("survivor_lump_sum_months_before_2014", False)
            per_after = ctx.value("survivor_lump_sum_months_from_2014", False)
            moved, before, after, yb, ya = split_years_at_2014(before, after)
            if moved:
                steps.append(f"{moved} tháng lẻ trước năm 2014 được chuyển sang giai đoạn từ năm 2014.")
            lump_months = per_before * yb + per_after * ya
            parts = []
            if before:
                parts.append(f"trước 2014: {format_duration(before)} tính là {format_years(yb)} × {_n(per_before)}")
            if after:
                parts.append(f"từ 2014: {format_duration(after)} tính là {format_years(ya)} × {_n(per_after)}")
            text = "; ".join(parts) + f" → {_n(lump_months)} tháng mức bình quân"
            ctx.cite(cite(article, clause, "a"), cite(article, clause, "b"), cite(5, 6))
            floor = ctx.value("survivor_lump_sum_min_months", False)
            if scheme != "voluntary" and lump_months < floor:
                text += f", thấp hơn mức tối thiểu nên lấy {_n(floor)} tháng"
                lump_months = floor
                ctx.cite(cite(89, 1) if scheme == "compulsory" else cite(110, 3))
            steps.append(f"Tuất một lần (tháng lẻ 1–6 tính nửa năm, 7–11 tính một năm): {text}.")
            lump = _survivor_lump(steps, lump_months, base,
                                  "mức bình quân tiền lương (thu nhập) làm căn cứ đóng BHXH")
    if monthly_ok:
        steps.append("Thân nhân đủ điều kiện hưởng tuất hằng tháng có thể chọn tuất một lần thay cho hằng tháng; "
                     "nếu không có thân nhân đủ điều kiện hằng tháng thì gia đình nhận tuất một lần.")
        ctx.cite(cite(88, 2, "b"), cite(88, 2, "c"))
    else:
        ctx.cite(cite(88, 2, "a") if scheme != "voluntary" else cite(110, 1))

    work_allowance = 0
    if died_at_work:
        work_multiple = ctx.value("oa_death_lump_sum_multiple")
        work_allowance = whole_dong(work_multiple * reference)
        steps.append(f"Chết do tai nạn lao động, bệnh nghề nghiệp: thân nhân còn được trợ cấp một lần "
                     f"{_n(work_multiple)} × mức lương cơ sở (bằng mức tham chiếu) = {_m(work_allowance)}.")
    if scheme == "both":
        ctx.cite("Nghị định 158/2025/NĐ-CP, Điều 21, khoản 5, điểm a")
        ctx.notes.append("Với người vừa đóng bắt buộc vừa đóng tự nguyện, mức bình quân là bình quân chung tiền lương "
                         "và thu nhập đã đóng, do cơ quan BHXH tính.")
    ctx.notes.append("Số tiền thực nhận do cơ quan BHXH tính trên hồ sơ (mức bình quân đã điều chỉnh theo chỉ số "
                     "giá); hồ sơ nộp trong 90 ngày kể từ ngày người lao động mất.")
    ctx.cite(cite(91) if scheme != "voluntary" else cite(112, 2))
    return SurvivorBenefits(
        on=on, status=status, scheme=scheme, total_months=total, compulsory_months=compulsory,
        funeral_eligible=funeral_ok, funeral_allowance=funeral, lump_sum=lump,
        lump_sum_months_of_base=None if lump_months is None else float(lump_months),
        monthly_eligible=monthly_ok, monthly_per_relative=per_amount, monthly_per_relative_no_carer=per_amount_no_carer,
        relatives_counted=counted, monthly_total=monthly_total, monthly_start=monthly_start,
        work_death_allowance=work_allowance, steps=steps, sources=ctx.sources, notes=ctx.notes)


# ---------------------------------------------------------------- maternity (thai sản)

ROLES: dict[str, str] = {"mother": "lao động nữ sinh con", "father": "lao động nam có vợ sinh con"}
SECOND_CHILD_RULE_FROM = dt.date(2026, 7, 1)  # Population Law 2025 (not held): see the rows' basis
SECOND_CHILD_SOURCE = "Luật 113/2025/QH15 (Luật Dân số; theo nguồn thứ cấp, chưa có văn bản gốc)"
MAX_BABIES = 6


@dataclass(frozen=True)
class MaternityBenefit:
    on: dt.date  # the birth date: the reference level of the birth month applies
    role: str
    scheme: str
    babies: int
    eligible: bool | None  # None when the months paid in the last 12 months were not given
    lump_sum: int  # trợ cấp một lần khi sinh con (compulsory) or trợ cấp thai sản (voluntary)
    average_salary: int | None
    leave_months: int | None  # mother: months of leave under the held texts (Labour Code Art. 139)
    leave_days: int | None  # father: working days
    leave_pay: int | None  # trợ cấp thai sản for the leave
    second_child_leave: int | None  # months (mother) or days (father) under the 2026 rule, if it may apply
    second_child_leave_pay: int | None
    total: int | None  # lump sum + leave pay (held-text leave)
    steps: list[str]
    sources: list[str]
    notes: list[str]


def maternity_benefit(
    on: dt.date,
    average_salary: float | None = None,
    *,
    role: str = "mother",
    scheme: str = "compulsory",
    babies: int = 1,
    child_order: int | None = None,
    caesarean: bool = False,
    premature: bool = False,
    months_paid_in_12: int | None = None,
    mother_qualifies: bool = True,
    table: ParameterTable | None = None,
) -> MaternityBenefit:
    """Maternity benefit for a birth on `on`.

    Compulsory, mother (Điều 50 khoản 2, Điều 53 khoản 1, Điều 58, Điều 59):
    2 × the reference level per baby, plus 100% of the average salary of the
    last 6 months × the leave (6 months, +1 per baby from the second, Labour Code
    Art. 139). Father (Điều 53 khoản 2, Điều 59 khoản 2): 5/7/10/14 working days,
    a day = average / 24; he gets the lump sum only if the mother does not
    qualify (Điều 58 khoản 1). Voluntary (Điều 94, 95): a flat amount per baby.
    A second child born from 1/7/2026 is reported to get longer leave (Population
    Law 2025, not held): both figures are shown and the longer one is flagged.
    """
    ctx = _Context(table, on)
    _check_choice(role, ROLES, "Người hưởng")
    _check_choice(scheme, SCHEMES, "Loại hình BHXH")
    n = _check_int(babies, "Số con sinh ra trong lần sinh", 1, MAX_BABIES)
    order = _check_int(child_order, "Con thứ mấy", 1, 20) if child_order is not None else None
    paid = _check_int(months_paid_in_12, "Số tháng đã đóng trong 12 tháng trước khi sinh", 0, 12) \
        if months_paid_in_12 is not None else None
    salary = _check_money(average_salary, "Bình quân tiền lương đóng BHXH 6 tháng gần nhất") \
        if average_salary is not None else None
    reference = ctx.value("reference_level")
    steps: list[str] = []
    need = int(ctx.value("maternity_min_months_in_12", False))
    eligible = None if paid is None else paid >= need
    condition = (f"đóng BHXH {'bắt buộc ' if scheme == 'compulsory' else ''}từ đủ {need} tháng trở lên trong 12 "
                 "tháng trước khi sinh con")
    if eligible is None:
        steps.append(f"Điều kiện: {condition} (bạn chưa cho biết, nên kết quả dưới đây giả định đã đủ).")
    elif eligible:
        steps.append(f"Điều kiện: {condition} — bạn đã đóng {paid} tháng nên đủ điều kiện.")
    else:
        steps.append(f"Chưa đủ điều kiện: cần {condition}; bạn mới đóng {paid} tháng." + (
            " Nếu đã đóng đủ 12 tháng trở lên và phải nghỉ dưỡng thai theo chỉ định thì chỉ cần đủ 3 tháng "
            "(Điều 50 khoản 3)." if scheme == "compulsory" and role == "mother" else ""))
    ctx.cite(cite(50, 2) if scheme == "compulsory" else cite(94, 1))
    if eligible is False:
        return MaternityBenefit(on=on, role=role, scheme=scheme, babies=n, eligible=False, lump_sum=0,
                                average_salary=None if salary is None else int(salary), leave_months=None,
                                leave_days=None, leave_pay=None, second_child_leave=None,
                                second_child_leave_pay=None, total=0, steps=steps, sources=ctx.sources,
                                notes=ctx.notes)
    second_rule_applies = on >= SECOND_CHILD_RULE_FROM and order in (2, None)

    if scheme == "voluntary":
        per_child = ctx.value("voluntary_maternity_allowance")
        lump = whole_dong(per_child * n)
        steps.append(f"BHXH tự nguyện: trợ cấp thai sản {_m(per_child)} cho mỗi con × {n} = {_m(lump)}.")
        ctx.notes.append("Nếu cả cha và mẹ cùng đủ điều kiện thì chỉ một người được hưởng; nếu đủ điều kiện cả "
                         "BHXH bắt buộc thì hưởng theo BHXH bắt buộc (Điều 94 khoản 3, 4).")
        ctx.cite(cite(94, 3), cite(94, 4))
        return MaternityBenefit(on=on, role=role, scheme=scheme, babies=n, eligible=eligible, lump_sum=lump,
                                average_salary=None, leave_months=None, leave_days=None, leave_pay=None,
                                second_child_leave=None, second_child_leave_pay=None, total=lump, steps=steps,
                                sources=ctx.sources, notes=ctx.notes)

    multiple = ctx.value("childbirth_lump_sum_multiple", False)
    gets_lump = role == "mother" or not mother_qualifies
    lump = whole_dong(multiple * reference * n) if gets_lump else 0
    if gets_lump:
        who = "" if role == "mother" else " (người mẹ không đủ điều kiện nên người cha nhận)"
        steps.append(f"Trợ cấp một lần khi sinh con{who}: {_n(multiple)} × mức tham chiếu tháng sinh "
                     f"{_m(reference)} × {n} con = {_m(lump)}.")
        ctx.cite(cite(58, 1), cite(58, 4))
    else:
        steps.append("Trợ cấp một lần khi sinh con do người mẹ nhận (người cha chỉ nhận khi người mẹ không đủ "
                     "điều kiện).")
        ctx.cite(cite(58, 1))
    if salary is not None:
        ceiling = ctx.value("wage_ceiling_multiple", False) * reference
        if salary > ceiling:
            steps.append(f"Tiền lương đóng BHXH không vượt quá {_m(ceiling)} (20 lần mức tham chiếu) nên lấy mức này.")
            salary = Decimal(whole_dong(ceiling))
            ctx.cite(cite(31, 1))
    rate = ctx.value("maternity_benefit_rate", False)
    ctx.cite(cite(59, 1))
    leave_months = leave_days = leave_pay = second = second_pay = None

    if role == "mother":
        months = ctx.value("maternity_leave_months")
        extra = ctx.value("maternity_leave_extra_months_per_baby", False)
        leave_months = int(months + extra * (n - 1))
        ctx.cite(cite(53, 1))
        twins = f" + {_n(extra)} tháng × {n - 1} con từ con thứ hai" if n > 1 else ""
        total_text = f"{_n(months)} tháng{twins} = {leave_months} tháng" if n > 1 else f"{leave_months} tháng"
        steps.append(f"Thời gian nghỉ sinh con: {total_text} (Bộ luật Lao động, "
                     "Điều 139 khoản 1; tính cả ngày lễ, tết, nghỉ hằng tuần).")
        if salary is not None:
            monthly = whole_dong(rate / 100 * salary)
            leave_pay = monthly * leave_months
            steps.append(f"Trợ cấp thai sản mỗi tháng = {_p(rate)} × bình quân tiền lương 6 tháng {_m(salary)} = "
                         f"{_m(monthly)}; cả {leave_months} tháng = {_m(leave_pay)}.")
        if second_rule_applies:
            new_months = ctx.table.value("maternity_leave_months_second_child", on)
            second = int(Decimal(str(new_months)) + extra * (n - 1))
            text = (f"Sinh con thứ hai từ 01/07/2026: Luật Dân số 2025 được đưa tin là nâng thời gian nghỉ lên "
                    f"{_n(new_months)} tháng; chúng tôi chưa có văn bản gốc nên chưa khẳng định, bạn hỏi cơ quan "
                    "BHXH (1900 9068) để chắc chắn")
            if salary is not None:
                second_pay = whole_dong(rate / 100 * salary) * second
                text += f". Nếu đúng, nghỉ {second} tháng và trợ cấp là {_m(second_pay)}"
            steps.append(text + ("." if order == 2 else " (nếu đây là con thứ hai)."))
            ctx.cite(SECOND_CHILD_SOURCE)
        ctx.notes.append("Sau khi hết nghỉ sinh, trong 30 ngày đầu đi làm mà sức khỏe chưa phục hồi thì có thể được "
                         f"nghỉ dưỡng sức 5–10 ngày, mỗi ngày {_p(ctx.value('recovery_leave_daily_rate', False))} mức "
                         "tham chiếu (Điều 60).")
        ctx.cite(cite(60, 2), cite(60, 3))
    else:
        if n >= 2:
            days = ctx.value("paternity_leave_days_twins_surgery" if caesarean else "paternity_leave_days_twins",
                             False)
            days += ctx.value("paternity_leave_extra_days_per_baby", False) * (n - 2)
            point = "d" if caesarean else "c"
        else:
            days = ctx.value("paternity_leave_days_surgery" if caesarean or premature else "paternity_leave_days",
                             False)
            point = "b" if caesarean or premature else "a"
        leave_days = int(days)
        ctx.cite(cite(53, 2, point), cite(53, 3), cite(59, 2))
        divisor = ctx.value("daily_benefit_divisor", False)
        steps.append(f"Thời gian nghỉ của người chồng: {leave_days} ngày làm việc, trong 60 ngày kể từ ngày vợ sinh.")
        if salary is not None:
            daily = rate / 100 * salary / divisor
            leave_pay = whole_dong(daily * leave_days)
            steps.append(f"Trợ cấp một ngày = {_p(rate)} × {_m(salary)} ÷ {_n(divisor)} = {_m(whole_dong(daily))}; "
                         f"{leave_days} ngày = {_m(leave_pay)}.")
        if second_rule_applies and n == 1 and not (caesarean or premature):
            new_days = int(ctx.table.value("paternity_leave_days_second_child", on))
            text = (f"Vợ sinh con thứ hai từ 01/07/2026: được đưa tin là người chồng được nghỉ {new_days} ngày làm "
                    "việc (Luật Dân số 2025, chúng tôi chưa có văn bản gốc)")
            second = new_days
            if salary is not None:
                second_pay = whole_dong(rate / 100 * salary / divisor * new_days)
                text += f"; nếu đúng, trợ cấp là {_m(second_pay)}"
            steps.append(text + ("." if order == 2 else " (nếu đây là con thứ hai)."))
            ctx.cite(SECOND_CHILD_SOURCE)
    if salary is None:
        steps.append("Cho biết bình quân tiền lương đóng BHXH 6 tháng gần nhất để tính tiền trợ cấp thời gian nghỉ.")
    total = lump + leave_pay if leave_pay is not None else None
    if total is not None:
        steps.append(f"Tổng cộng (theo quy định đã có văn bản): {_m(lump)} + {_m(leave_pay or 0)} = {_m(total)}.")
    ctx.notes.append("Thời gian nghỉ sinh con được tính là thời gian đóng BHXH; người lao động và công ty không phải "
                     "đóng cho thời gian này (Điều 53 khoản 8).")
    ctx.cite(cite(53, 8))
    return MaternityBenefit(
        on=on, role=role, scheme=scheme, babies=n, eligible=eligible, lump_sum=lump,
        average_salary=None if salary is None else int(salary), leave_months=leave_months, leave_days=leave_days,
        leave_pay=leave_pay, second_child_leave=second, second_child_leave_pay=second_pay, total=total,
        steps=steps, sources=ctx.sources, notes=ctx.notes)


# ---------------------------------------------------------------- sickness (ốm đau)

SICKNESS_KINDS: dict[str, str] = {
    "own": "bản thân ốm đau, tai nạn (không phải tai nạn lao động)",
    "long_term": "mắc bệnh thuộc danh mục bệnh cần chữa trị dài ngày",
    "child": "nghỉ chăm con dưới 7 tuổi ốm đau",
}
CHILD_SICK_AGE_LIMIT = 7  # Điều 42 khoản 1 điểm e: "con dưới 07 tuổi"
CHILD_SICK_YOUNG_AGE = 3  # Điều 44 khoản 1: "con dưới 03 tuổi"
OSH = "Luật 84/2015/QH13"


@dataclass(frozen=True)
class SicknessBenefit:
    on: dt.date
    kind: str
    salary: int
    days: int
    annual_limit: int  # working days a year at the ordinary rate
    days_at_full_rate: int  # days paid at 75%
    days_at_long_term_rate: int  # long-term illness days beyond the annual limit
    days_unpaid: int
    rate_percent: float | int
    long_term_rate_percent: float | int | None
    daily_amount: int  # at the ordinary rate
    amount: int
    steps: list[str]
    sources: list[str]
    notes: list[str]


def sickness_benefit(
    on: dt.date,
    salary: float,
    days: int,
    *,
    kind: str = "own",
    years_paid: int = 0,
    months_paid: int = 0,
    heavy_work: bool = False,
    days_used: int = 0,
    child_age: int | None = None,
    table: ParameterTable | None = None,
) -> SicknessBenefit:
    """Sickness benefit for `days` working days off (Điều 43–45).

    A day is 75% of last month's contribution salary ÷ 24; the days a year at
    that rate depend on the years paid (30/40/60, or 40/50/70 in heavy work) or,
    for a sick child, on its age (20 under 3, 15 from 3 to under 7). Long-term
    illness continues beyond the annual limit at 65% / 55% / 50% by years paid.
    """
    ctx = _Context(table, on)
    _check_choice(kind, SICKNESS_KINDS, "Trường hợp nghỉ ốm")
    pay = _check_money(salary, "Tiền lương đóng BHXH tháng gần nhất")
    n_days = _check_int(days, "Số ngày nghỉ (ngày làm việc)", 1, 366)
    used = _check_int(days_used, "Số ngày đã nghỉ hưởng chế độ trong năm", 0, 366)
    total = _check_duration(years_paid, months_paid)
    reference = ctx.value("reference_level")
    steps: list[str] = []
    ceiling = ctx.value("wage_ceiling_multiple", False) * reference
    if pay > ceiling:
        steps.append(f"Tiền lương đóng BHXH không vượt quá {_m(ceiling)} (20 lần mức tham chiếu) nên lấy mức này.")
        pay = Decimal(whole_dong(ceiling))
        ctx.cite(cite(31, 1))
    mid, high = int(ctx.value("sickness_years_mid", False)), int(ctx.value("sickness_years_high", False))
    band = "low" if total < mid * 12 else "mid" if total < high * 12 else "high"
    band_text = {"low": f"dưới {mid} năm", "mid": f"từ đủ {mid} đến dưới {high} năm",
                 "high": f"từ đủ {high} năm trở lên"}[band]
    if kind == "child":
        if child_age is None:
            raise CalculatorInputError("Hãy cho biết tuổi của con (dưới 7 tuổi) để tính số ngày được nghỉ chăm con ốm.")
        age = _check_int(child_age, "Tuổi của con", 0, 17)
        if age >= CHILD_SICK_AGE_LIMIT:
            raise CalculatorInputError(f"Chế độ chăm con ốm chỉ áp dụng khi con dưới {CHILD_SICK_AGE_LIMIT} tuổi; "
                                       f"con bạn {age} tuổi.")
        limit = int(ctx.value("child_sick_days_under_3" if age < CHILD_SICK_YOUNG_AGE else "child_sick_days_under_7",
                              False))
        steps.append(f"Con {age} tuổi: mỗi năm được nghỉ tối đa {limit} ngày làm việc cho mỗi con (nếu cả cha và mẹ "
                     "cùng đóng BHXH thì mỗi người đều được).")
        ctx.cite(cite(42, 1, "e"), cite(44, 1), cite(44, 2))
    else:
        name = f"sickness_days_{'heavy' if heavy_work else 'normal'}_{band}"
        limit = int(ctx.value(name, False))
        work = "nghề nặng nhọc, độc hại hoặc vùng đặc biệt khó khăn" if heavy_work else "điều kiện bình thường"
        steps.append(f"Đóng BHXH bắt buộc {format_duration(total)} ({band_text}), làm việc trong {work}: mỗi năm được "
                     f"nghỉ hưởng chế độ ốm đau tối đa {limit} ngày làm việc (không kể lễ, tết, nghỉ hằng tuần).")
        ctx.cite(cite(42, 1), cite(43, 1, "b" if heavy_work else "a"))
    remaining = max(0, limit - used)
    full_days = min(n_days, remaining)
    rest = n_days - full_days
    if used:
        steps.append(f"Trong năm đã nghỉ {used} ngày nên còn {remaining} ngày.")
    rate = ctx.value("sickness_benefit_rate", False)
    divisor = ctx.value("daily_benefit_divisor", False)
    daily = rate / 100 * pay / divisor
    ctx.cite(cite(45, 1, "a"), cite(45, 2), cite(45, 5))
    amount = whole_dong(daily * full_days)
    steps.append(f"Trợ cấp một ngày = {_p(rate)} × {_m(pay)} ÷ {_n(divisor)} = {_m(whole_dong(daily))}; "
                 f"{full_days} ngày = {_m(amount)}.")
    long_rate: Decimal | None = None
    long_days = unpaid = 0
    if rest and kind == "long_term":
        long_rate = ctx.value(f"sickness_long_term_rate_{band}", False)
        long_days = rest
        long_amount = whole_dong(long_rate / 100 * pay / divisor * long_days)
        steps.append(f"Bệnh cần chữa trị dài ngày, {long_days} ngày vượt {limit} ngày được hưởng tiếp {_p(long_rate)} "
                     f"(đóng {band_text}): {_p(long_rate)} × {_m(pay)} ÷ {_n(divisor)} × {long_days} = "
                     f"{_m(long_amount)}.")
        amount += long_amount
        ctx.cite(cite(43, 2), cite(45, 3))
    elif rest:
        unpaid = rest
        steps.append(f"{rest} ngày vượt quá số ngày tối đa trong năm không được trợ cấp ốm đau (trừ bệnh thuộc danh "
                     "mục cần chữa trị dài ngày).")
    if rest or full_days != n_days or long_days:
        steps.append(f"Tổng trợ cấp: {_m(amount)}.")
    ctx.notes.append("Tiền lương tính là tiền lương đóng BHXH của tháng liền trước tháng nghỉ; nghỉ dưới nửa ngày tính "
                     "nửa ngày, từ nửa ngày trở lên tính một ngày (Điều 45 khoản 5). Hồ sơ nộp cho công ty trong 45 "
                     "ngày kể từ ngày trở lại làm việc.")
    ctx.cite(cite(48, 1))
    if kind != "child" and n_days >= 30:
        ctx.notes.append("Nghỉ ốm từ 30 ngày trở lên trong năm mà sức khỏe chưa phục hồi thì có thể được nghỉ dưỡng "
                         f"sức 5–10 ngày, mỗi ngày {_p(ctx.value('recovery_leave_daily_rate', False))} mức tham chiếu "
                         "(Điều 46).")
        ctx.cite(cite(46, 1), cite(46, 3))
    return SicknessBenefit(
        on=on, kind=kind, salary=int(pay), days=n_days, annual_limit=limit, days_at_full_rate=full_days,
        days_at_long_term_rate=long_days, days_unpaid=unpaid, rate_percent=_num(rate),
        long_term_rate_percent=None if long_rate is None else _num(long_rate), daily_amount=whole_dong(daily),
        amount=amount, steps=steps, sources=ctx.sources, notes=ctx.notes)


# ---------------------------------------------------------------- occupational accident (tai nạn lao động)


@dataclass(frozen=True)
class OccupationalAllowance:
    on: dt.date  # the month the allowance starts (treatment finished / medical assessment)
    lost_capacity_percent: int
    years_paid: int
    salary: int | None
    kind: str  # "none" | "lump_sum" | "monthly"
    degree_part: int  # the part set by the degree of lost capacity
    years_part: int | None  # the part set by the years paid into the fund (needs the salary)
    attendant_allowance: int
    amount: int | None  # one-time amount, or the monthly amount
    steps: list[str]
    sources: list[str]
    notes: list[str]


def occupational_allowance(
    on: dt.date,
    lost_capacity_percent: int,
    salary: float | None = None,
    years_paid: int = 0,
    *,
    attendant: bool = False,
    table: ParameterTable | None = None,
) -> OccupationalAllowance:
    """Occupational accident / disease allowance (OSH Law 84/2015/QH13, Điều 48, 49, 52).

    5–30% lost capacity: a one-time allowance of 5 × the base salary (+0.5 per
    1% above 5%) plus 0.5 month of salary for the first year paid into the fund
    (+0.3 month per further year). From 31%: a monthly allowance of 30% of the
    base salary (+2% per 1% above 31%) plus 0.5% of salary for the first year
    (+0.3% per further year). From 81% with the listed injuries: + 1 × the base
    salary a month for an attendant. The base salary equals the reference level
    (Law 41/2024 Điều 141 khoản 13); `salary` is that of the month before the accident.
    """
    ctx = _Context(table, on)
    degree = _check_int(lost_capacity_percent, "Mức suy giảm khả năng lao động (%)", 0, 100)
    years = _check_int(years_paid, "Số năm đóng vào quỹ tai nạn lao động, bệnh nghề nghiệp", 0, 70)
    pay = _check_money(salary, "Tiền lương đóng BHXH tháng trước khi bị tai nạn") if salary is not None else None
    reference = ctx.value("reference_level")
    ctx.cite(cite(141, 13))
    minimum = int(ctx.value("oa_min_degree"))
    lump_max = int(ctx.value("oa_lump_sum_max_degree"))
    monthly_min = int(ctx.value("oa_monthly_min_degree"))
    steps = [f"Mức lương cơ sở dùng để tính bằng mức tham chiếu tháng hưởng: {_m(reference)}."]
    counted_years = max(years, 1)
    if degree < minimum:
        steps.append(f"Suy giảm {degree}% khả năng lao động, dưới {minimum}%: không được trợ cấp tai nạn lao động, "
                     "bệnh nghề nghiệp (vẫn được người sử dụng lao động chi trả chi phí y tế và tiền lương ngày nghỉ "
                     "điều trị).")
        return OccupationalAllowance(on=on, lost_capacity_percent=degree, years_paid=years,
                                     salary=None if pay is None else int(pay), kind="none", degree_part=0,
                                     years_part=None, attendant_allowance=0, amount=0, steps=steps,
                                     sources=ctx.sources, notes=ctx.notes)
    years_part: int | None = None
    attendant_amount = 0
    if degree <= lump_max:
        kind = "lump_sum"
        first, step = ctx.value("oa_lump_sum_base_multiple"), ctx.value("oa_lump_sum_step_multiple")
        multiple = first + step * (degree - minimum)
        degree_part = whole_dong(multiple * reference)
        steps.append(f"Suy giảm {degree}% (từ {minimum}% đến {lump_max}%): trợ cấp một lần. Phần theo mức suy giảm = "
                     f"({_n(first)} + {_n(step)} × ({degree} − {minimum})) × {_m(reference)} = {_n(multiple)} × "
                     f"{_m(reference)} = {_m(degree_part)}.")
        y_first, y_step = ctx.value("oa_lump_sum_years_first_months"), ctx.value("oa_lump_sum_years_step_months")
        y_months = y_first + y_step * (counted_years - 1)
        unit = "tháng tiền lương"
        years_rule = f"từ 1 năm trở xuống tính {_n(y_first)} tháng, mỗi năm đóng thêm tính thêm {_n(y_step)} tháng"
        if pay is not None:
            years_part = whole_dong(y_months * pay)
            steps.append(f"Phần theo số năm đóng quỹ ({years} năm; từ 1 năm trở xuống tính {_n(y_first)} tháng, "
                         f"mỗi năm thêm {_n(y_step)} tháng) = {_n(y_months)} {unit} × {_m(pay)} = {_m(years_part)}.")
    else:
        kind = "monthly"
        first, step = ctx.value("oa_monthly_base_rate"), ctx.value("oa_monthly_step_rate")
        rate = first + step * (degree - monthly_min)
        degree_part = whole_dong(rate / 100 * reference)
        steps.append(f"Suy giảm {degree}% (từ {monthly_min}% trở lên): trợ cấp hằng tháng. Phần theo mức suy giảm = "
                     f"({_p(first)} + {_p(step)} × ({degree} − {monthly_min})) × {_m(reference)} = {_p(rate)} × "
                     f"{_m(reference)} = {_m(degree_part)}/tháng.")
        y_first, y_step = ctx.value("oa_monthly_years_first_rate"), ctx.value("oa_monthly_years_step_rate")
        y_rate = y_first + y_step * (counted_years - 1)
        years_rule = f"từ 1 năm trở xuống tính {_p(y_first)}, mỗi năm đóng thêm tính thêm {_p(y_step)}"
        if pay is not None:
            years_part = whole_dong(y_rate / 100 * pay)
            steps.append(f"Phần theo số năm đóng quỹ ({years} năm; từ 1 năm trở xuống tính {_p(y_first)}, mỗi năm thêm "
                         f"{_p(y_step)}) = {_p(y_rate)} × {_m(pay)} = {_m(years_part)}/tháng.")
        if attendant:
            if degree >= 81:
                multiple = ctx.value("oa_attendant_allowance_multiple")
                attendant_amount = whole_dong(multiple * reference)
                steps.append(f"Trợ cấp phục vụ (suy giảm từ 81% và liệt cột sống, mù hai mắt, cụt hoặc liệt hai chi, "
                             f"tâm thần): {_n(multiple)} × {_m(reference)} = {_m(attendant_amount)}/tháng.")
            else:
                steps.append("Trợ cấp phục vụ chỉ dành cho người suy giảm từ 81% trở lên.")
                ctx.cite(f"{OSH}, Điều 52")
    if pay is None:
        steps.append(f"Phần theo số năm đóng quỹ: {years_rule} tiền lương đóng quỹ của tháng trước khi bị tai nạn. "
                     "Cho biết tiền lương đó để tính ra số tiền.")
        amount = None
    else:
        amount = degree_part + (years_part or 0) + attendant_amount
        per = "" if kind == "lump_sum" else "/tháng"
        steps.append(f"Tổng {'trợ cấp một lần' if kind == 'lump_sum' else 'trợ cấp hằng tháng'}: {_m(amount)}{per}.")
    ctx.notes.append("Số năm đóng quỹ được tính theo năm tròn; cách tính tháng lẻ do văn bản hướng dẫn quy định "
                     "(chúng tôi chưa có toàn văn), nên số tiền có thể chênh một ít.")
    ctx.notes.append("Tiền lương làm căn cứ là tiền lương đóng vào quỹ của tháng liền kề trước tháng bị tai nạn "
                     "(hoặc của chính tháng đó nếu bị tai nạn ngay tháng đầu tham gia).")
    ctx.cite(f"{OSH}, Điều 50, khoản 1")
    return OccupationalAllowance(
        on=on, lost_capacity_percent=degree, years_paid=years, salary=None if pay is None else int(pay), kind=kind,
        degree_part=degree_part, years_part=years_part, attendant_allowance=attendant_amount, amount=amount,
        steps=steps, sources=ctx.sources, notes=ctx.notes)
