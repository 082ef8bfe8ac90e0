"""One pipeline for every chat channel: verify → parse → inbox → (200) → Service → render → send.

A channel is an `Adapter`, in the spirit of Errbot's backends: it only translates its platform's
shapes (check a signature, read an update, say how a reply looks and how one message is sent). The
pipeline owns everything else, so every channel behaves the same:

- before the 200 (`receive`): the adapter verifies and parses the body; the delivery is committed to
  the durable inbox (redacted) and redeliveries are dropped there;
- after it (`Pipeline.answer`): `Service.handle` (dedupe by message id, rate limit, conversation state,
  the guided calculator, logging), then the adapter renders the Reply and the pipeline sends it;
- sending (`deliver`): the rendered reply is recorded with the delivery right after the question is
  logged, and each message is marked as on its way before it is attempted, so a restart sends what is
  left and never a message twice (review F9); a message the platform certainly did not take is
  retried with backoff, and if it still fails the delivery stays pending for the next start instead
  of being dropped (F10); a timeout after the request left counts as sent (it may have arrived);
- after a crash, a delivery whose question was logged but whose reply was not recorded, or whose
  message was on its way, gets a short apology rather than silence or a repeat (F9).

Nothing here knows HTTP: `admin_api.webhooks` turns `receive` into a route.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from bot.channels.inbox import Inbox
from bot.channels.secrets import mask
from bot.channels.threads import in_thread
from bot.service import Handled, Service

log = logging.getLogger(__name__)

INTERRUPTED_TEXT = "Xin lỗi, hệ thống vừa gián đoạn, bạn vui lòng hỏi lại giúp."
# After a crash while a message was on its way: the platform may have delivered it.
MAYBE_INTERRUPTED_TEXT = ("Xin lỗi, hệ thống vừa gián đoạn. Nếu bạn chưa nhận được câu trả lời, "
                          "bạn vui lòng hỏi lại giúp.")
STAFF_TEXT_LIMIT = 2000  # characters per message of a staff reply (Zalo's limit; Telegram allows 4096)
RETRY_DELAYS = (0.5, 2.0, 5.0)  # seconds between attempts at one message (then the delivery waits for a restart)
REPLY_KEY, SENT_KEY, SENDING_KEY = "_reply", "_sent", "_sending"  # the reply being sent, in the inbox payload


class SendError(Exception):
    """A message the platform certainly did not take (no connection, 5xx, rate limit): worth retrying.
    Adapters do not raise it for a timeout after the request was sent: that message may have arrived."""


class Malformed(ValueError):
    """The body is not a delivery this channel can read (answered 400)."""


@dataclass(frozen=True)
class Message:
    """One user's text message, whatever the platform."""

    chat_id: str  # where the reply goes
    user_id: str
    text: str | None  # None for photos, stickers, voice…
    message_id: str | None  # the question log's dedupe key ("tg:…", "zb:…", "zoa:…")


@dataclass(frozen=True)
class Outgoing:
    """One message to send. `buttons`: rows of (label, callback data), for platforms that have them."""

    text: str
    html: bool = False
    buttons: tuple[tuple[tuple[str, str], ...], ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"text": self.text, "html": self.html, "buttons": [[list(b) for b in row] for row in self.buttons]}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Outgoing:
        buttons = tuple(tuple((str(label), str(value)) for label, value in row) for row in data.get("buttons") or [])
        return cls(str(data["text"]), bool(data.get("html")), buttons)


@dataclass(frozen=True)
class Delivery:
    """A verified, parsed webhook body: its inbox key, what the inbox keeps (redacted; a replay works
    from it) and what processing takes now (the unredacted parsed update)."""

    key: str
    stored: dict[str, Any]
    work: object
    chat: str | None = None  # where the reply goes: one chat's deliveries are answered in turn (several workers)


@dataclass(frozen=True)
class StaffSend:
    """How a staff member's reply went (bot/handoff.py shows `reason` to staff)."""

    sent: bool
    reason: str | None = None  # why it was not sent, or a note for staff when it was (a paid Zalo OA message)


@dataclass(frozen=True)
class Receipt:
    """The webhook's answer (status and JSON body) and, for a new delivery, what to run after it."""

    status: int
    body: dict[str, Any]
    after: Callable[[], Awaitable[None]] | None = field(default=None, compare=False)


class Adapter(Protocol):
    channel: str  # "telegram", "zalo_bot", "zalo_oa": the log's and the inbox's channel name
    path: str  # the webhook's path, e.g. "/webhooks/telegram"
    summary: str

    def verify(self, headers: Mapping[str, str], body: bytes, payload: object) -> str | None:
        """None if the request is authentic, else the reason to refuse it (403)."""

    def parse(self, payload: object, body: bytes) -> Delivery | None:
        """The delivery, None for an event not to answer (200, ignored); raises Malformed (400)."""

    def restore(self, stored: dict[str, Any]) -> object | None:
        """The work of an inbox row (for a replay), None if it is not to be replayed."""

    async def process(self, pipeline: Pipeline, key: str, work: Any, *, replaying: bool) -> bool:
        """Answer one delivery (usually `pipeline.answer`); False leaves it pending for a replay."""

    def render(self, handled: Handled) -> list[Outgoing]:
        """The reply as the platform shows it, split under its length limit."""

    async def send(self, chat_id: str, message: Outgoing) -> bool:
        """Send one message: True if sent, False if refused for good; raises SendError to retry."""

    async def ready(self) -> bool:
        """Can the adapter send now? (Telegram initialises its bot lazily.)"""

    async def close(self) -> None: ...

    # Optional, for replies written by staff (bot/handoff.py); see /tmp/coord/handoff-interface.md:
    #   async def can_send_staff_reply(self, chat_key: str) -> tuple[bool, str | None]
    #       (True, None) send; (True, note) send and show `note` to staff; (False, reason) refused, shown.
    #       Missing: always allowed.
    #   def render_staff_reply(self, text: str, reply_to: str | None) -> list[Outgoing]
    #       Missing: plain text messages of at most STAFF_TEXT_LIMIT characters.


class Pipeline:
    def __init__(self, service: Service, adapter: Adapter, *, retry_delays: tuple[float, ...] | None = None) -> None:
        self.service, self.adapter = service, adapter
        self.channel = adapter.channel
        self.inbox = Inbox(service.store, adapter.channel)
        self.retry_delays = RETRY_DELAYS if retry_delays is None else retry_delays
        bind = getattr(adapter, "bind", None)  # optional: Telegram's handlers call back into the pipeline
        if callable(bind):
            bind(self)
        handoff = getattr(service, "handoff", None)
        if handoff is not None:  # staff replies to this channel's chats go out through this pipeline
            handoff.attach(self)

    # ------------------------------------------------------------ before the 200

    async def receive(self, headers: Mapping[str, str], body: bytes) -> Receipt:
        try:
            payload: object = json.loads(body)
        except ValueError:
            payload = None
        problem = self.adapter.verify(headers, body, payload)
        if problem:
            log.warning("%s webhook: rejected a request (%s)", self.channel, problem)
            return Receipt(403, {"ok": False, "error": problem})
        try:
            if payload is None:
                raise Malformed("malformed JSON")
            delivery = self.adapter.parse(payload, body)
        except Malformed as exc:
            return Receipt(400, {"ok": False, "error": str(exc)})
        if delivery is None:
            return Receipt(200, {"ok": True, "ignored": True})
        if not await self.inbox.accept(delivery.key, delivery.stored, chat=delivery.chat):
            return Receipt(200, {"ok": True, "duplicate": True})
        return Receipt(200, {"ok": True},
                       functools.partial(self.inbox.run, delivery.key, self.process, delivery.key, delivery.work))

    # ------------------------------------------------------------ after it

    async def start(self) -> None:
        """At server start: replay what a killed process had acknowledged (once the adapter can send)."""
        await self._replay_when_ready()

    async def stop(self) -> None:
        await self.inbox.stop()
        await self.adapter.close()

    async def _replay_when_ready(self) -> bool:
        if not await self.adapter.ready():
            return False
        if self.inbox.replay_task is None:
            self.inbox.start_replay(self.replay)
        return True

    async def process(self, key: str, work: object, *, replaying: bool = False) -> bool:
        if not await self._replay_when_ready():
            log.warning("%s: a delivery is left for later: the channel is not ready", self.channel)
            return False
        try:
            return await self.adapter.process(self, key, work, replaying=replaying)
        except Exception as exc:  # a background task must never die silently
            log.exception("%s: could not answer a delivery: %s", self.channel, mask(repr(exc)))
            return True

    async def replay(self, key: str, stored: dict[str, Any]) -> bool:
        """An inbox row left by a killed process: the rest of a recorded reply, else the delivery again
        (from its redacted text; that is accepted)."""
        recorded = stored.get(REPLY_KEY)
        if isinstance(recorded, dict):
            chat_id = str(recorded.get("chat_id"))
            if stored.get(SENDING_KEY):  # a message was on its way: it may have arrived; never repeat it
                return await self.deliver(key, chat_id, [Outgoing(MAYBE_INTERRUPTED_TEXT)])
            messages = [Outgoing.from_json(m) for m in recorded.get("messages") or []]
            return await self.deliver(key, chat_id, messages, sent=int(stored.get(SENT_KEY) or 0))
        work = self.adapter.restore({k: v for k, v in stored.items() if not k.startswith("_")})
        return True if work is None else await self.process(key, work, replaying=True)

    async def answer(self, key: str | None, message: Message, *, replaying: bool = False) -> bool:
        """The answer step every channel shares: Service, then render and deliver."""
        messages = await in_thread(self._respond, key, message, replaying)
        return await self.deliver(key, message.chat_id, messages, recorded=True) if messages else True

    def _respond(self, key: str | None, message: Message, replaying: bool) -> list[Outgoing]:
        """In a worker thread: answer, render, and record the reply with the delivery at once (the gap
        between logging the question and recording its reply is what a crash can fall into)."""
        handled = self.service.handle(self.channel, message.user_id, message.text, message_id=message.message_id,
                                      chat_id=message.chat_id)
        if handled.silent:  # a staff member has this chat: the message went to them
            messages = []
        elif handled.duplicate:
            if not replaying:  # a redelivery the inbox no longer knew: answered before
                return []
            # Logged before a crash, reply never recorded: it may or may not have reached the user.
            messages = [Outgoing(INTERRUPTED_TEXT)]
        elif handled.rate_limited:
            messages = [Outgoing(handled.reply.text)]
        else:
            messages = self.adapter.render(handled)
        if key is not None and messages:
            self.inbox.record_reply_now(key, {"chat_id": message.chat_id, "messages": [m.to_json() for m in messages]})
        return messages

    # ------------------------------------------------------------ sending

    async def deliver(self, key: str | None, chat_id: str, messages: list[Outgoing], *, sent: int = 0,
                      recorded: bool = False) -> bool:
        """Send `messages[sent:]` in order, recording progress with the delivery `key` (None: not in the
        inbox, e.g. a button press). False if the platform kept failing: the delivery stays pending.

        Each message is marked as on its way before it is attempted. A crash while one was on its way
        (the platform may have it) is answered on restart with a short apology instead of repeating it;
        a message that certainly failed is unmarked, so the next start sends it. `recorded`: the reply is
        already recorded with message `sent` on its way."""
        if key is not None and not recorded:
            await self.inbox.record_reply(key, {"chat_id": chat_id, "messages": [m.to_json() for m in messages]}, sent)
        for n in range(sent, len(messages)):
            if key is not None and n > sent:
                await self.inbox.mark_sent(key, n, sending=True)
            outcome = await self.send(chat_id, messages[n])
            if outcome is None:
                if key is not None:
                    await self.inbox.mark_sent(key, n, sending=False)
                return False
            if not outcome:  # refused for good (blocked bot, closed 48 h window): the rest would be too
                return True
        return True

    async def staff_reply_allowed(self, chat_key: str) -> tuple[bool, str | None]:
        """May staff reply to this chat now, and what to tell them (the adapter's can_send_staff_reply;
        missing: allowed). The inbox shows it when a conversation is opened, before anyone writes."""
        check = getattr(self.adapter, "can_send_staff_reply", None)
        return await check(chat_key) if callable(check) else (True, None)

    async def send_staff_reply(self, chat_key: str, text: str, *, reply_to: str | None = None) -> StaffSend:
        """A staff member's reply to a chat of this channel (bot/handoff.py): the adapter may refuse it first
        (Zalo OA's interaction window), then each message goes through `send` (the same retries)."""
        ok, reason = await self.staff_reply_allowed(chat_key)
        if not ok:
            return StaffSend(False, reason)
        if not await self.adapter.ready():
            return StaffSend(False, "Kênh chưa sẵn sàng (không kết nối được nền tảng); thử lại sau.")
        render = getattr(self.adapter, "render_staff_reply", None)
        outgoing = render(text, reply_to) if callable(render) else [
            Outgoing(text[i:i + STAFF_TEXT_LIMIT]) for i in range(0, len(text), STAFF_TEXT_LIMIT)]
        for message in outgoing:
            outcome = await self.send(chat_key, message)
            if outcome is None:
                return StaffSend(False, "Nền tảng không nhận tin sau nhiều lần thử; thử lại sau.")
            if not outcome:  # the adapter may know why (Zalo OA: the error code, the window, an unfollow)
                why = getattr(self.adapter, "refusal", None)
                return StaffSend(False, (why(chat_key) if callable(why) else None)
                                 or "Nền tảng từ chối tin (người dân đã chặn hoặc rời cuộc trò chuyện).")
        return StaffSend(True, reason)

    async def send(self, chat_id: str, message: Outgoing) -> bool | None:
        """One message with retries: True sent, False refused for good, None still failing after them."""
        for attempt, delay in enumerate((*self.retry_delays, None), start=1):
            try:
                return await self.adapter.send(chat_id, message)
            except SendError as exc:
                log.warning("%s: send attempt %d failed: %s", self.channel, attempt, mask(str(exc)))
            if delay is not None:
                await asyncio.sleep(delay)
        log.error("%s: a reply could not be sent after %d attempts; it stays in the inbox for the next start",
                  self.channel, len(self.retry_delays) + 1)
        return None
