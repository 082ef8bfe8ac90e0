"""The question log and everything else the service stores, on SQLite (sqlite-utils).

One owner for the schema: tables are created and migrated here on start.
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
import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import sqlite3
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlite_utils

from retrieval.normalize import redact_pii, valid_unicode

log = logging.getLogger(__name__)

SCHEMA_VERSION = 3  # 2: inbox; 3: message and delivery keys stored as keyed hashes
INBOX_WAIT = 0.5  # seconds a webhook waits for a locked database before falling back to memory
INBOX_KEEP_DAYS = 7  # done inbox rows (delivery keys only) are kept this long to catch redeliveries
INBOX_MEMORY = 10_000  # deliveries remembered in memory while the database refuses writes
MAX_PENDING = 20_000  # queued log writes kept in memory while the database refuses them (~0.7 KB each)
LOGGED_CHARS = 4000  # the longest question text kept in the log (the engine reads 2,000)


_HASHED_KEY = re.compile(r"h:[0-9a-f]{32}")
_INBOX_KEY = "__inbox_key__"  # the delivery's own key, kept inside its payload until it is answered


def hash_delivery_key(hash_key: bytes, key: str) -> str:
    """`key` as the store keeps it: "h:" + a keyed HMAC-SHA256 (see Store.delivery_key); idempotent."""
    if _HASHED_KEY.fullmatch(key):
        return key
    return "h:" + hmac.new(hash_key, b"delivery:" + key.encode("utf-8", "replace"), hashlib.sha256).hexdigest()[:32]


def utcnow() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class LoggedQuestion:
    channel: str
    user_id: str
    text: str  # raw; redacted before storage
    normalized: str
    topic: str | None
    entry_id: str | None
    score: float
    outcome: str
    kind: str
    latency_ms: float
    message_id: str | None = None
    ts: str | None = None


def load_hash_key(data_dir: Path, configured: str = "") -> bytes:
    """The HMAC key for user ids: configured, or generated once and kept in the data dir."""
    if configured:
        return configured.encode()
    path = data_dir / "hash.key"
    if path.exists():
        return path.read_bytes().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32).encode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(key)
    return key


class Store:
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
        self.migrate()

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

    def migrate(self) -> None:
        db = self.db
        try:
            with self._lock:
                if "questions" not in db.table_names():
                    db["questions"].create({
                        "id": int, "ts": str, "channel": str, "user_hash": str, "message_id": str,
                        "text": str, "normalized": str, "topic": str, "entry_id": str, "score": float,
                        "outcome": str, "kind": str, "latency_ms": float, "feedback": int,
                    }, pk="id", not_null={"ts", "channel", "outcome"})
                    db["questions"].create_index(["ts"])
                    db["questions"].create_index(["topic", "ts"])
                    db["questions"].create_index(["outcome", "ts"])
                    db["questions"].create_index(["channel", "message_id"], unique=True)
                if "feedback" not in db.table_names():
                    db["feedback"].create({
                        "id": int, "ts": str, "question_id": int, "entry_id": str, "value": int,
                        "channel": str, "user_hash": str,
                    }, pk="id")
                    db["feedback"].create_index(["entry_id"])
                # One vote per (user, question): looked up on every vote.
                db.execute("CREATE INDEX IF NOT EXISTS feedback_user_question ON feedback (user_hash, question_id)")
                if "audit" not in db.table_names():
                    db["audit"].create({"id": int, "ts": str, "actor": str, "action": str, "target": str,
                                        "detail": str}, pk="id")
                if "staff_entries" not in db.table_names():
                    db["staff_entries"].create({"id": str, "record": str, "updated_ts": str, "actor": str}, pk="id")
                if "conversations" not in db.table_names():
                    db["conversations"].create({"key": str, "state": str, "updated_ts": str}, pk="key")
                if "inbox" not in db.table_names():
                    db["inbox"].create({"id": int, "channel": str, "delivery_key": str, "payload": str,
                                        "received_ts": str, "done_ts": str}, pk="id",
                                       not_null={"channel", "delivery_key", "received_ts"})
                    db["inbox"].create_index(["channel", "delivery_key"], unique=True)
                    db["inbox"].create_index(["channel", "done_ts"])
                if "meta" not in db.table_names():
                    db["meta"].create({"key": str, "value": str}, pk="key")
                row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
                if row is not None and int(row[0]) < 3:
                    self._hash_stored_keys()
                db["meta"].upsert({"key": "schema_version", "value": str(SCHEMA_VERSION)}, pk="key")
        except sqlite3.DatabaseError as exc:
            log.error("could not migrate %s: %s", self.path, exc)

    def _hash_stored_keys(self) -> None:
        """Schema 3: keys written in clear by earlier versions ("tg:<chat id>:<message id>") hashed in place."""
        self.db.conn.create_function("bhxh_delivery_key", 1, self.delivery_key, deterministic=True)
        self.db.execute("BEGIN IMMEDIATE")
        try:
            self.db.execute("UPDATE questions SET message_id = bhxh_delivery_key(message_id) "
                            "WHERE message_id IS NOT NULL AND message_id NOT LIKE 'h:%'")
            self.db.execute("UPDATE inbox SET delivery_key = bhxh_delivery_key(delivery_key) "
                            "WHERE delivery_key NOT LIKE 'h:%'")
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise

    # ------------------------------------------------------------ helpers

    def hash_user(self, channel: str, user_id: str) -> str:
        return hmac.new(self._hash_key, f"{channel}:{user_id}".encode(), hashlib.sha256).hexdigest()[:32]

    def delivery_key(self, key: str) -> str:
        """A platform message or delivery key as stored: a keyed hash, like user ids (a Telegram key
        "tg:<chat id>:<message id>" names its sender: in a private chat the chat id is the user id).
        Idempotent: a key already hashed is returned as it is."""
        return hash_delivery_key(self._hash_key, key)

    def _write(self, table: str, row: dict[str, Any]) -> int | None:
        """Insert a row, or queue it if the database refuses; returns the row id if written."""
        with self._lock:
            try:
                self._flush_locked()
                return self._insert(table, row)
            except sqlite3.DatabaseError as exc:  # locked, read-only, disk full, I/O error
                log.warning("database write to %s failed (%s); queued (%d pending)", table, exc,
                            len(self._pending) + 1)
                self._pending.append((table, row))
                if len(self._pending) > MAX_PENDING:  # bounded memory: the oldest queued write is dropped
                    self._pending.popleft()
                    self.dropped += 1
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
        while self._pending:
            table, row = self._pending[0]
            self._insert(table, row)  # raises if the database still refuses
            self._pending.popleft()

    def flush(self) -> int:
        """Retry queued writes; returns how many are still pending."""
        with self._lock:
            try:
                self._flush_locked()
            except sqlite3.DatabaseError as exc:
                log.warning("database still refuses writes: %s", exc)
            return len(self._pending)

    @property
    def pending(self) -> int:
        return len(self._pending)

    # ------------------------------------------------------------ question log

    def log_question(self, q: LoggedQuestion) -> int | None:
        return self._write("questions", {
            "ts": q.ts or utcnow(),
            "channel": q.channel,
            "user_hash": self.hash_user(q.channel, q.user_id),
            "message_id": self.delivery_key(q.message_id) if q.message_id else q.message_id,
            # redact_pii cuts the text to LOGGED_CHARS before any other work (linear, bounded cost:
            # the raw text may be 20,000 characters) and stores it as the engine read it.
            "text": valid_unicode(redact_pii(q.text, LOGGED_CHARS)),
            "normalized": valid_unicode(redact_pii(q.normalized, LOGGED_CHARS)),
            "topic": q.topic,
            "entry_id": q.entry_id,
            "score": round(float(q.score), 4),
            "outcome": q.outcome,
            "kind": q.kind,
            "latency_ms": round(float(q.latency_ms), 2),
            "feedback": None,
        })

    def seen_message(self, channel: str, message_id: str) -> bool:
        """Has this channel delivery already been logged (duplicate webhook)?"""
        message_id = self.delivery_key(message_id)
        with self._lock:
            if any(t == "questions" and r.get("channel") == channel and r.get("message_id") == message_id
                   for t, r in self._pending):
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
        self._write("feedback", {"ts": utcnow(), "question_id": question_id, "entry_id": entry_id,
                                 "value": value, "channel": channel, "user_hash": user_hash})
        return True

    def delete_older_than(self, days: int) -> int:
        """Retention: delete questions, feedback, audit entries (their details may quote questions) and
        conversation states older than `days` days (review F20); returns how many questions."""
        cutoff = (dt.datetime.now(dt.UTC) - dt.timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%S")
        with self._lock:
            n = self.db.execute("DELETE FROM questions WHERE ts < ?", [cutoff]).rowcount
            self.db.execute("DELETE FROM feedback WHERE ts < ?", [cutoff])
            self.db.execute("DELETE FROM audit WHERE ts < ?", [cutoff])
            self.db.execute("DELETE FROM conversations WHERE updated_ts < ?", [cutoff])
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
        cutoff = (dt.datetime.now(dt.UTC) - dt.timedelta(days=older_than_days)).strftime("%Y-%m-%dT%H:%M:%S")
        with self._lock:
            return self.db.execute("DELETE FROM inbox WHERE done_ts IS NOT NULL AND done_ts < ?", [cutoff]).rowcount

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

    # ------------------------------------------------------------ audit

    def audit(self, actor: str, action: str, target: str, detail: dict[str, Any]) -> None:
        self._write("audit", {"ts": utcnow(), "actor": actor, "action": action, "target": target,
                              "detail": json.dumps(detail, ensure_ascii=False)})
