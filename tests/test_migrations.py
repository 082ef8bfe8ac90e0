"""storage/schema.py migrates databases written by earlier releases forward, keeping their rows.

"Today's" databases start from frozen, empty database files made by the schema commit adf5d3e created
(tests/data/schema-adf5d3e-store.sqlite: the store's tables alone, a bot that never registered the staff
API; schema-adf5d3e-staff.sqlite: with the staff section, question_daily, its triggers and the staff
indexes). Never edit them; add new files for a new release instead.
"""

from __future__ import annotations

import contextlib
import shutil
import sqlite3
from pathlib import Path

import pytest
import sqlite_utils

from storage import schema
from storage.store import LoggedQuestion, Store, hash_delivery_key

SNAPSHOTS = Path(__file__).parent / "data"
KEY = b"migration-test-key"
DATA_TABLES = ("questions", "feedback", "audit", "staff_entries", "conversations", "inbox")
MIGRATIONS_TABLE = "_sqlite_migrations"
FIRST_STEP_AFTER_ADF5D3E = "0005_handoff"


def snapshot(staff: bool) -> Path:
    return SNAPSHOTS / f"schema-adf5d3e-{'staff' if staff else 'store'}.sqlite"


def build_old_database(path: Path, *, staff: bool, legacy_version: int = 3) -> None:
    """A database as the release at adf5d3e left it, with rows in every table. With legacy_version < 3
    the message and delivery keys are in clear, as releases before schema version 3 stored them."""
    shutil.copyfile(snapshot(staff), path)
    clear = legacy_version < 3

    def key(raw: str) -> str:
        return raw if clear else hash_delivery_key(KEY, raw)

    with contextlib.closing(sqlite3.connect(path)) as con, con:
        con.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", [str(legacy_version)])
        questions = [
            ("2026-11-30T16:59:59.000000Z", "telegram", "u1", key("tg:1:1"), "rút bhxh 1 lần", "rut bhxh 1 lan",
             "lump_sum", "lump-sum-conditions", 0.91, "answered", "answer", 40.0, 1),
            ("2026-11-30T17:00:00.000000Z", "zalo_bot", "u2", key("zb:m2"), "giá vàng", "gia vang", None, None,
             0.1, "declined", "out_of_scope", 12.5, None),
            ("2026-12-01T02:00:00.000000Z", "web", "u3", None, "lương hưu", "luong huu", "pension", None, 0.5,
             "choices", "choices", 30.0, None),
        ]
        con.executemany("INSERT INTO questions (ts, channel, user_hash, message_id, text, normalized, topic, "
                        "entry_id, score, outcome, kind, latency_ms, feedback) VALUES "
                        "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", questions)
        con.execute("INSERT INTO feedback (ts, question_id, entry_id, value, channel, user_hash) VALUES "
                    "('2026-11-30T17:01:00Z', 1, 'lump-sum-conditions', 1, 'telegram', 'u1')")
        con.execute("INSERT INTO audit (ts, actor, action, target, detail) VALUES "
                    "('2026-11-29T08:00:00Z', 'staff', 'entry.edit', 'pension-age', '{\"field\": \"answer\"}')")
        con.execute("INSERT INTO staff_entries VALUES ('pension-age', '{\"id\": \"pension-age\", \"question\": "
                    "\"Tuổi nghỉ hưu?\"}', '2026-11-29T08:00:00Z', 'staff')")
        con.execute("INSERT INTO conversations VALUES ('telegram:u1', '{\"choices\": [\"a\", \"b\"]}', "
                    "'2026-12-01T00:00:00Z')")
        con.executemany("INSERT INTO inbox (channel, delivery_key, payload, received_ts, done_ts) VALUES "
                        "(?, ?, ?, ?, ?)", [
                            ("telegram", key("tg:1:1"), None, "2026-11-30T16:59:58Z", "2026-11-30T17:00:01Z"),
                            ("telegram", key("tg:1:9"), '{"__inbox_key__": "tg:1:9", "payload": {"text": "xin chào"}}',
                             "2026-12-01T03:00:00Z", None),
                        ])


def rows(db: sqlite3.Connection | Store, table: str) -> list[tuple]:
    conn = db.db.conn if isinstance(db, Store) else db
    return conn.execute(f"SELECT * FROM {table} ORDER BY 1, 2").fetchall()


def schema_objects(db: sqlite3.Connection | Store) -> dict[tuple[str, str], str]:
    """Every table, index and trigger with its SQL, whitespace-normalized (the migrations' own table aside)."""
    conn = db.db.conn if isinstance(db, Store) else db
    return {(kind, name): " ".join((sql or "").split())
            for kind, name, sql in conn.execute("SELECT type, name, sql FROM sqlite_master")
            if MIGRATIONS_TABLE not in name}


def daily_counts(store: Store) -> dict[tuple[str, str, str, str], int]:
    return {tuple(r[:4]): r[4] for r in store.db.execute("SELECT * FROM question_daily WHERE n != 0")}


@pytest.mark.parametrize("staff", [False, True], ids=["bot-only", "with-staff"])
def test_a_database_of_today_migrates_and_keeps_every_row(tmp_path: Path, staff: bool) -> None:
    old = tmp_path / "old.db"
    build_old_database(old, staff=staff)
    with contextlib.closing(sqlite3.connect(old)) as con:
        before = {table: rows(con, table) for table in DATA_TABLES}
    copy = tmp_path / "bhxh.db"
    shutil.copy(old, copy)

    store = Store(copy, KEY)
    assert [m.name for m in schema.MIGRATIONS.applied(store.db)] == schema.MIGRATION_NAMES
    for table in DATA_TABLES:
        assert rows(store, table) == before[table], table
    assert dict(store.db.execute("SELECT key, value FROM meta").fetchall()) == {"schema_version": "3"}
    # Daily counts match the log (rebuilt for a database that had none), on Vietnam days.
    assert daily_counts(store) == {("2026-11-30", "lump_sum", "telegram", "answered"): 1,
                                   ("2026-12-01", "", "zalo_bot", "declined"): 1,
                                   ("2026-12-01", "pension", "web", "choices"): 1}

    # The old rows work through the public methods, and new rows are written next to them.
    assert store.seen_message("telegram", "tg:1:1") and store.seen_message("zalo_bot", "zb:m2")
    assert store.inbox_accept("telegram", "tg:1:1", {}) is False
    assert store.inbox_pending("telegram") == [("tg:1:9", {"text": "xin chào"})]
    assert store.load_state("telegram:u1") == {"choices": ["a", "b"]}
    assert store.staff_entries()["pension-age"]["record"]["question"] == "Tuổi nghỉ hưu?"
    new_id = store.log_question(LoggedQuestion(
        channel="web", user_id="u9", text="mức đóng tự nguyện", normalized="muc dong tu nguyen", topic="voluntary",
        entry_id="voluntary-rate", score=0.9, outcome="answered", kind="answer", latency_ms=20.0,
        message_id="web:9", ts="2026-12-02T01:00:00.000000Z"))
    assert new_id == 4
    assert daily_counts(store)[("2026-12-02", "voluntary", "web", "answered")] == 1
    assert store.record_feedback(channel="web", user_id="u9", value=-1, question_id=new_id)
    store.inbox_done("telegram", "tg:1:9")
    assert store.inbox_pending("telegram") == []
    store.delete_older_than(0)  # the triggers count deletions too
    assert rows(store, "questions") == [] and daily_counts(store) == {}


def test_keys_an_earlier_release_stored_in_clear_are_hashed_by_the_migration(tmp_path: Path) -> None:
    build_old_database(tmp_path / "bhxh.db", staff=True, legacy_version=2)
    store = Store(tmp_path / "bhxh.db", KEY)
    stored = [k for (k,) in store.db.execute("SELECT message_id FROM questions WHERE message_id IS NOT NULL "
                                             "ORDER BY id")]
    stored += [k for (k,) in store.db.execute("SELECT delivery_key FROM inbox ORDER BY id")]
    assert stored == [store.delivery_key(k) for k in ("tg:1:1", "zb:m2", "tg:1:1", "tg:1:9")]
    assert store.seen_message("telegram", "tg:1:1")
    assert store.inbox_pending("telegram") == [("tg:1:9", {"text": "xin chào"})]
    assert store.db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == ("3",)


def test_running_the_migrations_again_changes_nothing(tmp_path: Path) -> None:
    build_old_database(tmp_path / "bhxh.db", staff=False)
    first = Store(tmp_path / "bhxh.db", KEY)
    objects, applied = schema_objects(first), rows(first, MIGRATIONS_TABLE)
    data = {table: rows(first, table) for table in (*DATA_TABLES, "question_daily", "meta")}
    first.db.conn.close()

    again = Store(tmp_path / "bhxh.db", KEY)  # a restart
    changes = again.db.conn.total_changes
    assert again.migrate() == [] and schema.pending(again.db) == []
    assert again.db.conn.total_changes == changes  # not a single row written
    assert schema_objects(again) == objects and rows(again, MIGRATIONS_TABLE) == applied
    assert {table: rows(again, table) for table in data} == data


@pytest.mark.parametrize("staff", [False, True], ids=["bot-only", "with-staff"])
def test_a_fresh_database_equals_a_migrated_one(tmp_path: Path, staff: bool) -> None:
    build_old_database(tmp_path / "old.db", staff=staff)
    migrated = Store(tmp_path / "old.db", KEY)
    fresh = Store(tmp_path / "fresh.db", KEY)
    assert schema_objects(fresh) == schema_objects(migrated)
    for table in (*DATA_TABLES, "question_daily", "meta"):
        assert ([c[1:] for c in fresh.db.execute(f"PRAGMA table_info({table})")]
                == [c[1:] for c in migrated.db.execute(f"PRAGMA table_info({table})")]), table
    triggers = {name for (kind, name) in schema_objects(fresh) if kind == "trigger"}
    assert triggers == {*schema.DAILY_TRIGGERS, *schema.FTS_TRIGGERS}


def test_the_first_steps_reproduce_the_schema_of_today_exactly(tmp_path: Path) -> None:
    """The set creates what adf5d3e's Store and staff API created, object for object and word for word."""
    fresh = sqlite_utils.Database(tmp_path / "fresh.db")
    fresh.conn.create_function(schema.DELIVERY_KEY_FUNCTION, 1, lambda key: key, deterministic=True)
    schema.MIGRATIONS.apply(fresh, stop_before=FIRST_STEP_AFTER_ADF5D3E)  # later steps add their own objects
    with contextlib.closing(sqlite3.connect(f"file:{snapshot(staff=True)}?mode=ro", uri=True)) as con:
        assert schema_objects(fresh.conn) == schema_objects(con)


def test_a_failed_step_leaves_the_database_as_it_was(tmp_path: Path) -> None:
    """Every pending step runs in one transaction: a step that fails rolls them all back."""
    build_old_database(tmp_path / "bhxh.db", staff=False)
    with contextlib.closing(sqlite3.connect(tmp_path / "bhxh.db")) as con, con:
        con.execute("CREATE VIEW question_daily AS SELECT 1")  # step 0004 cannot create its table
    store = Store(tmp_path / "bhxh.db", KEY)  # logs the error and still serves
    assert MIGRATIONS_TABLE not in store.db.table_names()
    assert "idx_questions_unsure" not in {name for (_, name) in schema_objects(store)}
    assert store.log_question(LoggedQuestion(
        channel="web", user_id="u", text="hỏi", normalized="hoi", topic=None, entry_id=None, score=0.0,
        outcome="declined", kind="not_sure", latency_ms=1.0)) == 4


def test_the_latest_vote_change_is_read_from_an_index(tmp_path: Path) -> None:
    # The review queue's cache asks for it on every page view; without step 0010 SQLite scanned every vote.
    store = Store(tmp_path / "bhxh.db", KEY)
    plan = " ".join(str(row[-1]) for row in store.db.execute("EXPLAIN QUERY PLAN SELECT MAX(ts) FROM feedback"))
    assert "idx_feedback_ts" in plan, plan
