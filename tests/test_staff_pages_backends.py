"""The staff pages' reads give the same reports on SQLite and on PostgreSQL (issue 15): the same demo
traffic (generated with one seed and one clock) is written to both backends, then every report the
dashboard and the staff API show is computed on each and compared. Skipped without PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from admin_api import clusters, question_log, trends
from admin_api.demo_traffic import generate
from bot.engine import Engine
from knowledge.schema import load_knowledge
from storage.factory import open_store
from storage.store import Store
from tests.pg import Cluster, pg_cluster  # noqa: F401 (fixture)

HASH_KEY = b"k" * 32
NOW = dt.datetime(2026, 12, 3, 9, 30, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine(load_knowledge(), None)


@pytest.fixture(scope="module")
def stores(pg_cluster: Cluster, tmp_path_factory: pytest.TempPathFactory):  # noqa: F811
    """(SQLite store, PostgreSQL store) holding the same three weeks of traffic, feedback and audit rows."""
    name = pg_cluster.create_database()
    sqlite = Store(Path(tmp_path_factory.mktemp("pages")) / "bhxh.db", HASH_KEY)
    postgres = open_store(pg_cluster.database_url(name), HASH_KEY)
    try:
        for store in (sqlite, postgres):
            generate(store, days=21, per_day=120, spike_topic="lump_sum", spike_factor=3.0, seed=5, now=NOW)
            for n in range(7):
                store.audit(f"cán bộ {n % 2}", "entry.update" if n % 3 else "entry.create", f"entry-{n}", {"n": n})
        yield sqlite, postgres
    finally:
        postgres.close()
        pg_cluster.drop_database(name)


def both(stores: tuple[Any, Any], report: Any) -> tuple[Any, Any]:
    sqlite, postgres = stores
    return report(sqlite), report(postgres)


def test_topic_trends_and_daily_series_are_the_same(stores):
    for days, channel in ((7, None), (14, "zalo")):
        a, b = both(stores, lambda s, d=days, c=channel: trends.topic_trends(s, d, c, now=NOW))
        assert a.total_current > 0 and a == b
    a, b = both(stores, lambda s: trends.daily_series(s, 21, None, now=NOW))
    assert sum(a.total) > 0 and a == b
    assert both(stores, trends.channels)[0] == both(stores, trends.channels)[1] == ["telegram", "web", "zalo"]


def test_the_question_log_pages_and_export_are_the_same(stores):
    filters = question_log.QuestionFilter(start=NOW - dt.timedelta(days=10), end=NOW, topic="pension",
                                           contains="lương")
    a, b = both(stores, lambda s: question_log.list_questions(s, filters, limit=25))
    assert a.total > 25 and a.next_cursor is not None
    assert [(q.ts, q.text, q.outcome) for q in a.items] == [(q.ts, q.text, q.outcome) for q in b.items]
    a2, b2 = both(stores, lambda s: question_log.list_questions(s, filters, limit=25, cursor=a.next_cursor))
    assert a2.items and [q.text for q in a2.items] == [q.text for q in b2.items]
    rows_a, rows_b = both(stores, lambda s: list(question_log.iter_questions(s, filters, limit=10_000, chunk=40)))
    assert len(rows_a) == a.total and [r[1:] for r in rows_a] == [r[1:] for r in rows_b]


def test_feedback_audit_and_unanswered_are_the_same(stores, engine):
    a, b = both(stores, lambda s: question_log.feedback_counts(s, engine, days=14, now=NOW))
    assert a.up + a.down > 0 and a == b
    a, b = both(stores, lambda s: question_log.audit_log(s, limit=5, offset=1, action="entry.update"))
    assert a.total == 4 and [(r.actor, r.target, r.detail) for r in a.items] == \
        [(r.actor, r.target, r.detail) for r in b.items]
    a, b = both(stores, lambda s: clusters.unanswered(s, engine, days=14, now=NOW))
    assert a.questions > 0 and a.clusters
    assert (a.questions, a.distinct_texts) == (b.questions, b.distinct_texts)
    assert [(c.representative, c.size, c.outcomes, c.last_seen) for c in a.clusters] == \
        [(c.representative, c.size, c.outcomes, c.last_seen) for c in b.clusters]
