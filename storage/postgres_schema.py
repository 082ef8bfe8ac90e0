"""The PostgreSQL schema: the same named migrations as the SQLite set (`storage.schema.MIGRATION_NAMES`),
written for PostgreSQL, plus steps only PostgreSQL needs (their names start with "pg-").

Differences from SQLite, and why:
- Times are `timestamptz`, not ISO text: the question log grows by months, and range scans, the daily
  roll-up in local time and retention all want a real time type. Parameters given as the ISO text of
  `utcnow()` are cast by the server, so writers pass the same values on both backends.
- Ids are identity columns (`INSERT … RETURNING id` replaces `lastrowid`).
- The inbox carries a lease (`claimed_by`, `lease_until`): several workers share it, and a delivery
  leased by a worker that died is taken over once its lease has run out (`FOR UPDATE SKIP LOCKED`);
  and the (hashed) chat it came from, so one chat's deliveries are answered in the order accepted.
- `0003_hashed_keys` is a no-op: it hashes keys written in clear by SQLite releases before it; a
  PostgreSQL database has never held clear keys.
- `question_daily` is kept by one plpgsql trigger function (SQLite: three triggers).
- Rate-limit counters live in an UNLOGGED table: not WAL-logged nor replicated, lost on a crash,
  which is acceptable for rate limits and keeps their writes cheap.

`migrate(conn)` applies what is missing, each step in its own transaction, under an advisory lock so
that workers starting together apply each step exactly once.
"""

from __future__ import annotations

import logging

import psycopg

log = logging.getLogger(__name__)

MIGRATIONS_TABLE = "bhxh_migrations"
MIGRATE_LOCK = 0x6268_7868_0001  # pg_advisory_lock key: one migrating worker at a time

# Partial index of the questions a staff member may call unanswered (mirrors SQLite's idx_questions_unsure).
UNSURE_INDEX_WHERE = "outcome <> 'answered' OR score < 0.95"

MIGRATIONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("0001_core", (
        """CREATE TABLE questions (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            ts timestamptz NOT NULL,
            channel text NOT NULL,
            user_hash text,
            message_id text,
            text text,
            normalized text,
            topic text,
            entry_id text,
            score double precision,
            outcome text NOT NULL,
            kind text,
            latency_ms double precision,
            feedback smallint)""",
        "CREATE INDEX questions_ts ON questions (ts)",
        "CREATE INDEX questions_topic_ts ON questions (topic, ts)",
        "CREATE INDEX questions_outcome_ts ON questions (outcome, ts)",
        "CREATE UNIQUE INDEX questions_channel_message_id ON questions (channel, message_id)",
        """CREATE TABLE feedback (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            ts timestamptz NOT NULL,
            question_id bigint,
            entry_id text,
            value smallint NOT NULL,
            channel text,
            user_hash text)""",
        "CREATE INDEX feedback_entry_id ON feedback (entry_id)",
        "CREATE INDEX feedback_user_question ON feedback (user_hash, question_id)",
        "CREATE INDEX feedback_ts ON feedback (ts)",
        """CREATE TABLE audit (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            ts timestamptz NOT NULL,
            actor text,
            action text,
            target text,
            detail text)""",
        "CREATE TABLE staff_entries (id text PRIMARY KEY, record text NOT NULL, updated_ts timestamptz, actor text)",
        "CREATE TABLE conversations (key text PRIMARY KEY, state text NOT NULL, updated_ts timestamptz NOT NULL)",
        "CREATE INDEX conversations_updated_ts ON conversations (updated_ts)",
        "CREATE TABLE meta (key text PRIMARY KEY, value text)",
    )),
    ("0002_inbox", (
        """CREATE TABLE inbox (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            channel text NOT NULL,
            delivery_key text NOT NULL,
            payload text,
            received_ts timestamptz NOT NULL,
            done_ts timestamptz,
            claimed_by text,
            lease_until timestamptz,
            chat text,
            UNIQUE (channel, delivery_key))""",
        # inbox_turn: is an older delivery of the same chat still pending?
        "CREATE INDEX inbox_chat_pending ON inbox (channel, chat, id) WHERE done_ts IS NULL AND chat IS NOT NULL",
        # The claim scans only what is not done, oldest first.
        "CREATE INDEX inbox_pending ON inbox (channel, id) WHERE done_ts IS NULL",
        "CREATE INDEX inbox_done_ts ON inbox (done_ts) WHERE done_ts IS NOT NULL",
    )),
    ("0003_hashed_keys", ()),
    ("0004_staff_counts", (
        "CREATE INDEX idx_questions_ts_topic_channel ON questions (ts, topic, channel)",
        "CREATE INDEX idx_questions_channel_ts ON questions (channel, ts)",
        "CREATE INDEX idx_audit_ts ON audit (ts)",
        f"CREATE INDEX idx_questions_unsure ON questions (ts, kind, outcome, score, channel) "
        f"WHERE {UNSURE_INDEX_WHERE}",
        """CREATE TABLE question_daily (
            day date NOT NULL, topic text NOT NULL, channel text NOT NULL, outcome text NOT NULL,
            n bigint NOT NULL, PRIMARY KEY (day, topic, channel, outcome))""",
        # Local day in Vietnam (UTC+7 all year, no daylight saving).
        """CREATE FUNCTION bhxh_local_day(t timestamptz) RETURNS date
            LANGUAGE sql IMMUTABLE PARALLEL SAFE
            RETURN ((t AT TIME ZONE 'UTC') + interval '7 hours')::date""",
        """CREATE FUNCTION bhxh_question_daily() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF TG_OP IN ('DELETE', 'UPDATE') THEN
            UPDATE question_daily SET n = n - 1
            WHERE day = bhxh_local_day(OLD.ts) AND topic = coalesce(OLD.topic, '')
              AND channel = OLD.channel AND outcome = OLD.outcome;
          END IF;
          IF TG_OP IN ('INSERT', 'UPDATE') THEN
            INSERT INTO question_daily (day, topic, channel, outcome, n)
            VALUES (bhxh_local_day(NEW.ts), coalesce(NEW.topic, ''), NEW.channel, NEW.outcome, 1)
            ON CONFLICT (day, topic, channel, outcome) DO UPDATE SET n = question_daily.n + 1;
          END IF;
          RETURN NULL;
        END $$""",
        """CREATE TRIGGER questions_daily AFTER INSERT OR DELETE OR UPDATE OF ts, topic, channel, outcome
            ON questions FOR EACH ROW EXECUTE FUNCTION bhxh_question_daily()""",
        """INSERT INTO question_daily (day, topic, channel, outcome, n)
            SELECT bhxh_local_day(ts), coalesce(topic, ''), channel, outcome, count(*)
            FROM questions GROUP BY 1, 2, 3, 4""",
    )),
    ("0005_handoff", (
        """CREATE TABLE handoffs (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, channel text NOT NULL, user_hash text NOT NULL,
            chat_id text, status text NOT NULL, reason text NOT NULL, topic text, requested_ts timestamptz NOT NULL,
            owner text, owned_ts timestamptz, closed_ts timestamptz, updated_ts timestamptz NOT NULL,
            last_message_id text, kb_action text)""",
        "CREATE UNIQUE INDEX handoffs_open ON handoffs (channel, user_hash) WHERE status <> 'closed'",
        "CREATE INDEX handoffs_status ON handoffs (status, requested_ts)",
        """CREATE TABLE handoff_messages (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            handoff_id bigint NOT NULL REFERENCES handoffs (id) ON DELETE CASCADE, ts timestamptz NOT NULL,
            author text NOT NULL, staff text, text text, message_key text, delivery text)""",
        "CREATE INDEX handoff_messages_handoff ON handoff_messages (handoff_id, id)",
        "CREATE UNIQUE INDEX handoff_messages_key ON handoff_messages (handoff_id, message_key) "
        "WHERE message_key IS NOT NULL",
        "CREATE INDEX questions_user ON questions (channel, user_hash, id)",
    )),
    ("0006_signals", (
        """CREATE TABLE signals (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, ts timestamptz NOT NULL, channel text NOT NULL,
            user_hash text, kind text NOT NULL, question_id bigint, entry_id text, detail text)""",
        "CREATE INDEX signals_ts ON signals (ts, kind)",
        "CREATE INDEX signals_question ON signals (question_id)",
        "CREATE INDEX idx_questions_entry_ts ON questions (entry_id, ts)",
        # Full-text search over the redacted normalized text, accent-insensitive (unaccent is a trusted
        # extension: the database owner may create it); the wrapper is IMMUTABLE so it can be indexed.
        "CREATE EXTENSION IF NOT EXISTS unaccent",
        """CREATE FUNCTION bhxh_search_text(t text) RETURNS tsvector
            LANGUAGE sql IMMUTABLE PARALLEL SAFE
            RETURN to_tsvector('simple'::regconfig,
                               public.unaccent('public.unaccent'::regdictionary, coalesce(t, '')))""",
        "CREATE INDEX questions_search ON questions USING gin (bhxh_search_text(normalized))",
    )),
    ("0007_accounts_versions", (
        """CREATE TABLE staff_accounts (
            name text PRIMARY KEY, role text NOT NULL, password_hash text NOT NULL,
            disabled integer NOT NULL DEFAULT 0, created_ts timestamptz NOT NULL, updated_ts timestamptz NOT NULL)""",
        """CREATE TABLE entry_versions (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, entry_id text NOT NULL, ts timestamptz NOT NULL,
            actor text NOT NULL, action text NOT NULL, status text NOT NULL, record text, previous text,
            reviewer text, reviewed_ts timestamptz, note text)""",
        "CREATE INDEX entry_versions_entry ON entry_versions (entry_id, id)",
        "CREATE INDEX entry_versions_status ON entry_versions (status, id)",
    )),
    ("0008_user_index", (
        "DROP INDEX IF EXISTS questions_user",
        "CREATE INDEX questions_user_hash ON questions (user_hash, channel, id)",
    )),
    ("0009_search_speed", (
        # The search's tsvector stored with the row: a page newest first checks each row it walks, and the GIN
        # index's matches are rechecked, without running unaccent and to_tsvector again (the table is rewritten once).
        "ALTER TABLE questions ADD COLUMN search_tsv tsvector "
        "GENERATED ALWAYS AS (bhxh_search_text(normalized)) STORED",
        "CREATE INDEX questions_search_tsv ON questions USING gin (search_tsv)",
        "DROP INDEX IF EXISTS questions_search",
        "CREATE INDEX signals_kind_ts ON signals (kind, ts)",
    )),
    ("0010_feedback_ts", (
        "CREATE INDEX IF NOT EXISTS feedback_ts ON feedback (ts)",  # here since 0001; SQLite gets it now
    )),
    ("pg-0001_shared_state", (
        # Fixed-window counters; the window start is part of the key, old windows are swept.
        """CREATE UNLOGGED TABLE rate_limits (
            key text NOT NULL, window_start bigint NOT NULL, n integer NOT NULL,
            PRIMARY KEY (key, window_start))""",
        "INSERT INTO meta (key, value) VALUES ('kb_version', '0') ON CONFLICT (key) DO NOTHING",
        # Channel credentials shared by the workers (the Zalo OA access and single-use refresh token).
        "CREATE TABLE channel_tokens (name text PRIMARY KEY, token text NOT NULL, updated_ts timestamptz NOT NULL)",
    )),
)

MIGRATION_NAMES_PG = tuple(name for name, _ in MIGRATIONS)


def shared_names() -> tuple[str, ...]:
    """The migrations both backends have (the PostgreSQL-only steps left out)."""
    return tuple(name for name in MIGRATION_NAMES_PG if not name.startswith("pg-"))


def applied(conn: psycopg.Connection) -> set[str]:
    conn.execute(f"CREATE TABLE IF NOT EXISTS {MIGRATIONS_TABLE} "
                 "(name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())")
    return {row[0] for row in conn.execute(f"SELECT name FROM {MIGRATIONS_TABLE}").fetchall()}


def migrate(conn: psycopg.Connection) -> list[str]:
    """Apply the missing migrations in order; returns the names applied. `conn` must be in autocommit mode."""
    done: list[str] = []
    conn.execute("SELECT pg_advisory_lock(%s)", [MIGRATE_LOCK])
    try:
        present = applied(conn)
        for name, statements in MIGRATIONS:
            if name in present:
                continue
            with conn.transaction():
                for sql in statements:
                    conn.execute(sql)
                conn.execute(f"INSERT INTO {MIGRATIONS_TABLE} (name) VALUES (%s)", [name])
            log.info("PostgreSQL migration %s applied", name)
            done.append(name)
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s)", [MIGRATE_LOCK])
    return done
