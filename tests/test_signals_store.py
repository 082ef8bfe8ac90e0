"""Signals and the log's text search on both backends (SQLite, and PostgreSQL from tests/pg.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from storage.base import LoggedQuestion
from storage.factory import open_store
from storage.signal_log import search_words
from tests.pg import Cluster, pg_cluster, pg_url  # noqa: F401 (fixtures)

HASH_KEY = b"k" * 32


def asked(store: Any, text: str, user: str = "u1", **kw: Any) -> int:
    row: dict[str, Any] = dict(channel="web", user_id=user, text=text, normalized=text.lower(), topic="pension",
                               entry_id="lh-1", score=0.93, outcome="answered", kind="answer", latency_ms=5.0)
    row.update(kw)
    qid = store.log_question(LoggedQuestion(**row))
    assert qid is not None
    return qid


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    target = tmp_path / "bhxh.db" if request.param == "sqlite" else request.getfixturevalue("pg_url")
    opened = open_store(target, HASH_KEY)
    yield opened
    if hasattr(opened, "close"):
        opened.close()


def test_a_signal_is_stored_redacted_and_hashed(store: Any) -> None:
    qid = asked(store, "Lương hưu tính thế nào")
    sid = store.log_signal(channel="web", user_id="u1", kind="thumbs_down", question_id=qid, entry_id="lh-1",
                           detail="Sai rồi, gọi tôi 0987654321")
    assert sid is not None
    kind, question_id, entry_id, detail, user_hash = store.db.execute(
        "SELECT kind, question_id, entry_id, detail, user_hash FROM signals WHERE id = ?", [sid]).fetchone()
    assert (kind, question_id, entry_id) == ("thumbs_down", qid, "lh-1")
    assert "0987654321" not in detail and detail.startswith("Sai rồi")
    assert user_hash == store.hash_user("web", "u1") != "u1"


def test_last_question_is_the_users_own_latest_before_an_id(store: Any) -> None:
    first = asked(store, "lương hưu bao nhiêu")
    asked(store, "câu của người khác", user="u2")
    second = asked(store, "thai sản", topic="maternity", entry_id="ts-1", outcome="choices")
    latest = store.last_question("web", "u1")
    assert latest["id"] == second and latest["outcome"] == "choices" and latest["topic"] == "maternity"
    assert store.last_question("web", "u1", before_id=second)["id"] == first
    assert store.last_question("web", "u1", before_id=first) is None
    assert store.last_question("telegram", "u1") is None
    assert set(latest) == {"id", "ts", "normalized", "topic", "entry_id", "outcome", "kind"}
    assert latest["ts"].endswith("Z")


def search(store: Any, query: str) -> list[str]:
    clause, args = store.search_clause(search_words(query))
    return [r[0] for r in store.db.execute(f"SELECT normalized FROM questions WHERE {clause} ORDER BY id", args)]


def test_search_is_accent_insensitive_by_word_prefix_and_follows_deletes(store: Any) -> None:
    asked(store, "Đóng BHXH tự nguyện bao nhiêu")
    asked(store, "lương hưu tối thiểu")
    asked(store, "dong bao hiem that nghiep")
    asked(store, "hưởng một lần")
    assert search(store, "đóng") == search(store, "dong") == ["đóng bhxh tự nguyện bao nhiêu",
                                                                "dong bao hiem that nghiep"]
    assert search(store, "luong HUU") == ["lương hưu tối thiểu"]
    assert search(store, "ng") == ["đóng bhxh tự nguyện bao nhiêu", "dong bao hiem that nghiep"]  # prefixes
    assert search(store, "một lần lương") == []  # every word must be there
    assert search(store, "hưởng; DROP TABLE x") == []
    assert search_words("  ?? ") == []
    with store.write() as db:
        db.execute("DELETE FROM questions WHERE normalized LIKE 'lương%'")
    assert search(store, "luong") == []


def test_retention_deletes_old_signals(store: Any) -> None:
    qid = asked(store, "lương hưu")
    store.log_signal(channel="web", user_id="u1", kind="rephrase", question_id=qid)
    with store.write() as db:
        db.execute("UPDATE signals SET ts = '2020-01-01T00:00:00.000000Z'")
        db.execute("UPDATE questions SET ts = '2020-01-01T00:00:00.000000Z'")
    store.delete_older_than(30)
    assert store.db.execute("SELECT COUNT(*) FROM signals").fetchone()[0] == 0


def test_the_staff_search_counts_to_its_cap_and_pages_alike_either_way(store: Any,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Few matches: the page comes from the full-text index, sorted; more than SEARCH_COUNT_LIMIT: the log is
    walked newest first. Both give the same rows, newest first, on both backends."""
    from admin_api import question_log
    from admin_api.question_log import QuestionFilter, list_questions

    ids = [asked(store, text, topic=topic) for text, topic in (
        ("lương hưu tối thiểu", "pension"), ("đóng bhxh tự nguyện", "voluntary"), ("lương hưu khi nghỉ sớm", "pension"),
        ("thai sản", "maternity"), ("lương hưu bao nhiêu", "pension"), ("Lương hưu ở nước ngoài", "pension"))]
    expected = [i for i in reversed(ids) if i not in (ids[1], ids[3])]

    def pages(search: str, limit: int, **filters: Any) -> tuple[list[int], int, bool]:
        found, cursor, total, capped = [], None, 0, False
        while True:
            page = list_questions(store, QuestionFilter(search=search, **filters), limit=limit, cursor=cursor)
            found += [q.id for q in page.items]
            total, capped, cursor = page.total, page.total_capped, page.next_cursor
            if cursor is None:
                return found, total, capped

    assert pages("luong huu", 3) == (expected, 4, False)  # from the index: 4 matches <= the cap
    monkeypatch.setattr(question_log, "SEARCH_COUNT_LIMIT", 2)
    assert pages("luong huu", 3) == (expected, 2, True)  # walked newest first; "2 câu hỏi trở lên"
    assert pages("luong huu", 1, topic="pension") == (expected, 2, True)
    monkeypatch.setattr(question_log, "SEARCH_PROBE_ROWS", 1)  # PostgreSQL: too few newest rows, the index counts
    assert pages("luong huu", 3) == (expected, 2, True)
    assert pages("luong", 10, topic="voluntary") == ([], 0, False)
    assert pages("dong", 10) == ([ids[1]], 1, False)


def test_a_first_page_that_is_not_full_needs_no_count(store: Any) -> None:
    from admin_api.question_log import QuestionFilter, list_questions

    ids = [asked(store, f"câu hỏi {n}", topic="pension" if n % 2 else "maternity") for n in range(5)]
    page = list_questions(store, QuestionFilter(topic="pension"), limit=10)
    assert [q.id for q in page.items] == [ids[3], ids[1]] and page.total == 2 and not page.total_capped
    first = list_questions(store, QuestionFilter(topic="maternity"), limit=2)
    assert first.total == 3 and first.next_cursor  # a full page: counted
    rest = list_questions(store, QuestionFilter(topic="maternity"), limit=2, cursor=first.next_cursor)
    assert [q.id for q in rest.items] == [ids[0]] and rest.total == 3 and rest.next_cursor is None


def test_sqlite_plans_of_the_search_count_and_page(tmp_path: Path) -> None:
    """The count is driven by the FTS5 index (and stops at its LIMIT); a walked page reads the ts index."""
    from admin_api.question_log import QuestionFilter
    from storage.signal_log import fts5_count

    store = open_store(tmp_path / "bhxh.db", HASH_KEY)
    asked(store, "lương hưu")
    chosen = QuestionFilter(search="luong huu", topic="pension")
    rest, args = chosen.where(store, search=False)
    query, found = fts5_count(search_words("luong huu"), rest, args, 1001)
    plan = [row[3] for row in store.db.execute("EXPLAIN QUERY PLAN " + query, found).fetchall()]
    assert plan[1].startswith("SCAN questions_fts") and "INTEGER PRIMARY KEY" in plan[2], plan
    clauses, args = chosen.where(store, newest_first=True)
    page = store.db.execute(f"EXPLAIN QUERY PLAN SELECT id FROM questions WHERE {' AND '.join(clauses)} "
                            "ORDER BY ts DESC, id DESC LIMIT 51", args).fetchall()
    assert "idx_questions_ts" in page[0][3] or "idx_questions_topic" in page[0][3], page


def test_counts_by_topic_channel_and_outcome_agree_with_the_log(store: Any) -> None:
    """Filtered only by topic, channel or outcome the count comes from the daily counts; it must equal counting
    the log, also after questions are deleted."""
    import datetime as dt

    from admin_api.question_log import QuestionFilter, list_questions

    for n in range(9):
        asked(store, f"câu {n}", channel=("web", "zalo", "telegram")[n % 3], topic=("pension", "maternity")[n % 2],
              outcome=("answered", "declined")[n % 2 == 0 and n % 4 == 0])
    with store.write() as db:
        db.execute("DELETE FROM questions WHERE normalized = 'câu 3'")
    rows = store.db.execute("SELECT channel, topic, outcome FROM questions").fetchall()
    for chosen in ({"topic": "pension"}, {"channel": "web", "topic": "maternity"}, {"outcome": "declined"},
                   {"channel": "zalo", "outcome": "answered", "topic": "pension"}):
        columns = [dict(zip(("channel", "topic", "outcome"), r, strict=True)) for r in rows]
        expected = sum(all(row[k] == v for k, v in chosen.items()) for row in columns)
        assert list_questions(store, QuestionFilter(**chosen), limit=1).total == expected, chosen
    recent = QuestionFilter(topic="pension", start=dt.datetime.now(dt.UTC) - dt.timedelta(days=1))
    assert list_questions(store, recent, limit=1).total == sum(r[1] == "pension" for r in rows)


def test_a_substring_filter_counts_to_the_cap(store: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from admin_api import question_log
    from admin_api.question_log import QuestionFilter, list_questions

    ids = [asked(store, text) for text in ("lương hưu", "lương cơ sở", "thai sản", "mức lương")]
    monkeypatch.setattr(question_log, "SEARCH_COUNT_LIMIT", 2)
    page = list_questions(store, QuestionFilter(contains="lương"), limit=1)
    assert (page.total, page.total_capped, [q.id for q in page.items]) == (2, True, [ids[3]])
    monkeypatch.setattr(question_log, "SEARCH_COUNT_LIMIT", 5)
    page = list_questions(store, QuestionFilter(contains="lương"), limit=1)
    assert (page.total, page.total_capped) == (3, False)


def test_feedback_per_entry_takes_the_questions_entry_for_a_vote_without_one(store: Any) -> None:
    from types import SimpleNamespace

    from admin_api.question_log import feedback_counts

    first = asked(store, "lương hưu", entry_id="lh-1")
    second = asked(store, "thai sản", entry_id="ts-1", user="u2")
    store.record_feedback(channel="web", user_id="u1", value=-1, entry_id=None, question_id=first)
    store.record_feedback(channel="web", user_id="u2", value=1, entry_id="ts-1", question_id=second)
    store.record_feedback(channel="web", user_id="u3", value=-1, entry_id="ts-1", question_id=None)
    store.record_feedback(channel="web", user_id="u4", value=1, entry_id=None, question_id=None)  # about nothing
    report = feedback_counts(store, SimpleNamespace(kb=SimpleNamespace(entries={})), days=1)
    assert [(r.entry_id, r.up, r.down) for r in report.entries] == [("lh-1", 0, 1), ("ts-1", 1, 1)]
    assert (report.up, report.down) == (1, 2)
