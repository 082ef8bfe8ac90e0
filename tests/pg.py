"""A throwaway PostgreSQL cluster for the tests: started once per session on a unix socket in a temp dir.

Use it by importing the fixtures into a test module (`from tests.pg import pg_cluster, pg_url`):
`pg_url` is a fresh, empty database per test (dropped after it), `pg_cluster` the session's server.

How the server is found and started, in order:
1. `BHXH_TEST_DATABASE_URL` (a server someone else runs, e.g. CI): each test gets its own database on it.
2. Debian's PostgreSQL binaries (`make postgres` installs them; /usr/lib/postgresql/<version>/bin or PATH):
   `initdb` + `pg_ctl` into a private temp dir, socket only (no TCP port), fsync off. `initdb` refuses to
   run as root, so as root both run as the `postgres` system user (`runuser -u postgres --`).
Where neither works the tests that need it are skipped, saying why.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

START_TIMEOUT = 30  # seconds for initdb + start on a busy 2-core machine


def find_bin_dir() -> Path | None:
    """The directory holding initdb and pg_ctl: Debian's newest /usr/lib/postgresql/<v>/bin, else PATH."""
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"),
                      key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0)
    if versions:
        return versions[-1].parent
    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    if initdb and pg_ctl:
        return Path(os.path.realpath(initdb)).parent
    return None


@dataclass
class Cluster:
    """A running server and how to reach it; `database_url(name)` for a database on it."""

    host: str  # the socket directory (or a host name for an external server)
    port: int
    user: str
    password: str = ""
    admin_db: str = "postgres"
    directory: Path | None = None  # ours to delete; None for an external server
    run_as: list[str] = field(default_factory=list)
    bin_dir: Path | None = None
    options: str = ""
    _names: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def database_url(self, dbname: str) -> str:
        credentials = quote(self.user) + (":" + quote(self.password) if self.password else "")
        if self.host.startswith("/"):
            return f"postgresql://{credentials}@/{dbname}?host={quote(self.host)}&port={self.port}"
        return f"postgresql://{credentials}@{self.host}:{self.port}/{dbname}"

    def admin(self):  # -> psycopg.Connection
        import psycopg

        return psycopg.connect(self.database_url(self.admin_db), autocommit=True)

    def create_database(self) -> str:
        name = f"bhxh_test_{os.getpid()}_{next(self._names)}"
        with self.admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE template0 ENCODING \'UTF8\'')
        return name

    def drop_database(self, name: str) -> None:
        with self.admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def restart(self) -> None:
        """Stop (fast: open sessions are cut) and start again, as a failover or a server upgrade would."""
        if self.directory is None or self.bin_dir is None:
            raise RuntimeError("cannot restart a server these tests did not start")
        subprocess.run([*self.run_as, str(self.bin_dir / "pg_ctl"), "-D", str(self.directory / "data"),
                        "-l", str(self.directory / "server.log"), "-o", self.options, "-m", "fast", "-w",
                        "-t", str(START_TIMEOUT), "restart"], capture_output=True, timeout=START_TIMEOUT * 2,
                       check=True)

    def stop(self) -> None:
        if self.directory is None or self.bin_dir is None:
            return
        subprocess.run([*self.run_as, str(self.bin_dir / "pg_ctl"), "-D", str(self.directory / "data"),
                        "-m", "immediate", "-w", "stop"], capture_output=True, timeout=60, check=False)
        shutil.rmtree(self.directory, ignore_errors=True)
        self.directory = None


def start_cluster() -> Cluster:
    """Start a private server; raises RuntimeError saying why it could not."""
    try:
        import psycopg  # noqa: F401
    except ImportError as exc:
        raise RuntimeError(f"psycopg is not installed ({exc}); run `make setup`") from exc
    external = os.environ.get("BHXH_TEST_DATABASE_URL")
    if external:
        from psycopg.conninfo import conninfo_to_dict

        info = conninfo_to_dict(external)
        return Cluster(host=str(info.get("host") or "localhost"), port=int(info.get("port") or 5432),
                       user=str(info.get("user") or pwd.getpwuid(os.getuid()).pw_name),
                       password=str(info.get("password") or ""), admin_db=str(info.get("dbname") or "postgres"))
    bin_dir = find_bin_dir()
    if bin_dir is None:
        raise RuntimeError("PostgreSQL is not installed (initdb/pg_ctl not found): run `make postgres` as root")
    run_as: list[str] = []
    directory = Path(tempfile.mkdtemp(prefix="bhxh-pg-"))
    if os.getuid() == 0:  # initdb refuses root: the cluster belongs to the postgres system user
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError as exc:
            shutil.rmtree(directory, ignore_errors=True)
            raise RuntimeError("running as root and there is no `postgres` user to run initdb as") from exc
        os.chown(directory, owner.pw_uid, owner.pw_gid)
        run_as = ["runuser", "-u", "postgres", "--"]
    os.chmod(directory, 0o700)
    # Socket only, in our private directory; durability off (a test cluster), small and quick.
    options = (f"-k {directory} -c listen_addresses='' -p 5432 -c fsync=off -c synchronous_commit=off "
               "-c full_page_writes=off -c max_connections=200 -c shared_buffers=32MB")
    cluster = Cluster(host=str(directory), port=5432, user="postgres", directory=directory, run_as=run_as,
                      bin_dir=bin_dir, options=options)
    data, logfile = directory / "data", directory / "server.log"
    try:
        subprocess.run([*run_as, str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust",
                        "-E", "UTF8", "--no-locale", "--no-sync"],
                       capture_output=True, text=True, timeout=START_TIMEOUT * 4, check=True)
        subprocess.run([*run_as, str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(logfile), "-o", options,
                        "-w", "-t", str(START_TIMEOUT), "start"],
                       capture_output=True, text=True, timeout=START_TIMEOUT * 2, check=True)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
        detail = getattr(exc, "stderr", "") or ""
        with contextlib.suppress(OSError):
            detail += logfile.read_text()[-1000:]
        cluster.stop()
        shutil.rmtree(directory, ignore_errors=True)
        raise RuntimeError(f"could not start a PostgreSQL cluster with {bin_dir}: {exc}; {detail.strip()}") from exc
    deadline = time.monotonic() + START_TIMEOUT
    while True:  # pg_ctl -w waited already; this only guards a slow socket
        try:
            cluster.admin().close()
            return cluster
        except Exception:
            if time.monotonic() > deadline:
                cluster.stop()
                raise
            time.sleep(0.2)


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Cluster]:
    try:
        cluster = start_cluster()
    except RuntimeError as exc:
        pytest.skip(f"PostgreSQL unavailable, PostgreSQL tests skipped: {exc}")
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def pg_url(pg_cluster: Cluster) -> Iterator[str]:
    """A fresh, empty database for one test (dropped after it, whatever connections are left)."""
    name = pg_cluster.create_database()
    try:
        yield pg_cluster.database_url(name)
    finally:
        pg_cluster.drop_database(name)


@contextlib.contextmanager
def store_opener(target: str | Path, hash_key: bytes, factory: Callable[..., Any] | None = None
                 ) -> Iterator[Callable[..., Any]]:
    """A function opening stores (workers) on one database, `storage.factory.open_store` unless `factory`
    is given; every store it opened is closed at the end."""
    from storage.factory import open_store

    opened: list[Any] = []

    def open_(**options: Any) -> Any:
        store = (factory or open_store)(target, hash_key, **options)
        opened.append(store)
        return store

    try:
        yield open_
    finally:
        for store in opened:
            if hasattr(store, "close"):
                store.close()


@pytest.fixture(params=["sqlite", "postgres"])
def each_backend_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """A store on a fresh SQLite file, then on a fresh PostgreSQL database: a test that takes it runs on both.
    Import it with `from tests.pg import each_backend_store, pg_cluster, pg_url`."""
    target = tmp_path / "bhxh.db" if request.param == "sqlite" else request.getfixturevalue("pg_url")
    with store_opener(target, b"k" * 32) as open_:
        yield open_()
