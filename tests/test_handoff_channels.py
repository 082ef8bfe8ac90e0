"""Handoff to a staff member end to end (issue 16 items 1 and 4): a citizen asks for a person on Telegram or the
Zalo Bot Platform (fake servers of each API), a staff member sees the waiting conversation through the staff
API, takes it, replies and closes it; the citizen gets the reply on that channel, the bot is silent in between
and answers again after; out of working hours the citizen is told when staff will answer."""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import test_zalo_oa
from fakes.service import engine, make_service, zalo_bot_env
from fakes.telegram import FakeTelegram, callback_update, sticker_update, text_update
from fakes.zalo import FakeZaloBot, bot_update
from fastapi.testclient import TestClient
from test_telegram import SECRET, TOKEN
from test_telegram import _env as telegram_env

from admin_api.app import create_app
from bot import messages
from bot.handoff import NOT_TEXT_NOTE, Handoff, is_request, parse_hours, when_text

ZB_TOKEN, ZB_SECRET = "zb-token-123:abc", "zalo-bot-secret-123"
STAFF = {"Authorization": "Bearer test-admin-token-0123456789"}  # acts as "automation"
IN_HOURS = dt.datetime(2026, 12, 3, 3, 0, tzinfo=dt.UTC)  # 10:00 Thursday in Hà Nội
OUT_OF_HOURS = dt.datetime(2026, 12, 3, 12, 0, tzinfo=dt.UTC)  # 19:00 Thursday
ANSWER_Q = "rút bhxh 1 lần được không"
PRIVATE = "Tôi sinh năm 1975, số CCCD 001175012345, đóng BHXH 12 năm rồi nghỉ"


@pytest.fixture
def zalo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeZaloBot]:
    """The Zalo Bot Platform's fake server, and the environment pointing the channel at it."""
    with FakeZaloBot(ZB_TOKEN) as fake:
        zalo_bot_env(monkeypatch, tmp_path, fake.url, ZB_TOKEN, ZB_SECRET)
        yield fake


@pytest.fixture
def telegram(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeTelegram]:
    with FakeTelegram(TOKEN) as fake:
        telegram_env(monkeypatch, tmp_path, fake)
        yield fake


def _app(tmp_path: Path, when: dt.datetime) -> TestClient:
    service = make_service(tmp_path / "bhxh.db")
    service.handoff = Handoff(service.store, clock=lambda: when)  # before the pipelines attach to it
    client = TestClient(create_app(service))
    client.service = service  # type: ignore[attr-defined]
    return client


def _queue(client: TestClient, status: str = "waiting,owned") -> list[dict[str, Any]]:
    response = client.get(f"/admin/handoffs?status={status}", headers=STAFF)
    assert response.status_code == 200, response.text
    return response.json()


def _conversation(client: TestClient, send: Callable[[str], None], sent: Callable[[], list[str]],
                  channel: str) -> None:
    """The whole flow on one channel; `send` posts a citizen's message, `sent` lists what the bot sent."""
    send("gặp cán bộ")
    assert sent() == [messages.HANDOFF_WAITING]

    (waiting,) = _queue(client)
    assert waiting["status"] == "waiting" and waiting["channel"] == channel and waiting["reason"] == "asked"
    assert [m["text"] for m in waiting["messages"] if m["author"] == "citizen"] == ["gặp cán bộ"]

    send(PRIVATE)  # the bot is silent: the message goes to the staff member, redacted
    assert len(sent()) == 1
    (waiting,) = _queue(client)
    kept = waiting["messages"][-1]["text"]
    assert "001175012345" not in kept and "[CCCD]" in kept

    taken = client.post(f"/admin/handoffs/{waiting['id']}/take", headers=STAFF)
    assert taken.status_code == 200 and taken.json()["status"] == "owned"
    assert taken.json()["owner"] == "automation"

    answer = "Chào bạn, với 12 năm đóng bạn có thể hưởng BHXH một lần nếu đủ điều kiện; mang CCCD tới BHXH huyện."
    replied = client.post(f"/admin/handoffs/{waiting['id']}/reply", headers=STAFF, json={"text": answer})
    assert replied.status_code == 200, replied.text
    assert replied.json()["sent"] is True
    assert sent()[-1] == messages.staff_reply(answer)

    send("cảm ơn cán bộ")  # still a person's chat: silent
    assert len(sent()) == 2

    closed = client.post(f"/admin/handoffs/{waiting['id']}/close", headers=STAFF)
    assert closed.status_code == 200 and closed.json()["handoff"]["status"] == "closed"
    assert sent()[-1] == messages.HANDOFF_CLOSED
    assert _queue(client) == []
    history = [(m["author"], m["text"]) for m in closed.json()["handoff"]["messages"]]
    assert ("staff", answer) in history and ("citizen", "cảm ơn cán bộ") in history

    send(ANSWER_Q)  # the bot answers again
    assert len(sent()) >= 4 and "một lần" in sent()[3].lower()

    audit = client.service.store.db.execute(  # type: ignore[attr-defined]
        "SELECT actor, action FROM audit WHERE action LIKE 'handoff.%' ORDER BY id").fetchall()
    assert audit == [("citizen", "handoff.request"), ("automation", "handoff.take"),
                     ("automation", "handoff.reply"), ("automation", "handoff.close")]


def _telegram(client: TestClient, fake: FakeTelegram) -> tuple[Callable[[str], None], Callable[[], list[str]]]:
    def send(text: str) -> None:
        response = client.post("/webhooks/telegram", json=text_update(text),
                               headers={"X-Telegram-Bot-Api-Secret-Token": SECRET})
        assert response.status_code == 200  # TestClient runs the reply (a background task) before returning

    def sent() -> list[str]:
        return [c.params["text"] for c in fake.sent() if str(c.params.get("chat_id")) == "4242"]

    return send, sent


def _zalo_bot(client: TestClient, fake: FakeZaloBot) -> tuple[Callable[[str], None], Callable[[], list[str]]]:
    def send(text: str) -> None:
        response = client.post("/webhooks/zalo-bot", json=bot_update(text, user="u-lan-01"),
                               headers={"X-Bot-Api-Secret-Token": ZB_SECRET})
        assert response.status_code == 200

    def sent() -> list[str]:
        return [p["text"] for p in fake.sent() if p.get("chat_id") == "u-lan-01"]

    return send, sent


@pytest.mark.parametrize("channel", ["telegram", "zalo_bot"])
def test_citizen_to_staff_and_back(tmp_path, request, channel):
    fake = request.getfixturevalue("telegram" if channel == "telegram" else "zalo")
    with _app(tmp_path, IN_HOURS) as client:
        chat = _telegram(client, fake) if channel == "telegram" else _zalo_bot(client, fake)
        _conversation(client, *chat, channel=channel)


def test_telegram_command_button_and_downvote_offer(tmp_path, telegram):
    with _app(tmp_path, IN_HOURS) as client:
        send, sent = _telegram(client, telegram)

        def buttons() -> list[tuple[str, str]]:
            markup = telegram.sent()[-1].params.get("reply_markup") or {}
            return [(b["text"], b.get("callback_data", "")) for row in markup.get("inline_keyboard", [])
                    for b in row]

        def press(data: str) -> None:
            assert client.post("/webhooks/telegram", json=callback_update(data),
                               headers={"X-Telegram-Bot-Api-Secret-Token": SECRET}).status_code == 200

        send("asdfgh qwerty")  # not sure: the button is there at once
        assert (messages.HANDOFF_BUTTON, "h:ask") in buttons()
        send(ANSWER_Q)
        down = next(data for _, data in buttons() if data.startswith("f:-:"))
        press(down)  # 👎: a person is offered
        assert sent()[-1] == messages.HANDOFF_OFFER and buttons() == [(messages.HANDOFF_BUTTON, "h:ask")]
        press("h:ask")
        assert sent()[-1] == messages.HANDOFF_WAITING
        (waiting,) = _queue(client)
        assert waiting["reason"] == "downvote" and waiting["topic"] == "lump_sum"
        assert client.post(f"/admin/handoffs/{waiting['id']}/close", headers=STAFF).status_code == 200
        send("/canbo")
        assert sent()[-1] == messages.HANDOFF_WAITING
        assert [h["reason"] for h in _queue(client)] == ["asked"]


def test_out_of_hours_says_when_staff_answer(tmp_path, zalo):
    with _app(tmp_path, OUT_OF_HOURS) as client:
        send, sent = _zalo_bot(client, zalo)
        send("muốn gặp người thật")
        (said,) = sent()
        assert "ngoài giờ làm việc" in said and "7:30 thứ Sáu, 04/12" in said
        assert "thứ Hai–thứ Sáu, 7:30–11:30 và 13:30–17:00" in said
        (waiting,) = _queue(client)
        assert waiting["status"] == "waiting"
        send("gap can bo")  # asked again: reminded, not a second handoff
        assert sent()[-1] == messages.HANDOFF_ALREADY and len(_queue(client)) == 1


def test_configured_hours_and_text(tmp_path, monkeypatch, zalo):
    monkeypatch.setenv("BHXH_HANDOFF_HOURS", "Mon-Sat 08:00-12:00")
    monkeypatch.setenv("BHXH_HANDOFF_OUT_OF_HOURS_TEXT", "Ngoài giờ. Cán bộ trả lời từ {next} ({hours}).")
    from bot.settings import load_settings

    settings = load_settings()
    service = make_service(tmp_path / "bhxh.db")
    handoff = Handoff.from_settings(service.store, settings)
    handoff.clock = lambda: OUT_OF_HOURS
    service.handoff = handoff
    with TestClient(create_app(service, settings=settings)) as client:
        send, sent = _zalo_bot(client, zalo)
        send("Hỏi cán bộ")
        assert sent() == ["Ngoài giờ. Cán bộ trả lời từ 8:00 thứ Sáu, 04/12 (thứ Hai–thứ Bảy, 8:00–12:00)."]


def test_not_sure_twice_offers_a_person_and_the_request_says_why(tmp_path, zalo):
    with _app(tmp_path, IN_HOURS) as client:
        send, sent = _zalo_bot(client, zalo)
        send("asdfgh qwerty")
        assert messages.HANDOFF_OFFER not in sent()[-1]
        send("zxcvbn uiop")
        assert sent()[-1].endswith(messages.HANDOFF_OFFER)
        send("gặp cán bộ")
        (waiting,) = _queue(client)
        assert waiting["reason"] == "not_sure"
        # the two questions the bot was not sure about come first, for context
        assert [m["text"] for m in waiting["messages"]][:2] == ["asdfgh qwerty", "zxcvbn uiop"]
        store = client.service.store  # type: ignore[attr-defined]
        assert store.db.execute("SELECT count(*) FROM signals WHERE kind = 'handoff'").fetchone()[0] == 1
        assert client.service.handoff.citizen_left("zalo_bot", "u-lan-01")  # an unfollow: closed, nothing sent
        assert _queue(client) == [] and not client.service.handoff.citizen_left("zalo_bot", "u-lan-01")
        send("rút bhxh 1 lần được không")
        assert messages.HANDOFF_CLOSED not in sent() and "một lần" in sent()[-1].lower()


def test_staff_api_needs_the_token_and_refuses_closed_or_unknown(tmp_path, zalo):
    with _app(tmp_path, IN_HOURS) as client:
        assert client.get("/admin/handoffs").status_code == 401
        assert client.post("/admin/handoffs/1/take").status_code == 401
        assert client.post("/admin/handoffs/99/take", headers=STAFF).status_code == 404
        send, _ = _zalo_bot(client, zalo)
        send("gặp cán bộ")
        (waiting,) = _queue(client)
        assert client.post(f"/admin/handoffs/{waiting['id']}/reply", headers=STAFF,
                           json={"text": "   "}).status_code == 422
        assert client.get(f"/admin/handoffs/{waiting['id']}/can-reply", headers=STAFF).json() == {
            "ok": True, "reason": None}
        assert client.post(f"/admin/handoffs/{waiting['id']}/close", headers=STAFF).status_code == 200
        assert client.get(f"/admin/handoffs/{waiting['id']}/can-reply", headers=STAFF).status_code == 404
        assert client.post(f"/admin/handoffs/{waiting['id']}/reply", headers=STAFF,
                           json={"text": "muộn"}).status_code == 404
        assert client.post(f"/admin/handoffs/{waiting['id']}/close", headers=STAFF).status_code == 404


@pytest.mark.parametrize("text", ["gặp cán bộ", "gap can bo", "Muốn gặp người thật!", "hỏi cán bộ ạ", "/canbo",
                                  "cho tôi gặp cán bộ", "Hỏi cán bộ"])
def test_requests_are_recognised(text):
    assert is_request(text)


@pytest.mark.parametrize("text", ["tôi đã hỏi cán bộ phường nhưng họ bảo phải chờ thêm ba tháng nữa mới được",
                                  "rút bhxh 1 lần", "", "cán bộ"])
def test_questions_mentioning_staff_are_not_requests(text):
    assert not is_request(text)


def test_working_hours():
    hours = parse_hours("Mon-Fri 07:30-11:30,13:30-17:00")
    assert hours.open_at(IN_HOURS) and not hours.open_at(OUT_OF_HOURS)
    lunch = dt.datetime(2026, 12, 3, 5, 0, tzinfo=dt.UTC)  # 12:00 in Hà Nội
    assert not hours.open_at(lunch)
    assert when_text(hours.next_opening(lunch)) == "13:30 thứ Năm, 03/12"  # type: ignore[arg-type]
    saturday = dt.datetime(2026, 12, 5, 3, 0, tzinfo=dt.UTC)
    assert when_text(hours.next_opening(saturday)) == "7:30 thứ Hai, 07/12"  # type: ignore[arg-type]
    for bad in ("Mon-Fri", "Funday 07:00-08:00", "Mon 09:00-08:00", "Mon 7-8"):
        with pytest.raises(ValueError):
            parse_hours(bad)
    with pytest.raises(ValueError):
        parse_hours("Mon 07:00-08:00", "Mars/Olympus")


def test_bad_handoff_settings_stop_the_start():
    from bot.settings import load_settings

    with pytest.raises(RuntimeError, match="BHXH_HANDOFF_HOURS"):
        load_settings({"BHXH_HANDOFF_HOURS": "weekdays"})
    with pytest.raises(RuntimeError, match="BHXH_HANDOFF_OUT_OF_HOURS_TEXT"):
        load_settings({"BHXH_HANDOFF_OUT_OF_HOURS_TEXT": "từ {khi}"})
    assert json.dumps(load_settings({}).handoff_hours) == '"Mon-Fri 07:30-11:30,13:30-17:00"'


def test_a_reply_that_cannot_be_sent_is_kept_with_the_reason(tmp_path, zalo):
    """A handoff on a channel this server does not run (Telegram here): refused up front and when sending,
    the staff text kept with why, nothing lost."""
    with _app(tmp_path, IN_HOURS) as client:
        store = client.service.store  # type: ignore[attr-defined]
        handoff, _ = store.handoff_open(channel="telegram", user_id="77", chat_id="77", reason="asked", topic=None,
                                        now="2026-12-03T03:00:00.000000Z")
        check = client.get(f"/admin/handoffs/{handoff.id}/can-reply", headers=STAFF).json()
        assert check["ok"] is False and "chưa được cấu hình" in check["reason"]
        replied = client.post(f"/admin/handoffs/{handoff.id}/reply", headers=STAFF, json={"text": "Chào bạn"}).json()
        assert replied["sent"] is False and replied["reason"] == check["reason"]
        assert replied["handoff"]["messages"][-1]["delivery"] == f"not sent: {check['reason']}"


def test_telegram_buttons_commands_and_stickers_go_to_staff_while_they_hold_the_chat(tmp_path, telegram):
    """An old answer's buttons, the topic and law commands, a sticker: while a staff member has the chat each goes
    to them (a button named by its label) and the bot says nothing; after closing, the same button works again."""
    with _app(tmp_path, IN_HOURS) as client:
        send, sent = _telegram(client, telegram)
        send(ANSWER_Q)
        old = telegram.sent()[-1]  # the answer, with its buttons (related questions, 👍/👎)
        keyboard = old.params["reply_markup"]["inline_keyboard"]
        related = next(b for row in keyboard for b in row if b["callback_data"].startswith("e:"))
        up = next(b for row in keyboard for b in row if b["callback_data"].startswith("f:+:"))
        under = {"message_id": 90, "date": 0, "chat": {"id": 4242, "type": "private"}, "text": "…",
                 "reply_markup": old.params["reply_markup"]}

        def press(data: str) -> None:
            assert client.post("/webhooks/telegram", json=callback_update(data, message=under),
                               headers={"X-Telegram-Bot-Api-Secret-Token": SECRET}).status_code == 200

        send("gặp cán bộ")
        assert sent()[-1] == messages.HANDOFF_WAITING
        before = len(sent())
        press(related["callback_data"])
        press(up["callback_data"])
        press("t:pension")  # a topic button of the /start menu
        for command in ("/start", "/chude", "/luat Điều 70", "/tinh"):
            send(command)
        assert client.post("/webhooks/telegram", json=sticker_update(),
                           headers={"X-Telegram-Bot-Api-Secret-Token": SECRET}).status_code == 200
        assert len(sent()) == before  # silent: every one went to the staff member
        (waiting,) = _queue(client)
        citizen = [m["text"] for m in waiting["messages"] if m["author"] == "citizen"]
        assert citizen[-8:] == [f"(bấm nút: {related['text']})", f"(bấm nút: {up['text']})", "(bấm một nút của trợ lý)",
                                "/start", "/chude", "/luat Điều 70", "/tinh", NOT_TEXT_NOTE]
        assert len(telegram.sent("answerCallbackQuery")) == 3  # each press answered (no spinner left)
        store = client.service.store  # type: ignore[attr-defined]
        assert store.db.execute("SELECT count(*) FROM feedback").fetchone()[0] == 0  # the 👍 was not a vote
        assert store.db.execute("SELECT count(*) FROM questions WHERE outcome = 'law_lookup'").fetchone()[0] == 0

        assert client.post(f"/admin/handoffs/{waiting['id']}/close", headers=STAFF).status_code == 200
        press(related["callback_data"])  # the bot has the chat again: the button shows its answer
        assert sent()[-1].startswith("<b>" + related["text"].removeprefix("🔎 ")[:20])


def test_the_web_chat_poll_is_rate_limited_per_address_apart_from_questions(tmp_path, zalo):
    service = make_service(tmp_path / "bhxh.db")
    with TestClient(create_app(service, ip_limit=3)) as client:
        polls = [client.get("/api/handoff", params={"user_id": "web-visitor-1"}).status_code for _ in range(4)]
        assert polls == [200, 200, 200, 429]
        assert client.get("/api/handoff", params={"user_id": "web-visitor-2"}).status_code == 429  # per address
        assert client.post("/api/ask", json={"question": ANSWER_Q, "user_id": "web-visitor-1"}).status_code == 200


oa, oa_fake = test_zalo_oa.oa, test_zalo_oa.oa_fake  # the Zalo OA webhook on its fake server


def test_zalo_oa_buttons_go_to_staff_while_they_hold_the_chat(oa):
    """Zalo sends a pressed button's payload back as text: while a staff member has the chat an old answer's
    buttons go to them (an entry named by its question) and the bot says nothing."""
    oa.say(ANSWER_Q)
    oa.fake.wait_messages(1)
    buttons = oa.fake.buttons(0)
    entry = next(b for b in buttons if b["payload"].startswith("#e:"))
    vote = next(b for b in buttons if b["payload"].startswith("#f:+:"))
    oa.say("gặp cán bộ")
    assert "cán bộ BHXH" in oa.fake.wait_messages(2)[1]["message"]["text"]  # in or out of working hours
    for button in (entry, vote):
        test_zalo_oa._press(oa, button)
    time.sleep(0.5)
    assert len(oa.fake.messages) == 2  # silent
    handoff = oa.service.store.handoff_active("zalo_oa", test_zalo_oa.USER)
    question = engine().kb.entries[entry["payload"].removeprefix("#e:")].question
    citizen = [m.text for m in oa.service.store.handoff_get(handoff.id).messages if m.author == "citizen"]
    assert citizen[-2:] == [f"(bấm nút: {question})", "(bấm một nút của trợ lý)"]
    assert oa.service.store.db.execute("SELECT count(*) FROM feedback").fetchone()[0] == 0
