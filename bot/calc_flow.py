"""The guided voluntary-contribution calculator of the chat channels.

Steps: support group → payment period → the user types the income → the result.
The step reached is kept in the Service's store under the same key as the
pending choices ({"calc": {"step": …, "group": …, "months": …}}), so a restart
in the middle of the flow loses nothing. Channels only draw the questions
(Telegram as buttons, Zalo as numbered lists).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from bot.service import Service
from knowledge.calc_intent import parse_amount
from knowledge.calculators import GROUP_LABELS, PAYMENT_PERIODS, CalculatorInputError, voluntary_contribution
from knowledge.params import format_money

GROUPS: tuple[str, ...] = ("poor", "near_poor", "ethnic_minority", "island", "other")
GROUP_BUTTONS: dict[str, str] = {
    "poor": "Hộ nghèo",
    "near_poor": "Hộ cận nghèo",
    "ethnic_minority": "Người dân tộc thiểu số",
    "island": "Sống ở xã đảo, đặc khu",
    "other": "Người tham gia khác",
}
PERIODS: tuple[int, ...] = tuple(PAYMENT_PERIODS)  # 1, 3, 6, 12
PERIOD_BUTTONS: dict[int, str] = {1: "Hằng tháng", 3: "3 tháng một lần", 6: "6 tháng một lần",
                                  12: "12 tháng một lần"}

TITLE = "Tính tiền đóng BHXH tự nguyện"
ASK_GROUP = f"{TITLE}\n\nBước 1/3: bạn thuộc nhóm nào? (Nhà nước hỗ trợ mức khác nhau theo nhóm)"
ASK_PERIOD = "Bước 2/3: bạn đóng theo phương thức nào?"
ASK_INCOME = ("Bước 3/3: bạn gõ thu nhập tháng chọn làm căn cứ đóng, ví dụ: 2 triệu, 2tr hoặc 2.000.000.")
RETRY_INCOME = "Tôi chưa đọc được số tiền. Bạn gõ lại thu nhập, ví dụ: 2 triệu hoặc 2.000.000."
START_WORDS = frozenset({"tính", "tinh", "/tinh", "/tính", "máy tính", "may tinh"})
STEPS = ("group", "period", "income")


@dataclass(frozen=True)
class FlowState:
    step: str
    group: str | None = None
    months: int | None = None


def is_start(text: object) -> bool:
    """"tính", "/tinh" (any case, spaces) start the flow."""
    return isinstance(text, str) and re.sub(r"\s+", " ", text.strip().lower()) in START_WORDS


def _key(service: Service, channel: str, user_id: str) -> str:
    return service._state_key(channel, user_id)


def load(service: Service, channel: str, user_id: str) -> FlowState | None:
    raw: Any = service.store.load_state(_key(service, channel, user_id)).get("calc")
    if not isinstance(raw, dict) or raw.get("step") not in STEPS:
        return None
    group = raw.get("group") if raw.get("group") in GROUPS else None
    months = raw.get("months") if raw.get("months") in PERIODS else None
    return FlowState(str(raw["step"]), group, months)


def _save(service: Service, channel: str, user_id: str, state: FlowState | None) -> None:
    value = {} if state is None else {"calc": {"step": state.step, "group": state.group, "months": state.months}}
    service.store.save_state(_key(service, channel, user_id), value)


def start(service: Service, channel: str, user_id: str) -> None:
    _save(service, channel, user_id, FlowState("group"))


def cancel(service: Service, channel: str, user_id: str) -> None:
    _save(service, channel, user_id, None)


def choose_group(service: Service, channel: str, user_id: str, group: str) -> bool:
    """False when the group is unknown or the flow is not at that step any more."""
    state = load(service, channel, user_id)
    if group not in GROUPS or state is None:
        return False
    _save(service, channel, user_id, FlowState("period", group))
    return True


def choose_period(service: Service, channel: str, user_id: str, months: int) -> bool:
    state = load(service, channel, user_id)
    if months not in PERIODS or state is None or state.group is None:
        return False
    _save(service, channel, user_id, FlowState("income", state.group, months))
    return True


def take_income(service: Service, channel: str, user_id: str, text: str,
                on: dt.date | None = None) -> str | None:
    """The reply to a message typed at the income step; None if the flow is not waiting for an income
    (or the message has no figure at all: the flow ends and the message is a question)."""
    state = load(service, channel, user_id)
    if state is None or state.step != "income" or state.group is None or state.months is None:
        return None
    amount = parse_amount(text)
    if amount is None:
        if any(ch.isdigit() for ch in text):
            return RETRY_INCOME
        cancel(service, channel, user_id)
        return None
    try:
        reply = result_text(service, amount, state.group, state.months, on or dt.date.today())
    except CalculatorInputError as exc:  # out of range: the message states the range; ask again
        return f"{exc}\n\nBạn gõ lại thu nhập nhé."
    cancel(service, channel, user_id)
    return reply


def result_text(service: Service, income: float, group: str, months: int, on: dt.date) -> str:
    r = voluntary_contribution(income, group, months, on, table=service.engine.kb.parameters)
    lines = [TITLE, "",
             f"Thu nhập {format_money(r.income)}/tháng, nhóm {GROUP_LABELS[r.group]}:",
             f"- Phải đóng: {format_money(r.contribution_per_month)}/tháng",
             f"- Nhà nước hỗ trợ: {format_money(r.support_per_month)}/tháng",
             f"- Bạn thực đóng: {format_money(r.net_per_month)}/tháng"]
    if r.months > 1:
        lines.append(f"- Đóng {r.months} tháng một lần: {format_money(r.net_per_period)} mỗi kỳ")
    lines += ["", "Cách tính:", *(f"- {s}" for s in r.steps[:8])]
    if r.sources:
        lines += ["", "Căn cứ: " + "; ".join(r.sources[:3]) + "."]
    return "\n".join(lines)


# ------------------------------------------------------------ numbered steps (channels without buttons)


def group_menu() -> str:
    lines = [f"{n}. {GROUP_BUTTONS[g]}" for n, g in enumerate(GROUPS, start=1)]
    return f"{ASK_GROUP}\n" + "\n".join(lines) + f"\n\nGõ 1, 2, 3, 4 hoặc {len(GROUPS)} để chọn nhóm."


def period_menu() -> str:
    lines = [f"{n}. {PERIOD_BUTTONS[m]}" for n, m in enumerate(PERIODS, start=1)]
    return f"{ASK_PERIOD}\n" + "\n".join(lines) + "\n\nGõ 1, 2, 3 hoặc 4 để chọn."


def numbered_reply(service: Service, channel: str, user_id: str, text: object,
                   on: dt.date | None = None) -> str | None:
    """The flow's reply to a typed message: "tính" starts it, numbers pick, then the income.
    None when the message is not part of the flow (it is then an ordinary question)."""
    if not isinstance(text, str):
        return None
    if is_start(text):
        start(service, channel, user_id)
        return group_menu()
    state = load(service, channel, user_id)
    if state is None:
        return None
    pick = int(text.strip()) if text.strip().isdecimal() and len(text.strip()) <= 2 else None  # not isdigit: '²'
    if state.step == "group":
        if pick is not None and 1 <= pick <= len(GROUPS):
            choose_group(service, channel, user_id, GROUPS[pick - 1])
            return f"Nhóm: {GROUP_BUTTONS[GROUPS[pick - 1]]}.\n\n{period_menu()}"
        cancel(service, channel, user_id)
        return None
    if state.step == "period":
        if pick is not None and 1 <= pick <= len(PERIODS):
            choose_period(service, channel, user_id, PERIODS[pick - 1])
            return f"Phương thức: {PERIOD_BUTTONS[PERIODS[pick - 1]].lower()}.\n\n{ASK_INCOME}"
        cancel(service, channel, user_id)
        return None
    return take_income(service, channel, user_id, text, on)
