"""Zalo Bot Platform channel (the Telegram-like Zalo bot API).

POST /webhooks/zalo-bot receives updates set up with
`setWebhook{url, secret_token}`; Zalo echoes the secret in X-Bot-Api-Secret-Token,
checked in constant time. The message is recorded in the durable inbox (text
redacted, no display name; replayed on start if the process died), we answer 200
at once and reply afterwards with
`POST <base>/bot<TOKEN>/sendMessage {chat_id, text}` (1–2,000 chars per message).
Zalo has no buttons, so choices are numbered and the user answers "1", "2", "3"
(Service remembers the pending choices, across restarts too). "tính" or "/tinh"
starts the guided voluntary-contribution calculator with numbered steps (bot.calc_flow).

Update shape (documented for getUpdates; webhooks send the same, with or without
the {"ok", "result"} envelope):
  {"event_name": "message.text.received",
   "message": {"message_id": "…", "text": "…", "date": 1749632637199,
               "from": {"id": "…", "display_name": "…"}, "chat": {"id": "…", "chat_type": "PRIVATE"}}}
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import os
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, replace
from typing import Any

import httpx
from fastapi import APIRouter, BackgroundTasks, Request
from fastapi.responses import JSONResponse

from bot.channels import Inbox, entry_title, env_str, in_thread, mask, register_secret
from bot.channels.format import zalo_messages
from bot.service import Service
from retrieval.normalize import redact_pii

log = logging.getLogger(__name__)

CHANNEL = "zalo_bot"
DEFAULT_BASE_URL = "https://bot-api.zaloplatforms.com"  # older host: https://bot-api.zapps.me
TEXT_EVENT = "message.text.received"


@dataclass(frozen=True)
class ZaloBotConfig:
    token: str
    secret: str  # the setWebhook secret_token (8–256 chars)
    base_url: str = DEFAULT_BASE_URL

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ZaloBotConfig | None:
        env = os.environ if env is None else env
        token, secret = env_str(env, "ZALO_BOT_TOKEN"), env_str(env, "ZALO_BOT_SECRET")
        if not token or not secret:
            return None
        register_secret(token, secret)
        return cls(token, secret, env_str(env, "ZALO_BOT_API_BASE_URL", DEFAULT_BASE_URL).rstrip("/"))


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


class ZaloBot:
    def __init__(self, service: Service, config: ZaloBotConfig, client: httpx.AsyncClient | None = None) -> None:
        self.service = service
        self.config = config
        self.client = client or httpx.AsyncClient(timeout=httpx.Timeout(15.0, connect=5.0))
        self.inbox = Inbox(service.store, CHANNEL)

    def verify(self, header: str | None) -> bool:
        return bool(header) and hmac.compare_digest((header or "").encode("utf-8", "replace"),
                                                    self.config.secret.encode())

    async def call(self, method: str, payload: dict[str, Any]) -> dict[str, Any] | None:
        """One Bot API call (one retry on network errors and 5xx). Never raises; None on failure."""
        url = f"{self.config.base_url}/bot{self.config.token}/{method}"
        for attempt in (1, 2):
            try:
                response = await self.client.post(url, json=payload)
                data = response.json() if response.content else {}
                if response.status_code < 500 or attempt == 2:
                    if response.status_code == 200 and isinstance(data, dict) and data.get("ok", True):
                        return data
                    log.warning("zalo bot %s failed: HTTP %s %s", method, response.status_code,
                                mask(str(data)[:300]))
                    return None
            except (httpx.HTTPError, ValueError) as exc:
                log.warning("zalo bot %s: %s: %s", method, type(exc).__name__, mask(str(exc)))
            if attempt == 1:
                await asyncio.sleep(0.5)
        return None

    async def send_text(self, chat_id: str, text: str) -> bool:
        return await self.call("sendMessage", {"chat_id": chat_id, "text": text}) is not None

    async def process(self, incoming: Incoming) -> None:
        """Answer one message (runs after the webhook has been acknowledged)."""
        try:
            message_id = f"zb:{incoming.message_id}" if incoming.message_id else None
            handled = await in_thread(self.service.handle, CHANNEL, incoming.user_id, incoming.text,
                                              message_id=message_id)
            if handled.duplicate:
                return
            if handled.rate_limited:
                await self.send_text(incoming.chat_id, handled.reply.text)
                return
            title = entry_title(self.service.engine.kb, handled.reply)
            for chunk in zalo_messages(handled.reply, title=title):
                if not await self.send_text(incoming.chat_id, chunk):
                    break
        except Exception as exc:  # a background task must never die silently
            log.exception("zalo bot: could not answer a message: %s", mask(repr(exc)))

    async def replay(self, payload: dict[str, Any]) -> bool:
        """An inbox row (redacted text: the reply to a replay is computed from it; that is accepted)."""
        await self.process(Incoming(**payload))
        return True

    async def close(self) -> None:
        await self.inbox.stop()
        await self.client.aclose()


def webhook_router(service: Service, config: ZaloBotConfig, client: httpx.AsyncClient | None = None) -> APIRouter:
    bot = ZaloBot(service, config, client)

    @asynccontextmanager
    async def lifespan(_app: Any) -> AsyncIterator[None]:
        bot.inbox.start_replay(bot.replay)
        yield
        await bot.close()

    router = APIRouter(lifespan=lifespan, tags=["webhooks"])

    @router.post("/webhooks/zalo-bot", summary="Zalo Bot Platform webhook")
    async def zalo_bot_webhook(request: Request, background: BackgroundTasks) -> JSONResponse:
        if not bot.verify(request.headers.get("x-bot-api-secret-token")):
            log.warning("zalo bot webhook: rejected a request with a wrong secret token")
            return JSONResponse({"ok": False}, status_code=403)
        try:
            body = await request.body()
            payload = json.loads(body)
        except ValueError:
            return JSONResponse({"ok": False, "error": "malformed JSON"}, status_code=400)
        incoming = parse_update(payload)
        if incoming is None:
            return JSONResponse({"ok": True, "ignored": True})
        key = incoming.message_id or "sha256:" + hashlib.sha256(body).hexdigest()
        stored = replace(incoming, text=redact_pii(incoming.text) if incoming.text is not None else None)
        if not await bot.inbox.accept(key, asdict(stored)):
            return JSONResponse({"ok": True, "duplicate": True})
        background.add_task(bot.inbox.run, key, bot.process, incoming)
        return JSONResponse({"ok": True})

    return router
