"""Channel webhooks (Telegram, Zalo Bot Platform, Zalo OA) mounted under /webhooks/."""

from __future__ import annotations

from fastapi import FastAPI

from bot.service import Service


def register(app: FastAPI, service: Service) -> None:
    """Mount the webhooks of every channel whose secrets are configured."""
