"""The staff dashboard at /admin/dashboard: login, session cookie, CSRF, escaping, and a real browser run."""

from __future__ import annotations

import re
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from admin_api import accounts
from admin_api.app import create_app
from admin_api.auth import SESSION_COOKIE
from admin_api.demo_traffic import generate
from bot.engine import Engine
from bot.service import Service
from storage.store import LoggedQuestion, Store, load_hash_key
from tests.fakes.engines import real_engine

TOKEN = "dashboard-token-0123456789abcdef"
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run", "--disable-sync"]


@pytest.fixture(scope="module")
def engine(request: pytest.FixtureRequest) -> Engine:
    return real_engine(request)


@pytest.fixture(scope="module")
def traffic_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Five weeks of demo traffic with a spike on one-time withdrawal, generated once."""
    directory = tmp_path_factory.mktemp("dashboard")
    store = Store(directory / "bhxh.db", load_hash_key(directory))
    generate(store, days=35, per_day=220, spike_topic="lump_sum", spike_factor=3.0, seed=21)
    store.db.conn.close()
    return directory


@pytest.fixture
def service(engine: Engine, traffic_db: Path, tmp_path: Path) -> Service:
    for name in ("bhxh.db", "hash.key"):
        shutil.copy(traffic_db / name, tmp_path / name)
    return Service(engine, Store(tmp_path / "bhxh.db", load_hash_key(tmp_path)))


@pytest.fixture
def client(service: Service, monkeypatch: pytest.MonkeyPatch) -> TestClient:
    monkeypatch.setenv("BHXH_ADMIN_TOKEN", TOKEN)
    return TestClient(create_app(service), follow_redirects=False)


def login(client: TestClient, name: str = "Phạm Thu Hà") -> None:
    response = client.post("/admin/login", data={"token": TOKEN, "name": name})
    assert response.status_code == 303 and response.headers["location"] == "/admin/dashboard"


def test_the_dashboard_needs_a_login(client):
    response = client.get("/admin/dashboard")
    assert response.status_code == 303 and response.headers["location"] == "/admin/login"
    page = client.get("/admin/login")
    assert page.status_code == 200 and 'name="token"' in page.text and 'type="password"' in page.text
    wrong = client.post("/admin/login", data={"token": "guess"})
    assert wrong.status_code == 401 and "Mã truy cập không đúng" in wrong.text
    assert SESSION_COOKIE not in client.cookies


def test_a_bearer_header_also_opens_the_dashboard(client):
    response = client.get("/admin/dashboard", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200 and "Chủ đề đang tăng" in response.text


def test_login_sets_a_safe_session_cookie_that_is_not_the_token(client):
    response = client.post("/admin/login", data={"token": TOKEN})
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/admin" in cookie
    value = client.cookies[SESSION_COOKIE]
    assert TOKEN not in value and len(value) == 64


def test_the_dashboard_shows_trends_rising_topics_clusters_and_feedback(client, service):
    login(client)
    page = client.get("/admin/dashboard", params={"days": 7})
    assert page.status_code == 200
    html = page.text
    for heading in ("Câu hỏi theo ngày", "Chủ đề đang tăng", "Kết quả trả lời theo ngày", "Theo chủ đề",
                    "Câu hỏi chưa trả lời được", "Đánh giá theo mục trả lời"):
        assert heading in html
    assert html.count('<svg class="chart"') == 2 and html.count('class="spark"') >= 14
    rising = re.search(r'<ul class="rising">(.*?)</ul>', html, re.S)
    assert rising and "BHXH một lần và bảo lưu thời gian đóng" in rising.group(1)
    assert 'class="cluster"' in html and 'name="csrf"' in html
    assert "cdn" not in html.lower() and "https://" not in html  # nothing loaded from outside
    assert page.headers["content-security-policy"].startswith("default-src 'self'")
    filtered = client.get("/admin/dashboard", params={"days": 30, "channel": "telegram"})
    assert filtered.status_code == 200 and '<option value="telegram" selected>' in filtered.text


def test_user_text_is_escaped(client, service):
    for n in range(400):  # the largest unanswered cluster, so the page shows it
        # A real question around the markup: junk (gibberish, one word) is not clustered on the page.
        service.store.log_question(LoggedQuestion("web", f"x{n}", "&lt;script&gt;alert('xss')&lt;/script&gt; thẻ "
                                                    "bảo hiểm y tế &lt;b&gt;đỏ&lt;/b&gt; lương hưu",
                                                  "script alert xss thẻ bảo hiểm y tế b đỏ b lương hưu", None, None,
                                                  0.5, "declined", "not_sure", 1.0))
    login(client)
    html = client.get("/admin/dashboard", params={"days": 7}).text
    assert "&lt;script&gt;alert(&#39;xss&#39;)&lt;/script&gt;" in html
    assert "<script>alert" not in html and "<b>đỏ</b>" not in html


def test_the_cookie_reads_the_api_but_cannot_change_anything(client, service):
    login(client)
    assert client.get("/admin/export/topics.csv").status_code == 200
    assert client.get("/admin/topics").status_code == 200
    assert client.post("/admin/entries", json={"id": "x"}).status_code == 401
    attach = {"entry_id": "lh-dieu-kien-huong-luong-huu", "question_id": "1", "days": "7", "channel": ""}
    assert client.post("/admin/dashboard/attach", data=attach).status_code == 403  # no CSRF field
    assert client.post("/admin/dashboard/attach", data={**attach, "csrf": "0" * 64}).status_code == 403
    assert service.store.db["staff_entries"].count == 0


def test_the_attach_form_adds_a_paraphrase(client, service):
    login(client)
    html = client.get("/admin/dashboard", params={"days": 7}).text
    csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', html).group(1)
    question_id = re.search(r'name="question_id" value="(\d+)"', html).group(1)
    # No entry is preselected (issue 18): the first option is an empty, disabled prompt.
    entry_id = re.search(r'<select name="entry_id" required>\s*<option value="" selected disabled>[^<]*</option>'
                         r'\s*<option value="([^"]+)"', html).group(1)
    response = client.post("/admin/dashboard/attach", data={"csrf": csrf, "question_id": question_id,
                                                             "entry_id": entry_id, "days": "7", "channel": ""})
    assert response.status_code == 303 and "ok=1" in response.headers["location"]
    assert service.store.db["staff_entries"].count == 1
    assert service.store.db.execute("SELECT action, target, actor FROM audit").fetchall() == [
        ("entry.paraphrase", entry_id, "automation")]  # a token login acts as "automation"
    done = client.get(response.headers["location"])
    assert "Đã thêm" in done.text


def test_logout_ends_the_session(client):
    login(client)
    response = client.post("/admin/logout")
    assert response.status_code == 303 and response.headers["location"] == "/admin/login"
    assert client.get("/admin/dashboard").status_code == 303


# ---------------------------------------------------------------- a real browser


@pytest.fixture
def live_server(service: Service, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    import uvicorn

    monkeypatch.setenv("BHXH_ADMIN_TOKEN", TOKEN)
    app = create_app(service)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed (make browser)")
def test_dashboard_in_headless_chromium(live_server, service):
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    problems: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1366, "height": 900}, locale="vi-VN")
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: problems.append(str(e)))
            accounts.add_account(service.store, "tuan.vm", "editor", "mat-khau-dai-12")
            page.goto(f"{live_server}/admin/dashboard")
            assert page.url.endswith("/admin/login")
            page.click("details.emergency summary")
            page.fill("#token", "not the token")
            page.click("button[type=submit]")
            assert page.locator(".alert.bad").inner_text().startswith("Mã truy cập không đúng")
            assert problems == ["Failed to load resource: the server responded with a status of 401 (Unauthorized)"]
            problems.clear()
            page.fill("#name", "tuan.vm")
            page.fill("#password", "mat-khau-dai-12")
            page.click("button[type=submit]")
            page.wait_for_url("**/admin/dashboard")
            assert page.locator(".who").inner_text() == "tuan.vm · Biên tập"
            page.select_option("select[name=days]", "7")  # the script submits the filter on change
            page.wait_for_url("**/admin/dashboard?days=7*")
            assert page.locator("h2", has_text="Câu hỏi theo ngày").is_visible()
            assert page.locator("ul.rising li", has_text="BHXH một lần").count() == 1
            assert page.locator("svg.chart polyline").count() >= 6
            assert page.locator("article.cluster").count() >= 4
            box = page.locator("svg.chart").first.bounding_box()
            assert box and box["width"] > 900 and box["height"] > 250
            assert page.evaluate("document.documentElement.scrollWidth") <= 1366  # nothing overflows sideways
            page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)

            page.on("dialog", lambda dialog: dialog.accept())
            page.locator("article.cluster select[name=entry_id]").first.select_option(index=1)
            page.locator("article.cluster button[type=submit]").first.click()
            page.wait_for_url("**/admin/dashboard?*#unanswered")
            assert page.locator(".alert.good").inner_text().startswith("Đã thêm")
            page.click("form.logout button")
            page.wait_for_url("**/admin/login")
        finally:
            browser.close()
    assert not problems, problems
    assert (ARTIFACTS / "dashboard.png").stat().st_size > 50_000
    assert service.store.db.execute("SELECT actor FROM audit WHERE action = 'entry.paraphrase'").fetchall() == [
        ("tuan.vm",)]
