"""The guided voluntary-contribution calculator of the chat channels, as pure functions.

Steps: support group → payment period → the user types the income → the result.
The step reached is a `FlowState` inside the user's `ConversationState`, which
`Service` loads and saves (so a restart in the middle of the flow loses nothing);
nothing here touches storage. Every channel runs the typed flow ("tính", then
"1", "2", …, then the income); Telegram also draws the steps as buttons
(`press`).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from bot.calculator_replies import TITLES, voluntary_text
from bot.conversation import FlowState, parse_pick
from knowledge.calc_intent import VOLUNTARY, parse_amount
from knowledge.calculators import PAYMENT_PERIODS, CalculatorInputError, voluntary_contribution
from knowledge.params import ParameterTable

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

TITLE = TITLES[VOLUNTARY]
ASK_GROUP = f"{TITLE}\n\nBước 1/3: bạn thuộc nhóm nào? (Nhà nước hỗ trợ mức khác nhau theo nhóm)"
ASK_PERIOD = "Bước 2/3: bạn đóng theo phương thức nào?"
ASK_INCOME = ("Bước 3/3: bạn gõ thu nhập tháng chọn làm căn cứ đóng, ví dụ: 2 triệu, 2tr hoặc 2.000.000.")
RETRY_INCOME = "Tôi chưa đọc được số tiền. Bạn gõ lại thu nhập, ví dụ: 2 triệu hoặc 2.000.000."
START_WORDS = frozenset({"tính", "tinh", "/tinh", "/tính", "máy tính", "may tinh"})


@dataclass(frozen=True)
class Turn:
    """The flow's answer to one typed message: the new step (None = the flow is over) and the text to
    send (None = the message is not part of the flow: answer it as an ordinary question)."""

    state: FlowState | None
    text: str | None


def is_start(text: object) -> bool:
    """"tính", "/tinh" (any case, spaces) start the flow."""
    return isinstance(text, str) and re.sub(r"\s+", " ", text.strip().lower()) in START_WORDS


def press(state: FlowState | None, action: str, value: str = "") -> FlowState | None:
    """A button: "start", "g" <group>, "m" <months>. None when unknown or out of step (a stale button)."""
    if action == "start":
        return FlowState("group")
    if action == "g" and value in GROUPS and state is not None:
        return FlowState("period", value)
    if (action == "m" and value.isdecimal() and int(value) in PERIODS and state is not None
            and state.group is not None):
        return FlowState("income", state.group, int(value))
    return None


def typed(state: FlowState | None, text: object, table: ParameterTable, on: dt.date) -> Turn:
    """The flow's reply to a typed message: "tính" starts it, numbers pick, then the income."""
    if not isinstance(text, str):
        return Turn(state, None)
    if is_start(text):
        return Turn(FlowState("group"), group_menu())
    if state is None:
        return Turn(None, None)
    pick = parse_pick(text)
    if state.step == "group":
        if pick is not None and 1 <= pick <= len(GROUPS):
            group = GROUPS[pick - 1]
            return Turn(FlowState("period", group), f"Nhóm: {GROUP_BUTTONS[group]}.\n\n{period_menu()}")
        return Turn(None, None)
    if state.step == "period":
        if pick is not None and 1 <= pick <= len(PERIODS) and state.group is not None:
            months = PERIODS[pick - 1]
            return Turn(FlowState("income", state.group, months),
                        f"Phương thức: {PERIOD_BUTTONS[months].lower()}.\n\n{ASK_INCOME}")
        return Turn(None, None)
    return take_income(state, text, table, on)


def take_income(state: FlowState, text: str, table: ParameterTable, on: dt.date) -> Turn:
    """At the income step: the result, a request to type it again, or the end of the flow
    (a message with no figure at all is a question)."""
    if state.group is None or state.months is None:
        return Turn(None, None)
    amount = parse_amount(text)
    if amount is None:
        if any(ch.isdigit() for ch in text):
            return Turn(state, RETRY_INCOME)
        return Turn(None, None)
    try:
        reply = result_text(table, amount, state.group, state.months, on)
    except CalculatorInputError as exc:  # out of range: the message states the range; ask again
        return Turn(state, f"{exc}\n\nBạn gõ lại thu nhập nhé.")
    return Turn(None, reply)


def result_text(table: ParameterTable, income: float, group: str, months: int, on: dt.date) -> str:
    return f"{TITLE}\n\n" + voluntary_text(voluntary_contribution(income, group, months, on, table=table))


def group_menu() -> str:
    lines = [f"{n}. {GROUP_BUTTONS[g]}" for n, g in enumerate(GROUPS, start=1)]
    return f"{ASK_GROUP}\n" + "\n".join(lines) + f"\n\nGõ 1, 2, 3, 4 hoặc {len(GROUPS)} để chọn nhóm."


def period_menu() -> str:
    lines = [f"{n}. {PERIOD_BUTTONS[m]}" for n, m in enumerate(PERIODS, start=1)]
    return f"{ASK_PERIOD}\n" + "\n".join(lines) + "\n\nGõ 1, 2, 3 hoặc 4 để chọn."
