"""Reading a letter: the question sentences are found, boilerplate dropped, the story's event kept."""

from __future__ import annotations

import pytest

from bot.letter import is_question, read_letter, split_sentences

FATHER = ("Kính gửi Bảo hiểm xã hội, bố tôi sinh năm 1960, đóng BHXH bắt buộc được 12 năm thì nghỉ việc năm "
          "2015 và bảo lưu. Tháng 3 vừa rồi bố tôi mất vì bệnh. Mẹ tôi năm nay 62 tuổi, làm ruộng. "
          "Vậy gia đình tôi được hưởng chế độ gì? Xin chân thành cảm ơn.")


def test_letter_questions_and_focus_keep_the_event() -> None:
    letter = read_letter(FATHER)
    assert letter.is_letter
    assert letter.questions == ("Vậy gia đình tôi được hưởng chế độ gì?",)
    # The question alone says nothing about a death: the focus must carry the sentence that does.
    assert "mất" in letter.focus and "chế độ gì" in letter.focus
    # Greeting and thanks are gone; the story after "Kính gửi …," is kept.
    assert not any("cảm ơn" in s for s in letter.sentences)
    assert letter.sentences[0].startswith("bố tôi sinh năm 1960")


def test_unaccented_letter_with_two_questions() -> None:
    text = ("chao ad, em nam nay 35 tuoi, da dong bhxh bat buoc 8 nam o cong ty may, thang truoc em nghi viec. "
            "em muon hoi em co duoc huong tro cap that nghiep khong. neu rut bhxh 1 lan thi duoc bao nhieu tien a")
    letter = read_letter(text)
    assert letter.is_letter
    assert len(letter.questions) == 2
    assert "that nghiep" in letter.questions[0] and "1 lan" in letter.questions[1]


@pytest.mark.parametrize("sentence", [
    "Tôi có được hưởng lương hưu không?",
    "xin hoi toi co duoc rut bhxh 1 lan",
    "Mức hưởng bao nhiêu",
    "cho em hỏi thủ tục ở đâu ạ",
    "Trường hợp của tôi như vậy có phải đóng tiếp không",
])
def test_questions_are_recognised(sentence: str) -> None:
    assert is_question(sentence)


@pytest.mark.parametrize("sentence", [
    "Cho em hỏi, bố em đóng BHXH ở công ty được 9 năm thì mất vì bệnh, mẹ em 58 tuổi ở nhà làm ruộng.",
    "Bố tôi đóng BHXH được 12 năm.",
    "Tháng 3 vừa rồi bố tôi không may qua đời.",
    "Em làm công nhân ở Bình Dương từ năm 2010.",
])
def test_story_sentences_are_not_questions(sentence: str) -> None:
    assert not is_question(sentence)


def test_a_short_question_is_not_a_letter() -> None:
    assert not read_letter("rut bhxh 1 lan dc ko").is_letter
    assert not read_letter("Đóng BHXH tự nguyện bao nhiêu một tháng?").is_letter


def test_sentences_split_on_question_marks_and_newlines() -> None:
    assert split_sentences("Một câu. Hai?\nBa! bốn") == ["Một câu.", "Hai?", "Ba!", "bốn"]
