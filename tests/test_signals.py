"""Signals of misunderstanding detected by the service (bot/signals.py) on the real engine and store."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from bot import signals
from bot.service import Service
from storage.store import Store


@pytest.fixture
def service(lexical_engine: Any, tmp_path: Any) -> Service:
    return Service(lexical_engine, Store(tmp_path / "db", b"k"), user_limit=100, user_window=60)


def logged(service: Service) -> list[tuple[str, int | None, str | None, str | None]]:
    return [tuple(r) for r in service.store.db.execute(
        "SELECT kind, question_id, entry_id, detail FROM signals ORDER BY id").fetchall()]


def answered(service: Service, user: str) -> Any:
    for text in ("lương hưu tối thiểu là bao nhiêu", "đóng bhxh tự nguyện mức thấp nhất bao nhiêu",
                 "điều kiện hưởng bhxh một lần"):
        handled = service.handle("telegram", user, text)
        if handled.reply.answered:
            return handled
    raise AssertionError("no question answered")


def test_negation_after_an_answer_points_at_that_answer(service: Service) -> None:
    first = answered(service, "u1")
    service.handle("telegram", "u1", "Sai rồi ạ")
    assert logged(service) == [("negation", first.question_id, first.reply.entry_id, logged(service)[0][3])]


def test_a_rephrase_within_a_minute_is_a_signal_and_a_later_one_is_not(service: Service) -> None:
    first = answered(service, "u1")
    service.handle("telegram", "u1", first.reply.normalized + " vậy ạ")
    assert [(k, q) for k, q, _, _ in logged(service)] == [("rephrase", first.question_id)]
    with service.store.write() as db:  # the next answer was given two minutes ago
        db.execute("UPDATE questions SET ts = ?", [(dt.datetime.now(dt.UTC) - dt.timedelta(minutes=2))
                                                   .strftime("%Y-%m-%dT%H:%M:%S.%fZ")])
    service.handle("telegram", "u1", first.reply.normalized + " nhé")
    assert len(logged(service)) == 1


def test_off_topic_declines_picks_buttons_and_thumbs_down_are_signals(service: Service) -> None:
    declined = service.handle("zalo", "u2", "giá vàng hôm nay bao nhiêu")
    assert declined.reply.kind == "out_of_scope"
    assert logged(service)[-1][:2] == ("off_topic", declined.question_id)

    offered = next(h for q in ["mai tang", "bhxh tu nguyen", "thai san", "bhyt", "luong huu"]
                   if (h := service.handle("zalo", "u3", q)).reply.choices)
    picked = service.handle("zalo", "u3", "2")
    assert logged(service)[-1] == ("menu_pick", offered.question_id, picked.reply.entry_id, "typed")

    entry = offered.reply.choices[0].entry_id
    assert service.choose("web", "u3", entry) is not None  # a web button tap: a signal, no user question
    assert logged(service)[-1][0] == "menu_pick" and logged(service)[-1][2:] == (entry, "button")

    first = answered(service, "u4")
    assert service.feedback("telegram", "u4", -1, question_id=first.question_id, reason="Không đúng ý tôi hỏi")
    assert logged(service)[-1] == ("thumbs_down", first.question_id, None, "Không đúng ý tôi hỏi")
    assert service.feedback("telegram", "u4", 1, question_id=first.question_id)
    assert logged(service)[-1][0] == "thumbs_down"  # a 👍 is not a signal


def test_note_attaches_to_a_recent_question_only(service: Service) -> None:
    first = answered(service, "u5")
    signals.note(service.store, signals.HANDOFF, "telegram", "u5")
    assert logged(service)[-1] == ("handoff", first.question_id, first.reply.entry_id, None)
    later = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=signals.REACTION_SECONDS + 5)
    signals.note(service.store, signals.NONE_OF_THESE, "telegram", "u5", now=later)
    assert logged(service)[-1] == ("none_of_these", None, None, None)


@pytest.mark.parametrize(("text", "negative"), [
    ("không phải", True), ("Sai rồi ạ", True), ("không đúng!", True), ("chưa đúng đâu", True),
    ("không phải, tôi hỏi về lương hưu", True), ("không phải đóng BHXH à?", False),
    ("sai lầm khi rút một lần", False), ("lương hưu", False)])
def test_negation_words(text: str, negative: bool) -> None:
    assert signals.is_negation(text) is negative
