"""The channels' worker threads: Service calls block on search and SQLite, so they leave the event loop."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")
# Inbox writes get their own thread: in the default pool they would queue behind the Service calls of
# a burst and delay the webhook's 200; on the event loop a locked database would stall every request.
_inbox_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="inbox")
# Service calls (search, SQLite) from the channels. asyncio's default pool has cpu+4 threads (6 here):
# too few waiters to fill the encoder's batches, so webhook answers would lag behind a burst.
_service_threads = ThreadPoolExecutor(max_workers=48, thread_name_prefix="channel-service")


async def in_thread(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """`fn(*args, **kwargs)` in the channels' worker pool (Service calls block on search and SQLite)."""
    return await asyncio.get_running_loop().run_in_executor(_service_threads, functools.partial(fn, *args, **kwargs))


async def in_inbox_thread(fn: Callable[..., T], *args: Any) -> T:
    """`fn(*args)` on the single inbox thread (accepts and delivery marks, in order)."""
    return await asyncio.get_running_loop().run_in_executor(_inbox_thread, functools.partial(fn, *args))
