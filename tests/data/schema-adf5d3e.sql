-- The SQLite schema as commit adf5d3e created it (storage/store.py Store.migrate(), then
-- admin_api/analytics.py migrate(), which ran when the staff API was registered), dumped from
-- sqlite_master. Frozen: tests/test_migrations.py builds "today's" databases from it to check that
-- storage/schema.py migrates them. Never edit; add a new snapshot for a new release instead.

-- section: store
CREATE TABLE "questions" (
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
);
CREATE INDEX "idx_questions_ts"
    ON "questions" ("ts");
CREATE INDEX "idx_questions_topic_ts"
    ON "questions" ("topic", "ts");
CREATE INDEX "idx_questions_outcome_ts"
    ON "questions" ("outcome", "ts");
CREATE UNIQUE INDEX "idx_questions_channel_message_id"
    ON "questions" ("channel", "message_id");
CREATE TABLE "feedback" (
   "id" INTEGER PRIMARY KEY,
   "ts" TEXT,
   "question_id" INTEGER,
   "entry_id" TEXT,
   "value" INTEGER,
   "channel" TEXT,
   "user_hash" TEXT
);
CREATE INDEX "idx_feedback_entry_id"
    ON "feedback" ("entry_id");
CREATE INDEX feedback_user_question ON feedback (user_hash, question_id);
CREATE TABLE "audit" (
   "id" INTEGER PRIMARY KEY,
   "ts" TEXT,
   "actor" TEXT,
   "action" TEXT,
   "target" TEXT,
   "detail" TEXT
);
CREATE TABLE "staff_entries" (
   "id" TEXT PRIMARY KEY,
   "record" TEXT,
   "updated_ts" TEXT,
   "actor" TEXT
);
CREATE TABLE "conversations" (
   "key" TEXT PRIMARY KEY,
   "state" TEXT,
   "updated_ts" TEXT
);
CREATE TABLE "inbox" (
   "id" INTEGER PRIMARY KEY,
   "channel" TEXT NOT NULL,
   "delivery_key" TEXT NOT NULL,
   "payload" TEXT,
   "received_ts" TEXT NOT NULL,
   "done_ts" TEXT
);
CREATE UNIQUE INDEX "idx_inbox_channel_delivery_key"
    ON "inbox" ("channel", "delivery_key");
CREATE INDEX "idx_inbox_channel_done_ts"
    ON "inbox" ("channel", "done_ts");
CREATE TABLE "meta" (
   "key" TEXT PRIMARY KEY,
   "value" TEXT
);
INSERT INTO meta (key, value) VALUES ('schema_version', '3');

-- section: staff
CREATE INDEX idx_questions_ts_topic_channel ON questions (ts, topic, channel);
CREATE INDEX idx_questions_channel_ts ON questions (channel, ts);
CREATE INDEX idx_audit_ts ON audit (ts);
CREATE INDEX idx_questions_unsure ON questions (ts, kind, outcome, score, channel, normalized) WHERE outcome != 'answered' OR score < 0.95;
CREATE TABLE question_daily (
            day TEXT NOT NULL, topic TEXT NOT NULL, channel TEXT NOT NULL, outcome TEXT NOT NULL,
            n INTEGER NOT NULL, PRIMARY KEY (day, topic, channel, outcome)) WITHOUT ROWID;
CREATE TRIGGER questions_daily_ins AFTER INSERT ON questions BEGIN
          INSERT INTO question_daily (day, topic, channel, outcome, n)
          VALUES (coalesce(date(NEW.ts, '+7 hours'), substr(NEW.ts, 1, 10)), coalesce(NEW.topic, ''),
                  NEW.channel, NEW.outcome, 1)
          ON CONFLICT (day, topic, channel, outcome) DO UPDATE SET n = n + 1;
        END;
CREATE TRIGGER questions_daily_del AFTER DELETE ON questions BEGIN
          UPDATE question_daily SET n = n - 1
          WHERE day = coalesce(date(OLD.ts, '+7 hours'), substr(OLD.ts, 1, 10)) AND topic = coalesce(OLD.topic, '')
            AND channel = OLD.channel AND outcome = OLD.outcome;
        END;
CREATE TRIGGER questions_daily_upd AFTER UPDATE OF ts, topic, channel, outcome ON questions BEGIN
          UPDATE question_daily SET n = n - 1
          WHERE day = coalesce(date(OLD.ts, '+7 hours'), substr(OLD.ts, 1, 10)) AND topic = coalesce(OLD.topic, '')
            AND channel = OLD.channel AND outcome = OLD.outcome;
          INSERT INTO question_daily (day, topic, channel, outcome, n)
          VALUES (coalesce(date(NEW.ts, '+7 hours'), substr(NEW.ts, 1, 10)), coalesce(NEW.topic, ''),
                  NEW.channel, NEW.outcome, 1)
          ON CONFLICT (day, topic, channel, outcome) DO UPDATE SET n = n + 1;
        END;
INSERT INTO meta (key, value) VALUES ('analytics_version', '1');
