"""Short answer first on the chat platforms (issue 17 item 2): Telegram (a real PTB Application on the fake
Bot API) sends the short answer with a "Xem chi tiết" button whose press sends the details; sources folded in
an expandable blockquote. Zalo Bot Platform (fake server): "gõ 0 để xem chi tiết", and "0" sends them."""

from __future__ import annotations

import datetime as dt
import html

import pytest
from fakes.service import engine
from fakes.telegram import callback_update, text_update
from fakes.zalo import bot_update

# The channels' own fixtures (the real app on the fake platform servers) rather than copies of them.
from test_telegram import buttons, fake, tg  # noqa: F401
from test_zalo import zb  # noqa: F401

from bot.channels.format import TELEGRAM_LIMIT, ZALO_LIMIT, has_details, telegram_messages, zalo_messages
from bot.messages import DETAILS_BUTTON, DETAILS_HINT_ZALO, DETAILS_TITLE
from bot.reply import Reply
from bot.short_answer import details_of

ANSWER_Q = "ông nhà tôi đang hưởng lương hưu mới mất thì gia đình được nhận những gì"
CHOICES_Q = "đóng bhxh tự nguyện bao nhiêu"


@pytest.fixture
def telegram(request):
    return request.getfixturevalue("tg")


@pytest.fixture
def zalo_bot(request):
    return request.getfixturevalue("zb")


def _plain(text: str) -> str:
    return html.unescape(text)


# ------------------------------------------------------------------ Telegram


def test_telegram_short_answer_then_details_on_the_button(telegram):
    expected = engine().ask(ANSWER_Q)
    assert expected.kind == "answer" and expected.short and expected.details
    telegram.post(text_update(ANSWER_Q))
    (first,) = telegram.fake.wait_sent(1)
    text = _plain(first.params["text"])
    assert expected.short in text
    last_details = expected.details.split("\n\n")[-1]
    assert last_details not in text  # the details wait behind the button
    assert "<blockquote expandable><b>Căn cứ:</b> " in first.params["text"]  # sources folded
    assert _plain(first.params["text"]).count(expected.sources[0]) == 1
    data = dict((d, label) for label, d in buttons(first))
    assert data[f"d:{expected.entry_id}"] == DETAILS_BUTTON
    assert list(data).index(f"d:{expected.entry_id}") == 0  # right under the answer, before related questions

    telegram.post(callback_update(f"d:{expected.entry_id}"))
    calls = telegram.fake.wait_sent(2)
    details = _plain("".join(c.params["text"] for c in calls[1:]))
    assert details.startswith(f"<b>{DETAILS_TITLE} {engine().kb.entries[expected.entry_id].question}</b>")
    for paragraph in expected.details.split("\n\n"):
        assert paragraph in details
    assert all(not c.params.get("reply_markup") for c in calls[1:])  # no second set of 👍/👎
    assert telegram.fake.sent("answerCallbackQuery")


def test_telegram_details_button_fits_64_bytes_for_every_entry():
    for entry_id in engine().kb.entries:
        assert len(f"d:{entry_id}".encode()) <= 64, entry_id


def test_telegram_stale_details_button_is_answered_politely(telegram):
    from bot.messages import STALE_BUTTON

    telegram.post(callback_update("d:khong-con-nua"))
    (call,) = telegram.fake.wait_sent(1)
    assert call.params["text"] == STALE_BUTTON


def test_long_details_are_split_under_the_limits():
    paragraph = "Đây là một đoạn giải thích dài về chế độ BHXH & quyền lợi <người lao động>. " * 12
    reply = Reply("answer", "Ngắn.\n\n" + "\n\n".join([paragraph] * 12), entry_id="x", short="Ngắn.",
                  details="\n\n".join([paragraph] * 12), sources=("Luật 41/2024/QH15, Điều 2",), title="Câu hỏi?")
    assert has_details(reply)
    assert len(telegram_messages(reply)) == 1 and len(zalo_messages(reply)) == 1
    from bot.short_answer import details_reply

    shown = details_reply(reply, "Câu hỏi?")
    tg_chunks, zalo_chunks = telegram_messages(shown), zalo_messages(shown)
    assert len(tg_chunks) >= 3 and all(len(c) <= TELEGRAM_LIMIT for c in tg_chunks)
    assert len(zalo_chunks) >= 6 and all(len(c) <= ZALO_LIMIT for c in zalo_chunks)
    assert all("&lt;người lao động&gt;" in c for c in tg_chunks)
    assert DETAILS_HINT_ZALO not in "".join(zalo_chunks)


def test_choices_and_calculator_replies_keep_their_form():
    e = engine()
    choices = e.ask(CHOICES_Q)
    assert choices.kind == "choices" and choices.short == "" and not has_details(choices)
    calc = e.ask("thu nhập 3 triệu đóng bhxh tự nguyện mỗi tháng bao nhiêu, hộ nghèo")
    assert calc.short == "" and not has_details(calc)
    assert DETAILS_HINT_ZALO not in "".join(zalo_messages(choices) + zalo_messages(calc))


def test_details_of_renders_for_the_date_asked(lexical=None):
    e = engine()
    entry = next(x for x in e.kb.entries.values() if "voluntary_min_contribution" in x.answer)
    today = details_of(e, entry.id)
    later = details_of(e, entry.id, asked="từ 1/1/2027 mức đóng tự nguyện thấp nhất là bao nhiêu")
    assert today is not None and later is not None
    assert today.text != later.text and "01/01/2027" in later.notice
    assert details_of(e, "khong-con-nua") is None
    # the details follow the answer they belong to: no bare "Có." for a question that was not yes/no
    answers = {x.id: e.kb.render_answer(x, dt.date.today()) for x in e.kb.entries.values()}
    yes = next(x for x in e.kb.entries.values() if answers[x.id].startswith("Có. ") and len(answers[x.id]) > 400)
    assert details_of(e, yes.id, asked=yes.question).text.startswith("Có.")
    fitted = details_of(e, yes.id, asked="mức hưởng là bao nhiêu")
    assert fitted is not None and not fitted.text.startswith("Có.")
# ------------------------------------------------------------------ Zalo Bot Platform


def test_zalo_bot_short_answer_then_zero_gives_the_details(zalo_bot):
    expected = engine().ask(ANSWER_Q)
    zalo_bot.post(bot_update(ANSWER_Q, message_id="m-1"))
    (first,) = zalo_bot.fake.wait_sent(1)
    assert expected.short in first["text"]
    assert DETAILS_HINT_ZALO in first["text"] and "Căn cứ: " in first["text"]
    assert expected.details.split("\n\n")[-1] not in first["text"]

    zalo_bot.post(bot_update("0", message_id="m-2"))
    sent = zalo_bot.fake.wait_sent(2)
    details = "\n".join(m["text"] for m in sent[1:])
    assert details.startswith(f"❓ {DETAILS_TITLE} ")
    for paragraph in expected.details.split("\n\n"):
        assert paragraph in details
    assert all(len(m["text"]) <= ZALO_LIMIT for m in sent)


def test_zalo_bot_zero_after_a_menu_is_not_the_details(zalo_bot):
    """With a choice menu pending, "0" belongs to the menu ("Không phải các câu trên"), not to the details."""
    zalo_bot.post(bot_update(ANSWER_Q, message_id="m-1"))
    zalo_bot.post(bot_update(CHOICES_Q, message_id="m-2"))
    zalo_bot.fake.wait_sent(2)
    zalo_bot.post(bot_update("0", message_id="m-3"))
    sent = zalo_bot.fake.wait_sent(3)
    assert not sent[-1]["text"].startswith(DETAILS_TITLE)


def test_zalo_bot_typed_words_ask_for_the_details_too(zalo_bot):
    zalo_bot.post(bot_update(ANSWER_Q, message_id="m-1"))
    zalo_bot.fake.wait_sent(1)
    zalo_bot.post(bot_update("Xem chi tiết", message_id="m-2"))
    sent = zalo_bot.fake.wait_sent(2)
    assert sent[1]["text"].startswith(f"❓ {DETAILS_TITLE} ")


# ------------------------------------------------------------------ Zalo OA


def test_zalo_oa_details_button_instead_of_the_typed_hint():
    """The OA shows a button whose payload is the typed words Service answers (shown as the citizen's text)."""
    from bot.channels import zalo_oa

    reply = engine().ask(ANSWER_Q)
    assert has_details(reply)
    offered = zalo_oa.reply_buttons(reply, 7)
    details = [b for b in offered if b.label == DETAILS_BUTTON]
    assert len(details) == 1 and details[0].payload == "chi tiết" and len(offered) <= zalo_oa.MAX_BUTTONS
    from bot.short_answer import asks_details

    assert asks_details(details[0].payload)
    text = "".join(zalo_messages(reply, details_hint=""))
    assert DETAILS_HINT_ZALO not in text and reply.short in text
    choices = engine().ask(CHOICES_Q)
    assert not [b for b in zalo_oa.reply_buttons(choices, 8) if b.label == DETAILS_BUTTON]


def test_zero_after_a_button_pick_with_no_question_before_gives_the_details(zalo_bot):
    """A pick from a topic list or the field kit (Service.choose) has no typed question before it: "0" still
    finds the answer it follows."""
    service = zalo_bot.service
    entry_id = engine().ask(ANSWER_Q).entry_id
    picked = service.choose("zalo_bot", "u-lan-01", entry_id)
    assert picked is not None and has_details(picked)
    zalo_bot.post(bot_update("0", message_id="m-9"))
    (sent,) = zalo_bot.fake.wait_sent(1)
    assert sent["text"].startswith(f"❓ {DETAILS_TITLE} ") and picked.details.split("\n\n")[0] in sent["text"]
