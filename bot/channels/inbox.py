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
import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from bot.channels.secrets import mask
from bot.channels.threads import in_inbox_thread, in_thread
from storage.store import Store

log = logging.getLogger(__name__)

REPLAY_CONCURRENCY = 8
CLAIM_BATCH = 50  # deliveries taken over per round (several workers: each takes some)
TURN_POLL = 0.05  # seconds between checks whether a chat's earlier delivery is done


class Inbox:
    def __init__(self, store: Store, channel: str) -> None:
        self.store, self.channel = store, channel
        self.replay_task: asyncio.Task[int] | None = None
        self.claim_task: asyncio.Task[None] | None = None
        self._in_flight: set[str] = set()  # accepted by this process, processing not finished: not to replay
        # A store shared by several workers (PostgreSQL) leases deliveries: a worker renews the lease of
        # what it is working on, takes over expired ones now and then, and answers one chat in turn.
        self.shared = callable(getattr(store, "inbox_turn", None))
        self.lease_seconds = float(getattr(store, "lease_seconds", 60.0))

    async def accept(self, key: str, payload: dict[str, Any], *, chat: str | None = None) -> bool:
        """Committed before returning; False for a delivery already accepted (a redelivery). On a shared
        store `chat` queues the delivery behind that chat's earlier ones (`run` waits for its turn)."""
        if self.shared:
            new = await in_inbox_thread(functools.partial(self.store.inbox_accept, self.channel, key, payload,
                                                          chat=chat))
        else:
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
        renewing = asyncio.create_task(self._renew_lease(key)) if self.shared else None
        try:
            if self.shared:
                await self._wait_for_turn(key)
            if await process(*args) is not False:
                await in_thread(self.store.inbox_done, self.channel, key)  # not behind the accepts
        finally:
            self._in_flight.discard(key)
            if renewing is not None:
                renewing.cancel()

    async def _wait_for_turn(self, key: str) -> None:
        """Until no earlier delivery of the same chat is pending (whichever worker has it), so one chat's
        replies go out in order; at most a lease (an earlier one whose worker died waits for a takeover)."""
        deadline = asyncio.get_running_loop().time() + self.lease_seconds
        while not await in_thread(self.store.inbox_turn, self.channel, key):
            if asyncio.get_running_loop().time() > deadline:
                log.warning("%s inbox: an earlier delivery of the same chat is still pending; answering anyway",
                            self.channel)
                return
            await asyncio.sleep(TURN_POLL)

    async def _renew_lease(self, key: str) -> None:
        """Keep the lease on a delivery this worker is still working on (a slow send, a wait for its turn),
        so no other worker takes it over while this one is alive."""
        while True:
            await asyncio.sleep(self.lease_seconds / 3)
            try:
                await in_thread(self.store.inbox_extend, self.channel, key)
            except Exception as exc:  # the database is down: the lease may run out; nothing else to do
                log.warning("%s inbox: could not renew a lease: %s", self.channel, mask(repr(exc)))

    async def replay(self, process: Callable[[str, dict[str, Any]], Awaitable[bool | None]], *,
                     taking_over: bool = False) -> int:
        """Process the pending deliveries, `process(key, payload)`; returns how many. `taking_over`: only
        those whose lease ran out (a worker died), a few at a time, instead of all at start-up."""
        fetch = (functools.partial(self.store.inbox_claim, self.channel, CLAIM_BATCH) if taking_over
                 else functools.partial(self.store.inbox_pending, self.channel))
        pending = [(key, payload) for key, payload in await in_inbox_thread(fetch) if key not in self._in_flight]
        if not pending:
            return 0
        log.info("%s inbox: %s %d deliveries acknowledged by %s", self.channel,
                 "taking over" if taking_over else "replaying", len(pending),
                 "a worker that stopped" if taking_over else "the process before this restart")
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
        """Replay in the background while the server takes new deliveries; on a shared store, then keep
        taking over what other workers left when they died (every half lease)."""
        self.replay_task = asyncio.create_task(self.replay(process), name=f"{self.channel}-inbox-replay")
        if self.shared and self.claim_task is None:
            self.claim_task = asyncio.create_task(self._keep_claiming(process), name=f"{self.channel}-inbox-claim")

    async def _keep_claiming(self, process: Callable[[str, dict[str, Any]], Awaitable[bool | None]]) -> None:
        while True:
            await asyncio.sleep(max(self.lease_seconds / 2, 0.2))
            try:
                await self.replay(process, taking_over=True)
            except Exception as exc:  # keep the loop: the next round retries
                log.warning("%s inbox: taking over deliveries failed: %s", self.channel, mask(repr(exc)))

    async def stop(self) -> None:
        """Cancel an unfinished replay: what it did not reach stays pending for the next start."""
        for task in (self.claim_task, self.replay_task):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
