"""Handoffs ("Hỏi cán bộ"): a citizen's conversation handed to a staff member, on either backend.

One `handoffs` row per handoff (status waiting → owned → closed; at most one open per chat, a unique
partial index) and its messages in `handoff_messages` (citizen, staff, bot), every text PII-redacted
like the question log. The SQL is written once for both backends (`?` placeholders): each backend
gives `_handoff_tx()`, one transaction that runs it (see `HandoffStore`).

Who the citizen is: the same keyed hash as the question log's user id (`hash_user`). Where the reply
goes: the platform chat id, kept in clear in `chat_id` while the handoff is open, the way the webhook
inbox keeps a delivery's reply address until it is answered. A chat id is the platform's opaque number
for the bot's conversation with that person (no name, phone or text); a staff reply cannot be sent
without it, and it is cleared when the handoff is closed.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from retrieval.normalize import redact_pii, valid_unicode

HANDOFF_STATUSES = ("waiting", "owned", "closed")
OPEN_STATUSES = ("waiting", "owned")
HANDOFF_REASONS = ("asked", "not_sure", "downvote")
HANDOFF_TEXT_CHARS = 4000  # the longest message text kept (the question log keeps as much)

# SQL both backends run: the step `0005_handoff` of storage/schema.py and storage/postgres_schema.py
# differ only in their column types.
_COLUMNS = ("id, channel, user_hash, chat_id, status, reason, topic, requested_ts, owner, owned_ts, closed_ts, "
            "updated_ts, last_message_id, kb_action")

# Retention (the backends' delete_older_than, one parameter: the cutoff): closed handoffs and their messages go
# with the question log; open ones stay until closed.
RETENTION_DELETES = (
    "DELETE FROM handoff_messages WHERE handoff_id IN (SELECT id FROM handoffs WHERE status = 'closed' "
    "AND closed_ts < ?)",
    "DELETE FROM handoffs WHERE status = 'closed' AND closed_ts < ?",
)

Run = Callable[[str, list[Any]], list[tuple[Any, ...]]]


@dataclass(frozen=True)
class HandoffMessage:
    id: int
    ts: str
    author: str  # "citizen", "staff" or "bot"
    text: str  # redacted
    staff: str | None = None  # who wrote it (staff messages)
    delivery: str | None = None  # staff messages: "sent", or why it was not sent


@dataclass(frozen=True)
class Handoff:
    id: int
    channel: str
    user_hash: str
    chat_id: str | None  # the reply address while open (None once closed)
    status: str
    reason: str
    topic: str | None
    requested_ts: str
    owner: str | None
    owned_ts: str | None
    closed_ts: str | None
    updated_ts: str
    last_message_id: str | None  # the citizen's last platform message id (a staff reply may quote it)
    kb_action: dict[str, Any] | None = None
    messages: tuple[HandoffMessage, ...] = field(default=(), compare=False)

    @property
    def open(self) -> bool:
        return self.status in OPEN_STATUSES

    @classmethod
    def of(cls, row: tuple[Any, ...]) -> Handoff:
        values = list(row)
        values[13] = json.loads(values[13]) if values[13] else None
        return cls(*values)


def redacted(text: str) -> str:
    return valid_unicode(redact_pii(valid_unicode(text), HANDOFF_TEXT_CHARS))


class HandoffStore:
    """The handoff methods of `StoreBackend`, shared by both backends. A backend provides
    `_handoff_tx(write)`: a context manager yielding `run(sql, params) -> rows`, inside one transaction
    when `write` (`?` placeholders; times returned as `utcnow()` text; reads may raise when the
    database is down, callers in the bot catch that), plus `hash_user`, `delivery_key` and `audit`."""

    def _handoff_tx(self, write: bool = True) -> AbstractContextManager[Run]:
        raise NotImplementedError

    if TYPE_CHECKING:  # given by the backend class (KeyHashing and its own audit)
        def hash_user(self, channel: str, user_id: str) -> str: ...
        def delivery_key(self, key: str) -> str: ...
        def audit(self, actor: str, action: str, target: str, detail: dict[str, Any]) -> None: ...

    # ------------------------------------------------------------ the citizen's side

    def handoff_open(self, *, channel: str, user_id: str, chat_id: str, reason: str, topic: str | None,
                     now: str, text: str | None = None, message_id: str | None = None,
                     history: int = 3) -> tuple[Handoff, bool]:
        """The chat's open handoff, or a new waiting one (audited "handoff.request"). Returns (handoff,
        created). A new one starts with the citizen's last `history` logged questions (already redacted)
        for context; `text`, if given, is the citizen's message that asked (stored redacted)."""
        if reason not in HANDOFF_REASONS:
            raise ValueError(f"unknown handoff reason {reason!r}")
        user_hash = self.hash_user(channel, user_id)
        with self._handoff_tx() as run:
            found = self._open_row(run, channel, user_hash)
            created = found is None
            if created:
                run("INSERT INTO handoffs (channel, user_hash, chat_id, status, reason, topic, requested_ts, "
                    "updated_ts, last_message_id) VALUES (?, ?, ?, 'waiting', ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                    [channel, user_hash, valid_unicode(chat_id), reason, topic, now, now, message_id])
                found = self._open_row(run, channel, user_hash)
                assert found is not None
                earlier = run("SELECT ts, text FROM questions WHERE channel = ? AND user_hash = ? "
                              "ORDER BY id DESC LIMIT ?", [channel, user_hash, int(history)])
                for ts, logged in reversed(earlier):
                    self._add(run, found.id, "citizen", logged or "", ts)
            assert found is not None
            if text:
                self._add(run, found.id, "citizen", text, now, message_key=message_id)
        if created:
            self.audit("citizen", "handoff.request", str(found.id),
                       {"channel": channel, "reason": reason, "topic": topic})
        return found, created

    def handoff_active(self, channel: str, user_id: str) -> Handoff | None:
        """The chat's handoff that is waiting or owned, if any (the bot stays silent then)."""
        with self._handoff_tx(write=False) as run:
            return self._open_row(run, channel, self.hash_user(channel, user_id))

    def handoff_latest(self, channel: str, user_id: str) -> Handoff | None:
        """The chat's most recent handoff, open or closed, with its messages (the web chat polls it)."""
        with self._handoff_tx(write=False) as run:
            rows = run(f"SELECT {_COLUMNS} FROM handoffs WHERE channel = ? AND user_hash = ? ORDER BY id DESC LIMIT 1",
                       [channel, self.hash_user(channel, user_id)])
            return self._with_messages(run, Handoff.of(rows[0])) if rows else None

    def handoff_citizen_message(self, handoff_id: int, text: str, now: str, *, message_id: str | None = None,
                                chat_id: str | None = None) -> bool:
        """A citizen's message while the handoff is open: kept (redacted); False for a redelivery."""
        with self._handoff_tx() as run:
            added = self._add(run, handoff_id, "citizen", text, now, message_key=message_id)
            if added:
                run("UPDATE handoffs SET updated_ts = ?, last_message_id = coalesce(?, last_message_id), "
                    "chat_id = coalesce(?, chat_id) WHERE id = ? AND status <> 'closed'",
                    [now, message_id, chat_id, handoff_id])
            return added

    def handoff_bot_message(self, handoff_id: int, text: str, now: str) -> None:
        """What the bot said in the handoff (the acknowledgement, the closing line): part of its history."""
        with self._handoff_tx() as run:
            self._add(run, handoff_id, "bot", text, now)

    # ------------------------------------------------------------ the staff side

    def handoff_list(self, statuses: tuple[str, ...] = OPEN_STATUSES, limit: int = 100) -> list[Handoff]:
        """Handoffs in these statuses, oldest request first (the queue), with their messages."""
        statuses = tuple(s for s in statuses if s in HANDOFF_STATUSES) or OPEN_STATUSES
        marks = ", ".join("?" * len(statuses))
        with self._handoff_tx(write=False) as run:
            rows = run(f"SELECT {_COLUMNS} FROM handoffs WHERE status IN ({marks}) "
                       "ORDER BY requested_ts, id LIMIT ?", [*statuses, int(limit)])
            return [self._with_messages(run, Handoff.of(r)) for r in rows]

    def handoff_get(self, handoff_id: int) -> Handoff | None:
        with self._handoff_tx(write=False) as run:
            rows = run(f"SELECT {_COLUMNS} FROM handoffs WHERE id = ?", [int(handoff_id)])
            return self._with_messages(run, Handoff.of(rows[0])) if rows else None

    def handoff_take(self, handoff_id: int, staff: str, now: str) -> Handoff | None:
        """A staff member owns the handoff (also taking it over from another); None if closed or unknown."""
        with self._handoff_tx() as run:
            before = run("SELECT owner FROM handoffs WHERE id = ? AND status <> 'closed'", [int(handoff_id)])
            if not before:
                return None
            run("UPDATE handoffs SET status = 'owned', owner = ?, owned_ts = ?, updated_ts = ? WHERE id = ?",
                [staff, now, now, int(handoff_id)])
        self.audit(staff, "handoff.take", str(handoff_id), {"previous_owner": before[0][0]})
        return self.handoff_get(handoff_id)

    def handoff_staff_message(self, handoff_id: int, staff: str, text: str, now: str, delivery: str) -> int:
        """A staff reply and how its sending went ("sent" or the reason it was not); audited. Returns its id."""
        with self._handoff_tx() as run:
            rows = run("INSERT INTO handoff_messages (handoff_id, ts, author, staff, text, delivery) "
                       "VALUES (?, ?, 'staff', ?, ?, ?) RETURNING id",
                       [int(handoff_id), now, staff, redacted(text), delivery])
            run("UPDATE handoffs SET updated_ts = ? WHERE id = ?", [now, int(handoff_id)])
        self.audit(staff, "handoff.reply", str(handoff_id), {"message_id": rows[0][0], "delivery": delivery})
        return int(rows[0][0])

    def handoff_close(self, handoff_id: int, staff: str, now: str) -> Handoff | None:
        """Closed: the bot answers the chat again. The reply address is dropped. None if not open."""
        with self._handoff_tx() as run:
            rows = run(f"SELECT {_COLUMNS} FROM handoffs WHERE id = ? AND status <> 'closed'", [int(handoff_id)])
            if not rows:
                return None
            run("UPDATE handoffs SET status = 'closed', closed_ts = ?, updated_ts = ?, chat_id = NULL, "
                "owner = coalesce(owner, ?) WHERE id = ?", [now, now, staff, int(handoff_id)])
        self.audit(staff, "handoff.close", str(handoff_id), {})
        return Handoff.of(rows[0])  # as it was before closing: the caller still needs the reply address

    def handoff_set_kb_action(self, handoff_id: int, action: dict[str, Any], staff: str, now: str) -> None:
        """Remember what the staff answer became in the knowledge base (a paraphrase, a draft entry)."""
        with self._handoff_tx() as run:
            run("UPDATE handoffs SET kb_action = ?, updated_ts = ? WHERE id = ?",
                [json.dumps(action, ensure_ascii=False), now, int(handoff_id)])
        self.audit(staff, "handoff.kb", str(handoff_id), action)

    def recent_questions(self, channel: str, user_id: str, limit: int = 2) -> list[tuple[str, str | None]]:
        """(kind, topic) of this user's last `limit` logged questions, newest first ("not sure" twice)."""
        with self._handoff_tx(write=False) as run:
            rows = run("SELECT kind, topic FROM questions WHERE channel = ? AND user_hash = ? ORDER BY id DESC "
                       "LIMIT ?", [channel, self.hash_user(channel, user_id), int(limit)])
        return [(str(kind), topic) for kind, topic in rows]

    # ------------------------------------------------------------ helpers

    @staticmethod
    def _open_row(run: Run, channel: str, user_hash: str) -> Handoff | None:
        rows = run(f"SELECT {_COLUMNS} FROM handoffs WHERE channel = ? AND user_hash = ? AND status <> 'closed'",
                   [channel, user_hash])
        return Handoff.of(rows[0]) if rows else None

    def _add(self, run: Run, handoff_id: int, author: str, text: str, now: str, *,
             message_key: str | None = None) -> bool:
        key = self.delivery_key(message_key) if message_key else None
        rows = run("INSERT INTO handoff_messages (handoff_id, ts, author, text, message_key) VALUES (?, ?, ?, ?, ?) "
                   "ON CONFLICT DO NOTHING RETURNING id", [int(handoff_id), now, author, redacted(text), key])
        return bool(rows)

    @staticmethod
    def _with_messages(run: Run, handoff: Handoff) -> Handoff:
        rows = run("SELECT id, ts, author, text, staff, delivery FROM handoff_messages WHERE handoff_id = ? "
                   "ORDER BY id", [handoff.id])
        return Handoff(**{**handoff.__dict__, "messages": tuple(HandoffMessage(*r) for r in rows)})


def rows_of(cursor: Any, convert: Callable[[Any], Any] = lambda v: v) -> list[tuple[Any, ...]]:
    """A cursor's rows (none for a statement without a result), each value through `convert`."""
    if getattr(cursor, "description", None) is None:
        return []
    return [tuple(convert(v) for v in row) for row in cursor.fetchall()]
