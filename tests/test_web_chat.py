"""The web chat at / : static checks, then the real app under uvicorn driven by Debian's headless
Chromium through Playwright (skipped only when /usr/bin/chromium is absent)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fakes.server import ServerThread, wait_for
from fakes.service import clean_env, engine, make_service
from fakes.web import ask
from fastapi.testclient import TestClient

from admin_api.app import STATIC_DIR, create_app

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
ANSWER_Q = "rút bhxh 1 lần được không"
CHOICES_Q = "đóng bhxh tự nguyện bao nhiêu"


@pytest.fixture
def service(tmp_path, monkeypatch):
    clean_env(monkeypatch, tmp_path)
    return make_service(tmp_path / "bhxh.db")


def test_page_is_served_self_contained_and_vietnamese(service):
    with TestClient(create_app(service)) as client:
        page = client.get("/")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert '<html lang="vi">' in page.text and 'name="viewport"' in page.text
        for asset in ("/static/chat.js", "/static/chat.css"):
            assert client.get(asset).status_code == 200
    for name in ("chat.html", "chat.js", "chat.css"):
        text = (STATIC_DIR / name).read_text(encoding="utf-8")
        assert not re.search(r"https?://", text), f"{name} loads something from outside"
        assert "@import" not in text and "@font-face" not in text
    script = (STATIC_DIR / "chat.js").read_text(encoding="utf-8")
    assert not re.search(r"\.(innerHTML|outerHTML)\s*=|insertAdjacentHTML|document\.write|eval\(", script)


def test_voluntary_calculator_endpoint(service):
    with TestClient(create_app(service)) as client:
        ok = client.post("/api/calc/voluntary",
                         json={"income": 1_500_000, "group": "near_poor", "months": 1, "on": "2026-03-01"})
        assert ok.status_code == 200, ok.text
        data = ok.json()
        assert (data["contribution_per_month"], data["support_per_month"], data["net_per_month"]) == (
            330000, 132000, 198000)
        assert data["group_label"] == "hộ cận nghèo" and data["steps"] and data["sources"]
        low = client.post("/api/calc/voluntary", json={"income": 1000, "group": "other", "months": 1,
                                                       "on": "2026-03-01"})
        assert low.status_code == 422 and "1.500.000" in low.json()["detail"], low.text
        for bad in ({"income": 2_000_000, "group": "vip", "months": 1},
                    {"income": 2_000_000, "group": "other", "months": 2},
                    {"income": "nhiều", "group": "other", "months": 1}):
            response = client.post("/api/calc/voluntary", json=bad)
            assert response.status_code == 422 and response.json()["detail"], response.text




@pytest.fixture
def server(service):
    with ServerThread(create_app(service)) as running:
        yield running


def _bot_messages(page) -> int:
    return page.locator(".msg.bot:not(.typing)").count()


def test_web_chat_in_chromium(browser, server, service):
    expected = engine().ask(ANSWER_Q)
    choices = engine().ask(CHOICES_Q).choices
    context = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2, locale="vi-VN",
                                  is_mobile=True, has_touch=True)
    page = context.new_page()
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(server.url + "/")
    assert page.title().startswith("Trợ lý BHXH")

    # 1. An answer with its legal sources and related questions.
    ask(page, ANSWER_Q)
    answer = page.locator(".msg.bot").last
    # The short answer first; the sources folded under "Căn cứ" until tapped (tests/test_short_answer_web.py
    # checks the folded details and the scroll position).
    assert expected.short.split("\n")[0] in answer.locator(".short").inner_text()
    answer.locator(".sources summary").click()
    assert expected.sources[0] in answer.locator(".sources").inner_text()
    assert not any("Căn cứ:" in t for t in answer.locator(".text").all_text_contents())  # drawn once, as the box
    assert answer.locator(".rel").count() == len(expected.related)

    # 2. Choices as buttons; pressing one answers that entry.
    ask(page, CHOICES_Q)
    offered = page.locator(".msg.bot").nth(_bot_messages(page) - 1).locator(".choice")
    assert offered.all_inner_texts() == [f"{n}. {c.question}" for n, c in enumerate(choices, start=1)]
    before = _bot_messages(page)
    offered.first.click()
    page.wait_for_function(f"document.querySelectorAll('.msg.bot:not(.typing)').length > {before}")
    assert page.locator(".msg.user").last.inner_text() == choices[0].question
    chosen = page.locator(".msg.bot").last
    assert chosen.locator(".sources li").count() >= 1
    assert offered.first.is_disabled()

    # 3. 👍 is recorded.
    chosen.locator("button.vote").first.click()
    chosen.locator(".thanks").wait_for()
    rows = wait_for(lambda: list(service.store.db["feedback"].rows))
    assert rows[-1]["value"] == 1 and rows[-1]["entry_id"] == choices[0].entry_id

    # Phone layout: nothing wider than the screen; everything came from our server.
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert all(url.startswith(server.url) for url in requests), requests
    assert errors == []
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "web-chat.png"))  # the chosen answer: sources, related, 👍 thanks
    page.locator(".msg.bot").nth(before - 1).evaluate("n => n.scrollIntoView({block: 'start'})")
    page.screenshot(path=str(ARTIFACTS / "web-chat-choices.png"))  # the choices and the pick

    # Desktop width too (for the README), scrolled to the first question.
    page.set_viewport_size({"width": 1280, "height": 900})
    page.locator(".msg.user").first.evaluate("n => n.scrollIntoView({block: 'start'})")
    page.screenshot(path=str(ARTIFACTS / "web-chat-desktop.png"))

    # 4. The calculator form on the phone: near-poor, monthly, 1.5 million on 2026-03-01 → 198.000 đồng.
    page.set_viewport_size({"width": 390, "height": 844})
    page.click("#calc-toggle")
    page.fill("#calc-income", "1.500.000")
    page.select_option("#calc-group", "near_poor")
    page.fill("#calc-on", "2026-03-01")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    page.click("#calc-send")
    page.locator(".calc-result").wait_for()
    result = page.locator(".calc-result").inner_text()
    assert "198.000" in result and page.locator(".calc-result .steps li").count() >= 1, result
    page.locator(".calc-result").evaluate("n => n.scrollIntoView({block: 'start'})")
    page.screenshot(path=str(ARTIFACTS / "web-chat-calc.png"))  # the result and its steps
    assert errors == []
    context.close()


def test_web_chat_escapes_html_and_shows_errors(browser, server):
    page = browser.new_page(viewport={"width": 360, "height": 740})
    page.goto(server.url + "/")
    hostile = '<img src=x onerror="window.__xss=1"><b>đậm</b>'
    ask(page, hostile)
    assert page.locator(".msg.user").last.inner_text() == hostile
    assert page.locator("#log img, #log .msg b").count() == 0
    assert page.evaluate("window.__xss === undefined")
    # A choice that no longer exists gets the server's polite message, not a crash.
    status = page.evaluate("fetch('/api/choose/khong-con-nua', {method: 'POST'}).then(r => r.status)")
    assert status == 404
    page.route("**/api/ask", lambda route: route.fulfill(status=429, content_type="application/json",
                                                          body='{"detail": "Bạn gửi quá nhiều câu hỏi."}'))
    ask(page, "thai sản")
    assert page.locator(".msg.error").last.inner_text() == "Bạn gửi quá nhiều câu hỏi."
    page.close()
