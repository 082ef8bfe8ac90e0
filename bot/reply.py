"""The engine's answer to one message, independent of any channel."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from bot.messages import SOURCES_LABEL

# How the question log counts a row. "law_lookup": an article looked up on chat ("/luat", a citation typed
# alone; bot/field_kit.py logs it), neither an entry's answer nor unanswered; no Reply has it.
Outcome = Literal["answered", "choices", "declined", "law_lookup"]
LAW_LOOKUP: Outcome = "law_lookup"
Kind = Literal["answer", "choices", "not_sure", "out_of_scope", "smalltalk", "personal", "calculator", "invalid"]

# How each kind is counted in the question log, the dashboard and evaluation (`Reply.outcome`): a greeting
# or a calculator result counts as "answered" there, because the citizen got what they asked for.
OUTCOME: dict[str, Outcome] = {
    "answer": "answered",
    "personal": "answered",
    "calculator": "answered",
    "smalltalk": "answered",
    "choices": "choices",
    "not_sure": "declined",
    "out_of_scope": "declined",
    "invalid": "declined",
}


@dataclass(frozen=True)
class Choice:
    entry_id: str
    question: str

    def to_json(self) -> dict[str, str]:
        return {"entry_id": self.entry_id, "question": self.question}


@dataclass(frozen=True)
class Reply:
    kind: Kind
    text: str  # the main message, plain text (channels add markup)
    entry_id: str | None = None
    topic: str | None = None
    score: float = 0.0
    sources: tuple[str, ...] = ()
    choices: tuple[Choice, ...] = ()
    related: tuple[Choice, ...] = ()
    normalized: str = ""
    notice: str = ""  # e.g. "your message was shortened"
    calculator: str | None = None  # which calculator to offer
    calc_step: str | None = None  # a step of the guided calculator waiting for this ("group", "period", "income")
    # Filled in by Service for the channels, so they need not read the knowledge base:
    title: str | None = None  # the answered entry's question (shown above the answer)
    show_topics: bool = False  # offer the topic menu (not sure, help): buttons where the platform has them
    # An answer's short form, shown first, and what "Xem chi tiết" opens (bot/short_answer.py); short "" =
    # show `text` as it is (choices, calculator replies, declines); details "" = the short answer is all.
    short: str = ""
    details: str = ""
    candidates: tuple[str, ...] = field(default=(), compare=False)  # ranked entry ids (for eval)

    @property
    def outcome(self) -> Outcome:
        """How the question log and evaluation count this reply (see OUTCOME): "answered" includes small
        talk and calculator results. Use it for counting; use `answered` to act on an entry's answer."""
        return OUTCOME[self.kind]

    @property
    def answered(self) -> bool:
        """A knowledge-base entry answered the question (kind "answer" or "personal"): what
        the channels, the conversation state and feedback buttons act on, and the "answered" field of
        `bhxh ask --json` and POST /api/ask. Narrower than `outcome == "answered"`, which also counts small
        talk and calculator results; a greeting is `answered` False with outcome "answered"."""
        return self.kind in ("answer", "personal")

    def full_text(self) -> str:
        """The reply as a citizen reads it in plain text: notice, answer, sources, choices."""
        parts = [self.notice] if self.notice else []
        parts.append(self.text)
        if self.sources:
            parts.append(f"{SOURCES_LABEL} " + "; ".join(self.sources) + ".")
        if self.choices:
            parts.append("\n".join(f"{n}. {c.question}" for n, c in enumerate(self.choices, start=1)))
        return "\n\n".join(p for p in parts if p)

    def to_json(self) -> dict[str, object]:
        """The stable JSON of `bhxh ask --json` and `POST /api/ask`."""
        return {
            "answered": self.answered,
            "answer": self.full_text(),
            "entry_id": self.entry_id,
            "topic": self.topic,
            "score": round(self.score, 4),
            "sources": list(self.sources),
            "choices": [c.to_json() for c in self.choices],
            "kind": self.kind,
            "related": [c.to_json() for c in self.related],
            "calculator": self.calculator,
            "short": self.short or None,
            "details": self.details or None,
            "notice": self.notice or None,
        }
