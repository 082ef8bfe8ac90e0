import contextlib
import inspect
import os
import sqlite3
import threading

import pytest

from storage.base import StoreBackend
from storage.store import LoggedQuestion, Store, load_hash_key


def question(text="Tôi tên là Nguyễn Văn An, CCCD 001203004567, hỏi lương hưu", message_id=None, **kw):
    base = dict(channel="web", user_id="user-1", text=text, normalized="hỏi lương hưu", topic="pension",
                entry_id="lh-1", score=0.9, outcome="answered", kind="answer", latency_ms=12.0,
                message_id=message_id)
    base.update(kw)
    return LoggedQuestion(**base)


@pytest.fixture
def store(tmp_path):
    return Store(tmp_path / "bhxh.db", load_hash_key(tmp_path))


def test_schema_is_created_in_wal_mode(store):
    assert {"questions", "feedback", "audit", "staff_entries", "conversations", "meta"} <= set(store.db.table_names())
    assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_logged_question_is_redacted_and_user_hashed(store):
    qid = store.log_question(question())
    row = store.db["questions"].get(qid)
    assert "001203004567" not in row["text"] and "Nguyễn Văn An" not in row["text"]
    assert "[CCCD]" in row["text"] and "[TÊN]" in row["text"]
    assert row["user_hash"] != "user-1" and len(row["user_hash"]) == 32
    assert row["outcome"] == "answered" and row["topic"] == "pension"


def test_hash_key_is_generated_once_and_kept_private(tmp_path):
    key = load_hash_key(tmp_path)
    assert load_hash_key(tmp_path) == key
    assert oct(os.stat(tmp_path / "hash.key").st_mode & 0o777) == "0o600"
    assert load_hash_key(tmp_path, "configured") == b"configured"


def test_duplicate_delivery_is_logged_once(store):
    first = store.log_question(question(message_id="tg:42"))
    assert store.seen_message("web", "tg:42")
    second = store.log_question(question(message_id="tg:42"))
    assert first == second
    assert store.db["questions"].count == 1


def test_locked_database_queues_writes_and_loses_nothing(tmp_path):
    store = Store(tmp_path / "bhxh.db", b"k", timeout=0.05)
    blocker = sqlite3.connect(tmp_path / "bhxh.db", timeout=0.05)
    blocker.execute("BEGIN EXCLUSIVE")
    assert store.log_question(question(message_id="a")) is None
    assert store.pending == 1
    assert store.seen_message("web", "a")  # still known as received
    blocker.rollback()
    blocker.close()
    assert store.flush() == 0
    assert store.db["questions"].count == 1


def test_feedback_is_recorded_and_attached(store):
    qid = store.log_question(question())
    store.record_feedback(channel="web", user_id="user-1", value=-5, entry_id="lh-1", question_id=qid)
    assert store.db["questions"].get(qid)["feedback"] == -1
    assert [r["value"] for r in store.db["feedback"].rows] == [-1]


def test_retention_deletes_old_rows(store):
    store.log_question(question(ts="2020-01-01T00:00:00.000000Z"))
    store.log_question(question())
    assert store.delete_older_than(365) == 1
    assert store.db["questions"].count == 1


def test_conversation_state_survives_a_new_store(tmp_path):
    Store(tmp_path / "db", b"k").save_state("zalo:abc", {"choices": [{"entry_id": "x", "question": "?"}]})
    assert Store(tmp_path / "db", b"k").load_state("zalo:abc")["choices"][0]["entry_id"] == "x"


def test_cleared_state_reads_as_empty(store):
    store.save_state("web:abc", {"choices": [{"entry_id": "x", "question": "q"}]})
    store.clear_state("web:abc")
    store.clear_state("web:never-saved")
    assert store.load_state("web:abc") == {} and store.load_state("web:never-saved") == {}


# ------------------------------------------------------------ the public write context


def audit_targets(path) -> list[str]:
    """What another connection (another process) sees committed."""
    with contextlib.closing(sqlite3.connect(path)) as other:
        return [t for (t,) in other.execute("SELECT target FROM audit ORDER BY id")]


def test_write_commits_on_exit_and_rolls_back_on_an_error(store):
    with store.write() as db:
        db.execute("INSERT INTO audit (ts, target) VALUES ('t', 'kept')")
        assert audit_targets(store.path) == []  # not visible before the block ends
    assert audit_targets(store.path) == ["kept"]
    with pytest.raises(sqlite3.IntegrityError), store.write() as db:
        db.execute("INSERT INTO audit (ts, target) VALUES ('t', 'undone')")
        db.execute("INSERT INTO staff_entries (id) VALUES ('x'), ('x')")  # fails: the whole block is undone
    assert audit_targets(store.path) == ["kept"]


def test_a_nested_write_is_a_savepoint(store):
    with store.write() as db:
        db.execute("INSERT INTO audit (ts, target) VALUES ('t', 'outer')")
        with pytest.raises(ValueError), store.write() as inner:
            inner.execute("INSERT INTO audit (ts, target) VALUES ('t', 'inner')")
            raise ValueError
        store.audit("staff", "entry.edit", "logged", {})  # the log methods join the open transaction
    assert audit_targets(store.path) == ["outer", "logged"]


def test_write_holds_the_store_and_the_database(store):
    """Inside the block no other thread logs through this store and no other process writes."""
    events = []
    with store.write() as db:
        writer = threading.Thread(target=lambda: events.append(store.log_question(question(message_id="x"))))
        writer.start()
        writer.join(0.2)
        assert writer.is_alive() and events == []  # waits for the block
        other = contextlib.closing(sqlite3.connect(store.path, timeout=0.05))
        with other as conn, pytest.raises(sqlite3.OperationalError, match="locked"):
            conn.execute("INSERT INTO audit (ts, target) VALUES ('t', 'other process')")
        db.execute("INSERT INTO audit (ts, target) VALUES ('t', 'mine')")
    writer.join(5)
    assert events == [1] and audit_targets(store.path) == ["mine"]


def test_staff_entries_round_trip_and_count_edits(tmp_path):
    store = Store(tmp_path / "bhxh.db", b"k")
    assert store.staff_entries() == {} and store.kb_version() == 0
    store.put_staff_entry("b-entry", {"id": "b-entry", "question": "Câu hỏi?"}, "staff-1")
    store.put_staff_entry("a-entry", {"id": "a-entry"}, "staff-1")
    store.put_staff_entry("b-entry", {"id": "b-entry", "question": "Câu hỏi mới?"}, "staff-2")
    entries = Store(tmp_path / "bhxh.db", b"k").staff_entries()  # kept across a restart
    assert list(entries) == ["a-entry", "b-entry"]
    assert entries["b-entry"]["record"]["question"] == "Câu hỏi mới?" and entries["b-entry"]["actor"] == "staff-2"
    store.delete_staff_entry("a-entry")
    assert list(store.staff_entries()) == ["b-entry"] and store.kb_version() == 4


def test_inbox_claim_on_sqlite_is_the_oldest_pending(store):
    for n in range(3):
        store.inbox_accept("telegram", f"tg:1:{n}", {"n": n})
    assert store.inbox_claim("telegram", limit=2) == [("tg:1:0", {"n": 0}), ("tg:1:1", {"n": 1})]


def test_the_sqlite_store_implements_the_backend_interface(store):
    """Every method of storage.base.StoreBackend, with the same parameters (the check a second backend
    can be held to as well)."""
    methods = {name: member for name, member in vars(StoreBackend).items()
               if callable(member) and not name.startswith("_")}
    assert {"log_question", "inbox_accept", "save_state", "write", "migrate"} <= set(methods)
    for name, member in methods.items():
        assert inspect.signature(getattr(Store, name)).parameters.keys() == inspect.signature(member).parameters.keys()
    for attribute in ("pending", "dropped", "in_memory"):
        assert isinstance(getattr(store, attribute), int)
