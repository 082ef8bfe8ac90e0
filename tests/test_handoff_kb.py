"""The staff answer feeds the knowledge base (issue 16 item 2): from a closed conversation, one action turns the
citizen's question (redacted) into a new paraphrase of an entry, or the staff answer into a draft entry, both
validated by admin_api/staff_kb.py exactly like `bhxh kb check` and marked for review. The conversation here
is on the web chat (POST /api/ask): the staff reply is kept for the page, nothing to send."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from fakes.service import clean_env, make_service
from fastapi.testclient import TestClient

from admin_api.app import create_app
from bot import messages
from bot.handoff import Handoff

STAFF = {"Authorization": "Bearer test-admin-token-0123456789"}
IN_HOURS = dt.datetime(2026, 12, 3, 3, 0, tzinfo=dt.UTC)
QUESTION = "tôi là bộ đội xuất ngũ, cccd 001175012345, có được nhận bảo hiểm xã hội một lần không"
PARAPHRASES = ["Xuất ngũ có rút BHXH một lần được không?", "Bộ đội phục viên nhận BHXH một lần thế nào?",
               "Quân nhân xuất ngũ hưởng bảo hiểm một lần ra sao?", "Xuất ngũ rồi có lấy tiền BHXH được không?",
               "Đi nghĩa vụ về có được rút bảo hiểm xã hội không?", "Bộ đội xuất ngũ rút BHXH ở đâu?"]
ANSWER = "Bạn được hưởng BHXH một lần nếu đủ điều kiện; hồ sơ nộp tại BHXH huyện nơi cư trú."


@pytest.fixture
def client(tmp_path, monkeypatch) -> Any:
    clean_env(monkeypatch, tmp_path)
    service = make_service(tmp_path / "bhxh.db")
    service.handoff = Handoff(service.store, clock=lambda: IN_HOURS)
    with TestClient(create_app(service)) as test_client:
        test_client.service = service  # type: ignore[attr-defined]
        yield test_client


def _closed_conversation(client: Any, user: str = "web-visitor-1") -> int:
    client.post("/api/ask", json={"question": QUESTION, "user_id": user})
    asked = client.post("/api/ask", json={"question": "gặp cán bộ", "user_id": user}).json()
    assert asked["answer"] == messages.HANDOFF_WAITING
    assert client.post("/api/ask", json={"question": "còn giấy tờ gì nữa?", "user_id": user}).json()["answer"] == ""
    (waiting,) = client.get("/admin/handoffs", headers=STAFF).json()
    assert waiting["channel"] == "web"
    replied = client.post(f"/admin/handoffs/{waiting['id']}/reply", headers=STAFF, json={"text": ANSWER}).json()
    assert replied["sent"] is True
    assert client.post(f"/admin/handoffs/{waiting['id']}/kb", headers=STAFF,
                       json={"kind": "paraphrase", "entry_id": "ml-ai-con-duoc-rut-mot-lan"}).status_code == 409
    assert client.post(f"/admin/handoffs/{waiting['id']}/close", headers=STAFF).status_code == 200
    return int(waiting["id"])


def test_a_closed_conversation_becomes_a_paraphrase(client):
    handoff_id = _closed_conversation(client)
    done = client.post(f"/admin/handoffs/{handoff_id}/kb", headers=STAFF,
                       json={"kind": "paraphrase", "entry_id": "ml-ai-con-duoc-rut-mot-lan"})
    assert done.status_code == 200, done.text
    action = done.json()["kb_action"]
    assert action["kind"] == "paraphrase" and action["review"] == "pending"
    assert "001175012345" not in action["text"] and "[CCCD]" in action["text"]
    version = done.json()["version"]
    assert version["status"] == "pending" and action["version"] == version["id"]  # a reviewer approves it
    assert action["text"] in version["record"]["paraphrases"]
    kept = client.get(f"/admin/handoffs/{handoff_id}", headers=STAFF).json()
    assert kept["kb_action"] == action
    actions = [r[0] for r in client.service.store.db.execute("SELECT action FROM audit ORDER BY id").fetchall()]
    assert actions[-2:] == ["entry.propose", "handoff.kb"]
    own_question = client.service.engine.kb.entries["ml-ai-con-duoc-rut-mot-lan"].question
    assert client.post(f"/admin/handoffs/{handoff_id}/kb", headers=STAFF,
                       json={"kind": "paraphrase", "entry_id": "ml-ai-con-duoc-rut-mot-lan",
                             "question": own_question}).status_code == 409  # the entry's own question


def test_a_draft_entry_is_validated_like_kb_check(client):
    handoff_id = _closed_conversation(client)
    refused = client.post(f"/admin/handoffs/{handoff_id}/kb", headers=STAFF,
                          json={"kind": "draft", "entry": {"id": "ml-bo-doi-xuat-ngu", "topic": "lump_sum"}})
    assert refused.status_code == 422 and any(p["field"] == "sources" for p in refused.json()["problems"])
    assert client.post(f"/admin/handoffs/{handoff_id}/kb", headers=STAFF,
                       json={"kind": "paraphrase", "entry_id": "no-such-entry"}).status_code == 404
    made = client.post(f"/admin/handoffs/{handoff_id}/kb", headers=STAFF, json={
        "kind": "draft", "entry": {"id": "ml-bo-doi-xuat-ngu", "topic": "lump_sum",
                                   "sources": ["Luật 41/2024/QH15, Điều 70"], "paraphrases": PARAPHRASES}})
    assert made.status_code == 200, made.text
    record = made.json()["version"]["record"]
    assert record["answer"] == ANSWER and "[CCCD]" in record["question"]
    assert made.json()["kb_action"] == {"kind": "draft", "entry_id": "ml-bo-doi-xuat-ngu",
                                        "version": made.json()["version"]["id"], "review": "pending"}
    assert "ml-bo-doi-xuat-ngu" not in client.service.engine.kb.entries  # live only once a reviewer approves
