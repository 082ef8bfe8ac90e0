"""Short answer first (issue 17 item 2): the derived short answer, the details, and "Có./Không." only
when a yes/no question was asked (bot/short_answer.py, Engine.answer, Reply.to_json)."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from bot.short_answer import (
    MAX_SHORT_LINES,
    asks_amount,
    derived_short,
    drop_verdict,
    fit_to_question,
    is_yes_no_question,
    short_and_details,
)
from knowledge.schema import load_knowledge

TODAY = dt.date(2026, 12, 3)


@pytest.fixture(scope="module")
def kb():
    return load_knowledge()


# ------------------------------------------------------------------ the derived short answer


def test_first_paragraph_is_the_short_answer_when_it_is_short():
    text = "Được. Bạn có thể dừng đóng bất cứ lúc nào mà không bị phạt.\n\nCần biết:\n- thời gian đã đóng được bảo lưu."
    short, details = short_and_details(text)
    assert short == "Được. Bạn có thể dừng đóng bất cứ lúc nào mà không bị phạt."
    assert details == "Cần biết:\n- thời gian đã đóng được bảo lưu."


def test_long_first_paragraph_gives_its_first_sentence_and_numbers_do_not_end_a_sentence():
    first = ("Mức đóng thấp nhất là 330.000 đồng/tháng từ 01/7/2026. " + "Người thuộc hộ nghèo được hỗ trợ thêm. " * 9)
    text = first.strip() + "\n\nVí dụ: 2.000.000 đồng."
    short, details = short_and_details(text)
    assert short == "Mức đóng thấp nhất là 330.000 đồng/tháng từ 01/7/2026."
    assert details.startswith("Người thuộc hộ nghèo") and details.endswith("Ví dụ: 2.000.000 đồng.")


def test_a_bare_verdict_or_a_list_opening_takes_what_follows():
    assert derived_short("Có.\n\nNgười lao động được nghỉ 5 ngày làm việc khi vợ sinh con.\n\nThêm nữa.") == (
        "Có.\n\nNgười lao động được nghỉ 5 ngày làm việc khi vợ sinh con.")
    short = derived_short("Gia đình được nhận:\n\n1) Trợ cấp mai táng.\n2) Tiền tuất.\n3) Khác.\n\nNộp trong 90 ngày.")
    assert short.startswith("Gia đình được nhận:") and "1) Trợ cấp mai táng." in short


def test_every_entry_has_a_short_answer_with_its_details_losing_nothing(kb):
    longer = 0
    for entry in kb.entries.values():
        text = kb.render_answer(entry, TODAY)
        short, details = short_and_details(text, kb.render_short(entry, TODAY))
        assert short, entry.id
        if entry.short:  # an authored summary: the details are the whole answer
            assert details == text.strip(), entry.id
        else:  # derived: the start of the answer, the rest behind "Xem chi tiết", every word once
            assert (short + " " + details).split() == text.split(), entry.id
            assert len([x for x in short.splitlines() if x.strip()]) <= MAX_SHORT_LINES, entry.id
        longer += len(short) < len(text)
    assert longer >= 0.9 * len(kb.entries)  # nearly every answer has details to fold


# ------------------------------------------------------------------ which questions are yes/no

YES_NO = ["Lương hưu năm nay có tăng không ạ?", "e 19t đi làm công nhân có cần đóng bhxh k",
          "rut bhxh 1 lan dc ko", "hồ sơ của tôi duyệt chưa", "có phải lừa đảo không",
          "nếu rút thì có bị mất gì ko", "đi khám trái tuyến có được hưởng bhyt không nhỉ"]
NOT_YES_NO = ["hộ nghèo đóng bhxh tự nguyện được hỗ trợ bao nhiêu", "nghỉ thai sản được mấy tháng",
              "Con em mới sinh thì làm thẻ bhyt cho bé ở đâu", "tai nạn lao động được bồi thường thế nào",
              "tôi đã đóng 10 năm không liên tục thì được bao nhiêu", "rút bhxh một lần"]


@pytest.mark.parametrize("question", YES_NO)
def test_yes_no_questions(question):
    from retrieval.normalize import normalize_query

    assert is_yes_no_question(normalize_query(question))


@pytest.mark.parametrize("question", NOT_YES_NO)
def test_questions_that_are_not_yes_no(question):
    from retrieval.normalize import normalize_query

    assert not is_yes_no_question(normalize_query(question))


def test_amount_questions():
    assert asks_amount("hộ nghèo được hỗ trợ bao nhiêu") and asks_amount("nghỉ thai sản được mấy tháng")
    assert not asks_amount("làm thẻ bhyt ở đâu")


def test_only_a_bare_verdict_sentence_is_dropped():
    assert drop_verdict("Có. Nhà nước hỗ trợ 50%.") == "Nhà nước hỗ trợ 50%."
    assert drop_verdict("Vẫn còn, nhưng hẹp hơn trước. Luật cho rút khi…") == "Luật cho rút khi…"
    assert drop_verdict("Không đúng với luật hiện hành. Từ 01/7/2025, người làm…") == "Từ 01/7/2025, người làm…"
    # before a condition only the yes goes; "Có, và…", "Có 3 trường hợp" and "Có thể" are kept
    assert drop_verdict("Có, nếu con dưới 7 tuổi thì được nghỉ.") == "Nếu con dưới 7 tuổi thì được nghỉ."
    assert drop_verdict("Có, theo chỉ định của bác sĩ: tối đa 7 ngày.") == "Theo chỉ định của bác sĩ: tối đa 7 ngày."
    for kept in ("Có, và người sử dụng lao động phải trả.", "Có 3 trường hợp. Một là…", "Có thể được. Nếu…"):
        assert drop_verdict(kept) == kept


def test_fit_to_question_keeps_the_verdict_for_yes_no_and_leads_with_the_figure():
    text = ("Có. Nhà nước hỗ trợ một phần tiền đóng cho người thuộc hộ nghèo, cận nghèo và dân tộc thiểu số."
            "\n\nMức hỗ trợ là 50%, tức 165.000 đồng/tháng.")
    assert fit_to_question("hộ nghèo có được hỗ trợ không", text) == (text, "")
    fitted, short = fit_to_question("hộ nghèo được hỗ trợ bao nhiêu", text)
    assert fitted.startswith("Nhà nước hỗ trợ") and short == "Mức hỗ trợ là 50%, tức 165.000 đồng/tháng."
    assert short_and_details(fitted, short) == (short, fitted)  # a lead that is not the start: whole text as details


# ------------------------------------------------------------------ through the engine


def test_engine_answer_carries_short_and_details_rendered_for_the_date(lexical_engine):
    kb = lexical_engine.kb
    entry = next(e for e in kb.entries.values() if "voluntary_min_contribution" in e.answer)
    reply = lexical_engine.entry_reply(entry.id, TODAY)
    assert reply is not None and reply.short and reply.details
    assert reply.text.startswith(reply.short) or kb.render_short(entry, TODAY) == reply.short
    assert "{{" not in reply.short + reply.details
    data = reply.to_json()
    assert data["short"] == reply.short and data["details"] == reply.details
    # the keys existing clients read are unchanged: the whole answer is still "answer"
    assert data["answer"] == reply.full_text() and reply.text in data["answer"]
    for key in ("answered", "entry_id", "topic", "score", "sources", "choices", "kind", "related", "calculator"):
        assert key in data


def test_replies_that_are_not_answers_have_no_short_form(lexical_engine):
    for text in ("xin chào", "cảm ơn", "asdfgh qwerty", "cách nấu phở bò ngon"):
        reply = lexical_engine.ask(text, TODAY)
        assert reply.kind != "answer" and reply.short == "" and reply.details == ""


@pytest.mark.parametrize(("question", "entry_id"), [
    ("hộ nghèo đóng bhxh tự nguyện được nhà nước hỗ trợ bao nhiêu tiền", None),
    ("mức hỗ trợ đóng bhxh tự nguyện cho hộ cận nghèo là bao nhiêu", None),
])
def test_a_figure_question_is_not_answered_with_a_bare_yes(engine, question, entry_id):
    reply = engine.ask(question, TODAY)
    assert reply.kind == "answer", reply.kind
    for opening in ("Có.", "Không.", "Được.", "Vẫn còn"):
        assert not reply.short.startswith(opening) and not reply.text.startswith(opening), reply.short
    assert any(ch.isdigit() for ch in reply.short), reply.short


def test_a_yes_no_question_keeps_its_yes(engine):
    kb = engine.kb
    yes = [e for e in kb.entries.values() if kb.render_answer(e, TODAY).startswith("Có. ")]
    assert yes
    kept = 0
    for entry in yes[:8]:
        reply = engine.ask(entry.question, TODAY)
        if reply.kind == "answer" and reply.entry_id == entry.id and is_yes_no_question(reply.normalized):
            assert reply.text.startswith("Có.") and reply.short.startswith("Có."), entry.id
            kept += 1
    assert kept >= 3


def test_a_picked_choice_is_answered_as_written(lexical_engine):
    """A pick answers the entry's own question, so its verdict stays."""
    kb = lexical_engine.kb
    entry = next(e for e in kb.entries.values() if kb.render_answer(e, TODAY).startswith("Có. "))
    reply = lexical_engine.entry_reply(entry.id, TODAY)
    assert reply is not None and reply.text.startswith("Có.")
    assert dataclasses.replace(reply).short.startswith("Có.")


# Questions a citizen asked in the UX review (section 1) that are not yes/no: whichever entry answers them,
# the reply must not open with a bare "Có." / "Không." / "Được." / "Vẫn còn".
REVIEW_QUESTIONS = ["Con em mới sinh thì làm thẻ bhyt cho bé ở đâu", "tai nạn lao động được bồi thường thế nào",
                    "hộ nghèo đóng bhxh tự nguyện được hỗ trợ bao nhiêu", "Nam đóng bao nhiêu năm thì được lương hưu?",
                    "nghỉ thai sản được mấy tháng", "sinh con được nhận bao nhiêu tiền",
                    "mất việc thì được trợ cấp thất nghiệp bao nhiêu tháng",
                    "lãnh lương hưu qua bưu điện hay atm"]


@pytest.mark.parametrize("question", REVIEW_QUESTIONS)
def test_review_questions_that_are_not_yes_no_get_no_bare_verdict(engine, question):
    from bot.short_answer import _VERDICT, VERDICT_WORDS, sentences

    reply = engine.ask(question, TODAY)
    if reply.kind != "answer":
        pytest.skip(f"{reply.kind}: no answer to check")
    for shown in (reply.short, reply.text):
        first = sentences(shown)[0]
        assert not (_VERDICT.match(first) and len(first.split()) <= VERDICT_WORDS), (question, first)
        assert not shown.startswith(("Có, và", "Có.", "Không.", "Được.")), (question, shown[:60])


def test_two_questions_in_one_message_are_answered_whole(engine):
    """"Xem chi tiết" names one entry, so a reply answering two questions has no short form: both in full."""
    reply = engine.ask("Em đã đóng BHXH bắt buộc 8 năm ở công ty may, tháng trước em nghỉ việc. Em có được hưởng "
                       "trợ cấp thất nghiệp không? Và nếu em muốn rút BHXH một lần thì phải chờ bao lâu?", TODAY)
    assert reply.kind == "answer" and reply.text.startswith("Bạn hỏi 2 ý")  # as tests/test_decision.py
    assert reply.short == "" and reply.details == ""


def test_a_short_answer_showing_an_unconfirmed_figure_says_so(lexical_engine):
    """A reader who never opens the details still learns a figure is not confirmed; a sure short says nothing."""
    kb, on = lexical_engine.kb, dt.date(2026, 12, 3)
    unsure = [e for e in kb.entries.values() if e.short and kb.uncertain_figures(e, on, short=True)]
    sure = [e for e in kb.entries.values() if e.short and not kb.uncertain_figures(e, on, short=True)]
    assert unsure and sure
    assert kb.short_caution(unsure[0], on) in lexical_engine.answer(unsure[0], on).short
    assert "Lưu ý" not in lexical_engine.answer(sure[0], on).short
