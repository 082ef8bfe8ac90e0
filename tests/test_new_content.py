"""The occupational topic, the audit's missing questions and the situational entries.

These entries live in occupational.yaml, supplementary.yaml and situations.yaml; the file name
does not set the topic, so several checks below are about where each entry lands and what it
may claim when the governing text is not held.
"""

from __future__ import annotations

import datetime as dt
import re

import pytest

from knowledge.params import default_table
from knowledge.schema import load_knowledge
from knowledge.sources import DOCUMENTS, parse_citation
from knowledge.topics import MENU_ORDER, TOPICS

KB = load_knowledge()
TABLE = default_table()
NEW_FILES = ("occupational.yaml", "supplementary.yaml", "situations.yaml")
NEW = [e for e in KB.entries.values() if e.file.endswith(NEW_FILES)]
ROUTE = "1900 9068"
# words that say plainly a text was not checked
HEDGES = ("chưa có toàn văn", "chưa có văn bản", "chưa đối chiếu", "không phải toàn văn",
          "chưa có bản chính thức", "chưa thấy hướng dẫn")


def test_the_occupational_topic_exists_and_is_offered_in_the_menu():
    assert TOPICS["occupational"] == "Tai nạn lao động, bệnh nghề nghiệp"
    assert "occupational" in MENU_ORDER
    entries = KB.by_topic()["occupational"]
    assert len(entries) >= 15
    assert sum(e.id.startswith("tnld-") for e in entries) >= 15


def test_there_are_at_least_forty_situations_spread_over_topics():
    situations = [e for e in KB.entries.values() if e.id.startswith("th-")]
    assert len(situations) >= 40
    assert {e.topic for e in situations} >= {"survivors", "pension", "contribution_rates", "occupational"}


@pytest.mark.parametrize("entry", [e for e in NEW if e.topic == "occupational"], ids=lambda e: e.id)
def test_occupational_answers_rest_on_the_osh_law_or_law_41(entry):
    numbers = {parse_citation(s).number for s in entry.sources}
    assert numbers & {"84/2015/QH13", "41/2024/QH15", "162/2026/NĐ-CP"}, entry.sources


@pytest.mark.parametrize("entry", NEW, ids=lambda e: e.id)
def test_entries_resting_on_unheld_texts_say_so_and_route_to_the_hotline(entry):
    """An entry that cites a document we do not hold must not sound certain about it."""
    unheld = [s for s in entry.sources if DOCUMENTS[parse_citation(s).number][1] is None]
    if not unheld:
        return
    answer = entry.answer.lower()
    assert ROUTE in entry.answer, (entry.id, unheld)
    assert any(h in answer for h in HEDGES), (entry.id, unheld)


def test_degree_thresholds_fit_together():
    on = dt.date(2026, 12, 3)
    low, top, monthly = (TABLE.value(n, on) for n in ("oa_min_degree", "oa_lump_sum_max_degree",
                                                       "oa_monthly_min_degree"))
    assert low < top and monthly == top + 1


def one_time_allowance_in_reference_levels(degree: int, on: dt.date) -> float:
    """The first part of the OSH Law Art. 48(2) one-time allowance, in multiples of the base wage."""
    base, step = TABLE.value("oa_lump_sum_base_multiple", on), TABLE.value("oa_lump_sum_step_multiple", on)
    return base + (degree - TABLE.value("oa_min_degree", on)) * step


def test_the_one_time_allowance_rows_give_the_statutory_scale():
    on = dt.date(2026, 12, 3)
    assert one_time_allowance_in_reference_levels(5, on) == 5
    assert one_time_allowance_in_reference_levels(30, on) == 17.5  # 5 + 25 × 0.5 (Art. 48(2)(a))


@pytest.mark.parametrize("name", sorted(n for n in TABLE.parameters if n.startswith("oa_")))
def test_every_occupational_parameter_cites_an_osh_or_law_41_article(name):
    for period in TABLE.parameters[name].periods:
        for part in period.basis.split(";"):
            part = part.strip()
            if not part.startswith(("Luật", "Nghị định")):  # "Điều 46, khoản 1" continues the previous
                continue
            citation = parse_citation(part)
            assert citation.number in {"84/2015/QH13", "41/2024/QH15"}
            assert citation.article is not None


def test_the_occupational_answers_follow_the_reference_level_on_the_date_asked():
    entry = KB.entries["tnld-tro-cap-mot-lan"]
    assert "2.340.000" in KB.render_answer(entry, dt.date(2026, 6, 30))
    assert "2.530.000" in KB.render_answer(entry, dt.date(2026, 7, 1))


def test_the_pre_1995_floor_is_dated_from_decree_162():
    entry = KB.entries["lh-nghi-huu-truoc-1995-muc-moi"]
    assert entry.effective_from == dt.date(2026, 7, 1)
    text = KB.render_answer(entry, dt.date(2026, 7, 1))
    assert "3.800.000" in text and "300.000" in text and "8%" in text


def test_the_audit_exclusion_is_not_repeated():
    """Audit HIGH 1: a monthly occupational allowance does not take a worker out of compulsory BHXH."""
    text = KB.entries["tnld-dang-huong-hang-thang-di-lam"].answer
    assert "vẫn phải được đóng BHXH bắt buộc" in text
    assert any("Điều 3, khoản 4" in s for s in KB.entries["tnld-dang-huong-hang-thang-di-lam"].sources)


def test_farm_income_does_not_cost_a_parent_the_monthly_allowance():
    """Audit HIGH 2: only a wage with compulsory BHXH, or a pension at or above the reference level, excludes."""
    text = KB.entries["th-cha-me-huong-tuat-cua-con"].answer
    assert "không làm mất quyền" in text
    assert "{{reference_level}}" in text


@pytest.mark.parametrize("entry", NEW, ids=lambda e: e.id)
def test_related_entries_are_not_only_self_made(entry):
    """Each new entry links at least one entry, and the links resolve (schema checks existence)."""
    assert entry.related, entry.id
    assert all(r in KB.entries for r in entry.related)


@pytest.mark.parametrize(("text", "expected"), [
    # written for this test, not taken from any entry or evaluation file
    ("công nhân bị máy cán dập tay trong ca làm thì công ty với bảo hiểm phải trả những gì", "occupational"),
    ("giam dinh ra 40% do tai nan lao dong thi moi thang dc bn", "occupational"),
    ("ông xã mất lúc đang bảo lưu 16 năm đóng bảo hiểm, con 10 tuổi có tiền tuất hàng tháng không", "survivors"),
])
def test_questions_about_the_new_cases_reach_their_topic(engine, text, expected):
    reply = engine.ask(text)
    topics = {reply.topic} | {engine.kb.entries[c.entry_id].topic for c in reply.choices}
    assert expected in topics, (reply.kind, reply.entry_id)


def test_no_new_answer_sends_people_to_a_district_office():
    for entry in NEW:
        assert not re.search(r"cấp huyện|BHXH huyện|quận, huyện", entry.answer), entry.id
