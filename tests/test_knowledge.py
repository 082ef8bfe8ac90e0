"""The knowledge base: valid, complete, sourced, and honest about its figures."""

import datetime as dt
import json
import re
from pathlib import Path

import pytest
import yaml

from bhxh.cli import main as cli
from knowledge.params import PLACEHOLDER, default_table
from knowledge.schema import KnowledgeError, load_knowledge
from knowledge.sources import DOCUMENTS, citation_problem, held_articles, parse_citation
from retrieval.normalize import fold_accents

KB = load_knowledge()
ON = dt.date(2026, 11, 21)

MINIMUM = {
    "voluntary": 20, "pension": 20, "lump_sum": 15, "penalties": 15, "new_law": 15, "social_pension": 8,
    "contribution_rates": 5, "maternity": 5, "sickness": 5, "unemployment": 5, "survivors": 5,
    "health_insurance": 5, "procedures": 5, "scams": 5,
}
TEEN = re.compile(r"\b(?:ko|k|hok|hong|dc|đc|j|bn|ntn|bhxh|bhyt|bhtn|mik|mk|e|z|v|r|nha|ak|ad)\b", re.I)


def test_kb_check_passes(capsys):
    assert cli(["kb", "check"]) == 0
    assert "OK:" in capsys.readouterr().out


def test_coverage_per_topic(capsys):
    assert cli(["kb", "stats", "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["entries"] >= 180
    for topic, minimum in MINIMUM.items():
        assert stats["topics"][topic]["entries"] >= minimum, topic


@pytest.mark.parametrize("entry", KB.entries.values(), ids=lambda e: e.id)
def test_paraphrases_sound_like_people(entry):
    assert len(entry.paraphrases) >= 6
    casual = [p for p in entry.paraphrases if fold_accents(p) == p or TEEN.search(p)]
    assert len(casual) >= 2, "needs ≥ 2 paraphrases without diacritics or in teen-code"
    assert any(len(p) >= 140 for p in entry.paraphrases), "needs a long letter-style paraphrase"


@pytest.mark.parametrize("entry", KB.entries.values(), ids=lambda e: e.id)
def test_answers_are_chat_sized_and_render_on_every_date(entry):
    for on in (entry.effective_from, dt.date(2026, 6, 30), dt.date(2026, 7, 1), ON, dt.date(2027, 3, 1)):
        if on < entry.effective_from:
            continue
        text = KB.render_answer(entry, on) + KB.caution(entry, on)
        assert len(text) <= 1500 + 300
        assert "{{" not in text


# ------------------------------------------------------------------ regulated figures


# Round amounts that recur in worked examples with another meaning (3% × 10 million = 300.000 đồng;
# a day of sick pay); the pension supplement of Decree 162/2026 is rendered by name where meant.
COINCIDENTAL = {"pension_supplement_pre_1995"}


def hard_coded_figures(template: str) -> list[str]:
    """Figures owned by the parameter table that an answer types instead of {{name}}."""
    text = PLACEHOLDER.sub(" ", template)
    table, found = default_table(), []
    for name in table.names() - COINCIDENTAL:
        kind = table.kind(name)
        for on in (dt.date(2025, 7, 1), dt.date(2026, 3, 1), ON, dt.date(2027, 3, 1)):
            try:
                value = table.value(name, on)
            except ValueError:
                continue
            if kind == "money" and value >= 100_000:
                written = f"{round(value):,}".replace(",", ".")
                if re.search(rf"(?<![\d.]){re.escape(written)}(?![\d])", text):
                    found.append(f"{name}={written}")
            elif kind == "percent" and value not in (1, 2, 3, 5, 10):  # tiny percents recur in other senses
                written = table.format(name, on)
                if re.search(rf"(?<![\d,.]){re.escape(written)}", text):
                    found.append(f"{name}={written}")
            elif kind == "age_months":
                written = table.format(name, on)
                if re.search(rf"{re.escape(written)}(?!\s*\d+\s*tháng)", text):
                    found.append(f"{name}={written}")
    return sorted(set(found))


def test_the_hard_coding_check_can_fail():
    found = hard_coded_figures("Mức tham chiếu là 2.530.000 đồng, đóng 22% thu nhập, nữ nghỉ hưu ở tuổi 57 tuổi")
    assert {"reference_level=2.530.000", "voluntary_rate=22%", "retirement_age_women=57 tuổi"} <= set(found)
    assert hard_coded_figures("Mức tham chiếu là {{reference_level}}, đóng {{voluntary_rate}}") == []


@pytest.mark.parametrize("entry", KB.entries.values(), ids=lambda e: e.id)
def test_no_answer_hard_codes_a_regulated_figure(entry):
    assert hard_coded_figures(entry.answer) == []


def test_changing_a_parameter_changes_the_answers(tmp_path):
    params = tmp_path / "parameters"
    params.mkdir()
    for f in Path("knowledge/parameters").glob("*.yaml"):
        text = f.read_text(encoding="utf-8")
        if f.name == "core.yaml":  # a new decree: one line
            text = text.replace("- {value: 2530000, from: 2026-07-01,",
                                "- {value: 2530000, from: 2026-07-01, to: 2026-12-31, basis: x}\n"
                                "    - {value: 2800000, from: 2027-01-01,")
        (params / f.name).write_text(text, encoding="utf-8")
    from knowledge.params import ParameterTable

    kb = load_knowledge(params=ParameterTable.load(params))
    entry = next(e for e in kb.entries.values() if "{{reference_level}}" in e.answer)
    assert "2.800.000" in kb.render_answer(entry, dt.date(2027, 2, 1))
    assert "2.530.000" in kb.render_answer(entry, dt.date(2026, 11, 1))
    assert "2.340.000" in kb.render_answer(entry, dt.date(2026, 3, 1))


# ------------------------------------------------------------------ confidence


def test_low_confidence_parameters_are_never_rendered():
    table = default_table()
    for entry in KB.entries.values():
        for name in PLACEHOLDER.findall(entry.answer):
            assert table.confidence(name, ON) != "low", (entry.id, name)


def test_medium_confidence_figures_come_with_a_caution():
    entry = next(e for e in KB.entries.values() if "{{support_near_poor_amount}}" in e.answer)
    assert "support_near_poor_amount" in KB.uncertain_figures(entry, ON)
    assert "kiểm tra lại" in KB.caution(entry, ON)
    plain = next(e for e in KB.entries.values() if not KB.uncertain_figures(e, ON))
    assert KB.caution(plain, ON) == ""


@pytest.mark.parametrize(
    ("pattern", "why"),
    [
        (r"0,3\s*%", "reduced 0.3% accident rate: from memory only (facts-bhxh §7)"),
        (r"(?<![\d.])(?:540|600)\.000(?![.\d])", "draft social-pension increase: not in force"),
    ],
)
def test_low_confidence_facts_are_left_out_or_hedged(pattern, why):
    hedges = ("dự thảo", "chưa", "tin đồn", "không đúng", "kiểm tra", "thông tin hiện có")
    for entry in KB.entries.values():
        for m in re.finditer(pattern, entry.answer):
            window = entry.answer[max(0, m.start() - 250): m.end() + 250].lower()
            assert any(h in window for h in hedges), f"{entry.id}: {why}"


# ------------------------------------------------------------------ citations against the legal texts

def cited():
    for entry in KB.entries.values():
        for source in entry.sources:
            c = parse_citation(source)
            if DOCUMENTS[c.number][1] is not None:
                yield pytest.param(entry.id, c, id=f"{entry.id}:{source}")


@pytest.mark.parametrize(("entry_id", "citation"), list(cited()))
def test_cited_article_and_clause_exist(entry_id, citation, shared_dir):
    assert citation_problem(citation, shared_dir / "legal") is None


def test_the_citation_check_reads_the_code_compilations(shared_dir):
    """The Labour Code and the OSH Law are held as pháp điển: articles found by their source note."""
    legal = shared_dir / "legal"
    labour = parse_citation("Bộ luật Lao động 45/2019/QH14, Điều 139, khoản 4")
    assert citation_problem(labour, legal) is None
    assert "no khoản 9" in citation_problem(parse_citation("Bộ luật Lao động 45/2019/QH14, Điều 139, khoản 9"),
                                            legal)
    assert "no Điều 250" in citation_problem(parse_citation("Bộ luật 45/2019/QH14, Điều 250"), legal)
    (osh,) = held_articles("84/2015/QH13", legal)
    assert "tai nạn lao động" in osh[38] and len(osh) >= 90
    # A guidance decree interleaved in the compilation is not mistaken for the law itself.
    (code,) = held_articles("45/2019/QH14", legal)
    assert "06 tháng" in code[139] and "tuổi nghỉ hưu" in code[169].lower()


def test_penal_code_citations_are_214_to_216():
    for entry in KB.entries.values():
        for source in entry.sources:
            c = parse_citation(source)
            if c.number == "100/2015/QH13":
                assert c.article in (214, 215, 216), source


# ------------------------------------------------------------------ validation messages


def write(tmp_path: Path, name: str, records) -> Path:
    d = tmp_path / "entries"
    d.mkdir(exist_ok=True)
    (d / name).write_text(records if isinstance(records, str) else yaml.safe_dump(records, allow_unicode=True),
                          encoding="utf-8")
    return d


GOOD = {
    "id": "vi-du", "topic": "voluntary", "question": "Câu hỏi?", "paraphrases": [f"cách hỏi {i}" for i in range(6)],
    "answer": "Trả lời {{voluntary_rate}}.", "sources": ["Luật 41/2024/QH15, Điều 36, khoản 1"],
    "effective_from": "2025-07-01", "reviewed_on": "2026-11-21",
}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"topic": "weather"}, "field 'topic': unknown topic"),
        ({"sources": []}, "field 'sources': is required"),
        ({"sources": ["Luật 41/2024/QH15"]}, "must name the article"),
        ({"sources": ["Nghị định 999/2030/NĐ-CP, Điều 1"]}, "unknown document"),
        ({"related": ["khong-co"]}, "field 'related': unknown entry 'khong-co'"),
        ({"answer": "x" * 1600}, "field 'answer': is 1600 characters"),
        ({"answer": "Mức {{muc_bia}}"}, "field 'answer': unknown parameter(s) muc_bia"),
        ({"paraphrases": ["một"]}, "field 'paraphrases': has 1, needs at least 6"),
        ({"effective_from": "hôm qua"}, "field 'effective_from': must be a date"),
        ({"colour": "red"}, "field 'colour': unknown field"),
    ],
)
def test_validation_names_file_entry_and_field(tmp_path, change, message):
    d = write(tmp_path, "voluntary.yaml", [{**GOOD, **change}])
    with pytest.raises(KnowledgeError) as err:
        load_knowledge(d)
    problem = "\n".join(err.value.problems)
    assert "entries/voluntary.yaml: entry 'vi-du'" in problem and message in problem


def test_duplicate_ids_and_bad_yaml_are_reported(tmp_path):
    d = write(tmp_path, "a.yaml", [GOOD])
    write(tmp_path, "b.yaml", [GOOD])
    write(tmp_path, "c.yaml", "- id: [unclosed")
    with pytest.raises(KnowledgeError) as err:
        load_knowledge(d)
    text = "\n".join(err.value.problems)
    assert "field 'id': duplicate id" in text and "entries/c.yaml: invalid YAML" in text


def test_answers_carry_no_markdown_emphasis():
    """Channels send answers as plain text (Zalo) or escaped HTML (Telegram): "**" would show as typed."""
    kb = load_knowledge()
    marked = [e.id for e in kb.entries.values() if re.search(r"\*\*|__", e.answer + e.details)]
    assert not marked, marked
