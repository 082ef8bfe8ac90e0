"""Reuse a costly staff report while nothing new was logged (issue 18: p95 under 100 ms at 200,000 rows).

The review queue and the clusters read thousands of rows and group them in Python; a dashboard that
is reloaded, paged or drilled into asks for the same window again and again. `ReportCache.get` keeps
the last results per store, keyed by their parameters, the newest row id of the table they read
(`SELECT MAX(id)`, one index probe) and the current minute: a new question or signal, or the next
minute, computes afresh, so a report is at most a minute behind a vote changed in place (👎 to 👍).
"""

from __future__ import annotations

import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

T = TypeVar("T")


class ReportCache:
    def __init__(self, size: int = 32) -> None:
        self.size = size
        self._by_store: weakref.WeakKeyDictionary[Any, OrderedDict[Hashable, Any]] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    def get(self, store: Any, table: str, key: Hashable, compute: Callable[[], T]) -> T:
        newest = store.db.execute(f"SELECT MAX(id) FROM {table}").fetchone()[0]
        full = (table, newest, int(time.time() // 60), key)
        with self._lock:
            items = self._by_store.setdefault(store, OrderedDict())
            if full in items:
                items.move_to_end(full)
                return items[full]  # type: ignore[no-any-return]
        value = compute()
        with self._lock:
            items[full] = value
            while len(items) > self.size:
                items.popitem(last=False)
        return value
