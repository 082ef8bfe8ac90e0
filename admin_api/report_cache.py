"""Reuse a costly staff report while nothing new was logged (issue 18: p95 under 100 ms at 200,000 rows).

The review queue and the clusters read thousands of rows and group them in Python; a dashboard that
is reloaded, paged or drilled into asks for the same window again and again. `ReportCache.get` keeps
the last results per store, keyed by their parameters, the newest row id of the table they read
(`SELECT MAX(id)`, one index probe), what changes in place in a report over that table
(`CHANGED_IN_PLACE`: a vote changed from 👎 to 👍 is an UPDATE, no new row) and the current minute (a bound
for anything else): a new question or signal, or a changed vote, computes afresh.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

T = TypeVar("T")

# Per table a report reads: the newest change it shows that adds no row. The review queue (over "signals")
# leaves out a 👎 its citizen changed to 👍 (questions.feedback and the feedback row's value and ts are
# updated). PostgreSQL reads MAX(ts) from its feedback_ts index; SQLite scans the feedback table (about
# 2 ms at 15,000 votes).
CHANGED_IN_PLACE = {"signals": "SELECT MAX(ts) FROM feedback"}


class ReportCache:
    def __init__(self, size: int = 32) -> None:
        self.size = size
        self._by_store: weakref.WeakKeyDictionary[Any, OrderedDict[Hashable, Any]] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    def get(self, store: Any, table: str, key: Hashable, compute: Callable[[], T]) -> T:
        newest = store.db.execute(f"SELECT MAX(id) FROM {table}").fetchone()[0]
        changed = store.db.execute(CHANGED_IN_PLACE[table]).fetchone()[0] if table in CHANGED_IN_PLACE else None
        full = (table, newest, changed, int(time.time() // 60), key)
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
