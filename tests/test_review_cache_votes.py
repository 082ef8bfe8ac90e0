"""The review queue's cache (admin_api/report_cache.py) follows a vote changed in place: a citizen's 👎 puts
their question in the queue, their 👍 on the same answer takes it out at once, not up to a minute later."""

from __future__ import annotations

import time

import pytest
from fakes.service import clean_env
from fastapi.testclient import TestClient

from admin_api.app import create_app
from bot.engine import Engine
from bot.service import Service
from storage.store import Store, load_hash_key

AUTH = {"Authorization": "Bearer test-admin-token-0123456789"}  # clean_env's BHXH_ADMIN_TOKEN
QUESTION = "rút bhxh 1 lần được không"


@pytest.fixture
def client(lexical_engine: Engine, tmp_path, monkeypatch) -> TestClient:
    clean_env(monkeypatch, tmp_path)
    service = Service(lexical_engine, Store(tmp_path / "bhxh.db", load_hash_key(tmp_path)))
    return TestClient(create_app(service, ip_limit=10_000))


def _downvoted(client: TestClient) -> list[str]:
    queue = client.get("/admin/review-queue", params={"days": 1}, headers=AUTH).json()
    return [case["question"] for case in queue["cases"] if case["signals"].get("thumbs_down")]


def test_a_vote_changed_to_thumbs_up_leaves_the_queue_at_once(client):
    for _ in range(3):  # the cache is keyed by the minute too: a run across a minute's turn proves nothing
        minute = int(time.time() // 60)
        asked = client.post("/api/ask", json={"question": QUESTION, "user_id": "web-visitor-1"}).json()
        vote = {"question_id": asked["question_id"], "entry_id": asked["entry_id"], "user_id": "web-visitor-1"}
        assert client.post("/api/feedback", json={**vote, "value": -1}).json()["ok"] is True
        assert asked["question_id"] and _downvoted(client) == [QUESTION]
        assert _downvoted(client) == [QUESTION]  # the second read comes from the cache
        assert client.post("/api/feedback", json={**vote, "value": 1}).json() == {"ok": True}
        assert _downvoted(client) == []  # changed in place (no new row): seen at once
        if int(time.time() // 60) == minute:
            return
        client.post("/api/feedback", json={**vote, "value": 1})
    pytest.fail("every attempt ran across the turn of a minute")
