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
    question = next(q for q in ["mai tang", "bhxh tu nguyen", "thai san", "bhyt", "luong huu"]
                    if service.handle("zalo", "u2", q).reply.choices)
    assert question
    pending = service.conversation("zalo", "u2").choices
    restarted = Service(lexical_engine, Store(tmp_path / "db", b"k"))
    reply = restarted.handle("zalo", "u2", "2").reply
    assert reply.kind == "answer" and reply.entry_id == pending[1].entry_id
    assert restarted.conversation("zalo", "u2").choices == ()  # answered: the state is deleted


def test_a_number_without_pending_choices_is_just_a_question(service):
    assert service.handle("web", "u3", "3").reply.kind == "not_sure"


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


def test_a_superscript_digit_is_not_a_pick(service):
    question = next(q for q in ["mai tang", "bhxh tu nguyen", "thai san", "bhyt"] if service.handle("web", "u6", q).reply.choices)
    assert question
    assert service.handle("web", "u6", "²").reply.kind != "answer"
    assert service.conversation("web", "u6").choices  # still pending


def test_the_calculator_flow_and_pending_choices_share_one_state(service):
    service.handle("zalo", "u7", "đóng bhxh tự nguyện bao nhiêu")
    service.handle("zalo", "u7", "tính")
    state = service.conversation("zalo", "u7")
    assert state.calc is not None and state.calc.step == "group" and state.choices == ()
    assert service.handle("zalo", "u7", "2").reply.calc_step == "period"
    assert service.handle("zalo", "u7", "1").reply.calc_step == "income"
    result = service.handle("zalo", "u7", "2 triệu")
    assert "Bạn thực đóng" in result.reply.text and result.question_id is None  # steps are not logged
    assert service.conversation("zalo", "u7").calc is None
    assert service.store.db["questions"].count == 1
    assert not service.calculator_button("zalo", "u7", "m", "3")  # a stale button
    assert service.calculator_button("zalo", "u7", "start")
    assert service.calculator_button("zalo", "u7", "g", "poor")
    assert service.conversation("zalo", "u7").calc.step == "period"


def test_replies_carry_what_channels_show_so_they_need_not_read_the_knowledge_base(service):
    answer = service.handle("web", "u8", "mức đóng bhxh tự nguyện hằng tháng là bao nhiêu").reply
    assert answer.answered and answer.title == service.engine.kb.entries[answer.entry_id].question
    not_sure = next(r for q in ["xyzzy plugh", "asdf qwer zxcv", "lorem ipsum dolor"]
                    if (r := service.handle("web", "u8", q).reply).kind in ("not_sure", "invalid"))
    assert not_sure.show_topics == (not_sure.kind == "not_sure") and not_sure.title is None
    assert service.welcome().show_topics and not answer.show_topics
    picked = service.choose("web", "u8", answer.entry_id)
    assert picked is not None and picked.title == answer.title
    assert [c.entry_id for c in service.topic_questions("pension", 3)] == [
        e.id for e in service.engine.kb.by_topic()["pension"][:3]]
