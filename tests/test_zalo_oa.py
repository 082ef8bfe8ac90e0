"""Zalo Official Account end to end: our webhook receives events shaped like Zalo's and replies to a fake
OA API on 127.0.0.1 (v3 message/cs with Zalo's windows, v2 getoa, OAuth v4 refresh), through the real
pipeline and Service on the real knowledge base."""

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
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from fakes.server import ServerThread, wait_for
from fakes.service import channel_app, clean_env, engine, make_service, question_count
from fakes.zalo import FakeZaloOA, follow_event, oa_event, sign
from fastapi import FastAPI
from fastapi.testclient import TestClient

from admin_api.app import create_app
from admin_api.webhooks import webhook_router
from bot import messages
from bot.channels import zalo_oa
from bot.channels.pipeline import Outgoing, Pipeline, SendError
from bot.channels.zalo_oa import (
    BUTTON_SOURCES,
    ERRORS,
    MAX_BUTTONS,
    USER_SIDE_216,
    Button,
    Tokens,
    TokenStore,
    ZaloOAAdapter,
    ZaloOAClient,
    ZaloOAConfig,
    oa_message,
    reply_buttons,
    verify_event,
)
from bot.reply import Choice, Reply
from bot.service import Service
from bot.signals import DOWN_REASONS
from bot.typed_vote import reasons_text
from knowledge.calculators import voluntary_contribution
from knowledge.params import format_money
from knowledge.topics import MENU_ORDER, TOPICS
from storage.factory import open_store
from tests.pg import pg_cluster, pg_url  # noqa: F401 (fixtures)

ANSWER_Q = "rút bhxh 1 lần được không"
CHOICES_Q = "đóng bhxh tự nguyện bao nhiêu"
USER = "5510185758261927916"
APP_ID = "50554360515256678"
OA_SECRET = "oaSecretKeyForTests-9876543210"
APP_SECRET = "appSecretForTests-0123456789"
DAY = 86400.0


class Clock:
    """The adapter's clock; `advance` moves it and the fake Zalo's together."""

    def __init__(self, fake: FakeZaloOA) -> None:
        self.fake, self.offset = fake, 0.0

    def __call__(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds
        self.fake.clock_offset = self.offset


class OA(SimpleNamespace):
    def post(self, event: dict, *, secret: str = OA_SECRET, signature: str | None = None,
             body: bytes | None = None) -> httpx.Response:
        """Post as Zalo does; Zalo (the fake) knows the user's message or follow before the webhook fires."""
        fake = getattr(self, "fake", None)
        if fake is not None and signature is None and body is None and secret == OA_SECRET:
            if str(event.get("event_name", "")).startswith("user_send_"):
                fake.user_wrote(event["sender"]["id"], event["message"]["msg_id"])
            elif event.get("event_name") == "follow":
                fake.user_followed(event["follower"]["id"])
        raw = json.dumps(event, ensure_ascii=False).encode()
        headers = {"Content-Type": "application/json"}
        mac = sign(APP_ID, raw, event["timestamp"], secret) if signature is None else signature
        if mac:
            headers["X-ZEvent-Signature"] = mac
        return self.client.post("/webhooks/zalo-oa", content=body if body is not None else raw, headers=headers)

    def run(self, fn: Any, *args: Any) -> Any:
        """An async call on the app's event loop (where the adapter's HTTP client lives)."""
        return self.client.portal.call(fn, *args)

    def say(self, text: str, *, user: str = USER) -> dict:
        clock = getattr(self, "clock", None)  # events are stamped with the (moved) time of the test
        event = oa_event(text, app_id=APP_ID, user=user, timestamp=int(clock() * 1000) if clock else None)
        assert self.post(event).status_code == 200
        return event


def _oa_env(monkeypatch, tmp_path: Path, fake: FakeZaloOA, access: str = "at-initial-0001",
            refresh: str = "rt-initial-0001") -> None:
    clean_env(monkeypatch, tmp_path)
    for name, value in {"ZALO_OA_APP_ID": APP_ID, "ZALO_OA_SECRET_KEY": OA_SECRET, "ZALO_OA_APP_SECRET": APP_SECRET,
                        "ZALO_OA_ACCESS_TOKEN": access, "ZALO_OA_REFRESH_TOKEN": refresh,
                        "ZALO_OA_API_BASE_URL": fake.url, "ZALO_OA_OAUTH_BASE_URL": fake.url}.items():
        monkeypatch.setenv(name, value)


def oa_app(service, clock: Clock) -> tuple[FastAPI, ZaloOAAdapter, Pipeline]:
    """The webhook route of admin_api over a pipeline whose adapter we hold (its clock, its refusals)."""
    config = ZaloOAConfig.from_env()
    assert config is not None
    adapter = ZaloOAAdapter(service, config, clock=clock)
    pipeline = Pipeline(service, adapter, retry_delays=(0.01, 0.01))
    app = FastAPI()
    app.include_router(webhook_router(pipeline))
    return app, adapter, pipeline


@pytest.fixture
def oa_fake(tmp_path):
    with FakeZaloOA(APP_ID, APP_SECRET, "at-initial-0001", "rt-initial-0001",
                    token_file=tmp_path / "zalo_oa_tokens.json") as fake:
        fake.strict = True  # it knows only what the tests tell it users sent, like Zalo
        yield fake
        assert fake.violations == []  # never a paid proactive send where a free reply was possible


@pytest.fixture
def oa(tmp_path, monkeypatch, oa_fake):
    _oa_env(monkeypatch, tmp_path, oa_fake)
    service = make_service(tmp_path / "bhxh.db")
    clock = Clock(oa_fake)
    app, adapter, pipeline = oa_app(service, clock)
    with TestClient(app) as client:
        yield OA(client=client, fake=oa_fake, service=service, token_file=tmp_path / "zalo_oa_tokens.json",
                 adapter=adapter, pipeline=pipeline, clock=clock)


# ============================================================ replies name the citizen's message


def test_oa_signed_event_answered_once_as_a_free_reply(oa):
    expected = engine().ask(ANSWER_Q)
    event = oa_event(ANSWER_Q, app_id=APP_ID)
    assert oa.post(event).json() == {"ok": True}
    assert oa.post(event).json() == {"ok": True, "duplicate": True}
    (message,) = oa.fake.wait_messages(1)
    # Naming the incoming message makes it a free reply; user_id alone would be a paid proactive message.
    assert message["recipient"] == {"message_id": event["message"]["msg_id"], "user_id": USER}
    assert oa.fake.delivered == [{"user": USER, "paid": False, "reply_to": event["message"]["msg_id"]}]
    assert "Căn cứ: " + expected.sources[0] in message["message"]["text"]
    time.sleep(0.1)
    assert len(oa.fake.messages) == 1 and question_count(oa.service) == 1
    assert oa.fake.refreshes == [] and oa.fake.token_checks == 0  # the bootstrap token was valid


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


def test_oa_runs_the_guided_calculator_like_every_channel(oa):
    """Typing "tính" on Zalo OA used to be just a question: the flow lived in two of the three channels."""
    oa.say("tính")
    assert "Gõ 1, 2, 3, 4 hoặc 5 để chọn nhóm." in oa.fake.wait_messages(1)[0]["message"]["text"]
    oa.say("1")
    assert "Nhóm: Hộ nghèo." in oa.fake.wait_messages(2)[1]["message"]["text"]
    oa.say("4")
    assert "Bước 3/3" in oa.fake.wait_messages(3)[2]["message"]["text"]
    last = oa.say("2 triệu")
    r = voluntary_contribution(2_000_000, "poor", 12, dt.date.today(), table=engine().kb.parameters)
    result = oa.fake.wait_messages(4)[3]
    assert f"Bạn thực đóng: {format_money(r.net_per_month)}/tháng" in result["message"]["text"]
    assert format_money(r.net_per_period) in result["message"]["text"] and question_count(oa.service) == 0
    assert result["recipient"]["message_id"] == last["message"]["msg_id"]


def test_oa_follow_echo_image_and_malformed(oa):
    assert oa.client.post("/webhooks/zalo-oa", content=b"nope",
                          headers={"X-ZEvent-Signature": "mac=00"}).status_code == 400
    echo = oa_event("tin OA gửi", app_id=APP_ID, event="oa_send_text")
    assert oa.post(echo).json().get("ignored") is True
    oa.post(follow_event("u-follow-1", app_id=APP_ID))
    greeting = oa.fake.wait_messages(1)[0]
    # A new follower has written nothing: the greeting goes by user id (Zalo's welcome quota), with the topics.
    assert greeting["recipient"] == {"user_id": "u-follow-1"} and "Trợ lý BHXH" in greeting["message"]["text"]
    assert [b["payload"] for b in oa.fake.buttons(0)][:2] == [f"#k:t:{MENU_ORDER[0]}", f"#k:t:{MENU_ORDER[1]}"]
    oa.post(oa_event(None, app_id=APP_ID, event="user_send_image"))
    texts = oa.fake.texts()
    assert len(texts) == 2 and "chỉ đọc được tin nhắn chữ" in texts[1]


# ============================================================ buttons


def _press(oa, button: dict, user: str = USER) -> dict:
    """Zalo sends a pressed oa.query.* button's payload back as the user's text message."""
    assert button["type"] in ("oa.query.hide", "oa.query.show")
    return oa.say(button["payload"], user=user)


def test_oa_choices_are_buttons_whose_payloads_round_trip(oa):
    expected = engine().ask(CHOICES_Q)
    oa.say(CHOICES_Q)
    first = oa.fake.wait_messages(1)[0]
    assert "Trả lời 1 hoặc 2" in first["message"]["text"]  # the numbered text stays, for typing
    buttons = oa.fake.buttons(0)
    assert [b["title"] for b in buttons] == [f"{n}. {c.question}" for n, c in enumerate(expected.choices, start=1)
                                             ] + [messages.NONE_OF_THESE]
    assert [b["type"] for b in buttons] == ["oa.query.hide"] * len(expected.choices) + ["oa.query.show"]
    assert len(buttons) <= MAX_BUTTONS
    press = _press(oa, buttons[1])
    answer = oa.fake.wait_messages(2)[1]
    assert answer["message"]["text"].startswith("❓ " + expected.choices[1].question)
    assert answer["recipient"] == {"message_id": press["message"]["msg_id"], "user_id": USER}
    # The pick cleared the pending choices; a typed number is a question again, answered as before.
    assert oa.service.conversation("zalo_oa", USER).choices == ()


def test_oa_none_of_these_button_is_read_like_the_typed_words(oa):
    oa.say(CHOICES_Q)
    oa.fake.wait_messages(1)
    none = oa.fake.buttons(0)[-1]
    assert none["payload"] == messages.NONE_OF_THESE
    _press(oa, none)
    reply = oa.fake.wait_messages(2)[1]["message"]["text"]
    assert reply.startswith(messages.none_of_these_text()[:40])
    assert oa.service.conversation("zalo_oa", USER).choices == ()


def test_oa_typed_number_still_picks(oa):
    expected = engine().ask(CHOICES_Q)
    oa.say(CHOICES_Q)
    oa.say("2")
    first, second = oa.fake.texts()
    assert "Trả lời 1 hoặc 2" in first
    assert second.startswith("❓ " + expected.choices[1].question)


def test_oa_answer_has_related_and_feedback_buttons(oa):
    expected = engine().ask(ANSWER_Q)
    oa.say(ANSWER_Q)
    oa.fake.wait_messages(1)
    buttons = oa.fake.buttons(0)
    assert len(buttons) <= MAX_BUTTONS
    related = [b for b in buttons if b["title"].startswith("🔎 ")]
    assert [b["payload"] for b in related] == [f"#e:{c.entry_id}" for c in expected.related][:len(related)]
    up, down = (b for b in buttons if b["title"] in ("👍 Hữu ích", "👎 Chưa đúng"))
    question_id = oa.service.store.db["questions"].count
    assert up["payload"] == f"#f:+:{question_id}:{expected.entry_id}" and down["payload"].startswith("#f:-:")
    _press(oa, down)  # 👎: thanks, why (bot/typed_vote.py), and a person is offered (as on Telegram)
    thanks = oa.fake.wait_messages(2)[1]
    assert thanks["message"]["text"] == f"{messages.FEEDBACK_DOWN}\n\n{reasons_text()}\n\n{messages.HANDOFF_OFFER}"
    assert [b["title"] for b in oa.fake.buttons(1)] == [*DOWN_REASONS, messages.HANDOFF_BUTTON]
    (vote,) = oa.service.store.db["feedback"].rows
    assert vote["value"] == -1 and vote["entry_id"] == expected.entry_id and vote["question_id"] == question_id
    if related:  # "Có thể bạn muốn hỏi" opens that entry
        _press(oa, related[0])
        assert oa.fake.wait_messages(3)[2]["message"]["text"].startswith("❓ " + expected.related[0].question)


def test_oa_not_sure_offers_a_person_as_a_button(oa):
    oa.say("asdfgh qwerty")
    reply = oa.fake.wait_messages(1)[0]
    buttons = oa.fake.buttons(0)
    assert len(buttons) == MAX_BUTTONS and buttons[-1]["title"] == messages.HANDOFF_BUTTON
    assert [b["title"] for b in buttons[:4]] == [TOPICS[t] for t in MENU_ORDER[:4]]  # "Chủ đề khác" made room
    assert all(TOPICS[t] in reply["message"]["text"] for t in MENU_ORDER)  # every topic still listed to type
    _press(oa, buttons[-1])  # shown as the citizen's "gặp cán bộ": a request for a person
    assert "cán bộ BHXH" in oa.fake.wait_messages(2)[1]["message"]["text"]  # in or out of working hours
    assert oa.service.store.handoff_active("zalo_oa", USER) is not None  # waiting in the staff inbox


def test_oa_topic_menu_pages_and_topic_questions(oa):
    oa.say("xin chào")
    oa.fake.wait_messages(1)
    page = oa.fake.buttons(0)
    assert [b["title"] for b in page[:4]] == [TOPICS[t] for t in MENU_ORDER[:4]] and len(page) == MAX_BUTTONS
    _press(oa, page[-1])  # "Chủ đề khác"
    oa.fake.wait_messages(2)
    assert [b["title"] for b in oa.fake.buttons(1)][:4] == [TOPICS[t] for t in MENU_ORDER[4:8]]
    _press(oa, next(b for b in page if b["payload"] == "#k:t:pension"))  # the field kit's pages of a topic
    listing = oa.fake.wait_messages(3)[2]
    assert listing["message"]["text"].startswith("📖 " + TOPICS["pension"])
    entries = oa.fake.buttons(2)
    first = oa.service.topic_questions("pension", MAX_BUTTONS)[0]
    assert entries and entries[0]["payload"] == f"#k:e:{first.entry_id}" and len(entries) <= MAX_BUTTONS
    _press(oa, entries[0])
    answer = oa.fake.wait_messages(4)[3]
    assert answer["message"]["text"].startswith("❓ " + first.question)
    assert answer["recipient"]["message_id"]  # a button press is a message: the reply to it is free


def test_oa_stale_or_typed_payloads(oa):
    oa.say("#e:no-such-entry")
    assert oa.fake.wait_messages(1)[0]["message"]["text"] == messages.STALE_BUTTON
    oa.say("#zz:whatever bhxh")  # not one of our actions: answered as a typed question
    oa.fake.wait_messages(2)
    assert question_count(oa.service) == 1


def test_button_builder_keeps_five_by_priority_and_takes_new_sources(monkeypatch):
    related = tuple(Choice(f"r{n}", f"Câu liên quan {n}") for n in range(3))
    reply = Reply("answer", "Trả lời.", entry_id="a1", related=related)
    buttons = reply_buttons(reply, 7)
    assert [b.payload for b in buttons] == ["#e:r0", "#e:r1", "#e:r2", "#f:+:7:a1", "#f:-:7:a1"]
    # Another helper's button is one line; with six candidates the lowest-priority related one drops out.
    handoff = [Button("Hỏi cán bộ", "gặp cán bộ", 30)]
    monkeypatch.setattr(zalo_oa, "BUTTON_SOURCES", [*BUTTON_SOURCES, lambda r, q: handoff])
    buttons = reply_buttons(reply, 7)
    assert [b.label for b in buttons] == ["🔎 Câu liên quan 0", "🔎 Câu liên quan 1", "👍 Hữu ích", "👎 Chưa đúng",
                                          "Hỏi cán bộ"]
    body = oa_message(Outgoing("Trả lời.", buttons=tuple(((b.label, b.payload),) for b in buttons)))
    shown = body["attachment"]["payload"]["buttons"]
    assert body["attachment"]["type"] == "template" and len(shown) == MAX_BUTTONS
    assert shown[-1] == {"title": "Hỏi cán bộ", "type": "oa.query.show", "payload": "gặp cán bộ"}  # typed text shows
    assert shown[0]["type"] == "oa.query.hide"
    assert oa_message(Outgoing("x")) == {"text": "x"}
    long = Button("Q" * 300, "#e:x").to_zalo()
    assert len(long["title"]) == 100


# ============================================================ the interaction window (staff replies)


def test_oa_staff_reply_window_free_paid_then_refused(oa):
    event = oa.say(ANSWER_Q)
    oa.fake.wait_messages(1)
    staff = Outgoing("Chào anh/chị, cán bộ BHXH trả lời: …")

    assert oa.run(oa.adapter.can_send_staff_reply, USER) == (True, None)
    assert oa.run(oa.pipeline.deliver, None, USER, [staff])
    assert oa.fake.messages[-1]["recipient"] == {"message_id": event["message"]["msg_id"], "user_id": USER}
    assert oa.fake.delivered[-1]["paid"] is False

    oa.clock.advance(3 * DAY)  # 48 h–7 days: allowed, paid, and staff are told so
    allowed, reason = oa.run(oa.adapter.can_send_staff_reply, USER)
    assert allowed and "Tin có phí" in reason and "quá 48 giờ" in reason and "Còn gửi được đến" in reason
    assert oa.run(oa.pipeline.deliver, None, USER, [staff])
    assert oa.fake.messages[-1]["recipient"] == {"user_id": USER} and oa.fake.delivered[-1]["paid"] is True

    oa.clock.advance(5 * DAY)  # 8 days: impossible, said plainly, nothing sent
    allowed, reason = oa.run(oa.adapter.can_send_staff_reply, USER)
    assert not allowed and "đã quá 7 ngày" in reason and messages.HOTLINE in reason
    sent_before = len(oa.fake.messages)
    oa.run(oa.pipeline.deliver, None, USER, [staff])
    assert len(oa.fake.messages) == sent_before and oa.fake.refused == []
    assert oa.adapter.refusal(USER) == reason

    oa.say("cho tôi hỏi thêm")  # the citizen writes again: free again
    oa.fake.wait_messages(sent_before + 1)
    assert oa.run(oa.adapter.can_send_staff_reply, USER) == (True, None)


def test_oa_ninth_reply_to_one_message_is_paid_and_flagged(oa):
    """Zalo gives 8 free replies per citizen message, and no longer reports how many are left: we count."""
    event = oa.say(ANSWER_Q)
    oa.fake.wait_messages(1)  # the bot's answer: reply 1
    for n in range(2, 9):
        assert oa.run(oa.adapter.can_send_staff_reply, USER) == (True, None)
        assert oa.run(oa.pipeline.deliver, None, USER, [Outgoing(f"Cán bộ trả lời, tin {n}.")])
    assert [d["paid"] for d in oa.fake.delivered] == [False] * 8
    assert {d["reply_to"] for d in oa.fake.delivered} == {event["message"]["msg_id"]}
    allowed, reason = oa.run(oa.adapter.can_send_staff_reply, USER)
    assert allowed and reason.startswith("Tin có phí: đã dùng hết 8 lượt trả lời miễn phí")
    assert oa.run(oa.pipeline.deliver, None, USER, [Outgoing("Cán bộ trả lời, tin 9.")])
    assert oa.fake.messages[-1]["recipient"] == {"user_id": USER} and oa.fake.delivered[-1]["paid"] is True
    oa.say("cảm ơn")  # a new message: 8 new free replies
    assert oa.fake.wait_messages(10)[-1]["recipient"]["message_id"] != event["message"]["msg_id"]


def test_oa_zalo_refusal_reason_reaches_staff(oa):
    """Our record may be wrong (another system, a lost event): Zalo's own refusal is what staff see."""
    oa.say(ANSWER_Q)
    oa.fake.wait_messages(1)
    oa.fake.window_closed.add(USER)  # Zalo says: no interaction in 7 days
    result = oa.run(oa.pipeline.send_staff_reply, USER, "Cán bộ trả lời.")  # what the staff API calls
    assert not result.sent and result.reason == ERRORS[-230].staff
    assert oa.fake.refused == [-230] and len(oa.fake.messages) == 1
    assert oa.adapter.refusal(USER) == ERRORS[-230].staff
    assert "Quá 7 ngày" in ERRORS[-230].staff


def test_oa_error_table():
    assert ERRORS[-216].kind == "token?" and ERRORS[-220].kind == "token" and ERRORS[-124].kind == "token"
    assert ERRORS[-230].kind == ERRORS[-232].kind == "window" and ERRORS[-213].kind == "user"
    assert ERRORS[-32].kind == "retry" and ERRORS[-201].kind == "request"
    assert all(e.staff and e.meaning for e in ERRORS.values())


def test_oa_rate_limit_is_retried(oa_fake, tmp_path):
    config = _config(tmp_path, oa_fake)
    oa_fake.user_wrote("u1", "m1")

    async def run() -> None:
        async with httpx.AsyncClient() as http:
            client = ZaloOAClient(config, TokenStore(config.token_file, config.access_token, config.refresh_token),
                                  http)
            oa_fake.blocked["u1"] = -32
            with pytest.raises(SendError):
                await client.send({"user_id": "u1"}, {"text": "x"})

    asyncio.run(run())


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_oa_window_record_on_both_backends(backend, request, tmp_path):
    """The window lives in the store's state table: the same on SQLite and on PostgreSQL (several workers)."""
    target = tmp_path / "bhxh.db" if backend == "sqlite" else request.getfixturevalue("pg_url")
    store = open_store(target, b"k" * 32)
    try:
        adapter = ZaloOAAdapter(Service(engine(), store), ZaloOAConfig(app_id=APP_ID, oa_secret_key=OA_SECRET),
                                clock=lambda: 1_000_000.0)
        assert adapter.window("u1").state == "unknown"
        adapter.remember("u1", 1_000_000.0 - 3600, "m1")
        assert (adapter.window("u1").state, adapter.window("u1").msg_id) == ("free", "m1")
        for _ in range(8):
            adapter.count_reply("u1", "m1")
        assert adapter.window("u1").spent and adapter.window("u1").state == "paid"
        adapter.remember("u1", 1_000_000.0 - 7200, "m0")  # an older event replayed: ignored
        assert adapter.window("u1").spent
        assert adapter.window("u1", now=1_000_000.0 + 3 * DAY).state == "paid"
        assert adapter.window("u1", now=1_000_000.0 + 8 * DAY).state == "closed"
        conversation = f"zalo_oa:{store.hash_user('zalo_oa', 'u1')}"  # Service's state key
        store.save_state(conversation, {"choices": []})
        adapter.forget("u1", 1_000_000.0)
        assert adapter.window("u1").state == "unfollowed" and store.load_state(conversation) == {}
        adapter.remember("u1", 1_000_000.0 + 60, None)  # follows again: by user id, the old message long spent
        assert adapter.window("u1", now=1_000_000.0 + 120).state == "paid"
    finally:
        if hasattr(store, "close"):
            store.close()


# ============================================================ -216: token or user?


def test_oa_216_for_a_blocked_user_does_not_spend_the_refresh_token(oa, caplog):
    oa.fake.blocked["u-blocked"] = -216  # what ChatbotX reports for a user who blocked the OA
    oa.say(ANSWER_Q, user="u-blocked")
    wait_for(lambda: oa.fake.refused)
    time.sleep(0.2)
    assert oa.fake.refused == [-216] and oa.fake.messages == []
    assert oa.fake.refreshes == [] and oa.fake.token_checks == 1  # asked Zalo, found the token fine
    assert oa.adapter.refusal("u-blocked") == USER_SIDE_216
    assert "not of the token; not refreshing" in caplog.text


# ============================================================ follow / unfollow


def test_oa_unfollow_forgets_state_and_drops_pending_replies(tmp_path, monkeypatch, oa_fake, caplog):
    caplog.set_level(logging.INFO)
    _oa_env(monkeypatch, tmp_path, oa_fake)
    clock = Clock(oa_fake)
    app, adapter, _pipeline = oa_app(make_service(tmp_path / "bhxh.db"), clock)
    with TestClient(app) as client:
        oa = OA(client=client, fake=oa_fake)
        oa.say(CHOICES_Q)
        oa_fake.wait_messages(1)
        service = adapter.service
        assert service.conversation("zalo_oa", USER).choices  # pending choices
        oa_fake.fail_sends = 10**6  # Zalo is down: the next reply stays pending in the inbox
        oa.say(ANSWER_Q)
        wait = time.monotonic() + 10
        while not service.store.inbox_pending("zalo_oa") and time.monotonic() < wait:
            time.sleep(0.05)
        time.sleep(0.3)
        assert len(service.store.inbox_pending("zalo_oa")) == 1
        oa.post(follow_event(USER, app_id=APP_ID, event="unfollow"))
        wait = time.monotonic() + 10
        while adapter.window(USER).state != "unfollowed" and time.monotonic() < wait:
            time.sleep(0.05)
        assert adapter.window(USER).state == "unfollowed"
        assert service.conversation("zalo_oa", USER).choices == ()  # forgotten
        allowed, reason = oa.run(adapter.can_send_staff_reply, USER)
        assert not allowed and "bỏ quan tâm" in reason
    oa_fake.fail_sends = 0
    # Restart: the pending reply is dropped with a log line, not sent and not kept for ever.
    app, adapter, _pipeline = oa_app(make_service(tmp_path / "bhxh.db"), clock)
    with TestClient(app) as client:
        wait = time.monotonic() + 10
        while adapter.service.store.inbox_pending("zalo_oa") and time.monotonic() < wait:
            time.sleep(0.05)
        assert adapter.service.store.inbox_pending("zalo_oa") == []
        assert len(oa_fake.messages) == 1 and "a message is dropped: the user unfollowed the OA" in caplog.text
        # Following again opens the window; the greeting replies to their last message (free, < 48 h).
        OA(client=client, fake=oa_fake).post(follow_event(USER, app_id=APP_ID))
        greeting = oa_fake.wait_messages(2)[1]
        assert "Trợ lý BHXH" in greeting["message"]["text"] and "message_id" in greeting["recipient"]
        assert OA(client=client).run(adapter.can_send_staff_reply, USER) == (True, None)


# ============================================================ tokens


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
    oa.say(ANSWER_Q)
    oa.fake.wait_messages(1)
    assert oa.fake.rejected == ["expired"] and len(oa.fake.refreshes) == 1
    # -216 is checked against the OA profile before the refresh token is spent; HTTP 401 is unambiguous.
    assert oa.fake.token_checks == (1 if expired_status == 200 else 0)
    assert oa.fake.refreshes[0] == {"refresh_token": "rt-initial-0001", "app_id": APP_ID,
                                    "grant_type": "refresh_token"}
    assert oa.fake.persisted_before_use == [True]  # the new pair was on disk before its first use
    _assert_saved(oa.token_file, oa.fake)
    oa.say("thai sản")
    oa.fake.wait_messages(2)
    assert len(oa.fake.refreshes) == 1  # the new token is simply used


def test_oa_restart_uses_the_saved_pair_not_the_spent_bootstrap(oa, tmp_path):
    oa.fake.access_token = "at-rotated-by-zalo"
    oa.say(ANSWER_Q)
    oa.fake.wait_messages(1)
    # Restart with the same environment (its refresh token is now spent).
    with TestClient(channel_app(make_service(tmp_path / "bhxh.db"))) as client:
        OA(client=client, fake=oa.fake).say("thai sản")
    oa.fake.wait_messages(2)
    assert len(oa.fake.refreshes) == 1 and oa.fake.rejected == ["expired"]
    # Expire again after the restart: the refresh must use the saved refresh token, not the environment's.
    oa.fake.access_token = "at-rotated-again"
    with TestClient(channel_app(make_service(tmp_path / "bhxh.db"))) as client:
        OA(client=client, fake=oa.fake).say("lương hưu")
    oa.fake.wait_messages(3)
    assert len(oa.fake.refreshes) == 2 and oa.fake.refreshes[1]["refresh_token"] != "rt-initial-0001"
    _assert_saved(oa.token_file, oa.fake)


def test_oa_reauthorization_in_env_wins_over_old_file(tmp_path, monkeypatch, oa_fake):
    TokenStore(tmp_path / "zalo_oa_tokens.json").save(Tokens("at-old", "rt-old-dead", time.time() + 9e4, "abc"))
    oa_fake.access_token, oa_fake.refresh_token = "at-reauth-0002", "rt-reauth-0002"
    _oa_env(monkeypatch, tmp_path, oa_fake, access="at-reauth-0002", refresh="rt-reauth-0002")
    with TestClient(channel_app(make_service(tmp_path / "bhxh.db"))) as client:
        OA(client=client, fake=oa_fake).say(ANSWER_Q)
    assert oa_fake.wait_messages(1) and oa_fake.refreshes == []


def test_oa_proactive_refresh_before_expiry(tmp_path, monkeypatch, oa_fake):
    _oa_env(monkeypatch, tmp_path, oa_fake)
    source = hashlib.sha256(b"rt-initial-0001").hexdigest()[:16]
    TokenStore(tmp_path / "zalo_oa_tokens.json").save(
        Tokens("at-initial-0001", "rt-initial-0001", time.time() + 60, source))  # one minute left
    with TestClient(channel_app(make_service(tmp_path / "bhxh.db"))) as client:
        OA(client=client, fake=oa_fake).say(ANSWER_Q)
    oa_fake.wait_messages(1)
    assert len(oa_fake.refreshes) == 1 and oa_fake.rejected == []


def _config(tmp_path: Path, fake: FakeZaloOA) -> ZaloOAConfig:
    return ZaloOAConfig(app_id=APP_ID, oa_secret_key=OA_SECRET, app_secret=APP_SECRET,
                        access_token="at-initial-0001", refresh_token="rt-initial-0001", api_base=fake.url,
                        oauth_base=fake.url, token_file=tmp_path / "zalo_oa_tokens.json")


def test_oa_refresh_never_loses_the_new_refresh_token(tmp_path, oa_fake, monkeypatch, caplog):
    oa_fake.access_token = "at-rotated-by-zalo"
    oa_fake.user_followed("u1")
    config = _config(tmp_path, oa_fake)
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
    config = _config(tmp_path, oa_fake)
    for n in range(5):
        oa_fake.user_followed(f"u{n}")

    async def run() -> list[bool]:
        async with httpx.AsyncClient() as http:
            client = ZaloOAClient(config, TokenStore(config.token_file, config.access_token,
                                                     config.refresh_token), http)
            return await asyncio.gather(*(client.send_text(f"u{n}", f"tin {n}") for n in range(5)))

    assert asyncio.run(run()) == [True] * 5
    assert len(oa_fake.refreshes) == 1 and len(oa_fake.messages) == 5


def test_oa_outside_7_day_window_is_logged_not_raised(oa, caplog):
    oa.fake.window_closed.add("u-old")
    oa.say(ANSWER_Q, user="u-old")
    time.sleep(0.3)
    assert oa.fake.messages == [] and question_count(oa.service) == 1 and oa.fake.refused == [-230]
    assert "past 7 days" in caplog.text


def test_oa_acknowledges_within_budget(tmp_path, monkeypatch, oa_fake):
    _oa_env(monkeypatch, tmp_path, oa_fake)
    service = make_service(tmp_path / "bhxh.db")
    handle = service.handle
    monkeypatch.setattr(service, "handle", lambda *a, **k: (time.sleep(2.5), handle(*a, **k))[1])
    with ServerThread(create_app(service)) as server:  # the real app, with its middleware
        event = oa_event(ANSWER_Q, app_id=APP_ID)
        oa_fake.user_wrote(USER, event["message"]["msg_id"])
        raw = json.dumps(event).encode()
        started = time.monotonic()
        response = httpx.post(f"{server.url}/webhooks/zalo-oa", content=raw, timeout=10,
                              headers={"X-ZEvent-Signature": sign(APP_ID, raw, event["timestamp"], OA_SECRET)})
        assert response.status_code == 200 and time.monotonic() - started < 1.0
        oa_fake.wait_messages(1)


def test_oa_secrets_are_masked(oa, caplog):
    caplog.set_level(logging.DEBUG)
    oa.fake.access_token = "at-rotated-by-zalo"
    oa.say(ANSWER_Q)
    oa.fake.wait_messages(1)
    logging.getLogger("test").warning("leak? %s %s %s", oa.fake.access_token, APP_SECRET, OA_SECRET)
    assert oa.fake.access_token not in caplog.text and APP_SECRET not in caplog.text and OA_SECRET not in caplog.text
    assert zalo_oa.REFRESH_MARGIN > 0


# ============================================================ handoff to staff, end to end on the OA


def test_oa_citizen_to_staff_and_back_then_the_window_closes(tmp_path, monkeypatch, oa_fake):
    """The handoff flow of test_handoff_channels on the OA (the real app and staff API), every reply a free
    one; then a later handoff: 3 days on the staff reply goes out paid and staff are told, 8 days on it is
    refused and the staff API says why."""
    from test_handoff_channels import IN_HOURS, STAFF, _app, _conversation, _queue

    _oa_env(monkeypatch, tmp_path, oa_fake)
    with _app(tmp_path, IN_HOURS) as client:
        oa = OA(client=client, fake=oa_fake)
        _conversation(client, oa.say, lambda: oa_fake.texts(USER), channel="zalo_oa")
        assert oa_fake.delivered and not [d for d in oa_fake.delivered if d["paid"]]  # the staff reply too

        oa.say("gặp cán bộ")
        (waiting,) = _queue(client)
        assert client.post(f"/admin/handoffs/{waiting['id']}/take", headers=STAFF).status_code == 200
        real_time = time.time
        for days, sent, words in ((3, True, "Tin có phí"), (8, False, "đã quá 7 ngày")):
            monkeypatch.setattr(zalo_oa, "time", SimpleNamespace(time=lambda d=days: real_time() + d * DAY))
            oa_fake.clock_offset = days * DAY
            before = len(oa_fake.messages)
            replied = client.post(f"/admin/handoffs/{waiting['id']}/reply", headers=STAFF,
                                  json={"text": f"Cán bộ trả lời sau {days} ngày."})
            assert replied.status_code == 200, replied.text
            assert replied.json()["sent"] is sent and words in replied.json()["reason"]
            assert len(oa_fake.messages) == before + sent
        sent_total = len(oa_fake.messages)
        assert oa_fake.delivered[-1]["paid"] is True and oa_fake.messages[-1]["recipient"] == {"user_id": USER}
        # The citizen unfollows: the open handoff is closed (nothing sent), the queue is empty.
        later = int((real_time() + 8 * DAY) * 1000)
        assert oa.post(follow_event(USER, app_id=APP_ID, event="unfollow", timestamp=later)).status_code == 200
        assert _queue(client) == [] and len(oa_fake.messages) == sent_total
