"""The store on PostgreSQL, for N workers on one or more machines (`BHXH_DATABASE_URL=postgresql://…`).

Same public behaviour as the SQLite `storage.store.Store` (the default): the question log, feedback,
conversation state, staff entries and audit, and the durable webhook inbox; the schema is the same
named migration set (`storage.postgres_schema`). What several workers add:

- Inbox: the unique (channel, delivery_key) drops redeliveries whichever worker they reach. A delivery
  is leased to the worker that accepted it (`claimed_by`, `lease_until`); `inbox_claim` /
  `inbox_pending` take the pending deliveries whose lease is free or has run out, with
  `FOR UPDATE SKIP LOCKED`, so a delivery acknowledged by a worker that died is finished by another
  one once its lease expires, and two claiming workers never take the same row.
- Staff entries bump `meta.kb_version` and `NOTIFY bhxh_kb_changed` in the same transaction;
  `watch_kb_changes` LISTENs on a dedicated connection and re-reads the version every `poll_seconds`
  (a notification is lost while a listener is disconnected).
- `rate_hit`: per-key limits shared by all workers (UNLOGGED counters, sliding-window estimate).
- `lock(name)`: an advisory lock for work one worker at a time must do (a token refresh, retention),
  `lock(name, wait=False)` for periodic jobs: the worker that gets it runs the job.

Driver: psycopg 3 with psycopg_pool, not SQLAlchemy Core. The SQL is small and hand-written already;
the SQLite side is stdlib sqlite3 (+ sqlite-utils) and would not move onto SQLAlchemy without a rewrite,
so a shared Core layer would only add a large dependency and a translation step. What this backend needs
is PostgreSQL's own SQL (ON CONFLICT … RETURNING, SKIP LOCKED, advisory locks, LISTEN/NOTIFY, UNLOGGED,
partial indexes), which psycopg passes through as written, with a maintained, thread-safe pool.

Failure contract (as on SQLite): when the server cannot be reached, question, feedback and audit writes
are queued in memory (bounded; `dropped` counts the oldest ones dropped) and retried on the next write
and by `flush()`; `inbox_accept` waits at most INBOX_WAIT s, then remembers the key in memory and
returns True; state reads return {} and state writes are skipped; `seen_message` returns False.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import hmac
import json
import logging
import os
import socket
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import psycopg
from psycopg import sql
from psycopg_pool import ConnectionPool, PoolTimeout

from retrieval.normalize import valid_unicode
from storage import postgres_schema
from storage.base import (
    INBOX_KEEP_DAYS,
    INBOX_MEMORY,
    INBOX_WAIT,
    KeyHashing,
    LoggedQuestion,
    QueuedWrites,
    utcnow,
)
from storage.handoffs import RETENTION_DELETES, HandoffStore, Run, rows_of
from storage.signal_log import SignalLog, tsquery_clause
from storage.staff_records import StaffRecords

log = logging.getLogger(__name__)

KB_CHANNEL = "bhxh_kb_changed"  # NOTIFY channel; the payload is the new kb_version
INBOX_LEASE = 60.0  # seconds a worker owns a delivery it accepted or claimed before another may take it
_INBOX_KEY = "__inbox_key__"  # the delivery's own key inside its payload (same format as SQLite)
# The server cannot be reached, a statement timed out or waited too long for a lock: writes are queued.
UNAVAILABLE = (psycopg.OperationalError, psycopg.InterfaceError, PoolTimeout)
_TABLES = frozenset({"questions", "feedback", "audit", "signals"})
# After the server could not be reached, calls fail at once (writes are queued, reads give their
# defaults) for this long instead of each waiting for a connection: the bot keeps answering at speed.
RETRY_AFTER = 2.0


class BrokenConnection(psycopg.OperationalError):
    """A pooled connection the server had closed (restart, failover); the pool's others are checked."""


class HashKeyMismatch(RuntimeError):
    """Workers on one database with different hash keys (a configuration error: refuse to start)."""


def _text(value: str | None) -> str | None:
    """Text PostgreSQL can store: valid UTF-8 and no NUL character (SQLite keeps both)."""
    return None if value is None else valid_unicode(value).replace("\x00", "\ufffd")


def _iso(moment: dt.datetime | None) -> str | None:
    """A timestamptz as the SQLite backend writes times (`utcnow()` format)."""
    return None if moment is None else moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _lock_id(name: str) -> int:
    """A stable signed 64-bit advisory-lock key for a name."""
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "big", signed=True)


class PostgresStore(StaffRecords, KeyHashing, QueuedWrites, HandoffStore, SignalLog):
    """`storage.base.StoreBackend` on PostgreSQL. Thread-safe: each call borrows a pooled connection."""

    _PARAM = "%s"  # StaffRecords' writes
    REFUSED = UNAVAILABLE

    def __init__(self, url: str, hash_key: bytes, *, pool_size: int = 10, timeout: float = 5.0,
                 lease_seconds: float = INBOX_LEASE, worker_id: str | None = None) -> None:
        self.url = url
        self._hash_key = hash_key
        self.lease_seconds = lease_seconds
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{os.urandom(3).hex()}"
        self._lock = threading.RLock()  # the queue of refused writes and the inbox memory fallback
        self._pending: deque[tuple[str, dict[str, Any]]] = deque()
        self._inbox_memory: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._inbox_undone: set[tuple[str, str]] = set()
        self._inbox_retrying = threading.Lock()
        self._inbox_pruned = 0.0
        self._rate_swept = 0.0
        self._local = threading.local()  # the connection of an open write() in this thread
        self.dropped = 0
        self.in_memory = False  # SQLite's "no file at all" mode has no PostgreSQL counterpart
        self.migrated = False
        self._migrate_failed = False
        self._down_until = 0.0  # monotonic time before which the server is taken as unreachable
        self.pool = ConnectionPool(url, min_size=1, max_size=pool_size, kwargs={"autocommit": True},
                                   open=False, name="bhxh-store", timeout=timeout)
        self.pool.open(wait=False)
        try:
            self.migrate()
        except BaseException:
            self.pool.close()
            raise

    def close(self) -> None:
        self.pool.close()

    @property
    def db(self) -> PortableReads:
        """Reads in SQL both backends run (`?` placeholders), for the staff pages; see PortableReads."""
        return PortableReads(self)

    def __enter__(self) -> PostgresStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------ schema and connections

    def migrate(self) -> list[str]:
        """Apply missing migrations (under an advisory lock: workers starting together are safe), then
        check that this worker hashes with the database's key (raises HashKeyMismatch if not)."""
        try:
            with self._pooled() as conn:
                applied = postgres_schema.migrate(conn)
                self._check_hash_key(conn)
            self.migrated = True
            return applied
        except UNAVAILABLE as exc:
            if not self._migrate_failed:  # once per outage, not on every queued write
                log.error("DATABASE UNAVAILABLE: cannot migrate the PostgreSQL store (%s). The bot keeps answering; "
                          "log writes are queued in memory and the migration is retried on the next write.", exc)
            self._migrate_failed = True
            return []

    def _check_hash_key(self, conn: psycopg.Connection) -> None:
        """Every worker must hash with the same key: delivery keys are stored hashed, so a worker with
        another key would not see the others' deliveries as duplicates and would answer them again."""
        mine = hmac.new(self._hash_key, b"bhxh:hash-key-check", hashlib.sha256).hexdigest()[:32]
        conn.execute("INSERT INTO meta (key, value) VALUES ('hash_key_check', %s) ON CONFLICT (key) DO NOTHING",
                     [mine])
        stored = conn.execute("SELECT value FROM meta WHERE key = 'hash_key_check'").fetchone()[0]
        if not hmac.compare_digest(stored, mine):
            raise HashKeyMismatch("this worker's hash key (BHXH_HASH_KEY, or data_dir/hash.key) is not the one "
                                  "the database was started with: every worker must use the same key, or "
                                  "redeliveries would be answered twice and user ids would not match")

    @contextlib.contextmanager
    def _pooled(self, timeout: float | None = None) -> Iterator[psycopg.Connection]:
        """A pooled connection; fails at once for RETRY_AFTER seconds after the server was unreachable."""
        if time.monotonic() < self._down_until:
            raise psycopg.OperationalError("PostgreSQL was unreachable a moment ago; retrying shortly")
        try:
            with self.pool.connection(timeout=timeout) as conn:
                try:
                    yield conn
                except psycopg.OperationalError as exc:
                    if conn.broken or conn.closed:  # cut by the server (a restart, a failover)
                        self.pool.check()  # drop the pool's other dead connections now, not one call each
                        raise BrokenConnection(str(exc)) from exc
                    raise
        except PoolTimeout:
            self._down_until = time.monotonic() + RETRY_AFTER
            raise

    def _fetchone(self, query: str, params: list[Any]) -> tuple[Any, ...] | None:
        """A read, tried again once on a fresh connection if the first one had been cut by the server
        (after a restart a false "not seen" would answer a redelivery twice)."""
        try:
            with self._conn() as conn:
                return conn.execute(query, params).fetchone()
        except BrokenConnection:
            with self._conn() as conn:
                return conn.execute(query, params).fetchone()

    @contextlib.contextmanager
    def _conn(self, timeout: float | None = None) -> Iterator[psycopg.Connection]:
        current = getattr(self._local, "conn", None)
        if current is not None:  # inside write(): the same transaction
            yield current
            return
        with self._pooled(timeout) as conn:
            yield conn

    @contextlib.contextmanager
    def write(self) -> Iterator[psycopg.Connection]:
        """One transaction (a savepoint when nested in this thread); commit on exit, rollback on exception.
        Yields the psycopg connection: PostgreSQL SQL with %s placeholders."""
        current = getattr(self._local, "conn", None)
        if current is not None:
            with current.transaction():
                yield current
            return
        with self._pooled() as conn, conn.transaction():
            self._local.conn = conn
            try:
                yield conn
            finally:
                self._local.conn = None

    @contextlib.contextmanager
    def _handoff_tx(self, write: bool = True) -> Iterator[Run]:
        """The handoff SQL (storage/handoffs.py, `?` placeholders) in one transaction, or a plain read;
        times come back as `utcnow()` text, like SQLite's."""
        with self.write() if write else self._conn() as conn:
            yield lambda query, params: rows_of(conn.execute(query.replace("?", "%s"), params), _as_sqlite_value)

    # ------------------------------------------------------------ helpers

    def _write(self, table: str, row: dict[str, Any]) -> int | None:
        """Insert a row, or queue it if the server refuses; returns the row id if written."""
        if not self._pending and self.migrated:
            try:
                return self._insert(table, row)
            except UNAVAILABLE as exc:
                with self._lock:
                    self._queue(table, row, exc)
                return None
        with self._lock:
            try:
                self._flush_locked()
                return self._insert(table, row)
            except UNAVAILABLE as exc:
                self._queue(table, row, exc)
                return None

    def _insert(self, table: str, row: dict[str, Any]) -> int | None:
        assert table in _TABLES, table
        query = sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
            sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, row)),
            sql.SQL(", ").join(sql.Placeholder() * len(row)))
        with self._conn() as conn:
            if table == "questions" and row.get("message_id"):
                query += sql.SQL(" ON CONFLICT (channel, message_id) DO NOTHING")
            found = conn.execute(query + sql.SQL(" RETURNING id"), list(row.values())).fetchone()
            if found is None:  # a duplicate delivery: the first row's id
                found = conn.execute("SELECT id FROM questions WHERE channel = %s AND message_id = %s",
                                     [row["channel"], row["message_id"]]).fetchone()
            return int(found[0]) if found else None

    def _flush_locked(self) -> None:
        if not self.migrated:
            try:
                self.migrate()
            except HashKeyMismatch as exc:  # found only now because the server was down at start
                log.critical("%s", exc)
            if not self.migrated:
                raise psycopg.OperationalError("the PostgreSQL store is not migrated yet")
        self._drain_pending()

    def flush(self) -> int:
        self._down_until = 0.0  # an explicit retry: try the server now
        return super().flush()

    # ------------------------------------------------------------ question log

    def log_question(self, q: LoggedQuestion) -> int | None:
        row = self.question_row(q)
        row["text"], row["normalized"] = _text(row["text"]), _text(row["normalized"])
        return self._write("questions", row)

    def seen_message(self, channel: str, message_id: str) -> bool:
        """Has this channel delivery already been logged (by any worker)?"""
        message_id = self.delivery_key(message_id)
        with self._lock:
            if self._delivery_queued(channel, message_id):
                return True
        try:
            row = self._fetchone("SELECT 1 FROM questions WHERE channel = %s AND message_id = %s",
                                 [channel, message_id])
        except psycopg.Error:
            return False
        return row is not None

    def record_feedback(self, *, channel: str, user_id: str, value: int, entry_id: str | None = None,
                        question_id: int | None = None) -> bool:
        """One vote per user and question (or entry): a second vote replaces the first. A vote on a
        question must come from the user who asked it and rates that question's own entry."""
        value = 1 if value > 0 else -1
        user_hash = self.hash_user(channel, user_id)
        try:
            if self._pending:  # the server refuses writes: queue the vote rather than wait twice
                raise psycopg.OperationalError("writes are being queued")
            with self._conn() as conn, conn.transaction():
                if question_id is not None:
                    row = conn.execute("SELECT user_hash, entry_id FROM questions WHERE id = %s AND channel = %s",
                                       [question_id, channel]).fetchone()
                    if row is None or not hmac.compare_digest(str(row[0]), user_hash):
                        return False
                    entry_id = row[1]
                    same, arg = "question_id = %s", question_id
                else:
                    same, arg = "question_id IS NULL AND entry_id = %s", entry_id
                # Two workers taking the same user's two quick votes: one vote row, not two.
                vote = f"vote:{user_hash}:{question_id}:{entry_id}"
                conn.execute("SELECT pg_advisory_xact_lock(%s)", [_lock_id(vote)])
                updated = conn.execute(f"UPDATE feedback SET value = %s, ts = %s WHERE user_hash = %s AND channel = %s "
                                       f"AND {same}", [value, utcnow(), user_hash, channel, arg]).rowcount
                if question_id is not None:
                    conn.execute("UPDATE questions SET feedback = %s WHERE id = %s", [value, question_id])
                if not updated:
                    conn.execute("INSERT INTO feedback (ts, question_id, entry_id, value, channel, user_hash) "
                                 "VALUES (%s, %s, %s, %s, %s, %s)",
                                 [utcnow(), question_id, entry_id, value, channel, user_hash])
                return True
        except UNAVAILABLE as exc:
            log.warning("could not check or update feedback: %s", exc)
        return self._write_vote(question_id, entry_id, value, channel, user_hash)

    def search_clause(self, words: list[str]) -> tuple[str, list[Any]]:
        """The log's full-text term for `words` (storage.signal_log): the GIN tsvector index here."""
        return tsquery_clause(words)

    def delete_older_than(self, days: int) -> int:
        """Retention: questions, feedback, signals, audit entries and conversation states older than `days` days.
        One worker at a time: if another one is running it now, this returns 0 at once (its run does it)."""
        cutoff = dt.datetime.now(dt.UTC) - dt.timedelta(days=days)
        with self.lock("retention", wait=False) as mine:
            if not mine:
                log.info("retention: another worker is running it")
                return 0
            return self._delete_before(cutoff)

    def _delete_before(self, cutoff: dt.datetime) -> int:
        with self._conn() as conn, conn.transaction():
            n = conn.execute("DELETE FROM questions WHERE ts < %s", [cutoff]).rowcount
            conn.execute("DELETE FROM feedback WHERE ts < %s", [cutoff])
            conn.execute("DELETE FROM signals WHERE ts < %s", [cutoff])
            conn.execute("DELETE FROM audit WHERE ts < %s", [cutoff])
            conn.execute("DELETE FROM conversations WHERE updated_ts < %s", [cutoff])
            for query in RETENTION_DELETES:  # closed handoffs and their messages
                conn.execute(query.replace("?", "%s"), [cutoff])
            return n

    # ------------------------------------------------------------ webhook inbox

    @contextlib.contextmanager
    def _inbox_conn(self) -> Iterator[psycopg.Connection]:
        """A connection within INBOX_WAIT, one transaction, statements cut at INBOX_WAIT (a webhook must
        not wait seconds for a busy database). Done marks refused earlier are retried in it, by one
        thread at a time (threads retrying the same rows would wait on each other's row locks)."""
        undone: list[tuple[str, str]] = []
        retrying = bool(self._inbox_undone) and self._inbox_retrying.acquire(blocking=False)
        try:
            if retrying:
                with self._lock:
                    undone = list(self._inbox_undone)
            with self._pooled(INBOX_WAIT) as conn:
                with conn.transaction():
                    conn.execute(f"SET LOCAL statement_timeout = {int(INBOX_WAIT * 1000)}")
                    for channel, key in undone:
                        self._mark_done(conn, channel, key)
                    yield conn
                with self._lock:  # committed
                    self._inbox_undone.difference_update(undone)
        finally:
            if retrying:
                self._inbox_retrying.release()

    @staticmethod
    def _mark_done(conn: psycopg.Connection, channel: str, key: str) -> None:
        conn.execute("UPDATE inbox SET done_ts = now(), payload = NULL, claimed_by = NULL, lease_until = NULL "
                     "WHERE channel = %s AND delivery_key = %s AND done_ts IS NULL", [channel, key])

    def inbox_accept(self, channel: str, key: str, payload: dict[str, Any], chat: str | None = None) -> bool:
        """Record a webhook delivery before acknowledging it: True if new (leased to this worker, which
        processes it now), False if any worker accepted it already. `chat` (kept hashed) puts the
        delivery in its chat's queue for `inbox_turn`."""
        raw_key, key = valid_unicode(key), self.delivery_key(valid_unicode(key))
        chat_hash = None if chat is None else self.hash_user(channel, "chat:" + valid_unicode(chat))
        with self._lock:
            if (channel, key) in self._inbox_memory:
                return False
        try:
            with self._inbox_conn() as conn:
                row = conn.execute(
                    "INSERT INTO inbox (channel, delivery_key, payload, received_ts, claimed_by, lease_until, chat) "
                    "VALUES (%s, %s, %s, now(), %s, now() + make_interval(secs => %s), %s) "
                    "ON CONFLICT (channel, delivery_key) DO NOTHING RETURNING id",
                    [channel, key, json.dumps({_INBOX_KEY: raw_key, "payload": payload}), self.worker_id,
                     self.lease_seconds, chat_hash]).fetchone()
                return row is not None
        except UNAVAILABLE as exc:
            log.warning("inbox: could not record a %s delivery (%s); keeping it in memory only", channel, exc)
            with self._lock:
                self._inbox_memory[(channel, key)] = None
                while len(self._inbox_memory) > INBOX_MEMORY:
                    self._inbox_memory.popitem(last=False)
            return True

    def inbox_done(self, channel: str, key: str) -> None:
        """The delivery has been processed: clear its payload (no message text lingers), keep its key."""
        key = self.delivery_key(valid_unicode(key))
        try:
            with self._inbox_conn() as conn:
                self._mark_done(conn, channel, key)
        except UNAVAILABLE as exc:  # retried on the next inbox write, else taken over after the lease
            with self._lock:
                self._inbox_undone.add((channel, key))
            log.warning("inbox: could not mark %d deliveries done: %s", len(self._inbox_undone), exc)
            return
        if time.monotonic() - self._inbox_pruned > 3600:
            self._inbox_pruned = time.monotonic()
            with contextlib.suppress(*UNAVAILABLE):
                self.inbox_prune(INBOX_KEEP_DAYS)

    def inbox_claim(self, channel: str, limit: int | None = 100, *, own: bool = False
                    ) -> list[tuple[str, dict[str, Any]]]:
        """Lease to this worker the pending deliveries of `channel` whose lease is free or has run out
        (a worker died or gave up), oldest first; (key, payload) as accepted. Rows another worker is
        claiming at this moment are skipped, never taken twice. `own`: also those still leased to this
        worker id (after a restart under a fixed `worker_id`, its previous life's deliveries)."""
        try:
            with self._conn() as conn:
                rows = conn.execute(
                    "WITH free AS (SELECT id FROM inbox WHERE channel = %s AND done_ts IS NULL "
                    "  AND (lease_until IS NULL OR lease_until < now() OR (%s AND claimed_by = %s)) "
                    "  ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED) "
                    "UPDATE inbox SET claimed_by = %s, lease_until = now() + make_interval(secs => %s) "
                    "FROM free WHERE inbox.id = free.id RETURNING inbox.id, inbox.delivery_key, inbox.payload",
                    [channel, own, self.worker_id, limit, self.worker_id, self.lease_seconds]).fetchall()
        except UNAVAILABLE as exc:
            log.warning("inbox: cannot claim pending deliveries: %s", exc)
            return []
        claimed = []
        with self._lock:
            undone = set(self._inbox_undone)
        for _, key, payload in sorted(rows):
            if (channel, key) in undone:
                continue
            stored = json.loads(payload)
            claimed.append((stored[_INBOX_KEY], stored["payload"]))
        return claimed

    def inbox_pending(self, channel: str) -> list[tuple[str, dict[str, Any]]]:
        """The start-up replay: every pending delivery of `channel` no other live worker holds, now leased
        to this one (see inbox_claim). With a `worker_id` that stays the same across restarts (e.g.
        "<host>:<port>"), a restarted worker takes back its own deliveries at once instead of after the
        lease; the default id (host, pid, random) never matches an earlier process."""
        return self.inbox_claim(channel, None, own=True)

    def inbox_record_reply(self, channel: str, key: str, reply: dict[str, Any], sent: int = 0) -> None:
        """Keep the rendered reply with a pending delivery (payload "_reply"; "_sent" = how many of its
        messages went out; "_sending" = true: message number `sent` is on its way), so whoever finishes it
        after a crash neither repeats a message nor stays silent. Best effort: a refusal is logged."""
        self._inbox_update(channel, key, lambda inner: inner.update(_reply=reply, _sent=int(sent), _sending=True))

    def inbox_mark_sent(self, channel: str, key: str, count: int, sending: bool = False) -> None:
        """The first `count` messages of the recorded reply are out; `sending`: the next one is on its way
        (payload "_sent", "_sending"); best effort."""
        self._inbox_update(channel, key, lambda inner: inner.update(_sent=int(count), _sending=bool(sending)))

    def _inbox_update(self, channel: str, key: str, change: Callable[[dict[str, Any]], None]) -> None:
        """Read-modify-write of a pending delivery's payload, in Python: the payload is ASCII JSON text that
        may hold escapes jsonb refuses (\\u0000, lone surrogates), so SQL's jsonb_set cannot be used."""
        try:
            with self._inbox_conn() as conn:
                row = conn.execute("SELECT id, payload FROM inbox WHERE channel = %s AND delivery_key = %s "
                                   "AND done_ts IS NULL FOR UPDATE", [channel, self.delivery_key(valid_unicode(key))]
                                   ).fetchone()
                if row is None or row[1] is None:
                    return
                stored = json.loads(row[1])
                if not (isinstance(stored, dict) and _INBOX_KEY in stored and isinstance(stored["payload"], dict)):
                    return
                change(stored["payload"])
                conn.execute("UPDATE inbox SET payload = %s WHERE id = %s", [json.dumps(stored), row[0]])
        except UNAVAILABLE as exc:
            log.warning("inbox: could not record the reply progress of a %s delivery: %s", channel, exc)

    def inbox_turn(self, channel: str, key: str) -> bool:
        """Is it this delivery's turn: no delivery of the same chat accepted before it (by any worker) is
        still pending? A worker waits for its turn before answering, so one chat's replies go out in
        order; the caller bounds the wait (an older delivery whose worker died is pending until its
        lease runs out and another worker claims it). True when unknown (no chat, or the server is down)."""
        try:
            with self._conn() as conn:
                row = conn.execute(
                    "SELECT NOT EXISTS (SELECT 1 FROM inbox older WHERE older.channel = mine.channel "
                    "  AND older.chat = mine.chat AND older.id < mine.id AND older.done_ts IS NULL) "
                    "FROM inbox mine WHERE mine.channel = %s AND mine.delivery_key = %s",
                    [channel, self.delivery_key(valid_unicode(key))]).fetchone()
        except UNAVAILABLE:
            return True
        return True if row is None else bool(row[0])

    def inbox_extend(self, channel: str, key: str) -> bool:
        """Renew this worker's lease on a delivery it is still working on (a slow send); False if it is
        not ours any more (done, or taken over)."""
        with self._conn() as conn:
            return conn.execute("UPDATE inbox SET lease_until = now() + make_interval(secs => %s) "
                                "WHERE channel = %s AND delivery_key = %s AND done_ts IS NULL AND claimed_by = %s",
                                [self.lease_seconds, channel, self.delivery_key(valid_unicode(key)),
                                 self.worker_id]).rowcount == 1

    def inbox_prune(self, older_than_days: float) -> int:
        """Delete done inbox rows older than that (their keys only served to catch redeliveries)."""
        cutoff = dt.datetime.now(dt.UTC) - dt.timedelta(days=older_than_days)
        with self._conn() as conn:
            return conn.execute("DELETE FROM inbox WHERE done_ts IS NOT NULL AND done_ts < %s", [cutoff]).rowcount

    # ------------------------------------------------------------ conversation state

    def save_state(self, key: str, state: dict[str, Any]) -> None:
        try:
            with self._conn() as conn:
                conn.execute("INSERT INTO conversations (key, state, updated_ts) VALUES (%s, %s, now()) "
                             "ON CONFLICT (key) DO UPDATE SET state = excluded.state, updated_ts = excluded.updated_ts",
                             [key, _text(json.dumps(state, ensure_ascii=False))])
        except UNAVAILABLE as exc:
            log.warning("could not save conversation state: %s", exc)

    def clear_state(self, key: str) -> None:
        try:
            with self._conn() as conn:
                conn.execute("DELETE FROM conversations WHERE key = %s", [key])
        except UNAVAILABLE as exc:
            log.warning("could not clear conversation state: %s", exc)

    def load_state(self, key: str) -> dict[str, Any]:
        try:
            row = self._fetchone("SELECT state FROM conversations WHERE key = %s", [key])
        except psycopg.Error:
            return {}
        return json.loads(row[0]) if row else {}

    # ------------------------------------------------------------ audit and staff entries

    def audit(self, actor: str, action: str, target: str, detail: dict[str, Any]) -> None:
        self._write("audit", {"ts": utcnow(), "actor": actor, "action": action, "target": target,
                              "detail": _text(json.dumps(detail, ensure_ascii=False))})

    def staff_entries(self) -> dict[str, dict[str, Any]]:
        """{id: {"record": dict, "updated_ts": str, "actor": str}}, ordered by id."""
        with self._conn() as conn:
            rows = conn.execute("SELECT id, record, updated_ts, actor FROM staff_entries ORDER BY id").fetchall()
        out = {}
        for entry_id, record_json, updated_ts, actor in rows:
            try:
                record = json.loads(record_json)
            except (TypeError, ValueError):
                log.warning("staff entry %r is not valid JSON; ignored", entry_id)
                continue
            if isinstance(record, dict):
                out[entry_id] = {"record": record, "updated_ts": _iso(updated_ts), "actor": actor}
        return out

    def put_staff_entry(self, entry_id: str, record: dict[str, Any], actor: str) -> None:
        """Save a staff record (replacing any earlier one), bump kb_version and tell every worker."""
        with self.write() as conn:
            conn.execute("INSERT INTO staff_entries (id, record, updated_ts, actor) VALUES (%s, %s, now(), %s) "
                         "ON CONFLICT (id) DO UPDATE SET record = excluded.record, updated_ts = excluded.updated_ts, "
                         "actor = excluded.actor", [entry_id, _text(json.dumps(record, ensure_ascii=False)), actor])
            self._bump_kb_version(conn)

    def delete_staff_entry(self, entry_id: str) -> None:
        """Remove a staff record (the YAML entry, if any, applies again), bump kb_version, tell every worker."""
        with self.write() as conn:
            conn.execute("DELETE FROM staff_entries WHERE id = %s", [entry_id])
            self._bump_kb_version(conn)

    # ------------------------------------------------------------ knowledge-base version across workers

    def _bump_kb_version(self, conn: psycopg.Connection) -> int:
        version = int(conn.execute(
            "INSERT INTO meta (key, value) VALUES ('kb_version', '1') ON CONFLICT (key) "
            "DO UPDATE SET value = (meta.value::bigint + 1)::text RETURNING value").fetchone()[0])
        conn.execute("SELECT pg_notify(%s, %s)", [KB_CHANNEL, str(version)])  # sent at commit
        return version

    def kb_version(self) -> int:
        """The knowledge-base version: bumped by every staff edit (and by notify_kb_changed)."""
        row = self._fetchone("SELECT value FROM meta WHERE key = 'kb_version'", [])
        return int(row[0]) if row else 0

    def notify_kb_changed(self) -> int:
        """Bump kb_version and tell every listening worker (for changes made outside put/delete_staff_entry)."""
        with self.write() as conn:
            return self._bump_kb_version(conn)

    def watch_kb_changes(self, callback: Callable[[int], None], *, poll_seconds: float = 15.0) -> KbWatcher:
        """Call `callback(version)` in a background thread whenever kb_version changes: at once on a
        NOTIFY, and within `poll_seconds` if a notification was missed. `.stop()` it on shutdown."""
        watcher = KbWatcher(self, callback, poll_seconds)
        watcher.start()
        return watcher

    # ------------------------------------------------------------ shared limits and locks

    def rate_hit(self, key: str, limit: int, window: float, now: float | None = None) -> bool:
        """Count one event for `key` if fewer than `limit` fell in the last `window` seconds, across all
        workers; False (nothing counted) if the limit is reached. A sliding-window estimate over two fixed
        windows: the previous window's count weighted by how much of it still overlaps."""
        now = time.time() if now is None else now
        span = max(1, round(window))
        start = int(now // span) * span
        overlap = 1.0 - (now - start) / span
        hashed = hmac.new(self._hash_key, b"rate:" + key.encode("utf-8", "replace"), hashlib.sha256).hexdigest()[:32]
        try:
            with self._conn() as conn:
                prev = conn.execute("SELECT n FROM rate_limits WHERE key = %s AND window_start = %s",
                                    [hashed, start - span]).fetchone()
                earlier = (prev[0] if prev else 0) * overlap
                if earlier + 1 > limit:
                    return False
                counted = conn.execute(
                    "INSERT INTO rate_limits (key, window_start, n) VALUES (%s, %s, 1) ON CONFLICT (key, window_start) "
                    "DO UPDATE SET n = rate_limits.n + 1 WHERE rate_limits.n + 1 + %s <= %s RETURNING n",
                    [hashed, start, earlier, limit]).fetchone()
                if now - self._rate_swept > 60:
                    self._rate_swept = now
                    conn.execute("DELETE FROM rate_limits WHERE window_start < %s", [start - 2 * max(span, 3600)])
                return counted is not None
        except UNAVAILABLE as exc:  # no shared counter: let the request through (the channel has its own)
            log.warning("rate limit unavailable: %s", exc)
            return True

    @contextlib.contextmanager
    def lock(self, name: str, *, wait: bool = True) -> Iterator[bool]:
        """An advisory lock held by one worker at a time (a session lock on a pooled connection, released
        on exit or when the connection dies). Yields True if held; with wait=False, False at once if
        another worker has it (a periodic job: only the worker that gets it runs it)."""
        key = _lock_id(name)
        with self._pooled() as conn:
            if wait:
                conn.execute("SELECT pg_advisory_lock(%s)", [key])
                held = True
            else:
                held = bool(conn.execute("SELECT pg_try_advisory_lock(%s)", [key]).fetchone()[0])
            try:
                yield held
            finally:
                if held:
                    conn.execute("SELECT pg_advisory_unlock(%s)", [key])

    # ------------------------------------------------------------ channel tokens

    def token_get(self, name: str) -> dict[str, Any] | None:
        with self._conn() as conn:
            row = conn.execute("SELECT token FROM channel_tokens WHERE name = %s", [name]).fetchone()
        return json.loads(row[0]) if row else None

    def token_put(self, name: str, token: dict[str, Any]) -> None:
        with self._conn() as conn:
            conn.execute("INSERT INTO channel_tokens (name, token, updated_ts) VALUES (%s, %s, now()) "
                         "ON CONFLICT (name) DO UPDATE SET token = excluded.token, updated_ts = excluded.updated_ts",
                         [name, json.dumps(token)])

    def token_refresh(self, name: str, stale: dict[str, Any] | None,
                      refresh: Callable[[dict[str, Any] | None], dict[str, Any]]) -> dict[str, Any]:
        """A fresh token when `stale` (the one the caller saw fail) has expired, refreshed by exactly one
        worker: under the lock the stored token is read again, and if another worker has replaced it
        meanwhile that one is returned; otherwise `refresh(current)` runs (it may spend a single-use
        refresh token) and its result is stored before the lock is released."""
        with self.lock(f"token:{name}"):
            current = self.token_get(name)
            if current is not None and current != stale:
                return current
            fresh = refresh(current)
            self.token_put(name, fresh)
            return fresh


class _Rows:
    """The rows of a finished read, shaped like a DB-API cursor (fetchone, fetchall, iteration)."""

    def __init__(self, rows: list[tuple[Any, ...]]) -> None:
        self._rows, self._next = rows, 0

    def fetchone(self) -> tuple[Any, ...] | None:
        if self._next >= len(self._rows):
            return None
        self._next += 1
        return self._rows[self._next - 1]

    def fetchall(self) -> list[tuple[Any, ...]]:
        rest, self._next = self._rows[self._next:], len(self._rows)
        return rest

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        return iter(self.fetchall())


def _as_sqlite_value(value: Any) -> Any:
    """A value as the SQLite backend returns it: times as `utcnow()` text, days as ISO dates, sums as ints."""
    if isinstance(value, dt.datetime):
        return _iso(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


class PortableReads:
    """`store.db.execute(sql, params)` for the staff pages' reads (question log, feedback, audit, trends):
    SQL written for both backends with `?` placeholders, run on a pooled connection, the rows fetched at
    once with SQLite's value types (see `_as_sqlite_value`). Reads only: writes go through the store."""

    def __init__(self, store: PostgresStore) -> None:
        self.store = store

    def execute(self, query: str, params: Any = ()) -> _Rows:
        text = query.replace("%", "%%").replace("?", "%s")  # no '?' or '%' appears inside the staff SQL's literals
        with self.store._conn() as conn:
            cursor = conn.execute(text, list(params))
            rows = cursor.fetchall() if cursor.description else []
        return _Rows([tuple(_as_sqlite_value(v) for v in row) for row in rows])


class KbWatcher(threading.Thread):
    """LISTEN for kb changes on a dedicated connection (not pooled: LISTEN belongs to one session), with a
    version check every `poll_seconds` as the fallback; reconnects after errors."""

    def __init__(self, store: PostgresStore, callback: Callable[[int], None], poll_seconds: float) -> None:
        super().__init__(name="kb-watch", daemon=True)
        self.store, self.callback, self.poll_seconds = store, callback, poll_seconds
        self.version = 0
        with contextlib.suppress(psycopg.Error):  # unknown now: the first check calls back once
            self.version = store.kb_version()
        self.listening = threading.Event()  # set while LISTEN is active (tests wait on it)
        self._halt = threading.Event()

    def stop(self, timeout: float = 5.0) -> None:
        self._halt.set()
        self.join(timeout)

    def _seen(self, version: int, *, notified: bool = False) -> None:
        # A notification older than what a check has read already (they may cross) is not a change.
        if version != self.version and not (notified and version < self.version):
            self.version = version
            try:
                self.callback(version)
            except Exception:
                log.exception("kb change callback failed")

    def run(self) -> None:
        while not self._halt.is_set():
            try:
                with psycopg.connect(self.store.url, autocommit=True, connect_timeout=5) as conn:
                    conn.execute(f"LISTEN {KB_CHANNEL}")
                    self.listening.set()
                    self._seen(self.store.kb_version())  # what changed while we were not listening
                    next_poll = time.monotonic() + self.poll_seconds
                    while not self._halt.is_set():
                        for note in conn.notifies(timeout=min(0.5, self.poll_seconds), stop_after=1):
                            with contextlib.suppress(ValueError):
                                self._seen(int(note.payload), notified=True)
                        if time.monotonic() >= next_poll:
                            next_poll = time.monotonic() + self.poll_seconds
                            row = conn.execute("SELECT value FROM meta WHERE key = 'kb_version'").fetchone()
                            self._seen(int(row[0]) if row else 0)
            except (psycopg.Error, PoolTimeout) as exc:
                self.listening.clear()
                log.warning("kb watch: %s; reconnecting", exc)
                self._halt.wait(min(self.poll_seconds, 2.0))
        self.listening.clear()
