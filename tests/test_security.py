"""Regression tests for the December 2026 security review (../shared/reference/security-review-2026-12.md):
one test (or more) per finding fixed, each failing on the code the review tested (commit f3642df)."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from fakes.server import wait_for
from fakes.service import clean_env, make_service
from fakes.telegram import FakeTelegram, text_update
from fastapi.testclient import TestClient

from admin_api.app import create_app
from bot.service import RateLimiter
from retrieval.normalize import redact_pii
from storage.store import MAX_PENDING, LoggedQuestion, Store

# ------------------------------------------------------------ F1: no request may freeze the server

# The review's adversarial shapes (its table under F1) and a few more, at a given length.
SHAPES: dict[str, Callable[[int], str]] = {
    "name intro + spaces": lambda n: "tôi tên" + " " * (n - 8) + "!",
    "letters": lambda n: "a" * n,
    "digits": lambda n: "1" * n,
    "letter opening + letters": lambda n: "kính gửi " + "x" * (n - 9),
    "accented letters": lambda n: "ố" * n,
    "digits and spaces": lambda n: "1 " * (n // 2),
    "at signs": lambda n: "a@" * (n // 2),
    "spelled digits": lambda n: "ba " * (n // 3),
    "tôi là": lambda n: "tôi là " * (n // 7),
    "tags": lambda n: "<" * n,
}


def _cost(fn: Callable[[], object], repeats: int = 3) -> float:
    """The least time of a few runs: what the work costs when the shared machine leaves us alone."""
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return best


@pytest.mark.parametrize("shape", list(SHAPES))
def test_redacting_20_kb_costs_about_what_2_kb_costs(shape: str) -> None:
    """Linear and cut first: 10x the input may not cost more than 8x (plus 50 ms of slack for a busy
    machine). The review's code took 1.6–8.8 s on 20,000 characters against <= 0.1 s on 2,000."""
    short, long = SHAPES[shape](2_000), SHAPES[shape](20_000)
    redact_pii(short)  # the character table is built on first use
    assert _cost(lambda: redact_pii(long)) < 8 * _cost(lambda: redact_pii(short)) + 0.05


def test_the_log_stores_a_cut_text_and_pays_for_a_cut_text(tmp_path: Path) -> None:
    """Store.log_question redacts at most LOGGED_CHARS (+ a margin) of the raw text, not the 20,000 the
    API accepts: storing a 20 KB adversarial question costs about what a 2 KB one does."""
    store = Store(tmp_path / "bhxh.db", b"k")

    def log(text: str) -> None:
        store.log_question(LoggedQuestion("web", "u", text, "x", None, None, 0.0, "not_sure", "not_sure", 1.0))

    for shape in ("name intro + spaces", "letters", "digits", "letter opening + letters"):
        short, long = SHAPES[shape](2_000), SHAPES[shape](20_000)
        log(short)
        assert _cost(lambda long=long: log(long)) < 8 * _cost(lambda short=short: log(short)) + 0.05, shape
    lengths = [n for (n,) in store.db.execute("SELECT length(text) FROM questions")]
    assert max(lengths) <= 4000


def test_a_20_kb_question_through_the_api_is_answered_and_logged_cut(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Over HTTP: a 20,000-character worst case costs about what its 2,000-character version does (the
    review's code: 7.6–8.0 s against ~0.1 s) and is logged cut to 4,000 characters."""
    clean_env(monkeypatch, tmp_path)
    service = make_service(tmp_path / "bhxh.db")
    with TestClient(create_app(service, ip_limit=1000)) as client:
        def ask(question: str) -> None:
            response = client.post("/api/ask", json={"question": question, "user_id": "redos"})
            assert response.status_code == 200 and response.json()["answer"]

        ask("lương hưu")  # warm-up
        shape = SHAPES["name intro + spaces"]
        short_cost = _cost(lambda: ask(shape(2_000)))
        long_cost = _cost(lambda: ask(shape(20_000)))
    assert long_cost < 8 * short_cost + 0.5, (long_cost, short_cost)
    (text,) = service.store.db.execute("SELECT text FROM questions ORDER BY id DESC LIMIT 1").fetchone()
    assert len(text) <= 4000


# ------------------------------------------------------------ F4: feedback bound to the asker, limited


@pytest.fixture()
def web(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    clean_env(monkeypatch, tmp_path)
    service = make_service(tmp_path / "bhxh.db")
    with TestClient(create_app(service, ip_limit=30)) as client:
        yield client, service


def _ask_as(client: TestClient, user: str, question: str = "rút bhxh 1 lần được không") -> dict:
    response = client.post("/api/ask", json={"question": question, "user_id": user})
    assert response.status_code == 200
    return response.json()


def _feedback_rows(service) -> list[tuple]:
    return service.store.db.execute("SELECT question_id, entry_id, value FROM feedback ORDER BY id").fetchall()


def test_a_vote_on_someone_elses_question_is_refused_and_changes_nothing(web) -> None:
    client, service = web
    asked = _ask_as(client, "the-asker")
    response = client.post("/api/feedback", json={"value": -1, "question_id": asked["question_id"],
                                                  "user_id": "not-the-asker"})
    assert response.status_code == 403 and response.json()["detail"]
    assert service.store.db.execute("SELECT feedback FROM questions WHERE id = ?",
                                    [asked["question_id"]]).fetchone() == (None,)
    assert _feedback_rows(service) == []
    own = client.post("/api/feedback", json={"value": 1, "question_id": asked["question_id"], "user_id": "the-asker"})
    assert own.status_code == 200 and _feedback_rows(service) == [(asked["question_id"], asked["entry_id"], 1)]


def test_one_vote_per_visitor_and_question_the_last_one_counts(web) -> None:
    client, service = web
    asked = _ask_as(client, "voter")
    for value in (1, -1, -1, 1, -1):
        assert client.post("/api/feedback", json={"value": value, "question_id": asked["question_id"],
                                                  "user_id": "voter"}).status_code == 200
    assert _feedback_rows(service) == [(asked["question_id"], asked["entry_id"], -1)]


def test_a_vote_names_an_existing_entry_and_rates_its_questions_own_entry(web) -> None:
    client, service = web
    invented = "THÔNG BÁO: mã truy cập hết hạn, gửi mã mới về zalo 0900000000"
    assert client.post("/api/feedback", json={"value": -1, "entry_id": invented}).status_code == 422
    asked = _ask_as(client, "voter-2")
    other = next(e for e in service.engine.kb.entries if e != asked["entry_id"])
    client.post("/api/feedback", json={"value": -1, "question_id": asked["question_id"], "entry_id": other,
                                       "user_id": "voter-2"})
    assert _feedback_rows(service) == [(asked["question_id"], asked["entry_id"], -1)]


def test_votes_are_rate_limited_per_address(web) -> None:
    client, service = web
    entry = next(iter(service.engine.kb.entries))
    statuses = [client.post("/api/feedback", json={"value": 1, "entry_id": entry, "user_id": f"v{i}"}).status_code
                for i in range(40)]
    assert statuses[:30] == [200] * 30 and set(statuses[30:]) == {429}
    assert len(_feedback_rows(service)) == 30


# ------------------------------------------------------------ F5: staff sessions on the server

STAFF_TOKEN = "test-admin-token-0123456789"  # fakes.service.clean_env


def _login(client: TestClient) -> str:
    response = client.post("/admin/login", data={"token": STAFF_TOKEN}, follow_redirects=False)
    assert response.status_code == 303
    return client.cookies["bhxh_staff_session"]


def test_a_session_cookie_stops_working_at_logout(web) -> None:
    client, _ = web
    cookie = _login(client)
    assert client.get("/admin/questions").status_code == 200
    assert client.post("/admin/logout", follow_redirects=False).status_code == 303
    client.cookies.set("bhxh_staff_session", cookie, path="/admin")  # a copy kept by someone else
    assert client.get("/admin/questions").status_code == 401
    assert client.get("/admin/dashboard", follow_redirects=False).status_code == 303  # back to the login page


def test_each_login_gets_its_own_session_and_csrf_value(web) -> None:
    client, service = web
    for n in range(5):  # an unanswered cluster, so the dashboard shows its attach form (with the CSRF field)
        service.store.log_question(LoggedQuestion("web", f"x{n}", "thủ tục xyz ở đâu", "thủ tục xyz ở đâu", None,
                                                  None, 0.5, "declined", "not_sure", 1.0))
    first = _login(client)
    csrf_first = re.search(r'name="csrf" value="([0-9a-f]+)"', client.get("/admin/dashboard").text).group(1)
    client.cookies.clear()
    second = _login(client)
    csrf_second = re.search(r'name="csrf" value="([0-9a-f]+)"', client.get("/admin/dashboard").text).group(1)
    assert first != second and csrf_first != csrf_second
    # The first session's CSRF value is refused inside the second session.
    attach = {"csrf": csrf_first, "question_id": "1", "entry_id": "x"}
    assert client.post("/admin/dashboard/attach", data=attach, follow_redirects=False).status_code == 403


def test_a_session_expires_on_the_server(web) -> None:
    client, _ = web
    client.app.state.staff_auth.session_seconds = 1.0
    cookie = _login(client)
    assert client.get("/admin/questions").status_code == 200
    time.sleep(1.2)
    client.cookies.set("bhxh_staff_session", cookie, path="/admin")  # whatever the browser's Max-Age said
    assert client.get("/admin/questions").status_code == 401


# ------------------------------------------------------------ F6: rate limiters with bounded memory


def test_rate_limiter_forgets_idle_users_and_stays_fast() -> None:
    limiter = RateLimiter(20, 60.0)
    for i in range(100_000):  # the review: 100,000 one-message users
        limiter.allow(f"web:user-{i}", now=float(i) / 1000)
    later = 100.0 + 7200
    cost_big = _cost(lambda: [limiter.allow(f"web:new-{i}", now=later) for i in range(200)])
    assert len(limiter) <= 200  # the idle users are gone (the review's code kept all 100,200)
    small = RateLimiter(20, 60.0)
    cost_small = _cost(lambda: [small.allow(f"web:new-{i}", now=later) for i in range(200)])
    assert cost_big < 8 * cost_small + 0.05  # the review's code: 5.5 ms per call, >1 s for 200


def test_rate_limiter_table_is_capped_even_within_one_window() -> None:
    limiter = RateLimiter(20, 60.0, max_keys=1_000)
    for i in range(5_000):
        assert limiter.allow(f"web:flood-{i}", now=1.0)
    assert len(limiter) == 1_000
    for _ in range(20):
        limiter.allow("web:steady", now=2.0)
    assert not limiter.allow("web:steady", now=3.0)  # the limit itself still holds
    assert limiter.allow("web:steady", now=62.5)  # and frees up after the window


# ------------------------------------------------------------ F7: slow clients time out


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory):
    """`bhxh serve` itself (lexical search only, to start fast) with 1-second head and body timeouts."""
    data = tmp_path_factory.mktemp("served")
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "ZALO_"))}
    env.update(BHXH_DATA_DIR=str(data), BHXH_EMBED_MODEL="none", BHXH_ADMIN_TOKEN=STAFF_TOKEN,
               BHXH_HEADER_TIMEOUT="1", BHXH_BODY_TIMEOUT="1")
    server = subprocess.Popen([sys.executable, "-m", "bhxh.cli", "serve", "--port", str(port)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.3)
        else:
            pytest.fail("bhxh serve did not start")
        yield port
    finally:
        server.terminate()
        server.wait(timeout=30)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _closed_within(sock: socket.socket, seconds: float, trickle: bytes | None = None) -> tuple[bool, bytes]:
    """Whether the server closed the connection within `seconds` (sending `trickle` every 0.3 s)."""
    sock.settimeout(0.3)
    received = b""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(4096)
            if not chunk:
                return True, received
            received += chunk
        except TimeoutError:
            pass
        except OSError:
            return True, received
        if trickle:
            try:
                sock.sendall(trickle)
            except OSError:
                return True, received
    return False, received


def test_a_request_head_sent_slowly_is_cut_off(served: int) -> None:
    """Slowloris: the review's connections sending one header every 10 s were all open after 70 s."""
    with socket.create_connection(("127.0.0.1", served)) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        closed, _ = _closed_within(sock, 6, trickle=b"X-a: b\r\n")
    assert closed


def test_a_body_sent_slowly_is_answered_408_and_closed(served: int) -> None:
    with socket.create_connection(("127.0.0.1", served)) as sock:
        sock.sendall(b"POST /api/ask HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 60000\r\n\r\n{\"question\": \"")
        closed, received = _closed_within(sock, 6)
    assert closed and received.startswith(b"HTTP/1.1 408"), received[:100]


def test_the_server_answers_while_slow_connections_are_held(served: int) -> None:
    slow = [socket.create_connection(("127.0.0.1", served)) for _ in range(100)]
    try:
        for sock in slow:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        assert httpx.get(f"http://127.0.0.1:{served}/healthz", timeout=10).status_code == 200
        time.sleep(2.5)
        assert all(_closed_within(sock, 0.5)[0] for sock in slow)  # all cut off after the head timeout
    finally:
        for sock in slow:
            sock.close()


# ------------------------------------------------------------ F3: no raw platform ids in stored keys

TG_TOKEN, TG_SECRET = "123456789:AAHsecurityTestToken_abcdefghijkl", "security-webhook-secret_01"
CHAT_ID = 424242


def test_telegram_keys_are_stored_hashed_not_with_the_chat_id(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    clean_env(monkeypatch, tmp_path)
    with FakeTelegram(TG_TOKEN) as tg:
        for name, value in {"TELEGRAM_BOT_TOKEN": TG_TOKEN, "TELEGRAM_WEBHOOK_SECRET": TG_SECRET,
                            "TELEGRAM_API_BASE_URL": tg.base_url, "TELEGRAM_API_FILE_URL": tg.file_url}.items():
            monkeypatch.setenv(name, value)
        service = make_service(tmp_path / "bhxh.db")
        with TestClient(create_app(service)) as client:
            update = text_update("lương hưu tính thế nào", user={"id": CHAT_ID, "is_bot": False, "first_name": "Lan"})
            response = client.post("/webhooks/telegram", json=update,
                                   headers={"X-Telegram-Bot-Api-Secret-Token": TG_SECRET})
            assert response.status_code == 200
            wait_for(lambda: tg.sent())
            wait_for(lambda: service.store.db.execute("SELECT count(*) FROM inbox WHERE done_ts IS NULL")
                     .fetchone()[0] == 0)
            # A redelivery is still recognised by its hashed key.
            again = client.post("/webhooks/telegram", json=update,
                                headers={"X-Telegram-Bot-Api-Secret-Token": TG_SECRET})
            assert again.json().get("duplicate") is True and len(tg.sent()) == 1
    db = service.store.db
    keys = [k for (k,) in db.execute("SELECT message_id FROM questions")] + \
        [k for (k,) in db.execute("SELECT delivery_key FROM inbox")]
    assert keys and all(re.fullmatch(r"h:[0-9a-f]{32}", k) for k in keys), keys
    for table in ("questions", "inbox", "conversations", "feedback"):
        for row in db.execute(f"SELECT * FROM {table}"):
            assert not any(str(CHAT_ID) in str(v) for v in row), (table, row)


def test_keys_stored_in_clear_by_an_earlier_version_are_hashed_at_start(tmp_path: Path) -> None:
    store = Store(tmp_path / "bhxh.db", b"k")
    store.db.execute("INSERT INTO questions (ts, channel, message_id, outcome) VALUES "
                     "('2026-12-01T00:00:00Z', 'telegram', 'tg:424242:77', 'answered')")
    store.db.execute("INSERT INTO inbox (channel, delivery_key, payload, received_ts) VALUES "
                     "('telegram', 'tg:424242:77', NULL, '2026-12-01T00:00:00Z')")
    store.db.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")
    store.db.conn.close()
    upgraded = Store(tmp_path / "bhxh.db", b"k")
    stored = [r[0] for r in upgraded.db.execute("SELECT message_id FROM questions UNION ALL "
                                                "SELECT delivery_key FROM inbox")]
    assert stored == [upgraded.delivery_key("tg:424242:77")] * 2 and stored[0].startswith("h:")
    assert upgraded.seen_message("telegram", "tg:424242:77")  # still a duplicate
    assert upgraded.inbox_accept("telegram", "tg:424242:77", {}) is False


# ------------------------------------------------------------ F8: a corrupt database at start


def _corrupt_questions_root_page(path: Path) -> None:
    """The review's reproduction: the root page of `questions` overwritten with random bytes."""
    with contextlib.closing(sqlite3.connect(path)) as con:
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        root = con.execute("SELECT rootpage FROM sqlite_master WHERE name = 'questions'").fetchone()[0]
        page_size = con.execute("PRAGMA page_size").fetchone()[0]
    with open(path, "r+b") as fh:
        fh.seek((root - 1) * page_size)
        fh.write(os.urandom(page_size))


@pytest.mark.parametrize("damage", ["one bad page", "random bytes", "truncated"])
def test_a_corrupt_database_is_moved_aside_at_start_and_the_bot_answers(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, damage: str) -> None:
    db = tmp_path / "bhxh.db"
    first = make_service(db)
    for n in range(30):
        first.handle("web", f"u{n}", f"lương hưu tháng {n}")
    first.store.db.conn.close()
    if damage == "one bad page":
        _corrupt_questions_root_page(db)
    elif damage == "random bytes":
        db.write_bytes(os.urandom(100_000))
    else:
        db.write_bytes(db.read_bytes()[:3000])
        db.with_name("bhxh.db-wal").unlink(missing_ok=True)
    clean_env(monkeypatch, tmp_path)
    with caplog.at_level(logging.ERROR, logger="storage.store"):
        service = make_service(db)
    assert "DATABASE CORRUPT" in caplog.text and ".recover" in caplog.text
    assert list(tmp_path.glob("bhxh.db.corrupt-*"))  # kept for salvage
    with TestClient(create_app(service)) as client:
        response = client.post("/api/ask", json={"question": "lương hưu", "user_id": "after"})
        assert response.status_code == 200 and response.json()["question_id"] is not None
        assert client.get("/healthz").json()["database"] == "file"
    assert service.store.db.execute("PRAGMA quick_check").fetchone()[0] == "ok"


def test_a_database_path_that_cannot_be_opened_leaves_the_bot_answering(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "bhxh.db").mkdir()  # a folder where the file should be
    clean_env(monkeypatch, tmp_path)
    service = make_service(tmp_path / "bhxh.db")
    with TestClient(create_app(service)) as client:
        response = client.post("/api/ask", json={"question": "lương hưu", "user_id": "x"})
        assert response.status_code == 200 and response.json()["answer"]
        assert client.get("/healthz").json()["database"] == "memory only"


def test_the_queue_of_refused_writes_is_bounded(tmp_path: Path) -> None:
    """Review F11: while the database refuses writes, queued rows may not grow without limit."""
    store = Store(tmp_path / "bhxh.db", b"k")
    blocker = sqlite3.connect(tmp_path / "bhxh.db", timeout=0)
    blocker.execute("BEGIN EXCLUSIVE")
    store.db.execute("PRAGMA busy_timeout = 0")
    try:
        for n in range(MAX_PENDING + 50):
            store.record_feedback(channel="web", user_id=f"u{n}", value=1, entry_id="e")
        assert store.pending == MAX_PENDING and store.dropped == 50
    finally:
        blocker.rollback()
        blocker.close()


# ------------------------------------------------------------ low findings fixed on the way


def test_database_files_are_private_to_the_service(tmp_path: Path) -> None:
    """F17: the log was created 0644 in a 0755 folder."""
    store = Store(tmp_path / "data" / "bhxh.db", b"k")
    store.log_question(LoggedQuestion("web", "u", "lương hưu", "lương hưu", None, None, 0.0, "declined",
                                      "not_sure", 1.0))
    assert (tmp_path / "data").stat().st_mode & 0o777 == 0o700
    for name in ("bhxh.db", "bhxh.db-wal", "bhxh.db-shm"):
        assert (tmp_path / "data" / name).stat().st_mode & 0o077 == 0, name


def test_retention_also_clears_audit_details_and_conversations(tmp_path: Path) -> None:
    """F20: question texts quoted in the audit log and old conversation states outlived retention."""
    store = Store(tmp_path / "bhxh.db", b"k")
    store.db.execute("INSERT INTO audit (ts, actor, action, target, detail) VALUES (?, 'cb', 'attach', 'e', ?)",
                     ["2020-01-01T00:00:00Z", '{"text": "câu hỏi cũ"}'])
    store.db.execute("INSERT INTO conversations (key, state, updated_ts) VALUES ('web:x', '{}', ?)",
                     ["2020-01-01T00:00:00Z"])
    store.audit("cb", "attach", "e", {"text": "câu hỏi mới"})
    store.delete_older_than(365)
    assert [r[0] for r in store.db.execute("SELECT detail FROM audit")] == ['{"text": "câu hỏi mới"}']
    assert store.db.execute("SELECT count(*) FROM conversations").fetchone()[0] == 0


def test_public_page_has_security_headers_and_redirects_do_not_echo_the_host(web) -> None:
    """F18: the chat page could be framed; F16: Host was copied into trailing-slash redirects."""
    client, _ = web
    for path in ("/", "/static/chat.js"):
        response = client.get(path)
        assert response.status_code == 200
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
        assert response.headers["x-frame-options"] == "DENY"
    redirect = client.get("/admin/questions/", headers={"Host": "evil.example"}, follow_redirects=False)
    assert "evil.example" not in redirect.headers.get("location", "") and redirect.status_code == 404


def test_bearer_token_guessing_is_limited_and_short_tokens_are_refused(web, monkeypatch: pytest.MonkeyPatch) -> None:
    """F14: 200 wrong bearer tokens in a row were all 401; a 5-character token was accepted."""
    client, service = web
    statuses = [client.get("/admin/questions", headers={"Authorization": f"Bearer guess-{i}"}).status_code
                for i in range(15)]
    assert statuses[:10] == [401] * 10 and set(statuses[10:]) == {429}
    assert client.get("/admin/questions", headers={"Authorization": f"Bearer {STAFF_TOKEN}"}).status_code == 200
    monkeypatch.setenv("BHXH_ADMIN_TOKEN", "short")
    with pytest.raises(RuntimeError, match="shorter than 16"):
        create_app(service)


def test_deeply_nested_json_and_huge_cursor_ids_are_4xx_not_500(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """F12: 30,000 nested arrays to /webhooks/zalo-oa gave a 500 (JSON parsed before the MAC check);
    F13: a staff cursor with id 10^20 gave a 500 (OverflowError in SQLite)."""
    import base64

    clean_env(monkeypatch, tmp_path)
    for name, value in {"ZALO_OA_APP_ID": "50554360515256678", "ZALO_OA_SECRET_KEY": "oaSecurityTestKey-0123",
                        "ZALO_OA_APP_SECRET": "appSecurityTest-0123", "ZALO_OA_ACCESS_TOKEN": "at-sec",
                        "ZALO_OA_REFRESH_TOKEN": "rt-sec", "ZALO_OA_API_BASE_URL": "http://127.0.0.1:9",
                        "ZALO_OA_OAUTH_BASE_URL": "http://127.0.0.1:9"}.items():
        monkeypatch.setenv(name, value)
    service = make_service(tmp_path / "bhxh.db")
    with TestClient(create_app(service), raise_server_exceptions=False) as client:
        deep = ('{"a":' + "[" * 30_000 + "]" * 30_000 + "}").encode()
        response = client.post("/webhooks/zalo-oa", content=deep, headers={"Content-Type": "application/json"})
        assert 400 <= response.status_code < 500, response.status_code
        cursor = base64.urlsafe_b64encode(b"2026|99999999999999999999").decode().rstrip("=")
        response = client.get("/admin/questions", params={"cursor": cursor},
                              headers={"Authorization": f"Bearer {STAFF_TOKEN}"})
        assert 400 <= response.status_code < 500, response.status_code
