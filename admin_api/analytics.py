"""Transitional: the staff analytics now live in `admin_api.trends` (counts, the rising test, daily
series), `admin_api.question_log` (the log, export, feedback, audit) and `admin_api.clusters`
(unanswered clusters, nearest entries). These names remain for tests/test_demo_traffic.py and
benchmarks/admin_bench.py until they import those modules; delete this file then."""

from __future__ import annotations

from admin_api.clusters import wait_for_warmup
from admin_api.trends import topic_trends
from storage.store import Store

__all__ = ["migrate", "topic_trends", "wait_for_warmup"]


def migrate(store: Store) -> None:
    """Nothing left to do: the Store applies its migrations when it opens (storage/schema.py)."""
    store.migrate()
