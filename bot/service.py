"""What every channel calls: one message from one user → one logged Reply.

The service adds what the engine itself does not know about: duplicate
deliveries, per-user rate limits, the conversation state (pending choices
"reply 1, 2 or 3" and the guided calculator's step, `bot.conversation`) that
survives a restart, logging every question once (redacted) before the reply is
sent, and feedback.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from bot import calc_flow, messages, signals
from bot.conversation import NONE_OF_THESE_ID, ConversationState, LastQuestion, follow_up, parse_pick, picks_none
from bot.engine import Engine
from bot.handoff import Handoff
from bot.reply import Choice, Reply
from bot.short_answer import asks_details, details_of
from retrieval.normalize import valid_unicode
from storage.store import LoggedQuestion, Store

log = logging.getLogger(__name__)

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


class SharedRateLimiter:
    """The same limit counted across every worker, in the shared store (`rate_hit` on PostgreSQL): with
    N workers an in-memory limiter would let a user through N times as often."""

    def __init__(self, store: Any, name: str, limit: int, window: float) -> None:
        self.store, self.name, self.limit, self.window = store, name, limit, window

    def allow(self, key: str, now: float | None = None) -> bool:
        return bool(self.store.rate_hit(f"{self.name}:{key}", self.limit, self.window))


def rate_limiter(store: Any, name: str, limit: int, window: float) -> RateLimiter | SharedRateLimiter:
    """Shared counters when the store has them (several workers), else in memory (SQLite: one process).
    `name` keeps different limits on the same key (questions, votes) apart."""
    if callable(getattr(store, "rate_hit", None)):
        return SharedRateLimiter(store, name, limit, window)
    return RateLimiter(limit, window)


class KbFollower:
    """Keeps a worker's engine in step with staff edits made on other workers: each change the store
    reports (`watch_kb_changes`: LISTEN/NOTIFY plus a periodic version check) marks the knowledge base
    stale, and one background thread rebuilds the engine (YAML + staff records, embeddings from the
    cache) and swaps it in with one assignment, so requests in flight finish on the old engine and none
    waits. Changes arriving during a rebuild cause one more rebuild, not one each."""

    def __init__(self, service: Service, rebuild: Callable[[], Engine | None]) -> None:
        self.service, self.rebuild = service, rebuild
        self.version = 0  # the last kb_version a finished rebuild started after
        self.rebuilds = 0
        self._lock = threading.Lock()
        self._wanted = 0  # the newest version reported
        self._running = False

    def changed(self, version: int) -> None:
        """From the store's watcher thread: returns at once."""
        log.info("knowledge base version %d noticed", version)
        with self._lock:
            self._wanted = max(self._wanted, version, self.version + 1)
            if self._running:
                return
            self._running = True
        threading.Thread(target=self._rebuild_until_current, name="kb-rebuild", daemon=True).start()

    def _rebuild_until_current(self) -> None:
        while True:
            with self._lock:
                if self._wanted <= self.version:
                    self._running = False
                    return
                target = self._wanted
            started = time.perf_counter()
            try:
                engine = self.rebuild()
            except Exception:  # keep the running engine; the next change or version check retries
                log.exception("could not rebuild the knowledge base after a staff edit on another worker")
                with self._lock:
                    self._running = False
                return
            if engine is not None:  # None: the running engine is current already (the edit was made here)
                self.service.engine = engine  # one assignment: the swap is atomic for readers
            with self._lock:
                self.version = max(self.version, target)
                self.rebuilds += engine is not None
            if engine is not None:
                log.info("knowledge base rebuilt after a staff edit (version %d) in %.2f s", target,
                         time.perf_counter() - started)


@dataclass(frozen=True)
class Handled:
    reply: Reply
    question_id: int | None
    duplicate: bool = False
    rate_limited: bool = False
    silent: bool = False  # a staff member has this chat (bot/handoff.py): the bot sends nothing


class Service:
    """Owns each user's `ConversationState`: loaded once per message, saved or deleted once."""

    def __init__(self, engine: Engine, store: Store, *, user_limit: int = 20, user_window: float = 60.0,
                 handoff: Handoff | None = None, memory_seconds: float = 1800.0) -> None:
        self.engine = engine
        self.store = store
        self.memory_seconds = memory_seconds  # how long the last question is kept for a follow-up
        self.handoff = handoff if handoff is not None else Handoff(store)  # default working hours
        self.limiter = rate_limiter(store, "user", user_limit, user_window)
        self._kb_watch: Any = None
        self.kb_follower: KbFollower | None = None

    # ------------------------------------------------------------ several workers

    def follow_kb_changes(self, rebuild: Callable[[], Engine | None], *, poll_seconds: float = 15.0) -> bool:
        """On a store shared by several workers, rebuild the engine (`rebuild()` returns a new one) whenever
        a staff edit lands on any worker; False on a store without change notices (SQLite: one process,
        whose own edits swap the engine directly)."""
        watch = getattr(self.store, "watch_kb_changes", None)
        if not callable(watch) or self._kb_watch is not None:
            return False
        self.kb_follower = KbFollower(self, rebuild)
        self._kb_watch = watch(self.kb_follower.changed, poll_seconds=poll_seconds)
        return True

    def close(self) -> None:
        """Stop following staff edits and close the store's connections (at shutdown)."""
        if self._kb_watch is not None:
            self._kb_watch.stop()
            self._kb_watch = None
        close = getattr(self.store, "close", None)
        if callable(close):
            close()

    # ------------------------------------------------------------ conversation state

    def _state_key(self, channel: str, user_id: str) -> str:
        return f"{channel}:{self.store.hash_user(channel, user_id)}"

    def forget(self, channel: str, user_id: str) -> None:
        """Forget this user's conversation (an unfollow): pending choices, calculator step, last question."""
        self.store.clear_state(self._state_key(channel, valid_unicode(user_id)))

    def conversation(self, channel: str, user_id: str) -> ConversationState:
        return self._load(self._state_key(channel, valid_unicode(user_id)))

    def _load(self, key: str) -> ConversationState:
        return ConversationState.from_json(self.store.load_state(key), groups=calc_flow.GROUPS,
                                           periods=calc_flow.PERIODS)

    def _save(self, key: str, before: ConversationState, after: ConversationState) -> None:
        if after == before:
            return
        if after.empty:
            self.store.clear_state(key)
        else:
            self.store.save_state(key, after.to_json())

    # ------------------------------------------------------------ messages

    def handle(self, channel: str, user_id: str, text: object, *, message_id: str | None = None,
               on: dt.date | None = None, chat_id: str | None = None) -> Handled:
        """Answer one message. Returns None-free results; duplicates are flagged, not re-answered.
        Steps of the guided calculator are answered but not logged (they are not questions).
        `chat_id`: where the platform sends replies (kept by a handoff to a staff member; default user_id)."""
        user_id = valid_unicode(user_id)
        text = valid_unicode(text) if isinstance(text, str) else text
        message_id = valid_unicode(message_id) if message_id is not None else None
        if message_id is not None and self.store.seen_message(channel, message_id):
            return Handled(Reply("invalid", ""), None, duplicate=True)
        if not self.limiter.allow(f"{channel}:{user_id}"):
            return Handled(Reply("invalid", RATE_LIMITED_TEXT), None, rate_limited=True)
        said = self.handoff.intercept(channel, user_id, chat_id, text, message_id)
        if said is not None:  # asked for a person, or a person has this chat: the bot stays out of it
            return Handled(Reply("smalltalk", said), None, silent=not said)
        started = time.perf_counter()
        key = self._state_key(channel, user_id)
        state = self._load(key)
        now, today = time.time(), on or dt.date.today()
        last = self._fresh(state.last, now)
        turn = calc_flow.typed(state.calc, text, self.engine.kb.parameters, today)
        if turn.text is not None:  # a step of the guided calculator
            self._save(key, state, ConversationState((), turn.state, last))  # the flow replaces pending choices
            step = turn.state.step if turn.state is not None else None
            return Handled(Reply("calculator", turn.text, topic="voluntary", calc_step=step), None)
        state_left = ConversationState(state.choices, turn.state, last)  # the flow may have ended
        if state_left.choices and picks_none(text):
            return Handled(self._none_of_these(channel, user_id, key, state, state_left), None)
        if not state_left.choices and last is not None and last.entry_id and asks_details(text):
            # "0" / "chi tiết" after an answer (no menu pending): its details; not a question, so not logged
            details = details_of(self.engine, last.entry_id, on, asked=last.question)
            if details is not None:
                return Handled(details, None)
        picked = self._pick_choice(state_left, text, on)
        read = None if picked else follow_up(last, text, now=now, memory_seconds=self.memory_seconds, today=today)
        if picked is not None:
            reply = picked
        elif read is not None:  # "còn nếu tôi là nữ thì sao?": the previous question with that fact changed
            reply = self.engine.ask(read[0], on)
            reply = replace(reply, notice="\n".join(n for n in (messages.follow_up_read(read[0]), reply.notice) if n))
        else:
            reply = self.engine.ask(text, on)
        reply = self._for_channels(reply)
        remembered = self._remember(last, read[0] if read else text, reply, now, today, picked=picked is not None)
        if reply.choices:
            after = ConversationState(reply.choices, None, remembered)
        elif reply.answered:
            after = ConversationState((), None, remembered)
        else:
            after = replace(state_left, last=remembered)
        self._save(key, state, after)
        latency_ms = (time.perf_counter() - started) * 1000
        question_id = self.store.log_question(LoggedQuestion(
            channel=channel, user_id=user_id, text=text if isinstance(text, str) else "",
            normalized=reply.normalized, topic=reply.topic, entry_id=reply.entry_id, score=reply.score,
            outcome=reply.outcome, kind=reply.kind, latency_ms=latency_ms, message_id=message_id))
        signals.observe(self.store, channel, user_id, text, reply, question_id)  # rephrase, "sai rồi", …
        offer = self.handoff.offer_after(channel, user_id, reply.kind)  # "not sure" twice: offer a person
        if offer:
            reply = replace(reply, text=f"{reply.text}\n\n{offer}")
        return Handled(reply, question_id)

    def details(self, channel: str, user_id: str, entry_id: str, on: dt.date | None = None) -> Reply | None:
        """The details behind an answer's short form (a "Xem chi tiết" button), rendered for the date its
        question asked about when it is this user's last answer; None for a stale id or nothing to show."""
        last = self.conversation(channel, user_id).last
        entry_id = valid_unicode(entry_id)
        asked = last.question if last is not None and last.entry_id == entry_id else ""
        return details_of(self.engine, entry_id, on, asked=asked)

    def _pick_choice(self, state: ConversationState, text: object, on: dt.date | None) -> Reply | None:
        """A reply of "1", "2", "3" picks from the choices last offered to this user (the figures for the
        date the question behind them asked about)."""
        n = parse_pick(text)
        if n is None or not 1 <= n <= len(state.choices):
            return None
        question = state.last.question if state.last is not None else ""
        reply = self.engine.entry_reply(state.choices[n - 1].entry_id, on, question=question)
        return replace(reply, normalized=str(n)) if reply else None

    def _fresh(self, last: LastQuestion | None, now: float) -> LastQuestion | None:
        """The last question if it is recent enough to follow (BHXH_CONVERSATION_MINUTES)."""
        return last if last is not None and 0 <= now - last.at <= self.memory_seconds else None

    @staticmethod
    def _remember(last: LastQuestion | None, question: object, reply: Reply, now: float, today: dt.date, *,
                  picked: bool = False) -> LastQuestion | None:
        """The last question after this reply: an answer, a calculation or choices are remembered for a
        follow-up (a pick keeps the question the choices were for); small talk keeps the one before;
        a decline forgets it (the next message starts afresh)."""
        if picked:
            return replace(last, entry_id=reply.entry_id, topic=reply.topic, at=now) if last is not None else None
        if reply.kind in ("smalltalk", "invalid"):
            return last
        if reply.kind not in ("answer", "personal", "calculator", "choices") or not isinstance(question, str):
            return None
        return LastQuestion.of(question, now, today, entry_id=reply.entry_id if reply.answered else None,
                               topic=reply.topic, calculator=reply.calculator if reply.kind == "calculator" else None)

    def _none_of_these(self, channel: str, user_id: str, key: str, state: ConversationState,
                       state_left: ConversationState) -> Reply:
        """"Không phải các câu trên" (the last button, or "0" typed): ask to rephrase and offer a person.
        Not logged as a question; recorded as a signal about the question the choices were offered for."""
        self._save(key, state, ConversationState((), state_left.calc, None))
        signals.note(self.store, signals.NONE_OF_THESE, channel, user_id,
                     detail=" | ".join(c.entry_id for c in state_left.choices))
        offer = self.handoff.offer(channel, user_id, "none_of_these") if self.handoff.enabled else ""
        topic = state_left.last.topic if state_left.last is not None else None
        return Reply("not_sure", messages.none_of_these_text(offer), topic=topic)

    def choose(self, channel: str, user_id: str, entry_id: str, on: dt.date | None = None) -> Reply | None:
        """A button press naming an entry directly (stale ids after an edit give None); NONE_OF_THESE_ID is
        the "Không phải các câu trên" button."""
        user_id, entry_id = valid_unicode(user_id), valid_unicode(entry_id)
        key = self._state_key(channel, user_id)
        state = self._load(key)
        if entry_id == NONE_OF_THESE_ID:
            return self._none_of_these(channel, user_id, key, state, state)
        last = self._fresh(state.last, time.time())
        reply = self.engine.entry_reply(entry_id, on, question=last.question if last is not None else "")
        if reply is None:
            return None
        now, today = time.time(), on or dt.date.today()
        # A button with no question before it (a topic list, the field kit) remembers the entry's own question,
        # so "0" / "chi tiết" and a follow-up have an answer to refer to.
        remembered = self._remember(last, "", reply, now, today, picked=True) or LastQuestion.of(
            self.engine.kb.entries[entry_id].question, now, today, entry_id=entry_id, topic=reply.topic)
        self._save(key, state, ConversationState((), None, remembered))
        signals.note(self.store, signals.MENU_PICK, channel, user_id, entry_id=entry_id, detail="button")
        return self._for_channels(reply)

    def _for_channels(self, reply: Reply) -> Reply:
        """What channels show besides the text: the answered entry's question, and the topic menu."""
        entry = self.engine.kb.entries.get(reply.entry_id) if reply.answered and reply.entry_id else None
        # The help reply is recognised by its text until the engine marks it (requests-pipeline.md).
        show_topics = reply.show_topics or reply.kind == "not_sure" or (
            reply.kind == "smalltalk" and reply.text.startswith(messages.help_text()))
        return replace(reply, title=entry.question if entry is not None else None, show_topics=show_topics)

    def welcome(self) -> Reply:
        """The help text with the topic menu (a new follower, /help)."""
        return Reply("smalltalk", messages.help_text(), show_topics=True)

    def topic_questions(self, topic: str, limit: int) -> list[Choice]:
        """Common questions of a topic (the topic menu's buttons)."""
        return [Choice(e.id, e.question) for e in self.engine.kb.by_topic().get(topic, [])[:limit]]

    def calculator_button(self, channel: str, user_id: str, action: str, value: str = "") -> bool:
        """A guided-calculator button ("start", "g" <group>, "m" <months>); False if stale or unknown."""
        key = self._state_key(channel, valid_unicode(user_id))
        state = self._load(key)
        step = calc_flow.press(state.calc, action, value)
        if step is None:
            return False
        self._save(key, state, ConversationState((), step))
        return True

    def feedback(self, channel: str, user_id: str, value: int, *, entry_id: str | None = None,
                 question_id: int | None = None, reason: str | None = None) -> bool:
        """False when the vote names a question this user did not ask (nothing recorded). A 👎 is also
        a signal for the staff review queue, with the citizen's optional `reason`."""
        user_id = valid_unicode(user_id)
        entry_id = valid_unicode(entry_id) if entry_id is not None else None
        if entry_id is not None and entry_id not in self.engine.kb.entries:  # a stale or forged id
            entry_id = None
        recorded = self.store.record_feedback(channel=channel, user_id=user_id, value=value, entry_id=entry_id,
                                              question_id=question_id)
        if recorded and value < 0:
            signals.thumbs_down(self.store, channel, user_id, question_id=question_id, entry_id=entry_id,
                                reason=valid_unicode(reason) if isinstance(reason, str) else None)
        return recorded
