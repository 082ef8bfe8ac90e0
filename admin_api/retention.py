"""Start-up and daily upkeep of the database: the staff tables and entries, and the retention of the
question log (Settings.retention_days, from BHXH_RETENTION_DAYS). The app's lifespan runs it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import AsyncIterator

from admin_api import staff_kb
from bot.service import Service
from storage.store import Store

log = logging.getLogger(__name__)

DAY_SECONDS = 86_400.0


def apply_retention(store: Store, days: int) -> int:
    """Delete questions and feedback older than `days` days (0: keep everything)."""
    if days <= 0:
        return 0
    deleted = store.delete_older_than(days)
    if deleted:
        log.info("retention: deleted %d questions older than %d days", deleted, days)
        store.audit("system", "retention", "questions", {"deleted": deleted, "days": days})
    return deleted


def prepare_database(service: Service) -> bool:
    """The staff indexes, daily counts and staff entries (idempotent). False if the database refuses
    (locked by another process, read-only): the bot still starts, and this is retried at start-up and daily."""
    try:
        service.store.migrate()  # normally done when the store opened; retried here if it was refused then
        staff_kb.ensure_staff_entries_loaded(service)
        return True
    except sqlite3.OperationalError as exc:
        log.warning("database not ready for the staff API (%s); retried at start-up and daily", exc)
        return False


async def at_start_up(service: Service, days: int) -> None:
    """Prepare the database and apply retention once; a failure is logged, the server still starts."""
    try:
        await asyncio.to_thread(prepare_database, service)
        await asyncio.to_thread(apply_retention, service.store, days)
    except Exception:
        log.exception("retention at start-up failed")


async def _daily_loop(service: Service, days: int, every_s: float) -> None:
    while True:
        await asyncio.sleep(every_s)
        try:
            await asyncio.to_thread(prepare_database, service)
            await asyncio.to_thread(apply_retention, service.store, days)
        except Exception:  # keep the loop alive: the next day retries
            log.exception("retention run failed")


@contextlib.asynccontextmanager
async def daily(service: Service, days: int, every_s: float = DAY_SECONDS) -> AsyncIterator[None]:
    """Run the daily upkeep in the background while the block runs (nothing to do when days is 0)."""
    task = asyncio.create_task(_daily_loop(service, days, every_s)) if days > 0 else None
    try:
        yield
    finally:
        if task is not None:
            task.cancel()
