"""Transitional: the staff analytics now live in `admin_api.trends` (counts, the rising test, daily
series), `admin_api.question_log` (the log, export, feedback, audit) and `admin_api.clusters`
(unanswered clusters, nearest entries). These two names remain for benchmarks/admin_bench.py until it
imports `clusters.wait_for_warmup` and drops `migrate` (the Store migrates when it opens); delete this
file then."""

from __future__ import annotations

from admin_api.clusters import wait_for_warmup
from storage.store import Store

__all__ = ["migrate", "wait_for_warmup"]


def migrate(store: Store) -> None:
    """Nothing left to do: the Store applies its migrations when it opens (storage/schema.py)."""
    store.migrate()
