"""Turn a calculation request found in chat into a Reply with real money.

"tôi chọn mức 3 triệu thì đóng bao nhiêu" → the voluntary calculator with the
figures it can read; what it cannot read it asks for, with an example.
"""

from __future__ import annotations

import datetime as dt

from bot.reply import Reply
from knowledge.calc_intent import LUMP_SUM, PENSION, VOLUNTARY, CalcRequest
from knowledge.calculators import CalculatorInputError, pension_estimate, voluntary_contribution
from knowledge.params import ParameterTable, format_money

TITLES = {
    VOLUNTARY: "Tính tiền đóng BHXH tự nguyện",
    PENSION: "Ước tính lương hưu",
    LUMP_SUM: "Tính BHXH một lần",
}
def _lines(result: object, limit: int = 8) -> str:
    steps = list(getattr(result, "steps", []))[:limit]
    return "\n".join(f"- {s}" for s in steps)


TOPIC = {VOLUNTARY: "voluntary", PENSION: "pension", LUMP_SUM: "lump_sum"}


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


def _compute(request: CalcRequest, on: dt.date, table: ParameterTable) -> str | None:
    if request.calculator == VOLUNTARY and request.amount is not None:
        groups = request.groups or ("other",)
        r = voluntary_contribution(request.amount, groups, request.period_months or 1, on, table=table)
        head = (f"Với thu nhập chọn đóng {format_money(r.income)}/tháng: phải đóng "
                f"{format_money(r.contribution_per_month)}/tháng, Nhà nước hỗ trợ "
                f"{format_money(r.support_per_month)}, bạn thực đóng {format_money(r.net_per_month)}/tháng.")
        if r.months > 1:
            head += f" Đóng {r.months} tháng một lần: {format_money(r.net_per_period)} mỗi kỳ."
        if not request.groups:
            head += (" (Tính theo mức hỗ trợ chung; nếu bạn thuộc hộ nghèo, cận nghèo hoặc là người dân tộc "
                     "thiểu số, mức hỗ trợ cao hơn — hãy nói rõ nhóm của bạn.)")
        return head + "\n\nCách tính:\n" + _lines(r) + "\n\nCăn cứ: " + "; ".join(r.sources[:3]) + "."
    if request.calculator == PENSION and None not in (request.years, request.age, request.sex):
        birth = dt.date(on.year - int(request.age or 0), on.month, 1)
        r = pension_estimate(request.sex or "", birth, request.years or 0, request.months or 0,
                             request.amount, on, table=table)
        return "Kết quả ước tính:\n" + _lines(r) + "\n\nCăn cứ: " + "; ".join(r.sources[:3]) + "."
    return None

