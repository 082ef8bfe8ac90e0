"""What every storage backend shares: the public interface, key hashing, the logged row, the limits.

`storage.store.Store` (SQLite, the default) and a second backend (`storage/postgres.py`) implement
`StoreBackend`; `bot/` and `admin_api/` call only these methods. Nothing here touches a database.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
import os
import re
import secrets
from collections import deque
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from retrieval.normalize import redact_pii, valid_unicode

log = logging.getLogger(__name__)

INBOX_WAIT = 0.5  # seconds a webhook waits for a locked database before falling back to memory
INBOX_KEEP_DAYS = 7  # done inbox rows (delivery keys only) are kept this long to catch redeliveries
INBOX_MEMORY = 10_000  # deliveries remembered in memory while the database refuses writes
MAX_PENDING = 20_000  # queued log writes kept in memory while the database refuses them (~0.7 KB each)
LOGGED_CHARS = 4000  # the longest question text kept in the log (the engine reads 2,000)

_HASHED_KEY = re.compile(r"h:[0-9a-f]{32}")


def hash_delivery_key(hash_key: bytes, key: str) -> str:
    """`key` as the store keeps it: "h:" + a keyed HMAC-SHA256 (see Store.delivery_key); idempotent."""
    if _HASHED_KEY.fullmatch(key):
        return key
    return "h:" + hmac.new(hash_key, b"delivery:" + key.encode("utf-8", "replace"), hashlib.sha256).hexdigest()[:32]


def utcnow() -> str:
    """Times are stored as this text (UTC, microseconds): they sort and compare as strings."""
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def cutoff(days: float) -> str:
    """The stored time `days` ago (seconds precision), for retention deletes."""
    return (dt.datetime.now(dt.UTC) - dt.timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%S")


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


class QueuedWrites:
    """Log writes the database refused (locked, full, a PostgreSQL restart), kept in memory in order and
    retried before the next write, so no received question is lost. A backend provides `_lock`, `_write`,
    `_insert(table, row)`, `_flush_locked()` (which calls `_drain_pending`) and REFUSED, its exceptions
    that mean "not now"."""

    REFUSED: tuple[type[Exception], ...]
    _pending: deque[tuple[str, dict[str, Any]]]
    _lock: Any
    dropped: int

    def _queue(self, table: str, row: dict[str, Any], exc: Exception) -> None:
        log.warning("database write to %s failed (%s); queued (%d pending)", table, exc, len(self._pending) + 1)
        self._pending.append((table, row))
        if len(self._pending) > MAX_PENDING:  # bounded memory: the oldest queued write is dropped
            self._pending.popleft()
            self.dropped += 1

    def _write_vote(self, question_id: int | None, entry_id: str | None, value: int, channel: str,
                    user_hash: str) -> bool:
        """A new vote row, written or queued like any log write (record_feedback's last step)."""
        self._write("feedback", {"ts": utcnow(), "question_id": question_id, "entry_id": entry_id,
                                 "value": value, "channel": channel, "user_hash": user_hash})
        return True

    def _drain_pending(self) -> None:
        while self._pending:
            table, row = self._pending[0]
            self._insert(table, row)  # raises if the database still refuses
            self._pending.popleft()

    def _delivery_queued(self, channel: str, message_id: str) -> bool:
        """Is this delivery's question among the queued writes (so already received)?"""
        return any(t == "questions" and r.get("channel") == channel and r.get("message_id") == message_id
                   for t, r in self._pending)

    def flush(self) -> int:
        """Retry queued writes; returns how many are still pending."""
        with self._lock:
            try:
                self._flush_locked()
            except self.REFUSED as exc:
                log.warning("database still refuses writes: %s", exc)
            return len(self._pending)

    @property
    def pending(self) -> int:
        return len(self._pending)


class KeyHashing:
    """User ids and platform keys as every backend stores them (the same key gives the same hashes,
    so a log can move between backends), and the question row built from a LoggedQuestion."""

    _hash_key: bytes

    def hash_user(self, channel: str, user_id: str) -> str:
        return hmac.new(self._hash_key, f"{channel}:{user_id}".encode(), hashlib.sha256).hexdigest()[:32]

    def delivery_key(self, key: str) -> str:
        """A platform message or delivery key as stored: a keyed hash, like user ids (a Telegram key
        "tg:<chat id>:<message id>" names its sender: in a private chat the chat id is the user id).
        Idempotent: a key already hashed is returned as it is."""
        return hash_delivery_key(self._hash_key, key)

    def question_row(self, q: LoggedQuestion) -> dict[str, Any]:
        """The `questions` row for `q`: raw text never stored, only redacted; ids and keys hashed."""
        return {
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
        }


class StoreBackend(Protocol):
    """The storage interface `bot/` and `admin_api/` use. Failure contract: when the database refuses
    writes, log_question/record_feedback/audit queue in memory (MAX_PENDING, oldest dropped and
    counted in `dropped`) and are retried on the next write and by flush(); inbox_accept waits at most
    INBOX_WAIT seconds, then remembers the key in memory and returns True; the conversation-state
    methods swallow errors (load_state returns {}); nothing raises into the bot."""

    dropped: int  # queued writes dropped because the queue was full
    in_memory: bool  # the database could not be opened at all: nothing is kept

    @property
    def pending(self) -> int: ...  # queued log writes

    def hash_user(self, channel: str, user_id: str) -> str: ...
    def delivery_key(self, key: str) -> str: ...

    # question log and feedback
    def log_question(self, q: LoggedQuestion) -> int | None: ...
    def seen_message(self, channel: str, message_id: str) -> bool: ...
    def record_feedback(self, *, channel: str, user_id: str, value: int, entry_id: str | None = None,
                        question_id: int | None = None) -> bool: ...
    def delete_older_than(self, days: int) -> int: ...
    def flush(self) -> int: ...

    # webhook inbox
    def inbox_accept(self, channel: str, key: str, payload: dict[str, Any]) -> bool: ...
    def inbox_done(self, channel: str, key: str) -> None: ...
    def inbox_pending(self, channel: str) -> list[tuple[str, dict[str, Any]]]: ...
    def inbox_claim(self, channel: str, limit: int = 100) -> list[tuple[str, dict[str, Any]]]: ...
    def inbox_record_reply(self, channel: str, key: str, reply: dict[str, Any], sent: int = 0) -> None: ...
    def inbox_mark_sent(self, channel: str, key: str, count: int, sending: bool = False) -> None: ...
    def inbox_prune(self, older_than_days: float) -> int: ...

    # conversation state
    def save_state(self, key: str, state: dict[str, Any]) -> None: ...
    def load_state(self, key: str) -> dict[str, Any]: ...
    def clear_state(self, key: str) -> None: ...

    # staff edits and audit
    def staff_entries(self) -> dict[str, dict[str, Any]]: ...
    def put_staff_entry(self, entry_id: str, record: dict[str, Any], actor: str) -> None: ...
    def delete_staff_entry(self, entry_id: str) -> None: ...
    def kb_version(self) -> int: ...
    def audit(self, actor: str, action: str, target: str, detail: dict[str, Any]) -> None: ...

    # staff accounts and entry versions (storage.staff_records.StaffRecords, one implementation for both)
    def account(self, name: str) -> dict[str, Any] | None: ...
    def accounts(self) -> list[dict[str, Any]]: ...
    def add_account(self, name: str, role: str, password_hash: str) -> bool: ...
    def update_account(self, name: str, *, role: str | None = None, password_hash: str | None = None,
                       disabled: bool | None = None) -> bool: ...
    def add_version(self, entry_id: str, *, actor: str, action: str, status: str, record: dict[str, Any] | None,
                    previous: dict[str, Any] | None, reviewer: str | None = None, note: str = "") -> int: ...
    def version(self, version_id: int) -> dict[str, Any] | None: ...
    def versions(self, entry_id: str | None = None, status: str | None = None,
                 limit: int = 100) -> list[dict[str, Any]]: ...
    def decide_version(self, version_id: int, status: str, reviewer: str, *, expected: str = "pending") -> bool: ...
    def hour_counts(self, start: str, end: str, channel: str | None = None, topic: str | None = None) -> list[int]: ...

    # handoffs to a staff member ("Hỏi cán bộ"; storage.handoffs.HandoffStore, one implementation for both)
    def handoff_open(self, *, channel: str, user_id: str, chat_id: str, reason: str, topic: str | None,
                     now: str, text: str | None = None, message_id: str | None = None,
                     history: int = 3) -> tuple[Any, bool]: ...
    def handoff_active(self, channel: str, user_id: str) -> Any: ...
    def handoff_latest(self, channel: str, user_id: str) -> Any: ...
    def handoff_citizen_message(self, handoff_id: int, text: str, now: str, *, message_id: str | None = None,
                                chat_id: str | None = None) -> bool: ...
    def handoff_bot_message(self, handoff_id: int, text: str, now: str) -> None: ...
    def handoff_list(self, statuses: tuple[str, ...] = ..., limit: int = 100) -> list[Any]: ...
    def handoff_get(self, handoff_id: int) -> Any: ...
    def handoff_take(self, handoff_id: int, staff: str, now: str) -> Any: ...
    def handoff_staff_message(self, handoff_id: int, staff: str, text: str, now: str, delivery: str) -> int: ...
    def handoff_close(self, handoff_id: int, staff: str, now: str) -> Any: ...
    def handoff_set_kb_action(self, handoff_id: int, action: dict[str, Any], staff: str, now: str) -> None: ...
    def recent_questions(self, channel: str, user_id: str, limit: int = 2) -> list[tuple[str, str | None]]: ...

    # signals of misunderstanding and the log's text search (storage.signal_log, bot/signals.py)
    def log_signal(self, *, channel: str, user_id: str, kind: str, question_id: int | None = None,
                   entry_id: str | None = None, detail: str | None = None) -> int | None: ...
    def last_question(self, channel: str, user_id: str, before_id: int | None = None) -> dict[str, Any] | None: ...
    def search_clause(self, words: list[str]) -> tuple[str, list[Any]]: ...

    # the schema: pending migrations applied (names returned); raises if the database refuses
    def migrate(self) -> list[str]: ...

    # one transaction under the store's writer lock (for writes no method above covers)
    def write(self) -> AbstractContextManager[Any]: ...

