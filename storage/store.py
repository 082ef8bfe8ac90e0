"""The question log and everything else the service stores, on SQLite (sqlite-utils): the default
backend of `storage.base.StoreBackend`.

Tables are created and migrated on start by `storage/schema.py`, their only owner. Writes that no
method covers go through `with store.write() as db:` (one transaction under the writer lock).

Raw question text is never stored: only the PII-redacted text and the
normalized text; user ids are stored as a keyed hash (HMAC-SHA256).

If the database is locked, read-only or full, writes go to an in-memory
queue that is retried on the next write (and by `flush()`), so the bot keeps
answering and no received question is lost while the process lives.

The `inbox` table is the durable webhook inbox: each channel delivery is
committed there (PII-redacted by the channel) before the webhook says 200, and
marked done, its payload cleared, once processed; pending rows are replayed on
start. Its unique (channel, delivery_key) is the duplicate check that survives
restarts.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hmac
import json
import logging
import os
import sqlite3
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlite_utils

from retrieval.normalize import valid_unicode
from storage import schema
from storage.base import (
    INBOX_KEEP_DAYS,
    INBOX_MEMORY,
    INBOX_WAIT,
    LOGGED_CHARS,
    MAX_PENDING,
    KeyHashing,
    LoggedQuestion,
    QueuedWrites,
    cutoff,
    hash_delivery_key,
    load_hash_key,
    utcnow,
)
from storage.handoffs import RETENTION_DELETES, HandoffStore, Run, rows_of
from storage.signal_log import SignalLog, fts5_clause
from storage.staff_records import StaffRecords

# Re-exported: callers import these from here.
__all__ = ["INBOX_KEEP_DAYS", "INBOX_MEMORY", "INBOX_WAIT", "LOGGED_CHARS", "MAX_PENDING", "LoggedQuestion",
           "Store", "hash_delivery_key", "load_hash_key", "utcnow"]

log = logging.getLogger(__name__)

_INBOX_KEY = "__inbox_key__"  # the delivery's own key, kept inside its payload until it is answered


class Store(StaffRecords, KeyHashing, QueuedWrites, HandoffStore, SignalLog):
    """The SQLite backend (see storage.base.StoreBackend for the interface)."""

    REFUSED = (sqlite3.DatabaseError,)  # locked, read-only, disk full, I/O error: queue the write

    def __init__(self, path: Path | str, hash_key: bytes, *, timeout: float = 5.0) -> None:
        self.path = Path(path)
        # Only the service's own user may read the log (review F17): a folder it creates is 0700, the
        # database 0600 (SQLite gives its -wal and -shm files the database file's mode).
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with contextlib.suppress(OSError):
            if not self.path.exists():
                os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            for file in (self.path, self.path.with_name(self.path.name + "-wal"),
                         self.path.with_name(self.path.name + "-shm")):
                if file.is_file() and file.stat().st_mode & 0o077:  # group/other bits off, the rest kept
                    os.chmod(file, file.stat().st_mode & 0o700)
        self._hash_key = hash_key
        self._lock = threading.RLock()
        self._pending: deque[tuple[str, dict[str, Any]]] = deque()
        self._timeout_ms = int(timeout * 1000)
        # Inbox fallback while the database refuses writes: accepted deliveries (duplicate check only;
        # writing them later is pointless, they are answered by then) and done marks to retry.
        self._inbox_memory: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._inbox_undone: set[tuple[str, str]] = set()
        self._inbox_pruned = 0.0
        self.dropped = 0  # queued writes dropped because the queue was full
        self.in_memory = False  # True when the file could not be opened at all: nothing is kept
        self.db = sqlite_utils.Database(self._open_checked(timeout))
        try:
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
        except sqlite3.DatabaseError as exc:  # read-only media: still serve reads
            log.warning("could not enable WAL on %s: %s", self.path, exc)
        self._migrate_at_open()

    def _connect(self, target: str, timeout: float) -> sqlite3.Connection:
        return sqlite3.connect(target, timeout=timeout, check_same_thread=False, isolation_level=None)

    def _open_checked(self, timeout: float) -> sqlite3.Connection:
        """The database, checked at start (review F8). A file that is not a database or fails SQLite's
        quick_check is moved aside to `<name>.corrupt-<UTC time>` (with its -wal and -shm) and a new
        one is started, so the bot answers and logs again; the old rows can be salvaged from the copy
        (`sqlite3 bhxh.db.corrupt-… .recover | sqlite3 recovered.db`). If no file can be opened
        (a folder at that path, no permission), the log is kept in memory until the next start."""
        problem = None
        try:
            conn = self._connect(str(self.path), timeout)
            result = [row[0] for row in conn.execute("PRAGMA quick_check(5)").fetchall()]
            if result == ["ok"]:
                return conn
            conn.close()
            problem = "; ".join(result)
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "busy" in str(exc):  # a lock is not corruption: wait for it as before
                log.warning("could not check %s: %s", self.path, exc)
                return self._connect(str(self.path), timeout)
            log.error("DATABASE UNAVAILABLE: cannot open %s (%s). The bot keeps answering; questions are "
                      "logged in memory only until a restart with a usable file.", self.path, exc)
        except sqlite3.DatabaseError as exc:  # "file is not a database", "database disk image is malformed"
            problem = str(exc)
        if problem is not None:
            aside = self.path.with_name(f"{self.path.name}.corrupt-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%SZ}")
            log.error("DATABASE CORRUPT: %s failed its check (%s). Moved aside to %s and starting a new, empty "
                      "database; to salvage rows: sqlite3 %s .recover | sqlite3 recovered.db",
                      self.path, problem, aside, aside)
            try:
                for suffix in ("", "-wal", "-shm"):
                    source = self.path.with_name(self.path.name + suffix)
                    if source.exists():
                        source.rename(aside.with_name(aside.name + suffix))
                conn = self._connect(str(self.path), timeout)
                conn.execute("PRAGMA quick_check(1)").fetchall()
                return conn
            except (OSError, sqlite3.DatabaseError) as exc:
                log.error("DATABASE UNAVAILABLE: could not start a new %s (%s): logging in memory only",
                          self.path, exc)
        self.in_memory = True
        return self._connect(":memory:", timeout)

    # ------------------------------------------------------------ schema

    def migrate(self) -> list[str]:
        """Apply the pending schema migrations (storage/schema.py); returns their names. Raises
        sqlite3.DatabaseError if the database refuses (locked, read-only): the caller may retry."""
        with self._lock:
            return schema.migrate(self.db, self.delivery_key)

    def _migrate_at_open(self) -> None:
        try:
            self.migrate()
        except sqlite3.DatabaseError as exc:  # serve anyway; admin_api retries at start-up and daily
            log.error("could not migrate %s: %s", self.path, exc)

    @contextlib.contextmanager
    def write(self) -> Iterator[sqlite_utils.Database]:
        """One transaction under the store's writer lock: `with store.write() as db: db.execute(…)`.

        Commits on exit, rolls back on an exception (which propagates: unlike the log methods, these
        writes are not queued). SQLite's write lock is taken at the start (BEGIN IMMEDIATE), so a
        read-then-write block sees no other process's write in between; nested blocks are savepoints."""
        with self._lock:
            if self.db.conn.in_transaction:
                with self.db.atomic():
                    yield self.db
                return
            self.db.execute("BEGIN IMMEDIATE")
            try:
                yield self.db
            except BaseException:
                if self.db.conn.in_transaction:
                    self.db.execute("ROLLBACK")
                raise
            self.db.execute("COMMIT")

    @contextlib.contextmanager
    def _handoff_tx(self, write: bool = True) -> Iterator[Run]:
        """The handoff SQL (storage/handoffs.py) in one write transaction, or a plain read."""
        if write:
            with self.write() as db:
                yield lambda query, params: rows_of(db.execute(query, params))
            return
        with self._lock:
            yield lambda query, params: rows_of(self.db.execute(query, params))

    # ------------------------------------------------------------ helpers

    def _write(self, table: str, row: dict[str, Any]) -> int | None:
        """Insert a row, or queue it if the database refuses; returns the row id if written."""
        with self._lock:
            try:
                self._flush_locked()
                return self._insert(table, row)
            except sqlite3.DatabaseError as exc:  # locked, read-only, disk full, I/O error
                self._queue(table, row, exc)
                return None

    def _insert(self, table: str, row: dict[str, Any]) -> int | None:
        if table == "questions" and row.get("message_id"):
            before = self.db.execute("SELECT id FROM questions WHERE channel = ? AND message_id = ?",
                                     [row["channel"], row["message_id"]]).fetchone()
            if before:
                return int(before[0])
        # Plain SQL, not sqlite-utils' insert: that re-reads the schema on every call (hot path).
        columns = ", ".join(row)
        cursor = self.db.execute(f"INSERT INTO {table} ({columns}) VALUES ({', '.join('?' * len(row))})",
                                 list(row.values()))
        return int(cursor.lastrowid)

    def _flush_locked(self) -> None:
        self._drain_pending()

    # ------------------------------------------------------------ question log

    def log_question(self, q: LoggedQuestion) -> int | None:
        return self._write("questions", self.question_row(q))

    def seen_message(self, channel: str, message_id: str) -> bool:
        """Has this channel delivery already been logged (duplicate webhook)?"""
        message_id = self.delivery_key(message_id)
        with self._lock:
            if self._delivery_queued(channel, message_id):
                return True
            try:
                row = self.db.execute("SELECT 1 FROM questions WHERE channel = ? AND message_id = ?",
                                      [channel, message_id]).fetchone()
            except sqlite3.DatabaseError:
                return False
            return row is not None

    def record_feedback(self, *, channel: str, user_id: str, value: int, entry_id: str | None = None,
                        question_id: int | None = None) -> bool:
        """One vote per user and question (or entry): a second vote replaces the first. A vote on a
        question must come from the user who asked it, and rates that question's own entry; otherwise
        nothing is written and False is returned."""
        value = 1 if value > 0 else -1
        user_hash = self.hash_user(channel, user_id)
        with self._lock:
            try:
                if question_id is not None:  # a read: possible while the database refuses writes
                    row = self.db.execute("SELECT user_hash, entry_id FROM questions WHERE id = ? AND channel = ?",
                                          [question_id, channel]).fetchone()
                    if row is None or not hmac.compare_digest(str(row[0]), user_hash):
                        return False
                    entry_id = row[1]
                    same = ("question_id = ?", question_id)
                else:
                    same = ("question_id IS NULL AND entry_id = ?", entry_id)
                if self._pending:  # the database refuses writes: queue the vote rather than wait twice
                    raise sqlite3.OperationalError("writes are being queued")
                updated = self.db.execute(f"UPDATE feedback SET value = ?, ts = ? WHERE user_hash = ? AND channel = ? "
                                          f"AND {same[0]}", [value, utcnow(), user_hash, channel, same[1]]).rowcount
                if question_id is not None:
                    self.db.execute("UPDATE questions SET feedback = ? WHERE id = ?", [value, question_id])
            except sqlite3.DatabaseError as exc:  # locked, read-only, full, corrupt: the vote is queued below
                log.warning("could not check or update feedback: %s", exc)
                updated = 0
            if updated:
                return True
        return self._write_vote(question_id, entry_id, value, channel, user_hash)

    def search_clause(self, words: list[str]) -> tuple[str, list[Any]]:
        """The log's full-text term for `words` (storage.signal_log): FTS5 here."""
        return fts5_clause(words)

    def delete_older_than(self, days: int) -> int:
        """Retention: delete questions, feedback, signals, audit entries (their details may quote questions) and
        conversation states older than `days` days (review F20); returns how many questions."""
        before = cutoff(days)
        with self._lock:
            n = self.db.execute("DELETE FROM questions WHERE ts < ?", [before]).rowcount
            self.db.execute("DELETE FROM feedback WHERE ts < ?", [before])
            self.db.execute("DELETE FROM signals WHERE ts < ?", [before])
            self.db.execute("DELETE FROM audit WHERE ts < ?", [before])
            self.db.execute("DELETE FROM conversations WHERE updated_ts < ?", [before])
            for query in RETENTION_DELETES:  # closed handoffs and their messages
                self.db.execute(query, [before])
            return n

    # ------------------------------------------------------------ webhook inbox

    @contextlib.contextmanager
    def _inbox_write(self) -> Iterator[None]:
        """The store lock, and a short busy timeout: a webhook must not wait seconds for a locked database."""
        with self._lock:
            self.db.execute(f"PRAGMA busy_timeout = {int(INBOX_WAIT * 1000)}")
            try:
                self._retry_done_locked()
                yield
            finally:
                self.db.execute(f"PRAGMA busy_timeout = {self._timeout_ms}")

    def inbox_accept(self, channel: str, key: str, payload: dict[str, Any]) -> bool:
        """Record a webhook delivery before acknowledging it: True if new, False if already accepted.
        `payload` must already be redacted. If the database refuses, the delivery is remembered in
        memory only (processed, but lost if the process dies before answering it)."""
        raw_key, key = valid_unicode(key), self.delivery_key(valid_unicode(key))
        with self._lock:
            if (channel, key) in self._inbox_memory:
                return False
            try:
                with self._inbox_write():
                    # ASCII JSON: a lone surrogate (a "\ud800" escape in a webhook body) cannot be stored as UTF-8.
                    cursor = self.db.execute(
                        "INSERT OR IGNORE INTO inbox (channel, delivery_key, payload, received_ts) VALUES (?, ?, ?, ?)",
                        [channel, key, json.dumps({_INBOX_KEY: raw_key, "payload": payload}), utcnow()])
                    return cursor.rowcount == 1
            except sqlite3.DatabaseError as exc:  # locked, read-only, disk full, I/O error
                log.warning("inbox: could not record a %s delivery (%s); keeping it in memory only", channel, exc)
                self._inbox_memory[(channel, key)] = None
                while len(self._inbox_memory) > INBOX_MEMORY:
                    self._inbox_memory.popitem(last=False)
                return True

    def inbox_done(self, channel: str, key: str) -> None:
        """The delivery has been processed: clear its payload (no message text lingers), keep its key."""
        with self._lock:
            self._inbox_undone.add((channel, self.delivery_key(valid_unicode(key))))
            try:
                with self._inbox_write():
                    if time.monotonic() - self._inbox_pruned > 3600:
                        self._inbox_pruned = time.monotonic()
                        self.inbox_prune(INBOX_KEEP_DAYS)
            except sqlite3.DatabaseError as exc:  # retried on the next inbox write, else replayed on start
                log.warning("inbox: could not mark %d deliveries done: %s", len(self._inbox_undone), exc)

    def _retry_done_locked(self) -> None:
        for channel, key in list(self._inbox_undone):
            self.db.execute("UPDATE inbox SET done_ts = ?, payload = NULL WHERE channel = ? AND delivery_key = ? "
                            "AND done_ts IS NULL", [utcnow(), channel, key])
            self._inbox_undone.discard((channel, key))

    def inbox_pending(self, channel: str) -> list[tuple[str, dict[str, Any]]]:
        """(key, payload) of the deliveries of `channel` accepted but not processed yet, oldest first."""
        with self._lock:
            try:
                rows = self.db.execute("SELECT delivery_key, payload FROM inbox WHERE channel = ? AND done_ts IS NULL "
                                       "ORDER BY id", [channel]).fetchall()
            except sqlite3.DatabaseError as exc:
                log.warning("inbox: cannot read pending deliveries: %s", exc)
                return []
            pending = []
            for key, payload in rows:
                if (channel, key) in self._inbox_undone:
                    continue
                stored = json.loads(payload)
                if isinstance(stored, dict) and _INBOX_KEY in stored:
                    pending.append((stored[_INBOX_KEY], stored["payload"]))
                else:  # written by an earlier version: its key is hashed now, which inbox_done accepts
                    pending.append((key, stored))
            return pending

    def inbox_prune(self, older_than_days: float) -> int:
        """Delete done inbox rows older than that (their keys only served to catch redeliveries)."""
        with self._lock:
            return self.db.execute("DELETE FROM inbox WHERE done_ts IS NOT NULL AND done_ts < ?",
                                   [cutoff(older_than_days)]).rowcount

    def inbox_claim(self, channel: str, limit: int = 100) -> list[tuple[str, dict[str, Any]]]:
        """Deliveries to take over (a backend with several workers leases them); on SQLite, with one
        process per file, simply the oldest pending ones."""
        return self.inbox_pending(channel)[:limit]

    def inbox_record_reply(self, channel: str, key: str, reply: dict[str, Any], sent: int = 0) -> None:
        """Keep the rendered reply with a pending delivery, inside its payload: "_reply" = reply, "_sent" =
        how many of its messages went out, "_sending" = true (message number `sent` is on its way), so a
        replay after a crash neither repeats a message nor stays silent. Cleared with the payload when the
        delivery is done. Best effort: a refusal is logged (the reply is still sent)."""
        self._inbox_update(channel, key, "json_set(payload, '$.payload._reply', json(?), '$.payload._sent', ?, "
                           "'$.payload._sending', json('true'))", [json.dumps(reply), int(sent)])

    def inbox_mark_sent(self, channel: str, key: str, count: int, sending: bool = False) -> None:
        """The first `count` messages of the recorded reply went out; `sending`: the next one is on its way
        (payload "_sent", "_sending"); best effort."""
        self._inbox_update(channel, key, "json_set(payload, '$.payload._sent', ?, '$.payload._sending', json(?))",
                           [int(count), "true" if sending else "false"])

    def _inbox_update(self, channel: str, key: str, payload_sql: str, params: list[Any]) -> None:
        with self._lock:
            try:
                with self._inbox_write():
                    self.db.execute(
                        f"UPDATE inbox SET payload = {payload_sql} WHERE channel = ? AND delivery_key = ? "
                        f"AND done_ts IS NULL AND json_extract(payload, '$.{_INBOX_KEY}') IS NOT NULL",
                        [*params, channel, self.delivery_key(valid_unicode(key))])
            except sqlite3.DatabaseError as exc:
                log.warning("inbox: could not record the reply progress of a %s delivery: %s", channel, exc)

    # ------------------------------------------------------------ conversation state

    def save_state(self, key: str, state: dict[str, Any]) -> None:
        with self._lock:
            try:
                self.db.execute("INSERT INTO conversations (key, state, updated_ts) VALUES (?, ?, ?) ON CONFLICT(key) "
                                "DO UPDATE SET state = excluded.state, updated_ts = excluded.updated_ts",
                                [key, json.dumps(state, ensure_ascii=False), utcnow()])
            except sqlite3.DatabaseError as exc:
                log.warning("could not save conversation state: %s", exc)

    def clear_state(self, key: str) -> None:
        """Forget a conversation's state (cheaper than saving an empty one: nothing is written if none)."""
        with self._lock:
            try:
                self.db.execute("DELETE FROM conversations WHERE key = ?", [key])
            except sqlite3.DatabaseError as exc:
                log.warning("could not clear conversation state: %s", exc)

    def load_state(self, key: str) -> dict[str, Any]:
        with self._lock:
            try:
                row = self.db.execute("SELECT state FROM conversations WHERE key = ?", [key]).fetchone()
            except sqlite3.DatabaseError:
                return {}
            return json.loads(row[0]) if row else {}

    # ------------------------------------------------------------ staff edits and audit

    def staff_entries(self) -> dict[str, dict[str, Any]]:
        """id → {"record": dict, "updated_ts", "actor"} for every staff record, by id."""
        out = {}
        with self._lock:
            rows = self.db.execute("SELECT id, record, updated_ts, actor FROM staff_entries ORDER BY id").fetchall()
        for entry_id, record_json, updated_ts, actor in rows:
            try:
                record = json.loads(record_json)
            except (TypeError, ValueError):
                log.warning("staff entry %r is not valid JSON; ignored", entry_id)
                continue
            if isinstance(record, dict):
                out[entry_id] = {"record": record, "updated_ts": updated_ts, "actor": actor}
        return out

    def put_staff_entry(self, entry_id: str, record: dict[str, Any], actor: str) -> None:
        """Save a staff record (replacing any earlier one) and bump kb_version. Raises if refused."""
        with self.write() as db:
            db.execute("INSERT INTO staff_entries (id, record, updated_ts, actor) VALUES (?, ?, ?, ?) "
                       "ON CONFLICT(id) DO UPDATE SET record = excluded.record, updated_ts = excluded.updated_ts, "
                       "actor = excluded.actor", [entry_id, json.dumps(record, ensure_ascii=False), utcnow(), actor])
            self._bump_kb_version(db)

    def delete_staff_entry(self, entry_id: str) -> None:
        """Remove a staff record (the YAML entry, if any, applies again) and bump kb_version."""
        with self.write() as db:
            db.execute("DELETE FROM staff_entries WHERE id = ?", [entry_id])
            self._bump_kb_version(db)

    def kb_version(self) -> int:
        """A counter of staff edits: a process that sees it change reloads the staff records."""
        with self._lock:
            row = self.db.execute("SELECT value FROM meta WHERE key = 'kb_version'").fetchone()
        return int(row[0]) if row else 0

    @staticmethod
    def _bump_kb_version(db: sqlite_utils.Database) -> None:
        db.execute("INSERT INTO meta (key, value) VALUES ('kb_version', '1') "
                   "ON CONFLICT(key) DO UPDATE SET value = CAST(value AS INTEGER) + 1")


    def audit(self, actor: str, action: str, target: str, detail: dict[str, Any]) -> None:
        self._write("audit", {"ts": utcnow(), "actor": actor, "action": action, "target": target,
                              "detail": json.dumps(detail, ensure_ascii=False)})
