"""A conversation, not a lookup (issue 17): follow-ups, "Không phải các câu trên", dates in questions.

The pure parts (reading a follow-up, a date, the stored state) without a service."""

import datetime as dt

import pytest

from bot.conversation import ConversationState, LastQuestion, Said, follow_up, picks_none
from bot.reply import Choice
from knowledge.asked_date import asked_date

TODAY = dt.date(2026, 12, 3)
MEMORY = 1800.0


def read(previous: str, text: str, *, after: float = 60.0) -> str | None:
    found = follow_up(LastQuestion.of(previous, 1000.0, TODAY), text, now=1000.0 + after, memory_seconds=MEMORY,
                      today=TODAY)
    return found[0] if found else None


@pytest.mark.parametrize(("previous", "text", "expected"), [
    ("Nam đóng bao nhiêu năm thì được lương hưu?", "còn nếu tôi là nữ thì sao?",
     "nữ đóng bao nhiêu năm thì được lương hưu?"),
    ("Nam đóng bao nhiêu năm thì được lương hưu?", "con nu thi sao", "nữ đóng bao nhiêu năm thì được lương hưu?"),
    ("Đóng BHXH bắt buộc thì được hưởng những chế độ gì?", "thế còn tự nguyện?",
     "Đóng BHXH tự nguyện thì được hưởng những chế độ gì?"),
    ("tôi là nữ 56 tuổi đóng 22 năm lương bình quân 7 triệu thì lương hưu bao nhiêu", "nếu đóng 25 năm thì sao",
     "tôi là nữ 56 tuổi đóng 25 năm lương bình quân 7 triệu thì lương hưu bao nhiêu"),
    ("mức đóng BHXH tự nguyện thấp nhất năm nay là bao nhiêu", "còn năm 2027?",
     "mức đóng BHXH tự nguyện thấp nhất năm 2027 là bao nhiêu"),
    ("mức đóng BHXH tự nguyện thấp nhất là bao nhiêu", "còn năm 2027?",
     "năm 2027, mức đóng BHXH tự nguyện thấp nhất là bao nhiêu"),
    ("tôi chọn mức 3 triệu thì đóng tự nguyện bao nhiêu", "vậy còn 5 triệu thì sao",
     "tôi chọn mức 5 triệu thì đóng tự nguyện bao nhiêu"),
    ("tôi là nam 60 tuổi đóng 20 năm lương 7 triệu thì lương hưu bao nhiêu", "còn nếu tôi là nữ thì sao?",
     "tôi là nữ 60 tuổi đóng 20 năm lương 7 triệu thì lương hưu bao nhiêu"),
    ("trợ cấp mai táng được bao nhiêu tiền", "thế còn năm 2025 thì sao?",
     "năm 2025, trợ cấp mai táng được bao nhiêu tiền"),
])
def test_a_follow_up_is_the_previous_question_with_one_fact_changed(previous, text, expected):
    assert read(previous, text) == expected


@pytest.mark.parametrize("text", [
    "còn thai sản thì sao",  # a new subject, no fact changed
    "đóng bhxh tự nguyện thì có lương hưu không",  # a question of its own
    "nghỉ ốm được mấy ngày",
    "cảm ơn",
    "còn nếu tôi là nam thì sao?",  # the same fact again: nothing changed
])
def test_a_new_question_is_not_read_in_the_previous_context(text):
    assert read("Nam đóng bao nhiêu năm thì được lương hưu?", text) is None


def test_a_follow_up_after_the_memory_ran_out_is_a_new_question():
    assert read("Nam đóng bao nhiêu năm thì được lương hưu?", "còn nữ thì sao?", after=MEMORY - 1)
    assert read("Nam đóng bao nhiêu năm thì được lương hưu?", "còn nữ thì sao?", after=MEMORY + 1) is None


def test_the_state_keeps_the_last_question_redacted_and_reads_old_records():
    last = LastQuestion.of("Tôi tên là Lê Thị Hoa, sđt 0912345678, nữ đóng 20 năm thì lương hưu bao nhiêu",
                           1000.0, TODAY, entry_id="e1", topic="pension")
    assert "0912345678" not in last.question and "Hoa" not in last.question
    assert last.said == Said(sex="female", years_paid=20)
    state = ConversationState((Choice("a", "A?"),), None, last)
    assert ConversationState.from_json(state.to_json(), groups=(), periods=()) == state
    old = ConversationState.from_json({"choices": [{"entry_id": "a", "question": "A?"}]}, groups=(), periods=())
    assert old == ConversationState((Choice("a", "A?"),)) and old.last is None
    broken = {"last": {"question": 3, "at": "x"}, "choices": []}
    assert ConversationState.from_json(broken, groups=(), periods=()).empty


@pytest.mark.parametrize("text", ["0", " 0 ", "Không phải các câu trên", "khong phai cac cau tren", "không phải",
                                  "không có câu nào đúng"])
def test_none_of_these_is_zero_or_the_words(text):
    assert picks_none(text)


@pytest.mark.parametrize("text", ["1", "không phải đóng BHXH à?", "sai", "00", ""])
def test_other_replies_are_not_none_of_these(text):
    assert not picks_none(text)


# ---------------------------------------------------------------- the date a question asks its figures for


@pytest.mark.parametrize(("text", "expected"), [
    ("từ 1/1/2027 mức đóng tự nguyện thấp nhất là bao nhiêu", dt.date(2027, 1, 1)),
    ("tu 1/1/2027 muc dong tu nguyen bao nhieu", dt.date(2027, 1, 1)),
    ("năm sau đóng tự nguyện thấp nhất bao nhiêu", dt.date(2027, 1, 1)),
    ("sang năm lương cơ sở có tăng không", dt.date(2027, 1, 1)),
    ("tháng 7/2026 mức tham chiếu là bao nhiêu", dt.date(2026, 7, 1)),
    ("năm 2027 hộ nghèo được hỗ trợ bao nhiêu", dt.date(2027, 1, 1)),
    ("từ ngày 01/07/2026 trợ cấp thai sản bao nhiêu", dt.date(2026, 7, 1)),
    ("tháng 7 năm sau mức tham chiếu bao nhiêu", dt.date(2027, 7, 1)),
    ("năm 2024 mức tham chiếu là bao nhiêu", dt.date(2024, 1, 1)),  # a past period, asked as such
    ("vợ tôi dự sinh tháng 2/2027 thì được bao nhiêu", dt.date(2027, 2, 1)),  # a future event: figures then
])
def test_a_date_the_figures_are_asked_for(text, expected):
    found = asked_date(text, TODAY)
    assert found is not None and found.on == expected


@pytest.mark.parametrize("text", [
    "bố tôi mất tháng 3/2026, tiền mai táng được bao nhiêu",  # an event of the story
    "tôi đóng từ năm 2016, nghỉ việc được 13 tháng, rút được bao nhiêu",
    "Tính đến tháng 2-2024, tôi đủ tuổi về hưu, tôi là nam. Lương hưu bao nhiêu?",
    "năm 2020 tôi nghỉ việc giờ rút được bao nhiêu",
    "sinh năm 1970 thì bao giờ nghỉ hưu",
    "theo quy định mới từ 01.07.2025 thì mức đóng là bao nhiêu",  # when a rule began: today's figures
    "năm nay đóng tự nguyện bao nhiêu",
    "ngưng đóng mấy năm sau đóng tiếp được không",  # "years later", not next year
    "Một năm tôi được nghỉ ốm tối đa bao nhiêu ngày",  # unaccented this would read "nam toi"
    "mot nam toi duoc nghi om bao nhieu ngay",
])
def test_a_date_inside_a_story_is_not_a_date_to_render_for(text):
    assert asked_date(text, TODAY) is None


def test_a_question_that_only_shares_a_fact_with_the_previous_one_is_its_own():
    previous = "tôi là nữ 56 tuổi đóng 22 năm lương bình quân 7 triệu thì lương hưu bao nhiêu"
    assert read(previous, "còn con tôi 5 tuổi bị ốm thì mẹ nghỉ được mấy ngày") is None
    assert read(previous, "vậy còn lương 10 triệu thì sao") == previous.replace("7 triệu", "10 triệu")
