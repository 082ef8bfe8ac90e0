"""A read-only, locked or full database: the bot still answers, queues the log writes (reported by
/healthz) and writes each queued row exactly once when the fault is gone; staff endpoints that
cannot queue answer a clear 503, never a 500."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
import sqlite_utils
from fakes.service import clean_env, engine, question_count, zalo_bot_env
from fakes.zalo import FakeZaloBot, bot_update
from fastapi.testclient import TestClient

from admin_api.admin import prepare_database
from admin_api.app import DB_BUSY_TEXT, create_app
from bot.service import Service
from storage import schema
from storage.store import LoggedQuestion, Store

ADMIN = {"Authorization": "Bearer test-admin-token-0123456789"}  # the token clean_env sets
ANSWER_Q = "rút bhxh 1 lần được không"
QUESTIONS = [ANSWER_Q, "đóng bhxh tự nguyện bao nhiêu", "thai sản được mấy tháng"]


@pytest.fixture
def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SimpleNamespace]:
    clean_env(monkeypatch, tmp_path)
    service = _service(tmp_path / "bhxh.db")
    with TestClient(create_app(service, ip_limit=10_000), raise_server_exceptions=False) as client:
        yield SimpleNamespace(client=client, service=service, store=service.store, path=tmp_path / "bhxh.db")


def _service(path: Path) -> Service:
    """The real service; its store waits 50 ms (not 5 s) for a lock, so the faults are quick."""
    return Service(engine(), Store(path, b"test-hash-key", timeout=0.05), user_limit=10_000)


# ------------------------------------------------------------ the faults, each checked to be real


@contextlib.contextmanager
def query_only(store: Store, path: Path) -> Iterator[None]:
    store.db.execute("PRAGMA query_only=ON")  # root ignores chmod: this is what makes SQLite refuse
    yield
    store.db.execute("PRAGMA query_only=OFF")


@contextlib.contextmanager
def read_only_file(store: Store, path: Path) -> Iterator[None]:
    """The store's connection replaced by one opened with mode=ro (a read-only mount)."""
    writable = store.db
    store.db = sqlite_utils.Database(sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False,
                                                     isolation_level=None))
    yield
    store.db.conn.close()
    store.db = writable


@contextlib.contextmanager
def locked(store: Store, path: Path) -> Iterator[None]:
    """Another process holds the write lock for the whole fault."""
    blocker = sqlite3.connect(path, timeout=0.05, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    yield
    blocker.rollback()
    blocker.close()


@contextlib.contextmanager
def full(store: Store, path: Path) -> Iterator[None]:
    """The database may not grow (max_page_count = its size) and its last pages are filled."""
    pages = store.db.execute("PRAGMA page_count").fetchone()[0]
    store.db.execute(f"PRAGMA max_page_count={pages}")
    for n in range(10_000):  # fill through the real path until the store starts queueing
        if store.log_question(_filler(n)) is None:
            break
    assert store.pending == 1
    yield
    store.db.execute("PRAGMA max_page_count=1073741823")


def _filler(n: int) -> LoggedQuestion:
    return LoggedQuestion(channel="filler", user_id="f", text="x" * 200, normalized="x", topic=None, entry_id=None,
                          score=0.0, outcome="declined", kind="not_sure", latency_ms=1.0, message_id=f"filler-{n}")


FAULTS: dict[str, tuple[Callable[[Store, Path], contextlib.AbstractContextManager[None]], str]] = {
    "query_only": (query_only, "readonly"),
    "mode=ro": (read_only_file, "readonly"),
    "locked": (locked, "locked"),
    "full": (full, "full"),
}


def _write_refused(store: Store, message: str) -> None:
    with pytest.raises(sqlite3.OperationalError, match=message):
        store.db["meta"].upsert({"key": "probe", "value": "x" * 5000}, pk="key")


def _ask(client: TestClient, question: str) -> httpx.Response:
    return client.post("/api/ask", json={"question": question, "user_id": "visitor-1"})


# ------------------------------------------------------------ the tests


@pytest.mark.parametrize("fault", list(FAULTS))
def test_bot_answers_while_the_database_refuses_writes(app: SimpleNamespace, fault: str) -> None:
    make_fault, message = FAULTS[fault]
    expected = engine().ask(ANSWER_Q)
    with make_fault(app.store, app.path):
        _write_refused(app.store, message)
        for question in [*QUESTIONS, ANSWER_Q]:
            response = _ask(app.client, question)
            assert response.status_code == 200, response.text
            assert response.json()["answer"] and response.json()["question_id"] is None
        assert (response.json()["kind"], response.json()["entry_id"]) == (expected.kind, expected.entry_id)
        assert app.store.pending >= 1
        health = app.client.get("/healthz")
        assert health.status_code == 200 and health.json()["pending_log_writes"] == app.store.pending
    assert app.store.flush() == 0 and app.client.get("/healthz").json()["pending_log_writes"] == 0
    assert _ask(app.client, "thai sản").json()["question_id"] is not None  # writes go straight through again


@pytest.mark.parametrize("fault", list(FAULTS))
def test_every_queued_row_is_written_exactly_once_after_the_fault(app: SimpleNamespace, fault: str) -> None:
    make_fault, _ = FAULTS[fault]
    entry_id = engine().ask(ANSWER_Q).entry_id
    with make_fault(app.store, app.path):
        already = app.store.pending  # the filler row of "full"
        for question in QUESTIONS:
            assert _ask(app.client, question).status_code == 200
        feedback = app.client.post("/api/feedback", json={"value": 1, "entry_id": entry_id})
        assert feedback.status_code == 200
        queued = len(QUESTIONS) + 1
        assert app.store.pending == already + queued
        assert app.client.get("/healthz").json()["pending_log_writes"] == already + queued
        written_during_fault = question_count(app.service)
    assert app.store.flush() == 0 and app.store.flush() == 0
    logged = [r["text"] for r in app.store.db.query("SELECT text FROM questions WHERE channel = 'web' ORDER BY id")]
    assert logged == QUESTIONS  # each once, in order
    assert question_count(app.service) == written_during_fault + already + len(QUESTIONS)
    assert app.store.db["feedback"].count == 1


def test_a_write_lock_does_not_block_staff_reads(app: SimpleNamespace) -> None:
    _ask(app.client, ANSWER_Q)
    with locked(app.store, app.path):
        response = app.client.get("/admin/topics", headers=ADMIN)  # WAL: readers are never blocked by a writer
        assert response.status_code == 200 and response.json()["total_current"] == 1


def test_staff_edit_on_a_locked_database_is_a_clear_503_and_changes_nothing(app: SimpleNamespace) -> None:
    entry_id = next(iter(engine().kb.entries))
    paraphrase = {"text": "câu hỏi thử khi cơ sở dữ liệu đang bị khoá"}
    engine_before = app.service.engine
    with locked(app.store, app.path):
        response = app.client.post(f"/admin/entries/{entry_id}/paraphrases", json=paraphrase, headers=ADMIN)
        assert response.status_code == 503
        assert response.json() == {"detail": DB_BUSY_TEXT} and response.headers["retry-after"] == "5"
    assert app.service.engine is engine_before and app.store.db["staff_entries"].count == 0
    assert app.store.pending == 0  # no audit row for a change that did not happen
    response = app.client.post(f"/admin/entries/{entry_id}/paraphrases", json=paraphrase, headers=ADMIN)
    assert response.status_code == 200 and app.store.db["staff_entries"].count == 1


def _exclusive_blocker(path: Path) -> sqlite3.Connection:
    """Another process holding the database exclusively, readers included (exclusive locking mode)."""
    blocker = sqlite3.connect(path, timeout=0.05, isolation_level=None)
    blocker.execute("PRAGMA locking_mode=EXCLUSIVE")
    blocker.execute("BEGIN EXCLUSIVE")
    blocker.execute("INSERT INTO meta VALUES ('holder', 'other process')")
    blocker.execute("COMMIT")  # exclusive locking mode keeps the lock after the commit
    return blocker


def test_staff_read_on_a_database_locked_for_readers_is_a_clear_503(app: SimpleNamespace) -> None:
    app.store.db.conn.close()  # the bot restarts while another process holds the database
    blocker = _exclusive_blocker(app.path)
    app.service.store = _service(app.path).store
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        app.service.store.db.execute("SELECT count(*) FROM questions").fetchone()
    answer = _ask(app.client, ANSWER_Q)
    assert answer.status_code == 200 and answer.json()["entry_id"] == engine().ask(ANSWER_Q).entry_id
    assert app.client.get("/healthz").json()["pending_log_writes"] == 1
    staff = app.client.get("/admin/topics", headers=ADMIN)
    assert staff.status_code == 503 and staff.json() == {"detail": DB_BUSY_TEXT}
    blocker.close()
    assert app.service.store.flush() == 0 and question_count(app.service) == 1
    assert app.client.get("/admin/topics", headers=ADMIN).json()["total_current"] == 1


def test_the_app_starts_on_a_database_locked_by_another_process(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    clean_env(monkeypatch, tmp_path)
    path = tmp_path / "bhxh.db"
    Store(path, b"k").db.conn.close()
    with contextlib.closing(sqlite3.connect(path)) as con, con:  # an existing database without the staff step yet
        for trigger in schema.DAILY_TRIGGERS:
            con.execute(f"DROP TRIGGER {trigger}")
        con.execute("DROP TABLE question_daily")
        con.execute("DELETE FROM _sqlite_migrations WHERE name = '0004_staff_counts'")
    blocker = _exclusive_blocker(path)
    service = Service(engine(), Store(path, b"k", timeout=0.05))
    with TestClient(create_app(service, ip_limit=10_000), raise_server_exceptions=False) as client:
        assert _ask(client, ANSWER_Q).json()["entry_id"] == engine().ask(ANSWER_Q).entry_id
        assert client.get("/healthz").json()["pending_log_writes"] == 1
    assert not prepare_database(service)  # the migration is refused, not skipped
    blocker.close()
    assert service.store.flush() == 0 and question_count(service) == 1
    assert prepare_database(service)  # what start-up and the daily task retry
    assert service.store.db.execute("SELECT count(*) FROM question_daily").fetchone()[0] == 1


def test_webhook_answers_on_a_locked_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    token, secret = "4417239846:zbFaultTokenForTests_0123456789abcdef", "zalo-bot-secret-faults-01"
    with FakeZaloBot(token) as fake:
        zalo_bot_env(monkeypatch, tmp_path, fake.url, token, secret)
        service = _service(tmp_path / "bhxh.db")
        with TestClient(create_app(service, ip_limit=10_000), raise_server_exceptions=False) as client:
            update = bot_update(ANSWER_Q, message_id="locked-msg-1")
            with locked(service.store, tmp_path / "bhxh.db"):
                response = client.post("/webhooks/zalo-bot", json=update, headers={"X-Bot-Api-Secret-Token": secret})
                assert response.status_code == 200
                (sent,) = fake.wait_sent(1)
                assert sent["text"].startswith("❓ ")  # a real answer reached the user
                assert service.store.pending >= 1
                # a redelivery while the first copy is only queued is still recognised as one
                assert service.handle("zalo_bot", "u-lan-01", ANSWER_Q, message_id="zb:locked-msg-1").duplicate
            assert service.store.flush() == 0
            assert question_count(service) == 1 and len(fake.sent()) == 1
