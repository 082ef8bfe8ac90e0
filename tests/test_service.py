"""The service every channel calls: logging, dedupe, rate limits, pending choices."""

import pytest

from bot.service import RateLimiter, Service
from storage.store import Store


@pytest.fixture
def service(lexical_engine, tmp_path):
    return Service(lexical_engine, Store(tmp_path / "db", b"k"), user_limit=5, user_window=60)


def test_each_question_is_logged_once_redacted(service):
    handled = service.handle("web", "u1", "Tôi tên là Lê Thị Hoa, sđt 0912345678, hỏi đóng bhxh tự nguyện",
                             message_id="m1")
    row = service.store.db["questions"].get(handled.question_id)
    assert "0912345678" not in row["text"] and "Hoa" not in row["text"]
    assert row["outcome"] == handled.reply.outcome and row["channel"] == "web"
    again = service.handle("web", "u1", "Tôi tên là Lê Thị Hoa, sđt 0912345678, hỏi đóng bhxh tự nguyện",
                           message_id="m1")
    assert again.duplicate and service.store.db["questions"].count == 1


def test_numbered_reply_picks_a_pending_choice_even_after_restart(service, lexical_engine, tmp_path):
    question = next(q for q in ["bhxh tu nguyen", "thai san", "bhyt", "luong huu", "mot lan"]
                    if service.handle("zalo", "u2", q).reply.choices)
    assert question
    pending = service.store.load_state(service._state_key("zalo", "u2"))["choices"]
    restarted = Service(lexical_engine, Store(tmp_path / "db", b"k"))
    reply = restarted.handle("zalo", "u2", "2").reply
    assert reply.kind == "answer" and reply.entry_id == pending[1]["entry_id"]


def test_a_number_without_pending_choices_is_just_a_question(service):
    assert service.handle("web", "u3", "3").reply.kind in ("not_sure", "invalid", "choices", "answer")


def test_rate_limit_per_user_is_friendly(service):
    replies = [service.handle("telegram", "u4", "lương hưu").reply for _ in range(7)]
    assert "chờ một chút" in replies[-1].text
    assert service.handle("telegram", "someone-else", "lương hưu").reply.kind != "invalid"


def test_rate_limiter_window_slides():
    limiter = RateLimiter(2, 10)
    assert limiter.allow("a", 0) and limiter.allow("a", 1) and not limiter.allow("a", 2)
    assert limiter.allow("a", 11.5)


def test_stale_choice_is_none(service):
    assert service.choose("telegram", "u5", "khong-ton-tai") is None
