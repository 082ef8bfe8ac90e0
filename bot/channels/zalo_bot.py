"""Zalo Bot Platform channel (the Telegram-like Zalo bot API).

POST /webhooks/zalo-bot (route: admin_api.webhooks; flow: bot.channels.pipeline) receives
updates set up with `setWebhook{url, secret_token}`; Zalo echoes the secret in
X-Bot-Api-Secret-Token, checked in constant time. The inbox keeps the message with
its text redacted and no display name. Replies go out with
`POST <base>/bot<TOKEN>/sendMessage {chat_id, text}` (1–2,000 chars per message).
Zalo has no buttons, so choices are numbered and the user answers "1", "2", "3";
"tính" or "/tinh" starts the guided calculator with numbered steps (all in Service); "chủ đề" lists
every topic's questions and a typed citation ("khoản 2 điều 31") shows the article (bot.field_kit,
numbered too). No 👍/👎 buttons either: an answer ends with "Gõ «sai» để báo", and "👎", "sai", "chưa đúng"
typed after it is a 👎 whose reason is asked for by number (bot.typed_vote).

Update shape (documented for getUpdates; webhooks send the same, with or without
the {"ok", "result"} envelope):
  {"event_name": "message.text.received",
   "message": {"message_id": "…", "text": "…", "date": 1749632637199,
               "from": {"id": "…", "display_name": "…"}, "chat": {"id": "…", "chat_type": "PRIVATE"}}}
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

import httpx

from bot.channel_settings import ZaloBotConfig
from bot.channels import in_thread, mask
from bot.channels.format import ZALO_LIMIT, zalo_messages
from bot.channels.pipeline import Delivery, Message, Outgoing, Pipeline, SendError
from bot.field_kit import STALE, EntryPick, FieldKit, NumberedTurns, plain_messages, source_url
from bot.reply import Reply
from bot.service import Handled, Service
from bot.typed_vote import DOWN_HINT, TypedVotes
from retrieval.normalize import redact_pii

log = logging.getLogger(__name__)

CHANNEL = "zalo_bot"
TEXT_EVENT = "message.text.received"


@dataclass(frozen=True)
class Incoming:
    event: str
    chat_id: str
    user_id: str
    text: str | None  # None for photos, stickers, voice…
    message_id: str | None


def parse_update(payload: object) -> Incoming | None:
    """The message in a webhook body, or None if it is not a user message we can answer."""
    if not isinstance(payload, dict):
        return None
    if isinstance(payload.get("result"), dict):  # {"ok": true, "result": {...}} envelope
        payload = payload["result"]
    message = payload.get("message")
    event = str(payload.get("event_name") or "")
    if not isinstance(message, dict) or not event.startswith("message."):
        return None
    sender = message.get("from") if isinstance(message.get("from"), dict) else {}
    chat = message.get("chat") if isinstance(message.get("chat"), dict) else {}
    user_id, chat_id = sender.get("id"), chat.get("id") or sender.get("id")
    if not user_id or not chat_id or sender.get("is_bot") is True:
        return None
    if str(chat.get("chat_type") or "PRIVATE").upper() != "PRIVATE":  # groups: not answered
        return None
    text = message.get("text") if event == TEXT_EVENT and isinstance(message.get("text"), str) else None
    message_id = message.get("message_id")
    return Incoming(event, str(chat_id), str(user_id), text, str(message_id) if message_id else None)


class ZaloBotAdapter:
    """The Zalo Bot Platform's shapes for `Pipeline`: secret header, update, plain-text messages."""

    channel = CHANNEL
    path = "/webhooks/zalo-bot"
    summary = "Zalo Bot Platform webhook"

    def __init__(self, service: Service, config: ZaloBotConfig, client: httpx.AsyncClient | None = None) -> None:
        self.service = service
        self.config = config
        self.client = client or httpx.AsyncClient(timeout=httpx.Timeout(15.0, connect=5.0))
        self.field_kit = NumberedTurns(FieldKit(lambda: self.service.engine.kb), service, CHANNEL)
        self.votes = TypedVotes(service, CHANNEL)

    def verify(self, headers: Mapping[str, str], body: bytes, payload: object) -> str | None:
        header = headers.get("x-bot-api-secret-token")
        if header and hmac.compare_digest(header.encode("utf-8", "replace"), self.config.secret.encode()):
            return None
        return "wrong secret token"

    def parse(self, payload: object, body: bytes) -> Delivery | None:
        incoming = parse_update(payload)
        if incoming is None:
            return None
        key = incoming.message_id or "sha256:" + hashlib.sha256(body).hexdigest()
        stored = replace(incoming, text=redact_pii(incoming.text) if incoming.text is not None else None)
        return Delivery(key, asdict(stored), incoming, chat=incoming.chat_id)

    def restore(self, stored: dict[str, Any]) -> Incoming:
        return Incoming(**stored)

    async def process(self, pipeline: Pipeline, key: str, work: Incoming, *, replaying: bool) -> bool:
        vote = await in_thread(self.votes.turn, work.user_id, work.text)
        if vote is not None:  # "👎" / "sai" after an answer, or the number of its reason
            return await pipeline.deliver(key, work.chat_id, [Outgoing(vote.text)])
        kit = await in_thread(self.field_kit_messages, work)
        if kit is not None:
            return await pipeline.deliver(key, work.chat_id, kit)
        message_id = f"zb:{work.message_id}" if work.message_id else None
        return await pipeline.answer(key, Message(work.chat_id, work.user_id, work.text, message_id),
                                     replaying=replaying)

    def field_kit_messages(self, work: Incoming) -> list[Outgoing] | None:
        """The field kit's reply ("chủ đề", a citation, a number picked from its list), None otherwise."""
        turn = self.field_kit.turn(work.user_id, work.text)
        if isinstance(turn, EntryPick):
            reply = self.service.choose(CHANNEL, work.user_id, turn.entry_id)
            return self.render(Handled(reply, None)) if reply is not None else [Outgoing(STALE)]
        return None if turn is None else [Outgoing(text) for text in plain_messages(turn, ZALO_LIMIT)]

    def render(self, handled: Handled) -> list[Outgoing]:
        base = self.field_kit.kit.base_url  # BHXH_PUBLIC_URL: each source links to its article
        return [Outgoing(chunk) for chunk in bot_messages(handled.reply, source_url=lambda s: source_url(s, base))]

    async def send(self, chat_id: str, message: Outgoing) -> bool:
        """sendMessage once: connection errors and 5xx raise SendError (the pipeline retries), 4xx is final."""
        url = f"{self.config.base_url}/bot{self.config.token}/sendMessage"
        try:
            response = await self.client.post(url, json={"chat_id": chat_id, "text": message.text})
            data = response.json() if response.content else {}
        except httpx.ReadTimeout:  # sent, no answer: it may have arrived; sending it again could repeat it
            log.warning("zalo bot sendMessage: no answer in time; not sent again")
            return True
        except (httpx.HTTPError, ValueError) as exc:
            raise SendError(f"{type(exc).__name__}: {mask(str(exc))}") from None
        if response.status_code == 200 and isinstance(data, dict) and data.get("ok", True):
            return True
        if response.status_code >= 500 or response.status_code == 429:
            raise SendError(f"HTTP {response.status_code}")
        log.warning("zalo bot sendMessage failed: HTTP %s %s", response.status_code, mask(str(data)[:300]))
        return False

    async def ready(self) -> bool:
        return True

    async def close(self) -> None:
        await self.client.aclose()


def bot_messages(reply: Reply, *, title: str | None = None,
                 source_url: Callable[[str], str | None] | None = None) -> list[str]:
    """The Zalo Bot's plain-text messages for a reply: `zalo_messages`, and under an answer how to report it wrong
    (the Bot Platform has no 👎 button)."""
    chunks = zalo_messages(reply, title=title, source_url=source_url)
    if reply.answered and reply.entry_id:
        last = f"{chunks[-1]}\n\n{DOWN_HINT}"
        chunks = [*chunks[:-1], last] if len(last) <= ZALO_LIMIT else [*chunks, DOWN_HINT]
    return chunks
