"""The entry editor in a real browser (headless Chromium) on a dashboard filled by `bhxh demo-traffic`: an editor
signs in with an account, edits an answer while the preview follows, sends it for approval; a reviewer reads the
diff, approves it and rolls it back. Screenshots in test-artifacts/ (staff-editor-preview.png, staff-editor-diff.png).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from admin_api import accounts
from admin_api.app import create_app
from bhxh.cli import main as bhxh
from bot.engine import Engine
from bot.service import Service
from bot.settings import Settings
from storage.store import Store, load_hash_key
from tests.conftest import ARTIFACTS
from tests.fakes.server import ServerThread

TOKEN = "browser-editor-token-0123456789"
PASSWORD = "mat-khau-rat-dai-1"
ENTRY = "lh-moc-15-nam-luat-moi"
NEW_ANSWER = ("Từ 1/7/2025, chỉ cần đóng đủ {{min_pension_years}} năm BHXH là đủ điều kiện về thời gian đóng để "
              "hưởng lương hưu (trước đây là 20 năm). Tuổi nghỉ hưu vẫn theo quy định.")


@pytest.fixture
def served(lexical_engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Service]]:
    database = tmp_path / "bhxh.db"
    monkeypatch.setenv("BHXH_DATA_DIR", str(tmp_path))
    assert bhxh(["demo-traffic", "--db", str(database), "--fast", "--days", "14", "--per-day", "60"]) == 0
    store = Store(database, load_hash_key(tmp_path))
    accounts.add_account(store, "hoa.nt", "editor", PASSWORD)
    accounts.add_account(store, "lan.pt", "reviewer", PASSWORD)
    service = Service(lexical_engine, store)
    settings = Settings(data_dir=tmp_path, embed_model="none", admin_token=TOKEN, province="Tỉnh Lâm Đồng")
    with ServerThread(create_app(service, settings=settings, ip_limit=10_000)) as server:
        yield server.url, service


def sign_in(page, url: str, name: str) -> None:
    page.goto(f"{url}/admin/dashboard")
    assert page.url.endswith("/admin/login")
    page.fill("#name", name)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/admin/dashboard")


def test_edit_with_preview_approve_by_a_reviewer_and_roll_back(served, browser):
    expect = pytest.importorskip("playwright.sync_api").expect
    url, service = served
    original = service.engine.kb.entries[ENTRY].answer
    ARTIFACTS.mkdir(exist_ok=True)
    problems: list[str] = []
    page = browser.new_page(viewport={"width": 1366, "height": 900}, locale="vi-VN")
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)

    sign_in(page, url, "hoa.nt")
    assert page.locator(".who").inner_text() == "hoa.nt · Biên tập"
    assert "Tỉnh Lâm Đồng" in page.locator(".brand-title").inner_text()
    assert page.locator("svg.pattern").count() == 2  # hour-of-day and weekday
    page.click("text=Sửa nội dung")
    page.wait_for_url("**/admin/editor")
    page.fill("input[name=q]", "15 năm")
    page.click("form.search button")
    page.click(f"a[href='/admin/editor/entry/{ENTRY}']")
    page.wait_for_url(f"**/admin/editor/entry/{ENTRY}")

    page.fill("#answer", NEW_ANSWER)  # the preview follows the typing (static/editor.js)
    expect(page.locator("#preview-details")).to_contain_text("chỉ cần đóng đủ 15 năm")
    page.fill("#answer", NEW_ANSWER + " {{khong_co_tham_so}}")
    expect(page.locator("#preview-problems")).to_contain_text("khong_co_tham_so")
    page.fill("#answer", NEW_ANSWER)
    page.fill("#on", "2026-06-15")
    expect(page.locator("#preview-day")).to_contain_text("15/06/2026")
    expect(page.locator("#preview-problems")).to_be_hidden()
    page.fill("#note", "Nói rõ mốc 15 năm theo luật mới")
    page.screenshot(path=str(ARTIFACTS / "staff-editor-preview.png"), full_page=True)
    page.click("#save")
    page.wait_for_url("**/admin/editor/version/*")
    assert "chờ một người có vai trò Duyệt" in page.locator(".alert.good").inner_text()
    assert page.locator("#approve").count() == 0  # the author cannot approve
    assert service.engine.kb.entries[ENTRY].answer == original
    version_url = page.url.split("?")[0]
    page.click("form.logout button")
    page.wait_for_url("**/admin/login")

    sign_in(page, url, "lan.pt")
    page.goto(version_url)
    added = page.locator(".diff .dadd")
    assert added.count() >= 1 and "chỉ cần đóng đủ" in added.first.inner_text()
    assert page.locator(".diff .ddel").count() >= 1
    page.screenshot(path=str(ARTIFACTS / "staff-editor-diff.png"), full_page=True)
    page.on("dialog", lambda dialog: dialog.accept())
    page.click("#approve")
    page.wait_for_url("**ok=1*")
    assert page.locator(".alert.good").inner_text().startswith("Đã duyệt")
    assert service.engine.kb.entries[ENTRY].answer == NEW_ANSWER
    page.click("#rollback")
    page.wait_for_url("**ok=1*")
    assert "Đã hoàn tác" in page.locator(".alert.good").inner_text()
    assert service.engine.kb.entries[ENTRY].answer == original
    page.click(f"a[href='/admin/editor/entry/{ENTRY}']")
    history = page.locator("table.table tbody tr")
    assert history.count() == 2 and "Hoàn tác" in history.first.inner_text()
    assert not problems, problems
    assert (ARTIFACTS / "staff-editor-diff.png").stat().st_size > 20_000
    actions = service.store.db.execute("SELECT action, actor FROM audit WHERE action LIKE 'entry.%' ORDER BY id"
                                       ).fetchall()
    assert actions == [("entry.propose", "hoa.nt"), ("entry.approve", "hoa.nt"), ("entry.rollback", "lan.pt")]
