"""A real Service on the real knowledge base (lexical search only: fast) and a clean environment."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest

from bot.engine import Engine
from bot.service import Service
from knowledge.schema import load_knowledge
from storage.store import Store

CHANNEL_ENV = [
    "TELEGRAM_BOT_TOKEN", "TELEGRAM_WEBHOOK_SECRET", "TELEGRAM_WEBHOOK_URL", "TELEGRAM_API_BASE_URL",
    "TELEGRAM_API_FILE_URL", "ZALO_BOT_TOKEN", "ZALO_BOT_SECRET", "ZALO_BOT_API_BASE_URL", "ZALO_OA_APP_ID",
    "ZALO_OA_SECRET_KEY", "ZALO_OA_APP_SECRET", "ZALO_OA_ACCESS_TOKEN", "ZALO_OA_REFRESH_TOKEN",
    "ZALO_OA_API_BASE_URL", "ZALO_OA_OAUTH_BASE_URL",
]


@functools.cache
def engine() -> Engine:
    return Engine(load_knowledge(), None)


def make_service(db: Path, **limits: float) -> Service:
    return Service(engine(), Store(db, b"test-hash-key"), **limits)  # type: ignore[arg-type]


def clean_env(monkeypatch: pytest.MonkeyPatch, data_dir: Path) -> None:
    for name in CHANNEL_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("BHXH_DATA_DIR", str(data_dir))
    monkeypatch.setenv("BHXH_ADMIN_TOKEN", "test-admin-token-0123456789")


def zalo_bot_env(monkeypatch: pytest.MonkeyPatch, data_dir: Path, api_url: str, token: str, secret: str) -> None:
    """A clean environment with the Zalo Bot Platform channel pointed at a fake server."""
    clean_env(monkeypatch, data_dir)
    monkeypatch.setenv("ZALO_BOT_TOKEN", token)
    monkeypatch.setenv("ZALO_BOT_SECRET", secret)
    monkeypatch.setenv("ZALO_BOT_API_BASE_URL", api_url)


def question_count(service: Service) -> int:
    return service.store.db["questions"].count


def channel_app(service: Service):  # -> FastAPI
    """Just the webhooks on a bare FastAPI app (the full app is covered by test_web_chat)."""
    from fastapi import FastAPI

    from admin_api import webhooks

    app = FastAPI()
    webhooks.register(app, service)
    return app
