"""The store's behaviour on both backends (SQLite, the default, and PostgreSQL against a real throwaway
server from tests/pg.py), then what only several workers on PostgreSQL can show: two stores on one
database see each other's writes, a dead worker's leased deliveries are taken over, duplicate delivery
keys are dropped under concurrency, staff edits reach another worker's listener, shared rate limits.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from storage.base import LoggedQuestion
from storage.factory import open_store
from storage.store import Store
from tests.pg import Cluster, pg_cluster, pg_url, store_opener  # noqa: F401 (fixtures)

HASH_KEY = b"k" * 32


def question(text: str = "Tôi tên là Nguyễn Văn An, CCCD 001203004567, hỏi lương hưu", message_id: str | None = None,
             **kw: Any) -> LoggedQuestion:
    base: dict[str, Any] = dict(channel="web", user_id="user-1", text=text, normalized="hỏi lương hưu",
                                topic="pension", entry_id="lh-1", score=0.9, outcome="answered", kind="answer",
                                latency_ms=12.0, message_id=message_id)
    base.update(kw)
    return LoggedQuestion(**base)


def rows(store: Any, query: str, *args: Any) -> list[tuple[Any, ...]]:
    """A read in the test's own SQL (%s placeholders) on either backend."""
    if isinstance(store, Store):
        return [tuple(r) for r in store.db.execute(query.replace("%s", "?"), list(args)).fetchall()]
    with store.pool.connection() as conn:
        cursor = conn.execute(query, list(args))
        return cursor.fetchall() if cursor.description else []


@pytest.fixture(params=["sqlite", "postgres"])
def open_one(request, tmp_path: Path) -> Iterator[Callable[..., Any]]:
    """A function opening a store (another worker) on the test's one database, for either backend."""
    if request.param == "sqlite":
        target: str | Path = tmp_path / "bhxh.db"
    else:
        target = request.getfixturevalue("pg_url")
    with store_opener(target, HASH_KEY) as open_:
        yield open_


@pytest.fixture
def store(open_one: Callable[..., Any]) -> Any:
    return open_one()


# ---------------------------------------------------------------- both backends


def test_logged_question_is_redacted_and_user_hashed(store):
    qid = store.log_question(question())
    assert isinstance(qid, int)
    [(text, user_hash, topic)] = rows(store, "SELECT text, user_hash, topic FROM questions WHERE id = %s", qid)
    assert "001203004567" not in text and "Nguyễn Văn An" not in text and "lương hưu" in text
    assert user_hash == store.hash_user("web", "user-1") and "user-1" not in user_hash
    assert topic == "pension"


def test_duplicate_delivery_is_logged_once_and_seen(store):
    assert not store.seen_message("telegram", "tg:1:2")
    first = store.log_question(question(channel="telegram", message_id="tg:1:2"))
    assert store.seen_message("telegram", "tg:1:2")
    assert store.log_question(question(channel="telegram", message_id="tg:1:2")) == first
    assert rows(store, "SELECT count(*) FROM questions")[0][0] == 1
    [(stored,)] = rows(store, "SELECT message_id FROM questions")
    assert stored.startswith("h:") and "tg:1:2" not in stored


def test_text_sqlite_keeps_and_postgres_cannot_is_stored(store):
    """A NUL and a lone surrogate (both can arrive in a webhook body) do not make the write fail."""
    qid = store.log_question(question(text="lương\x00hưu \ud800 ?"))
    assert qid is not None
    [(text,)] = rows(store, "SELECT text FROM questions WHERE id = %s", qid)
    assert text.startswith("lương") and text.endswith("?")


def test_feedback_one_vote_per_user_and_question(store):
    qid = store.log_question(question())
    assert store.record_feedback(channel="web", user_id="user-1", value=1, question_id=qid)
    assert store.record_feedback(channel="web", user_id="user-1", value=-1, question_id=qid)
    assert not store.record_feedback(channel="web", user_id="someone-else", value=1, question_id=qid)
    assert rows(store, "SELECT value, entry_id FROM feedback") == [(-1, "lh-1")]
    assert rows(store, "SELECT feedback FROM questions WHERE id = %s", qid) == [(-1,)]
    assert store.record_feedback(channel="web", user_id="user-2", value=1, entry_id="lh-9")
    assert store.record_feedback(channel="web", user_id="user-2", value=1, entry_id="lh-9")
    assert rows(store, "SELECT count(*) FROM feedback WHERE entry_id = 'lh-9'") == [(1,)]


def test_retention_deletes_old_rows_only(store):
    old = (dt.datetime.now(dt.UTC) - dt.timedelta(days=40)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    store.log_question(question(ts=old))
    store.log_question(question())
    store.audit("staff", "edit", "lh-1", {"why": "test"})
    assert store.delete_older_than(30) == 1
    assert rows(store, "SELECT count(*) FROM questions") == [(1,)]
    assert rows(store, "SELECT count(*) FROM audit") == [(1,)]


def test_conversation_state_round_trip_and_clear(store):
    assert store.load_state("web:u") == {}
    store.save_state("web:u", {"choices": [{"entry_id": "lh-1", "question": "Lương hưu?"}]})
    store.save_state("web:u", {"choices": [{"entry_id": "lh-2", "question": "Thai sản?"}]})
    assert store.load_state("web:u") == {"choices": [{"entry_id": "lh-2", "question": "Thai sản?"}]}
    store.clear_state("web:u")
    assert store.load_state("web:u") == {}


def test_audit_keeps_vietnamese_detail(store):
    store.audit("cán bộ", "entry.update", "lh-1", {"ghi chú": "sửa mức hưởng"})
    [(actor, detail)] = rows(store, "SELECT actor, detail FROM audit")
    assert actor == "cán bộ" and "sửa mức hưởng" in detail


def test_inbox_duplicate_done_pending_and_prune(store):
    assert store.inbox_accept("zalo", "msg-1", {"text": "a"})
    assert not store.inbox_accept("zalo", "msg-1", {"text": "a again"})
    assert store.inbox_accept("zalo", "msg-2", {"text": "b"})
    assert store.inbox_accept("telegram", "msg-1", {"text": "other channel"})
    store.inbox_done("zalo", "msg-1")
    assert rows(store, "SELECT payload FROM inbox WHERE done_ts IS NOT NULL") == [(None,)]
    # Replay after a restart: a new store (the old one's leases must not hide its deliveries forever).
    pending = _pending_after_restart(store, "zalo")
    assert pending == [("msg-2", {"text": "b"})]
    assert not store.inbox_accept("zalo", "msg-1", {"text": "redelivered after done"})
    assert store.inbox_prune(-1) == 1  # done before a cutoff one day ahead
    assert store.inbox_accept("zalo", "msg-1", {"text": "pruned keys are forgotten"})


def _pending_after_restart(store: Any, channel: str) -> list[tuple[str, dict[str, Any]]]:
    if isinstance(store, Store):
        return store.inbox_pending(channel)
    rows(store, "UPDATE inbox SET lease_until = now() - interval '1 second' WHERE done_ts IS NULL")
    return store.inbox_pending(channel)


def test_inbox_keeps_undecodable_text(store):
    assert store.inbox_accept("web", "k-\ud800", {"text": "x \ud800 y"})
    assert _pending_after_restart(store, "web")[0][1]["text"].startswith("x ")


def test_two_stores_on_one_database_see_each_others_writes(open_one):
    first, second = open_one(), open_one()
    first.log_question(question(channel="telegram", message_id="tg:5:6"))
    assert second.seen_message("telegram", "tg:5:6")
    first.save_state("tg:5", {"calc": {"step": 2}})
    assert second.load_state("tg:5") == {"calc": {"step": 2}}
    assert first.inbox_accept("telegram", "tg:5:7", {"text": "x"})
    assert not second.inbox_accept("telegram", "tg:5:7", {"text": "x"})


def test_staff_entries_bump_the_kb_version(store):
    if not hasattr(store, "put_staff_entry"):
        pytest.skip("this backend has no staff-entry API yet (storage helper adds it to the SQLite Store)")
    before = store.kb_version()
    store.put_staff_entry("staff-1", {"id": "staff-1", "question": "Hỏi?"}, "cán bộ")
    entries = store.staff_entries()
    assert list(entries) == ["staff-1"]
    assert entries["staff-1"]["record"] == {"id": "staff-1", "question": "Hỏi?"}
    assert entries["staff-1"]["actor"] == "cán bộ" and entries["staff-1"]["updated_ts"].endswith("Z")
    assert store.kb_version() > before
    middle = store.kb_version()
    store.delete_staff_entry("staff-1")
    assert store.staff_entries() == {} and store.kb_version() > middle


def test_inbox_claim_takes_the_oldest_pending(store):
    if not hasattr(store, "inbox_claim"):
        pytest.skip("this backend has no inbox_claim yet (storage helper adds it to the SQLite Store)")
    for n in range(5):
        store.inbox_accept("web", f"c-{n}", {"n": n})
    if not isinstance(store, Store):
        rows(store, "UPDATE inbox SET lease_until = NULL")
    assert [payload["n"] for _, payload in store.inbox_claim("web", 3)] == [0, 1, 2]


# ---------------------------------------------------------------- PostgreSQL: several workers


@pytest.fixture
def pg_open(pg_url: str) -> Iterator[Callable[..., Any]]:  # noqa: F811 (the fixture)
    from storage.postgres import PostgresStore

    with store_opener(pg_url, HASH_KEY, PostgresStore) as open_:
        yield open_


def test_migrations_are_the_sqlite_set_and_apply_once(pg_open):
    from storage import postgres_schema

    with ThreadPoolExecutor(3) as pool:  # three workers starting together
        stores = list(pool.map(lambda _: pg_open(), range(3)))
    assert all(s.migrated for s in stores)
    applied = rows(stores[0], "SELECT name FROM bhxh_migrations ORDER BY applied_at, name")
    assert sorted(n for (n,) in applied) == sorted(postgres_schema.MIGRATION_NAMES_PG)
    assert stores[0].migrate() == []
    try:
        from storage import schema
    except ImportError:
        pytest.skip("storage.schema (the SQLite migration set) is not there yet")
    assert postgres_schema.shared_names() == tuple(schema.MIGRATION_NAMES)


def test_daily_counts_follow_the_log_in_local_time(pg_open):
    store = pg_open()
    store.log_question(question(ts="2026-12-02T18:30:00.000000Z"))  # 01:30 on 3 December in Vietnam
    store.log_question(question(ts="2026-12-02T10:00:00.000000Z", outcome="unanswered"))
    got = rows(store, "SELECT day::text, outcome, n FROM question_daily ORDER BY day")
    assert got == [("2026-12-02", "unanswered", 1), ("2026-12-03", "answered", 1)]
    store.delete_older_than(0)
    assert rows(store, "SELECT sum(n) FROM question_daily") == [(0,)]


def test_a_dead_workers_delivery_is_taken_over_after_its_lease(pg_open):
    dead, alive = pg_open(lease_seconds=1.0, worker_id="w1"), pg_open(lease_seconds=1.0, worker_id="w2")
    assert dead.inbox_accept("zalo", "m-1", {"text": "câu hỏi"})
    dead.close()  # SIGKILL-like: never marks it done
    assert alive.inbox_claim("zalo") == []  # still leased to w1
    time.sleep(1.2)
    assert alive.inbox_claim("zalo") == [("m-1", {"text": "câu hỏi"})]
    assert rows(alive, "SELECT claimed_by FROM inbox") == [("w2",)]
    assert alive.inbox_claim("zalo") == []  # leased to w2 now
    alive.inbox_done("zalo", "m-1")
    time.sleep(1.2)
    assert alive.inbox_claim("zalo") == []  # done stays done


def test_a_live_worker_can_renew_its_lease(pg_open):
    slow, other = pg_open(lease_seconds=1.0, worker_id="slow"), pg_open(lease_seconds=1.0, worker_id="other")
    slow.inbox_accept("zalo", "m-2", {})
    for _ in range(3):
        time.sleep(0.5)
        assert slow.inbox_extend("zalo", "m-2")
    assert other.inbox_claim("zalo") == []
    time.sleep(1.2)
    assert other.inbox_claim("zalo") == [("m-2", {})]
    assert not slow.inbox_extend("zalo", "m-2")  # taken over: the slow worker knows it lost it


def test_concurrent_claims_never_take_a_delivery_twice(pg_open):
    first = pg_open(worker_id="a")
    for n in range(60):
        first.inbox_accept("web", f"d-{n}", {"n": n})
    rows(first, "UPDATE inbox SET lease_until = NULL")  # as if the accepting worker had died
    workers = [pg_open(worker_id=f"w{i}") for i in range(3)]
    barrier = threading.Barrier(6)

    def claim(store: Any) -> list[int]:
        barrier.wait()
        got = []
        while batch := store.inbox_claim("web", 5):
            got += [payload["n"] for _, payload in batch]
        return got

    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(claim, workers * 2))
    taken = [n for r in results for n in r]
    assert sorted(taken) == list(range(60))  # each exactly once


def test_the_same_delivery_posted_to_three_workers_is_accepted_once(pg_open):
    workers = [pg_open() for _ in range(3)]
    barrier = threading.Barrier(9)

    def accept(store: Any) -> bool:
        barrier.wait()
        return store.inbox_accept("telegram", "tg:1:99", {"text": "x"})

    with ThreadPoolExecutor(9) as pool:
        accepted = list(pool.map(accept, workers * 3))
    assert accepted.count(True) == 1
    assert rows(workers[0], "SELECT count(*) FROM inbox") == [(1,)]


def test_a_staff_edit_reaches_another_workers_listener(pg_open):
    editor, listener = pg_open(), pg_open()
    heard: list[int] = []
    changed = threading.Event()
    watcher = listener.watch_kb_changes(lambda v: (heard.append(v), changed.set()), poll_seconds=30)
    try:
        assert watcher.listening.wait(5)
        started = time.monotonic()
        editor.put_staff_entry("staff-2", {"id": "staff-2"}, "cán bộ")
        assert changed.wait(2.0), "no notification within 2 s"
        assert time.monotonic() - started < 2.0 and heard[-1] == editor.kb_version() == listener.kb_version()
    finally:
        watcher.stop()


def test_a_missed_notification_is_caught_by_the_version_check(pg_open):
    listener = pg_open()
    changed = threading.Event()
    watcher = listener.watch_kb_changes(lambda v: changed.set(), poll_seconds=0.5)
    try:
        assert watcher.listening.wait(5)
        # A change whose NOTIFY never arrives (e.g. sent while this listener was reconnecting).
        rows(listener, "UPDATE meta SET value = '41' WHERE key = 'kb_version'")
        assert changed.wait(3.0) and watcher.version == 41
    finally:
        watcher.stop()


def test_rate_limits_hold_across_workers(pg_open):
    workers = [pg_open() for _ in range(3)]
    now = 1_200_000.0  # the start of a 60 s window: the previous one is empty
    allowed = [workers[n % 3].rate_hit("telegram:user-7", 5, 60, now=now) for n in range(12)]
    assert allowed.count(True) == 5 and allowed[:5] == [True] * 5
    assert workers[0].rate_hit("telegram:user-8", 5, 60, now=now)  # another user is not limited
    # Half-way through the next window half of the previous count still weighs: 5 * 0.5 = 2.5.
    later = [workers[n % 3].rate_hit("telegram:user-7", 5, 60, now=now + 90) for n in range(5)]
    assert later.count(True) == 2


def test_one_worker_at_a_time_holds_a_named_lock(pg_open):
    first, second = pg_open(), pg_open()
    with first.lock("zalo-oa-refresh") as held:
        assert held
        with second.lock("zalo-oa-refresh", wait=False) as other:
            assert not other
    with second.lock("zalo-oa-refresh", wait=False) as other:
        assert other


def test_unreachable_server_queues_writes_and_they_land_later(pg_cluster: Cluster):  # noqa: F811
    from storage.postgres import PostgresStore

    name = f"bhxh_late_{int(time.time() * 1000)}"
    store = PostgresStore(pg_cluster.database_url(name), HASH_KEY, timeout=0.5)  # no such database yet
    try:
        assert not store.migrated
        assert store.log_question(question()) is None and store.pending == 1
        store.audit("staff", "x", "y", {})
        assert store.pending == 2
        assert store.inbox_accept("web", "k", {}) is True  # remembered in memory
        assert not store.inbox_accept("web", "k", {})
        assert store.load_state("web:u") == {} and not store.seen_message("web", "m")
        with pg_cluster.admin() as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        deadline = time.monotonic() + 20
        while store.flush() and time.monotonic() < deadline:  # the pool retries connecting with back-off
            time.sleep(0.5)
        assert store.pending == 0 and store.migrated
        assert rows(store, "SELECT count(*) FROM questions") == [(1,)]
    finally:
        store.close()
        pg_cluster.drop_database(name)


def test_a_token_is_refreshed_by_exactly_one_worker(pg_open):
    workers = [pg_open() for _ in range(3)]
    workers[0].token_put("zalo_oa", {"access": "a0", "refresh": "r0"})
    stale = workers[1].token_get("zalo_oa")
    calls: list[dict[str, Any] | None] = []
    barrier = threading.Barrier(6)

    def refresh(current: dict[str, Any] | None) -> dict[str, Any]:
        calls.append(current)
        time.sleep(0.2)  # the OAuth round trip: the others wait on the lock meanwhile
        return {"access": "a1", "refresh": "r1"}

    def expire(store: Any) -> dict[str, Any]:
        barrier.wait()
        return store.token_refresh("zalo_oa", stale, refresh)

    with ThreadPoolExecutor(6) as pool:
        got = list(pool.map(expire, workers * 2))
    assert calls == [{"access": "a0", "refresh": "r0"}]  # one refresh, spending the single-use r0 once
    assert got == [{"access": "a1", "refresh": "r1"}] * 6


def test_while_the_server_is_down_calls_fail_fast(pg_cluster: Cluster):  # noqa: F811
    from storage.postgres import PostgresStore

    store = PostgresStore(pg_cluster.database_url("no_such_database"), HASH_KEY, timeout=1.0)
    try:
        store.log_question(question())  # waits for a connection once
        started = time.monotonic()
        for _ in range(20):
            assert store.log_question(question()) is None
            assert store.load_state("k") == {} and store.inbox_accept("web", f"k{_}", {})
        assert time.monotonic() - started < 0.5 and store.pending == 21
    finally:
        store.close()


_WORKER = r"""
import json, sys, time
from storage.postgres import PostgresStore
from storage.store import LoggedQuestion

url, worker, role, keys = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
store = PostgresStore(url, b"k" * 32, lease_seconds=1.0, worker_id=worker)

def process(key, how):
    # As Service.handle: a delivery already logged is a duplicate and gets no reply; the log row and
    # the (fake) reply commit together, then the inbox row is marked done.
    with store.write() as conn:
        if not store.seen_message("telegram", key):
            store.log_question(LoggedQuestion("telegram", "u", "hỏi " + key, "hỏi", None, None, 0.0,
                                              "answered", "answer", 1.0, message_id=key))
            conn.execute("INSERT INTO replies (key, worker, how) VALUES (%s, %s, %s)", [key, worker, how])
    store.inbox_done("telegram", key)
    print("done", key, flush=True)

accepted = [k for k in keys if store.inbox_accept("telegram", k, {"k": k})]
print("accepted", len(accepted), flush=True)
for key in accepted:
    if role == "victim":
        time.sleep(0.3)  # a slow send: SIGKILLed somewhere in here
    process(key, "accepted")
deadline = time.monotonic() + 30
while time.monotonic() < deadline:  # take over what dead workers leave behind
    for key, _ in store.inbox_claim("telegram", 10):
        process(key, "claimed")
    with store.pool.connection() as conn:
        if conn.execute("SELECT count(*) FROM inbox WHERE done_ts IS NULL").fetchone()[0] == 0:
            break
    time.sleep(0.2)
"""


def test_sigkill_of_a_worker_mid_burst_loses_and_duplicates_nothing(pg_open, pg_url: str):  # noqa: F811
    import os
    import signal
    import subprocess
    import sys

    root = Path(__file__).resolve().parent.parent
    setup = pg_open()
    rows(setup, "CREATE TABLE replies (key text NOT NULL, worker text NOT NULL, how text NOT NULL)")
    keys = [f"tg:7:{n}" for n in range(40)]
    env = {**os.environ, "PYTHONPATH": str(root)}

    def start(worker: str, role: str, its_keys: list[str]) -> subprocess.Popen[str]:
        import json

        return subprocess.Popen([sys.executable, "-c", _WORKER, pg_url, worker, role, json.dumps(its_keys)],
                                cwd=root, env=env, stdout=subprocess.PIPE, text=True)

    victim = start("victim", "victim", keys[:20])
    assert victim.stdout is not None
    assert victim.stdout.readline().split() == ["accepted", "20"]
    assert victim.stdout.readline().startswith("done")  # a burst under way: 1 answered, 19 leased
    others = [start(f"w{n}", "normal", keys) for n in (1, 2)]  # every delivery posted again to both
    time.sleep(0.2)
    victim.send_signal(signal.SIGKILL)
    victim.wait(10)
    for proc in others:
        assert proc.wait(60) == 0
    assert rows(setup, "SELECT count(*) FROM inbox WHERE done_ts IS NULL") == [(0,)]
    logged = rows(setup, "SELECT message_id, count(*) FROM questions GROUP BY 1")
    assert len(logged) == 40 and all(n == 1 for _, n in logged)
    replies = rows(setup, "SELECT key, count(*) FROM replies GROUP BY 1")
    assert sorted(k for k, _ in replies) == sorted(keys) and all(n == 1 for _, n in replies)
    taken_over = rows(setup, "SELECT count(*) FROM replies WHERE how = 'claimed'")[0][0]
    assert taken_over >= 10  # the victim's leased deliveries, finished by the others


def test_postgres_store_has_the_whole_backend_interface():
    import inspect

    pytest.importorskip("psycopg", reason="psycopg is not installed (run `make setup`)")
    from storage.base import StoreBackend
    from storage.postgres import PostgresStore

    wanted = {name for name in vars(StoreBackend) if not name.startswith("_")} | set(StoreBackend.__annotations__)
    assert wanted and not [n for n in wanted if not hasattr(PostgresStore, n) and n not in ("dropped", "in_memory")]
    for name in wanted:
        theirs = getattr(StoreBackend, name, None)
        if inspect.isfunction(theirs):
            assert list(inspect.signature(getattr(PostgresStore, name)).parameters)[:len(
                inspect.signature(theirs).parameters)] == list(inspect.signature(theirs).parameters), name


def test_a_server_restart_loses_no_logged_question(pg_cluster: Cluster, pg_open):  # noqa: F811
    if pg_cluster.directory is None:
        pytest.skip("the server is not ours to restart (BHXH_TEST_DATABASE_URL)")
    store = pg_open(timeout=1.0)
    assert store.log_question(question(message_id="m-1")) is not None
    with ThreadPoolExecutor(4) as pool:  # several pooled connections, all cut by the restart
        list(pool.map(lambda _: store.seen_message("web", "m-1"), range(8)))
    pg_cluster.restart()
    # A read right after the restart is answered (retried on a fresh connection): a false "not seen"
    # would answer a redelivery twice.
    assert store.seen_message("web", "m-1")
    for n in range(2, 6):
        store.log_question(question(message_id=f"m-{n}"))  # written, or queued while the pool reconnects
    deadline = time.monotonic() + 20
    while store.flush() and time.monotonic() < deadline:
        time.sleep(0.3)
    assert store.pending == 0
    assert rows(store, "SELECT count(*) FROM questions") == [(5,)]
    assert store.inbox_accept("web", "after-restart", {}) and store.seen_message("web", "m-5")


def test_many_threads_accept_and_finish_deliveries_without_waiting_on_each_other(pg_open):
    store = pg_open(pool_size=8)

    def deliver(n: int) -> None:
        for i in range(25):
            assert store.inbox_accept("telegram", f"t{n}:{i}", {"i": i})
            store.inbox_done("telegram", f"t{n}:{i}")

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(deliver, range(8)))
    assert not store._inbox_memory and not store._inbox_undone  # no fallback: nothing timed out
    assert rows(store, "SELECT count(*), count(done_ts) FROM inbox") == [(200, 200)]


def test_one_chats_deliveries_take_turns_across_workers(pg_open):
    a, b, c = pg_open(), pg_open(), pg_open()
    assert a.inbox_accept("zalo", "d1", {}, chat="user-1")
    assert b.inbox_accept("zalo", "d2", {}, chat="user-1")
    assert c.inbox_accept("zalo", "d3", {}, chat="user-1")
    assert c.inbox_accept("zalo", "other", {}, chat="user-2")
    assert [a.inbox_turn("zalo", k) for k in ("d1", "d2", "d3", "other")] == [True, False, False, True]
    a.inbox_done("zalo", "d1")
    assert [b.inbox_turn("zalo", "d2"), c.inbox_turn("zalo", "d3")] == [True, False]
    assert rows(a, "SELECT count(*) FROM inbox WHERE chat LIKE %s", "%user-1%") == [(0,)]  # stored hashed


def test_replies_of_one_chat_leave_in_order_whichever_worker_took_them(pg_open):
    workers = [pg_open() for _ in range(3)]
    keys = [f"m{n:02d}" for n in range(30)]
    for n, key in enumerate(keys):  # arriving in order, spread over the workers
        assert workers[n % 3].inbox_accept("telegram", key, {}, chat="chat-9")
    sent: list[str] = []

    def answer(n: int) -> None:
        store = workers[n % 3]
        deadline = time.monotonic() + 20
        while not store.inbox_turn("telegram", keys[n]) and time.monotonic() < deadline:
            time.sleep(0.01)
        sent.append(keys[n])
        store.inbox_done("telegram", keys[n])

    with ThreadPoolExecutor(30) as pool:  # all at once, in no particular order
        list(pool.map(answer, reversed(range(30))))
    assert sent == keys


def test_a_worker_with_another_hash_key_refuses_to_start(pg_open, pg_url: str):  # noqa: F811
    from storage.postgres import HashKeyMismatch, PostgresStore

    pg_open()
    with pytest.raises(HashKeyMismatch, match="same key"):
        PostgresStore(pg_url, b"another key" * 3).close()
    pg_open()  # the right key still starts


def test_the_reply_and_how_much_was_sent_stay_with_a_pending_delivery(store):
    store.inbox_accept("zalo_bot", "m1", {"text": "câu hỏi \ud800"})
    reply = {"chat_id": "c1", "messages": [{"text": "Phần một"}, {"text": "Phần hai"}]}
    store.inbox_record_reply("zalo_bot", "m1", reply)
    [(key, payload)] = _pending_after_restart(store, "zalo_bot")
    assert key == "m1" and payload["_reply"] == reply and payload["_sent"] == 0 and payload["_sending"] is True
    store.inbox_mark_sent("zalo_bot", "m1", 1)
    assert _pending_after_restart(store, "zalo_bot")[0][1]["_sent"] == 1
    assert _pending_after_restart(store, "zalo_bot")[0][1]["_sending"] is False
    store.inbox_record_reply("zalo_bot", "m1", reply, 1)  # the same signature on both backends
    store.inbox_mark_sent("zalo_bot", "m1", 2, True)
    assert [_pending_after_restart(store, "zalo_bot")[0][1][k] for k in ("_sent", "_sending")] == [2, True]
    store.inbox_done("zalo_bot", "m1")
    store.inbox_mark_sent("zalo_bot", "m1", 2)  # after done: nothing to update
    store.inbox_record_reply("zalo_bot", "unknown", reply)  # no such delivery: a no-op
    assert _pending_after_restart(store, "zalo_bot") == []
    assert rows(store, "SELECT count(*) FROM inbox WHERE payload IS NOT NULL") == [(0,)]


def test_every_public_method_of_the_sqlite_store_exists_on_postgres():
    """A method added to the SQLite Store (bot/ may call it) must be added to PostgresStore too."""
    pytest.importorskip("psycopg", reason="psycopg is not installed (run `make setup`)")
    from storage.postgres import PostgresStore

    public = {name for name, value in vars(Store).items() if not name.startswith("_") and callable(value)}
    assert sorted(public - set(dir(PostgresStore))) == []


def test_a_restarted_worker_with_a_fixed_id_replays_its_own_deliveries_at_once(pg_open):
    before = pg_open(worker_id="host-a:8001", lease_seconds=60)
    assert before.inbox_accept("telegram", "tg:3:1", {"text": "x"})
    before.close()  # killed; its lease has a minute to run
    other = pg_open(worker_id="host-b:8001", lease_seconds=60)
    assert other.inbox_pending("telegram") == []  # not the other worker's to take yet
    again = pg_open(worker_id="host-a:8001", lease_seconds=60)
    assert again.inbox_pending("telegram") == [("tg:3:1", {"text": "x"})]


def _sql(store: Any, query: str) -> str:
    return query.replace("%s", "?") if isinstance(store, Store) else query


def test_write_is_one_transaction_and_nested_blocks_are_savepoints(store):
    insert = _sql(store, "INSERT INTO meta (key, value) VALUES (%s, %s)")
    with pytest.raises(RuntimeError), store.write() as db:
        db.execute(insert, ["a", "1"])
        raise RuntimeError("rolled back")
    with store.write() as db:
        db.execute(insert, ["b", "1"])
        with pytest.raises(RuntimeError), store.write() as inner:
            inner.execute(insert, ["c", "1"])
            raise RuntimeError("only the inner block")
        store.audit("staff", "x", "y", {})  # a store method inside the block joins the transaction
    assert [k for (k,) in rows(store, "SELECT key FROM meta WHERE key IN ('a', 'b', 'c') ORDER BY key")] == ["b"]
    assert rows(store, "SELECT count(*) FROM audit") == [(1,)]


def test_the_kb_listener_comes_back_after_a_server_restart(pg_cluster: Cluster, pg_open):  # noqa: F811
    if pg_cluster.directory is None:
        pytest.skip("the server is not ours to restart (BHXH_TEST_DATABASE_URL)")
    editor, listener = pg_open(timeout=1.0), pg_open(timeout=1.0)
    heard: list[int] = []
    watcher = listener.watch_kb_changes(heard.append, poll_seconds=30)
    try:
        assert watcher.listening.wait(5)
        pg_cluster.restart()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:  # the old session is gone; wait for LISTEN on a new one
            time.sleep(0.1)
            if watcher.listening.is_set() and watcher.is_alive():
                with contextlib.suppress(Exception):
                    editor.put_staff_entry("staff-3", {"id": "staff-3"}, "cán bộ")
                    break
        started = time.monotonic()
        while not heard and time.monotonic() - started < 5:
            time.sleep(0.05)
        assert heard and heard[-1] == editor.kb_version()
    finally:
        watcher.stop()


def test_the_factory_reads_the_one_setting(tmp_path: Path, pg_url: str, monkeypatch):  # noqa: F811
    default = tmp_path / "default.db"
    assert open_store("", HASH_KEY, default_path=default).path == default
    assert open_store(None, HASH_KEY, default_path=default).path == default
    assert open_store(f"sqlite:///{tmp_path}/a.db", HASH_KEY).path == tmp_path / "a.db"  # sqlite:////abs
    monkeypatch.chdir(tmp_path)
    assert open_store("sqlite:///rel.db", HASH_KEY).path == Path("rel.db")
    assert open_store(str(tmp_path / "b.db"), HASH_KEY).path == tmp_path / "b.db"
    with pytest.raises(ValueError, match="mysql://"):
        open_store("mysql://x/y", HASH_KEY)
    with pytest.raises(ValueError, match="no default"):
        open_store("", HASH_KEY)
    from storage.postgres import PostgresStore

    with open_store(pg_url, HASH_KEY, pool_size=2, worker_id="w") as store:
        assert isinstance(store, PostgresStore) and store.worker_id == "w"
    with open_store(pg_url.replace("postgresql://", "postgres://"), HASH_KEY) as store:
        assert isinstance(store, PostgresStore)
