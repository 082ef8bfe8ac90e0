"""The web chat in a real browser (Debian's Chromium): a follow-up read in the previous question's context,
and "Không phải các câu trên" under a choice list. Screenshots go to test-artifacts/."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from fakes.phone import phone_page
from fakes.server import ServerThread
from fakes.service import clean_env, make_service
from fakes.web import ask

from admin_api.app import create_app
from bot import messages

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
FIRST = "mức đóng BHXH tự nguyện thấp nhất là bao nhiêu"
FOLLOW_UP = "còn năm 2027 thì sao?"
CHOICES_Q = "đóng bhxh tự nguyện bao nhiêu"


@pytest.fixture
def server(tmp_path, monkeypatch):
    clean_env(monkeypatch, tmp_path)
    service = make_service(tmp_path / "bhxh.db")
    with ServerThread(create_app(service)) as running:
        running.service = service
        yield running


def test_follow_up_and_none_of_these_in_chromium(browser, server):
    page, errors = phone_page(browser, server.url + "/")
    ARTIFACTS.mkdir(exist_ok=True)

    # 1. A question, then a follow-up that changes the year: the same subject, 2027's figures, the date said.
    first = ask(page, FIRST)
    assert "330.000" in first.inner_text()
    second = ask(page, FOLLOW_UP)
    text = second.inner_text()
    assert "484.000" in text and "330.000" not in text.split("Xem chi tiết")[0]
    assert messages.date_used(dt.date(2027, 1, 1)) in text
    assert "Tiếp câu trước" in text
    # The two notes are two lines (paragraphs) of their own, the follow-up's first, not one run-on paragraph.
    lines = second.locator(".notice p")
    assert lines.count() == 2
    assert lines.nth(0).inner_text().startswith("Tiếp câu trước")
    assert lines.nth(1).inner_text() == messages.date_used(dt.date(2027, 1, 1))
    # measured in one go: the log may still be scrolling to the new answer
    (top1, bottom1), (top2, _) = lines.evaluate_all(
        "(ps) => ps.map((p) => { const r = p.getBoundingClientRect(); return [r.top, r.bottom]; })")
    assert top2 >= bottom1 > top1
    second.scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / "conversation-follow-up.png"))
    second.locator(".notice").screenshot(path=str(ARTIFACTS / "web-chat-follow-up-notice.png"))

    # 2. A new subject starts afresh: no context line.
    fresh = ask(page, "nghỉ thai sản được mấy tháng")
    assert "Tiếp câu trước" not in fresh.inner_text()

    # 3. A choice list ends with "Không phải các câu trên"; pressing it asks to rephrase and offers help.
    menu = ask(page, CHOICES_Q)
    assert menu.locator(".choice").count() >= 2
    none = menu.locator(".choice-none")
    assert none.inner_text() == messages.NONE_OF_THESE
    assert menu.locator(".choices button").last.inner_text() == messages.NONE_OF_THESE  # the last button
    before = page.locator(".msg.bot:not(.typing)").count()
    none.click()
    page.wait_for_function(f"document.querySelectorAll('.msg.bot:not(.typing)').length > {before}")
    reply = page.locator(".msg.bot").last.inner_text()
    assert "hỏi lại" in reply and ("1900 9068" in reply or "cán bộ" in reply)
    assert page.locator(".msg.user").last.inner_text() == messages.NONE_OF_THESE
    page.screenshot(path=str(ARTIFACTS / "conversation-none-of-these.png"))
    kinds = [row["kind"] for row in server.service.store.db["signals"].rows]
    assert "none_of_these" in kinds
    assert errors == []
