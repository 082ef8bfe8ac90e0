"""The staff inbox "Hộp thư cán bộ" in headless Chromium (issue 16): a staff account signs in, sees the citizens
waiting (channel, waiting time, redacted history), replies (the citizen gets it on the Zalo Bot Platform's fake
server) and closes the conversation; the phone layout stacks the list and the conversation.
Screenshots: test-artifacts/handoff-inbox-desktop.png and handoff-inbox-phone.png."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import httpx
from fakes.phone import phone_page
from fakes.server import ServerThread, wait_for
from fakes.service import clean_env, make_service, zalo_bot_env
from fakes.web import ask
from fakes.zalo import FakeZaloBot, bot_update

from admin_api.accounts import add_account
from admin_api.app import create_app
from bot import messages
from bot.handoff import Handoff

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
ZB_TOKEN, ZB_SECRET = "zb-token-123:abc", "zalo-bot-secret-123"
IN_HOURS = dt.datetime(2026, 12, 3, 3, 0, tzinfo=dt.UTC)
PASSWORD = "mật-khẩu-đủ-dài-2026"
STAFF = {"Authorization": "Bearer test-admin-token-0123456789"}


def test_staff_inbox_in_a_real_browser(browser, tmp_path, monkeypatch):
    ARTIFACTS.mkdir(exist_ok=True)
    with FakeZaloBot(ZB_TOKEN) as zalo:
        zalo_bot_env(monkeypatch, tmp_path, zalo.url, ZB_TOKEN, ZB_SECRET)
        service = make_service(tmp_path / "bhxh.db")
        service.handoff = Handoff(service.store, clock=lambda: IN_HOURS)
        add_account(service.store, "hoa.nt", "editor", PASSWORD)
        with ServerThread(create_app(service)) as server:
            def citizen(user: str, text: str) -> None:
                response = httpx.post(f"{server.url}/webhooks/zalo-bot", json=bot_update(text, user=user),
                                      headers={"X-Bot-Api-Secret-Token": ZB_SECRET})
                assert response.status_code == 200

            def received(user: str) -> list[str]:
                return [p["text"] for p in zalo.sent() if p.get("chat_id") == user]

            citizen("u-lan-01", "gặp cán bộ")
            citizen("u-lan-01", "Tôi nghỉ việc 2 năm, SĐT 0912345678, muốn hỏi về lương hưu sớm")
            citizen("u-minh-02", "muốn gặp người thật")
            wait_for(lambda: len(received("u-lan-01")) == 1 and len(received("u-minh-02")) == 1)

            problems: list[str] = []
            page = browser.new_page(viewport={"width": 1366, "height": 900}, locale="vi-VN")
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.on("response", lambda r: problems.append(f"{r.status} {r.url}") if r.status >= 400 else None)
            page.goto(f"{server.url}/admin/handoff")
            page.wait_for_url("**/admin/login")
            page.fill("#name", "hoa.nt")
            page.fill("#password", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url("**/admin/dashboard")
            page.goto(f"{server.url}/admin/handoff")

            items = page.locator("#queue li button")
            items.first.wait_for()
            assert items.count() == 2 and page.locator("#count").inner_text() == "2"
            assert page.title().startswith("(2) Hộp thư cán bộ")  # the tab says how many wait
            assert "Zalo (bot)" in items.first.inner_text() and "Chờ" in items.first.inner_text()
            items.first.click()
            thread = page.locator("#messages")
            assert "[SĐT]" in thread.inner_text() and "0912345678" not in page.content()
            assert page.locator("#messages li.bot").first.inner_text().startswith("Tôi đã chuyển câu hỏi")

            page.click("#take")
            page.locator("#thread-meta", has_text="cán bộ: hoa.nt").wait_for()
            answer = "Chào bạn, nghỉ hưu sớm cần đủ điều kiện về tuổi và số năm đóng; bạn mang sổ BHXH tới BHXH huyện."
            page.fill("#reply-text", answer)
            page.click("#send")
            page.locator("#notice", has_text="Đã gửi tới người dân").wait_for()
            wait_for(lambda: received("u-lan-01")[-1] == messages.staff_reply(answer))
            page.locator("#messages li.staff", has_text="nghỉ hưu sớm").wait_for()
            assert page.evaluate("document.documentElement.scrollWidth") <= 1366
            page.screenshot(path=str(ARTIFACTS / "handoff-inbox-desktop.png"), full_page=True)

            citizen("u-lan-01", "cảm ơn cán bộ")  # silent: it goes to the inbox
            page.click("#close")
            page.locator("#notice", has_text="Đã đóng").wait_for()
            wait_for(lambda: received("u-lan-01")[-1] == messages.HANDOFF_CLOSED)
            assert len(received("u-lan-01")) == 3  # acknowledgement, the staff answer, the closing line
            page.locator("#kb-form").wait_for()  # a closed conversation can feed the knowledge base

            page.set_viewport_size({"width": 390, "height": 844})
            page.goto(f"{server.url}/admin/handoff")
            page.locator("#queue li button").first.wait_for()
            assert page.locator("#queue li button").count() == 1  # closed ones are hidden by default
            page.locator("#queue li button").first.click()
            assert page.locator(".queue").is_hidden() and page.locator("#thread").is_visible()
            assert page.evaluate("document.documentElement.scrollWidth") <= 390  # nothing overflows sideways
            page.screenshot(path=str(ARTIFACTS / "handoff-inbox-phone.png"), full_page=True)
            page.click("#to-queue")
            assert page.locator(".queue").is_visible()
            page.close()
    assert not problems, problems
    for name in ("handoff-inbox-desktop.png", "handoff-inbox-phone.png"):
        assert (ARTIFACTS / name).stat().st_size > 20_000


def test_the_web_chat_shows_the_staff_reply(browser, tmp_path, monkeypatch):
    """The web chat has no push: the page polls /api/handoff while a staff member has the chat."""
    clean_env(monkeypatch, tmp_path)
    service = make_service(tmp_path / "bhxh.db")
    service.handoff = Handoff(service.store, clock=lambda: IN_HOURS)
    with ServerThread(create_app(service)) as server:
        page, errors = phone_page(browser, f"{server.url}/")
        assert ask(page, "asdfgh qwerty").locator("button.person").is_visible()  # "not sure": a person may help
        ask(page, "rút bhxh 1 lần được không")
        page.locator(".msg.bot button.vote", has_text="👎").last.click()  # not helpful: a person is offered
        offer = page.locator(".msg.bot.offer")
        offer.wait_for()
        assert offer.inner_text().startswith(messages.HANDOFF_OFFER)
        offer.locator("button").click()
        page.locator(".msg.bot", has_text="Tôi đã chuyển câu hỏi").wait_for()
        refused: list[str] = []  # the next poll is refused (too many requests from this address): the page asks again

        def refuse_once(route) -> None:
            if refused:
                route.continue_()
                return
            refused.append(route.request.url)
            route.fulfill(status=429, content_type="application/json", body='{"detail": "quá nhiều"}')

        page.route("**/api/handoff?*", refuse_once)
        page.fill("#q", "tôi 58 tuổi, đóng 18 năm")
        page.keyboard.press("Enter")
        page.wait_for_function("!document.querySelector('#send').disabled")
        related = page.locator(".msg.bot .related button").first  # an earlier answer's button: to the staff member
        label = related.inner_text()
        bot_messages = page.locator(".msg.bot:not(.typing)").count()
        related.click()
        page.wait_for_function("!document.querySelector('#send').disabled")
        page.wait_for_timeout(300)
        assert page.locator(".msg.bot:not(.typing)").count() == bot_messages  # the bot says nothing
        (waiting,) = httpx.get(f"{server.url}/admin/handoffs", headers=STAFF).json()
        assert waiting["messages"][-1]["text"] == f"(bấm nút: {label})"
        assert waiting["channel"] == "web" and waiting["messages"][-2]["text"] == "tôi 58 tuổi, đóng 18 năm"
        assert waiting["reason"] == "downvote" and waiting["messages"][1]["text"] == "rút bhxh 1 lần được không"
        answer = "Chào bạn, 58 tuổi và 18 năm đóng thì bạn cần đóng tiếp cho đủ 20 năm để hưởng lương hưu."
        assert httpx.post(f"{server.url}/admin/handoffs/{waiting['id']}/reply", headers=STAFF,
                          json={"text": answer}).json()["sent"] is True
        staff = page.locator(".msg.bot.staff", has_text="18 năm đóng")
        staff.wait_for(timeout=15000)
        assert staff.inner_text().startswith("👤 Cán bộ BHXH trả lời:") and refused
        page.screenshot(path=str(ARTIFACTS / "handoff-web-chat-phone.png"))
        assert httpx.post(f"{server.url}/admin/handoffs/{waiting['id']}/close", headers=STAFF).status_code == 200
        page.locator(".msg.bot", has_text="đã kết thúc cuộc trò chuyện").wait_for(timeout=15000)
        assert "một lần" in ask(page, "rút bhxh 1 lần được không").inner_text().lower()  # the bot again
        assert page.locator(".msg.bot", has_text="Tôi đã chuyển câu hỏi").count() == 1  # not repeated by the poll
    assert not errors, errors
