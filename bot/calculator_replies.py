"""Turn a calculation request found in chat into a Reply with real money.

"tôi chọn mức 3 triệu thì đóng bao nhiêu" → the voluntary calculator with the
figures it can read; what it cannot read it asks for, with an example.
"""

from __future__ import annotations

import datetime as dt

from bot.messages import SOURCES_LABEL
from bot.reply import Reply
from knowledge.calc_intent import (
    LUMP_SUM,
    MATERNITY,
    OCCUPATIONAL,
    PENSION,
    SICKNESS,
    SURVIVOR,
    VOLUNTARY,
    CalcRequest,
)
from knowledge.calculators import (
    GROUP_LABELS,
    CalculatorInputError,
    VoluntaryContribution,
    format_date,
    maternity_benefit,
    months_between,
    occupational_allowance,
    pension_estimate,
    sickness_benefit,
    survivor_benefits,
    voluntary_contribution,
)
from knowledge.facts import Facts
from knowledge.params import ParameterTable, format_money

TITLES = {
    VOLUNTARY: "Tính tiền đóng BHXH tự nguyện",
    PENSION: "Ước tính lương hưu",
    LUMP_SUM: "Tính BHXH một lần",
    SURVIVOR: "Tính chế độ tử tuất (mai táng, tuất một lần, tuất hằng tháng)",
    MATERNITY: "Tính chế độ thai sản",
    SICKNESS: "Tính trợ cấp ốm đau",
    OCCUPATIONAL: "Tính trợ cấp tai nạn lao động, bệnh nghề nghiệp",
}
def _lines(result: object, limit: int = 8) -> str:
    steps = list(getattr(result, "steps", []))[:limit]
    return "\n".join(f"- {s}" for s in steps)


TOPIC = {VOLUNTARY: "voluntary", PENSION: "pension", LUMP_SUM: "lump_sum", SURVIVOR: "survivors",
         MATERNITY: "maternity", SICKNESS: "sickness", OCCUPATIONAL: "occupational"}


def calculator_reply(request: CalcRequest, on: dt.date, table: ParameterTable, normalized: str = "") -> Reply | None:
    """A computed answer when the message gives enough figures; None otherwise.

    With None the engine answers from the knowledge base and offers the
    calculator (Reply.calculator) so a channel can start its guided flow.
    """
    try:
        text = _compute(request, on, table)
    except CalculatorInputError as exc:  # the message states the allowed range
        text = str(exc)
    if text is None:
        return None
    return Reply("calculator", f"{TITLES[request.calculator]}\n\n{text}", score=1.0, normalized=normalized,
                 calculator=request.calculator, topic=TOPIC[request.calculator])


def voluntary_text(r: VoluntaryContribution, *, group_named: bool = True) -> str:
    """The voluntary calculator's result, in the same words in the guided flow (bot/calc_flow.py) and
    in a reply to one message ("mức 3 triệu đóng bao nhiêu"); without the title. `group_named=False`:
    the user did not say their group, so the general support was used and the text says so."""
    lines = [f"Thu nhập {format_money(r.income)}/tháng, nhóm {GROUP_LABELS[r.group]}:",
             f"- Phải đóng: {format_money(r.contribution_per_month)}/tháng",
             f"- Nhà nước hỗ trợ: {format_money(r.support_per_month)}/tháng",
             f"- Bạn thực đóng: {format_money(r.net_per_month)}/tháng"]
    if r.months > 1:
        lines.append(f"- Đóng {r.months} tháng một lần: {format_money(r.net_per_period)} mỗi kỳ")
    if not group_named:
        lines += ["", "(Tính theo mức hỗ trợ chung; nếu bạn thuộc hộ nghèo, cận nghèo hoặc là người dân tộc "
                      "thiểu số, mức hỗ trợ cao hơn — hãy nói rõ nhóm của bạn.)"]
    lines += ["", "Cách tính:", _lines(r)]
    if r.sources:
        lines += ["", f"{SOURCES_LABEL} " + "; ".join(r.sources[:3]) + "."]
    return "\n".join(lines)


def _compute(request: CalcRequest, on: dt.date, table: ParameterTable) -> str | None:
    if request.calculator == VOLUNTARY and request.amount is not None:
        groups = request.groups or ("other",)
        r = voluntary_contribution(request.amount, groups, request.period_months or 1, on, table=table)
        return voluntary_text(r, group_named=bool(request.groups))
    if request.calculator == PENSION and None not in (request.years, request.age, request.sex):
        birth = dt.date(on.year - int(request.age or 0), on.month, 1)
        r = pension_estimate(request.sex or "", birth, request.years or 0, request.months or 0,
                             request.amount, on, scheme=request.scheme or "voluntary", table=table)
        return "Kết quả ước tính:\n" + _lines(r) + f"\n\n{SOURCES_LABEL} " + "; ".join(r.sources[:3]) + "."
    facts = request.facts
    if facts is None:
        return None
    if request.calculator == SURVIVOR:
        return _survivor(facts, on, table)
    if request.calculator == MATERNITY:
        return _maternity(facts, on, table)
    if request.calculator == SICKNESS:
        return _sickness(facts, on, table)
    if request.calculator == OCCUPATIONAL:
        return _occupational(facts, on, table)
    return None


def _finish(head: str, assumptions: list[str], result: object) -> str:
    """Summary, what we assumed, the steps, the legal basis and cautions."""
    parts = [head]
    if assumptions:
        parts.append("Giả định:\n" + "\n".join(f"- {a[0].upper()}{a[1:]}" for a in assumptions))
    parts.append("Cách tính:\n" + _lines(result, 12))
    sources = [s for s in getattr(result, "sources", []) if ("Luật 41/2024" in s or "Luật 84/2015" in s
               or "Bộ luật 45" in s or "113/2025" in s) and "Điều 141" not in s][:5]
    parts.append(f"{SOURCES_LABEL} " + "; ".join(sources) + ".")
    notes = list(getattr(result, "notes", []))[:2]
    if notes:
        parts.append("Lưu ý: " + " ".join(notes))
    return "\n\n".join(parts)


def _survivor(f: Facts, on: dt.date, table: ParameterTable) -> str | None:
    retired = f.insured_status == "retired" or (f.pension_amount is not None and f.months_on_pension is not None)
    total = f.total_months_paid
    if retired and (f.pension_amount is None or f.months_on_pension is None):
        return None
    if not retired and (total is None or f.salary is None):
        return None
    assumptions: list[str] = []
    death = f.death_date
    if death is None:
        death = on
        assumptions.append(f"thư không nói ngày mất nên tính theo quy định ngày {format_date(on)}.")
    scheme = f.scheme or "compulsory"
    if scheme == "both" and f.years_compulsory is None:
        scheme = "compulsory"
    kwargs: dict = {}
    if not retired and total is not None:
        if f.years_before_2014 is not None or f.years_from_2014 is not None:
            kwargs = {"years_before_2014": f.years_before_2014 or 0, "months_before_2014": f.months_before_2014 or 0,
                      "years_from_2014": f.years_from_2014 or 0, "months_from_2014": f.months_from_2014 or 0}
            if (f.years_before_2014 or 0) * 12 + (f.months_before_2014 or 0) + (f.years_from_2014 or 0) * 12 + (
                    f.months_from_2014 or 0) != total:
                kwargs = {}
        if not kwargs:
            end = f.leave_date if f.insured_status == "reserved" and f.leave_date else death
            start_2014 = dt.date(2014, 1, 1)
            before = max(0, total - months_between(start_2014, end)) if end > start_2014 else total
            kwargs = {"years_before_2014": before // 12, "months_before_2014": before % 12,
                      "years_from_2014": (total - before) // 12, "months_from_2014": (total - before) % 12}
            split = f" ({before // 12} năm {before % 12} tháng trước 2014)." if before else " (toàn bộ từ năm 2014)."
            assumptions.append("thư không tách thời gian đóng trước và từ năm 2014, nên coi như đóng liên tục đến "
                               f"tháng {end.month:02d}/{end.year}{split}")
    if scheme == "both":
        kwargs["compulsory_years"], kwargs["compulsory_months"] = f.years_compulsory, f.months_compulsory or 0
    if f.insured_status is None and not retired:
        assumptions.append("người mất đang đóng hoặc bảo lưu thời gian đóng (cách tính như nhau).")
    r = survivor_benefits("retired" if retired else (f.insured_status or "contributing"), death, scheme=scheme,
                          average_base=None if retired else f.salary, pension=f.pension_amount,
                          months_on_pension=f.months_on_pension, died_at_work=bool(f.death_at_work), table=table,
                          **kwargs)
    head = []
    if r.lump_sum is not None:
        head.append(f"Tuất một lần khoảng {format_money(r.lump_sum)}")
    if r.monthly_eligible:
        head.append(f"hoặc tuất hằng tháng {format_money(r.monthly_per_relative)} cho mỗi thân nhân đủ điều kiện")
    if r.funeral_eligible:
        head.append(f"cùng trợ cấp mai táng {format_money(r.funeral_allowance)}")
    if r.work_death_allowance:
        head.append(f"và trợ cấp tai nạn lao động {format_money(r.work_death_allowance)}")
    return _finish(", ".join(head) + ".", assumptions, r)


def _maternity(f: Facts, on: dt.date, table: ParameterTable) -> str | None:
    voluntary = f.scheme == "voluntary"
    if f.salary is None and not voluntary:
        return None
    assumptions = []
    birth = f.child_birth_date
    if birth is None:
        birth = on
        assumptions.append(f"thư không nói ngày sinh nên tính theo quy định ngày {format_date(on)}.")
    role = "father" if f.sex == "male" else "mother"
    r = maternity_benefit(birth, None if voluntary else f.salary, role=role, babies=f.babies or 1,
                          child_order=f.child_order, caesarean=f.caesarean,
                          scheme="voluntary" if voluntary else "compulsory", table=table)
    if voluntary:
        head = f"Trợ cấp thai sản BHXH tự nguyện: {format_money(r.lump_sum)}."
    elif role == "mother":
        head = (f"Nghỉ sinh {r.leave_months} tháng, trợ cấp {format_money(r.leave_pay or 0)}, cộng trợ cấp một lần "
                f"{format_money(r.lump_sum)}: tổng {format_money(r.total or 0)}.")
        if r.second_child_leave:
            head += (f" Nếu quy định mới cho con thứ hai (nghỉ {r.second_child_leave} tháng) áp dụng: trợ cấp nghỉ "
                     f"sinh {format_money(r.second_child_leave_pay or 0)}.")
    else:
        head = f"Người chồng nghỉ {r.leave_days} ngày làm việc, trợ cấp {format_money(r.leave_pay or 0)}."
    return _finish(head, assumptions, r)


def _sickness(f: Facts, on: dt.date, table: ParameterTable) -> str | None:
    if f.salary is None or f.sick_days is None:
        return None
    assumptions = []
    kind = "child" if f.sick_child else "long_term" if f.long_term_illness else "own"
    if kind == "child" and f.child_age is None:
        return None
    if f.years_paid is None:
        assumptions.append("thư không nói số năm đóng nên tính mức nghỉ tối đa của người đóng dưới 15 năm.")
    r = sickness_benefit(on, f.salary, f.sick_days, kind=kind, years_paid=f.years_paid or 0,
                         months_paid=f.months_paid or 0, child_age=f.child_age, table=table)
    head = f"Trợ cấp ốm đau {r.days} ngày: {format_money(r.amount)}."
    return _finish(head, assumptions, r)


def _occupational(f: Facts, on: dt.date, table: ParameterTable) -> str | None:
    if f.lost_capacity_percent is None:
        return None
    assumptions = []
    if f.years_paid is None:
        assumptions.append("thư không nói số năm đóng nên tính như đóng từ 1 năm trở xuống.")
    r = occupational_allowance(on, f.lost_capacity_percent, f.salary, f.years_paid or 0, table=table)
    if r.kind == "none":
        head = f"Suy giảm {r.lost_capacity_percent}% khả năng lao động chưa đến mức được trợ cấp."
    elif r.amount is None:
        head = f"Phần trợ cấp theo mức suy giảm: {format_money(r.degree_part)}" + (
            "/tháng." if r.kind == "monthly" else " (một lần).")
    else:
        head = (f"Trợ cấp {'hằng tháng' if r.kind == 'monthly' else 'một lần'}: {format_money(r.amount)}"
                + ("/tháng." if r.kind == "monthly" else "."))
    return _finish(head, assumptions, r)

