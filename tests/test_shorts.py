"""Short answers (issue 17 item 2): the one-to-three-line direct answer a phone shows first."""

import datetime as dt
import re

import pytest

from bhxh.cli import main as cli
from knowledge.schema import MAX_SHORT_CHARS, KnowledgeError, load_knowledge
from tests.test_knowledge import hard_coded_figures

KB = load_knowledge()
ENTRY = {
    "id": "thu-ngan", "topic": "voluntary", "question": "Đóng tự nguyện thấp nhất bao nhiêu?",
    "paraphrases": [f"câu hỏi số {n}" for n in range(6)],
    "answer": "Mức đóng thấp nhất là {{voluntary_min_contribution}}/tháng, tức {{voluntary_rate}} thu nhập.",
    "sources": ["Luật 41/2024/QH15, Điều 31, khoản 2"],
    "effective_from": "2025-07-01", "reviewed_on": "2026-12-01",
}
WITH_SHORT = [e for e in KB.entries.values() if e.short]


def load_with(tmp_path, **change):
    return load_knowledge(tmp_path, extra=[("entries/test.yaml", {**ENTRY, **change})], today=dt.date(2026, 12, 3))


def test_a_short_answer_renders_its_figures(tmp_path):
    kb = load_with(tmp_path, short="Thấp nhất {{voluntary_min_contribution}} mỗi tháng.")
    entry = kb.entries["thu-ngan"]
    assert "{{" not in kb.render_short(entry, dt.date(2026, 12, 3))
    assert "đ" in kb.render_short(entry, dt.date(2026, 12, 3))
    assert kb.lacking_short() == []
    assert load_with(tmp_path).lacking_short()[0].id == "thu-ngan"  # optional: absent is allowed


@pytest.mark.parametrize(
    ("short", "message"),
    [
        ("Thấp nhất {{no_such_figure}}.", "unknown parameter(s) no_such_figure"),
        ("Mức tham chiếu là {{reference_level}}.", "uses parameter(s) the answer does not: reference_level"),
        ("một\nhai\nba\nbốn", "has 4 lines; the limit is 3"),
        ("x" * (MAX_SHORT_CHARS + 1), f"is {MAX_SHORT_CHARS + 1} characters once rendered"),
        ("   ", "must be non-empty text when given"),
    ],
)
def test_a_bad_short_answer_names_the_field(tmp_path, short, message):
    with pytest.raises(KnowledgeError) as err:
        load_with(tmp_path, short=short)
    assert "entry 'thu-ngan': field 'short':" in str(err.value)
    assert message in str(err.value)


def test_kb_check_counts_the_entries_without_one(capsys):
    assert cli(["kb", "check"]) == 0
    out = capsys.readouterr().out
    assert f"{len(KB.lacking_short())} without a short answer" in out


@pytest.mark.parametrize("entry", WITH_SHORT, ids=lambda e: e.id)
def test_short_answers_type_no_regulated_figure_and_render_on_every_date(entry):
    assert hard_coded_figures(entry.short) == []
    for on in (entry.effective_from, dt.date(2026, 6, 30), dt.date(2026, 7, 1), dt.date(2027, 3, 1)):
        if on >= entry.effective_from:
            text = KB.render_short(entry, on)
            assert "{{" not in text and len(text) <= MAX_SHORT_CHARS + 20


def test_every_entry_has_a_short_answer():
    assert [e.id for e in KB.lacking_short()] == []


# A short may open with a bare yes/no word only when the question asks one (issue 17: "Có/Không only
# opens an answer when it is the answer to what was asked").
YES_NO_OPENING = re.compile(r"^(?:Có|Không|Được|Không được|Chưa|Đúng)[.,:;]")
YES_NO_QUESTION = re.compile(r"\b(?:không|chưa|có phải|đúng không)\b", re.I)


def test_the_yes_no_check_can_fail():
    assert YES_NO_OPENING.match("Có. Công đoàn được yêu cầu công ty cung cấp thông tin.")
    assert not YES_NO_QUESTION.search("Công đoàn có giúp được gì khi công ty nợ BHXH?")
    assert not YES_NO_OPENING.match("Không phụ thuộc số năm đóng, gia đình được trợ cấp một lần.")


@pytest.mark.parametrize("entry", WITH_SHORT, ids=lambda e: e.id)
def test_short_answers_are_direct_plain_text(entry):
    short = entry.short
    assert len(short) >= 40, "a bare 'Có.' is not an answer"
    if YES_NO_OPENING.match(short):
        assert YES_NO_QUESTION.search(entry.question), "opens with yes/no but the question does not ask one"
    assert not re.search(r"^\s*(?:[-•*]|\d+[.)])\s", short, re.M), "no lists in a short answer"
    cites_article = re.search(r"Điều \d+.*(?:Luật|Bộ luật|Nghị định)", short)
    assert "Căn cứ" not in short and not cites_article, "sources are shown apart"


def test_a_yes_no_verdict_in_the_answer_opens_the_short_too():
    """An answer that opens "Có." to a yes/no question keeps that verdict first in its short form."""
    verdict = re.compile(r"^(Có|Không|Được|Chưa|Đúng|Không được)\.\s")
    for entry in KB.entries.values():
        found = verdict.match(entry.answer)
        if found and YES_NO_QUESTION.search(entry.question):
            assert entry.short.startswith(found.group(1) + "."), entry.id
