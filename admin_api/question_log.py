"""The question log for staff: filters, keyset-paged listing, the CSV export, feedback per entry and
the audit log of staff changes. Read-only queries over the tables of `storage/schema.py`."""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel, Field

from admin_api.trends import ts_string, utc_now
from bot.engine import Engine
from storage.signal_log import fts5_count, search_words
from storage.store import Store


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
    total: int = Field(description="Rows matching the filters (a full-text search or a substring filter counts "
                                   "at most SEARCH_COUNT_LIMIT: see total_capped)")
    total_capped: bool = Field(False, description="True: more rows match than `total`")
    limit: int
    next_cursor: str | None = Field(description="Pass as `cursor` for the next (older) page; null on the last page")


# A full-text search counts its matches up to this many ("1.000 câu hỏi trở lên"), and the count chooses the
# page's plan: at most this many matches are fetched and sorted; more, and the log is walked newest first.
SEARCH_COUNT_LIMIT = 1000
SEARCH_PROBE_ROWS = 20_000  # PostgreSQL: the newest rows a search is first counted on (see _search_count)
QUESTION_COLUMNS = ("id", "ts", "channel", "text", "normalized", "topic", "entry_id", "score", "outcome", "kind",
                    "latency_ms", "feedback")


class QuestionFilter(BaseModel):
    start: dt.datetime | None = None
    end: dt.datetime | None = None
    topic: str | None = None
    channel: str | None = None
    outcome: str | None = None
    contains: str | None = None
    entry_id: str | None = None  # drill-down from an entry or a feedback row
    feedback: int | None = None  # 1 = 👍, -1 = 👎
    search: str | None = None  # words, accent-insensitive, on the full-text index (needs the store)
    texts: list[str] | None = None  # normalized texts (drill-down from a cluster)

    def searching(self) -> bool:
        """A full-text search with at least one word."""
        return bool(self.search and search_words(self.search))

    def where(self, store: Any = None, newest_first: bool = False,
              search: bool = True) -> tuple[list[str], list[Any]]:
        """The WHERE terms and their arguments (`search=False`: all but the full-text one). `newest_first`: the
        full-text term is only checked on each row (the page walks the log's ts index and stops after `limit`
        matches) rather than driving the query."""
        clauses: list[str] = []
        args: list[Any] = []
        if self.search and store is not None and search:
            words = search_words(self.search)
            if words:
                clause, found = store.search_clause(words)
                # Inside CASE neither SQLite nor PostgreSQL can use the full-text index to drive the query; SQLite
                # still builds the matching ids once (a list subquery) and probes it per row.
                clauses.append(f"(CASE WHEN {clause} THEN 1 ELSE 0 END) = 1" if newest_first else clause)
                args.extend(found)
        if self.texts is not None:
            clauses.append(f"questions.normalized IN ({', '.join('?' * len(self.texts))})" if self.texts else "1 = 0")
            args.extend(self.texts)
        if self.entry_id is not None:
            clauses.append("entry_id = ?")
            args.append(self.entry_id)
        if self.feedback is not None:
            clauses.append("feedback = ?")
            args.append(self.feedback)
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
            clauses.append("(text LIKE ? ESCAPE '\\' OR questions.normalized LIKE ? ESCAPE '\\')")
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


def _page(store: Store, clauses: list[str], args: list[Any], after: tuple[str, int] | None,
          limit: int) -> list[tuple[Any, ...]]:
    """Up to `limit` log rows matching `clauses`, newest first, older than `after` = (ts, id) when given."""
    if after is not None:
        clauses = [*clauses, "(ts < ? OR (ts = ? AND id < ?))"]
        args = [*args, after[0], after[0], after[1]]
    where = (" WHERE " + " AND ".join(clauses)) if clauses else ""
    return store.db.execute(f"SELECT {', '.join(QUESTION_COLUMNS)} FROM questions{where} "
                            "ORDER BY ts DESC, id DESC LIMIT ?", [*args, limit]).fetchall()


def list_questions(store: Store, filters: QuestionFilter, limit: int = 50, cursor: str | None = None) -> QuestionPage:
    """The log, newest first, with keyset pagination on (ts, id).

    A full-text search first counts its matches up to SEARCH_COUNT_LIMIT + 1 (the full-text index drives
    the count and stops there). That many or fewer: the page is fetched from the index and sorted (at most
    SEARCH_COUNT_LIMIT rows); more: the page walks the log newest first, checking each row, and with at
    least 1 match in SEARCH_COUNT_LIMIT rows it finds `limit` after about limit x 200 rows at worst. A
    substring filter (`contains`, LIKE) counts to the same cap. Otherwise a first page that is not full
    needs no count, and other pages count exactly."""
    after = decode_cursor(cursor) if cursor else None
    clauses, args = filters.where(store)
    if filters.searching():
        total = _search_count(store, filters, SEARCH_COUNT_LIMIT + 1)
        capped = total > SEARCH_COUNT_LIMIT
        if capped:
            clauses, args = filters.where(store, newest_first=True)
        rows = _page(store, clauses, args, after, limit + 1)
        total = min(total, SEARCH_COUNT_LIMIT)
    elif filters.contains:  # a substring reads the rows themselves: counting stops at the cap as a search's does
        rows = _page(store, clauses, args, after, limit + 1)
        total = len(rows) if after is None and len(rows) <= limit else \
            _count(store, clauses, args, SEARCH_COUNT_LIMIT + 1)
        capped, total = total > SEARCH_COUNT_LIMIT, min(total, SEARCH_COUNT_LIMIT)
    else:
        capped = False
        rows = _page(store, clauses, args, after, limit + 1)
        total = len(rows) if after is None and len(rows) <= limit else _count_exact(store, filters, clauses, args)
    items = [QuestionOut(**dict(zip(QUESTION_COLUMNS, r, strict=True))) for r in rows[:limit]]
    next_cursor = encode_cursor(items[-1].ts, items[-1].id) if len(rows) > limit and items else None
    return QuestionPage(items=items, total=total, total_capped=capped, limit=limit, next_cursor=next_cursor)


def _search_count(store: Store, filters: QuestionFilter, cap: int) -> int:
    """Rows matching a full-text search and its filters, counting at most `cap`. SQLite: the FTS5 index drives,
    newest first, and stops there. PostgreSQL: its GIN index first builds the bitmap of every match of every
    prefix (20-40 ms for 'rut:* & mot:* & lan:*' at 200,000 rows), so a common word is counted on the newest
    SEARCH_PROBE_ROWS rows of the filters (stopping at `cap`: 4-7 ms), and only a rarer one by the index."""
    rest, rest_args = filters.where(store, search=False)
    if isinstance(store, Store):
        query, args = fts5_count(search_words(filters.search or ""), rest, rest_args, cap)
        return int(store.db.execute(query, args).fetchone()[0])
    clause, clause_args = store.search_clause(search_words(filters.search or ""))
    where = (" WHERE " + " AND ".join(rest)) if rest else ""
    newest = int(store.db.execute(
        f"SELECT COUNT(*) FROM (SELECT 1 FROM (SELECT * FROM questions{where} ORDER BY ts DESC, id DESC "
        f"LIMIT {SEARCH_PROBE_ROWS}) AS newest WHERE {clause} LIMIT {int(cap)}) AS matching",
        [*rest_args, *clause_args]).fetchone()[0])
    if newest >= cap:
        return newest
    clauses, args = filters.where(store)
    return _count(store, clauses, args, cap)


DAILY_FILTERS = frozenset({"topic", "channel", "outcome"})  # the columns of question_daily besides the day


def _count_exact(store: Store, filters: QuestionFilter, clauses: list[str], args: list[Any]) -> int:
    """Rows matching the filters. Unfiltered, or filtered only by topic, channel or outcome (no period), the daily
    counts the triggers keep (`question_daily`, a few rows per day) give the same number as counting the log, without
    reading tens of thousands of index entries (/admin/questions?topic=pension&channel=web: 280 ms at 200,000)."""
    used = {name for name, value in filters.model_dump().items() if value is not None}
    if used <= DAILY_FILTERS:
        names = sorted(used)
        where = " WHERE " + " AND ".join(f"{name} = ?" for name in names) if names else ""
        found = store.db.execute(f"SELECT SUM(n) FROM question_daily{where}",
                                 [getattr(filters, name) for name in names]).fetchone()[0]
        return int(found or 0)
    return _count(store, clauses, args)


def _count(store: Store, clauses: list[str], args: list[Any], cap: int | None = None) -> int:
    """Rows matching `clauses`, counting at most `cap`."""
    where = (" WHERE " + " AND ".join(clauses)) if clauses else ""
    if cap is None:
        return int(store.db.execute(f"SELECT COUNT(*) FROM questions{where}", args).fetchone()[0])
    return int(store.db.execute(f"SELECT COUNT(*) FROM (SELECT 1 FROM questions{where} LIMIT {int(cap)}) AS matching",
                                args).fetchone()[0])


def iter_questions(store: Store, filters: QuestionFilter, limit: int, chunk: int = 2000) -> Iterator[tuple[Any, ...]]:
    """Rows for the CSV export, newest first, in keyset-paged chunks: no statement stays open
    between chunks (an open read would hold back the commits of the shared connection)."""
    clauses, args = filters.where(store)
    after: tuple[str, int] | None = None
    left = limit
    while left > 0:
        rows = _page(store, clauses, args, after, min(chunk, left))
        yield from rows
        if len(rows) < min(chunk, left):
            return
        left -= len(rows)
        after = (rows[-1][1], rows[-1][0])


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
        # Portable SQL (SQLite and PostgreSQL): CASE rather than SUM(bool). The question is looked up by its key
        # only for a vote without an entry (coalesce stops at the first value): as a join, PostgreSQL hashed the
        # whole log for 6,000 votes (480 ms at 200,000 questions).
        "SELECT eid, SUM(CASE WHEN value > 0 THEN 1 ELSE 0 END), SUM(CASE WHEN value < 0 THEN 1 ELSE 0 END) "
        "FROM (SELECT coalesce(f.entry_id, (SELECT q.entry_id FROM questions q WHERE q.id = f.question_id)) AS eid, "
        f"f.value AS value FROM feedback f {where}) AS votes WHERE eid IS NOT NULL GROUP BY eid", args).fetchall()
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
