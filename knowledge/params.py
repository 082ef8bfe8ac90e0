"""The effective-dated parameter table: every regulated figure, once.

Rows live in `knowledge/parameters/*.yaml` (one table split over files by
topic). Answers write `{{name}}` and get the figure valid on the date asked;
calculators call `table.value(name, on)`. Derived figures (20 × the reference
level, 22% × the poverty line, …) are computed here, never typed in an answer.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

PARAMETER_DIR = Path(__file__).parent / "parameters"
KINDS = {"money", "percent", "months", "age_months", "number"}
CONFIDENCE = {"high", "medium", "low"}
PLACEHOLDER = re.compile(r"\{\{\s*([a-z0-9_]+)\s*\}\}")


class ParameterError(ValueError):
    pass


@dataclass(frozen=True)
class Period:
    value: float
    start: dt.date
    end: dt.date | None
    basis: str
    confidence: str = "high"

    def covers(self, on: dt.date) -> bool:
        return self.start <= on and (self.end is None or on <= self.end)


@dataclass(frozen=True)
class Parameter:
    name: str
    label: str
    kind: str
    periods: tuple[Period, ...]
    source_file: str

    def period(self, on: dt.date) -> Period:
        for period in self.periods:
            if period.covers(on):
                return period
        raise ParameterError(f"{self.name}: no value in force on {on.isoformat()}")


def as_date(value: object, where: str) -> dt.date:
    """A YAML date (or ISO text) of a data file; `where` names the place in the file for the error."""
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError as exc:
        raise ParameterError(f"{where}: bad date {value!r}") from exc


def _parse(name: str, raw: object, source: str) -> Parameter:
    where = f"{source}: parameter {name!r}"
    if not isinstance(raw, dict):
        raise ParameterError(f"{where}: expected a mapping")
    kind = raw.get("kind")
    if kind not in KINDS:
        raise ParameterError(f"{where}: field 'kind' must be one of {sorted(KINDS)}")
    if not raw.get("label"):
        raise ParameterError(f"{where}: field 'label' is required")
    periods = []
    for n, p in enumerate(raw.get("periods") or []):
        pw = f"{where}, period {n + 1}"
        if not isinstance(p, dict) or "value" not in p or "from" not in p or not p.get("basis"):
            raise ParameterError(f"{pw}: needs 'value', 'from' and 'basis'")
        confidence = p.get("confidence", "high")
        if confidence not in CONFIDENCE:
            raise ParameterError(f"{pw}: field 'confidence' must be one of {sorted(CONFIDENCE)}")
        end = as_date(p["to"], pw) if p.get("to") is not None else None
        periods.append(Period(float(p["value"]), as_date(p["from"], pw), end, str(p["basis"]), confidence))
    if not periods:
        raise ParameterError(f"{where}: field 'periods' must list at least one period")
    periods.sort(key=lambda p: p.start)
    for a, b in itertools.pairwise(periods):
        if a.end is None or a.end >= b.start:
            raise ParameterError(f"{where}: periods overlap around {b.start.isoformat()}")
    return Parameter(name, str(raw["label"]), kind, tuple(periods), source)


# ---------------------------------------------------------------- formatting


def format_money(amount: float) -> str:
    """2530000 → "2.530.000 đồng" (Vietnamese thousands separator)."""
    return f"{round(amount):,}".replace(",", ".") + " đồng"


def format_number(value: float) -> str:
    """1.5 → "1,5"; 20.0 → "20" (Vietnamese decimal comma)."""
    if float(value).is_integer():
        return f"{int(value):,}".replace(",", ".")
    return f"{value:g}".replace(".", ",")


def format_percent(value: float) -> str:
    return f"{format_number(value)}%"


def format_age(months: float) -> str:
    years, rest = divmod(int(months), 12)
    return f"{years} tuổi" + (f" {rest} tháng" if rest else "")


FORMATTERS: dict[str, Callable[[float], str]] = {
    "money": format_money,
    "percent": format_percent,
    "months": lambda v: f"{format_number(v)} tháng",
    "age_months": format_age,
    "number": format_number,
}


# ---------------------------------------------------------------- the table


@dataclass(frozen=True)
class Derived:
    label: str
    kind: str
    inputs: tuple[str, ...]
    compute: Callable[..., float]


# Figures computed from table rows; an answer may use these names too.
DERIVED: dict[str, Derived] = {
    "voluntary_income_floor": Derived(
        "Mức thu nhập tối thiểu đóng BHXH tự nguyện (bằng chuẩn hộ nghèo nông thôn)", "money",
        ("rural_poverty_line",), lambda p: p),
    "voluntary_income_ceiling": Derived(
        "Mức thu nhập tối đa đóng BHXH tự nguyện", "money",
        ("voluntary_income_ceiling_multiple", "reference_level"), lambda m, r: m * r),
    "voluntary_min_contribution": Derived(
        "Số tiền đóng BHXH tự nguyện tối thiểu mỗi tháng (chưa trừ hỗ trợ)", "money",
        ("voluntary_rate", "rural_poverty_line"), lambda rate, p: rate / 100 * p),
    "voluntary_max_contribution": Derived(
        "Số tiền đóng BHXH tự nguyện tối đa mỗi tháng", "money",
        ("voluntary_rate", "voluntary_income_ceiling_multiple", "reference_level"),
        lambda rate, m, r: rate / 100 * m * r),
    **{
        f"{group}_amount": Derived(
            f"Số tiền Nhà nước hỗ trợ mỗi tháng ({group})", "money",
            (group, "voluntary_rate", "rural_poverty_line"),
            lambda pct, rate, p: pct / 100 * rate / 100 * p)
        for group in ("support_poor", "support_near_poor", "support_ethnic_minority", "support_other")
    },
    **{
        f"voluntary_net_min_{group.removeprefix('support_')}": Derived(
            f"Số tiền tự đóng mỗi tháng ở mức thu nhập thấp nhất sau hỗ trợ ({group})", "money",
            (group, "voluntary_rate", "rural_poverty_line"),
            lambda pct, rate, p: (100 - pct) / 100 * rate / 100 * p)
        for group in ("support_poor", "support_near_poor", "support_ethnic_minority", "support_other")
    },
    "survivor_monthly_amount": Derived(
        "Trợ cấp tuất hằng tháng của mỗi thân nhân", "money",
        ("survivor_monthly_rate", "reference_level"), lambda pct, r: pct / 100 * r),
    "survivor_monthly_amount_no_carer": Derived(
        "Trợ cấp tuất hằng tháng của thân nhân không có người trực tiếp nuôi dưỡng", "money",
        ("survivor_monthly_rate_no_carer", "reference_level"), lambda pct, r: pct / 100 * r),
    "recovery_leave_daily_amount": Derived(
        "Số tiền một ngày nghỉ dưỡng sức, phục hồi sức khỏe", "money",
        ("recovery_leave_daily_rate", "reference_level"), lambda pct, r: pct / 100 * r),
    "wage_ceiling": Derived(
        "Tiền lương tháng đóng BHXH bắt buộc tối đa", "money",
        ("wage_ceiling_multiple", "reference_level"), lambda m, r: m * r),
    "funeral_allowance": Derived(
        "Trợ cấp mai táng", "money",
        ("funeral_allowance_multiple", "reference_level"), lambda m, r: m * r),
    "childbirth_lump_sum": Derived(
        "Trợ cấp một lần khi sinh con (BHXH bắt buộc)", "money",
        ("childbirth_lump_sum_multiple", "reference_level"), lambda m, r: m * r),
    "employee_total_rate": Derived(
        "Tổng tỷ lệ người lao động đóng (BHXH, BHTN, BHYT)", "percent",
        ("employee_pension_rate", "employee_unemployment_rate", "employee_health_rate"),
        lambda a, b, c: a + b + c),
    "employer_total_rate": Derived(
        "Tổng tỷ lệ người sử dụng lao động đóng (BHXH, TNLĐ-BNN, BHTN, BHYT)", "percent",
        ("employer_pension_rate", "employer_sickness_maternity_rate", "employer_accident_rate",
         "employer_unemployment_rate", "employer_health_rate"),
        lambda a, b, c, d, e: a + b + c + d + e),
}


class ParameterTable:
    def __init__(self, parameters: dict[str, Parameter]) -> None:
        self.parameters = parameters
        for name, derived in DERIVED.items():
            if name in parameters:
                raise ParameterError(f"{parameters[name].source_file}: {name!r} is a derived figure")
            missing = [i for i in derived.inputs if i not in parameters]
            if missing:
                raise ParameterError(f"derived figure {name!r} needs missing parameters {missing}")

    @classmethod
    def load(cls, directory: Path = PARAMETER_DIR) -> ParameterTable:
        parameters: dict[str, Parameter] = {}
        for path in sorted(directory.glob("*.yaml")):
            try:
                raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
            except yaml.YAMLError as exc:
                raise ParameterError(f"{path.name}: invalid YAML: {exc}") from exc
            if not isinstance(raw, dict):
                raise ParameterError(f"{path.name}: expected a mapping of parameter names")
            for name, body in raw.items():
                if name in parameters:
                    raise ParameterError(
                        f"{path.name}: parameter {name!r} already defined in {parameters[name].source_file}")
                parameters[name] = _parse(name, body, path.name)
        return cls(parameters)

    def names(self) -> set[str]:
        return set(self.parameters) | set(DERIVED)

    def __contains__(self, name: str) -> bool:
        return name in self.parameters or name in DERIVED

    def value(self, name: str, on: dt.date) -> float:
        if name in DERIVED:
            derived = DERIVED[name]
            return derived.compute(*(self.value(i, on) for i in derived.inputs))
        if name not in self.parameters:
            raise ParameterError(f"unknown parameter {name!r}")
        return self.parameters[name].period(on).value

    def kind(self, name: str) -> str:
        return DERIVED[name].kind if name in DERIVED else self.parameters[name].kind

    def label(self, name: str) -> str:
        return DERIVED[name].label if name in DERIVED else self.parameters[name].label

    def bases(self, name: str, on: dt.date) -> list[str]:
        """Legal basis of a figure (for a derived one, of all its inputs)."""
        if name in DERIVED:
            out: list[str] = []
            for i in DERIVED[name].inputs:
                out.extend(b for b in self.bases(i, on) if b not in out)
            return out
        return [self.parameters[name].period(on).basis]

    def confidence(self, name: str, on: dt.date) -> str:
        if name in DERIVED:
            order = ["high", "medium", "low"]
            return max((self.confidence(i, on) for i in DERIVED[name].inputs), key=order.index)
        return self.parameters[name].period(on).confidence

    def format(self, name: str, on: dt.date) -> str:
        return FORMATTERS[self.kind(name)](self.value(name, on))

    def render(self, template: str, on: dt.date) -> str:
        """Replace every {{name}} with the figure in force on `on`."""
        return PLACEHOLDER.sub(lambda m: self.format(m.group(1), on), template)

    def unknown_placeholders(self, template: str) -> list[str]:
        return [m.group(1) for m in PLACEHOLDER.finditer(template) if m.group(1) not in self]

    def rendered_values(self, on: dt.date) -> dict[str, str]:
        """Every figure as it would be written on `on` (for hard-coding checks)."""
        out = {}
        for name in sorted(self.names()):
            try:
                out[name] = self.format(name, on)
            except ParameterError:
                continue
        return out


@lru_cache(maxsize=1)
def default_table() -> ParameterTable:
    return ParameterTable.load()
