"""Topic trends over the question log: counts per topic, the rising test, daily series.

Whole Vietnam days (UTC+7) are read from `question_daily`, the per-day counts that
`storage/schema.py` (migration `0004_staff_counts`) keeps up to date with triggers on `questions`, so
the dashboard's series and the topics CSV never scan the log; only the partial days at the ends of a
rolling window are counted in the log itself. Times in the log are UTC (`YYYY-mm-ddTHH:MM:SS.ffffffZ`);
rolling windows are exact (`now - days` … `now`).
"""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter
from typing import get_args

import numpy as np
from pydantic import BaseModel, Field

from bot.reply import Outcome
from knowledge.topics import TOPICS
from storage.store import Store

LOCAL_OFFSET = dt.timedelta(hours=7)  # Asia/Ho_Chi_Minh, no daylight saving
OUTCOMES: tuple[Outcome, ...] = get_args(Outcome)  # answered, choices, declined, law_lookup: charts' and CSV order

# The rising test (see `rising`): significance level, minimum count and minimum ratio.
RISING_ALPHA = 0.01
RISING_MIN_COUNT = 10
RISING_MIN_RATIO = 1.5
RISING_TEST_VI = (
    "So số câu hỏi của kỳ này với kỳ trước cùng độ dài bằng kiểm định chính xác cho hai số đếm Poisson "
    "(với n = kỳ này + kỳ trước, nếu không đổi thì kỳ này ~ Nhị thức(n, 1/2)). Coi là đang tăng khi "
    "p < 0,01, kỳ này có ít nhất 10 câu và gấp ít nhất 1,5 lần kỳ trước."
)
RISING_TEST = (
    "Exact conditional test for two Poisson counts: with n = current + previous, under 'no change' "
    "current ~ Binomial(n, 1/2); p = P(X >= current). Rising when p < 0.01, current >= 10 and "
    "current >= 1.5 x max(previous, 1)."
)


# ---------------------------------------------------------------- time


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def ts_string(moment: dt.datetime) -> str:
    """A datetime in the log's format; naive datetimes are taken as UTC; out-of-range values clamp."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    try:
        moment = moment.astimezone(dt.UTC)
    except OverflowError:
        return "0001-01-01T00:00:00.000000Z" if moment.year < 2 else "9999-12-31T23:59:59.999999Z"
    return moment.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def local_day(moment: dt.datetime) -> dt.date:
    return (moment.astimezone(dt.UTC) + LOCAL_OFFSET).date()


def _local_midnight_ceil(moment: dt.datetime) -> dt.datetime:
    """The first Vietnam midnight at or after `moment`, in UTC."""
    local = moment.astimezone(dt.UTC) + LOCAL_OFFSET
    midnight = dt.datetime.combine(local.date(), dt.time(), dt.UTC)
    if midnight < local:
        midnight += dt.timedelta(days=1)
    return midnight - LOCAL_OFFSET


# ---------------------------------------------------------------- topics and the rising test


def binomial_upper_tail(x: int, n: int) -> float:
    """P(X >= x) for X ~ Binomial(n, 1/2), computed stably for large n."""
    if x <= 0:
        return 1.0
    if x > n:
        return 0.0
    if 2 * x <= n:  # by symmetry: P(X >= x) = 1 - P(X >= n - x + 1)
        return max(0.0, 1.0 - binomial_upper_tail(n - x + 1, n))
    log_first = math.lgamma(n + 1) - math.lgamma(x + 1) - math.lgamma(n - x + 1) - n * math.log(2)
    steps = min(n - x, int(40 * math.sqrt(n)) + 40)  # later terms are negligible
    ks = np.arange(x, x + steps, dtype=np.float64)
    terms = np.cumprod((n - ks) / (ks + 1))
    return min(1.0, math.exp(log_first) * (1.0 + float(terms.sum())))


def rising(current: int, previous: int) -> tuple[float, bool]:
    """The p-value of the rise and whether it counts as rising (see RISING_TEST)."""
    p = binomial_upper_tail(current, current + previous)
    flagged = p < RISING_ALPHA and current >= RISING_MIN_COUNT and current >= RISING_MIN_RATIO * max(previous, 1)
    return p, flagged


class TopicTrend(BaseModel):
    topic: str = Field(description="Topic key from knowledge/topics.py")
    label: str
    current: int = Field(description="Questions in the window")
    previous: int = Field(description="Questions in the window of the same length just before")
    change: int = Field(description="current - previous")
    change_pct: float | None = Field(description="Relative change in percent (null when previous is 0)")
    p_value: float = Field(description="P(X >= current) under no change (see `test`)")
    rising: bool


class TopicsReport(BaseModel):
    days: int
    channel: str | None
    window_start: str = Field(description="UTC, inclusive")
    window_end: str = Field(description="UTC, exclusive")
    previous_start: str = Field(description="UTC start of the previous window (it ends at window_start)")
    test: str = Field(RISING_TEST, description="How `rising` is decided")
    total_current: int
    total_previous: int
    no_topic_current: int = Field(description="Questions without a topic (declined, off-topic) in the window")
    no_topic_previous: int
    topics: list[TopicTrend] = Field(description="Every topic, zero counts included, most asked first")


def topic_counts(store: Store, start: dt.datetime, end: dt.datetime, channel: str | None = None) -> Counter[str | None]:
    """Questions per topic with start <= ts < end (None: no topic).

    Whole Vietnam days come from `question_daily`; only the partial days at the two ends are
    counted in the log itself, so the cost does not grow with the window.
    """
    counts: Counter[str | None] = Counter()
    if end <= start:
        return counts
    first_midnight = _local_midnight_ceil(start)
    last_midnight = _local_midnight_ceil(end)
    if last_midnight > end:
        last_midnight -= dt.timedelta(days=1)
    only = " AND channel = ?" if channel else ""
    extra = [channel] if channel else []
    raw_spans = [(start, end)] if first_midnight >= last_midnight else [(start, first_midnight), (last_midnight, end)]
    for a, b in raw_spans:
        if a < b:
            for topic, n in store.db.execute(f"SELECT topic, COUNT(*) FROM questions WHERE ts >= ? AND ts < ?{only} "
                                             "GROUP BY topic", [ts_string(a), ts_string(b), *extra]):
                counts[topic] += int(n)
    if first_midnight < last_midnight:
        days = [local_day(first_midnight).isoformat(), local_day(last_midnight).isoformat()]
        for topic, n in store.db.execute(f"SELECT topic, SUM(n) FROM question_daily WHERE day >= ? AND day < ?{only} "
                                         "GROUP BY topic", [*days, *extra]):
            counts[topic or None] += int(n or 0)
    return counts


def topic_trends(store: Store, days: int = 7, channel: str | None = None,
                 now: dt.datetime | None = None) -> TopicsReport:
    end = now or utc_now()
    start = end - dt.timedelta(days=days)
    prev_start = start - dt.timedelta(days=days)
    params = {"start": ts_string(start), "prev": ts_string(prev_start), "end": ts_string(end)}
    current = topic_counts(store, start, end, channel)
    previous = topic_counts(store, prev_start, start, channel)
    counts = {t: (current.get(t, 0), previous.get(t, 0)) for t in set(current) | set(previous)}
    trends = []
    for topic, label in TOPICS.items():
        cur, prev = counts.get(topic, (0, 0))
        p, flagged = rising(cur, prev)
        trends.append(TopicTrend(topic=topic, label=label, current=cur, previous=prev, change=cur - prev,
                                 change_pct=round(100.0 * (cur - prev) / prev, 1) if prev else None,
                                 p_value=float(f"{p:.3g}"), rising=flagged))
    trends.sort(key=lambda t: (-t.current, t.topic))
    no_cur, no_prev = counts.get(None, (0, 0))
    known = [v for k, v in counts.items() if k not in TOPICS and k is not None]  # stale topic keys
    return TopicsReport(
        days=days, channel=channel, window_start=params["start"], window_end=params["end"],
        previous_start=params["prev"], total_current=sum(c for c, _ in counts.values()),
        total_previous=sum(p for _, p in counts.values()),
        no_topic_current=no_cur + sum(c for c, _ in known), no_topic_previous=no_prev + sum(p for _, p in known),
        topics=trends)


class DailySeries(BaseModel):
    days: list[str] = Field(description="Vietnam calendar days (UTC+7), oldest first")
    channel: str | None
    topics: dict[str, list[int]] = Field(description="Per topic key: one count per day")
    outcomes: dict[str, list[int]] = Field(description="answered / choices / declined / law_lookup: one count per day")
    total: list[int]


def _daily_counts(store: Store, days: int, channel: str | None, now: dt.datetime | None
                  ) -> tuple[list[str], list[tuple[str, str | None, str, int]]]:
    """The last `days` Vietnam days (today included, oldest first) and their (day, topic, outcome, n)
    rows from `question_daily`."""
    today = local_day(now or utc_now())
    labels = [(today - dt.timedelta(days=days - 1 - i)).isoformat() for i in range(days)]
    sql = ("SELECT day, topic, outcome, SUM(n) FROM question_daily WHERE day >= ? AND day <= ?"
           + (" AND channel = ?" if channel else "") + " GROUP BY day, topic, outcome")
    rows = store.db.execute(sql, [labels[0], labels[-1], *([channel] if channel else [])]).fetchall()
    return labels, [(day, topic, outcome, int(n or 0)) for day, topic, outcome, n in rows]


def daily_series(store: Store, days: int = 30, channel: str | None = None,
                 now: dt.datetime | None = None) -> DailySeries:
    """Daily counts per topic and outcome for the last `days` Vietnam days (today included)."""
    labels, rows = _daily_counts(store, days, channel, now)
    position = {d: i for i, d in enumerate(labels)}
    topics = {t: [0] * days for t in TOPICS}
    outcomes = {o: [0] * days for o in OUTCOMES}
    total = [0] * days
    for day, topic, outcome, n in rows:
        i = position.get(day)
        if i is None or not n:
            continue
        total[i] += n
        if topic in topics:
            topics[topic][i] += n
        if outcome in outcomes:
            outcomes[outcome][i] += n
    return DailySeries(days=labels, channel=channel, topics=topics, outcomes=outcomes, total=total)


def daily_topic_rows(store: Store, days: int = 30, channel: str | None = None,
                     now: dt.datetime | None = None) -> list[tuple[str, str, list[int]]]:
    """(day, topic, [count per outcome, in OUTCOMES' order]) for every Vietnam day and topic, zeros included;
    topic '' holds the rows without a topic (law lookups among them)."""
    labels, rows = _daily_counts(store, days, channel, now)
    counts: dict[tuple[str, str], list[int]] = {}
    for day, topic, outcome, n in rows:
        row = counts.setdefault((day, topic if topic in TOPICS else ""), [0] * len(OUTCOMES))
        if outcome in OUTCOMES:
            row[OUTCOMES.index(outcome)] += n
    return [(day, topic, counts.get((day, topic), [0] * len(OUTCOMES))) for day in labels for topic in [*TOPICS, ""]]


def channels(store: Store) -> list[str]:
    """Channels that appear in the log (for the dashboard's filter)."""
    return [r[0] for r in store.db.execute("SELECT DISTINCT channel FROM question_daily ORDER BY channel")]
