"""Handoffs in the store (storage/handoffs.py), on both backends (SQLite and a throwaway PostgreSQL)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from storage.base import LoggedQuestion
from storage.factory import open_store
from tests.pg import pg_cluster, pg_url  # noqa: F401 (fixtures)

T0, T1, T2, T3 = ("2026-12-03T03:00:00.000000Z", "2026-12-03T03:05:00.000000Z", "2026-12-03T03:10:00.000000Z",
                  "2026-12-03T03:20:00.000000Z")
CCCD, PHONE = "001175012345", "0912345678"


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    opened = open_store(tmp_path / "bhxh.db" if request.param == "sqlite" else request.getfixturevalue("pg_url"),
                        b"k" * 32)
    request.addfinalizer(getattr(opened, "close", lambda: None))
    return opened


def _all_text(store: Any) -> str:
    """Every handoff row and audit row as text (what a leak would show up in)."""
    tables = {t: store.db.execute(f"SELECT * FROM {t}").fetchall() for t in ("handoffs", "handoff_messages", "audit")}
    return json.dumps(tables, ensure_ascii=False, default=str)


def _ask(store: Any, text: str, kind: str, topic: str | None = None) -> None:
    store.log_question(LoggedQuestion(channel="telegram", user_id="4242", text=text, normalized=text, topic=topic,
                                      entry_id=None, score=0.1, outcome="declined", kind=kind, latency_ms=5.0))


def test_a_handoff_from_request_to_close(store):
    _ask(store, f"tôi muốn rút bhxh, cccd {CCCD}", "not_sure", "lump_sum")
    _ask(store, "rut 1 lan", "not_sure")
    assert store.recent_questions("telegram", "4242") == [("not_sure", None), ("not_sure", "lump_sum")]
    handoff, created = store.handoff_open(channel="telegram", user_id="4242", chat_id="4242", reason="not_sure",
                                          topic="lump_sum", now=T0, text="gặp cán bộ", message_id="tg:4242:9")
    assert created and handoff.status == "waiting" and handoff.chat_id == "4242"
    again, created = store.handoff_open(channel="telegram", user_id="4242", chat_id="4242", reason="asked",
                                        topic=None, now=T1, text="gặp cán bộ", message_id="tg:4242:9")
    assert not created and again.id == handoff.id  # one open handoff per chat; the redelivery is not kept twice
    assert store.handoff_active("telegram", "4242").id == handoff.id
    assert store.handoff_active("telegram", "other") is None and store.handoff_active("zalo_bot", "4242") is None

    assert store.handoff_citizen_message(handoff.id, f"số điện thoại {PHONE}", T1, message_id="tg:4242:10")
    assert not store.handoff_citizen_message(handoff.id, f"số điện thoại {PHONE}", T1, message_id="tg:4242:10")
    store.handoff_bot_message(handoff.id, "Cán bộ sẽ trả lời.", T1)
    (queued,) = store.handoff_list()
    assert [m.author for m in queued.messages] == ["citizen"] * 4 + ["bot"]  # the two logged questions first
    texts = [m.text for m in queued.messages]
    assert texts[1:] == ["rut 1 lan", "gặp cán bộ", "số điện thoại [SĐT]", "Cán bộ sẽ trả lời."]
    assert "[CCCD]" in texts[0]
    assert queued.last_message_id == "tg:4242:10" and queued.requested_ts == T0

    owned = store.handoff_take(handoff.id, "Hoa", T1)
    assert owned.status == "owned" and owned.owner == "Hoa" and owned.owned_ts == T1
    store.handoff_staff_message(handoff.id, "Hoa", f"Bạn gọi {PHONE} nhé", T2, "sent")
    before = store.handoff_close(handoff.id, "Hoa", T3)
    assert before.chat_id == "4242"  # the caller still sends the closing line there
    assert store.handoff_close(handoff.id, "Hoa", T3) is None and store.handoff_take(handoff.id, "An", T3) is None
    closed = store.handoff_get(handoff.id)
    assert closed.status == "closed" and closed.closed_ts == T3 and closed.chat_id is None  # address dropped
    assert closed.messages[-1].author == "staff" and closed.messages[-1].staff == "Hoa"
    assert store.handoff_list() == [] and [h.id for h in store.handoff_list(("closed",))] == [handoff.id]
    assert store.handoff_active("telegram", "4242") is None

    store.handoff_set_kb_action(handoff.id, {"kind": "paraphrase", "entry_id": "x", "review": "pending"}, "Hoa", T3)
    assert store.handoff_get(handoff.id).kb_action == {"kind": "paraphrase", "entry_id": "x", "review": "pending"}

    text = _all_text(store)
    assert CCCD not in text and PHONE not in text
    actions = [r[0] for r in store.db.execute("SELECT action FROM audit ORDER BY id").fetchall()]
    assert actions == ["handoff.request", "handoff.take", "handoff.reply", "handoff.close", "handoff.kb"]

    assert store.handoff_latest("telegram", "4242").status == "closed"  # closed, still the latest
    reopened, created = store.handoff_open(channel="telegram", user_id="4242", chat_id="4242", reason="asked",
                                           topic=None, now=T3)
    assert created and reopened.id != handoff.id  # a new request after closing is a new handoff
    assert store.handoff_latest("telegram", "4242").id == reopened.id and store.handoff_latest("web", "x") is None


def test_unknown_reason_is_refused(store):
    with pytest.raises(ValueError):
        store.handoff_open(channel="web", user_id="u", chat_id="u", reason="bored", topic=None, now=T0)



def test_retention_deletes_closed_handoffs_with_the_log(store):
    old = "2025-01-02T03:00:00.000000Z"
    closed, _ = store.handoff_open(channel="zalo_bot", user_id="a", chat_id="a", reason="asked", topic=None, now=old,
                                   text="gặp cán bộ")
    store.handoff_close(closed.id, "Hoa", old)
    waiting, _ = store.handoff_open(channel="zalo_bot", user_id="b", chat_id="b", reason="asked", topic=None, now=old,
                                    text="gặp cán bộ")
    store.delete_older_than(30)
    assert store.handoff_get(closed.id) is None
    left = store.db.execute("SELECT count(*) FROM handoff_messages WHERE handoff_id = ?", [closed.id]).fetchone()
    assert left == (0,)
    assert store.handoff_get(waiting.id).messages[0].text == "gặp cán bộ"  # open ones stay until closed


def test_demo_handoffs_fill_the_inbox_once(store):
    from admin_api.demo_traffic import demo_handoffs

    assert demo_handoffs(store) == 3 and demo_handoffs(store) == 0
    statuses = sorted(h.status for h in store.handoff_list(("waiting", "owned", "closed")))
    assert statuses == ["closed", "owned", "waiting"]
