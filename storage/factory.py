"""The store named by one setting: `BHXH_DATABASE_URL`.

- unset or empty: SQLite at the default path (`make run`, one process);
- `postgresql://user:pass@host:5432/db` (or `postgres://`): PostgreSQL, for N workers on any number of
  machines (storage.postgres, needs psycopg 3);
- `sqlite:///relative/path.db`, `sqlite:////absolute/path.db` (SQLAlchemy's spelling) or a plain file
  path: SQLite at that path.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from storage.store import Store

if TYPE_CHECKING:
    from storage.postgres import PostgresStore

DATABASE_URL_ENV = "BHXH_DATABASE_URL"


def is_postgres(url: str | Path | None) -> bool:
    return isinstance(url, str) and url.split("://", 1)[0] in ("postgresql", "postgres")


def open_store(url: str | Path | None, hash_key: bytes, *, default_path: Path | str | None = None,
               **options: Any) -> Store | PostgresStore:
    """The store for `url` (see the module docstring); `default_path` is the SQLite file used when `url`
    is empty. `options` go to the backend (SQLite: timeout; PostgreSQL: pool_size, timeout,
    lease_seconds, worker_id)."""
    if is_postgres(url):
        try:  # psycopg is imported only when PostgreSQL is chosen
            from storage.postgres import PostgresStore
        except ImportError as exc:
            raise RuntimeError(f"{DATABASE_URL_ENV} names PostgreSQL but its driver is missing ({exc}): "
                               "pip install 'psycopg[binary]' psycopg-pool (or `make setup`)") from exc
        return PostgresStore(str(url), hash_key, **options)
    if not url:
        if default_path is None:
            raise ValueError(f"{DATABASE_URL_ENV} is empty and no default SQLite path was given")
        return Store(default_path, hash_key, **options)
    text = str(url)
    if text.startswith("sqlite:///"):
        return Store(text.removeprefix("sqlite:///"), hash_key, **options)
    if "://" in text:
        raise ValueError(f"unsupported database URL scheme in {DATABASE_URL_ENV}: {text.split('://', 1)[0]}://")
    return Store(text, hash_key, **options)
