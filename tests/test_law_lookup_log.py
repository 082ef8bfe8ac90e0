"""Law lookups on chat (bot/field_kit.py) in the question log and the staff reports: counted under their own
outcome "law_lookup", never as unanswered questions, apart in the topics CSV and the dashboard's answered rate."""

from __future__ import annotations

import csv
import io

import pytest
from fakes.service import clean_env
from fastapi.testclient import TestClient

from admin_api import clusters, dashboard, trends
from admin_api.app import create_app
from bot.engine import Engine
from bot.field_kit import FieldKit, NumberedTurns
from bot.service import Service
from bot.settings import load_settings
from storage.store import Store, load_hash_key
from tests.fakes.engines import real_engine
from tests.pg import each_backend_store, pg_cluster, pg_url  # noqa: F401 (fixtures)

AUTH = {"Authorization": "Bearer test-admin-token-0123456789"}  # clean_env's BHXH_ADMIN_TOKEN
LOOKUPS = ["khoản 2 điều 31", "nghị định 158 điều 7", "tra luật: thai sản"]


@pytest.fixture(scope="module")
def engine(request: pytest.FixtureRequest) -> Engine:
    return real_engine(request)


@pytest.fixture
def service(engine: Engine, tmp_path, monkeypatch) -> Service:
    clean_env(monkeypatch, tmp_path)
    return Service(engine, Store(tmp_path / "bhxh.db", load_hash_key(tmp_path)))


def test_lookups_count_apart_from_questions_and_never_as_unanswered(service):
    turns = NumberedTurns(FieldKit(lambda: service.engine.kb), service, "zalo_bot")  # what the Zalo adapters run
    for text in LOOKUPS:
        assert turns.turn("u1", text) is not None
    assert turns.turn("u1", "chủ đề") is not None  # browsing the topics is not logged
    answered = service.handle("zalo_bot", "u1", "rút bhxh 1 lần được không")
    assert answered.reply.outcome == "answered"

    series = trends.daily_series(service.store, 2)
    assert sum(series.outcomes["law_lookup"]) == 3 and sum(series.outcomes["answered"]) == 1
    assert sum(series.outcomes["declined"]) == sum(series.outcomes["choices"]) == 0
    assert sum(series.total) == 4

    unanswered = clusters.unanswered(service.store, service.engine, 2, min_score=1.0)  # every answer "unsure"
    members = [text for c in unanswered.clusters for text in c.examples]
    assert not any(text in members for text in LOOKUPS) and unanswered.questions <= 1

    kpi = dashboard.page_context(service, load_settings(), 7, None)["kpi"]
    assert kpi["answered_pct"] == 100  # the one question was answered; lookups are not in the rate

    with TestClient(create_app(service, ip_limit=10_000)) as client:
        response = client.get("/admin/export/topics.csv", params={"days": 2}, headers=AUTH)
        rows = list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))
        assert list(rows[0])[3:] == ["questions", "answered", "choices", "declined", "law_lookup"]
        assert sum(int(r["law_lookup"]) for r in rows) == 3 and sum(int(r["questions"]) for r in rows) == 4
        assert all(int(r["questions"]) == sum(int(r[o]) for o in trends.OUTCOMES) for r in rows)
        only = client.get("/admin/questions", params={"outcome": "law_lookup"}, headers=AUTH).json()
        assert sorted(q["text"] for q in only["items"]) == sorted(LOOKUPS)


def test_lookups_are_counted_apart_on_both_backends(each_backend_store, lexical_engine):  # noqa: F811
    """The daily counts (SQLite triggers, PostgreSQL's) and the unanswered clusters on either store."""
    service = Service(lexical_engine, each_backend_store)
    turns = NumberedTurns(FieldKit(lambda: service.engine.kb), service, "zalo_bot")
    for text in LOOKUPS:
        turns.turn("u1", text)
    rows = each_backend_store.db.execute("SELECT text, outcome, kind FROM questions ORDER BY id").fetchall()
    assert [tuple(r) for r in rows] == [(text, "law_lookup", "law_lookup") for text in LOOKUPS]
    series = trends.daily_series(each_backend_store, 2)
    assert sum(series.outcomes["law_lookup"]) == sum(series.total) == 3
    assert clusters.unanswered(each_backend_store, lexical_engine, 2, min_score=1.0).questions == 0
