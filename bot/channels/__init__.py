"""Chat channels over one Service: Telegram, Zalo Bot Platform, Zalo Official Account.

Each adapter verifies the delivery, parses it, records it in the durable
inbox (`Inbox`: duplicates are dropped there), acknowledges it, then calls
`Service` (in a worker thread: it does SQLite and search), renders the Reply for
its channel (`bot.channels.format`) and sends it. This module holds the little
they share: secret masking for logs, the inbox and environment helpers.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import threading
import traceback
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from bot.reply import Reply
from storage.store import Store

log = logging.getLogger(__name__)

MASK = "***"
_secrets: set[str] = set()  # fixed for the process: bot tokens, keys
_rotating: deque[str] = deque(maxlen=8)  # Zalo OA access/refresh tokens, newest last
_secrets_lock = threading.Lock()
_factory_installed = False


def register_secret(*values: str | None, rotating: bool = False) -> None:
    """Never let these strings reach a log line (tokens, keys; also the part after a "id:" prefix).
    `rotating` secrets (refreshed tokens) are kept only while they are among the newest few."""
    with _secrets_lock:
        for value in values:
            if not value or len(value) < 6:
                continue
            parts = [value]
            head, sep, tail = value.partition(":")
            if sep and head.isdigit() and len(tail) >= 8:  # "<bot id>:<secret>" tokens
                parts.append(tail)
            for part in parts:
                if rotating:
                    if part not in _rotating:
                        _rotating.append(part)
                else:
                    _secrets.add(part)
    install_log_masking()


def mask(text: str) -> str:
    """`text` with every registered secret replaced by ***."""
    with _secrets_lock:
        secrets = sorted({*_secrets, *_rotating}, key=len, reverse=True)
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def install_log_masking() -> None:
    """Mask secrets in every log record (message and traceback), whoever logs it and however
    logging is configured: httpx logs request URLs, which carry the Telegram/Zalo bot token."""
    global _factory_installed
    with _secrets_lock:
        if _factory_installed:
            return
        _factory_installed = True
    previous = logging.getLogRecordFactory()

    def factory(*args: object, **kwargs: object) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        if not _secrets and not _rotating:
            return record
        try:
            message = record.getMessage()
            masked = mask(message)
            if masked != message:
                record.msg, record.args = masked, None
            if record.exc_info and record.exc_info[1] is not None:
                text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
                record.exc_text = mask(text)  # formatters use exc_text when it is set
        except Exception:  # logging must never fail because of masking
            pass
        return record

    logging.setLogRecordFactory(factory)
    logging.getLogger("httpx").setLevel(max(logging.WARNING, logging.getLogger("httpx").level))


T = TypeVar("T")
REPLAY_CONCURRENCY = 8
# Inbox writes get their own thread: in the default pool they would queue behind the Service calls of
# a burst and delay the webhook's 200; on the event loop a locked database would stall every request.
_inbox_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="inbox")
# Service calls (search, SQLite) from the channels. asyncio's default pool has cpu+4 threads (6 here):
# too few waiters to fill the encoder's batches, so webhook answers would lag behind a burst.
_service_threads = ThreadPoolExecutor(max_workers=48, thread_name_prefix="channel-service")


async def in_thread(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """`fn(*args, **kwargs)` in the channels' worker pool (Service calls block on search and SQLite)."""
    return await asyncio.get_running_loop().run_in_executor(_service_threads, functools.partial(fn, *args, **kwargs))


class Inbox:
    """The durable inbox of one channel (Store's `inbox` table): `accept` before the 200, `run` the
    processing after it (marks the delivery done), `replay` on start what a killed process had
    acknowledged but not processed."""

    def __init__(self, store: Store, channel: str) -> None:
        self.store, self.channel = store, channel
        self.replay_task: asyncio.Task[int] | None = None
        self._in_flight: set[str] = set()  # accepted by this process, processing not finished: not to replay

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(_inbox_thread, functools.partial(fn, *args))

    async def accept(self, key: str, payload: dict[str, Any]) -> bool:
        """Committed before returning; False for a delivery already accepted (a redelivery)."""
        new = await self._call(self.store.inbox_accept, self.channel, key, payload)
        if new:
            self._in_flight.add(key)
        return new

    async def run(self, key: str, process: Callable[..., Awaitable[bool | None]], *args: Any) -> None:
        """`await process(*args)`, then mark the delivery done, unless it returned False (left for a replay)."""
        self._in_flight.add(key)
        try:
            if await process(*args) is not False:
                await in_thread(self.store.inbox_done, self.channel, key)  # not behind the accepts
        finally:
            self._in_flight.discard(key)

    async def replay(self, process: Callable[[dict[str, Any]], Awaitable[bool | None]]) -> int:
        """Process the pending deliveries; returns how many. Questions already logged before the process
        died are not answered again: Service.handle flags them as duplicates, the channels send nothing."""
        pending = [(key, payload) for key, payload in await self._call(self.store.inbox_pending, self.channel)
                   if key not in self._in_flight]
        if not pending:
            return 0
        log.info("%s inbox: replaying %d deliveries acknowledged before the restart", self.channel, len(pending))
        limit = asyncio.Semaphore(REPLAY_CONCURRENCY)

        async def one(payload: dict[str, Any]) -> bool | None:
            async with limit:
                try:
                    return await process(payload)
                except Exception as exc:  # a bad row must not be replayed on every start: done
                    log.warning("%s inbox: replay of a delivery failed: %s", self.channel, mask(repr(exc)))
                    return True

        await asyncio.gather(*(self.run(key, one, payload) for key, payload in pending))
        return len(pending)

    def start_replay(self, process: Callable[[dict[str, Any]], Awaitable[bool | None]]) -> None:
        """Replay in the background while the server takes new deliveries."""
        self.replay_task = asyncio.create_task(self.replay(process), name=f"{self.channel}-inbox-replay")

    async def stop(self) -> None:
        """Cancel an unfinished replay: what it did not reach stays pending for the next start."""
        if self.replay_task is not None and not self.replay_task.done():
            self.replay_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.replay_task


def entry_title(kb: object, reply: Reply) -> str | None:
    """The canonical question of the answered entry (shown in bold above the answer)."""
    if reply.kind not in ("answer", "personal") or not reply.entry_id:
        return None
    entry = getattr(kb, "entries", {}).get(reply.entry_id)
    return entry.question if entry is not None else None


def env_str(env: Mapping[str, str], name: str, default: str = "") -> str:
    return (env.get(name) or default).strip()
