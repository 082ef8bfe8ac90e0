"""The durable webhook inbox: every acknowledged delivery is committed before the 200, replayed after
a crash, never answered twice, and never stored with raw PII.

The main test kills the real server (`bhxh serve` in a child process) with SIGKILL in the middle of a
burst of Telegram and Zalo Bot updates, restarts it on the same data directory and checks the outcome
against the question log and what the fake platforms received."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
import yaml
from conftest import model_dir
from fakes.server import ServerThread, wait_for
from fakes.service import channel_app, clean_env, engine, make_service, question_count
from fakes.telegram import FakeTelegram, text_update
from fakes.zalo import FakeZaloBot, FakeZaloOA, bot_update, oa_event, sign
from fastapi import Request
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient
from starlette.requests import ClientDisconnect

from bot.channels.format import telegram_messages
from bot.channels.pipeline import INTERRUPTED_TEXT, MAYBE_INTERRUPTED_TEXT
from bot.channels.telegram_bot import inbox_payload
from bot.channels.zalo_bot import bot_messages
from bot.service import Service
from retrieval.normalize import redact_pii
from storage.store import Store, hash_delivery_key, load_hash_key

ROOT = Path(__file__).resolve().parent.parent
TG_TOKEN = "123456:inboxTestToken_abcdefghij"
TG_SECRET = "inbox-webhook-secret"
ZB_TOKEN = "4417239846:zbInboxTestToken_0123456789"
ZB_SECRET = "zalo-inbox-secret-0123"
OA_APP_ID, OA_SECRET, OA_APP_SECRET = "50554360515256678", "oaInboxSecretKey-987654", "appInboxSecret-012345"
ANSWER_Q = "rút bhxh 1 lần được không"

CCCD, PHONE, NAME = "012345678901", "0912345678", "Nguyễn Văn An"
PII_TEXT = f"Tôi tên là {NAME}, CCCD {CCCD}, số điện thoại {PHONE}, hỏi rút bhxh 1 lần được không"
SENDER_NAMES = ("Nguyễn Văn", "Bình An", "nguyenvanan_88")  # Telegram first_name, last_name, username
ZALO_DISPLAY_NAME = "Trần Thị Hoà"


# ============================================================ store unit tests


@pytest.fixture
def store(tmp_path):
    return Store(tmp_path / "bhxh.db", b"k")


def test_accept_is_a_duplicate_check_that_survives_a_new_store(store, tmp_path):
    assert store.inbox_accept("telegram", "tg:1:1", {"n": 1}) is True
    assert store.inbox_accept("telegram", "tg:1:1", {"n": 1}) is False
    assert store.inbox_accept("zalo_bot", "tg:1:1", {"n": 2}) is True  # keys are per channel
    restarted = Store(tmp_path / "bhxh.db", b"k")
    assert restarted.inbox_accept("telegram", "tg:1:1", {"n": 1}) is False
    assert restarted.inbox_pending("telegram") == [("tg:1:1", {"n": 1})]
    assert restarted.db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0] == "3"


def test_done_clears_the_payload_and_pending_lists_only_what_is_not_done(store):
    for n in range(3):
        store.inbox_accept("zalo_bot", f"m{n}", {"text": f"câu hỏi {n}"})
    store.inbox_done("zalo_bot", "m1")
    assert store.inbox_pending("zalo_bot") == [("m0", {"text": "câu hỏi 0"}), ("m2", {"text": "câu hỏi 2"})]
    assert store.inbox_pending("telegram") == []
    row = store.db.execute("SELECT payload, done_ts FROM inbox WHERE delivery_key = ?",
                           [store.delivery_key("m1")]).fetchone()
    assert row[0] is None and row[1]
    assert store.inbox_accept("zalo_bot", "m1", {}) is False  # the key outlives the payload


def test_undecodable_text_from_a_webhook_body_is_stored(store):
    assert store.inbox_accept("zalo_bot", "m\udc00", {"text": "a\ud800b"}) is True  # JSON "\ud800" escapes
    assert store.inbox_pending("zalo_bot") == [("m?", {"text": "a\ud800b"})]
    store.inbox_done("zalo_bot", "m\udc00")
    assert store.inbox_pending("zalo_bot") == []


def test_the_reply_and_how_much_of_it_was_sent_stay_with_a_pending_delivery_until_done(store):
    store.inbox_accept("zalo_bot", "m1", {"text": "câu hỏi"})
    reply = {"chat_id": "c1", "messages": [{"text": "Phần một"}, {"text": "Phần hai"}]}
    store.inbox_record_reply("zalo_bot", "m1", reply)
    assert store.inbox_pending("zalo_bot") == [("m1", {"text": "câu hỏi", "_reply": reply, "_sent": 0,
                                                       "_sending": True})]
    store.inbox_mark_sent("zalo_bot", "m1", 1, sending=True)
    assert store.inbox_pending("zalo_bot")[0][1] | {"_reply": None} == {
        "text": "câu hỏi", "_reply": None, "_sent": 1, "_sending": True}
    store.inbox_mark_sent("zalo_bot", "m1", 1)
    assert store.inbox_pending("zalo_bot")[0][1]["_sending"] is False
    store.inbox_done("zalo_bot", "m1")
    store.inbox_mark_sent("zalo_bot", "m1", 2)  # after done: nothing to update, the payload stays cleared
    store.inbox_record_reply("zalo_bot", "unknown", reply)  # no such delivery: a no-op
    assert store.inbox_pending("zalo_bot") == []
    assert store.db.execute("SELECT count(*) FROM inbox WHERE payload IS NOT NULL").fetchone()[0] == 0


def test_prune_deletes_old_done_rows_only(store):
    store.inbox_accept("telegram", "old", {})
    store.inbox_accept("telegram", "pending", {})
    store.inbox_done("telegram", "old")
    store.db.execute("UPDATE inbox SET done_ts = '2020-01-01T00:00:00.000000Z' WHERE delivery_key = ?",
                     [store.delivery_key("old")])
    assert store.inbox_prune(7) == 1
    assert [r[0] for r in store.db.execute("SELECT delivery_key FROM inbox")] == [store.delivery_key("pending")]


def test_locked_database_falls_back_to_memory(tmp_path):
    store = Store(tmp_path / "bhxh.db", b"k", timeout=0.05)
    blocker = sqlite3.connect(tmp_path / "bhxh.db", timeout=0.05)
    blocker.execute("BEGIN EXCLUSIVE")
    started = time.monotonic()
    assert store.inbox_accept("telegram", "a", {"x": 1}) is True  # not durable, but processed
    assert time.monotonic() - started < 2  # a short wait, not the store's timeout
    assert store.inbox_accept("telegram", "a", {"x": 1}) is False  # still a duplicate check
    blocker.rollback()
    blocker.close()
    assert store.inbox_accept("telegram", "a", {"x": 1}) is False  # also once the database is back
    assert store.inbox_accept("telegram", "b", {"x": 2}) is True
    assert store.inbox_pending("telegram") == [("b", {"x": 2})]


def test_done_mark_refused_by_the_database_is_retried_later(tmp_path):
    store = Store(tmp_path / "bhxh.db", b"k", timeout=0.05)
    store.inbox_accept("zalo_bot", "m", {"text": "x"})
    blocker = sqlite3.connect(tmp_path / "bhxh.db", timeout=0.05)
    blocker.execute("BEGIN EXCLUSIVE")
    store.inbox_done("zalo_bot", "m")  # refused: kept in memory
    assert store.inbox_pending("zalo_bot") == []  # this process knows it is done
    blocker.rollback()
    blocker.close()
    store.inbox_accept("zalo_bot", "n", {})  # the next inbox write retries the mark
    assert Store(tmp_path / "bhxh.db", b"k").inbox_pending("zalo_bot") == [("n", {})]


# ============================================================ PII never reaches the disk


def _all_rows(db_path: Path) -> str:
    with sqlite3.connect(db_path) as db:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return json.dumps({t: db.execute(f"SELECT * FROM [{t}]").fetchall() for t in tables}, ensure_ascii=False,
                          default=lambda v: v.decode("utf-8", "replace"))  # full-text index blobs, read as text


def _assert_no_pii(db_path: Path, secrets: list[str]) -> None:
    text = _all_rows(db_path)
    files = [p for p in (db_path, Path(f"{db_path}-wal")) if p.exists()]
    raw = b"".join(p.read_bytes() for p in files)
    for secret in secrets:
        assert secret not in text, secret
        for encoded in {secret.encode(), json.dumps(secret)[1:-1].encode()}:  # UTF-8 and \\u escapes
            assert encoded not in raw, secret


def test_no_raw_pii_in_the_database_while_pending_or_after(tmp_path, monkeypatch):
    """All three webhooks, the inbox rows read while still pending, then after the replies."""
    with FakeTelegram(TG_TOKEN) as tg, FakeZaloBot(ZB_TOKEN) as zb, \
            FakeZaloOA(OA_APP_ID, OA_APP_SECRET, "at-1", "rt-1") as oa:
        _channel_env(monkeypatch, tmp_path, tg, zb, oa)
        service = make_service(tmp_path / "bhxh.db")
        gate = threading.Event()
        handle = service.handle
        monkeypatch.setattr(service, "handle", lambda *a, **k: gate.wait(10) and handle(*a, **k))
        user = {"id": 5_001, "is_bot": False, "first_name": SENDER_NAMES[0], "last_name": SENDER_NAMES[1],
                "username": SENDER_NAMES[2], "language_code": "vi"}
        update = text_update(PII_TEXT, user=user)
        update["message"]["chat"].update(last_name=SENDER_NAMES[1], username=SENDER_NAMES[2])
        zalo = bot_update(PII_TEXT, user="zu-5001")
        zalo["message"]["from"]["display_name"] = ZALO_DISPLAY_NAME
        event = oa_event(PII_TEXT, app_id=OA_APP_ID)
        with ServerThread(channel_app(service)) as server:  # TestClient would run the background tasks first
            assert httpx.post(f"{server.url}/webhooks/telegram", json=update,
                              headers={"X-Telegram-Bot-Api-Secret-Token": TG_SECRET}).status_code == 200
            assert httpx.post(f"{server.url}/webhooks/zalo-bot", json=zalo,
                              headers={"X-Bot-Api-Secret-Token": ZB_SECRET}).status_code == 200
            body = json.dumps(event).encode()
            assert httpx.post(f"{server.url}/webhooks/zalo-oa", content=body, headers={
                "X-ZEvent-Signature": sign(OA_APP_ID, body, event["timestamp"], OA_SECRET)}).status_code == 200
            pending = {ch: service.store.inbox_pending(ch) for ch in ("telegram", "zalo_bot", "zalo_oa")}
            secrets = [CCCD, PHONE, NAME, *SENDER_NAMES, ZALO_DISPLAY_NAME]
            _assert_no_pii(tmp_path / "bhxh.db", secrets)
            gate.set()
            tg.wait_sent(1)
            zb.wait_sent(1)
            oa.wait_messages(1)
            wait_for(lambda: not any(service.store.inbox_pending(ch) for ch in pending))
        _assert_no_pii(tmp_path / "bhxh.db", secrets)
    ((_, tg_row),), ((_, zb_row),), ((_, oa_row),) = pending.values()
    for stored in (tg_row["message"]["text"], zb_row["text"], oa_row["text"]):
        assert "[CCCD]" in stored and "[SĐT]" in stored and "[TÊN]" in stored and "rút bhxh" in stored
    assert tg_row["message"]["from"] == {"id": 5_001, "is_bot": False, "first_name": "-"}
    assert tg_row["message"]["chat"] == {"id": 5_001, "type": "private"}  # ids stay: needed to reply
    assert zb_row["chat_id"] == zb_row["user_id"] == "zu-5001" and oa_row["user_id"] == event["sender"]["id"]
    assert question_count(service) == 3


def test_telegram_inbox_payload_is_a_whitelist():
    update = text_update("/start 0912345678")
    update["message"]["reply_to_message"] = {"message_id": 1, "date": 0, "chat": {"id": 1, "type": "private"},
                                             "text": "secret"}
    update["message"]["contact"] = {"phone_number": PHONE, "first_name": "X"}
    update["message"]["entities"].append({"type": "phone_number", "offset": 7, "length": 10})
    kept = inbox_payload(update)["message"]
    assert kept["text"] == "/start [SĐT]" and kept["entities"] == [{"type": "bot_command", "offset": 0, "length": 6}]
    assert set(kept) == {"message_id", "date", "chat", "from", "text", "entities"}
    assert inbox_payload({"update_id": 9, "callback_query": {"id": "1", "data": "e:x"}}) == {"update_id": 9}


# ============================================================ redelivery, replay, degraded database


def _channel_env(monkeypatch: pytest.MonkeyPatch, data_dir: Path, tg: FakeTelegram | None = None,
                 zb: FakeZaloBot | None = None, oa: FakeZaloOA | None = None) -> None:
    clean_env(monkeypatch, data_dir)
    if tg is not None:
        for name, value in {"TELEGRAM_BOT_TOKEN": TG_TOKEN, "TELEGRAM_WEBHOOK_SECRET": TG_SECRET,
                            "TELEGRAM_API_BASE_URL": tg.base_url, "TELEGRAM_API_FILE_URL": tg.file_url}.items():
            monkeypatch.setenv(name, value)
    if zb is not None:
        for name, value in {"ZALO_BOT_TOKEN": ZB_TOKEN, "ZALO_BOT_SECRET": ZB_SECRET,
                            "ZALO_BOT_API_BASE_URL": zb.url}.items():
            monkeypatch.setenv(name, value)
    if oa is not None:
        for name, value in {"ZALO_OA_APP_ID": OA_APP_ID, "ZALO_OA_SECRET_KEY": OA_SECRET,
                            "ZALO_OA_APP_SECRET": OA_APP_SECRET, "ZALO_OA_ACCESS_TOKEN": "at-1",
                            "ZALO_OA_REFRESH_TOKEN": "rt-1", "ZALO_OA_API_BASE_URL": oa.url,
                            "ZALO_OA_OAUTH_BASE_URL": oa.url}.items():
            monkeypatch.setenv(name, value)


@pytest.fixture
def platforms(tmp_path, monkeypatch):
    with FakeTelegram(TG_TOKEN) as tg, FakeZaloBot(ZB_TOKEN) as zb:
        _channel_env(monkeypatch, tmp_path, tg, zb)
        yield SimpleNamespace(tg=tg, zb=zb, db=tmp_path / "bhxh.db")


def _post_all(client: TestClient, updates: list[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    out = []
    for channel, update in updates:
        if channel == "telegram":
            response = client.post("/webhooks/telegram", json=update,
                                   headers={"X-Telegram-Bot-Api-Secret-Token": TG_SECRET})
        else:
            response = client.post("/webhooks/zalo-bot", json=update, headers={"X-Bot-Api-Secret-Token": ZB_SECRET})
        assert response.status_code == 200
        out.append(response.json())
    return out


def _drained(db: Path) -> bool:
    store = Store(db, b"k")
    return not store.inbox_pending("telegram") and not store.inbox_pending("zalo_bot")


def test_redelivery_after_a_restart_is_answered_once(platforms):
    # /start and "tính" are not questions: only the inbox knows they were delivered already.
    updates = [("telegram", text_update(ANSWER_Q)), ("telegram", text_update("/start")),
               ("zalo_bot", bot_update(ANSWER_Q, user="zu-1")), ("zalo_bot", bot_update("tính", user="zu-2"))]
    with TestClient(channel_app(make_service(platforms.db))) as client:
        assert _post_all(client, updates) == [{"ok": True}] * 4
        platforms.tg.wait_sent(2)
        platforms.zb.wait_sent(2)
        wait_for(lambda: _drained(platforms.db))  # done is marked after the last message is sent
    sent = [c.params["chat_id"] for c in platforms.tg.sent()], [s["chat_id"] for s in platforms.zb.sent()]
    with TestClient(channel_app(make_service(platforms.db))) as client:  # a new process: empty memory
        assert _post_all(client, updates) == [{"ok": True, "duplicate": True}] * 4
        time.sleep(0.3)
    assert ([c.params["chat_id"] for c in platforms.tg.sent()], [s["chat_id"] for s in platforms.zb.sent()]) == sent
    assert set(sent[1]) == {"zu-1", "zu-2"} and len(sent[0]) >= 2
    assert Store(platforms.db, b"k").db["questions"].count == 2


def test_pending_deliveries_are_replayed_on_start_and_logged_unsent_ones_get_an_apology(platforms):
    """Review F9: a question logged before a crash whose reply was never recorded used to get silence."""
    store = Store(platforms.db, b"test-hash-key")
    service = make_service(platforms.db)
    fresh_tg, fresh_zb = text_update(ANSWER_Q), bot_update(ANSWER_Q, user="zu-new")
    logged_tg, logged_zb = text_update(ANSWER_Q), bot_update(ANSWER_Q, user="zu-old")
    for update in (fresh_tg, logged_tg):
        m = update["message"]
        store.inbox_accept("telegram", f"tg:{m['chat']['id']}:{m['message_id']}", inbox_payload(update))
    for update in (fresh_zb, logged_zb):
        m = update["message"]
        store.inbox_accept("zalo_bot", m["message_id"], {"event": update["event_name"], "chat_id": m["chat"]["id"],
                                                         "user_id": m["from"]["id"], "text": m["text"],
                                                         "message_id": m["message_id"]})
    store.inbox_accept("telegram", "cb:77", {"update_id": 77})  # a button press: recorded, not replayed
    # Killed after logging these two questions, before (or while) replying:
    m = logged_tg["message"]
    service.handle("telegram", str(m["from"]["id"]), ANSWER_Q, message_id=f"tg:{m['chat']['id']}:{m['message_id']}")
    service.handle("zalo_bot", "zu-old", ANSWER_Q, message_id=f"zb:{logged_zb['message']['message_id']}")

    with TestClient(channel_app(service)):
        wait_for(lambda: not store.inbox_pending("telegram") and not store.inbox_pending("zalo_bot"))
        time.sleep(0.3)
    tg_texts = [c.params["text"] for c in platforms.tg.sent()]
    assert tg_texts.count(INTERRUPTED_TEXT) == 1 and sum("Căn cứ" in t for t in tg_texts) == 1
    zb_texts = {s["chat_id"]: s["text"] for s in platforms.zb.sent()}
    assert len(platforms.zb.sent()) == 2 and zb_texts["zu-old"] == INTERRUPTED_TEXT and "Căn cứ" in zb_texts["zu-new"]
    assert question_count(service) == 4
    assert store.db.execute("SELECT count(*) FROM inbox WHERE payload IS NOT NULL").fetchone()[0] == 0


# ============================================================ replies retried, never duplicated (review F9, F10)


@pytest.fixture
def quick_retries(monkeypatch):
    monkeypatch.setattr("bot.channels.pipeline.RETRY_DELAYS", (0.05, 0.05))


def test_a_reply_the_platform_refuses_for_a_moment_is_retried_and_sent_once(platforms, quick_retries):
    """F10: Telegram did not retry and Zalo Bot retried once: the reply was dropped for good."""
    platforms.tg.fail_sends = platforms.zb.fail_sends = 2
    with TestClient(channel_app(make_service(platforms.db))) as client:
        _post_all(client, [("telegram", text_update(ANSWER_Q)), ("zalo_bot", bot_update(ANSWER_Q, user="zu-9"))])
        platforms.tg.wait_sent(1)
        platforms.zb.wait_sent(1)
        wait_for(lambda: _drained(platforms.db))
        time.sleep(0.2)
    assert len(platforms.tg.sent()) == 1 and len(platforms.zb.sent()) == 1
    assert "Căn cứ" in platforms.tg.sent()[0].params["text"] and "Căn cứ" in platforms.zb.sent()[0]["text"]


def test_a_reply_still_failing_after_the_retries_stays_pending_and_is_sent_on_restart(platforms, quick_retries):
    """F10: the delivery used to be marked done although nothing was sent."""
    platforms.zb.fail_sends = 1000
    with TestClient(channel_app(make_service(platforms.db))) as client:
        _post_all(client, [("zalo_bot", bot_update(ANSWER_Q, user="zu-10"))])
        wait_for(lambda: Store(platforms.db, b"k").inbox_pending("zalo_bot")[0][1].get("_reply"))
        time.sleep(0.5)  # all attempts made
    ((_, payload),) = Store(platforms.db, b"k").inbox_pending("zalo_bot")
    assert payload["_sent"] == 0 and not payload["_sending"] and payload["_reply"]["chat_id"] == "zu-10"
    assert platforms.zb.sent() == []
    platforms.zb.fail_sends = 0
    with TestClient(channel_app(make_service(platforms.db))):  # the platform is back, the server restarts
        (sent,) = platforms.zb.wait_sent(1)
        wait_for(lambda: _drained(platforms.db))
        time.sleep(0.2)
    assert "Căn cứ" in sent["text"] and len(platforms.zb.sent()) == 1
    assert Store(platforms.db, b"k").db["questions"].count == 1  # answered from the inbox, not asked again


def _left_by_a_crash(db: Path, user: str, messages: list[str]) -> tuple[Store, str]:
    """A Zalo Bot delivery a killed process had acknowledged, with its reply recorded (first message on
    its way, as `deliver` leaves it). Returns the store and the delivery key."""
    store = Store(db, b"test-hash-key")
    update = bot_update(ANSWER_Q, user=user)
    key = update["message"]["message_id"]
    store.inbox_accept("zalo_bot", key, {"event": update["event_name"], "chat_id": user, "user_id": user,
                                         "text": ANSWER_Q, "message_id": key})
    store.inbox_record_reply("zalo_bot", key, {"chat_id": user, "messages": [{"text": t} for t in messages]})
    return store, key


def _restart_and_drain(platforms: SimpleNamespace) -> None:
    with TestClient(channel_app(make_service(platforms.db))):
        wait_for(lambda: _drained(platforms.db))
        time.sleep(0.2)


def test_a_reply_cut_by_a_crash_is_finished_from_the_inbox_without_repeating_a_message(platforms):
    """F9: killed after the first of two messages went out; the restart sends only the second."""
    store, key = _left_by_a_crash(platforms.db, "zu-11", ["Phần một của câu trả lời.", "Phần hai của câu trả lời."])
    store.inbox_mark_sent("zalo_bot", key, 1)  # the first went out, the second not begun
    _restart_and_drain(platforms)
    assert [s["text"] for s in platforms.zb.sent()] == ["Phần hai của câu trả lời."]


def test_a_message_on_its_way_at_the_crash_is_not_repeated_the_user_gets_an_apology(platforms):
    """F9: the platform may have had it; repeating it would answer twice, skipping it could leave silence."""
    _left_by_a_crash(platforms.db, "zu-12", ["Trả lời."])
    _restart_and_drain(platforms)
    assert [s["text"] for s in platforms.zb.sent()] == [MAYBE_INTERRUPTED_TEXT]


@pytest.mark.parametrize("trouble", ["locked", "read-only"])
def test_webhooks_still_answer_when_the_database_refuses_writes(platforms, trouble, caplog):
    service = Service(engine(), Store(platforms.db, b"k", timeout=0.05))
    blocker = sqlite3.connect(platforms.db, timeout=0.05)
    with TestClient(channel_app(service)) as client:
        if trouble == "locked":
            blocker.execute("BEGIN EXCLUSIVE")
        else:
            service.store.db.execute("PRAGMA query_only = 1")
        updates = [("telegram", text_update(ANSWER_Q)), ("zalo_bot", bot_update(ANSWER_Q, user="zu-9"))]
        assert _post_all(client, updates) == [{"ok": True}] * 2
        assert "Căn cứ" in platforms.tg.wait_sent(1)[0].params["text"]
        assert "Căn cứ" in platforms.zb.wait_sent(1)[0]["text"]
        assert _post_all(client, updates) == [{"ok": True, "duplicate": True}] * 2  # remembered in memory
        time.sleep(0.3)
        assert len(platforms.tg.sent()) == 1 and len(platforms.zb.sent()) == 1
        assert service.store.pending == 2  # the two questions wait in memory for the database
        if trouble == "locked":
            blocker.rollback()
        else:
            service.store.db.execute("PRAGMA query_only = 0")
        assert service.store.flush() == 0
    blocker.close()
    assert question_count(service) == 2
    assert "keeping it in memory only" in caplog.text


# ============================================================ SIGKILL in the middle of a burst


CUT_OFF = JSONResponse({"ok": False}, status_code=499)  # the killed server's request body was cut short


class SlowTelegram(FakeTelegram):
    """Records each call on arrival, then answers sendMessage late: replies pile up in the server."""

    delay = 0.0

    async def _handle(self, token: str, method: str, request: Request) -> JSONResponse:
        try:
            return await super()._handle(token, method, request)
        except ClientDisconnect:  # never arrived: not recorded
            return CUT_OFF

    async def _result(self, method: str, params: dict[str, Any]) -> Any:
        if method == "sendMessage":
            await asyncio.sleep(self.delay)
        return await super()._result(method, params)


class SlowZaloBot(FakeZaloBot):
    delay = 0.0

    async def _handle(self, token: str, method: str, request: Request) -> JSONResponse:
        try:
            response = await super()._handle(token, method, request)  # recorded here
        except ClientDisconnect:
            return CUT_OFF
        if method == "sendMessage":
            await asyncio.sleep(self.delay)
        return response


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_server(data_dir: Path, port: int, tg: FakeTelegram, zb: FakeZaloBot, log_path: Path,
                  model: bool) -> subprocess.Popen:
    """`bhxh serve` as benchmarks/load.py starts it; lexical search only unless `model`."""
    env = {**os.environ, "BHXH_DATA_DIR": str(data_dir), "BHXH_EMBED_MODEL": "" if model else "none",
           "BHXH_ADMIN_TOKEN": "inbox-test-admin-token-0123456789", "BHXH_IP_RATE_LIMIT": "1000000",
           "TELEGRAM_BOT_TOKEN": TG_TOKEN, "TELEGRAM_WEBHOOK_SECRET": TG_SECRET,
           "TELEGRAM_API_BASE_URL": tg.base_url, "TELEGRAM_API_FILE_URL": tg.file_url,
           "ZALO_BOT_TOKEN": ZB_TOKEN, "ZALO_BOT_SECRET": ZB_SECRET, "ZALO_BOT_API_BASE_URL": zb.url}
    for name in ("TELEGRAM_WEBHOOK_URL", "ZALO_OA_APP_ID", "ZALO_OA_SECRET_KEY", "BHXH_RETENTION_DAYS"):
        env.pop(name, None)
    with open(log_path, "ab") as log:
        return subprocess.Popen([sys.executable, "-m", "bhxh.cli", "serve", "--port", str(port)], env=env, cwd=ROOT,
                                stdout=log, stderr=subprocess.STDOUT)


def _wait_ready(base: str, server: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and server.poll() is None:
        try:
            if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError("server did not become ready")


def _db_state(db_path: Path) -> tuple[set[tuple[str, str]], int]:
    """(channel, message_id) of the logged questions, and how many inbox rows are pending."""
    with sqlite3.connect(db_path, timeout=10) as db:
        logged = Counter(db.execute("SELECT channel, message_id FROM questions").fetchall())
        assert all(n == 1 for n in logged.values())
        pending = db.execute("SELECT count(*) FROM inbox WHERE done_ts IS NULL").fetchone()[0]
    return set(logged), pending


def _burst_updates(n: int) -> list[dict[str, Any]]:
    pool = [r["question"] for r in yaml.safe_load((ROOT / "eval" / "questions.yaml").read_text(encoding="utf-8"))]
    pool = [q for q in pool if q.strip() and not q.strip().isdigit()]
    now = int(time.time())
    out = []
    for i in range(n):
        text = pool[i % len(pool)]
        if i % 2 == 0:  # Telegram: its own chat per update
            chat = 7_100_000 + i
            update = {"update_id": 900_000 + i, "message": {
                "message_id": 10 + i, "date": now, "text": text, "chat": {"id": chat, "type": "private"},
                "from": {"id": chat, "is_bot": False, "first_name": "A"}}}
            out.append({"channel": "telegram", "chat": str(chat), "log_id": f"tg:{chat}:{10 + i}", "text": text,
                        "path": "/webhooks/telegram", "json": update,
                        "headers": {"X-Telegram-Bot-Api-Secret-Token": TG_SECRET}})
        else:
            chat = f"zu-burst-{i}"
            update = bot_update(text, message_id=f"zm-{i}", user=chat)
            out.append({"channel": "zalo_bot", "chat": chat, "log_id": f"zb:zm-{i}", "text": text,
                        "path": "/webhooks/zalo-bot", "json": update, "headers": {"X-Bot-Api-Secret-Token": ZB_SECRET}})
    return out


async def _burst(base: str, updates: list[dict[str, Any]], clients: int, seconds: float,
                 kill_after: int, server: subprocess.Popen) -> tuple[list[dict[str, Any]], float]:
    """Post every update once from `clients` concurrent clients; SIGKILL the server once `kill_after` were
    acknowledged. Returns the acknowledged updates and when the kill happened."""
    queue = iter(updates)
    acked: list[dict[str, Any]] = []
    killed_at: list[float] = []
    pause = clients * seconds / len(updates)

    async def client() -> None:
        async with httpx.AsyncClient(base_url=base, timeout=10) as http:
            for item in queue:
                try:
                    response = await http.post(item["path"], json=item["json"], headers=item["headers"])
                    if response.status_code == 200 and response.json() == {"ok": True}:
                        acked.append(item)
                except httpx.HTTPError:
                    pass
                if len(acked) >= kill_after and not killed_at:
                    server.send_signal(signal.SIGKILL)
                    killed_at.append(time.monotonic())
                if not killed_at:
                    await asyncio.sleep(pause)

    await asyncio.gather(*(client() for _ in range(clients)))
    assert killed_at, "the burst ended before the kill"
    return acked, killed_at[0]


def _texts_per_chat(tg: FakeTelegram, zb: FakeZaloBot) -> dict[str, list[str]]:
    per_chat: dict[str, list[str]] = defaultdict(list)
    for call in tg.sent():
        per_chat[str(call.params["chat_id"])].append(call.params["text"])
    for params in zb.sent():
        per_chat[str(params["chat_id"])].append(params["text"])
    return per_chat


def _one_answer(item: dict[str, Any]) -> list[str]:
    """The messages of one answer to `item`, rendered as the server renders them (lexical engine), from
    the text as typed or as the inbox keeps it (a replay answers the redacted text)."""
    render = telegram_messages if item["channel"] == "telegram" else bot_messages
    out = []
    for text in {item["text"], redact_pii(item["text"])}:
        reply = engine().ask(text)
        title = engine().kb.entries[reply.entry_id].question if reply.answered and reply.entry_id else None
        out += render(reply, title=title)
    return out


@pytest.mark.parametrize("search", [
    "lexical",  # starts in ~3 s
    pytest.param("model", marks=pytest.mark.skipif(  # ~15 s per start on 2 cores: opt in
        not os.environ.get("BHXH_SLOW_TESTS") or model_dir() is None,
        reason="the real-model variant runs with BHXH_SLOW_TESTS=1 (and the model built)")),
])
def test_sigkill_during_a_burst_loses_no_acknowledged_update_and_answers_none_twice(tmp_path, search):
    updates = _burst_updates(240)
    log_path = tmp_path / "server.log"
    model = search == "model"
    if model:
        (tmp_path / "models").mkdir()
        (tmp_path / "models" / "multilingual-e5-small").symlink_to(model_dir())
        if (ROOT / "var" / "cache").exists():
            shutil.copytree(ROOT / "var" / "cache", tmp_path / "cache")
    with SlowTelegram(TG_TOKEN) as tg, SlowZaloBot(ZB_TOKEN) as zb:
        tg.delay = zb.delay = 0.4  # a backlog of replies in flight at the kill
        port = _free_port()
        base = f"http://127.0.0.1:{port}"
        server = _start_server(tmp_path, port, tg, zb, log_path, model)
        try:
            _wait_ready(base, server, timeout=180 if model else 60)
            started = time.monotonic()
            acked, killed_at = asyncio.run(_burst(base, updates, clients=32, seconds=1.0,
                                                  kill_after=len(updates) // 2, server=server))
            hash_key = load_hash_key(tmp_path)  # message ids are stored as keyed hashes (review F3)
            for u in updates:
                u["log_id"] = hash_delivery_key(hash_key, u["log_id"])
            server.wait(timeout=10)
            assert server.returncode == -signal.SIGKILL
            time.sleep(0.5)  # requests the dead server had sent are all recorded by now
            logged_before, pending_at_kill = _db_state(tmp_path / "bhxh.db")
            before = {chat: list(texts) for chat, texts in _texts_per_chat(tg, zb).items()}

            server = _start_server(tmp_path, port, tg, zb, log_path, model)
            _wait_ready(base, server, timeout=180 if model else 60)
            acked_ids = {(u["channel"], u["log_id"]) for u in acked}
            wait_for(lambda: (state := _db_state(tmp_path / "bhxh.db"))[1] == 0 and acked_ids <= state[0],
                     timeout=180, interval=0.2)
            recovered_at = time.monotonic()
            time.sleep(0.5)
        finally:
            server.terminate()
            server.wait(timeout=30)
        logged_after, pending_after = _db_state(tmp_path / "bhxh.db")
        after = _texts_per_chat(tg, zb)

    by_chat = {u["chat"]: u for u in updates}
    # A second answer repeats the first one's messages (the engine is deterministic; the texts carry no PII,
    # so a replay's redacted text is the same); with lexical search, also check them against one rendering.
    # The apology (review F9) goes to a question logged before the kill whose reply was not recorded yet
    # or whose message was on its way (the platform may have had it: it is not sent twice).
    sorry = {INTERRUPTED_TEXT, MAYBE_INTERRUPTED_TEXT}
    apologies = [chat for chat, texts in after.items() if sorry & set(texts)]
    apologies_after_an_answer = [chat for chat in apologies if set(after[chat]) - sorry]
    after = {chat: [t for t in texts if t not in sorry] or texts for chat, texts in after.items()}
    answered_twice = [chat for chat, texts in after.items() if len(texts) != len(set(texts))
                      or not (model or set(texts) <= {*_one_answer(by_chat[chat]), *sorry})]
    unanswered = [u for u in acked if not after.get(u["chat"])]
    replayed_new = logged_after - logged_before
    print(f"\nkill test: {len(updates)} updates posted, {len(acked)} acknowledged before the SIGKILL "
          f"({killed_at - started:.1f} s into the burst)")
    print(f"  processed (question logged) before the kill: {len(logged_before & acked_ids)} of the acknowledged; "
          f"chats answered before the kill: {sum(1 for t in before.values() if t)}")
    print(f"  pending in the inbox at the kill: {pending_at_kill}; replayed after the restart and answered: "
          f"{len(replayed_new)}; replayed but already logged (apology or rest of the reply): "
          f"{pending_at_kill - len(replayed_new)}")
    print(f"  recovered {recovered_at - killed_at:.1f} s after the kill; answered twice: {len(answered_twice)}; "
          f"acknowledged but never answered (logged, reply cut off by the kill): {len(unanswered)} "
          f"{dict(Counter(u['channel'] for u in unanswered))}; apologies (reply not recorded, or on its way): "
          f"{len(apologies)} {dict(Counter(by_chat[c]['channel'] for c in apologies))}, "
          f"{len(apologies_after_an_answer)} of them after the answer had arrived")

    assert len(acked) >= len(updates) // 2
    assert acked_ids <= logged_after  # nothing acknowledged was lost…
    assert logged_after <= {(u["channel"], u["log_id"]) for u in updates}  # …and each logged once (_db_state)
    assert replayed_new, "no update was waiting for processing at the kill: the test proved nothing"
    assert answered_twice == [] and pending_after == 0
    assert all(after.get(u["chat"]) for u in updates if (u["channel"], u["log_id"]) in replayed_new)
    # The only replies missing are those of questions logged before the kill whose reply it cut off.
    assert all((u["channel"], u["log_id"]) in logged_before for u in unanswered)
    assert all(by_chat[chat]["log_id"] in {i for _, i in logged_before} for chat in apologies)

