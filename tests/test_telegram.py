"""Telegram end to end: a real PTB Application talks to a fake Bot API server on 127.0.0.1;
updates come in through our FastAPI webhook (or getUpdates for polling)."""

from __future__ import annotations

import asyncio
import datetime as dt
import html
import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
from fakes.server import ServerThread, wait_for
from fakes.service import channel_app, clean_env, engine, make_service, question_count
from fakes.telegram import FakeTelegram, callback_update, sticker_update, text_update
from fastapi.testclient import TestClient

from admin_api.app import create_app
from bot.channels.format import TELEGRAM_LIMIT, split_text, telegram_messages
from bot.channels.telegram_bot import (
    TelegramBot,
    TelegramConfig,
    polling_application,
    run_telegram_polling,
)
from bot.conversation import NONE_OF_THESE_ID
from bot.messages import STALE_BUTTON
from bot.reply import Reply
from bot.service import RATE_LIMITED_TEXT
from knowledge.calculators import voluntary_contribution
from knowledge.params import format_money

TOKEN = "123456789:AAHfakeTokenForTestsOnly_abcdefghijkl"
SECRET = "webhook-secret_0123456789"
ANSWER_Q = "rút bhxh 1 lần được không"
CHOICES_Q = "đóng bhxh tự nguyện bao nhiêu"
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


@pytest.fixture
def fake():
    with FakeTelegram(TOKEN) as server:
        yield server


def _env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, fake: FakeTelegram) -> None:
    clean_env(monkeypatch, tmp_path)
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", TOKEN)
    monkeypatch.setenv("TELEGRAM_WEBHOOK_SECRET", SECRET)
    monkeypatch.setenv("TELEGRAM_API_BASE_URL", fake.base_url)
    monkeypatch.setenv("TELEGRAM_API_FILE_URL", fake.file_url)


@pytest.fixture
def tg(tmp_path, monkeypatch, fake):
    _env(monkeypatch, tmp_path, fake)
    service = make_service(tmp_path / "bhxh.db")
    with TestClient(channel_app(service)) as client:
        def post(update: object, secret: str | bytes | None = SECRET, **kwargs: object) -> httpx.Response:
            headers = {"X-Telegram-Bot-Api-Secret-Token": secret} if secret is not None else {}
            if isinstance(update, (dict, list)):
                return client.post("/webhooks/telegram", json=update, headers=headers)
            return client.post("/webhooks/telegram", content=update, headers=headers)

        yield SimpleNamespace(client=client, fake=fake, service=service, post=post)


def buttons(call) -> list[tuple[str, str]]:
    markup = call.params.get("reply_markup") or {}
    return [(b["text"], b.get("callback_data", "")) for row in markup.get("inline_keyboard", []) for b in row]


def test_webhook_mounted_in_the_real_app_and_bot_initialised(tmp_path, monkeypatch, fake):
    _env(monkeypatch, tmp_path, fake)
    monkeypatch.setenv("TELEGRAM_WEBHOOK_URL", "https://bhxh.example.vn/webhooks/telegram")
    with TestClient(create_app(make_service(tmp_path / "bhxh.db"))) as client:
        assert client.app.state.webhooks == ["/webhooks/telegram"]
        assert fake.sent("getMe") and fake.sent("setMyCommands")
        (hook,) = fake.sent("setWebhook")
        assert hook.params["secret_token"] == SECRET and hook.params["url"].endswith("/webhooks/telegram")
        assert client.post("/webhooks/telegram", json=text_update("hi")).status_code == 403


def test_no_webhook_without_its_secret(tmp_path, monkeypatch, fake):
    _env(monkeypatch, tmp_path, fake)
    monkeypatch.delenv("TELEGRAM_WEBHOOK_SECRET")
    with TestClient(channel_app(make_service(tmp_path / "bhxh.db"))) as client:
        assert client.app.state.webhooks == []
        assert client.post("/webhooks/telegram", json=text_update("hi")).status_code == 404


def test_start_shows_topic_menu(tg):
    assert tg.post(text_update("/start")).status_code == 200
    (call,) = tg.fake.wait_sent(1)
    assert "Trợ lý BHXH" in call.params["text"] and call.params["parse_mode"] == "HTML"
    datas = [d for _, d in buttons(call)]
    assert "t:voluntary" in datas and "t:lump_sum" in datas


def test_menus_and_button_steps_are_retried_like_answers(tg, monkeypatch):
    """Review F10 for Telegram's own messages: a Bot API hiccup used to drop the /start menu."""
    monkeypatch.setattr("bot.channels.pipeline.RETRY_DELAYS", (0.05, 0.05))
    tg.fake.fail_sends = 2
    tg.post(text_update("/start"))
    (call,) = tg.fake.wait_sent(1)
    assert "Trợ lý BHXH" in call.params["text"] and tg.fake.fail_sends == 0


def test_topic_button_lists_questions(tg):
    tg.post(callback_update("t:pension"))
    (call,) = tg.fake.wait_sent(1)
    assert "Lương hưu" in call.params["text"]
    entries = [d for _, d in buttons(call) if d != "t:pension:2"]  # the last button: the next page
    assert entries and all(d.startswith("e:") for d in entries)
    assert tg.fake.sent("answerCallbackQuery")


def test_answer_has_bold_question_sources_and_buttons(tg):
    expected = engine().ask(ANSWER_Q)
    tg.post(text_update(ANSWER_Q))
    (call,) = tg.fake.wait_sent(1)
    text = call.params["text"]
    title = engine().kb.entries[expected.entry_id].question
    assert text.startswith(f"<b>{html.escape(title, quote=False)}</b>")
    assert "<b>Căn cứ:</b> " + html.escape(expected.sources[0], quote=False) in text
    # the short answer, its details behind a button (tests/test_short_answer_channels.py presses it)
    assert html.escape(expected.short, quote=False) in text and expected.details
    assert html.escape(expected.details.split("\n\n")[-1], quote=False) not in text
    datas = [d for _, d in buttons(call)]
    assert f"d:{expected.entry_id}" in datas
    qid = tg.service.store.db.execute("SELECT max(id) FROM questions").fetchone()[0]
    assert f"f:+:{qid}:{expected.entry_id}" in datas and f"f:-:{qid}:{expected.entry_id}" in datas
    assert [f"e:{c.entry_id}" for c in expected.related] == [d for d in datas if d.startswith("e:")]
    assert question_count(tg.service) == 1


def test_choices_are_buttons_and_both_ways_of_choosing_work(tg):
    expected = engine().ask(CHOICES_Q)
    assert expected.kind == "choices"
    tg.post(text_update(CHOICES_Q))
    (call,) = tg.fake.wait_sent(1)
    # the choices, then "Không phải các câu trên" as the last button (bot/conversation.py NONE_OF_THESE_ID)
    assert [d for _, d in buttons(call)] == [f"e:{c.entry_id}" for c in expected.choices] + [
        f"e:{NONE_OF_THESE_ID}"]
    assert "1 hoặc 2" in call.params["text"] or "1, 2 hoặc 3" in call.params["text"]

    tg.post(callback_update(f"e:{expected.choices[0].entry_id}"))  # press the first button
    calls = tg.fake.wait_sent(2)
    assert html.escape(expected.choices[0].question, quote=False) in calls[1].params["text"]
    assert tg.fake.sent("answerCallbackQuery")

    tg.post(text_update(CHOICES_Q))
    tg.post(text_update("2"))  # or type the number
    calls = tg.fake.wait_sent(4)
    assert html.escape(expected.choices[1].question, quote=False) in calls[3].params["text"]

    tg.post(text_update(CHOICES_Q))
    tg.post(callback_update(f"e:{NONE_OF_THESE_ID}"))  # none of them: asked to rephrase
    calls = tg.fake.wait_sent(6)
    assert "hỏi lại" in calls[5].params["text"]


def test_feedback_button_is_recorded_and_removed(tg):
    tg.post(text_update(ANSWER_Q))
    (answer,) = tg.fake.wait_sent(1)
    up = next(d for _, d in buttons(answer) if d.startswith("f:+"))
    message = {"message_id": 555, "date": int(time.time()), "chat": {"id": 4242, "type": "private"},
               "text": "…", "reply_markup": answer.params["reply_markup"]}
    tg.post(callback_update(up, message=message))
    (ack,) = tg.fake.sent("answerCallbackQuery")
    assert "Cảm ơn" in ack.params["text"]
    (edit,) = tg.fake.sent("editMessageReplyMarkup")
    assert not [d for _, d in buttons(edit) if d.startswith("f:")]
    rows = list(tg.service.store.db["feedback"].rows)
    assert len(rows) == 1 and rows[0]["value"] == 1 and rows[0]["entry_id"] == up.split(":")[3]
    question = next(tg.service.store.db["questions"].rows)
    assert question["feedback"] == 1


def test_duplicate_update_is_answered_once(tg):
    update = text_update(ANSWER_Q)
    assert tg.post(update).status_code == 200
    assert tg.post(update).json().get("duplicate") is True
    tg.fake.wait_sent(1)
    time.sleep(0.2)
    assert len(tg.fake.sent()) == 1 and question_count(tg.service) == 1


def test_redelivery_after_restart_is_dropped_by_the_log(tg, tmp_path):
    update = text_update(ANSWER_Q)
    tg.post(update)
    tg.fake.wait_sent(1)
    # A new app on the same database has an empty memory but the question log knows the update.
    with TestClient(channel_app(make_service(tmp_path / "bhxh.db"))) as client:
        client.post("/webhooks/telegram", json=update, headers={"X-Telegram-Bot-Api-Secret-Token": SECRET})
    assert len(tg.fake.sent()) == 1


@pytest.mark.parametrize("secret", [None, "", "wrong-secret", "webhook-secret_012345678", "sécret".encode("latin-1")])
def test_bad_secret_is_rejected_and_nothing_processed(tg, secret):
    response = tg.post(text_update(ANSWER_Q), secret=secret)
    assert response.status_code == 403
    time.sleep(0.1)
    assert not tg.fake.sent() and question_count(tg.service) == 0


def test_malformed_updates_never_crash(tg):
    assert tg.post(b"{not json").status_code == 400
    assert tg.post([1, 2]).status_code == 400
    assert tg.post({"hello": "world"}).status_code == 400
    assert tg.post({"update_id": 1, "message": {"text": "no chat, no date"}}).status_code == 400
    edited = text_update("sửa tin")
    edited["edited_message"] = edited.pop("message")
    assert tg.post(edited).status_code == 200
    assert tg.post({"update_id": 9_999_999, "something_new": {"x": 1}}).status_code == 200
    assert tg.post({"update_id": 9_999_998, "callback_query": {"id": "1", "from": {"id": 1, "is_bot": False,
                    "first_name": "A"}, "chat_instance": "c"}}).status_code == 200  # no data, no message
    assert question_count(tg.service) == 0
    tg.post(text_update(ANSWER_Q))  # still alive
    assert any("Căn cứ" in c.params["text"] for c in tg.fake.wait_sent(1))


@pytest.mark.parametrize("data", ["e:entry-removed-long-ago", "garbage", "f:x:1:y", "f:+:abc:", "t:not-a-topic", "e:"])
def test_stale_or_unreadable_buttons_get_a_polite_reply(tg, data):
    assert tg.post(callback_update(data)).status_code == 200
    (call,) = tg.fake.wait_sent(1)
    assert call.params["text"] == STALE_BUTTON
    assert tg.fake.sent("answerCallbackQuery")


def test_stale_button_on_an_inaccessible_message(tg):
    update = callback_update("e:gone")
    update["callback_query"]["message"] = {"message_id": 1, "date": 0, "chat": {"id": 4242, "type": "private"}}
    tg.post(update)
    (call,) = tg.fake.wait_sent(1)
    assert call.params["text"] == STALE_BUTTON and call.params["chat_id"] == "4242"


def test_callback_answer_failure_is_harmless(tg):
    tg.fake.fail_methods.add("answerCallbackQuery")  # "query is too old" after a restart
    choice = engine().ask(CHOICES_Q).choices[0]
    tg.post(callback_update(f"e:{choice.entry_id}"))
    (call,) = tg.fake.wait_sent(1)
    assert html.escape(choice.question, quote=False) in call.params["text"]


def test_long_answer_is_split_under_the_limit(tg, monkeypatch):
    paragraph = "Đây là một đoạn giải thích dài về chế độ BHXH & quyền lợi <người lao động>. " * 12
    # A long text shown whole (a reply without a short form; the details of a short answer are sent the
    # same way, tests/test_short_answer_channels.py).
    long_reply = replace(engine().ask(ANSWER_Q), text="\n\n".join([paragraph] * 12), short="", details="")
    monkeypatch.setattr(tg.service.engine, "ask", lambda text, on=None: long_reply)
    tg.post(text_update("câu hỏi dài"))
    calls = wait_for(lambda: len(tg.fake.sent()) >= 3 and tg.fake.sent())
    assert all(len(c.params["text"]) <= TELEGRAM_LIMIT for c in calls)
    assert all("&lt;người lao động&gt;" in c.params["text"] for c in calls)
    assert [bool(c.params.get("reply_markup")) for c in calls] == [False] * (len(calls) - 1) + [True]


def test_non_text_help_and_rate_limit(tmp_path, monkeypatch, fake):
    _env(monkeypatch, tmp_path, fake)
    service = make_service(tmp_path / "bhxh.db", user_limit=2)
    with TestClient(channel_app(service)) as client:
        def post(update):
            client.post("/webhooks/telegram", json=update, headers={"X-Telegram-Bot-Api-Secret-Token": SECRET})

        post(sticker_update())
        post(text_update("/help"))
        for _ in range(3):
            post(text_update(ANSWER_Q))
    texts = [c.params["text"] for c in fake.sent()]
    assert "chỉ đọc được tin nhắn chữ" in texts[0]
    assert "VssID" in texts[1] and "/start" in texts[1]
    assert texts[-1] == RATE_LIMITED_TEXT and texts.count(RATE_LIMITED_TEXT) == 1


def test_webhook_acknowledges_before_answering(tmp_path, monkeypatch, fake):
    _env(monkeypatch, tmp_path, fake)
    service = make_service(tmp_path / "bhxh.db")
    slow_handle = service.handle

    def slow(*args, **kwargs):
        time.sleep(1.5)
        return slow_handle(*args, **kwargs)

    monkeypatch.setattr(service, "handle", slow)
    with ServerThread(channel_app(service)) as server:
        started = time.monotonic()
        response = httpx.post(f"{server.url}/webhooks/telegram", json=text_update(ANSWER_Q),
                              headers={"X-Telegram-Bot-Api-Secret-Token": SECRET}, timeout=10)
        acked = time.monotonic() - started
        assert response.status_code == 200 and acked < 1.0
        fake.wait_sent(1)
        assert time.monotonic() - started >= 1.5


def test_long_polling_mode(tmp_path, monkeypatch, fake):
    _env(monkeypatch, tmp_path, fake)
    service = make_service(tmp_path / "bhxh.db")
    config = TelegramConfig.from_env()
    assert config is not None

    async def run() -> None:
        application = polling_application(service, config)
        async with application:
            await application.updater.start_polling(poll_interval=0.05, timeout=1)
            await application.start()
            fake.updates.append(text_update(ANSWER_Q))
            for _ in range(200):
                if fake.sent():
                    break
                await asyncio.sleep(0.05)
            await application.updater.stop()
            await application.stop()

    asyncio.run(run())
    assert fake.sent("deleteWebhook")  # polling removes a webhook first
    assert "Căn cứ" in fake.sent()[0].params["text"]


def test_server_starts_even_when_telegram_is_down(tmp_path, monkeypatch, fake, caplog):
    _env(monkeypatch, tmp_path, fake)
    monkeypatch.setenv("TELEGRAM_API_BASE_URL", "http://127.0.0.1:9/bot")  # nothing listens there
    service = make_service(tmp_path / "bhxh.db")
    with TestClient(channel_app(service)) as client:
        response = client.post("/webhooks/telegram", json=text_update(ANSWER_Q),
                               headers={"X-Telegram-Bot-Api-Secret-Token": SECRET})
        assert response.status_code == 200
    assert "telegram not ready yet" in caplog.text and TOKEN not in caplog.text


def test_tokens_never_reach_the_logs(tg, caplog):
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="httpx")
    tg.fake.fail_methods.add("sendMessage")
    tg.post(text_update(ANSWER_Q))
    tg.fake.wait_sent(1)
    time.sleep(0.3)
    assert "/bot***/sendMessage" in caplog.text  # httpx logged the URL, masked
    assert TOKEN not in caplog.text and TOKEN.split(":")[1] not in caplog.text
    assert SECRET not in caplog.text


def test_run_telegram_polling_end_to_end(tmp_path, fake):
    """The function behind `bhxh telegram`, in its own process, until Ctrl-C."""
    env = {**os.environ, "TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_API_BASE_URL": fake.base_url,
           "TELEGRAM_API_FILE_URL": fake.file_url, "BHXH_DATA_DIR": str(tmp_path), "BHXH_EMBED_MODEL": "none"}
    fake.updates.append(text_update(ANSWER_Q))
    process = subprocess.Popen([sys.executable, "-m", "bhxh.cli", "telegram"],
                               env=env, cwd=Path(__file__).resolve().parent.parent,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        (call,) = fake.wait_sent(1, timeout=60)
        assert "Căn cứ" in call.params["text"]
    finally:
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert "long polling" in out and TOKEN not in out + err
    assert fake.sent("deleteWebhook") and fake.sent("setMyCommands")


def test_polling_entry_point_needs_a_token(tmp_path, monkeypatch, capsys):
    clean_env(monkeypatch, tmp_path)
    assert run_telegram_polling(lambda: make_service(tmp_path / "bhxh.db")) == 2
    assert "TELEGRAM_BOT_TOKEN" in capsys.readouterr().err


def test_telegram_formatting_units():
    reply = Reply("answer", "a < b & c\n\n" + "x " * 3000, entry_id="e", sources=("Luật 41/2024/QH15, Điều 2",),
                  notice="Tin nhắn dài")
    chunks = telegram_messages(reply, title="Câu <hỏi>")
    assert chunks[0].startswith("<i>Tin nhắn dài</i>\n\n<b>Câu &lt;hỏi&gt;</b>\n\na &lt; b &amp; c")
    assert chunks[-1].endswith("<blockquote expandable><b>Căn cứ:</b> Luật 41/2024/QH15, Điều 2.</blockquote>")
    assert all(len(c) <= TELEGRAM_LIMIT for c in chunks) and len(chunks) == 3
    assert all(c.count("<b>") == c.count("</b>") and c.count("<i>") == c.count("</i>") for c in chunks)
    assert "".join(chunks).replace("expandable", "").count("x") == 3000  # the blockquote's word has an x
    assert split_text("&amp;" * 10, 12) == ["&amp;&amp;", "&amp;&amp;", "&amp;&amp;", "&amp;&amp;", "&amp;&amp;"]


def test_telegram_conversation_transcript(tg):
    """A whole conversation, printed (pytest -s) and saved to test-artifacts/telegram-transcript.txt."""
    lines: list[str] = []
    seen = 0

    def step(label: str, update: dict) -> None:
        nonlocal seen
        lines.append(f"👤 {label}")
        tg.post(update)
        for call in tg.fake.calls[seen:]:
            if call.method in {"sendMessage", "answerCallbackQuery", "editMessageReplyMarkup"}:
                text = call.params.get("text") or ""
                lines.append(f"🤖 {call.method}: {text}".rstrip())
                for label_, data in buttons(call):
                    lines.append(f"     [{label_}] → {data}")
        seen = len(tg.fake.calls)
        lines.append("")

    seen = len(tg.fake.calls)
    step("/start", text_update("/start"))
    step(CHOICES_Q, text_update(CHOICES_Q))
    first = engine().ask(CHOICES_Q).choices[0]
    step(f"(bấm) 1. {first.question}", callback_update(f"e:{first.entry_id}"))
    answer = tg.fake.sent()[-1]
    step("(bấm) 📖 Xem chi tiết", callback_update(f"d:{first.entry_id}"))  # the details behind the short answer
    up = next(d for _, d in buttons(answer) if d.startswith("f:+"))
    step("(bấm) 👍", callback_update(up, message={"message_id": 9, "date": int(time.time()),
                                                  "chat": {"id": 4242, "type": "private"}, "text": "…",
                                                  "reply_markup": answer.params["reply_markup"]}))
    step("giá vàng hôm nay", text_update("giá vàng hôm nay"))
    step("(bấm một nút cũ)", callback_update("e:khong-con-nua"))
    transcript = "\n".join(lines)
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "telegram-transcript.txt").write_text(transcript, encoding="utf-8")
    print("\n" + transcript)
    assert "Căn cứ" in transcript and "Cảm ơn" in transcript and STALE_BUTTON in transcript
    assert "<b>Chi tiết: " in transcript


def test_calculator_flow_with_buttons_survives_a_restart(tg, tmp_path):
    tg.post(text_update("/tinh"))
    (ask_group,) = tg.fake.wait_sent(1)
    assert "Bước 1/3" in ask_group.params["text"]
    assert ("Hộ cận nghèo", "c:g:near_poor") in buttons(ask_group)
    tg.post(callback_update("c:g:near_poor"))
    ask_period = tg.fake.wait_sent(2)[-1]
    assert [d for _, d in buttons(ask_period)] == ["c:m:1", "c:m:3", "c:m:6", "c:m:12"]
    tg.post(callback_update("c:m:3"))
    assert "Bước 3/3" in tg.fake.wait_sent(3)[-1].params["text"]
    # A restart between the steps: the next app on the same database still waits for the income.
    with TestClient(channel_app(make_service(tmp_path / "bhxh.db"))) as client:
        headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
        client.post("/webhooks/telegram", json=text_update("1 nghìn"), headers=headers)
        out_of_range = tg.fake.wait_sent(4)[-1].params["text"]
        assert "từ" in out_of_range and "Bạn gõ lại thu nhập" in out_of_range
        client.post("/webhooks/telegram", json=text_update("1,5 triệu"), headers=headers)
        result = tg.fake.wait_sent(5)[-1].params["text"]
    r = voluntary_contribution(1_500_000, "near_poor", 3, dt.date.today(), table=engine().kb.parameters)
    assert f"Bạn thực đóng: {format_money(r.net_per_month)}/tháng" in result
    assert format_money(r.net_per_period) in result and "Cách tính:" in result
    # The flow is over: the next message is an ordinary question, and an old step button is stale.
    tg.post(text_update(ANSWER_Q))
    assert "Căn cứ" in tg.fake.wait_sent(6)[-1].params["text"]
    tg.post(callback_update("c:m:3"))
    assert tg.fake.wait_sent(7)[-1].params["text"] == STALE_BUTTON


def test_calculator_button_offered_with_voluntary_answers(tg):
    keyboard = TelegramBot(tg.service).keyboard(Reply("answer", "…", calculator="voluntary_contribution"), None)
    assert keyboard is not None
    assert [b.callback_data for row in keyboard.inline_keyboard for b in row] == ["c:start"]
    tg.post(callback_update("c:start"))
    assert "Bước 1/3" in tg.fake.wait_sent(1)[0].params["text"]


def test_the_typed_calculator_flow_works_on_telegram_too_with_its_steps_as_buttons(tg):
    tg.post(text_update("tính"))
    menu = tg.fake.wait_sent(1)[0]
    assert "Gõ 1, 2, 3, 4 hoặc 5 để chọn nhóm." in menu.params["text"]
    assert ("Hộ cận nghèo", "c:g:near_poor") in buttons(menu)
    tg.post(text_update("2"))
    periods = tg.fake.wait_sent(2)[1]
    assert "Nhóm: Hộ cận nghèo." in periods.params["text"]
    assert [d for _, d in buttons(periods)] == ["c:m:1", "c:m:3", "c:m:6", "c:m:12"]
    tg.post(callback_update("c:m:6"))  # a button answers a typed step as well
    assert "Bước 3/3" in tg.fake.wait_sent(3)[2].params["text"]
    tg.post(text_update("3 triệu"))
    r = voluntary_contribution(3_000_000, "near_poor", 6, dt.date.today(), table=engine().kb.parameters)
    assert format_money(r.net_per_period) in tg.fake.wait_sent(4)[3].params["text"]
    assert question_count(tg.service) == 0
