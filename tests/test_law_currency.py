"""Law in force (audit of December 2026): each HIGH finding guarded on the rendered answer,
answers that follow the date asked (Decree 162/2026), and the registry of cited documents."""

import datetime as dt
import re

import pytest

from knowledge.schema import load_knowledge

KB = load_knowledge()
TODAY = dt.date(2026, 12, 3)


def rendered(entry_id: str, on: dt.date = TODAY) -> str:
    entry = KB.entries[entry_id]
    return KB.render_answer(entry, on) + "\n" + KB.caution(entry, on)


# ------------------------------------------------------------------ HIGH findings


def test_compulsory_exclusion_is_limited_to_the_listed_allowances():
    """Decree 158 Art. 3(4): only named allowances exclude; an accident or survivor allowance does not."""
    text = rendered("lm-ai-khong-thuoc-dien-bat-buoc")
    assert "Người đang hưởng lương hưu, trợ cấp BHXH hoặc trợ cấp hằng tháng" not in text
    assert "trợ cấp mất sức lao động" in text
    assert re.search(r"tai nạn lao động[^.]*tuất[^.]*vẫn phải đóng", text)


def test_survivor_allowance_is_not_lost_for_other_income():
    """Law Art. 86(3): only a wage with compulsory insurance, or a pension/allowance ≥ reference level."""
    text = rendered("tt-dieu-kien-tuat-hang-thang")
    assert "không có thu nhập từ mức tham chiếu" not in text
    assert re.search(r"đi làm có lương và đóng BHXH bắt buộc", text)
    assert re.search(r"lương hưu, trợ cấp hằng tháng từ mức tham chiếu \([\d.]+ đồng\) trở lên", text)
    assert "làm ruộng" in text


@pytest.mark.parametrize("entry_id", ["tn2-dieu-kien-huong", "tn2-tu-nghi-viec"])
def test_unemployment_excludes_those_eligible_for_a_pension(entry_id):
    """Law 74/2025 Art. 38(1)(a) per the VSS summary: 'đủ điều kiện hưởng lương hưu', claimed or not."""
    text = rendered(entry_id)
    assert "đủ điều kiện hưởng lương hưu" in text
    assert not re.search(r"(?:không đang|Đang) hưởng lương hưu\.", text)
    # The law text is not held: the answer says so, routes to the hotline, and carries the caution.
    assert "chưa có toàn văn" in text and "1900 9068" in text and "kiểm tra lại" in KB.caution(
        KB.entries[entry_id], TODAY)


def test_second_child_maternity_leave_from_july_2026():
    text = rendered("ts-nghi-sinh-bao-lau")
    assert re.search(r"[Ss]inh con thứ hai: nghỉ 7 tháng", text)
    assert "chưa có toàn văn" in text and "1900 9068" in text
    # Before the Population Law took effect the second child had the ordinary 6 months.
    assert re.search(r"[Ss]inh con thứ hai: nghỉ 6 tháng", rendered("ts-nghi-sinh-bao-lau", dt.date(2026, 6, 15)))


@pytest.mark.parametrize("entry_id", ["ts-nghi-viec-truoc-khi-sinh", "ts-di-lam-som-sau-sinh", "ts-muc-huong-thai-san"])
def test_other_maternity_answers_mention_the_second_child(entry_id):
    text = rendered(entry_id)
    assert re.search(r"con thứ hai[^.;]*7 tháng", text), text
    assert KB.caution(KB.entries[entry_id], TODAY)


def test_husband_leave_for_a_second_child():
    text = rendered("ts-chong-nghi-khi-vo-sinh")
    assert re.search(r"sinh con thứ hai: 10 ngày làm việc", text)
    assert "1900 9068" in text


# ------------------------------------------------------------------ Decree 162/2026: the date asked decides


def test_pension_adjustment_follows_the_date_asked():
    entry = KB.entries["lh-dieu-chinh-tang-luong-huu"]
    june, july = (KB.render_answer(entry, dt.date(2026, 6, 30)), KB.render_answer(entry, dt.date(2026, 7, 1)))
    assert june != july
    assert "tăng 8%" in july and "3.800.000 đồng" in july and "300.000 đồng" in july
    assert "tăng 8%" not in june and "3.800.000" not in june
    # Decree 162/2026 is held (and agrees with Circular 14/2026): no caution; the older figures have one.
    assert KB.caution(entry, dt.date(2026, 7, 1)) == ""
    assert KB.caution(entry, dt.date(2026, 6, 30))


# ------------------------------------------------------------------ the registry of cited documents


def test_a_planted_amendment_flags_the_entries_that_cite_the_article(tmp_path):
    from knowledge.registry import review_flags
    from knowledge.sources import REGISTRY_FILE, load_registry

    text = REGISTRY_FILE.read_text(encoding="utf-8").replace(
        '"158/2025/NĐ-CP": {',
        '"158/2025/NĐ-CP": {changes: [{kind: amended, by: 999/2027/NĐ-CP, in_force: 2027-01-01, articles: [14]}], ')
    planted = tmp_path / "documents.yaml"
    planted.write_text(text, encoding="utf-8")
    registry = load_registry(planted)
    flags = review_flags(KB, dt.date(2027, 1, 2), registry=registry, max_age_days=10_000)
    errors = {f.entry_id for f in flags if f.severity == "error"}
    citing = {e.id for e in KB.entries.values()
              if any(s.startswith("Nghị định 158/2025/NĐ-CP, Điều 14") for s in e.sources)}
    assert citing and errors == citing
    flag = next(f for f in flags if f.severity == "error")
    assert "999/2027/NĐ-CP" in flag.reason and "Điều 14" in flag.reason
    # The real registry flags nothing as an error: every entry was re-checked after the changes noted.
    assert not [f for f in review_flags(KB, TODAY) if f.severity == "error"]


def test_a_replacement_flags_every_citing_entry_and_age_only_warns():
    from knowledge.registry import entry_flags
    from knowledge.sources import REGISTRY, Change, Document

    entry = next(e for e in KB.entries.values() if any("161/2026/NĐ-CP" in s for s in e.sources))
    doc = REGISTRY["161/2026/NĐ-CP"]
    replaced = Document(doc.number, doc.title, doc.text, doc.in_force, (
        Change("replaced", "1/2027/NĐ-CP", dt.date(2027, 7, 1), dt.date(2027, 5, 1), None),))
    flags = entry_flags(entry, dt.date(2027, 5, 2), registry={**REGISTRY, doc.number: replaced}, max_age_days=30)
    assert [f.severity for f in flags].count("error") == 1
    assert any(f.severity == "warning" and "review age 30" in f.reason for f in flags)
