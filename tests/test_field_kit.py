"""The field kit pages (admin_api/field_kit.py): topic index, answer cards, law articles, the voluntary
table. First through TestClient, then the real app under uvicorn in Debian's headless Chromium (skipped
when /usr/bin/chromium is absent): following a "Căn cứ" link, lookup by citation, print to PDF.
Tests that need the legal texts use ../shared/legal and skip when it is absent."""

from __future__ import annotations

import datetime as dt
import io
import os
import re
import unicodedata
from pathlib import Path

import pytest
from fakes.server import ServerThread
from fakes.service import clean_env, make_service
from fastapi.testclient import TestClient

from admin_api.app import STATIC_DIR, create_app
from admin_api.field_kit import TEMPLATES, text_blocks
from bot.settings import load_settings
from knowledge import legal_texts
from knowledge.calculators import GROUP_LABELS
from knowledge.legal_texts import NO_TEXTS
from knowledge.topics import TOPICS

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
SPELLINGS = ["Điều 70 Luật 41/2024", "điều 70", "dieu 70 luat bhxh", "Luật 41/2024/QH15, Điều 70, khoản 1"]


@pytest.fixture
def service(tmp_path, monkeypatch):
    clean_env(monkeypatch, tmp_path)
    monkeypatch.delenv("BHXH_LEGAL_DIR", raising=False)
    monkeypatch.delenv("BHXH_PUBLIC_URL", raising=False)
    return make_service(tmp_path / "bhxh.db")


@pytest.fixture
def legal(shared_dir, monkeypatch) -> Path:
    folder = shared_dir / "legal"
    if not folder.is_dir():
        pytest.skip("../shared/legal is absent")
    monkeypatch.setenv("BHXH_LEGAL_DIR", str(folder))
    return folder


@pytest.fixture
def client(service):
    with TestClient(create_app(service)) as c:
        yield c


def _text(html: str) -> str:
    """The visible words of a page, roughly: tags dropped, entities of the autoescaper decoded."""
    text = re.sub(r"<[^>]+>", " ", html)
    for entity, char in (("&#34;", '"'), ("&#39;", "'"), ("&amp;", "&"), ("&lt;", "<"), ("&gt;", ">")):
        text = text.replace(entity, char)
    return re.sub(r"\s+", " ", text)


def _voluntary_entry(service):
    kb = service.engine.kb
    return next(e for e in kb.entries.values() if "voluntary_min_contribution" in e.answer)


def _last_sentence(text: str) -> str:
    sentences = [s.strip() for s in re.split(r"(?<=[.!?])\s+|\n", text) if len(s.strip()) > 20]
    return sentences[-1]


# ------------------------------------------------------------------ TestClient


def test_topic_index_lists_every_topic_and_question(client, service):
    page = client.get("/chu-de")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "style-src 'self'" in csp and "frame-ancestors 'none'" in csp
    text = _text(page.text)
    for key, label in TOPICS.items():
        assert f'id="{key}"' in page.text and label in text
    links = re.findall(r'href="/hoi-dap/([a-z0-9-]+)"', page.text)
    assert sorted(links) == sorted(service.engine.kb.entries), "every entry once"


def test_entry_page_renders_the_whole_answer_for_a_date(client, service):
    entry = _voluntary_entry(service)
    kb = service.engine.kb
    today = dt.date.today()
    page = client.get(f"/hoi-dap/{entry.id}")
    assert page.status_code == 200
    text = _text(page.text)
    assert entry.question in text and f"Áp dụng ngày {today:%d/%m/%Y}" in text
    assert _last_sentence(kb.render_answer(entry, today)) in text
    assert kb.parameters.format("voluntary_min_contribution", today) in text
    for source in entry.sources:
        assert source in text
    assert f"/hoi-dap/{entry.id}" in text  # the short link back, printed on the card
    try:
        import segno  # noqa: F401
    except ImportError:
        assert "<svg" not in page.text  # no QR library: the short link alone
    else:
        assert 'class="qr"' in page.text and "<svg" in page.text

    later = dt.date(today.year + 1, 1, 15)
    card = _text(client.get(f"/hoi-dap/{entry.id}?on={later.isoformat()}").text)
    assert f"Áp dụng ngày {later:%d/%m/%Y}" in card
    assert kb.parameters.format("voluntary_min_contribution", later) in card
    assert f"?on={later.isoformat()}" in card  # the link keeps the date

    bad = _text(client.get(f"/hoi-dap/{entry.id}?on=15-01-2027").text)
    assert "Không đọc được ngày" in bad and f"Áp dụng ngày {today:%d/%m/%Y}" in bad
    missing = client.get("/hoi-dap/khong-co-cau-nay")
    assert missing.status_code == 404 and "Không có câu hỏi này" in missing.text


def test_short_link_uses_the_configured_public_url(client, service, monkeypatch):
    """BHXH_PUBLIC_URL, read once into Settings.public_url."""
    monkeypatch.setenv("BHXH_PUBLIC_URL", "https://hoidap.example.vn/")
    monkeypatch.setattr(client.app.state, "settings", load_settings())
    entry = _voluntary_entry(service)
    assert f"https://hoidap.example.vn/hoi-dap/{entry.id}" in client.get(f"/hoi-dap/{entry.id}").text


def test_without_legal_texts_the_pages_say_so(client, service):
    page = client.get("/luat?q=Điều 70 Luật 41/2024")
    assert page.status_code == 200 and NO_TEXTS in _text(page.text)
    assert NO_TEXTS in _text(client.get("/luat").text)
    article = client.get("/luat/41-2024-qh15/70")
    assert article.status_code == 404 and NO_TEXTS in _text(article.text)
    entry = _voluntary_entry(service)
    card = client.get(f"/hoi-dap/{entry.id}").text
    assert 'href="/luat/' not in card and "chưa cài toàn văn" in card


def _linked_entry(service, folder: Path):
    """An entry whose first source is an article (with its clause) of an installed text, and that link."""
    library = legal_texts.library(folder)
    for entry in service.engine.kb.entries.values():
        link = library.citation_link(entry.sources[0])
        if link.path and "#khoan-" in link.path:
            return entry, link
    raise AssertionError("no entry cites an installed article")


def test_can_cu_links_open_the_article(client, service, legal):
    entry, first = _linked_entry(service, legal)
    card = client.get(f"/hoi-dap/{entry.id}").text
    links = re.findall(r'<a href="(/luat/[^"]+)">([^<]+)</a>', card)
    assert (first.path, first.text) in links
    for href, _ in links:
        page = client.get(href.split("#")[0])
        assert page.status_code == 200, href
        assert _text(page.text).count("Điều ") >= 1
    article = client.get("/luat/41-2024-qh15/70")
    text = _text(article.text)
    assert "Điều 70. Hưởng bảo hiểm xã hội một lần" in text and 'id="khoan-1"' in article.text
    assert "Câu hỏi dẫn chiếu điều này" in text  # the entries citing Điều 70


@pytest.mark.parametrize("typed", [*SPELLINGS, "khoản 2 điều 70", "nd 158 d7", "nghị định 158 điều 7"])
def test_article_lookup_by_citation(client, legal, typed):
    page = client.get("/luat", params={"q": typed})
    assert page.status_code == 200
    text = _text(page.text)
    if "158" in typed:
        assert "Nghị định 158/2025/NĐ-CP" in text and "Điều 7. Tiền lương làm căn cứ đóng" in text
    else:
        assert "Điều 70. Hưởng bảo hiểm xã hội một lần" in text, typed
    if "khoản 2" in typed:
        assert 'class="khoan chosen" id="khoan-2"' in page.text


def test_law_search_and_messages(client, legal):
    words = _text(client.get("/luat", params={"q": "rut bhxh mot lan"}).text)
    assert "Điều 70. Hưởng bảo hiểm xã hội một lần" in words
    assert "Máy chủ này chưa có toàn văn Nghị định 159/2025/NĐ-CP" in _text(
        client.get("/luat", params={"q": "nghị định 159 điều 5"}).text)
    not_found = client.get("/luat?q=điều 200").text
    assert "Không tìm thấy Điều 200 trong Luật 41/2024/QH15" in _text(not_found)
    assert 'href="/luat/41-2024-qh15"' in not_found  # the document's contents, to pick another article
    contents = _text(client.get("/luat/158-2025-nd-cp").text)
    assert "Điều 45. Trách nhiệm tổ chức thi hành" in contents
    index = client.get("/luat").text
    assert "Luật 41/2024/QH15" in _text(index) and "<details" in index  # compilations' other texts folded
    assert client.get("/luat/41-2024-qh15/9999").status_code == 404
    assert client.get("/luat/khong-co/1").status_code == 404


def test_voluntary_table_for_all_groups(client, service):
    page = client.get("/tinh/tu-nguyen", params={"on": "2026-03-01", "income": "1.500.000"})
    assert page.status_code == 200
    rows = re.findall(r'<tr><th scope="row">([^<]+)</th>', page.text)
    assert [r.lower() for r in rows] == list(GROUP_LABELS.values())
    text = _text(page.text)
    assert "Áp dụng ngày 01/03/2026" in text and "198.000" in text  # near-poor: 330.000 − 132.000
    year = _text(client.get("/tinh/tu-nguyen", params={"on": "2027-01-15", "months": "6"}).text)
    assert "Áp dụng ngày 15/01/2027" in year and "387.200" in year and "2.323.200" in year
    low = _text(client.get("/tinh/tu-nguyen", params={"income": "1000"}).text)
    assert "thấp hơn mức tối thiểu" in low
    assert "Không đọc được số tiền" in _text(client.get("/tinh/tu-nguyen", params={"income": "nhiều"}).text)


def test_pages_are_self_contained():
    files = [*(TEMPLATES.glob("fieldkit_*.html")), STATIC_DIR / "fieldkit.css", STATIC_DIR / "fieldkit.js"]
    assert len(files) >= 10
    for path in files:
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"https?://", text), f"{path.name} loads something from outside"
        assert "@import" not in text and "@font-face" not in text
        assert not re.search(r"<script(?![^>]*\bsrc=)", text), f"{path.name}: inline script"
        assert " style=" not in text and "<style" not in text, f"{path.name}: inline style"
    script = (STATIC_DIR / "fieldkit.js").read_text(encoding="utf-8")
    assert not re.search(r"\.(innerHTML|outerHTML)\s*=|insertAdjacentHTML|document\.write|eval\(", script)


def test_text_blocks():
    blocks = text_blocks("Mở đầu:\n- một;\n- hai.\n\n1. Bước một\n2. Bước hai\nKết.")
    assert [(b.kind, b.lines) for b in blocks] == [
        ("p", ("Mở đầu:",)), ("ul", ("một;", "hai.")), ("ol", ("Bước một", "Bước hai")), ("p", ("Kết.",))]


# ------------------------------------------------------------------ a real browser




@pytest.fixture
def server(service, legal):
    with ServerThread(create_app(service)) as running:
        yield running


def _phone(browser):
    context = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2, locale="vi-VN",
                                  is_mobile=True, has_touch=True)
    page = context.new_page()
    page.errors = []  # type: ignore[attr-defined]
    page.on("pageerror", lambda e: page.errors.append(str(e)))  # type: ignore[attr-defined]
    return context, page


def _fits(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def test_topic_index_entry_and_can_cu_in_chromium(browser, server, service):
    context, page = _phone(browser)
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto(server.url + "/chu-de")
    assert page.title().startswith("Các chủ đề và câu hỏi")
    headings = page.locator("section.topic h2").all_inner_texts()
    assert [h.split(" (")[0] for h in headings] == list(TOPICS.values())
    assert _fits(page)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "fieldkit-topics.png"))

    # The filter finds questions typed without diacritics and hides the rest.
    total = page.locator(".questions li").count()
    page.fill("#filter", "rut mot lan")
    shown = page.locator(".questions li:visible")
    assert 0 < shown.count() < total
    for text in shown.all_inner_texts():
        folded = unicodedata.normalize("NFD", text.replace("đ", "d").replace("Đ", "D")).lower()
        assert all(w in "".join(c for c in folded if not unicodedata.combining(c)) for w in ("rut", "mot", "lan"))
    assert f"trên {total} câu hỏi" in page.locator("#filter-count").inner_text()
    page.fill("#filter", "")
    assert page.locator(".questions li:visible").count() == total

    # A question of the index opens its answer card.
    entry, first = _linked_entry(service, Path(os.environ["BHXH_LEGAL_DIR"]))
    page.locator(f'a[href="/hoi-dap/{entry.id}"]').click()
    page.wait_for_url(f"**/hoi-dap/{entry.id}")
    assert page.locator("h1").inner_text() == entry.question
    assert page.locator(".actions").is_visible()  # the script ran under the page's CSP
    assert _fits(page)
    page.screenshot(path=str(ARTIFACTS / "fieldkit-entry.png"), full_page=True)

    # Its first "Căn cứ" opens the article's text, the clause cited highlighted.
    page.locator(".sources a").first.click()
    page.wait_for_url(f"**{first.path}")
    article, clause = first.path.split("/")[-1].split("#")
    assert page.locator("h1").inner_text() == f"Điều {article}. {first.title}"
    assert page.locator(f"#{clause}").inner_text().startswith(clause.split("-")[1] + ". ")
    highlight = page.locator(f"#{clause}").evaluate("n => getComputedStyle(n).backgroundColor")
    assert highlight not in ("rgba(0, 0, 0, 0)", "transparent")
    assert _fits(page)
    page.screenshot(path=str(ARTIFACTS / "fieldkit-article.png"))
    assert all(url.startswith(server.url) for url in requests), requests
    assert page.errors == []  # type: ignore[attr-defined]
    context.close()


def test_article_lookup_by_citation_in_chromium(browser, server):
    context, page = _phone(browser)
    page.goto(server.url + "/luat")
    for typed in [*SPELLINGS, "nd 158 d7"]:
        page.fill("#q", typed)
        page.press("#q", "Enter")
        page.wait_for_load_state()
        expected = ("Điều 7. Tiền lương làm căn cứ đóng bảo hiểm xã hội bắt buộc" if "158" in typed
                    else "Điều 70. Hưởng bảo hiểm xã hội một lần")
        assert page.locator("h1").inner_text() == expected, typed
        assert page.locator(".law-text p").count() > 3
        page.goto(server.url + "/luat")
    page.fill("#q", "khoản 2 điều 31")
    page.press("#q", "Enter")
    page.wait_for_load_state()
    assert page.locator(".khoan.chosen").get_attribute("id") == "khoan-2"
    page.locator(".khoan.chosen").scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / "fieldkit-lookup.png"))
    assert page.errors == []  # type: ignore[attr-defined]
    context.close()


def _pdf_text(data: bytes) -> tuple[int, str]:
    """Pages and text of a PDF, without whitespace: a printed line may break anywhere (long links at a hyphen)."""
    pypdf = pytest.importorskip("pypdf")
    reader = pypdf.PdfReader(io.BytesIO(data))
    text = "".join(p.extract_text() or "" for p in reader.pages)
    return len(reader.pages), _plain(text)


def _plain(text: str) -> str:
    return re.sub(r"\s+", "", unicodedata.normalize("NFC", text))


def test_print_to_pdf_gives_the_whole_card(browser, server, service):
    kb = service.engine.kb
    today = dt.date.today()
    # The longest answer card: answer, details and sources.
    entry = max(kb.entries.values(), key=lambda e: len(kb.render_answer(e, today)) + len(e.details)
                + 60 * len(e.sources))
    context = browser.new_context(viewport={"width": 1000, "height": 900}, locale="vi-VN")
    page = context.new_page()
    page.goto(f"{server.url}/hoi-dap/{entry.id}")
    page.emulate_media(media="print")
    assert not page.locator(".actions").is_visible() and not page.locator(".top").is_visible()
    page.screenshot(path=str(ARTIFACTS / "fieldkit-entry-print.png"), full_page=True)
    pages, text = _pdf_text(page.pdf(format="A4", print_background=False))
    answer = kb.render_answer(entry, today)
    assert _plain(_last_sentence(answer)) in text, "the answer's last sentence is printed"
    assert _plain(entry.question) in text and _plain(f"Áp dụng ngày {today:%d/%m/%Y}") in text
    assert _plain(entry.sources[-1]) in text and f"/hoi-dap/{entry.id}" in text
    assert _plain("Sao chép") not in text and _plain("Tra luật") not in text  # no buttons, no navigation
    assert pages >= 1

    # A long article runs over several pages and keeps its end.
    page.goto(f"{server.url}/luat/41-2024-qh15/141")
    page.emulate_media(media="print")
    pages, text = _pdf_text(page.pdf(format="A4"))
    assert pages >= 2 and _plain("15. Chính phủ quy định chi tiết Điều này.") in text
    assert _plain("Điều 141. Quy định chuyển tiếp") in text

    # The calculation sheet: every group, the date, the sources.
    page.goto(f"{server.url}/tinh/tu-nguyen?on=2027-01-15&months=6")
    page.emulate_media(media="print")
    pages, text = _pdf_text(page.pdf(format="A4"))
    assert _plain("Áp dụng ngày 15/01/2027") in text and "2.323.200" in text
    assert all(_plain(label[:1].upper() + label[1:]) in text for label in GROUP_LABELS.values())
    assert _plain("Luật 41/2024/QH15, Điều 36, khoản 1") in text and _plain("Tính lại") not in text
    context.close()


def test_copy_button_and_voluntary_table_in_chromium(browser, server, service):
    context, page = _phone(browser)
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.url)
    entry = _voluntary_entry(service)
    page.goto(f"{server.url}/hoi-dap/{entry.id}")
    page.locator('[data-action="copy"]').click()
    page.locator(".actions .status").filter(has_text="Đã sao chép").wait_for()
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied.startswith(entry.question) and f"/hoi-dap/{entry.id}" in copied and "Căn cứ:" in copied

    page.goto(f"{server.url}/tinh/tu-nguyen?on=2027-01-15")
    assert page.locator("table.groups tbody tr").count() == len(GROUP_LABELS)
    assert "387.200" in page.locator("table.groups").inner_text()
    assert _fits(page)
    page.screenshot(path=str(ARTIFACTS / "fieldkit-voluntary.png"))  # the table, at the top
    assert page.errors == []  # type: ignore[attr-defined]
    context.close()
