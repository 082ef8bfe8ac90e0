"""The engine end to end with the real knowledge base and the real model."""

import json
import subprocess
import sys

import pytest

from bot.reply import OUTCOME
from knowledge.sources import parse_citation


@pytest.mark.parametrize(("text", "topics"), [
    ("rut bhxh 1 lan dc ko", {"lump_sum", "new_law"}),
    ("đóng bhxh tự nguyện thấp nhất bao nhiêu tiền 1 tháng", {"voluntary"}),
    ("bao nhieu tuoi thi duoc nghi huu", {"pension"}),
    ("thai san dc bao nhieu tien vay ad", {"maternity"}),
    ("cty ko dong bhxh cho nhan vien thi bi phat the nao", {"penalties"}),
    ("Kính gửi BHXH Việt Nam, tôi tên là Trần Văn Bình, CCCD 012345678901, năm nay 52 tuổi, đã đóng bảo hiểm "
     "bắt buộc 12 năm rồi nghỉ việc ở công ty. Nay tôi muốn hỏi có nên rút một lần hay đóng tiếp tự nguyện "
     "để sau này có lương hưu? Tôi xin cảm ơn.", {"lump_sum", "voluntary", "pension"}),
])
def test_questions_reach_the_right_topic(engine, text, topics):
    reply = engine.ask(text)
    assert reply.kind in ("answer", "choices")
    assert reply.topic in topics or {engine.kb.entries[c.entry_id].topic for c in reply.choices} & topics
    if reply.kind == "answer":
        # Every source is a well-formed citation of a registered document (with its article where we hold the text).
        assert reply.sources and all(parse_citation(s) for s in reply.sources)


@pytest.mark.parametrize("text", [
    "giá vàng hôm nay bao nhiêu một chỉ",
    "mua bảo hiểm nhân thọ của công ty nào tốt",
    "bảo hiểm xe máy bắt buộc giá bao nhiêu",
    "lương hưu ở Nhật Bản được bao nhiêu yên",
    "thời tiết Hà Nội ngày mai",
])
def test_off_topic_questions_are_declined(engine, text):
    reply = engine.ask(text)
    assert reply.outcome == "declined", (reply.kind, reply.entry_id)
    assert "1900 9068" in reply.text


@pytest.mark.parametrize(("text", "kind"), [
    ("xin chào", "smalltalk"), ("chao ad", "smalltalk"), ("cảm ơn bạn nhiều", "smalltalk"), ("/help", "smalltalk"),
    ("", "invalid"), ("   \n ", "invalid"), ("😀😀🙏", "invalid"), ("???", "invalid"), (b"\x00\xff", "invalid"),
])
def test_greetings_and_empty_messages_do_not_hit_retrieval(engine, text, kind):
    reply = engine.ask(text)
    assert reply.kind == kind and reply.text


def test_html_is_stripped_and_long_letters_are_cut_with_a_notice(engine):
    reply = engine.ask("<script>alert(1)</script><b>rút bhxh một lần</b> " + "rất dài " * 600)
    assert "Tin nhắn của bạn dài quá" in reply.notice
    assert "<script>" not in reply.full_text()


@pytest.mark.parametrize("text", ["hồ sơ thai sản của em đã duyệt chưa ạ", "tôi đã đóng được bao nhiêu tháng rồi"])
def test_personal_cases_get_the_rule_and_a_way_to_check(engine, text):
    reply = engine.ask(text)
    assert reply.answered
    assert "VssID" in reply.full_text() and "1900 9068" in reply.full_text()


def test_calculation_requests_show_money(engine):
    reply = engine.ask("tôi hộ cận nghèo chọn mức 2 triệu thì đóng bao nhiêu")
    assert reply.kind == "calculator"
    assert "440.000 đồng" in reply.text and "132.000 đồng" in reply.text and "308.000 đồng" in reply.text


def test_answer_renders_figures_for_the_date_asked(engine):
    import datetime as dt

    entry = next(e for e in engine.kb.entries.values() if "{{voluntary_income_ceiling}}" in e.answer)
    before = engine.entry_reply(entry.id, dt.date(2026, 6, 30))
    after = engine.entry_reply(entry.id, dt.date(2026, 7, 1))
    assert "46.800.000" in before.text and "50.600.000" in after.text


def test_lexical_only_engine_still_answers(lexical_engine):
    assert not lexical_engine.index.has_dense
    reply = lexical_engine.ask("đóng bảo hiểm xã hội tự nguyện mức thấp nhất")
    assert reply.kind in ("answer", "choices") and reply.topic == "voluntary"
    assert lexical_engine.ask("giá vàng hôm nay").outcome == "declined"


def test_every_reply_kind_has_an_outcome():
    from typing import get_args

    from bot.reply import Kind, Outcome, Reply

    # Iterate over Kind itself, not OUTCOME's keys: a new kind missing from OUTCOME must fail here.
    for kind in get_args(Kind):
        assert Reply(kind, "x").outcome in get_args(Outcome), kind
    assert set(OUTCOME) == set(get_args(Kind))


def test_cli_ask_json_file_prints_one_object_per_line(tmp_path):
    questions = tmp_path / "q.txt"
    questions.write_text("rut bhxh 1 lan dc ko\n\ngiá vàng hôm nay\nxin chào\n", encoding="utf-8")
    out = subprocess.run([sys.executable, "-m", "bhxh.cli", "ask", "--json", "--file", str(questions)],
                         capture_output=True, text=True, check=True, timeout=300).stdout
    rows = [json.loads(line) for line in out.splitlines()]
    assert len(rows) == 3
    for row in rows:
        assert {"answered", "answer", "entry_id", "topic", "score", "sources", "choices"} <= set(row)
    assert rows[1]["answered"] is False and rows[1]["entry_id"] is None


@pytest.mark.parametrize("text", ["rut bhxh 1 lan dc ko", "rút bảo hiểm 1 lần được ko"])
def test_the_most_common_question_leads_with_who_may_still_withdraw(engine, text):
    reply = engine.ask(text)
    first = reply.entry_id if reply.kind == "answer" else reply.choices[0].entry_id
    assert first == "ml-ai-con-duoc-rut-mot-lan", reply


def test_latency_bench_reports_short_questions_and_letters_apart(lexical_engine):
    from bot.evaluation import bench

    letter = ("Kính gửi BHXH, bố tôi đóng bảo hiểm 12 năm rồi nghỉ việc, tháng trước bố tôi mất. "
              "Mẹ tôi 62 tuổi. Gia đình tôi được hưởng chế độ gì?")
    report = bench(lambda: lexical_engine, {"short questions": ["rút bhxh 1 lần", "lương hưu tính thế nào"],
                                            "letters": [letter]}, repeats=2)
    assert "short questions, each the first time (2 calls)" in report
    assert "short questions, repeated (2 calls)" in report
    assert "letters, each the first time (1 calls)" in report


@pytest.mark.parametrize("text", ["asdfgh", "qwerty zxcvb", "con mèo nhà tôi bị ốm"])
def test_gibberish_and_everyday_text_get_honest_doubt_not_a_menu_or_an_answer(engine, text):
    reply = engine.ask(text)
    assert reply.outcome == "declined" and not reply.choices, (reply.kind, reply.entry_id)
    assert "1900 9068" in reply.text


def test_an_entry_that_does_not_stand_out_gets_a_short_not_sure_menu(engine):
    import datetime as dt

    from bot.engine import Candidate, Query, Thresholds

    def candidate(entry_id: str, fused: float, learned: float = 0.1) -> Candidate:
        return Candidate(entry_id, fused, lexical=1.0, dense=0.95, coverage=0.5, learned=learned)

    t = Thresholds(doubt_margin=0.05, doubt_learned=0.2)
    ranking = [candidate("a", 0.90), candidate("b", 0.87), candidate("c", 0.70)]
    decision = engine.classify(ranking, t)
    assert decision.kind == "choices" and decision.doubtful
    assert [c.entry_id for c in decision.entries] == ["a", "b", "c"]
    # It stands out from the runner-up, or the classifier is sure of it: answered.
    assert engine.classify([candidate("a", 0.93), *ranking[1:]], t).kind == "answer"
    assert engine.classify([candidate("a", 0.90, learned=0.6), *ranking[1:]], t).kind == "answer"
    first_three = list(engine.kb.entries)[:3]
    real_ranking = [candidate(entry_id, c.fused) for entry_id, c in zip(first_three, ranking, strict=True)]
    reply = engine.decide(Query.read("x"), real_ranking, dt.date(2026, 12, 3), t)
    assert reply.kind == "choices" and reply.text.startswith("Tôi chưa chắc") and len(reply.choices) == 3


@pytest.mark.parametrize(("letter", "entry"), [
    ("Bố tôi nghỉ hưu được 2 năm thì mất, đang hưởng lương hưu 6 triệu.", "th-chet-khi-moi-nghi-huu"),
    ("Chồng tôi nghỉ việc năm 2020, đang bảo lưu 12 năm đóng BHXH thì mất.", "th-chet-khi-dang-bao-luu"),
    ("Bố em đóng BHXH ở công ty được 9 năm thì mất vì bệnh.", "th-chet-khi-dang-dong-chua-du-15-nam"),
    ("Chồng tôi đang đi làm, đóng BHXH được 20 năm thì qua đời vì bệnh.", "th-chet-khi-dang-dong-du-15-nam"),
    ("Em gái tôi vào làm công nhân, tham gia BHXH được 7 tháng thì mất vì bệnh.", "th-chet-khi-moi-dong-duoi-12-thang"),
    ("Anh tôi đóng BHXH bắt buộc 1 năm 2 tháng thì qua đời.", "th-chet-khi-dang-dong-chua-du-15-nam"),
    ("Bố tôi đóng BHXH 10 năm, nghỉ hưu chưa? Chưa, bố tôi vẫn khỏe.", None),
])
def test_a_death_letters_facts_name_the_situation_that_applies(letter, entry):
    from bot.engine import Engine
    from knowledge.facts import extract_facts

    assert Engine.situation_entry(extract_facts(letter)) == entry


@pytest.mark.parametrize(("text", "declined"), [
    ("Làm 6 năm rồi nghỉ việc thì công ty có phải trả trợ cấp thôi việc không?", True),
    ("Đang nghỉ thai sản mà công ty cho nghỉ việc thì có được trợ cấp mất việc làm không?", True),
    ("Nghỉ việc nhận trợ cấp thôi việc rồi có được hưởng trợ cấp thất nghiệp nữa không?", False),
])
def test_severance_pay_is_labour_law_unless_an_insurance_benefit_is_asked_too(engine, text, declined):
    reply = engine.ask(text)
    assert (reply.kind == "out_of_scope") == declined, (reply.kind, reply.entry_id)


@pytest.mark.parametrize("text", [
    "Con vừa nhận tin: 'BHXH thông báo bạn được hoàn tiền đóng thừa 2.450.000đ, bấm vào http://bhxh-hoantien.top/nhan "
    "để nhận trước 17h' có thật không ạ?",
    "Chuc mung! Ban du d!eu k!en nhan h0 tr0 t1en tu quy BHXH, truy cap vssid-nhantien.xyz de kich hoat",
    "me em nhan dc tin nhan lay tien tro cap qua bit.ly/3abcd, qua han mat quyen loi, co phai lua dao k",
])
def test_a_forwarded_message_offering_money_behind_a_link_gets_the_scam_warning(engine, text):
    from bot.engine import SCAM_LINK_ENTRY

    reply = engine.ask(text)
    assert (reply.kind, reply.entry_id) == ("answer", SCAM_LINK_ENTRY)


@pytest.mark.parametrize("text", [
    "Tra cứu quá trình đóng trên https://baohiemxahoi.gov.vn để nhận tiền một lần được không?",
    "Đã đăng nhập VssID rồi thì nhận tiền trợ cấp thất nghiệp ở đâu?",
])
def test_the_states_own_site_or_no_link_is_not_a_scam(engine, text):
    from bot.engine import SCAM_LINK_ENTRY

    assert engine.ask(text).entry_id != SCAM_LINK_ENTRY


@pytest.mark.parametrize(("text", "entry_id"), [
    ("bố em đóng BHXH 9 năm thì mất, gia đình em được hưởng gì ạ?", "th-chet-khi-dang-dong-chua-du-15-nam"),
    ("chồng tôi đóng bhxh 20 năm thì mất, tôi được hưởng gì", "th-chet-khi-dang-dong-du-15-nam"),
])
def test_a_short_death_question_gets_the_situation_its_facts_name(engine, text, entry_id):
    """As for letters: who died, and after how many years, decide the rule (not the nearest wording)."""
    reply = engine.ask(text)
    assert (reply.kind, reply.entry_id) == ("answer", entry_id)


@pytest.mark.parametrize("text", ["2", "ok ạ", "???"])
def test_a_message_with_no_content_word_is_not_declined_as_another_field(engine, text):
    """"2" sent outside a menu names no subject: the bot says it is not sure (and how to ask), it does not
    tell the person their question belongs to education or taxes, and no off-topic signal is logged."""
    reply = engine.ask(text)
    assert reply.kind in ("not_sure", "smalltalk", "invalid"), (reply.kind, reply.text[:80])
