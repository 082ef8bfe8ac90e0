"""`bhxh demo-traffic`: realistic synthetic questions for the staff dashboard."""

from __future__ import annotations

import argparse
import datetime as dt
import re

import pytest

from admin_api.demo_traffic import CHANNELS, add_demo_traffic_parser, generate
from admin_api.trends import topic_trends
from bot.engine import Engine
from knowledge.schema import load_knowledge
from knowledge.topics import TOPICS
from storage.store import Store, load_hash_key

NOW = dt.datetime(2026, 11, 20, 9, 30, tzinfo=dt.UTC)


@pytest.fixture
def store(tmp_path) -> Store:
    return Store(tmp_path / "demo.db", load_hash_key(tmp_path))


def test_fast_mode_fills_weeks_of_plausible_traffic(store):
    stats = generate(store, days=21, per_day=120, spike_topic="unemployment", spike_factor=3.0, now=NOW, seed=1)
    rows = store.db.execute("SELECT ts, channel, text, normalized, topic, entry_id, outcome, kind, score "
                            "FROM questions").fetchall()
    assert stats.rows == len(rows) and 21 * 120 * 0.7 < len(rows) < 21 * 120 * 1.2
    days = {r[0][:10] for r in rows}
    assert len(days) >= 20 and max(r[0] for r in rows) < NOW.strftime("%Y-%m-%dT%H:%M:%S")
    assert {r[1] for r in rows} == set(CHANNELS)
    assert {r[4] for r in rows if r[4]} == set(TOPICS)  # every topic is asked
    kinds = {r[7] for r in rows}
    assert {"answer", "choices", "not_sure", "out_of_scope"} <= kinds
    assert all(r[6] in ("answered", "choices", "declined") for r in rows)
    assert all((r[5] is not None) == (r[7] == "answer") for r in rows)  # only answers name an entry
    assert not any(re.search(r"\d{12}", r[2] or "") for r in rows)  # CCCD numbers are redacted…
    assert any("[CCCD]" in (r[2] or "") and "[TÊN]" in r[2] for r in rows)  # …and there were some
    assert any(r[2] != r[3] for r in rows)  # unaccented, teen-code texts are normalized
    feedback = store.db.execute("SELECT f.entry_id, q.entry_id, f.value, q.feedback FROM feedback f "
                                "JOIN questions q ON q.id = f.question_id").fetchall()
    assert len(feedback) == stats.feedback > 0
    assert all(f[0] == f[1] and f[2] == f[3] for f in feedback)  # each vote is tied to its question


def test_the_spike_topic_rises_in_the_last_week_only(store):
    generate(store, days=28, per_day=150, spike_topic="scams", spike_factor=4.0, now=NOW, seed=2)
    report = topic_trends(store, 7, now=NOW)
    rising = [t.topic for t in report.topics if t.rising]
    assert rising == ["scams"]
    earlier = topic_trends(store, 7, now=NOW - dt.timedelta(days=7))
    assert not any(t.rising for t in earlier.topics)


def test_engine_mode_logs_the_engines_own_outcomes(store):
    engine = Engine(load_knowledge(), None)  # lexical is enough to check the wiring
    stats = generate(store, days=2, per_day=25, spike_topic=None, engine=engine, now=NOW, seed=3)
    rows = store.db.execute("SELECT text, topic, entry_id, outcome, kind FROM questions").fetchall()
    assert stats.rows == len(rows) > 20
    checked = 0
    for text, topic, entry_id, outcome, kind in rows:
        if "[" in text:  # the engine saw the unredacted text
            continue
        reply = engine.ask(text)
        assert (reply.topic, reply.entry_id, reply.outcome, reply.kind) == (topic, entry_id, outcome, kind)
        checked += 1
    assert checked > 10


def test_the_command_line_fills_a_database(tmp_path, capsys):
    parser = argparse.ArgumentParser(prog="bhxh")
    add_demo_traffic_parser(parser.add_subparsers(dest="command", required=True))
    db = tmp_path / "cli.db"
    args = parser.parse_args(["demo-traffic", "--fast", "--db", str(db), "--days", "3", "--per-day", "40",
                              "--spike-topic", "pension"])
    assert args.func(args) == 0
    assert "questions" in capsys.readouterr().out
    store = Store(db, load_hash_key(tmp_path))
    assert store.db["questions"].count > 60
    assert store.db.execute("SELECT SUM(n) FROM question_daily").fetchone()[0] == store.db["questions"].count
    with pytest.raises(SystemExit):
        parser.parse_args(["demo-traffic", "--spike-topic", "weather"])
