"""Zalo Bot Platform end to end: our webhook receives deliveries shaped like Zalo's and replies to a fake
Zalo server on 127.0.0.1 (sendMessage). The Official Account is tested in test_zalo_oa.py."""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
from fakes.service import channel_app, engine, make_service, question_count, zalo_bot_env
from fakes.zalo import FakeZaloBot, bot_update
from fastapi.testclient import TestClient

from bot.channels.format import ZALO_LIMIT, zalo_messages
from bot.channels.zalo_bot import parse_update
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
    # A long text shown whole (a reply without a short form; the details behind "0" are split the same way,
    # tests/test_short_answer_channels.py).
    long_reply = replace(engine().ask(ANSWER_Q), text="\n\n".join(["Một đoạn giải thích dài về BHXH. " * 20] * 8),
                         short="", details="")
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
    for text in ["xin chào", CHOICES_Q, "1", "0", "giá vàng hôm nay", None]:  # "0": the details of answer 1
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
    assert "Gõ 0 để xem chi tiết" in transcript and "❓ Chi tiết: " in transcript


def test_zalo_format_units():
    reply = Reply("choices", "Bạn muốn hỏi gì?", choices=(Choice("a", "Câu A"), Choice("b", "Câu B"), Choice("c", "C")))
    assert zalo_messages(reply) == [
        "Bạn muốn hỏi gì?\n\n1. Câu A\n2. Câu B\n3. C\n0. Không phải các câu trên\n\n"
        "👉 Trả lời 1, 2 hoặc 3 để chọn câu hỏi, hoặc 0 nếu không có câu nào đúng."]
    assert parse_update({"ok": True, "result": bot_update("x", message_id="m1")}).message_id == "m1"
    assert parse_update({"event_name": "message.text.received", "message": "nope"}) is None
