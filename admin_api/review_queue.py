"""The review queue: answers citizens likely misunderstood, ranked by their signals (bot/signals.py).

A case is one question text (normalized, redacted) and what the bot did with it (the entry it
answered with, or a decline / a choice menu). Its score adds up the signals logged about its
questions in the window:

- strong signals count once each, with SIGNAL_WEIGHTS: 👎 3, "không phải / sai rồi" 3, "none of
  these" 2.5, a rephrase within a minute 2, a request for a staff member after the answer 1.5;
- weak signals (an off-topic decline, a menu pick) also come from questions the bot handled well, so
  they count weight × log2(1 + n) per case: many off-topic "giá vàng" declines do not bury three 👎.

A 👎 counts once per citizen and question, and not at all if that citizen later changed it to 👍.
Each case shows the question (redacted), the answered entry and its title, the signals by kind, the
👎 reasons, the entries citizens picked from menus after it (often the right entry), and the nearest
entries (the engine's candidates) to attach the question to.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
from collections import Counter
from dataclasses import dataclass, field

from pydantic import BaseModel, Field

from admin_api.clusters import NearEntry, nearest_entries
from admin_api.report_cache import ReportCache
from admin_api.trends import ts_string, utc_now
from bot import signals
from bot.engine import Engine
from storage.store import Store

SIGNAL_WEIGHTS: dict[str, float] = {
    signals.THUMBS_DOWN: 3.0,
    signals.NEGATION: 3.0,
    signals.NONE_OF_THESE: 2.5,
    signals.REPHRASE: 2.0,
    signals.HANDOFF: 1.5,
    signals.OFF_TOPIC: 1.0,
    signals.MENU_PICK: 0.5,
}
WEAK_SIGNALS = frozenset({signals.OFF_TOPIC, signals.MENU_PICK})  # counted weight x log2(1 + n) per case
SIGNAL_LABELS = {
    signals.THUMBS_DOWN: "👎 chưa hữu ích",
    signals.NEGATION: "trả lời “không phải / sai rồi”",
    signals.NONE_OF_THESE: "chọn “không phải các câu trên”",
    signals.REPHRASE: "hỏi lại trong 1 phút",
    signals.HANDOFF: "xin gặp cán bộ",
    signals.OFF_TOPIC: "bị từ chối vì ngoài phạm vi",
    signals.MENU_PICK: "chọn từ danh sách gợi ý",
}
MAX_SIGNAL_ROWS = 100_000  # signals read per call (a window of months on a busy deployment)
_CACHE = ReportCache()  # the ranked cases, reused while no new signal was logged (within the minute)


class PickedEntry(BaseModel):
    entry_id: str
    question: str | None
    count: int


class ReviewCase(BaseModel):
    id: str = Field(description="Stable id: a hash of the normalized text and the answered entry")
    question: str = Field(description="The latest wording of the question, personal data redacted")
    normalized: str
    entry_id: str | None = Field(description="The entry the bot answered with (null: declined or choices)")
    entry_title: str | None = Field(description="That entry's question")
    outcome: str = Field(description="answered, choices or declined")
    kind: str | None = Field(description="The reply kind, e.g. answer, choices, out_of_scope")
    topic: str | None
    score: float = Field(description="Sum of the signal weights (see SIGNAL_WEIGHTS)")
    signals: dict[str, int] = Field(description="Signals by kind")
    reasons: list[str] = Field(description="👎 reasons given (redacted), newest first")
    picked: list[PickedEntry] = Field(description="Entries citizens picked from a menu after this question")
    questions: int = Field(description="Logged questions of this case with at least one signal")
    question_ids: list[int] = Field(description="Their ids, newest first (at most 20)")
    last_seen: str
    nearest: list[NearEntry] = Field(description="The engine's nearest entries for the question")


class ReviewQueue(BaseModel):
    days: int
    channel: str | None
    kind: str | None
    weights: dict[str, float]
    weak_signals: list[str] = Field(description="Counted weight x log2(1 + n) per case")
    totals: dict[str, int] = Field(description="Signals by kind in the window (all of them; 👎 once per citizen "
                                               "and question, its reason given later too)")
    cases_total: int
    offset: int
    limit: int
    cases: list[ReviewCase]


@dataclass
class _Case:
    normalized: str
    entry_id: str | None
    outcome: str
    kind: str | None
    topic: str | None
    counts: Counter[str] = field(default_factory=Counter)
    downvotes: set[tuple[str, int]] = field(default_factory=set)
    reasons: list[tuple[str, str]] = field(default_factory=list)
    picked: Counter[str] = field(default_factory=Counter)
    question_ids: set[int] = field(default_factory=set)
    latest: tuple[str, int] = ("", 0)  # (ts, question id) of the newest signal
    text_id: int = 0

    def score(self) -> float:
        return round(sum(SIGNAL_WEIGHTS.get(k, 0.0) * (math.log2(1 + n) if k in WEAK_SIGNALS else n)
                         for k, n in self.counts.items()), 3)


def case_id(normalized: str, entry_id: str | None) -> str:
    return hashlib.sha1(f"{normalized}\x1f{entry_id or ''}".encode()).hexdigest()[:12]


def _ranked_cases(store: Store, days: int, channel: str | None, kind: str | None,
                  now: dt.datetime | None) -> tuple[dict[str, int], list[_Case]]:
    """Signals by kind, and every case of the window, highest score first."""
    end = now or utc_now()
    window = [ts_string(end - dt.timedelta(days=days)), ts_string(end)]
    only = (" AND s.channel = ?" if channel else "") + (" AND s.kind = ?" if kind else "")
    extra = [*([channel] if channel else []), *([kind] if kind else [])]
    totals = {k: int(n) for k, n in store.db.execute(
        f"SELECT s.kind, COUNT(*) FROM signals s WHERE s.ts >= ? AND s.ts < ?{only} GROUP BY s.kind",
        [*window, *extra]).fetchall()}
    if totals.get(signals.THUMBS_DOWN):  # a 👎 and then its reason are two rows: one vote per citizen and question
        totals[signals.THUMBS_DOWN] = int(store.db.execute(
            "SELECT COUNT(*) FROM (SELECT DISTINCT s.user_hash, coalesce(s.question_id, -s.id) FROM signals s "
            f"WHERE s.kind = ? AND s.ts >= ? AND s.ts < ?{' AND s.channel = ?' if channel else ''}) AS votes",
            [signals.THUMBS_DOWN, *window, *([channel] if channel else [])]).fetchone()[0])
    rows = store.db.execute(
        "SELECT s.kind, s.question_id, s.entry_id, s.detail, s.ts, s.user_hash, coalesce(q.normalized, ''), "
        "q.entry_id, q.outcome, q.kind, q.topic, q.feedback FROM signals s JOIN questions q ON q.id = s.question_id "
        f"WHERE s.ts >= ? AND s.ts < ?{only} ORDER BY s.ts DESC LIMIT ?", [*window, *extra, MAX_SIGNAL_ROWS]).fetchall()
    cases: dict[tuple[str, str | None], _Case] = {}
    for s_kind, qid, s_entry, detail, ts, user_hash, normalized, q_entry, outcome, q_kind, topic, vote in rows:
        case = cases.get((normalized, q_entry))
        if case is None:
            case = cases[(normalized, q_entry)] = _Case(normalized, q_entry, outcome, q_kind, topic)
        if s_kind == signals.THUMBS_DOWN:
            if (vote is not None and vote > 0) or (user_hash, qid) in case.downvotes:
                continue  # changed to 👍 later, or a second 👎 of the same citizen
            case.downvotes.add((user_hash, qid))
            if detail:
                case.reasons.append((ts, detail))
        if s_kind == signals.MENU_PICK and s_entry:
            case.picked[s_entry] += 1
        case.counts[s_kind] += 1
        case.question_ids.add(int(qid))
        if (ts, int(qid)) > case.latest:
            case.latest = (ts, int(qid))
    ranked = sorted((c for c in cases.values() if c.counts), key=lambda c: c.latest, reverse=True)
    ranked.sort(key=lambda c: -c.score())  # stable: the most recent first among equal scores
    return totals, ranked


def review_queue(store: Store, engine: Engine, days: int = 7, channel: str | None = None, kind: str | None = None,
                 limit: int = 20, offset: int = 0, now: dt.datetime | None = None) -> ReviewQueue:
    """The cases of the last `days` days with signals, highest score first (then the most recent)."""
    totals, ranked = _CACHE.get(store, "signals", (days, channel, kind, now),
                                lambda: _ranked_cases(store, days, channel, kind, now))
    page = ranked[offset:offset + limit]
    ids = [c.latest[1] for c in page]
    texts = dict(store.db.execute(f"SELECT id, text FROM questions WHERE id IN ({','.join('?' * len(ids))})",
                                  ids).fetchall()) if ids else {}
    near = nearest_entries(engine, [c.normalized for c in page])
    entries = engine.kb.entries
    out = []
    for case, (neighbours, _mode) in zip(page, near, strict=True):
        entry = entries.get(case.entry_id) if case.entry_id else None
        out.append(ReviewCase(
            id=case_id(case.normalized, case.entry_id), question=texts.get(case.latest[1]) or case.normalized,
            normalized=case.normalized, entry_id=case.entry_id, entry_title=entry.question if entry else None,
            outcome=case.outcome, kind=case.kind, topic=case.topic, score=case.score(),
            signals={k: case.counts[k] for k in signals.KINDS if case.counts[k]},
            reasons=[d for _, d in sorted(case.reasons, reverse=True)][:5],
            picked=[PickedEntry(entry_id=e, question=entries[e].question if e in entries else None, count=n)
                    for e, n in case.picked.most_common(3)],
            questions=len(case.question_ids), question_ids=sorted(case.question_ids, reverse=True)[:20],
            last_seen=case.latest[0], nearest=neighbours))
    return ReviewQueue(days=days, channel=channel, kind=kind, weights=SIGNAL_WEIGHTS,
                       weak_signals=sorted(WEAK_SIGNALS), totals=totals, cases_total=len(ranked), offset=offset,
                       limit=limit, cases=out)

