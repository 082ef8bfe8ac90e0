"""The SQLite schema: the only module that creates or alters tables.

A numbered sqlite-utils migration set (`MIGRATIONS`, recorded in the `_sqlite_migrations` table).
`migrate()` applies the pending steps in one `BEGIN IMMEDIATE` transaction, so two processes
starting on the same file take turns and a failed step leaves the database as it was.

Databases written before this set existed have no `_sqlite_migrations` table, so every step runs
on them once: each step is written to be a no-op where its objects already exist (`IF NOT EXISTS`,
triggers replaced and their counts rebuilt). Steps 1-3 reproduce the schema that `Store.migrate()`
created up to its "schema version 3", step 4 what `admin_api/analytics.py` created for the staff
dashboard. A new step is appended with the next number and never edited once released;
`tests/test_migrations.py` checks that a fresh database and a migrated copy of an old one end equal.

The PostgreSQL backend keeps its own DDL under the same step names (`MIGRATION_NAMES`).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator

import sqlite_utils
from sqlite_utils import Migrations

log = logging.getLogger(__name__)

MIGRATIONS = Migrations("bhxh")
MIGRATION_NAMES: list[str] = []  # in order; the PostgreSQL DDL uses the same names

# The version number of the numbering before this set ("schema version 3": delivery keys are stored
# hashed). `meta.schema_version` keeps it so a release before 3, run on this file after a rollback,
# is noticed: it writes a smaller number and keys in clear, which `migrate()` hashes again.
LEGACY_SCHEMA_VERSION = 3
DELIVERY_KEY_FUNCTION = "bhxh_delivery_key"  # SQL function registered by `migrate()` for the key hashing

# Daily question counts per Vietnam day (UTC+7); a `ts` that SQLite cannot parse counts on its own date.
_LOCAL_DAY = "coalesce(date({row}.ts, '+7 hours'), substr({row}.ts, 1, 10))"
_COUNT_UP = f"""INSERT INTO question_daily (day, topic, channel, outcome, n)
          VALUES ({_LOCAL_DAY.format(row="NEW")}, coalesce(NEW.topic, ''),
                  NEW.channel, NEW.outcome, 1)
          ON CONFLICT (day, topic, channel, outcome) DO UPDATE SET n = n + 1;"""
_COUNT_DOWN = f"""UPDATE question_daily SET n = n - 1
          WHERE day = {_LOCAL_DAY.format(row="OLD")} AND topic = coalesce(OLD.topic, '')
            AND channel = OLD.channel AND outcome = OLD.outcome;"""
DAILY_TRIGGERS = {
    "questions_daily_ins": f"""CREATE TRIGGER questions_daily_ins AFTER INSERT ON questions BEGIN
          {_COUNT_UP}
        END""",
    "questions_daily_del": f"""CREATE TRIGGER questions_daily_del AFTER DELETE ON questions BEGIN
          {_COUNT_DOWN}
        END""",
    "questions_daily_upd": "CREATE TRIGGER questions_daily_upd AFTER UPDATE OF ts, topic, channel, outcome "
                           f"""ON questions BEGIN
          {_COUNT_DOWN}
          {_COUNT_UP}
        END""",
}
# The full-text index of the log's normalized text (step 0006_signals), kept in step with `questions`.
FTS_TRIGGERS = {
    "questions_fts_ins": """CREATE TRIGGER questions_fts_ins AFTER INSERT ON questions BEGIN
          INSERT INTO questions_fts (rowid, normalized) VALUES (NEW.id, NEW.normalized);
        END""",
    "questions_fts_del": """CREATE TRIGGER questions_fts_del AFTER DELETE ON questions BEGIN
          INSERT INTO questions_fts (questions_fts, rowid, normalized) VALUES ('delete', OLD.id, OLD.normalized);
        END""",
    "questions_fts_upd": """CREATE TRIGGER questions_fts_upd AFTER UPDATE OF normalized ON questions BEGIN
          INSERT INTO questions_fts (questions_fts, rowid, normalized) VALUES ('delete', OLD.id, OLD.normalized);
          INSERT INTO questions_fts (rowid, normalized) VALUES (NEW.id, NEW.normalized);
        END""",
}
# The partial index behind the staff "unanswered" report; its query repeats this exact term.
UNSURE_INDEX_WHERE = "outcome != 'answered' OR score < 0.95"


Step = Callable[[sqlite_utils.Database], None]


def _step(name: str) -> Callable[[Step], Step]:
    """Register a migration step under `name` (appended to MIGRATION_NAMES)."""
    MIGRATION_NAMES.append(name)
    return MIGRATIONS(name=name)


def _run(db: sqlite_utils.Database, *statements: str) -> None:
    for sql in statements:
        db.execute(sql)


@_step("0001_core")
def core(db: sqlite_utils.Database) -> None:
    """The question log, feedback, audit, staff entries, conversation state and the meta table."""
    _run(db, """CREATE TABLE IF NOT EXISTS "questions" (
   "id" INTEGER PRIMARY KEY,
   "ts" TEXT NOT NULL,
   "channel" TEXT NOT NULL,
   "user_hash" TEXT,
   "message_id" TEXT,
   "text" TEXT,
   "normalized" TEXT,
   "topic" TEXT,
   "entry_id" TEXT,
   "score" REAL,
   "outcome" TEXT NOT NULL,
   "kind" TEXT,
   "latency_ms" REAL,
   "feedback" INTEGER
)""",
         'CREATE INDEX IF NOT EXISTS "idx_questions_ts"\n    ON "questions" ("ts")',
         'CREATE INDEX IF NOT EXISTS "idx_questions_topic_ts"\n    ON "questions" ("topic", "ts")',
         'CREATE INDEX IF NOT EXISTS "idx_questions_outcome_ts"\n    ON "questions" ("outcome", "ts")',
         # One log row per platform message: the duplicate-webhook check.
         'CREATE UNIQUE INDEX IF NOT EXISTS "idx_questions_channel_message_id"\n'
         '    ON "questions" ("channel", "message_id")',
         """CREATE TABLE IF NOT EXISTS "feedback" (
   "id" INTEGER PRIMARY KEY,
   "ts" TEXT,
   "question_id" INTEGER,
   "entry_id" TEXT,
   "value" INTEGER,
   "channel" TEXT,
   "user_hash" TEXT
)""",
         'CREATE INDEX IF NOT EXISTS "idx_feedback_entry_id"\n    ON "feedback" ("entry_id")',
         # One vote per (user, question): looked up on every vote.
         "CREATE INDEX IF NOT EXISTS feedback_user_question ON feedback (user_hash, question_id)",
         """CREATE TABLE IF NOT EXISTS "audit" (
   "id" INTEGER PRIMARY KEY,
   "ts" TEXT,
   "actor" TEXT,
   "action" TEXT,
   "target" TEXT,
   "detail" TEXT
)""",
         """CREATE TABLE IF NOT EXISTS "staff_entries" (
   "id" TEXT PRIMARY KEY,
   "record" TEXT,
   "updated_ts" TEXT,
   "actor" TEXT
)""",
         """CREATE TABLE IF NOT EXISTS "conversations" (
   "key" TEXT PRIMARY KEY,
   "state" TEXT,
   "updated_ts" TEXT
)""",
         """CREATE TABLE IF NOT EXISTS "meta" (
   "key" TEXT PRIMARY KEY,
   "value" TEXT
)""")


@_step("0002_inbox")
def inbox(db: sqlite_utils.Database) -> None:
    """The durable webhook inbox; its unique (channel, delivery_key) catches redeliveries."""
    _run(db, """CREATE TABLE IF NOT EXISTS "inbox" (
   "id" INTEGER PRIMARY KEY,
   "channel" TEXT NOT NULL,
   "delivery_key" TEXT NOT NULL,
   "payload" TEXT,
   "received_ts" TEXT NOT NULL,
   "done_ts" TEXT
)""",
         'CREATE UNIQUE INDEX IF NOT EXISTS "idx_inbox_channel_delivery_key"\n'
         '    ON "inbox" ("channel", "delivery_key")',
         'CREATE INDEX IF NOT EXISTS "idx_inbox_channel_done_ts"\n    ON "inbox" ("channel", "done_ts")')


@_step("0003_hashed_keys")
def hashed_keys(db: sqlite_utils.Database) -> None:
    """Message and delivery keys written in clear ("tg:<chat id>:<message id>") hashed in place."""
    hash_clear_keys(db)


@_step("0004_staff_counts")
def staff_counts(db: sqlite_utils.Database) -> None:
    """Indexes for the staff queries and `question_daily`, kept by triggers on `questions`.

    `(ts, topic, channel)` covers the topic windows, `(channel, ts)` the log filtered by channel.
    The triggers are replaced and the counts rebuilt from the log, so they match it whatever the
    database held before (this step used to run only when the staff API was registered)."""
    _run(db, "CREATE INDEX IF NOT EXISTS idx_questions_ts_topic_channel ON questions (ts, topic, channel)",
         "CREATE INDEX IF NOT EXISTS idx_questions_channel_ts ON questions (channel, ts)",
         "CREATE INDEX IF NOT EXISTS idx_audit_ts ON audit (ts)",
         "CREATE INDEX IF NOT EXISTS idx_questions_unsure ON questions "
         f"(ts, kind, outcome, score, channel, normalized) WHERE {UNSURE_INDEX_WHERE}",
         """CREATE TABLE IF NOT EXISTS question_daily (
            day TEXT NOT NULL, topic TEXT NOT NULL, channel TEXT NOT NULL, outcome TEXT NOT NULL,
            n INTEGER NOT NULL, PRIMARY KEY (day, topic, channel, outcome)) WITHOUT ROWID""")
    for name, sql in DAILY_TRIGGERS.items():
        _run(db, f"DROP TRIGGER IF EXISTS {name}", sql)
    _run(db, "DELETE FROM question_daily",
         f"""INSERT INTO question_daily (day, topic, channel, outcome, n)
             SELECT {_LOCAL_DAY.format(row="questions")}, coalesce(topic, ''), channel, outcome, COUNT(*)
             FROM questions GROUP BY 1, 2, 3, 4""",
         "DELETE FROM meta WHERE key = 'analytics_version'")  # an earlier marker nothing read


@_step("0005_handoff")
def handoff(db: sqlite_utils.Database) -> None:
    """Handoffs to a staff member ("Hỏi cán bộ", storage/handoffs.py): at most one open per chat, and their
    messages (redacted); the index on the log by user finds "not sure" twice in a row."""
    _run(db, """CREATE TABLE IF NOT EXISTS handoffs (
            id INTEGER PRIMARY KEY, channel TEXT NOT NULL, user_hash TEXT NOT NULL, chat_id TEXT,
            status TEXT NOT NULL, reason TEXT NOT NULL, topic TEXT, requested_ts TEXT NOT NULL, owner TEXT,
            owned_ts TEXT, closed_ts TEXT, updated_ts TEXT NOT NULL, last_message_id TEXT, kb_action TEXT)""",
         "CREATE UNIQUE INDEX IF NOT EXISTS idx_handoffs_open ON handoffs (channel, user_hash) "
         "WHERE status <> 'closed'",
         "CREATE INDEX IF NOT EXISTS idx_handoffs_status ON handoffs (status, requested_ts)",
         """CREATE TABLE IF NOT EXISTS handoff_messages (
            id INTEGER PRIMARY KEY, handoff_id INTEGER NOT NULL REFERENCES handoffs (id) ON DELETE CASCADE,
            ts TEXT NOT NULL, author TEXT NOT NULL, staff TEXT, text TEXT, message_key TEXT, delivery TEXT)""",
         "CREATE INDEX IF NOT EXISTS idx_handoff_messages ON handoff_messages (handoff_id, id)",
         "CREATE UNIQUE INDEX IF NOT EXISTS idx_handoff_messages_key ON handoff_messages (handoff_id, message_key) "
         "WHERE message_key IS NOT NULL",
         "CREATE INDEX IF NOT EXISTS idx_questions_user ON questions (channel, user_hash, id)")


@_step("0006_signals")
def signals(db: sqlite_utils.Database) -> None:
    """Signals of misunderstanding (bot/signals.py, storage/signal_log.py), the log by entry (drill-down
    from an entry or a feedback row) and full-text search over the redacted `normalized` text (FTS5,
    external content kept by triggers; accent-insensitive except "đ", which the query expands)."""
    _run(db, """CREATE TABLE IF NOT EXISTS signals (
            id INTEGER PRIMARY KEY, ts TEXT NOT NULL, channel TEXT NOT NULL, user_hash TEXT, kind TEXT NOT NULL,
            question_id INTEGER, entry_id TEXT, detail TEXT)""",
         "CREATE INDEX IF NOT EXISTS idx_signals_ts ON signals (ts, kind)",
         "CREATE INDEX IF NOT EXISTS idx_signals_question ON signals (question_id)",
         "CREATE INDEX IF NOT EXISTS idx_questions_entry_ts ON questions (entry_id, ts)",
         "CREATE VIRTUAL TABLE IF NOT EXISTS questions_fts USING fts5(normalized, content='questions', "
         "content_rowid='id', tokenize='unicode61 remove_diacritics 2')")
    for name, sql in FTS_TRIGGERS.items():
        _run(db, f"DROP TRIGGER IF EXISTS {name}", sql)
    _run(db, "INSERT INTO questions_fts (questions_fts) VALUES ('rebuild')")


@_step("0007_accounts_versions")
def accounts_versions(db: sqlite_utils.Database) -> None:
    """Staff accounts (role, Argon2 password hash) and every proposed or applied entry change
    (`storage.staff_records`)."""
    _run(db, """CREATE TABLE IF NOT EXISTS staff_accounts (
   name TEXT PRIMARY KEY, role TEXT NOT NULL, password_hash TEXT NOT NULL, disabled INTEGER NOT NULL DEFAULT 0,
   created_ts TEXT NOT NULL, updated_ts TEXT NOT NULL)""",
         """CREATE TABLE IF NOT EXISTS entry_versions (
   id INTEGER PRIMARY KEY, entry_id TEXT NOT NULL, ts TEXT NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL,
   status TEXT NOT NULL, record TEXT, previous TEXT, reviewer TEXT, reviewed_ts TEXT, note TEXT)""",
         "CREATE INDEX IF NOT EXISTS idx_entry_versions_entry ON entry_versions (entry_id, id)",
         "CREATE INDEX IF NOT EXISTS idx_entry_versions_status ON entry_versions (status, id)")


@_step("0008_user_index")
def user_index(db: sqlite_utils.Database) -> None:
    """The log by user leads with the user's hash: led by the channel, SQLite chose it for staff queries that
    filter by channel and topic (a count read 60,000 rows instead of using the topic index)."""
    _run(db, "DROP INDEX IF EXISTS idx_questions_user",
         "CREATE INDEX IF NOT EXISTS idx_questions_user_hash ON questions (user_hash, channel, id)")


# The full-text index with prefix indexes (step 0009): a staff search matches every word as a prefix, and
# without them FTS5 merges every prefix's doclist before returning the first row.
FTS_PREFIXES = "1 2 3 4 5 6"


@_step("0009_search_speed")
def search_speed(db: sqlite_utils.Database) -> None:
    """The staff search and review queue at 200,000 rows (issue 18, p95 under 100 ms): the full-text index gets
    prefix indexes for prefixes of 1 to 6 letters (a Vietnamese syllable has at most 7), so '"luong"* AND "huu"*'
    reads its matches lazily, newest first or up to a LIMIT (0.1 ms instead of 11 ms to count 1,001 of 29,000;
    the index grows from 11 to 42 MB); the signals of one kind are indexed by time (the review queue's filter)."""
    _run(db, "DROP TABLE IF EXISTS questions_fts",
         "CREATE VIRTUAL TABLE questions_fts USING fts5(normalized, content='questions', content_rowid='id', "
         f"tokenize='unicode61 remove_diacritics 2', prefix='{FTS_PREFIXES}')",
         "INSERT INTO questions_fts (questions_fts) VALUES ('rebuild')",
         "CREATE INDEX IF NOT EXISTS idx_signals_kind_ts ON signals (kind, ts)")


@_step("0010_feedback_ts")
def feedback_ts(db: sqlite_utils.Database) -> None:
    """Votes by time, as PostgreSQL has had from its first step: the review queue's cache is keyed on the latest
    vote change (a 👎 turned 👍 leaves the queue at once), and retention deletes old votes by time."""
    _run(db, "CREATE INDEX IF NOT EXISTS idx_feedback_ts ON feedback (ts)")


def legacy_schema_version(db: sqlite_utils.Database) -> int | None:
    row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    return int(row[0]) if row else None


def hash_clear_keys(db: sqlite_utils.Database) -> None:
    """If a release before schema version 3 wrote to this database, hash the keys it stored in clear
    (the SQL function `bhxh_delivery_key`, registered by `migrate()`, is `Store.delivery_key`).
    No marker means a database these migrations created: nothing was ever stored in clear."""
    version = legacy_schema_version(db)
    if version is not None and version < LEGACY_SCHEMA_VERSION:
        _run(db, f"UPDATE questions SET message_id = {DELIVERY_KEY_FUNCTION}(message_id) "
                 "WHERE message_id IS NOT NULL AND message_id NOT LIKE 'h:%'",
             f"UPDATE inbox SET delivery_key = {DELIVERY_KEY_FUNCTION}(delivery_key) WHERE delivery_key NOT LIKE 'h:%'")
    db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?)", [str(LEGACY_SCHEMA_VERSION)])


def pending(db: sqlite_utils.Database) -> list[str]:
    """Names of the steps not applied to this database yet (a read; nothing is written)."""
    return [m.name for m in MIGRATIONS.pending(db)]


def migrate(db: sqlite_utils.Database, delivery_key: Callable[[str], str]) -> list[str]:
    """Apply the pending steps in one transaction; returns their names (empty: nothing to do).

    `delivery_key` hashes a key as the store does (steps that rewrite stored keys need it).
    Raises sqlite3.DatabaseError if the database refuses (read-only, locked, full)."""
    db.conn.create_function(DELIVERY_KEY_FUNCTION, 1, delivery_key, deterministic=True)
    todo = pending(db)
    rollback_check = "0003_hashed_keys" not in todo
    if not todo and legacy_schema_version(db) == LEGACY_SCHEMA_VERSION:
        return []  # the usual start: reads only, no write lock taken
    with db.atomic() if db.conn.in_transaction else _immediate(db):
        todo = pending(db)  # again, under the write lock: another process may have applied them
        MIGRATIONS.apply(db)
        if rollback_check:
            hash_clear_keys(db)  # a release before 3 wrote here after 0003 ran (a rollback)
    if todo:
        log.info("database migrated: %s", ", ".join(todo))
    return todo


@contextlib.contextmanager
def _immediate(db: sqlite_utils.Database) -> Iterator[sqlite_utils.Database]:
    """BEGIN IMMEDIATE … COMMIT (ROLLBACK on error): takes SQLite's write lock at the start."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        if db.conn.in_transaction:
            db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
