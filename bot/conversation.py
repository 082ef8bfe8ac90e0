"""One user's conversation state between two messages, owned by `Service`.

Two things are remembered per (channel, user), in one stored record:
- `choices`: the entries last offered as "1, 2, 3" (a reply of "2" picks the second);
- `calc`: the step reached in the guided voluntary-contribution calculator (`bot.calc_flow`).

`Service` loads the record once per message and saves or deletes it once; nothing else writes it.
The JSON shape ({"choices": [...], "calc": {...}}) is the one earlier versions stored, so a restart
across an upgrade keeps pending choices.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.reply import Choice

CALC_STEPS = ("group", "period", "income")
MAX_PICK_DIGITS = 2


def parse_pick(text: object) -> int | None:
    """The number in a reply like "2" (spaces allowed), else None.

    isdecimal, not isdigit: "²" or "①" are digits that int() refuses."""
    if not isinstance(text, str):
        return None
    text = text.strip()
    if not text.isdecimal() or len(text) > MAX_PICK_DIGITS:
        return None
    return int(text)


@dataclass(frozen=True)
class FlowState:
    """Where the guided calculator is: the step it waits for and what was chosen so far."""

    step: str
    group: str | None = None
    months: int | None = None


@dataclass(frozen=True)
class ConversationState:
    choices: tuple[Choice, ...] = ()
    calc: FlowState | None = None

    @property
    def empty(self) -> bool:
        return not self.choices and self.calc is None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {}
        if self.choices:
            data["choices"] = [c.to_json() for c in self.choices]
        if self.calc is not None:
            data["calc"] = {"step": self.calc.step, "group": self.calc.group, "months": self.calc.months}
        return data

    @classmethod
    def from_json(cls, data: object, *, groups: tuple[str, ...], periods: tuple[int, ...]) -> ConversationState:
        """Whatever was stored, read defensively: unknown steps, groups or periods are dropped."""
        if not isinstance(data, dict):
            return cls()
        choices = tuple(Choice(str(c["entry_id"]), str(c.get("question") or ""))
                        for c in data.get("choices") or [] if isinstance(c, dict) and c.get("entry_id"))
        raw = data.get("calc")
        calc = None
        if isinstance(raw, dict) and raw.get("step") in CALC_STEPS:
            calc = FlowState(str(raw["step"]), raw.get("group") if raw.get("group") in groups else None,
                             raw.get("months") if raw.get("months") in periods else None)
        return cls(choices, calc)
