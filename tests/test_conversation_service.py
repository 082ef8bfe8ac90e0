"""Follow-ups, "Không phải các câu trên" and dates through Service: the path Telegram, Zalo and the web share."""

import datetime as dt

import pytest

from bot import messages
from bot.conversation import NONE_OF_THESE_ID
from bot.service import Service
from storage.store import Store

TODAY = dt.date(2026, 12, 3)


@pytest.fixture
def service(engine, tmp_path):
    return Service(engine, Store(tmp_path / "db", b"k"), user_limit=100, user_window=60)


def ask(service: Service, text: str, user: str = "u1", channel: str = "telegram"):
    return service.handle(channel, user, text, on=TODAY).reply


@pytest.mark.parametrize("channel", ["telegram", "zalo", "web"])
def test_a_follow_up_changing_the_year_reanswers_the_previous_question_for_that_year(service, channel):
    first = ask(service, "mức đóng BHXH tự nguyện thấp nhất là bao nhiêu", channel=channel)
    assert first.entry_id == "tn-muc-dong-toi-thieu" and "330.000" in first.text
    second = ask(service, "còn năm 2027 thì sao?", channel=channel)
    assert second.entry_id == "tn-muc-dong-toi-thieu" and "484.000" in second.text
    assert messages.date_used(dt.date(2027, 1, 1)) in second.notice
    assert "Tiếp câu trước" in second.notice


def test_a_follow_up_changing_the_amount_reruns_the_calculator(service):
    first = ask(service, "tôi chọn mức 3 triệu thì đóng tự nguyện bao nhiêu")
    assert first.kind == "calculator" and "660.000" in first.text
    second = ask(service, "vậy còn 5 triệu thì sao")
    assert second.kind == "calculator" and "1.100.000" in second.text


def test_a_follow_up_changing_sex_keeps_the_pension_question(service):
    first = ask(service, "tôi là nam 60 tuổi đóng 20 năm lương bình quân 7 triệu thì lương hưu bao nhiêu")
    second = ask(service, "còn nếu tôi là nữ thì sao?")
    assert first.kind == second.kind == "calculator"
    assert "nữ" in second.notice and "7 triệu" in second.notice and second.text != first.text


def test_a_new_topic_starts_afresh_and_users_do_not_share_context(service):
    ask(service, "mức đóng BHXH tự nguyện thấp nhất là bao nhiêu")
    fresh = ask(service, "nghỉ thai sản được mấy tháng")
    assert not fresh.notice and fresh.topic == "maternity"
    other = ask(service, "còn năm 2027 thì sao?", user="someone-else")
    assert "Tiếp câu trước" not in other.notice and other.entry_id != "tn-muc-dong-toi-thieu"


def test_choices_end_with_none_of_these_which_asks_to_rephrase_and_is_counted(service):
    question = next(q for q in ["mai tang", "bhxh tu nguyen", "thai san", "bhyt", "luong huu", "rut bhxh 1 lan dc ko"]
                    if ask(service, q, channel="zalo").choices)
    reply = service.handle("zalo", "u1", "0", on=TODAY)
    assert reply.question_id is None and reply.reply.kind == "not_sure"
    assert "hỏi lại" in reply.reply.text and ("1900 9068" in reply.reply.text or "cán bộ" in reply.reply.text)
    assert service.conversation("zalo", "u1").choices == ()
    signals = list(service.store.db["signals"].rows) if "signals" in service.store.db.table_names() else []
    assert [s["kind"] for s in signals if s["kind"] == "none_of_these"] == ["none_of_these"], question
    # the button on Telegram and the web sends its id instead of an entry's
    assert ask(service, question).choices
    pressed = service.choose("telegram", "u1", NONE_OF_THESE_ID, on=TODAY)
    assert pressed is not None and pressed.kind == "not_sure" and "hỏi lại" in pressed.text


def test_a_pick_renders_the_figures_for_the_date_the_question_asked(service):
    reply = ask(service, "từ 1/1/2027 đóng bhxh tự nguyện thì mức đóng thấp nhất và hỗ trợ thế nào")
    if reply.choices:
        n = next(i for i, c in enumerate(reply.choices, start=1) if c.entry_id == "tn-muc-dong-toi-thieu")
        reply = ask(service, str(n))
    assert reply.entry_id == "tn-muc-dong-toi-thieu" and "484.000" in reply.text
    assert messages.date_used(dt.date(2027, 1, 1)) in reply.notice


def test_a_date_in_a_story_does_not_change_the_figures(service):
    # A date the story states is not a date the figures are asked for.
    reply = ask(service, "tôi nghỉ việc tháng 3/2026, giờ muốn đóng bhxh tự nguyện thì mức thấp nhất bao nhiêu")
    assert reply.entry_id == "tn-muc-dong-toi-thieu" and "Số liệu tính theo" not in reply.notice
    # The month of death sets only the funeral allowance's reference level (the next test), and is said so.
    reply = ask(service, "bố tôi mất tháng 3/2026 thì gia đình được trợ cấp mai táng bao nhiêu")
    assert reply.entry_id == "tt-tro-cap-mai-tang"
    assert reply.notice == messages.month_of_death_used(dt.date(2026, 3, 1))


def test_past_dates_get_that_dates_figures_when_the_table_has_them_else_say_so(engine):
    then = engine.ask("tháng 8/2025 mức trợ cấp mai táng là bao nhiêu", TODAY)
    assert then.entry_id == "tt-tro-cap-mai-tang" and "23.400.000" in then.text  # 10 × 2.340.000
    assert messages.date_used(dt.date(2025, 8, 1)) in then.notice
    before_table = engine.ask("năm 2010 mức trợ cấp mai táng là bao nhiêu", TODAY)
    assert "25.300.000" in before_table.text  # today's figures …
    assert messages.date_not_in_table(dt.date(2010, 1, 1), TODAY) in before_table.notice  # … said plainly


def test_the_funeral_allowance_follows_the_stated_month_of_death(service):
    said = service.handle("web", "u-death", "bố tôi mất tháng 3/2026 thì tiền mai táng được bao nhiêu", on=TODAY).reply
    assert said.entry_id == "tt-tro-cap-mai-tang"
    assert "23.400.000" in said.short and "25.300.000" not in said.short
    assert messages.month_of_death_used(dt.date(2026, 3, 1)) in said.notice
    today = service.handle("web", "u-now", "tiền mai táng phí hiện nay bao nhiêu", on=TODAY).reply
    assert "25.300.000" in today.short and not today.notice
