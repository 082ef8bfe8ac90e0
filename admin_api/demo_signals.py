"""The signals of misunderstanding `bhxh demo-traffic` adds to its questions (bot/signals.py kinds), so the
review queue and its dashboard page have something to show.

Rates, per logged question: an off-topic decline is always a signal; a 👎 vote is a signal, with a
reason 40% of the time; after a choice menu the citizen picks an entry 55% of the time (the entry the
text was drawn from) and "none of these" 12%; after an answer with a "confusing" entry (the ones
citizens dislike, about 6% of entries) there is a rephrase, a "không phải" or a handoff request 35% of
the time, after any other answer 2%. Drawn from their own random stream, so the questions and votes
of a seed stay what they were.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass, field
from typing import Any

from bot import signals
from storage.store import Store

REASONS = ["Không đúng câu tôi hỏi", "Thông tin chưa đúng với trường hợp của tôi", "Khó hiểu quá",
           "Thiếu hướng dẫn thủ tục cần làm", "Tôi hỏi về BHXH một lần chứ không phải lương hưu"]
COLUMNS = ("ts", "channel", "user_hash", "kind", "question_id", "entry_id", "detail")


def _later(ts: str, seconds: float) -> str:
    moment = dt.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ") + dt.timedelta(seconds=seconds)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class SignalPlan:
    """Signals planned per question (by its position in the generated log), written once ids are known."""

    confusing: set[str]
    seed: int
    planned: list[tuple[int, dict[str, Any]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed * 7919 + 18)

    def add(self, position: int, result: Any, sample_entry: str | None, vote: int | None, channel: str,
            user_hash: str, ts: str) -> None:
        rng = self.rng

        def plan(kind: str, seconds: float, entry_id: str | None = None, detail: str | None = None) -> None:
            self.planned.append((position, {"ts": _later(ts, seconds), "channel": channel, "user_hash": user_hash,
                                            "kind": kind, "entry_id": entry_id, "detail": detail}))

        if result.kind == "out_of_scope":
            plan(signals.OFF_TOPIC, 0.5)
        if vote is not None and vote < 0:
            plan(signals.THUMBS_DOWN, rng.uniform(20, 180), result.entry_id,
                 rng.choice(REASONS) if rng.random() < 0.4 else None)
        if result.outcome == "choices":
            r = rng.random()
            if r < 0.55 and sample_entry:
                plan(signals.MENU_PICK, rng.uniform(5, 40), sample_entry, "button")
            elif r < 0.67:
                plan(signals.NONE_OF_THESE, rng.uniform(5, 40))
        elif (result.outcome == "answered" and result.entry_id
              and rng.random() < (0.35 if result.entry_id in self.confusing else 0.02)):
            kind = rng.choices([signals.REPHRASE, signals.NEGATION, signals.HANDOFF], [0.5, 0.3, 0.2])[0]
            plan(kind, rng.uniform(10, 55), result.entry_id)

    def rows(self, question_ids: list[int | None]) -> list[tuple[Any, ...]]:
        """The planned signals as rows of COLUMNS, pointing at the questions' ids (None: not written)."""
        out = []
        for position, row in self.planned:
            qid = question_ids[position] if position < len(question_ids) else None
            if qid is not None:
                out.append(tuple({**row, "question_id": qid}[c] for c in COLUMNS))
        return out


def insert_sql(placeholder: str) -> str:
    return f"INSERT INTO signals ({', '.join(COLUMNS)}) VALUES ({', '.join([placeholder] * len(COLUMNS))})"


def write(store: Any, rows: list[tuple[Any, ...]]) -> int:
    """Insert the signal rows in one transaction on either backend; returns how many."""
    if not rows:
        return 0
    with store.write() as db:
        if isinstance(store, Store):
            db.conn.executemany(insert_sql("?"), rows)
        else:  # PostgreSQL: store.write() yields a psycopg connection
            with db.cursor() as cursor:
                cursor.executemany(insert_sql("%s"), rows)
    return len(rows)
