import os
import sqlite3

import pytest

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
