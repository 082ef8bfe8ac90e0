"""knowledge/legal_texts.py: reading the legal texts a deployment provides, lookup by citation in the
spellings people type, search by words. A small made-up folder tests the parsing without external data;
the tests on the real texts use ../shared/legal and skip when it is absent."""

from __future__ import annotations

from pathlib import Path

import pytest

from knowledge import legal_texts
from knowledge.legal_texts import NO_TEXTS, LegalLibrary, parse_reference
from knowledge.schema import load_knowledge
from knowledge.sources import REGISTRY, parse_citation

# A made-up decree in the layout of the real files (not a legal text): a quoted article inside an
# amending article, chapters, a signature block and an appendix that must not end up in any article.
MADE_UP = """\
CHÍNH PHỦ
Số: 158/2025/NĐ-CP | Hà Nội, ngày 25 tháng 6 năm 2025

NGHỊ ĐỊNH
Chương I
QUY ĐỊNH CHUNG
Điều 1. Phạm vi điều chỉnh
Nghị định này quy định việc thử nghiệm
tra cứu (dòng bị ngắt như bản OCR).
12
Điều 2. Tiền lương thử nghiệm
1. Tiền lương thử nghiệm gồm:
a) mức lương;
b) phụ cấp lương.
2. Chuẩn hộ nghèo thử nghiệm dùng cho người tham gia tự nguyện.
3. Bộ trưởng hướng dẫn Điều này.
Chương II
ĐIỀU KHOẢN THI HÀNH
**Điều 3. Sửa đổi nghị định khác**
1. Sửa đổi Điều 39 như sau:
Điều 39. Điều được trích trong một điều sửa đổi
1. Nội dung trích dẫn.
2. Nghị định này có hiệu lực từ ngày 01 tháng 7 năm 2025.
Nơi nhận:
- Như trên.
PHỤ LỤC I
Điều 1. Mẫu quyết định trong phụ lục
"""


@pytest.fixture
def made_up(tmp_path: Path) -> LegalLibrary:
    folder = tmp_path / "legal"
    folder.mkdir()
    (folder / "nd-thu.md").write_text(MADE_UP, encoding="utf-8")
    (folder / "README.md").write_text("# not a document\n", encoding="utf-8")
    (folder / "ghi-chu.md").write_text("Một ghi chú không có số hiệu.\n", encoding="utf-8")
    return LegalLibrary(folder)


@pytest.fixture(scope="module")
def real(shared_dir: Path) -> LegalLibrary:
    folder = shared_dir / "legal"
    if not folder.is_dir():
        pytest.skip("../shared/legal is absent")
    return legal_texts.library(folder)


def test_no_texts_installed_gives_a_clear_message(tmp_path, monkeypatch):
    monkeypatch.delenv("BHXH_LEGAL_DIR", raising=False)
    assert legal_texts.legal_dir() is None
    empty = legal_texts.library()
    assert not empty and empty.documents == {}
    result = empty.lookup("Điều 70 Luật 41/2024")
    assert result.message == NO_TEXTS and not result.found
    assert "chưa được cài văn bản" in NO_TEXTS and "1900 9068" in NO_TEXTS
    monkeypatch.setenv("BHXH_LEGAL_DIR", str(tmp_path / "missing"))
    assert legal_texts.library().lookup("điều 70").message == NO_TEXTS


def test_made_up_decree_is_split_into_articles_and_clauses(made_up):
    assert list(made_up.documents) == ["158/2025/NĐ-CP"]
    document = made_up.documents["158/2025/NĐ-CP"]
    assert document.name == "Nghị định 158/2025/NĐ-CP" and document.title == REGISTRY["158/2025/NĐ-CP"].title
    assert document.slug == "158-2025-nd-cp" and made_up.by_slug("158-2025-nd-cp") is document
    assert sorted(document.articles) == [1, 2, 3]  # neither the quoted "Điều 39" nor the appendix's "Điều 1"
    # A sentence broken over two lines is one paragraph again; the page number "12" is dropped.
    assert document.articles[1].intro == ("Nghị định này quy định việc thử nghiệm tra cứu (dòng bị ngắt như bản OCR).",)
    two = document.articles[2]
    assert two.heading == "Điều 2. Tiền lương thử nghiệm"
    assert [c.number for c in two.clauses] == [1, 2, 3]
    assert two.clause(1).lines == ("1. Tiền lương thử nghiệm gồm:", "a) mức lương;", "b) phụ cấp lương.")
    assert "Chương II" not in two.text and "ĐIỀU KHOẢN" not in two.text
    three = document.articles[3]
    assert three.title == "Sửa đổi nghị định khác"  # Markdown bold removed
    assert "Điều 39. Điều được trích" in three.clause(1).lines[1]  # the quoted article stays inside
    assert [c.number for c in three.clauses] == [1, 2]  # "1. Nội dung trích dẫn." does not restart the count
    assert "Nơi nhận" not in three.text and "PHỤ LỤC" not in three.text
    assert {s.split(":")[0] for s in made_up.skipped} == {"ghi-chu.md"}


@pytest.mark.parametrize("typed", ["nd 158 d2", "nghị định 158 điều 2", "Nghị định 158/2025/NĐ-CP, Điều 2",
                                   "khoản 2 điều 2 nghị định 158", "ND 158/2025/ND-CP dieu 2 khoan 2", "nđ158 đ2"])
def test_made_up_lookup_by_citation(made_up, typed):
    result = made_up.lookup(typed)
    assert result.article is not None and result.article.number == 2, (typed, result.message)
    assert result.document.number == "158/2025/NĐ-CP" and result.message == ""


def test_made_up_lookup_messages(made_up):
    missing = made_up.lookup("nghị định 158 điều 9")
    assert missing.article is None and missing.message == (
        "Không tìm thấy Điều 9 trong Nghị định 158/2025/NĐ-CP; văn bản có Điều 1 đến Điều 3.")
    no_clause = made_up.lookup("khoản 7 điều 2 nđ 158")
    assert no_clause.article.number == 2 and "không có khoản 7" in no_clause.message
    not_held = made_up.lookup("nghị định 159 điều 5")
    assert not_held.article is None and "chưa có toàn văn Nghị định 159/2025/NĐ-CP" in not_held.message
    main_law = made_up.lookup("điều 70")  # no document named: the Social Insurance Law, not installed here
    assert "chưa có toàn văn Luật 41/2024/QH15" in main_law.message
    unknown = made_up.lookup("nghị định 999/2031 điều 1")
    assert "Không có văn bản" in unknown.message
    assert made_up.lookup("   ").message == legal_texts.EMPTY_QUERY
    words = made_up.lookup("chuan ho ngheo thu nghiem")  # no diacritics
    assert words.hits and words.hits[0].article.number == 2
    assert "Chuẩn hộ nghèo thử nghiệm" in words.hits[0].snippet
    assert made_up.lookup("nghị định 158").document.number == "158/2025/NĐ-CP"  # the document's contents


@pytest.mark.parametrize(("typed", "expected"), [
    ("Điều 70 Luật 41/2024", ("41/2024/QH15", 70, None, None)),
    ("điều 70", (None, 70, None, None)),
    ("DIEU 70", (None, 70, None, None)),
    ("khoản 2 điều 31", (None, 31, 2, None)),
    ("khoan 2 dieu 31", (None, 31, 2, None)),
    ("k2 d31", (None, 31, 2, None)),
    ("nghị định 158 điều 7", ("158/2025/NĐ-CP", 7, None, None)),
    ("nghi dinh 158 dieu 7", ("158/2025/NĐ-CP", 7, None, None)),
    ("nd 158 d7", ("158/2025/NĐ-CP", 7, None, None)),
    ("NĐ 158/2025/NĐ-CP Điều 7", ("158/2025/NĐ-CP", 7, None, None)),
    ("Luật 41/2024/QH15, Điều 70, khoản 1, điểm đ", ("41/2024/QH15", 70, 1, "đ")),
    ("Điều 70 Luật BHXH 2024 quy định gì", ("41/2024/QH15", 70, None, None)),
    ("dieu 70 luat bao hiem xa hoi", ("41/2024/QH15", 70, None, None)),
    ("Điều 169 Bộ luật Lao động", ("45/2019/QH14", 169, None, None)),
    ("blhs điều 216", ("100/2015/QH13", 216, None, None)),
    ("thông tư 14 điều 3", ("14/2026/TT-BNV", 3, None, None)),
])
def test_parse_reference(typed, expected):
    ref = parse_reference(typed)
    assert (ref.document, ref.article, ref.clause, ref.point) == expected, ref


def test_parse_reference_leaves_the_words():
    ref = parse_reference("điều nào trong luật quy định rút bhxh một lần")
    assert ref.document is None and ref.article is None and "rut bhxh mot lan" in ref.rest
    date = parse_reference("mức đóng từ tháng 7/2026")  # a date, not a document
    assert date.document is None and date.document_text == "" and "7 2026" in date.rest


# ------------------------------------------------------------------ the real texts (../shared/legal)


def test_real_documents_are_identified_and_complete(real):
    law, decree = real.documents["41/2024/QH15"], real.documents["158/2025/NĐ-CP"]
    assert sorted(law.articles) == list(range(1, 142))  # 141 articles (shared/legal/README.md)
    assert sorted(decree.articles) == list(range(1, 46))
    assert law.articles[70].title == "Hưởng bảo hiểm xã hội một lần"
    assert law.articles[140].title == "Hiệu lực thi hành"
    assert [c.number for c in law.articles[141].clauses] == list(range(1, 16))
    assert "CHỦ TỊCH QUỐC HỘI" not in law.articles[141].text
    assert decree.articles[44].title == "Hiệu lực thi hành"
    assert real.documents["283/2026/NĐ-CP"].file.endswith("ocr-b.md")  # the registry's copy, not ocr-a
    assert legal_texts.OCR_NOTE in real.documents["283/2026/NĐ-CP"].notes
    assert real.documents["45/2019/QH14"].articles[169].title == "Tuổi nghỉ hưu"  # from the compilation
    assert legal_texts.COMPILED_NOTE in real.documents["45/2019/QH14"].notes
    # A change the registry ties to an article is shown with that article only.
    touched = law.notes_for(37)
    assert any("142/2025/QH15" in n for n in touched)
    assert not any("142/2025/QH15" in n for n in law.notes_for(70))


@pytest.mark.parametrize(("typed", "number", "article", "clause"), [
    ("Điều 70 Luật 41/2024", "41/2024/QH15", 70, None),
    ("điều 70", "41/2024/QH15", 70, None),
    ("khoản 2 điều 31", "41/2024/QH15", 31, 2),
    ("nghị định 158 điều 7", "158/2025/NĐ-CP", 7, None),
    ("nd 158 d7", "158/2025/NĐ-CP", 7, None),
    ("Điều 214 BLHS", "100/2015/QH13", 214, None),
])
def test_real_lookup_by_citation(real, typed, number, article, clause):
    result = real.lookup(typed)
    assert result.article is not None, result.message
    assert (result.document.number, result.article.number) == (number, article)
    if clause:
        assert result.article.clause(clause) is not None and result.message == ""


def test_real_search_by_words(real):
    hits = real.search("rut bhxh mot lan")
    top = [(h.document.number, h.article.number) for h in hits[:5]]
    assert ("41/2024/QH15", 70) in top and ("41/2024/QH15", 102) in top, top
    assert real.search("trợ cấp mai táng")[0].article.title == "Trợ cấp mai táng"


def test_citation_link(real, made_up):
    link = real.citation_link("Luật 41/2024/QH15, Điều 70, khoản 1, điểm đ")
    assert (link.path, link.title) == ("/luat/41-2024-qh15/70#khoan-1", "Hưởng bảo hiểm xã hội một lần")
    assert real.citation_link("Luật 41/2024/QH15, Điều 31, khoản 9").path == "/luat/41-2024-qh15/31"
    assert real.citation_link("Luật 74/2025/QH15").path is None  # not held
    assert real.citation_link("không phải căn cứ").path is None
    assert made_up.citation_link("Luật 41/2024/QH15, Điều 70").path is None


def test_every_held_citation_of_the_knowledge_base_opens_an_article(real):
    """Each "Căn cứ" of an entry whose document the registry says is held links to an article that exists
    (documents found only in part, inside a compilation, link where they can)."""
    missing, linked = [], 0
    for entry in load_knowledge().entries.values():
        for source in entry.sources:
            c = parse_citation(source)
            if c.article is None or c.number not in real.documents:
                continue
            if real.article(c.number, c.article) is not None:
                linked += 1
            elif REGISTRY[c.number].text is not None:
                missing.append(f"{entry.id}: {source}")
    assert missing == [] and linked > 300
