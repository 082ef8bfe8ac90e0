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
    out = subprocess.run([sys.executable, "-m", "bot.cli", "ask", "--json", "--file", str(questions)],
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
