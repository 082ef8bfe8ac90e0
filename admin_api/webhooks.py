"""Channel webhooks (Telegram, Zalo Bot Platform, Zalo OA) mounted under /webhooks/.

A channel's webhook is mounted only when its secrets are set. Configuration is by
environment variables, read with every other one by `bot.settings.load_settings()`
(`Settings.telegram`, `.zalo_bot`, `.zalo_oa`):

Telegram (python-telegram-bot)
  TELEGRAM_BOT_TOKEN        bot token from @BotFather; enough for `bhxh telegram` (long polling)
  TELEGRAM_WEBHOOK_SECRET   1–256 chars [A-Za-z0-9_-]; enables POST /webhooks/telegram, which
                            rejects requests whose X-Telegram-Bot-Api-Secret-Token differs (403)
  TELEGRAM_WEBHOOK_URL      optional public https URL of /webhooks/telegram; if set, the server
                            calls setWebhook with the secret on start (polling deletes the webhook)
  TELEGRAM_API_BASE_URL     optional, default https://api.telegram.org/bot (local Bot API server, tests)
  TELEGRAM_API_FILE_URL     optional, default https://api.telegram.org/file/bot

Zalo Bot Platform
  ZALO_BOT_TOKEN            bot token from Zalo Bot Creator
  ZALO_BOT_SECRET           the secret_token given to setWebhook (8–256 chars); with the token,
                            enables POST /webhooks/zalo-bot (checks X-Bot-Api-Secret-Token)
  ZALO_BOT_API_BASE_URL     optional, default https://bot-api.zaloplatforms.com (older: https://bot-api.zapps.me)

Zalo Official Account (API v3)
  ZALO_OA_APP_ID            app id (signs webhook events; used in token refreshes)
  ZALO_OA_SECRET_KEY        OA secret key from the webhook settings; with the app id, enables
                            POST /webhooks/zalo-oa (checks X-ZEvent-Signature, rejects events > 5 min old)
  ZALO_OA_APP_SECRET        app secret key (header of token refreshes); needed to refresh tokens
  ZALO_OA_ACCESS_TOKEN      first access token from the OA authorization (bootstrap)
  ZALO_OA_REFRESH_TOKEN     first refresh token (single-use). After each refresh the new pair is kept
                            in $BHXH_DATA_DIR/zalo_oa_tokens.json (0600), which wins over these two
                            until ZALO_OA_REFRESH_TOKEN is changed (re-authorization)
  ZALO_OA_API_BASE_URL      optional, default https://openapi.zalo.me
  ZALO_OA_OAUTH_BASE_URL    optional, default https://oauth.zaloapp.com

Tokens and secrets are masked in every log line. One route factory serves every
channel (`webhook_router`); the flow is `bot.channels.pipeline.Pipeline`: it commits
the delivery to the `inbox` table of $BHXH_DATA_DIR/bhxh.db (text PII-redacted, sender
names dropped) before the 200, replies in the background (each message retried with
backoff; the rendered reply and how much of it was sent are kept with the delivery),
then marks it done and clears its payload. Redeliveries are dropped by the inbox,
across restarts too. On start, deliveries a killed process had acknowledged are
replayed: the rest of a recorded reply is sent, a question logged before the crash
whose reply was not recorded gets a short apology, the others are answered. If the
database refuses writes, deliveries are kept in memory only and still answered.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, BackgroundTasks, FastAPI, Request
from fastapi.responses import JSONResponse

from bot.channels.pipeline import Adapter, Pipeline
from bot.service import Service
from bot.settings import Settings, load_settings

log = logging.getLogger(__name__)


def webhook_router(pipeline: Pipeline) -> APIRouter:
    """The one route every channel uses: the body goes to `Pipeline.receive` (verify, parse, inbox),
    the answer is sent at once, and the processing runs after it. The router's lifespan starts the
    pipeline (replay of what a killed process had acknowledged) and stops it."""

    @asynccontextmanager
    async def lifespan(_app: Any) -> AsyncIterator[None]:
        await pipeline.start()
        yield
        await pipeline.stop()

    router = APIRouter(lifespan=lifespan, tags=["webhooks"])

    async def webhook(request: Request, background: BackgroundTasks) -> JSONResponse:
        receipt = await pipeline.receive(request.headers, await request.body())
        if receipt.after is not None:
            background.add_task(receipt.after)  # runs after the response is sent
        return JSONResponse(receipt.body, status_code=receipt.status)

    router.add_api_route(pipeline.adapter.path, webhook, methods=["POST"], summary=pipeline.adapter.summary,
                         name=f"{pipeline.channel}_webhook")
    return router


def configured_adapters(service: Service, settings: Settings | None = None) -> list[Adapter]:
    """The adapter of every channel whose secrets are set (`settings` default to the environment's)."""
    from bot.channels import telegram_bot, zalo_bot, zalo_oa

    settings = settings or load_settings()
    adapters: list[Adapter] = []
    if settings.telegram is not None and settings.telegram.webhook_secret:
        adapters.append(telegram_bot.TelegramAdapter(service, settings.telegram))
    if settings.zalo_bot is not None:
        adapters.append(zalo_bot.ZaloBotAdapter(service, settings.zalo_bot))
    if settings.zalo_oa is not None:
        adapters.append(zalo_oa.ZaloOAAdapter(service, settings.zalo_oa))
    return adapters


def register(app: FastAPI, service: Service, settings: Settings | None = None) -> None:
    """Mount the webhooks of every channel whose secrets are configured."""
    mounted = []
    for adapter in configured_adapters(service, settings):
        app.include_router(webhook_router(Pipeline(service, adapter)))
        mounted.append(adapter.path)
    app.state.webhooks = mounted
    if mounted:
        log.info("channel webhooks: %s", ", ".join(mounted))
