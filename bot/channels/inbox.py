"""The durable inbox of one channel (the Store's `inbox` table).

`accept` before the 200, `run` the processing after it (marks the delivery done unless it failed),
`replay` on start what a killed process had acknowledged but not finished. While a reply is being
sent, the inbox row also holds the rendered reply and how many of its messages went out
(`record_reply`, `mark_sent`), so a replay sends the rest instead of nothing (review F9) and a
reply the platform refused for a while is sent later instead of dropped (F10).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from bot.channels.secrets import mask
from bot.channels.threads import in_inbox_thread, in_thread
from storage.store import Store

log = logging.getLogger(__name__)

REPLAY_CONCURRENCY = 8


class Inbox:
    def __init__(self, store: Store, channel: str) -> None:
        self.store, self.channel = store, channel
        self.replay_task: asyncio.Task[int] | None = None
        self._in_flight: set[str] = set()  # accepted by this process, processing not finished: not to replay

    async def accept(self, key: str, payload: dict[str, Any]) -> bool:
        """Committed before returning; False for a delivery already accepted (a redelivery)."""
        new = await in_inbox_thread(self.store.inbox_accept, self.channel, key, payload)
        if new:
            self._in_flight.add(key)
        return new

    def record_reply_now(self, key: str, reply: dict[str, Any], sent: int = 0) -> None:
        """Keep the rendered reply with the delivery (cleared when it is done), message `sent` marked as
        on its way. Blocking: called in the worker thread that computed the reply, right after logging."""
        self.store.inbox_record_reply(self.channel, key, reply, sent)

    async def record_reply(self, key: str, reply: dict[str, Any], sent: int = 0) -> None:
        await in_inbox_thread(self.store.inbox_record_reply, self.channel, key, reply, sent)

    async def mark_sent(self, key: str, count: int, *, sending: bool) -> None:
        """`count` messages of the recorded reply went out; `sending`: the next one is on its way."""
        await in_inbox_thread(self.store.inbox_mark_sent, self.channel, key, count, sending)

    async def run(self, key: str, process: Callable[..., Awaitable[bool | None]], *args: Any) -> None:
        """`await process(*args)`, then mark the delivery done, unless it returned False (left for a replay)."""
        self._in_flight.add(key)
        try:
            if await process(*args) is not False:
                await in_thread(self.store.inbox_done, self.channel, key)  # not behind the accepts
        finally:
            self._in_flight.discard(key)

    async def replay(self, process: Callable[[str, dict[str, Any]], Awaitable[bool | None]]) -> int:
        """Process the pending deliveries, `process(key, payload)`; returns how many."""
        pending = [(key, payload) for key, payload in await in_inbox_thread(self.store.inbox_pending, self.channel)
                   if key not in self._in_flight]
        if not pending:
            return 0
        log.info("%s inbox: replaying %d deliveries acknowledged before the restart", self.channel, len(pending))
        limit = asyncio.Semaphore(REPLAY_CONCURRENCY)

        async def one(key: str, payload: dict[str, Any]) -> bool | None:
            async with limit:
                try:
                    return await process(key, payload)
                except Exception as exc:  # a bad row must not be replayed on every start: done
                    log.warning("%s inbox: replay of a delivery failed: %s", self.channel, mask(repr(exc)))
                    return True

        await asyncio.gather(*(self.run(key, one, key, payload) for key, payload in pending))
        return len(pending)

    def start_replay(self, process: Callable[[str, dict[str, Any]], Awaitable[bool | None]]) -> None:
        """Replay in the background while the server takes new deliveries."""
        self.replay_task = asyncio.create_task(self.replay(process), name=f"{self.channel}-inbox-replay")

    async def stop(self) -> None:
        """Cancel an unfinished replay: what it did not reach stays pending for the next start."""
        if self.replay_task is not None and not self.replay_task.done():
            self.replay_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.replay_task
