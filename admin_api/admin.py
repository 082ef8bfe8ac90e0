"""The staff API under /admin/ and the dashboard."""

from __future__ import annotations

from fastapi import FastAPI

from bot.service import Service


def register(app: FastAPI, service: Service) -> None:
    """Mount the staff API (refuses to start without BHXH_ADMIN_TOKEN)."""
