"""The review queue, the search with its drill-downs and all unanswered clusters (issue 18 items 1-2):
the staff API on demo traffic (which now carries every kind of signal), the same reports on SQLite and
PostgreSQL, and the pages in a real browser (screenshots in test-artifacts/)."""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from admin_api import clusters, question_log, review_queue
from admin_api.app import create_app
from admin_api.demo_traffic import generate
from bot import signals
from bot.engine import Engine
from bot.service import Service
from retrieval.normalize import fold_accents, tokenize
from storage.factory import open_store
from storage.store import Store, load_hash_key
from tests.conftest import ARTIFACTS, CHROMIUM
from tests.pg import Cluster, pg_cluster  # noqa: F401 (fixture)
from tests.test_dashboard import TOKEN, live_server  # noqa: F401 (fixture)

AUTH = {"Authorization": f"Bearer {TOKEN}"}
NOW = dt.datetime(2026, 12, 3, 9, 30, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def service(lexical_engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> Service:
    """Three weeks of demo traffic (bulk, as `bhxh demo-traffic --fast`) behind one service for the module;
    the tests only add rows."""
    directory = tmp_path_factory.mktemp("review")
    traffic = Store(directory / "bhxh.db", load_hash_key(directory))
    assert generate(traffic, days=21, per_day=160, spike_topic="lump_sum", seed=33).signals > 0
    return Service(lexical_engine, traffic)


@pytest.fixture
def client(service: Service, monkeypatch: pytest.MonkeyPatch) -> TestClient:
    monkeypatch.setenv("BHXH_ADMIN_TOKEN", TOKEN)
    return TestClient(create_app(service, ip_limit=10_000), follow_redirects=False)


def test_demo_traffic_logs_every_kind_of_signal(service: Service) -> None:
    counts = dict(service.store.db.execute("SELECT kind, COUNT(*) FROM signals GROUP BY kind").fetchall())
    assert set(counts) == set(signals.KINDS), counts
    orphans = service.store.db.execute(
        "SELECT COUNT(*) FROM signals s LEFT JOIN questions q ON q.id = s.question_id WHERE q.id IS NULL").fetchone()
    assert orphans[0] == 0
    declined = service.store.db.execute("SELECT COUNT(*) FROM questions WHERE kind = 'out_of_scope'").fetchone()[0]
    assert counts[signals.OFF_TOPIC] == declined


def test_the_queue_ranks_cases_by_their_weighted_signals(client: TestClient, service: Service) -> None:
    queue = client.get("/admin/review-queue", params={"days": 14, "limit": 30}, headers=AUTH).json()
    cases = queue["cases"]
    assert queue["cases_total"] > 30 and len(cases) == 30 and queue["weights"] == review_queue.SIGNAL_WEIGHTS
    assert [c["score"] for c in cases] == sorted((c["score"] for c in cases), reverse=True)
    for case in cases:
        expected = sum(queue["weights"][k] * (math.log2(1 + n) if k in queue["weak_signals"] else n)
                       for k, n in case["signals"].items())
        assert case["score"] == pytest.approx(expected, abs=1e-3)
        assert case["question"] and case["question_ids"] and case["nearest"]
        if case["entry_id"]:
            assert case["entry_title"] == service.engine.kb.entries[case["entry_id"]].question
    top = cases[0]
    strong = {signals.THUMBS_DOWN, signals.NEGATION, signals.REPHRASE, signals.HANDOFF, signals.NONE_OF_THESE}
    assert strong & set(top["signals"]), top  # a case with real complaints leads, not the off-topic pile
    assert any(c["reasons"] for c in cases)
    later = client.get("/admin/review-queue", params={"days": 14, "limit": 30, "offset": 30}, headers=AUTH).json()
    assert later["cases"] and not {c["id"] for c in later["cases"]} & {c["id"] for c in cases}
    downs = client.get("/admin/review-queue", params={"days": 14, "kind": "thumbs_down"}, headers=AUTH).json()
    assert downs["cases"] and all(set(c["signals"]) == {"thumbs_down"} for c in downs["cases"])
    picks = client.get("/admin/review-queue", params={"days": 14, "kind": "menu_pick"}, headers=AUTH).json()
    assert picks["cases"] and all(c["picked"] and c["outcome"] == "choices" for c in picks["cases"])


def test_signals_from_a_conversation_reach_the_queue(lexical_engine: Engine, tmp_path: Path) -> None:
    engine = lexical_engine
    service = Service(engine, Store(tmp_path / "fresh.db", b"k" * 32))
    handled = next(h for text in ("lương hưu tối thiểu là bao nhiêu", "điều kiện hưởng bhxh một lần")
                   if (h := service.handle("web", "dân-1", text)).reply.answered)
    service.handle("web", "dân-1", "không phải")
    assert review_queue.review_queue(service.store, engine, days=1).cases[0].signals == {"negation": 1}
    service.feedback("web", "dân-1", -1, question_id=handled.question_id, reason="Tôi hỏi cho mẹ tôi 0912345678")
    queue = review_queue.review_queue(service.store, engine, days=1)  # a new signal: not the cached report
    [case] = queue.cases
    assert case.entry_id == handled.reply.entry_id and case.signals == {"thumbs_down": 1, "negation": 1}
    assert case.score == 6.0 and case.question_ids == [handled.question_id]
    assert case.reasons and "0912345678" not in case.reasons[0]


def test_web_votes_reasons_and_button_picks_are_signals(client: TestClient, service: Service) -> None:
    before = service.store.db.execute("SELECT MAX(id) FROM signals").fetchone()[0]
    asked = next(r for text in ("lương hưu tối thiểu là bao nhiêu", "điều kiện hưởng bhxh một lần")
                 if (r := client.post("/api/ask", json={"question": text, "user_id": "web-1"}).json())["answered"])
    vote = {"question_id": asked["question_id"], "value": -1, "user_id": "web-1"}
    assert client.post("/api/feedback", json=vote).json()["ok"]  # (it may offer a staff member too)
    assert client.post("/api/feedback", json={**vote, "reason": "Khó hiểu, gọi 0987654321"}).json()["ok"]
    entry = next(iter(service.engine.kb.entries))
    assert client.post(f"/api/choose/{entry}", params={"user_id": "web-1"}).status_code == 200
    rows = service.store.db.execute("SELECT kind, question_id, entry_id, detail FROM signals WHERE id > ? ORDER BY id",
                                    [before]).fetchall()
    assert [r[0] for r in rows] == ["thumbs_down", "thumbs_down", "menu_pick"]
    assert rows[1][1] == asked["question_id"] and rows[1][3].startswith("Khó hiểu") and "0987654321" not in rows[1][3]
    assert rows[2][1:3] == (asked["question_id"], entry)  # the tap is about the question just answered
    queue = review_queue.review_queue(service.store, service.engine, days=1, kind="thumbs_down")
    case = next(c for c in queue.cases if asked["question_id"] in c.question_ids)
    assert case.signals == {"thumbs_down": 1} and case.reasons == [rows[1][3]]  # one citizen, one 👎


def words_of(text: str) -> list[str]:
    return tokenize(fold_accents(text or ""))


def test_search_finds_every_matching_question_and_nothing_else(client: TestClient, service: Service) -> None:
    found = client.get("/admin/search", params={"q": "luong huu", "limit": 500}, headers=AUTH).json()
    everything = service.store.db.execute("SELECT id, normalized FROM questions").fetchall()
    expected = {i for i, text in everything
                if all(any(w.startswith(q) for w in words_of(text)) for q in ("luong", "huu"))}
    assert found["total"] == len(expected) > 0
    assert {q["id"] for q in found["items"]} <= expected
    accented = client.get("/admin/search", params={"q": "Lương Hưu", "limit": 1}, headers=AUTH).json()
    assert accented["total"] == found["total"]
    pages = [client.get("/admin/search", params={"q": "luong huu", "limit": 100}, headers=AUTH).json()]
    while pages[-1]["next_cursor"]:
        pages.append(client.get("/admin/search", params={"q": "luong huu", "limit": 100,
                                                          "cursor": pages[-1]["next_cursor"]}, headers=AUTH).json())
    assert {q["id"] for p in pages for q in p["items"]} == expected
    assert not found["total_capped"]


def test_a_search_count_stops_at_its_cap(service: Service, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(question_log, "SEARCH_COUNT_LIMIT", 10)
    page = question_log.list_questions(service.store, question_log.QuestionFilter(search="luong"), limit=5)
    assert page.total == 10 and page.total_capped and len(page.items) == 5 and page.next_cursor


def test_drill_down_from_an_entry_a_feedback_row_a_topic_and_a_cluster(client: TestClient) -> None:
    feedback = client.get("/admin/feedback", headers=AUTH).json()["entries"][0]
    downs = client.get("/admin/search", params={"entry_id": feedback["entry_id"], "feedback": -1, "limit": 500},
                       headers=AUTH).json()
    assert downs["total"] == feedback["down"] and all(q["entry_id"] == feedback["entry_id"] and q["feedback"] == -1
                                                      for q in downs["items"])
    topic = client.get("/admin/search", params={"topic": "maternity", "days": 7}, headers=AUTH).json()
    assert topic["total"] and all(q["topic"] == "maternity" for q in topic["items"])

    first = client.get("/admin/clusters", params={"days": 14, "limit": 5}, headers=AUTH).json()
    second = client.get("/admin/clusters", params={"days": 14, "limit": 5, "offset": 5}, headers=AUTH).json()
    assert first["clusters_total"] > 10 and first["clusters_total"] == second["clusters_total"]
    assert not {c["id"] for c in first["clusters"]} & {c["id"] for c in second["clusters"]}
    cluster = second["clusters"][0]
    members = client.get("/admin/search", params={"cluster": cluster["id"], "cluster_days": 14, "limit": 500},
                         headers=AUTH).json()
    assert members["total"] == cluster["size"]
    assert cluster["question_ids"][0] in {q["id"] for q in members["items"]}
    gone = client.get("/admin/search", params={"cluster": "000000000000"}, headers=AUTH)
    assert gone.status_code == 404


def test_clusters_hide_junk_and_split_intents(client: TestClient, service: Service) -> None:
    report = client.get("/admin/clusters", params={"days": 14, "limit": 200}, headers=AUTH).json()
    known = service.engine._known_words
    assert report["junk_questions"] > 0 and report["junk_texts"] > 0
    assert not any(clusters.is_junk(c["representative"], known) for c in report["clusters"])
    with_junk = client.get("/admin/clusters", params={"days": 14, "limit": 200, "include_junk": True},
                           headers=AUTH).json()
    assert with_junk["clusters_total"] > report["clusters_total"]
    assert clusters.is_junk("asdfgh", known) and clusters.is_junk("ok ok", known)
    assert not clusters.is_junk("quên mật khẩu vssid thì lấy lại sao", known)
    # Two intents that share the words "rút", "một lần" stay apart: their nearest entries differ.
    texts = ["rút bhxh một lần được không", "rut bhxh 1 lan duoc ko", "luật nào quy định rút bảo hiểm một lần",
             "điều mấy của luật quy định hưởng bhxh một lần"]
    groups = clusters.intent_groups(texts, [None] * len(texts), service.engine)
    assert len(groups) >= 2 and any(0 in g and 1 in g for g in groups)


# ---------------------------------------------------------------- both backends


@pytest.fixture(scope="module")
def stores(pg_cluster: Cluster, tmp_path_factory: pytest.TempPathFactory):  # noqa: F811
    name = pg_cluster.create_database()
    sqlite = Store(Path(tmp_path_factory.mktemp("queue")) / "bhxh.db", b"q" * 32)
    postgres = open_store(pg_cluster.database_url(name), b"q" * 32)
    try:
        for store in (sqlite, postgres):
            generate(store, days=14, per_day=120, seed=8, now=NOW)
        yield sqlite, postgres
    finally:
        postgres.close()
        pg_cluster.drop_database(name)


def test_queue_search_and_clusters_are_the_same_on_both_backends(stores: Any, lexical_engine: Engine) -> None:
    a, b = (review_queue.review_queue(s, lexical_engine, days=7, limit=40, now=NOW) for s in stores)
    assert a.cases and a.model_dump() == b.model_dump()
    chosen = question_log.QuestionFilter(search="đóng tự nguyện", start=NOW - dt.timedelta(days=14), end=NOW)
    a, b = (question_log.list_questions(s, chosen, limit=30) for s in stores)
    assert a.total > 0 and a.total == b.total and [q.text for q in a.items] == [q.text for q in b.items]
    a, b = (clusters.unanswered(s, lexical_engine, days=7, limit=10, offset=3, now=NOW) for s in stores)
    assert a.clusters and a == b
    counts = [Counter(dict(s.db.execute("SELECT kind, COUNT(*) FROM signals GROUP BY kind").fetchall()))
              for s in stores]
    assert counts[0] == counts[1] and len(counts[0]) == len(signals.KINDS)


# ---------------------------------------------------------------- a real browser


@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed (make browser)")
def test_review_queue_search_and_drill_down_in_chromium(live_server: str, service: Service) -> None:  # noqa: F811
    from fakes.server import wait_for
    from fakes.web import ask
    from playwright.sync_api import sync_playwright

    from tests.conftest import LAUNCH_ARGS

    ARTIFACTS.mkdir(exist_ok=True)
    problems: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1366, "height": 900}, locale="vi-VN", extra_http_headers=AUTH)
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.goto(f"{live_server}/admin/dashboard?days=14")
            page.click("nav.staff-nav a[href='/admin/dashboard/review']")
            page.wait_for_url("**/admin/dashboard/review")
            page.select_option("select[name=days]", "14")
            page.click("#review-queue button[type=submit]")
            page.wait_for_url("**/admin/dashboard/review?days=14*")
            cases = page.locator("li.case")
            assert cases.count() >= 10
            assert cases.first.locator(".signal").count() >= 1 and cases.first.locator(".score").inner_text()
            assert page.locator("li.case .nearest a").count() >= 10
            assert page.evaluate("document.documentElement.scrollWidth") <= 1366
            page.screenshot(path=str(ARTIFACTS / "staff-review-queue.png"), full_page=False)

            with_entry = page.locator("li.case", has=page.locator("a", has_text="Các câu bị 👎")).first
            with_entry.locator("a", has_text="Mọi câu được trả lời bằng mục này").click()
            page.wait_for_url("**/admin/dashboard/questions?entry_id=*")
            assert page.locator("p.drill").is_visible() and page.locator("table.results tbody tr").count() >= 1

            page.click("a[href='/admin/dashboard/questions']")
            page.fill("input[name=q]", "luong huu")
            page.click("#search button[type=submit]")
            page.wait_for_url("**/admin/dashboard/questions?q=luong+huu*")
            total = int(page.locator(".found-total").inner_text())
            assert total > 0 and page.locator("table.results tbody tr").count() == min(total, 25)
            assert "lương hưu" in page.locator("table.results tbody").inner_text().lower()
            page.screenshot(path=str(ARTIFACTS / "staff-search.png"), full_page=False)

            page.click("a[href='/admin/dashboard/clusters']")
            page.locator("article.cluster .actions a").first.click()
            page.wait_for_url("**/admin/dashboard/questions?cluster=*")
            assert page.locator("table.results tbody tr").count() >= 1

            chat = browser.new_page(viewport={"width": 390, "height": 844}, locale="vi-VN")  # a citizen's 👎
            chat.on("pageerror", lambda e: problems.append(str(e)))
            chat.goto(f"{live_server}/")
            answer = ask(chat, "lương hưu tối thiểu là bao nhiêu")
            answer.locator("button.vote", has_text="Chưa đúng").click()
            chat.locator("button.reason", has_text="Khó hiểu").click()  # (a staff offer may follow the answer)
            chat.locator(".feedback .thanks").wait_for()
            assert wait_for(lambda: service.store.db.execute(
                "SELECT detail FROM signals WHERE kind = 'thumbs_down' ORDER BY id DESC LIMIT 1").fetchone()) == (
                "Khó hiểu",)

            page.goto(f"{live_server}/admin/dashboard?days=14")  # the dashboard's own clusters drill down too
            link = page.locator("#unanswered p.drill-link a").first
            size = int(link.inner_text().split()[1].replace(".", ""))
            link.click()
            page.wait_for_url("**/admin/dashboard/questions?cluster=*")
            assert int(page.locator(".found-total").inner_text()) == size
        finally:
            browser.close()
    assert not problems, problems
    assert (ARTIFACTS / "staff-review-queue.png").stat().st_size > 30_000
    assert (ARTIFACTS / "staff-search.png").stat().st_size > 30_000
