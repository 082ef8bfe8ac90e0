"""Staff analytics over the question log: topic trends, the log itself, unanswered clusters, feedback.

Read-only queries over the tables `storage/schema.py` creates, including the ones made for them
(migration `0004_staff_counts`): indexes for the staff queries and `question_daily`, question
counts per Vietnam day (UTC+7), topic, channel and outcome, kept up to date by SQLite triggers on
`questions`, so the dashboard's daily series and the topics CSV never scan the log.

Times in the log are UTC (`YYYY-mm-ddTHH:MM:SS.ffffffZ`); rolling windows are exact
(`now - days` … `now`), daily series use Vietnam calendar days.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import hashlib
import json
import math
import threading
import weakref
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, Field

from bot.engine import OOS_PREFIX, STOPWORDS, Engine
from knowledge.topics import TOPICS
from retrieval.normalize import fold_accents, tokenize
from storage.schema import UNSURE_INDEX_WHERE
from storage.store import Store

LOCAL_OFFSET = dt.timedelta(hours=7)  # Asia/Ho_Chi_Minh, no daylight saving
OUTCOMES = ("answered", "choices", "declined")
Outcome = Literal["answered", "choices", "declined"]

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

# Unanswered questions: kinds that are never worth a staff look, and clustering limits.
IGNORED_KINDS = ("smalltalk", "invalid", "calculator")
CLUSTER_JACCARD = 0.5
MAX_DISTINCT_TEXTS = 5000
LSH_BANDS, LSH_ROWS = 12, 3
_PRIME = 2**31 - 1
LOW_CONFIDENCE_MARGIN = 0.02
# UNSURE_INDEX_WHERE: a partial covering index (storage/schema.py) holds every question a staff member
# may call unanswered (min_score up to 0.95): the query repeats this exact term so SQLite can use it.


def migrate(store: Store) -> None:
    """Nothing left to do here: `storage/schema.py` creates the staff tables with the others when the
    Store opens. Kept until its last callers (admin_api/admin.py, benchmarks/admin_bench.py) drop it."""
    store.migrate()


# ---------------------------------------------------------------- time helpers


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


def _local_midnight_ceil(moment: dt.datetime) -> dt.datetime:
    """The first Vietnam midnight at or after `moment`, in UTC."""
    local = moment.astimezone(dt.UTC) + LOCAL_OFFSET
    midnight = dt.datetime.combine(local.date(), dt.time(), dt.UTC)
    if midnight < local:
        midnight += dt.timedelta(days=1)
    return midnight - LOCAL_OFFSET


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
    outcomes: dict[str, list[int]] = Field(description="answered / choices / declined: one count per day")
    total: list[int]


def daily_series(store: Store, days: int = 30, channel: str | None = None,
                 now: dt.datetime | None = None) -> DailySeries:
    """Daily counts per topic and outcome for the last `days` Vietnam days (today included)."""
    today = local_day(now or utc_now())
    labels = [(today - dt.timedelta(days=days - 1 - i)).isoformat() for i in range(days)]
    position = {d: i for i, d in enumerate(labels)}
    sql = ("SELECT day, topic, outcome, SUM(n) FROM question_daily WHERE day >= ? AND day <= ?"
           + (" AND channel = ?" if channel else "") + " GROUP BY day, topic, outcome")
    args = [labels[0], labels[-1], *([channel] if channel else [])]
    topics = {t: [0] * days for t in TOPICS}
    outcomes = {o: [0] * days for o in OUTCOMES}
    total = [0] * days
    for day, topic, outcome, n in store.db.execute(sql, args).fetchall():
        i = position.get(day)
        if i is None or not n:
            continue
        total[i] += n
        if topic in topics:
            topics[topic][i] += n
        if outcome in outcomes:
            outcomes[outcome][i] += n
    return DailySeries(days=labels, channel=channel, topics=topics, outcomes=outcomes, total=total)


# ---------------------------------------------------------------- the log


class QuestionOut(BaseModel):
    id: int
    ts: str = Field(description="UTC time")
    channel: str
    text: str | None = Field(description="The question with personal data redacted")
    normalized: str | None
    topic: str | None
    entry_id: str | None
    score: float | None
    outcome: str
    kind: str | None
    latency_ms: float | None
    feedback: int | None = Field(description="1 = 👍, -1 = 👎, null = none")


class QuestionPage(BaseModel):
    items: list[QuestionOut]
    total: int = Field(description="Rows matching the filters")
    limit: int
    next_cursor: str | None = Field(description="Pass as `cursor` for the next (older) page; null on the last page")


QUESTION_COLUMNS = ("id", "ts", "channel", "text", "normalized", "topic", "entry_id", "score", "outcome", "kind",
                    "latency_ms", "feedback")


class QuestionFilter(BaseModel):
    start: dt.datetime | None = None
    end: dt.datetime | None = None
    topic: str | None = None
    channel: str | None = None
    outcome: str | None = None
    contains: str | None = None

    def where(self) -> tuple[list[str], list[Any]]:
        clauses: list[str] = []
        args: list[Any] = []
        if self.start is not None:
            clauses.append("ts >= ?")
            args.append(ts_string(self.start))
        if self.end is not None:
            clauses.append("ts < ?")
            args.append(ts_string(self.end))
        for column in ("topic", "channel", "outcome"):
            value = getattr(self, column)
            if value is not None:
                clauses.append(f"{column} = ?")
                args.append(value)
        if self.contains:
            clauses.append("(text LIKE ? ESCAPE '\\' OR normalized LIKE ? ESCAPE '\\')")
            pattern = "%" + self.contains.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            args.extend([pattern, pattern])
        return clauses, args


def encode_cursor(ts: str, row_id: int) -> str:
    return base64.urlsafe_b64encode(f"{ts}|{row_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[str, int]:
    """Raises ValueError on a malformed cursor."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        ts, row_id = raw.rsplit("|", 1)
        return ts, int(row_id)
    except Exception as exc:
        raise ValueError("invalid cursor") from exc


def list_questions(store: Store, filters: QuestionFilter, limit: int = 50, cursor: str | None = None) -> QuestionPage:
    """The log, newest first, with keyset pagination on (ts, id)."""
    clauses, args = filters.where()
    where = (" WHERE " + " AND ".join(clauses)) if clauses else ""
    total = int(store.db.execute(f"SELECT COUNT(*) FROM questions{where}", args).fetchone()[0])
    page_clauses, page_args = list(clauses), list(args)
    if cursor:
        ts, row_id = decode_cursor(cursor)
        page_clauses.append("(ts < ? OR (ts = ? AND id < ?))")
        page_args.extend([ts, ts, row_id])
    page_where = (" WHERE " + " AND ".join(page_clauses)) if page_clauses else ""
    rows = store.db.execute(f"SELECT {', '.join(QUESTION_COLUMNS)} FROM questions{page_where} "
                            "ORDER BY ts DESC, id DESC LIMIT ?", [*page_args, limit + 1]).fetchall()
    items = [QuestionOut(**dict(zip(QUESTION_COLUMNS, r, strict=True))) for r in rows[:limit]]
    next_cursor = encode_cursor(items[-1].ts, items[-1].id) if len(rows) > limit and items else None
    return QuestionPage(items=items, total=total, limit=limit, next_cursor=next_cursor)


def iter_questions(store: Store, filters: QuestionFilter, limit: int, chunk: int = 2000) -> Iterator[tuple[Any, ...]]:
    """Rows for the CSV export, newest first, in keyset-paged chunks: no statement stays open
    between chunks (an open read would hold back the commits of the shared connection)."""
    clauses, args = filters.where()
    after: tuple[str, int] | None = None
    left = limit
    while left > 0:
        page = list(clauses)
        page_args = list(args)
        if after is not None:
            page.append("(ts < ? OR (ts = ? AND id < ?))")
            page_args.extend([after[0], after[0], after[1]])
        where = (" WHERE " + " AND ".join(page)) if page else ""
        rows = store.db.execute(f"SELECT {', '.join(QUESTION_COLUMNS)} FROM questions{where} "
                                "ORDER BY ts DESC, id DESC LIMIT ?", [*page_args, min(chunk, left)]).fetchall()
        yield from rows
        if len(rows) < min(chunk, left):
            return
        left -= len(rows)
        after = (rows[-1][1], rows[-1][0])


# ---------------------------------------------------------------- unanswered clusters


class NearEntry(BaseModel):
    entry_id: str
    question: str
    topic: str
    score: float = Field(description="Fused retrieval score of the entry for the cluster's representative text")


class Cluster(BaseModel):
    id: str = Field(description="Stable id: a hash of the representative text")
    size: int = Field(description="Questions in the cluster")
    distinct_texts: int
    representative: str = Field(description="The most frequent normalized (redacted) text of the cluster")
    examples: list[str] = Field(description="Redacted question texts, most frequent first")
    question_ids: list[int] = Field(description="Question ids, the representative's (latest) first: pass one to "
                                    "POST /admin/entries/{id}/paraphrases")
    outcomes: dict[str, int] = Field(description="declined / choices / low_score counts")
    last_seen: str
    nearest: list[NearEntry]
    nearest_mode: Literal["hybrid", "lexical", "none"] = Field(
        description="hybrid = engine.candidates; lexical = BM25 only (hybrid neighbours of a new text are computed "
                    "in the background for the next call)")


class UnansweredReport(BaseModel):
    days: int
    channel: str | None
    min_score: float = Field(description="Answers scoring below this count as low-confidence")
    include_out_of_scope: bool
    questions: int = Field(description="Unanswered or low-confidence questions in the window")
    distinct_texts: int
    clustered_texts: int = Field(description=f"Distinct texts clustered (at most {MAX_DISTINCT_TEXTS}, most frequent)")
    clusters_total: int
    method: str
    clusters: list[Cluster]


@functools.lru_cache(maxsize=50_000)
def _token_set(text: str) -> frozenset[str]:
    tokens = tokenize(fold_accents(text))
    content = frozenset(t for t in tokens if t not in STOPWORDS)
    return content or frozenset(tokens) or frozenset([text])


def _band_keys(sets: list[frozenset[str]], bands: int = LSH_BANDS, rows: int = LSH_ROWS) -> list[list[int]]:
    """MinHash signatures (bands x rows hashes, numpy-vectorized), one integer key per band."""
    if not sets:
        return []
    vocab: dict[str, int] = {}
    flat = [vocab.setdefault(tok, len(vocab)) for tokens in sets for tok in sorted(tokens)]
    ids = np.asarray(flat, dtype=np.uint64)
    rng = np.random.default_rng(1676)
    k = bands * rows
    a = rng.integers(1, _PRIME, size=k, dtype=np.uint64)
    b = rng.integers(0, _PRIME, size=k, dtype=np.uint64)
    hashed = (ids[:, None] * a + b) % np.uint64(_PRIME)  # < 2**62: no overflow
    starts = np.concatenate([[0], np.cumsum([len(t) for t in sets])[:-1]]).astype(np.int64)
    signature = np.minimum.reduceat(hashed, starts, axis=0)
    keys = signature[:, 0::rows].copy()
    for r in range(1, rows):
        keys = keys * np.uint64(_PRIME) + signature[:, r::rows]  # wraps mod 2**64: still a fine bucket key
    return keys.tolist()


def cluster_texts(texts: list[str], threshold: float = CLUSTER_JACCARD) -> list[list[int]]:
    """Greedy leader clustering by token-set Jaccard, in input order (most frequent first).

    Texts with the same token set (accent-folded, function words removed) always go together.
    Each new set joins the most similar cluster whose leader has Jaccard >= threshold, else it
    leads a new cluster. Candidate leaders come from MinHash LSH (LSH_BANDS = 12 bands of
    LSH_ROWS = 3 hashes: a pair with Jaccard 0.5 shares a band with probability
    1 - (1 - 0.5**3)**12 = 0.80; 0.6 → 0.95; 0.7 → 0.99) and every candidate is checked with the
    exact Jaccard, so dissimilar texts are never merged and the cost stays linear (a missed
    pair only splits a cluster in two).
    """
    same: dict[frozenset[str], list[int]] = {}
    for i, text in enumerate(texts):
        same.setdefault(_token_set(text), []).append(i)
    sets = list(same)
    keys = _band_keys(sets)
    leaders: list[frozenset[str]] = []
    members: list[list[int]] = []
    buckets: dict[tuple[int, int], list[int]] = {}
    for tokens, band_keys in zip(sets, keys, strict=True):  # dicts keep first-seen order: most frequent first
        size = len(tokens)
        best, best_sim = -1, threshold
        for c in sorted({c for j, key in enumerate(band_keys) for c in buckets.get((j, key), ())}):
            leader = leaders[c]
            common = len(tokens & leader)
            sim = common / (size + len(leader) - common)
            if sim > best_sim or (best < 0 and sim >= best_sim):
                best, best_sim = c, sim
        if best >= 0:
            members[best].extend(same[tokens])
            continue
        leaders.append(tokens)
        members.append(list(same[tokens]))
        for j, key in enumerate(band_keys):
            buckets.setdefault((j, key), []).append(len(leaders) - 1)
    return members


_NEAREST: weakref.WeakKeyDictionary[Engine, dict[tuple[int, str], list[NearEntry]]] = weakref.WeakKeyDictionary()
_WARMER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bhxh-nearest")
_PENDING: set[tuple[int, int, str]] = set()
_PENDING_LOCK = threading.Lock()


def _neighbours(engine: Engine, text: str, k: int, mode: str) -> list[NearEntry]:
    found = []
    for c in engine.candidates(text, k=k + 3, mode=mode):
        entry = engine.kb.entries.get(c.entry_id)
        if entry is not None and not c.entry_id.startswith(OOS_PREFIX):
            found.append(NearEntry(entry_id=entry.id, question=entry.question, topic=entry.topic,
                                   score=round(c.fused, 4)))
    return found[:k]


def _warm(engine_ref: weakref.ref[Engine], texts: list[str], k: int) -> None:
    engine = engine_ref()
    if engine is None:
        return
    memo = _NEAREST.setdefault(engine, {})
    for text in texts:
        try:
            if (k, text) not in memo:
                memo[(k, text)] = _neighbours(engine, text, k, "hybrid")
        except Exception:  # a failed warm-up only means BHXH-only neighbours for a while
            return
        finally:
            with _PENDING_LOCK:
                _PENDING.discard((id(engine), k, text))


def nearest_entries(engine: Engine, texts: list[str], k: int = 3,
                    wait: bool = False) -> list[tuple[list[NearEntry], str]]:
    """The k nearest entries of each text via `engine.candidates`, memoized per engine.

    Hybrid search encodes every text with the dense model (tens of ms each), so a text seen for
    the first time gets BM25-only neighbours at once ("lexical") while one background thread
    computes the hybrid ones for the next call; `wait=True` waits for them instead.
    """
    memo = _NEAREST.setdefault(engine, {})
    dense = engine.index.has_dense
    missing = [t for t in dict.fromkeys(texts) if t.strip() and (k, t) not in memo]
    if missing and dense:
        with _PENDING_LOCK:
            new = [t for t in missing if (id(engine), k, t) not in _PENDING]
            _PENDING.update((id(engine), k, t) for t in new)
        future = _WARMER.submit(_warm, weakref.ref(engine), new, k) if new else None
        if wait and future is not None:
            future.result()
    if len(memo) > 20_000:
        memo.clear()
    out: list[tuple[list[NearEntry], str]] = []
    for text in texts:
        if not text.strip():
            out.append(([], "none"))
        elif (k, text) in memo:
            out.append((memo[(k, text)], "hybrid" if dense else "lexical"))
        elif dense:
            out.append((_neighbours(engine, text, k, "lexical"), "lexical"))
        else:
            memo[(k, text)] = _neighbours(engine, text, k, "lexical")
            out.append((memo[(k, text)], "lexical"))
    return out


def wait_for_warmup(timeout: float | None = None) -> None:
    """Block until the background hybrid look-ups queued so far are done (for benchmarks, tests)."""
    _WARMER.submit(lambda: None).result(timeout)


def default_min_score(engine: Engine) -> float:
    """Answers scoring below the engine's answer threshold + LOW_CONFIDENCE_MARGIN barely passed."""
    t = engine.thresholds
    if engine.index.has_dense:
        base = getattr(t, "min_confidence", None) or getattr(t, "min_dense", 0.88)
    else:
        base = getattr(t, "min_coverage_alone", 0.34)
    return round(float(base) + LOW_CONFIDENCE_MARGIN, 4)


def unanswered(store: Store, engine: Engine, days: int = 7, channel: str | None = None,
               min_score: float | None = None, limit: int = 20, examples: int = 3,
               include_out_of_scope: bool = False, now: dt.datetime | None = None) -> UnansweredReport:
    """Declined, choice and low-score questions of the window, clustered by wording.

    Small talk, empty/garbled input and calculator use are never counted; off-topic questions
    (weather, gold price…) the bot rightly declined only with include_out_of_scope."""
    end = now or utc_now()
    start = end - dt.timedelta(days=days)
    threshold = default_min_score(engine) if min_score is None else min_score
    ignored = IGNORED_KINDS if include_out_of_scope else (*IGNORED_KINDS, "out_of_scope")
    kinds = ", ".join(f"'{k}'" for k in ignored)
    indexed = f" AND ({UNSURE_INDEX_WHERE})" if threshold <= 0.95 else ""
    where = (f"ts >= ? AND ts < ? AND coalesce(kind, '') NOT IN ({kinds}){indexed} "
             "AND (outcome != 'answered' OR score < ?)" + (" AND channel = ?" if channel else ""))
    args: list[Any] = [ts_string(start), ts_string(end), threshold, *([channel] if channel else [])]
    # SQLite returns the bare column ts from the row holding MAX(id); texts are fetched for the shown clusters.
    rows = store.db.execute(
        "SELECT coalesce(normalized, ''), COUNT(*) AS n, MAX(id), ts, '', SUM(outcome = 'declined'), "
        f"SUM(outcome = 'choices'), SUM(outcome = 'answered') FROM questions WHERE {where} "
        "GROUP BY 1 ORDER BY n DESC, 3 DESC", args).fetchall()
    total = sum(r[1] for r in rows)
    kept = rows[:MAX_DISTINCT_TEXTS]
    groups = cluster_texts([r[0] for r in kept])
    groups.sort(key=lambda g: (-sum(kept[i][1] for i in g), g[0]))
    top = groups[:limit]
    near = nearest_entries(engine, [kept[g[0]][0] for g in top])
    shown = [kept[i][2] for g in top for i in g[:examples * 3]]
    texts_by_id = dict(store.db.execute(f"SELECT id, text FROM questions WHERE id IN ({','.join('?' * len(shown))})",
                                        shown).fetchall()) if shown else {}
    clusters = []
    for group, (neighbours, mode) in zip(top, near, strict=True):
        members = [kept[i] for i in group]
        ids = [members[0][2], *sorted((m[2] for m in members[1:]), reverse=True)[:4]]  # the representative's first
        texts = list(dict.fromkeys(texts_by_id.get(m[2]) or m[0] for m in members[:examples * 3]))
        clusters.append(Cluster(
            id=hashlib.sha1(members[0][0].encode()).hexdigest()[:12],
            size=sum(m[1] for m in members), distinct_texts=len(members), representative=members[0][0],
            examples=texts[:examples], question_ids=ids,
            outcomes={"declined": sum(m[5] for m in members), "choices": sum(m[6] for m in members),
                      "low_score": sum(m[7] for m in members)},
            last_seen=max(m[3] for m in members), nearest=neighbours, nearest_mode=mode))  # type: ignore[arg-type]
    return UnansweredReport(
        days=days, channel=channel, min_score=threshold, include_out_of_scope=include_out_of_scope,
        questions=total, distinct_texts=len(rows),
        clustered_texts=len(kept), clusters_total=len(groups), clusters=clusters,
        method=(f"Distinct normalized texts grouped greedily by token-set Jaccard >= {CLUSTER_JACCARD} "
                "(accent-folded, function words removed; MinHash LSH candidates, exact check); "
                "nearest entries by engine.candidates."))


# ---------------------------------------------------------------- feedback and audit


class FeedbackRow(BaseModel):
    entry_id: str
    question: str | None = Field(description="The entry's question (null if the entry no longer exists)")
    topic: str | None
    up: int
    down: int
    total: int
    down_share: float = Field(description="down / total")


class FeedbackReport(BaseModel):
    days: int | None
    up: int
    down: int
    entries: list[FeedbackRow] = Field(description="Most 👎 first")


def feedback_counts(store: Store, engine: Engine, days: int | None = None,
                    now: dt.datetime | None = None) -> FeedbackReport:
    """👍/👎 per entry; a vote without an entry id takes the entry of the question it rates."""
    where, args = "", []
    if days is not None:
        where = "WHERE f.ts >= ?"
        args.append(ts_string((now or utc_now()) - dt.timedelta(days=days)))
    rows = store.db.execute(
        "SELECT coalesce(f.entry_id, q.entry_id) AS eid, SUM(f.value > 0), SUM(f.value < 0) FROM feedback f "
        f"LEFT JOIN questions q ON q.id = f.question_id {where} GROUP BY eid HAVING eid IS NOT NULL", args).fetchall()
    entries = []
    for entry_id, up, down in rows:
        entry = engine.kb.entries.get(entry_id)
        up, down = int(up or 0), int(down or 0)
        entries.append(FeedbackRow(entry_id=entry_id, question=entry.question if entry else None,
                                   topic=entry.topic if entry else None, up=up, down=down, total=up + down,
                                   down_share=round(down / (up + down), 3) if up + down else 0.0))
    entries.sort(key=lambda r: (-r.down, -r.down_share, r.entry_id))
    return FeedbackReport(days=days, up=sum(r.up for r in entries), down=sum(r.down for r in entries),
                          entries=entries)


class AuditRow(BaseModel):
    id: int
    ts: str
    actor: str | None
    action: str | None
    target: str | None
    detail: dict[str, Any]


class AuditPage(BaseModel):
    items: list[AuditRow]
    total: int
    limit: int
    offset: int


def audit_log(store: Store, limit: int = 50, offset: int = 0, action: str | None = None) -> AuditPage:
    where, args = ("WHERE action = ?", [action]) if action else ("", [])
    total = int(store.db.execute(f"SELECT COUNT(*) FROM audit {where}", args).fetchone()[0])
    rows = store.db.execute(f"SELECT id, ts, actor, action, target, detail FROM audit {where} "
                            "ORDER BY ts DESC, id DESC LIMIT ? OFFSET ?", [*args, limit, offset]).fetchall()
    items = []
    for row_id, ts, actor, act, target, detail in rows:
        try:
            parsed = json.loads(detail) if detail else {}
        except ValueError:
            parsed = {"raw": detail}
        items.append(AuditRow(id=row_id, ts=ts, actor=actor, action=act, target=target,
                              detail=parsed if isinstance(parsed, dict) else {"value": parsed}))
    return AuditPage(items=items, total=total, limit=limit, offset=offset)


def daily_topic_rows(store: Store, days: int = 30, channel: str | None = None,
                     now: dt.datetime | None = None) -> list[tuple[str, str, int, int, int]]:
    """(day, topic, answered, choices, declined) for every Vietnam day and topic, zeros included;
    topic '' holds the questions without a topic."""
    today = local_day(now or utc_now())
    labels = [(today - dt.timedelta(days=days - 1 - i)).isoformat() for i in range(days)]
    sql = ("SELECT day, topic, outcome, SUM(n) FROM question_daily WHERE day >= ? AND day <= ?"
           + (" AND channel = ?" if channel else "") + " GROUP BY day, topic, outcome")
    counts: dict[tuple[str, str], list[int]] = {}
    for day, topic, outcome, n in store.db.execute(sql, [labels[0], labels[-1], *([channel] if channel else [])]):
        key = (day, topic if topic in TOPICS else "")
        row = counts.setdefault(key, [0, 0, 0])
        if outcome in OUTCOMES:
            row[OUTCOMES.index(outcome)] += int(n or 0)
    return [(day, topic, *counts.get((day, topic), [0, 0, 0])) for day in labels for topic in [*TOPICS, ""]]


def channels(store: Store) -> list[str]:
    """Channels that appear in the log (for the dashboard's filter)."""
    return [r[0] for r in store.db.execute("SELECT DISTINCT channel FROM question_daily ORDER BY channel")]
