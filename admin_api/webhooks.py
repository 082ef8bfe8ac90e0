"""Channel webhooks (Telegram, Zalo Bot Platform, Zalo OA) mounted under /webhooks/.

A channel's webhook is mounted only when its secrets are set. Configuration
is by environment variables only:

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

Tokens and secrets are masked in every log line. Each webhook commits the delivery
to the `inbox` table of $BHXH_DATA_DIR/bhxh.db (text PII-redacted, sender names
dropped) before it answers 200, replies in the background, then marks it done and
clears its payload. Redeliveries are dropped by the inbox, across restarts too; on
start, deliveries a killed process had acknowledged are replayed (a question already
logged is not answered again). If the database refuses writes, deliveries are kept
in memory only and still answered.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI

from bot.service import Service

log = logging.getLogger(__name__)


def register(app: FastAPI, service: Service) -> None:
    """Mount the webhooks of every channel whose secrets are configured."""
    from bot.channels import telegram_bot, zalo_bot, zalo_oa

    mounted = []
    telegram = telegram_bot.TelegramConfig.from_env()
    if telegram is not None and telegram.webhook_secret:
        app.include_router(telegram_bot.webhook_router(service, telegram))
        mounted.append("/webhooks/telegram")
    zalo = zalo_bot.ZaloBotConfig.from_env()
    if zalo is not None:
        app.include_router(zalo_bot.webhook_router(service, zalo))
        mounted.append("/webhooks/zalo-bot")
    oa = zalo_oa.ZaloOAConfig.from_env()
    if oa is not None:
        app.include_router(zalo_oa.webhook_router(service, oa))
        mounted.append("/webhooks/zalo-oa")
    app.state.webhooks = mounted
    if mounted:
        log.info("channel webhooks: %s", ", ".join(mounted))
