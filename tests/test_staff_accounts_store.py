"""Staff accounts and entry versions in the store, on both backends (SQLite and a throwaway PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from storage.factory import open_store
from tests.pg import pg_cluster, pg_url  # noqa: F401 (fixtures)


@pytest.fixture(params=["sqlite", "postgres"])
def store(request, tmp_path: Path) -> Iterator[Any]:
    target = tmp_path / "bhxh.db" if request.param == "sqlite" else request.getfixturevalue("pg_url")
    opened = open_store(target, b"k" * 32)
    yield opened
    if hasattr(opened, "close"):
        opened.close()


def test_accounts_are_created_once_changed_and_disabled(store):
    assert store.add_account("hoa", "editor", "$argon2id$hash-1")
    assert not store.add_account("hoa", "admin", "$argon2id$other")  # the name is taken: nothing changes
    assert store.account("hoa")["role"] == "editor"
    assert store.update_account("hoa", role="reviewer", password_hash="$argon2id$hash-2")
    assert store.update_account("hoa", disabled=True)
    assert not store.update_account("nobody", disabled=True)
    hoa = store.account("hoa")
    assert (hoa["role"], hoa["password_hash"], hoa["disabled"]) == ("reviewer", "$argon2id$hash-2", True)
    assert hoa["created_ts"] <= hoa["updated_ts"] and hoa["created_ts"].endswith("Z")
    store.add_account("an", "viewer", "$argon2id$hash-3")
    assert [a["name"] for a in store.accounts()] == ["an", "hoa"]
    assert store.account("nobody") is None
    with pytest.raises(ValueError):
        store.add_account("x", "owner", "h")


def test_versions_are_listed_newest_first_and_decided_once(store):
    first = store.add_version("e-1", actor="hoa", action="entry.update", status="live",
                              record={"id": "e-1", "answer": "A"}, previous=None, reviewer="automation")
    draft = store.add_version("e-1", actor="hoa", action="entry.update", status="pending",
                              record={"id": "e-1", "answer": "B\u00a0ư"}, previous={"id": "e-1", "answer": "A"},
                              note="sửa câu trả lời")
    store.add_version("e-2", actor="an", action="entry.create", status="pending", record={"id": "e-2"}, previous=None)
    assert [v["id"] for v in store.versions("e-1")] == [draft, first]
    assert [v["entry_id"] for v in store.versions(status="pending")] == ["e-2", "e-1"]
    got = store.version(draft)
    assert got["record"] == {"id": "e-1", "answer": "B\u00a0ư"} and got["previous"] == {"id": "e-1", "answer": "A"}
    assert (got["status"], got["reviewer"], got["note"]) == ("pending", None, "sửa câu trả lời")
    assert store.version(first)["record"] == {"id": "e-1", "answer": "A"} and store.version(first)["previous"] is None
    assert store.decide_version(draft, "live", "lan")
    assert not store.decide_version(draft, "rejected", "minh")  # decided already: the second decision loses
    decided = store.version(draft)
    assert (decided["status"], decided["reviewer"]) == ("live", "lan") and decided["reviewed_ts"]
    assert store.version(10_000) is None


def test_hour_counts_are_vietnam_hours_on_both_backends(store):
    from storage.base import LoggedQuestion

    def ask(ts: str, channel: str = "web", topic: str = "pension") -> None:
        store.log_question(LoggedQuestion(channel, "u", "hỏi", "hỏi", topic, None, 0.9, "answered", "answer", 1.0,
                                          ts=ts))

    ask("2026-12-01T01:30:00.000000Z")  # 08:30 in Vietnam
    ask("2026-12-01T01:59:59.000000Z", channel="telegram")
    ask("2026-12-01T17:00:00.000000Z", topic="maternity")  # 00:00 the next day in Vietnam
    ask("2026-11-01T01:30:00.000000Z")  # outside the window
    counts = store.hour_counts("2026-11-30T17:00:00.000000Z", "2026-12-02T17:00:00.000000Z")
    assert len(counts) == 24 and counts[8] == 2 and counts[0] == 1 and sum(counts) == 3
    assert store.hour_counts("2026-11-30T17:00:00.000000Z", "2026-12-02T17:00:00.000000Z", channel="telegram")[8] == 1
    assert sum(store.hour_counts("2026-11-30T17:00:00.000000Z", "2026-12-02T17:00:00.000000Z",
                                 topic="maternity")) == 1
