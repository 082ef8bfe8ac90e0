"""👎 in words on Zalo (bot/typed_vote.py), end to end through the webhooks, the pipeline, the Service and the
store, on the fake Zalo Bot Platform and the fake Zalo OA: "sai" / "👎" after an answer is a 👎 (the same
feedback row and THUMBS_DOWN signal as a button, not also a NEGATION), a number then gives its reason, and
the staff review queue shows both."""

from __future__ import annotations

from typing import Any

from fakes.service import engine, question_count
from fakes.zalo import bot_update

from admin_api import review_queue
from bot import messages, signals, typed_vote
from bot.typed_vote import DOWN_HINT, REASON_RANGE, REASON_THANKS, is_down_vote
from tests.pg import pg_cluster, pg_url  # noqa: F401 (fixtures of test_zalo_oa's)
from tests.test_zalo import ANSWER_Q, CHOICES_Q, zb  # noqa: F401 (fixture)
from tests.test_zalo_oa import USER, _press, oa, oa_fake  # noqa: F401 (fixtures)


def signal_rows(service: Any) -> list[tuple[Any, ...]]:
    return service.store.db.execute("SELECT kind, question_id, entry_id, detail FROM signals ORDER BY id").fetchall()


def votes(service: Any) -> list[tuple[Any, ...]]:
    return service.store.db.execute("SELECT question_id, entry_id, value FROM feedback ORDER BY id").fetchall()


def test_which_messages_are_a_down_vote() -> None:
    for text in ("👎", " 👎👎 ", "👎🏽", "sai", "Sai rồi", "sai roi a", "chưa đúng", "chua dung", "Không phải",
                 "không đúng ạ", "nhầm rồi"):
        assert is_down_vote(text), text
    for text in ("không phải, tôi hỏi về thai sản", "không phải đóng BHXH à?", "sai ở đâu vậy", "1", "", None,
                 "👎 sai chỗ nào", "đúng rồi"):
        assert not is_down_vote(text), text


def test_zalo_bot_sai_after_an_answer_is_a_down_vote_and_a_number_its_reason(zb) -> None:  # noqa: F811
    expected = engine().ask(ANSWER_Q)
    zb.post(bot_update(ANSWER_Q))
    answer = zb.fake.wait_sent(1)[0]["text"]
    assert answer.endswith(DOWN_HINT)  # no buttons on this platform: the answer says how to report it
    (question_id,) = [r[0] for r in zb.service.store.db.execute("SELECT id FROM questions")]

    zb.post(bot_update("Sai rồi ạ"))
    asked = zb.fake.wait_sent(2)[1]["text"]
    assert asked.startswith(messages.FEEDBACK_DOWN) and "1. Không đúng câu tôi hỏi\n2. Thông tin chưa đúng" in asked
    assert messages.HANDOFF_OFFER in asked
    assert votes(zb.service) == [(question_id, expected.entry_id, -1)]
    assert question_count(zb.service) == 1  # "sai rồi" is not a question
    zb.post(bot_update("2"))
    assert zb.fake.wait_sent(3)[2]["text"] == REASON_THANKS
    rows = signal_rows(zb.service)
    assert [r[0] for r in rows] == ["thumbs_down", "thumbs_down"]  # the vote, then its reason; no NEGATION
    assert rows[1][1:] == (question_id, expected.entry_id, "Thông tin chưa đúng")
    assert votes(zb.service) == [(question_id, expected.entry_id, -1)]  # one vote, still 👎

    queue = review_queue.review_queue(zb.service.store, zb.service.engine, days=1)
    (case,) = [c for c in queue.cases if question_id in c.question_ids]
    assert case.signals == {"thumbs_down": 1} and case.reasons == ["Thông tin chưa đúng"]
    assert queue.totals["thumbs_down"] == 1  # the vote and its reason: one 👎
    assert case.entry_id == expected.entry_id

    zb.post(bot_update("2"))  # the reason was given: "2" is an ordinary message again (no menu: a question)
    zb.fake.wait_sent(4)
    assert len(signal_rows(zb.service)) == 2 and question_count(zb.service) == 2


def test_zalo_bot_thumbs_emoji_a_wrong_number_and_moving_on(zb) -> None:  # noqa: F811
    zb.post(bot_update(ANSWER_Q))
    zb.fake.wait_sent(1)
    zb.post(bot_update("👎"))
    assert zb.fake.wait_sent(2)[1]["text"].startswith(messages.FEEDBACK_DOWN)
    zb.post(bot_update("7"))
    assert zb.fake.wait_sent(3)[2]["text"] == REASON_RANGE.format(n=len(signals.DOWN_REASONS))
    zb.post(bot_update("👎"))  # again on the same answer: asked again, not counted again
    zb.fake.wait_sent(4)
    zb.post(bot_update(CHOICES_Q))  # a question instead of a reason: answered, the reason no longer awaited
    assert "Trả lời 1 hoặc 2" in zb.fake.wait_sent(5)[4]["text"]
    zb.post(bot_update("1"))  # picks the menu's first question, as always
    assert zb.fake.wait_sent(6)[5]["text"].startswith("❓ ")
    kinds = [r[0] for r in signal_rows(zb.service)]
    assert kinds.count("thumbs_down") == 1 and next(r[3] for r in signal_rows(zb.service)) is None
    assert len(votes(zb.service)) == 1


def test_zalo_bot_negation_without_an_answer_before_it_stays_a_question(zb) -> None:  # noqa: F811
    zb.post(bot_update("sai rồi"))  # nothing answered yet: the Service answers it, nothing is rated
    zb.fake.wait_sent(1)
    zb.post(bot_update(CHOICES_Q))
    zb.fake.wait_sent(2)
    zb.post(bot_update("không phải"))  # after a menu: "none of these" (Service), as before
    zb.fake.wait_sent(3)
    zb.post(bot_update(ANSWER_Q))
    zb.fake.wait_sent(4)
    zb.post(bot_update("không phải, tôi hỏi về thai sản"))  # a correction and a new question: a NEGATION
    zb.fake.wait_sent(5)
    assert votes(zb.service) == [] and question_count(zb.service) == 4
    kinds = [r[0] for r in signal_rows(zb.service)]
    assert "thumbs_down" not in kinds and kinds.count("none_of_these") == 1 and kinds.count("negation") == 1


def test_zalo_bot_reason_must_come_within_minutes(zb, monkeypatch) -> None:  # noqa: F811
    zb.post(bot_update(ANSWER_Q))
    zb.fake.wait_sent(1)
    zb.post(bot_update("chua dung"))
    zb.fake.wait_sent(2)
    monkeypatch.setattr(typed_vote, "REASON_SECONDS", -1.0)  # as if minutes had passed
    zb.post(bot_update("3"))  # no longer a reason: an ordinary message
    assert zb.fake.wait_sent(3)[2]["text"] != REASON_THANKS
    assert all(r[3] is None for r in signal_rows(zb.service) if r[0] == "thumbs_down")


def test_zalo_oa_down_button_asks_why_with_buttons_and_a_typed_sai_does_the_same(oa) -> None:  # noqa: F811
    expected = engine().ask(ANSWER_Q)
    oa.say(ANSWER_Q)
    oa.fake.wait_messages(1)
    question_id = oa.service.store.db["questions"].count
    down = next(b for b in oa.fake.buttons(0) if b["title"] == "👎 Chưa đúng")
    _press(oa, down)
    oa.fake.wait_messages(2)
    reasons = oa.fake.buttons(1)
    assert [b["payload"] for b in reasons[:4]] == [f"#f:r:{question_id}:{n}" for n in range(4)]
    _press(oa, reasons[2])  # "Khó hiểu"
    assert oa.fake.wait_messages(3)[2]["message"]["text"] == REASON_THANKS
    rows = signal_rows(oa.service)
    assert [(r[0], r[1], r[3]) for r in rows] == [("thumbs_down", question_id, None),
                                                  ("thumbs_down", question_id, "Khó hiểu")]
    assert votes(oa.service) == [(question_id, expected.entry_id, -1)]

    oa.say(ANSWER_Q)  # the next answer, rated by typing
    oa.fake.wait_messages(4)
    oa.say("sai")
    asked = oa.fake.wait_messages(5)[4]
    assert asked["message"]["text"].startswith(messages.FEEDBACK_DOWN)
    assert [b["title"] for b in oa.fake.buttons(4)] == [*signals.DOWN_REASONS, messages.HANDOFF_BUTTON]
    oa.say("4")
    assert oa.fake.wait_messages(6)[5]["message"]["text"] == REASON_THANKS
    last = signal_rows(oa.service)[-1]
    assert last[0] == "thumbs_down" and last[1] == question_id + 1 and last[3] == "Thiếu thông tin"
    assert question_count(oa.service) == 2 and "negation" not in [r[0] for r in signal_rows(oa.service)]
    assert oa.fake.delivered[-1]["user"] == USER
