"""Zalo end to end: our webhooks receive deliveries shaped like Zalo's and reply to fake
Zalo servers on 127.0.0.1 (Bot Platform sendMessage; OA v3 message/cs and OAuth v4 refresh)."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import json
import logging
import os
import stat
import time
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
from fakes.server import ServerThread
from fakes.service import channel_app, clean_env, engine, make_service, question_count, zalo_bot_env
from fakes.zalo import FakeZaloBot, FakeZaloOA, bot_update, oa_event, sign
from fastapi.testclient import TestClient

from admin_api.app import create_app
from bot.channels import zalo_oa
from bot.channels.format import ZALO_LIMIT, zalo_messages
from bot.channels.zalo_bot import parse_update
from bot.channels.zalo_oa import Tokens, TokenStore, ZaloOAClient, ZaloOAConfig, verify_event
from bot.reply import Choice, Reply
from bot.service import RATE_LIMITED_TEXT
from knowledge.calculators import voluntary_contribution
from knowledge.params import format_money

ANSWER_Q = "rút bhxh 1 lần được không"
CHOICES_Q = "đóng bhxh tự nguyện bao nhiêu"
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"

ZB_TOKEN = "4417239846:zbFakeTokenForTests_0123456789abcdef"
ZB_SECRET = "zalo-bot-secret-0123456789"

APP_ID = "50554360515256678"
OA_SECRET = "oaSecretKeyForTests-9876543210"
APP_SECRET = "appSecretForTests-0123456789"


# ============================================================ Zalo Bot Platform


@pytest.fixture
def zb(tmp_path, monkeypatch):
    with FakeZaloBot(ZB_TOKEN) as fake:
        zalo_bot_env(monkeypatch, tmp_path, fake.url, ZB_TOKEN, ZB_SECRET)
        service = make_service(tmp_path / "bhxh.db")
        with TestClient(channel_app(service)) as client:
            def post(update: object, secret: str | None = ZB_SECRET) -> httpx.Response:
                headers = {"X-Bot-Api-Secret-Token": secret} if secret is not None else {}
                if isinstance(update, bytes):
                    return client.post("/webhooks/zalo-bot", content=update, headers=headers)
                return client.post("/webhooks/zalo-bot", json=update, headers=headers)

            yield SimpleNamespace(fake=fake, service=service, post=post, client=client)


def test_zalo_bot_answers_once_with_sources(zb):
    expected = engine().ask(ANSWER_Q)
    assert zb.post(bot_update(ANSWER_Q)).json() == {"ok": True}
    (sent,) = zb.fake.wait_sent(1)
    assert sent["chat_id"] == "u-lan-01"
    assert sent["text"].startswith("❓ " + engine().kb.entries[expected.entry_id].question)
    assert "Căn cứ: " + expected.sources[0] in sent["text"] and len(sent["text"]) <= ZALO_LIMIT
    assert "Có thể bạn muốn hỏi:" in sent["text"]
    assert question_count(zb.service) == 1


@pytest.mark.parametrize("secret", [None, "", "wrong", ZB_SECRET[:-1], ZB_SECRET + "x"])
def test_zalo_bot_bad_secret_rejected_nothing_processed(zb, secret):
    assert zb.post(bot_update(ANSWER_Q), secret=secret).status_code == 403
    time.sleep(0.1)
    assert zb.fake.calls == [] and question_count(zb.service) == 0


def test_zalo_bot_duplicate_delivery_processed_once(zb):
    update = bot_update(ANSWER_Q, message_id="16f6366b3f02645a3d15")
    zb.post(update)
    assert zb.post(update).json() == {"ok": True, "duplicate": True}
    time.sleep(0.2)
    assert len(zb.fake.sent()) == 1 and question_count(zb.service) == 1


def test_zalo_bot_numbered_choices_then_reply_by_number(zb, tmp_path):
    expected = engine().ask(CHOICES_Q)
    zb.post(bot_update(CHOICES_Q))
    (sent,) = zb.fake.wait_sent(1)
    assert f"1. {expected.choices[0].question}\n2. {expected.choices[1].question}" in sent["text"]
    assert "Trả lời 1 hoặc 2" in sent["text"]
    zb.post(bot_update("1"))
    answer = zb.fake.wait_sent(2)[1]["text"]
    assert answer.startswith("❓ " + expected.choices[0].question)

    zb.post(bot_update(CHOICES_Q))
    zb.fake.wait_sent(3)
    # Restart: a new app and Service on the same database still knows the pending choices.
    with TestClient(channel_app(make_service(tmp_path / "bhxh.db"))) as client:
        client.post("/webhooks/zalo-bot", json=bot_update("2"), headers={"X-Bot-Api-Secret-Token": ZB_SECRET})
    assert zb.fake.wait_sent(4)[3]["text"].startswith("❓ " + expected.choices[1].question)


def test_zalo_bot_calculator_numbered_steps_survive_a_restart(zb, tmp_path):
    zb.post(bot_update("Tính"))
    menu = zb.fake.wait_sent(1)[0]["text"]
    assert "2. Hộ cận nghèo" in menu and "Gõ 1, 2, 3, 4 hoặc 5 để chọn nhóm." in menu
    zb.post(bot_update("2"))
    periods = zb.fake.wait_sent(2)[1]["text"]
    assert "Nhóm: Hộ cận nghèo." in periods and "1. Hằng tháng" in periods and "4. 12 tháng một lần" in periods
    zb.post(bot_update("1"))
    assert "Bước 3/3" in zb.fake.wait_sent(3)[2]["text"]
    # Restart: the next app on the same database still waits for the income.
    with TestClient(channel_app(make_service(tmp_path / "bhxh.db"))) as client:
        client.post("/webhooks/zalo-bot", json=bot_update("1.500.000"), headers={"X-Bot-Api-Secret-Token": ZB_SECRET})
    r = voluntary_contribution(1_500_000, "near_poor", 1, dt.date.today(), table=engine().kb.parameters)
    result = zb.fake.wait_sent(4)[3]["text"]
    assert f"Bạn thực đóng: {format_money(r.net_per_month)}/tháng" in result and "Cách tính:" in result
    assert question_count(zb.service) == 0
    # A question typed in the middle of the flow leaves it and gets an ordinary answer.
    zb.post(bot_update("/tinh"))
    zb.fake.wait_sent(5)
    zb.post(bot_update(ANSWER_Q))
    assert "Căn cứ" in zb.fake.wait_sent(6)[5]["text"] and question_count(zb.service) == 1


def test_zalo_bot_envelope_non_text_groups_and_malformed(zb):
    assert zb.post(b"{oops").status_code == 400
    assert zb.post([1]).json().get("ignored") is True
    assert zb.post({"event_name": "message.text.received"}).json().get("ignored") is True
    group = bot_update(ANSWER_Q)
    group["message"]["chat"]["chat_type"] = "GROUP"
    assert zb.post(group).json().get("ignored") is True
    assert question_count(zb.service) == 0
    zb.post(bot_update(None, event="message.sticker.received"))
    assert "chỉ đọc được tin nhắn chữ" in zb.fake.wait_sent(1)[0]["text"]
    zb.post(bot_update(ANSWER_Q, envelope=True))
    assert "Căn cứ:" in zb.fake.wait_sent(2)[1]["text"]


def test_zalo_bot_long_answer_split_under_2000(zb, monkeypatch):
    long_reply = replace(engine().ask(ANSWER_Q), text="\n\n".join(["Một đoạn giải thích dài về BHXH. " * 20] * 8))
    monkeypatch.setattr(zb.service.engine, "ask", lambda text, on=None: long_reply)
    zb.post(bot_update("hỏi dài"))
    sent = zb.fake.wait_sent(3)
    assert all(1 <= len(s["text"]) <= ZALO_LIMIT for s in sent)
    assert "Căn cứ:" in sent[-1]["text"]


def test_zalo_bot_rate_limit_and_masked_token(tmp_path, monkeypatch, caplog):
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="httpx")
    with FakeZaloBot(ZB_TOKEN) as fake:
        zalo_bot_env(monkeypatch, tmp_path, fake.url, ZB_TOKEN, ZB_SECRET)
        with TestClient(channel_app(make_service(tmp_path / "bhxh.db", user_limit=1))) as client:
            for _ in range(2):
                client.post("/webhooks/zalo-bot", json=bot_update(ANSWER_Q),
                            headers={"X-Bot-Api-Secret-Token": ZB_SECRET})
        assert fake.wait_sent(2)[1]["text"] == RATE_LIMITED_TEXT
    assert "/bot***/sendMessage" in caplog.text
    assert ZB_TOKEN not in caplog.text and ZB_TOKEN.split(":")[1] not in caplog.text


def test_zalo_bot_conversation_transcript(zb):
    """Printed with pytest -s and saved to test-artifacts/zalo-transcript.txt."""
    lines: list[str] = []
    for text in ["xin chào", CHOICES_Q, "1", "giá vàng hôm nay", None]:
        before = len(zb.fake.sent())
        if text is None:
            lines.append("👤 (gửi một sticker)")
            zb.post(bot_update(None, event="message.sticker.received"))
        else:
            lines.append(f"👤 {text}")
            zb.post(bot_update(text))
        lines += [f"🤖 {s['text']}" for s in zb.fake.sent()[before:]]
        lines.append("")
    transcript = "\n".join(lines)
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "zalo-transcript.txt").write_text(transcript, encoding="utf-8")
    print("\n" + transcript)
    assert "Trả lời 1 hoặc 2" in transcript and "Căn cứ:" in transcript


def test_zalo_format_units():
    reply = Reply("choices", "Bạn muốn hỏi gì?", choices=(Choice("a", "Câu A"), Choice("b", "Câu B"), Choice("c", "C")))
    assert zalo_messages(reply) == [
        "Bạn muốn hỏi gì?\n\n1. Câu A\n2. Câu B\n3. C\n\n👉 Trả lời 1, 2 hoặc 3 để chọn câu hỏi."]
    assert parse_update({"ok": True, "result": bot_update("x", message_id="m1")}).message_id == "m1"
    assert parse_update({"event_name": "message.text.received", "message": "nope"}) is None


# ============================================================ Zalo Official Account


class OA(SimpleNamespace):
    def post(self, event: dict, *, secret: str = OA_SECRET, signature: str | None = None,
             body: bytes | None = None) -> httpx.Response:
        raw = json.dumps(event, ensure_ascii=False).encode()
        headers = {"Content-Type": "application/json"}
        mac = sign(APP_ID, raw, event["timestamp"], secret) if signature is None else signature
        if mac:
            headers["X-ZEvent-Signature"] = mac
        return self.client.post("/webhooks/zalo-oa", content=body if body is not None else raw, headers=headers)


def _oa_env(monkeypatch, tmp_path: Path, fake: FakeZaloOA, access: str = "at-initial-0001",
            refresh: str = "rt-initial-0001") -> None:
    clean_env(monkeypatch, tmp_path)
    for name, value in {"ZALO_OA_APP_ID": APP_ID, "ZALO_OA_SECRET_KEY": OA_SECRET, "ZALO_OA_APP_SECRET": APP_SECRET,
                        "ZALO_OA_ACCESS_TOKEN": access, "ZALO_OA_REFRESH_TOKEN": refresh,
                        "ZALO_OA_API_BASE_URL": fake.url, "ZALO_OA_OAUTH_BASE_URL": fake.url}.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def oa_fake(tmp_path):
    with FakeZaloOA(APP_ID, APP_SECRET, "at-initial-0001", "rt-initial-0001",
                    token_file=tmp_path / "zalo_oa_tokens.json") as fake:
        yield fake


@pytest.fixture
def oa(tmp_path, monkeypatch, oa_fake):
    _oa_env(monkeypatch, tmp_path, oa_fake)
    service = make_service(tmp_path / "bhxh.db")
    with TestClient(channel_app(service)) as client:
        yield OA(client=client, fake=oa_fake, service=service, token_file=tmp_path / "zalo_oa_tokens.json")


def test_oa_signed_event_answered_once(oa):
    expected = engine().ask(ANSWER_Q)
    event = oa_event(ANSWER_Q, app_id=APP_ID)
    assert oa.post(event).json() == {"ok": True}
    assert oa.post(event).json() == {"ok": True, "duplicate": True}
    (message,) = oa.fake.wait_messages(1)
    assert message["recipient"] == {"user_id": "5510185758261927916"}
    assert "Căn cứ: " + expected.sources[0] in message["message"]["text"]
    time.sleep(0.1)
    assert len(oa.fake.messages) == 1 and question_count(oa.service) == 1
    assert oa.fake.refreshes == []  # the bootstrap token was valid


def _hmac_variant(event: dict) -> str:
    raw = json.dumps(event, ensure_ascii=False).encode()
    return "mac=" + hmac.new(OA_SECRET.encode(), APP_ID.encode() + raw + event["timestamp"].encode(),
                             hashlib.sha256).hexdigest()


@pytest.mark.parametrize("variant", ["missing", "garbage", "wrong-secret", "hmac", "tampered", "oa-id", "non-ascii"])
def test_oa_bad_signature_rejected_nothing_processed(oa, variant):
    event = oa_event(ANSWER_Q, app_id=APP_ID)
    raw = json.dumps(event, ensure_ascii=False).encode()
    if variant == "missing":
        response = oa.post(event, signature="")
    elif variant == "garbage":
        response = oa.post(event, signature="mac=deadbeef")
    elif variant == "wrong-secret":
        response = oa.post(event, secret="not-the-secret")
    elif variant == "hmac":
        response = oa.post(event, signature=_hmac_variant(event))
    elif variant == "tampered":
        response = oa.post(event, body=raw.replace(b"bhxh", b"BHXH"))
    elif variant == "oa-id":
        response = oa.post(event, signature=sign("1646843870823903717", raw, event["timestamp"], OA_SECRET))
    else:
        response = oa.post(event, signature="mac=\u00e9\u00e9".encode("latin-1"))  # type: ignore[arg-type]
    assert response.status_code == 403
    time.sleep(0.1)
    assert oa.fake.messages == [] and oa.fake.refreshes == [] and question_count(oa.service) == 0


@pytest.mark.parametrize("offset_s", [-600, 600])
def test_oa_stale_or_future_events_rejected(oa, offset_s):
    event = oa_event(ANSWER_Q, app_id=APP_ID, timestamp=int((time.time() + offset_s) * 1000))
    response = oa.post(event)  # correctly signed, but a replay
    assert response.status_code == 403 and response.json()["error"] == "stale event"
    assert oa.fake.messages == [] and question_count(oa.service) == 0


def test_oa_verify_event_accepts_documented_shape():
    config = ZaloOAConfig(app_id=APP_ID, oa_secret_key=OA_SECRET)
    event = oa_event("Helo", app_id=APP_ID)
    raw = json.dumps(event).encode()
    mac = sign(APP_ID, raw, event["timestamp"], OA_SECRET)
    assert verify_event(config, raw, event, mac) is None
    assert verify_event(config, raw, event, mac.removeprefix("mac=").upper()) is None
    assert verify_event(config, raw, event, mac, now=time.time() + 301) == "stale event"


def test_oa_choices_then_number(oa):
    expected = engine().ask(CHOICES_Q)
    oa.post(oa_event(CHOICES_Q, app_id=APP_ID))
    oa.post(oa_event("2", app_id=APP_ID))
    first, second = oa.fake.texts()
    assert "Trả lời 1 hoặc 2" in first
    assert second.startswith("❓ " + expected.choices[1].question)


def test_oa_runs_the_guided_calculator_like_every_channel(oa, tmp_path):
    """Typing "tính" on Zalo OA used to be just a question: the flow lived in two of the three channels."""
    oa.post(oa_event("tính", app_id=APP_ID))
    assert "Gõ 1, 2, 3, 4 hoặc 5 để chọn nhóm." in oa.fake.wait_messages(1)[0]["message"]["text"]
    oa.post(oa_event("1", app_id=APP_ID))
    assert "Nhóm: Hộ nghèo." in oa.fake.wait_messages(2)[1]["message"]["text"]
    oa.post(oa_event("4", app_id=APP_ID))
    assert "Bước 3/3" in oa.fake.wait_messages(3)[2]["message"]["text"]
    oa.post(oa_event("2 triệu", app_id=APP_ID))
    r = voluntary_contribution(2_000_000, "poor", 12, dt.date.today(), table=engine().kb.parameters)
    result = oa.fake.wait_messages(4)[3]["message"]["text"]
    assert f"Bạn thực đóng: {format_money(r.net_per_month)}/tháng" in result
    assert format_money(r.net_per_period) in result and question_count(oa.service) == 0


def test_oa_follow_echo_image_and_malformed(oa):
    assert oa.client.post("/webhooks/zalo-oa", content=b"nope",
                          headers={"X-ZEvent-Signature": "mac=00"}).status_code == 400
    echo = oa_event("tin OA gửi", app_id=APP_ID, event="oa_send_text")
    assert oa.post(echo).json().get("ignored") is True
    follow = {"event_name": "follow", "app_id": APP_ID, "oa_id": "1646843870823903717",
              "follower": {"id": "u-follow-1"}, "timestamp": str(int(time.time() * 1000))}
    oa.post(follow)
    oa.post(oa_event(None, app_id=APP_ID, event="user_send_image"))
    texts = oa.fake.texts()
    assert len(texts) == 2 and "Trợ lý BHXH" in texts[0] and "chỉ đọc được tin nhắn chữ" in texts[1]


def _assert_saved(token_file: Path, fake: FakeZaloOA) -> None:
    assert stat.S_IMODE(os.stat(token_file).st_mode) == 0o600
    saved = json.loads(token_file.read_text())
    assert (saved["access_token"], saved["refresh_token"]) == (fake.access_token, fake.refresh_token)
    assert saved["expires_at"] > time.time() + 24 * 3600
    assert not [p for p in token_file.parent.iterdir() if p.name.startswith(".zalo_oa_tokens")]  # no temp files


@pytest.mark.parametrize("expired_status", [200, 401])
def test_oa_expired_token_refreshed_persisted_then_used(oa, expired_status):
    oa.fake.access_token = "at-rotated-by-zalo"  # the bootstrap access token has expired
    oa.fake.expired_status = expired_status
    oa.post(oa_event(ANSWER_Q, app_id=APP_ID))
    oa.fake.wait_messages(1)
    assert oa.fake.rejected == ["expired"] and len(oa.fake.refreshes) == 1
    assert oa.fake.refreshes[0] == {"refresh_token": "rt-initial-0001", "app_id": APP_ID,
                                    "grant_type": "refresh_token"}
    assert oa.fake.persisted_before_use == [True]  # the new pair was on disk before its first use
    _assert_saved(oa.token_file, oa.fake)
    oa.post(oa_event("thai sản", app_id=APP_ID))
    oa.fake.wait_messages(2)
    assert len(oa.fake.refreshes) == 1  # the new token is simply used


def test_oa_restart_uses_the_saved_pair_not_the_spent_bootstrap(oa, tmp_path, monkeypatch):
    oa.fake.access_token = "at-rotated-by-zalo"
    oa.post(oa_event(ANSWER_Q, app_id=APP_ID))
    oa.fake.wait_messages(1)
    # Restart with the same environment (its refresh token is now spent).
    with TestClient(channel_app(make_service(tmp_path / "bhxh.db"))) as client:
        OA(client=client).post(oa_event("thai sản", app_id=APP_ID))
    oa.fake.wait_messages(2)
    assert len(oa.fake.refreshes) == 1 and oa.fake.rejected == ["expired"]
    # Expire again after the restart: the refresh must use the saved refresh token, not the environment's.
    oa.fake.access_token = "at-rotated-again"
    with TestClient(channel_app(make_service(tmp_path / "bhxh.db"))) as client:
        OA(client=client).post(oa_event("lương hưu", app_id=APP_ID))
    oa.fake.wait_messages(3)
    assert len(oa.fake.refreshes) == 2 and oa.fake.refreshes[1]["refresh_token"] != "rt-initial-0001"
    _assert_saved(oa.token_file, oa.fake)


def test_oa_reauthorization_in_env_wins_over_old_file(tmp_path, monkeypatch, oa_fake):
    TokenStore(tmp_path / "zalo_oa_tokens.json").save(Tokens("at-old", "rt-old-dead", time.time() + 9e4, "abc"))
    oa_fake.access_token, oa_fake.refresh_token = "at-reauth-0002", "rt-reauth-0002"
    _oa_env(monkeypatch, tmp_path, oa_fake, access="at-reauth-0002", refresh="rt-reauth-0002")
    with TestClient(channel_app(make_service(tmp_path / "bhxh.db"))) as client:
        OA(client=client).post(oa_event(ANSWER_Q, app_id=APP_ID))
    assert oa_fake.wait_messages(1) and oa_fake.refreshes == []


def test_oa_proactive_refresh_before_expiry(tmp_path, monkeypatch, oa_fake):
    _oa_env(monkeypatch, tmp_path, oa_fake)
    source = hashlib.sha256(b"rt-initial-0001").hexdigest()[:16]
    TokenStore(tmp_path / "zalo_oa_tokens.json").save(
        Tokens("at-initial-0001", "rt-initial-0001", time.time() + 60, source))  # one minute left
    with TestClient(channel_app(make_service(tmp_path / "bhxh.db"))) as client:
        OA(client=client).post(oa_event(ANSWER_Q, app_id=APP_ID))
    oa_fake.wait_messages(1)
    assert len(oa_fake.refreshes) == 1 and oa_fake.rejected == []


def test_oa_refresh_never_loses_the_new_refresh_token(tmp_path, oa_fake, monkeypatch, caplog):
    oa_fake.access_token = "at-rotated-by-zalo"
    config = ZaloOAConfig(app_id=APP_ID, oa_secret_key=OA_SECRET, app_secret=APP_SECRET,
                          access_token="at-initial-0001", refresh_token="rt-initial-0001", api_base=oa_fake.url,
                          oauth_base=oa_fake.url, token_file=tmp_path / "zalo_oa_tokens.json")
    store = TokenStore(config.token_file, config.access_token, config.refresh_token)
    real_save, failures = TokenStore.save, []

    def flaky_save(self: TokenStore, tokens: Tokens) -> None:
        if not failures:
            failures.append(tokens)
            raise OSError(28, "No space left on device")
        real_save(self, tokens)

    monkeypatch.setattr(TokenStore, "save", flaky_save)

    async def run() -> None:
        async with httpx.AsyncClient() as http:
            client = ZaloOAClient(config, store, http)
            assert await client.send_text("u1", "xin chào")  # refresh; disk full; the new pair is kept in memory
            assert not config.token_file.exists()
            assert client.tokens.refresh_token == oa_fake.refresh_token
            oa_fake.access_token = "at-expired-again"
            assert await client.send_text("u1", "lần hai")  # refresh with the in-memory token, then saved
            assert [r["refresh_token"] for r in oa_fake.refreshes][1] == failures[0].refresh_token

    asyncio.run(run())
    assert len(oa_fake.refreshes) == 2 and oa_fake.texts() == ["xin chào", "lần hai"]
    _assert_saved(config.token_file, oa_fake)
    assert "could not save the new token pair" in caplog.text
    assert oa_fake.refresh_token not in caplog.text and oa_fake.access_token not in caplog.text


def test_oa_concurrent_refreshes_spend_the_refresh_token_once(tmp_path, oa_fake):
    oa_fake.access_token = "at-rotated-by-zalo"
    config = ZaloOAConfig(app_id=APP_ID, oa_secret_key=OA_SECRET, app_secret=APP_SECRET,
                          access_token="at-initial-0001", refresh_token="rt-initial-0001", api_base=oa_fake.url,
                          oauth_base=oa_fake.url, token_file=tmp_path / "zalo_oa_tokens.json")

    async def run() -> list[bool]:
        async with httpx.AsyncClient() as http:
            client = ZaloOAClient(config, TokenStore(config.token_file, config.access_token,
                                                     config.refresh_token), http)
            return await asyncio.gather(*(client.send_text(f"u{n}", f"tin {n}") for n in range(5)))

    assert asyncio.run(run()) == [True] * 5
    assert len(oa_fake.refreshes) == 1 and len(oa_fake.messages) == 5


def test_oa_outside_48h_window_is_logged_not_raised(oa, caplog):
    oa.fake.window_closed.add("u-old")
    oa.post(oa_event(ANSWER_Q, app_id=APP_ID, user="u-old"))
    assert oa.fake.messages == [] and question_count(oa.service) == 1
    assert "48 h" in caplog.text


def test_oa_acknowledges_within_budget(tmp_path, monkeypatch, oa_fake):
    _oa_env(monkeypatch, tmp_path, oa_fake)
    service = make_service(tmp_path / "bhxh.db")
    handle = service.handle
    monkeypatch.setattr(service, "handle", lambda *a, **k: (time.sleep(2.5), handle(*a, **k))[1])
    with ServerThread(create_app(service)) as server:  # the real app, with its middleware
        event = oa_event(ANSWER_Q, app_id=APP_ID)
        raw = json.dumps(event).encode()
        started = time.monotonic()
        response = httpx.post(f"{server.url}/webhooks/zalo-oa", content=raw, timeout=10,
                              headers={"X-ZEvent-Signature": sign(APP_ID, raw, event["timestamp"], OA_SECRET)})
        assert response.status_code == 200 and time.monotonic() - started < 1.0
        oa_fake.wait_messages(1)


def test_oa_secrets_are_masked(oa, caplog):
    caplog.set_level(logging.DEBUG)
    oa.fake.access_token = "at-rotated-by-zalo"
    oa.post(oa_event(ANSWER_Q, app_id=APP_ID))
    oa.fake.wait_messages(1)
    logging.getLogger("test").warning("leak? %s %s %s", oa.fake.access_token, APP_SECRET, OA_SECRET)
    assert oa.fake.access_token not in caplog.text and APP_SECRET not in caplog.text and OA_SECRET not in caplog.text
    assert zalo_oa.REFRESH_MARGIN > 0
