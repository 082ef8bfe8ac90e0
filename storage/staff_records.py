"""Staff accounts and entry versions: one implementation for both backends (migration 0007_accounts_versions).

`Store` (SQLite) and `PostgresStore` inherit `StaffRecords`. Reads go through `store.db.execute` with `?`
placeholders (on PostgreSQL the portable reads), writes through `store.write()` in the backend's own
placeholder style (`_PARAM`). Times are stored as `utcnow()` text (PostgreSQL casts it to timestamptz).

    staff_accounts  name (primary key), role, password_hash, disabled (0/1), created_ts, updated_ts
    entry_versions  one row per proposed or applied change of an entry: the staff record after the change
                    (`record`, NULL = the staff record removed, the YAML version applies) and before it
                    (`previous`), who proposed it (`actor`), its `status` (pending, live, rejected,
                    withdrawn) and who decided (`reviewer`, `reviewed_ts`)
"""

from __future__ import annotations

import json
from contextlib import AbstractContextManager
from typing import Any

from retrieval.normalize import valid_unicode
from storage.base import utcnow

VIETNAM_UTC_OFFSET_HOURS = 7
ROLES = ("viewer", "editor", "reviewer", "admin")  # each role may do what the ones before it may
VERSION_STATUSES = ("pending", "live", "rejected", "withdrawn")
_ACCOUNT_COLUMNS = "name, role, password_hash, disabled, created_ts, updated_ts"
_VERSION_COLUMNS = "id, entry_id, ts, actor, action, status, record, previous, reviewer, reviewed_ts, note"


def _clean(value: str | None) -> str | None:
    """Text both backends store (PostgreSQL refuses NUL characters and invalid UTF-8)."""
    return None if value is None else valid_unicode(value).replace("\x00", "\ufffd")


def _known(value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"unknown value {value!r} (one of {', '.join(allowed)})")


def _json(record: dict[str, Any] | None) -> str | None:
    return None if record is None else _clean(json.dumps(record, ensure_ascii=False))


def _record(text: str | None) -> dict[str, Any] | None:
    value = json.loads(text) if text else None
    return value if isinstance(value, dict) else None


class StaffRecords:
    """Accounts and entry versions over `self.db` (reads) and `self.write()` (writes)."""

    _PARAM = "?"  # PostgresStore: "%s"
    db: Any
    _lock: Any

    def write(self) -> AbstractContextManager[Any]: ...  # provided by the backend

    def _sql(self, query: str) -> str:
        return query if self._PARAM == "?" else query.replace("?", self._PARAM)

    def _returning(self, query: str, params: list[Any]) -> Any:
        """One write whose statement ends in RETURNING <column>: that value, or None if no row was written."""
        with self.write() as db:
            row = db.execute(self._sql(query), params).fetchone()
        return row[0] if row else None

    def _read(self, query: str, params: list[Any]) -> list[tuple[Any, ...]]:
        with self._lock:
            return list(self.db.execute(query, params).fetchall())

    # ------------------------------------------------------------ accounts

    @staticmethod
    def _account(row: tuple[Any, ...]) -> dict[str, Any]:
        name, role, password_hash, disabled, created_ts, updated_ts = row
        return {"name": name, "role": role, "password_hash": password_hash, "disabled": bool(disabled),
                "created_ts": created_ts, "updated_ts": updated_ts}

    def account(self, name: str) -> dict[str, Any] | None:
        """The account called `name` (with its password hash), or None."""
        rows = self._read(f"SELECT {_ACCOUNT_COLUMNS} FROM staff_accounts WHERE name = ?", [name])
        return self._account(rows[0]) if rows else None

    def accounts(self) -> list[dict[str, Any]]:
        """Every account, by name (password hashes included: callers drop them before showing)."""
        rows = self._read(f"SELECT {_ACCOUNT_COLUMNS} FROM staff_accounts ORDER BY name", [])
        return [self._account(r) for r in rows]

    def add_account(self, name: str, role: str, password_hash: str) -> bool:
        """Create an account; False if the name is taken."""
        _known(role, ROLES)
        now = utcnow()
        return self._returning(
            "INSERT INTO staff_accounts (name, role, password_hash, disabled, created_ts, updated_ts) "
            "VALUES (?, ?, ?, 0, ?, ?) ON CONFLICT (name) DO NOTHING RETURNING name",
            [_clean(name), role, password_hash, now, now]) is not None

    def update_account(self, name: str, *, role: str | None = None, password_hash: str | None = None,
                       disabled: bool | None = None) -> bool:
        """Change an account's role, password hash or disabled flag (None: unchanged); False if unknown."""
        if role is not None:
            _known(role, ROLES)
        return self._returning(
            "UPDATE staff_accounts SET role = coalesce(?, role), password_hash = coalesce(?, password_hash), "
            "disabled = coalesce(?, disabled), updated_ts = ? WHERE name = ? RETURNING name",
            [role, password_hash, None if disabled is None else int(disabled), utcnow(), name]) is not None

    # ------------------------------------------------------------ time-of-day pattern (staff reports)

    def hour_counts(self, start: str, end: str, channel: str | None = None, topic: str | None = None) -> list[int]:
        """Questions per hour of the day in Vietnam (UTC+7, 0-23) with start <= ts < end (stored time text)."""
        # The UTC hour, shifted below (Vietnam has no daylight saving): on SQLite a substring of the stored
        # text is several times cheaper than strftime over a month of questions.
        hour = ("substr(ts, 12, 2)" if self._PARAM == "?"
                else "CAST(extract(hour FROM ts AT TIME ZONE 'UTC') AS INTEGER)")
        where, params = ["ts >= ?", "ts < ?"], [start, end]
        for column, value in (("channel", channel), ("topic", topic)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        query = f"SELECT {hour} AS h, COUNT(*) FROM questions WHERE {' AND '.join(where)} GROUP BY h"
        counts = [0] * 24
        for h, n in self._read(query, params):
            if h is not None and str(h).isdigit() and 0 <= int(h) < 24:
                counts[(int(h) + VIETNAM_UTC_OFFSET_HOURS) % 24] += int(n)
        return counts

    # ------------------------------------------------------------ entry versions

    @staticmethod
    def _version(row: tuple[Any, ...]) -> dict[str, Any]:
        keys = [k.strip() for k in _VERSION_COLUMNS.split(",")]
        out = dict(zip(keys, row, strict=True))
        out["id"] = int(out["id"])
        out["record"], out["previous"] = _record(out["record"]), _record(out["previous"])
        return out

    def add_version(self, entry_id: str, *, actor: str, action: str, status: str, record: dict[str, Any] | None,
                    previous: dict[str, Any] | None, reviewer: str | None = None, note: str = "") -> int:
        """Record a change of `entry_id` (status pending, or live when applied at once); returns its id."""
        _known(status, VERSION_STATUSES)
        now = utcnow()
        return int(self._returning(
            "INSERT INTO entry_versions (entry_id, ts, actor, action, status, record, previous, reviewer, "
            "reviewed_ts, note) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
            [entry_id, now, _clean(actor), action, status, _json(record), _json(previous), _clean(reviewer),
             now if reviewer else None, _clean(note)]))

    def version(self, version_id: int) -> dict[str, Any] | None:
        rows = self._read(f"SELECT {_VERSION_COLUMNS} FROM entry_versions WHERE id = ?", [version_id])
        return self._version(rows[0]) if rows else None

    def versions(self, entry_id: str | None = None, status: str | None = None,
                 limit: int = 100) -> list[dict[str, Any]]:
        """Versions newest first, of one entry and/or in one status."""
        where, params = [], []
        if entry_id is not None:
            where.append("entry_id = ?")
            params.append(entry_id)
        if status is not None:
            where.append("status = ?")
            params.append(status)
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        rows = self._read(f"SELECT {_VERSION_COLUMNS} FROM entry_versions{clause} ORDER BY id DESC LIMIT ?",
                          [*params, limit])
        return [self._version(r) for r in rows]

    def decide_version(self, version_id: int, status: str, reviewer: str, *, expected: str = "pending") -> bool:
        """Move a version from `expected` to `status` (by `reviewer`); False if it was not in `expected`
        (someone else decided first)."""
        _known(status, VERSION_STATUSES)
        return self._returning("UPDATE entry_versions SET status = ?, reviewer = ?, reviewed_ts = ? "
                               "WHERE id = ? AND status = ? RETURNING id",
                               [status, _clean(reviewer), utcnow(), version_id, expected]) is not None
