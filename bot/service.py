"""What every channel calls: one message from one user → one logged Reply.

The service adds what the engine itself does not know about: duplicate
deliveries, per-user rate limits, pending choices ("reply 1, 2 or 3") that
survive a restart, logging every question once (redacted) before the reply is
sent, and feedback.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, replace

from bot.engine import Engine
from bot.reply import Choice, Reply
from retrieval.normalize import valid_unicode
from storage.store import LoggedQuestion, Store

RATE_LIMITED_TEXT = ("Bạn đang gửi tin nhắn hơi nhanh. Vui lòng chờ một chút rồi hỏi tiếp nhé; "
                     "tôi vẫn ở đây để hỗ trợ bạn.")


class RateLimiter:
    """Sliding-window limit: at most `limit` events per `window` seconds per key.

    Memory is bounded and every call is O(1) amortized: keys are kept in order of last use, keys
    idle for a whole window are dropped from the front as calls come in, and past `max_keys` the
    least recently used key is dropped (that user gets a fresh allowance; a flood of new keys cannot
    grow the table)."""

    def __init__(self, limit: int, window: float, max_keys: int = 100_000) -> None:
        self.limit, self.window, self.max_keys = limit, window, max_keys
        self._events: OrderedDict[str, list[float]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._events)

    def allow(self, key: str, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        with self._lock:
            while self._events:  # forget keys idle for a whole window (least recently used first)
                oldest = next(iter(self._events.values()))
                if oldest and now - oldest[-1] <= self.window:
                    break
                self._events.popitem(last=False)
            events = self._events.get(key)
            if events is None:
                events = self._events[key] = []
                while len(self._events) > self.max_keys:
                    self._events.popitem(last=False)
            else:
                self._events.move_to_end(key)
            expired = next((i for i, t in enumerate(events) if now - t <= self.window), len(events))
            del events[:expired]
            if len(events) >= self.limit:
                return False
            events.append(now)
            return True


@dataclass(frozen=True)
class Handled:
    reply: Reply
    question_id: int | None
    duplicate: bool = False
    rate_limited: bool = False


class Service:
    def __init__(self, engine: Engine, store: Store, *, user_limit: int = 20, user_window: float = 60.0) -> None:
        self.engine = engine
        self.store = store
        self.limiter = RateLimiter(user_limit, user_window)

    def _state_key(self, channel: str, user_id: str) -> str:
        return f"{channel}:{self.store.hash_user(channel, user_id)}"

    def handle(self, channel: str, user_id: str, text: object, *, message_id: str | None = None,
               on: dt.date | None = None) -> Handled:
        """Answer one message. Returns None-free results; duplicates are flagged, not re-answered."""
        user_id = valid_unicode(user_id)
        text = valid_unicode(text) if isinstance(text, str) else text
        message_id = valid_unicode(message_id) if message_id is not None else None
        if message_id is not None and self.store.seen_message(channel, message_id):
            return Handled(Reply("invalid", ""), None, duplicate=True)
        if not self.limiter.allow(f"{channel}:{user_id}"):
            return Handled(Reply("invalid", RATE_LIMITED_TEXT), None, rate_limited=True)
        started = time.perf_counter()
        key = self._state_key(channel, user_id)
        reply = self._pick_choice(key, text, on) or self.engine.ask(text, on)
        if reply.choices:
            self.store.save_state(key, {"choices": [c.to_json() for c in reply.choices]})
        elif reply.kind in ("answer", "personal"):
            self.store.clear_state(key)
        latency_ms = (time.perf_counter() - started) * 1000
        question_id = self.store.log_question(LoggedQuestion(
            channel=channel, user_id=user_id, text=text if isinstance(text, str) else "",
            normalized=reply.normalized, topic=reply.topic, entry_id=reply.entry_id, score=reply.score,
            outcome=reply.outcome, kind=reply.kind, latency_ms=latency_ms, message_id=message_id))
        return Handled(reply, question_id)

    def _pick_choice(self, key: str, text: object, on: dt.date | None) -> Reply | None:
        """A reply of "1", "2", "3" picks from the choices last offered to this user."""
        # isdecimal, not isdigit: "¹" or "①" are digits that int() refuses
        if not isinstance(text, str) or not text.strip().isdecimal() or len(text.strip()) > 2:
            return None
        choices = self.store.load_state(key).get("choices") or []
        n = int(text.strip())
        if not 1 <= n <= len(choices):
            return None
        reply = self.engine.entry_reply(choices[n - 1]["entry_id"], on)
        return replace(reply, normalized=text.strip()) if reply else None

    def choose(self, channel: str, user_id: str, entry_id: str, on: dt.date | None = None) -> Reply | None:
        """A button press naming an entry directly (stale ids after an edit give None)."""
        user_id, entry_id = valid_unicode(user_id), valid_unicode(entry_id)
        reply = self.engine.entry_reply(entry_id, on)
        if reply is not None:
            self.store.clear_state(self._state_key(channel, user_id))
        return reply

    def feedback(self, channel: str, user_id: str, value: int, *, entry_id: str | None = None,
                 question_id: int | None = None) -> bool:
        """False when the vote names a question this user did not ask (nothing recorded)."""
        user_id = valid_unicode(user_id)
        entry_id = valid_unicode(entry_id) if entry_id is not None else None
        return self.store.record_feedback(channel=channel, user_id=user_id, value=value, entry_id=entry_id,
                                   question_id=question_id)

    @staticmethod
    def choice_list(choices: tuple[Choice, ...]) -> str:
        return "\n".join(f"{n}. {c.question}" for n, c in enumerate(choices, start=1))
