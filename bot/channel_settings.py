"""The chat channels' part of the settings: their secrets and endpoints (TELEGRAM_*, ZALO_*).

`bot.settings.load_settings()` reads them with every other variable (`channel_configs`) and keeps
them as `Settings.telegram`, `.zalo_bot` and `.zalo_oa` (None: that channel is not configured).
The channel modules re-export these classes under their old names (`telegram_bot.TelegramConfig`…).
This module reads no environment itself and imports nothing heavy: the settings import it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple, Self

TELEGRAM_BASE_URL = "https://api.telegram.org/bot"
TELEGRAM_BASE_FILE_URL = "https://api.telegram.org/file/bot"
ZALO_BOT_BASE_URL = "https://bot-api.zaloplatforms.com"  # older host: https://bot-api.zapps.me
ZALO_OA_API_BASE = "https://openapi.zalo.me"
ZALO_OA_OAUTH_BASE = "https://oauth.zaloapp.com"
ZALO_OA_TOKEN_FILE_NAME = "zalo_oa_tokens.json"
ZALO_OA_MAX_EVENT_AGE = 300.0  # seconds, either way


class _FromSettings:
    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Self | None:
        """For tests and scripts: this channel's part of `load_settings(env)` (None = not configured)."""
        from bot.settings import load_settings

        return getattr(load_settings(env), FIELDS[cls][0])


@dataclass(frozen=True)
class TelegramConfig(_FromSettings):
    token: str
    webhook_secret: str = ""  # X-Telegram-Bot-Api-Secret-Token; webhook mode needs it
    webhook_url: str = ""  # public https URL of /webhooks/telegram; set with setWebhook on start
    base_url: str = TELEGRAM_BASE_URL
    base_file_url: str = TELEGRAM_BASE_FILE_URL


@dataclass(frozen=True)
class ZaloBotConfig(_FromSettings):
    token: str
    secret: str  # the setWebhook secret_token (8–256 chars)
    base_url: str = ZALO_BOT_BASE_URL


@dataclass(frozen=True)
class ZaloOAConfig(_FromSettings):
    app_id: str
    oa_secret_key: str  # verifies webhook MACs
    app_secret: str = ""  # `secret_key` header of token refreshes
    access_token: str = ""  # bootstrap pair from the first authorization
    refresh_token: str = ""
    api_base: str = ZALO_OA_API_BASE
    oauth_base: str = ZALO_OA_OAUTH_BASE
    token_file: Path = Path("var") / ZALO_OA_TOKEN_FILE_NAME
    max_event_age: float = ZALO_OA_MAX_EVENT_AGE


# Each config's Settings field, and its fields that are secrets (masked in every log line).
FIELDS: dict[type, tuple[str, tuple[str, ...]]] = {
    TelegramConfig: ("telegram", ("token", "webhook_secret")),
    ZaloBotConfig: ("zalo_bot", ("token", "secret")),
    ZaloOAConfig: ("zalo_oa", ("oa_secret_key", "app_secret", "access_token", "refresh_token")),
}


class Channels(NamedTuple):
    """Each channel's config; None where its required secrets are unset."""

    telegram: TelegramConfig | None
    zalo_bot: ZaloBotConfig | None
    zalo_oa: ZaloOAConfig | None


def _text(env: Mapping[str, str], name: str, default: str = "") -> str:
    return (env.get(name) or default).strip()


def channel_configs(env: Mapping[str, str], data_dir: Path) -> Channels:
    """The channels' variables read from `env` (the Zalo OA token file lives in `data_dir`)."""
    telegram = zalo_bot = zalo_oa = None
    if token := _text(env, "TELEGRAM_BOT_TOKEN"):
        telegram = TelegramConfig(token=token, webhook_secret=_text(env, "TELEGRAM_WEBHOOK_SECRET"),
                                  webhook_url=_text(env, "TELEGRAM_WEBHOOK_URL"),
                                  base_url=_text(env, "TELEGRAM_API_BASE_URL", TELEGRAM_BASE_URL),
                                  base_file_url=_text(env, "TELEGRAM_API_FILE_URL", TELEGRAM_BASE_FILE_URL))
    token, secret = _text(env, "ZALO_BOT_TOKEN"), _text(env, "ZALO_BOT_SECRET")
    if token and secret:
        zalo_bot = ZaloBotConfig(token, secret, _text(env, "ZALO_BOT_API_BASE_URL", ZALO_BOT_BASE_URL).rstrip("/"))
    app_id, oa_secret = _text(env, "ZALO_OA_APP_ID"), _text(env, "ZALO_OA_SECRET_KEY")
    if app_id and oa_secret:
        zalo_oa = ZaloOAConfig(app_id=app_id, oa_secret_key=oa_secret, app_secret=_text(env, "ZALO_OA_APP_SECRET"),
                               access_token=_text(env, "ZALO_OA_ACCESS_TOKEN"),
                               refresh_token=_text(env, "ZALO_OA_REFRESH_TOKEN"),
                               api_base=_text(env, "ZALO_OA_API_BASE_URL", ZALO_OA_API_BASE).rstrip("/"),
                               oauth_base=_text(env, "ZALO_OA_OAUTH_BASE_URL", ZALO_OA_OAUTH_BASE).rstrip("/"),
                               token_file=data_dir / ZALO_OA_TOKEN_FILE_NAME)
    return Channels(telegram, zalo_bot, zalo_oa)


def register_channel_secrets(channels: Channels) -> None:
    """Mask every configured channel secret in log lines (bot/channels/secrets.py)."""
    present = [c for c in channels if c is not None]
    if present:  # imported only then: bot.channels loads the store (0.6 s), which plain settings do not need
        from bot.channels.secrets import register_secret

        for config in present:
            register_secret(*(getattr(config, name) for name in FIELDS[type(config)][1]))
