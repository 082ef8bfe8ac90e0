"""Load benchmark: the real server on 127.0.0.1 under concurrent clients (part of `make bench`).

Starts `bhxh serve` in a child process (Telegram and Zalo Bot webhooks enabled,
their platform APIs faked on 127.0.0.1 so replies are counted), then drives
`POST /api/ask`, `POST /webhooks/telegram` and `POST /webhooks/zalo-bot` with
`--clients` concurrent clients for `--seconds`, and reports throughput, latency
median/p99, errors, and whether every acknowledged question is in the log.

    python -m benchmarks.load --seconds 60 --clients 32 [--repeats] [--profile out.raw]
    python -m benchmarks.load --database both --workers 2   # + 2 workers on a throwaway PostgreSQL

With `--database both` the same workload runs on 1 worker over SQLite, then on `--workers` workers
over a throwaway PostgreSQL cluster (tests/pg.py), and one table compares them, with the CPU share
of the server processes, PostgreSQL, the load generator and everything else on the machine.

Exits non-zero on any HTTP error, any acknowledged question missing from the
log, or any webhook chat left unanswered.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import os
import random
import secrets
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Awaitable
from dataclasses import dataclass
from pathlib import Path

import httpx

from retrieval.evaluation import latency_summary

ROOT = Path(__file__).resolve().parent.parent
TELEGRAM_TOKEN = "123456:bench"
ZALO_TOKEN = "zalo-bench-token"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


OPENERS = ["", "cho em hỏi ", "mình muốn hỏi ", "chị ơi ", "anh ơi cho hỏi ", "xin hỏi ", "bác ơi ", "em hỏi chút "]
CLOSERS = ["", " ạ", " vậy ạ", " với ạ", " nhé", " thế nào", " được không", " ad ơi"]


def questions(distinct: bool) -> list[str]:
    """The evaluation questions; `distinct` adds openers and closers so (almost) no text repeats.

    With repeats, the encoder's cache of recent queries answers most dense lookups;
    distinct texts make every question pay for its own forward pass.
    """
    import yaml

    rows = yaml.safe_load((ROOT / "eval" / "questions.yaml").read_text(encoding="utf-8"))
    base = [r["question"] for r in rows]
    if not distinct:
        return base
    variants = [f"{o}{q}{c}" for q in base for o in OPENERS for c in CLOSERS]
    random.Random(7).shuffle(variants)
    return variants


def scratch_data_dir(tmp: Path, source: Path) -> Path:
    """A throwaway data folder for a benchmark server: the built model linked, the embedding cache copied."""
    (tmp / "models").symlink_to((source / "models").resolve())
    if (source / "cache").exists():
        shutil.copytree(source / "cache", tmp / "cache")
    return tmp


def start_server(data_dir: Path, port: int, telegram_url: str, zalo_url: str,
                 database_url: str | None = None, workers: int = 1) -> subprocess.Popen:
    """`bhxh serve` on `port`: SQLite in `data_dir`, or `workers` processes on `database_url` (PostgreSQL)."""
    env = {
        **os.environ,
        "BHXH_DATA_DIR": str(data_dir),
        "BHXH_ADMIN_TOKEN": secrets.token_urlsafe(16),
        "BHXH_IP_RATE_LIMIT": "1000000",
        "TELEGRAM_BOT_TOKEN": TELEGRAM_TOKEN,
        "TELEGRAM_WEBHOOK_SECRET": "bench-secret",
        "TELEGRAM_API_BASE_URL": telegram_url,
        "TELEGRAM_API_FILE_URL": telegram_url.replace("/bot", "/file/bot"),
        "ZALO_BOT_TOKEN": ZALO_TOKEN,
        "ZALO_BOT_SECRET": "bench-zalo-secret",
        "ZALO_BOT_API_BASE_URL": zalo_url,
    }
    env.pop("BHXH_DATABASE_URL", None)
    if database_url:
        env["BHXH_DATABASE_URL"] = database_url
    return subprocess.Popen([sys.executable, "-m", "bhxh.cli", "serve", "--port", str(port), "--workers", str(workers)],
                            env=env, cwd=ROOT)


async def wait_ready(base: str, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient() as client:
        while time.monotonic() < deadline:
            try:
                if (await client.get(f"{base}/healthz")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.5)
    raise RuntimeError("server did not become ready")


async def timed(results: dict[str, list], name: str, request: Awaitable[httpx.Response]) -> None:
    """Await one request and record (status, seconds) under its name; a failed connection is status 0."""
    t0 = time.perf_counter()
    try:
        status = (await request).status_code
    except httpx.HTTPError:
        status = 0
    results[name].append((status, time.perf_counter() - t0))


async def drive(base: str, seconds: float, clients: int, pool: list[str]) -> dict[str, list]:
    ids = itertools.count(1)
    results: dict[str, list] = defaultdict(list)  # endpoint -> [(status, seconds)]
    stop_at = time.monotonic() + seconds

    async def one_client(n: int) -> None:
        rng = random.Random(n)
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            while time.monotonic() < stop_at:
                i, roll = next(ids), rng.random()
                text = pool[i % len(pool)]
                if roll < 0.6:
                    name, req = "api/ask", client.post("/api/ask", json={"question": text, "user_id": f"w{i}"})
                elif roll < 0.8:
                    update = {"update_id": i, "message": {"message_id": i, "date": int(time.time()), "text": text,
                              "chat": {"id": 10_000 + i, "type": "private"},
                              "from": {"id": 10_000 + i, "is_bot": False, "first_name": "A"}}}
                    name = "webhooks/telegram"
                    req = client.post("/webhooks/telegram", json=update,
                                      headers={"X-Telegram-Bot-Api-Secret-Token": "bench-secret"})
                else:
                    update = {"event_name": "message.text.received",
                              "message": {"message_id": f"z{i}", "text": text, "date": int(time.time() * 1000),
                                          "from": {"id": f"zu{i}", "display_name": "B"},
                                          "chat": {"id": f"zu{i}", "chat_type": "PRIVATE"}}}
                    name = "webhooks/zalo-bot"
                    req = client.post("/webhooks/zalo-bot", json=update,
                                      headers={"X-Bot-Api-Secret-Token": "bench-zalo-secret"})
                await timed(results, name, req)

    await asyncio.gather(*(one_client(n) for n in range(clients)))
    return results


def utc_stamp() -> str:
    """Now, formatted like the question log's `ts` column."""
    from storage.store import utcnow

    return utcnow()


def answered_chats(tg: object, zalo: object) -> set[str]:
    """Chats that got at least one message (each webhook update comes from its own chat)."""
    return ({f"tg:{c.params.get('chat_id')}" for c in tg.sent()}  # type: ignore[attr-defined]
            | {f"zb:{p.get('chat_id')}" for p in zalo.sent()})  # type: ignore[attr-defined]


def start_profiler(pid: int, seconds: float, out: Path) -> subprocess.Popen | None:
    """py-spy (sampling, outside the process) on the server for the run, if it is installed."""
    spy = shutil.which("py-spy") or shutil.which("py-spy", path=str(Path(sys.executable).parent))
    if spy is None:
        print("py-spy not found: no profile", file=sys.stderr)
        return None
    return subprocess.Popen([spy, "record", "-p", str(pid), "-d", str(int(seconds)), "-r", "50", "-f", "raw",
                             "-o", str(out), "--nonblocking"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


# Where a sample's time goes, by the first of these found in its stack (innermost first).
WAITING = ("Condition.wait", "Future.result", "Queue.get", "_worker (", "_wait_for_tstate_lock")
CATEGORIES = [
    ("e5 forward pass (queries)", ("SentenceTransformer.encode", "QueryBatcher._run")),
    ("SQLite (log, state, inbox)", ("Store.",)),
    ("lexical search and normalization", ("HybridIndex.", "normalize_query", "LexicalIndex.")),
    ("answer building and the rest of Engine.ask", ("Engine.",)),
    ("channels (Telegram, Zalo)", ("telegram", "Zalo", "Inbox.")),
    ("HTTP server, event loop, FastAPI", ("Runner.run", "uvicorn", "starlette", "fastapi", "routing")),
]


def profile_breakdown(raw: Path) -> list[tuple[str, float]]:
    """Share of the server's busy samples per category, from py-spy's raw output."""
    counts: dict[str, int] = defaultdict(int)
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = stack.split(";")
        category = "other"
        if frames[-1].startswith(WAITING):  # py-spy counts a thread blocked in Python code as busy
            category = "threads waiting (a batch, a request), not CPU"
        for name, needles in [] if category != "other" else CATEGORIES:
            if any(needle in frame for frame in frames for needle in needles):
                category = name
                break
        counts[category] += int(count)
    total = sum(counts.values()) or 1
    return sorted(((name, n / total) for name, n in counts.items()), key=lambda r: -r[1])


def clock_ticks(pid: int) -> int:
    """CPU time (user + system, in clock ticks) of one process, 0 if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of proc(5))


def process_tree(pid: int) -> list[int]:
    """`pid` and its descendants (the `bhxh serve` supervisor and its workers; a postmaster and its backends)."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        with contextlib.suppress(OSError):
            todo += [int(c) for c in Path(f"/proc/{current}/task/{current}/children").read_text().split()]
    return found


def machine_busy_ticks() -> int:
    """Busy clock ticks of the whole machine (every process, ours or not), from /proc/stat's first line."""
    user, nice, system, _idle, _iowait, irq, softirq, steal = (
        int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9])
    return user + nice + system + irq + softirq + steal


def cpu_ticks(pids: list[int]) -> dict[int, int]:
    return {pid: clock_ticks(pid) for pid in pids}


def cpu_seconds_between(before: dict[int, int], after: dict[int, int]) -> float:
    """CPU seconds spent between two snapshots (processes born in between count in full)."""
    ticks = sum(after[p] - before.get(p, 0) for p in after)
    return ticks / os.sysconf("SC_CLK_TCK")


@dataclass
class Run:
    """One load run: the server it ran against, what the clients saw, and where the CPU went."""

    backend: str
    workers: int
    elapsed: float
    results: dict[str, list]
    acknowledged: int
    expected_chats: int
    replied: int
    drained: float
    logged: int
    in_window: int
    encoder: dict
    cpu: dict[str, float]  # who -> CPU seconds during the driven window

    @property
    def errors(self) -> int:
        return sum(1 for rows in self.results.values() for s, _ in rows if s != 200)

    @property
    def ok(self) -> bool:
        return self.acknowledged == self.logged and self.replied == self.expected_chats and not self.errors


def postmaster_pid(cluster: object) -> int | None:
    directory = getattr(cluster, "directory", None)
    try:
        return int((directory / "data" / "postmaster.pid").read_text().split()[0]) if directory else None
    except (OSError, ValueError, IndexError):
        return None


def run_once(args: argparse.Namespace, backend: str, workers: int, cluster: object | None = None) -> Run:
    """Start a server (SQLite file, or a fresh database on `cluster`), drive it, and collect the counts."""
    from tests.fakes.telegram import FakeTelegram
    from tests.fakes.zalo import FakeZaloBot

    source = Path(os.environ.get("BHXH_DATA_DIR", ROOT / "var"))
    database_url, db_name = None, None
    if cluster is not None:
        db_name = cluster.create_database()  # type: ignore[attr-defined]
        database_url = cluster.database_url(db_name)  # type: ignore[attr-defined]
    try:
        with (tempfile.TemporaryDirectory() as tmp, FakeTelegram(TELEGRAM_TOKEN) as tg,
              FakeZaloBot(ZALO_TOKEN) as zalo):
            data = scratch_data_dir(Path(tmp), source)
            port = free_port()
            base = f"http://127.0.0.1:{port}"
            server = start_server(data, port, tg.base_url, zalo.url, database_url, workers)
            postmaster = postmaster_pid(cluster)
            try:
                asyncio.run(wait_ready(base))
                profiler = start_profiler(server.pid, args.seconds, args.profile) if args.profile else None
                servers_before = cpu_ticks(process_tree(server.pid))
                db_before = cpu_ticks(process_tree(postmaster)) if postmaster else {}
                clients_before, machine_before = os.times(), machine_busy_ticks()
                started, started_at = time.monotonic(), utc_stamp()
                results = asyncio.run(drive(base, args.seconds, args.clients, questions(not args.repeats)))
                elapsed, ended_at = time.monotonic() - started, utc_stamp()
                clients_after, machine_after = os.times(), machine_busy_ticks()
                cpu = {"server processes": cpu_seconds_between(servers_before, cpu_ticks(process_tree(server.pid))),
                       "PostgreSQL": cpu_seconds_between(db_before, cpu_ticks(process_tree(postmaster)))
                       if postmaster else 0.0,
                       # the load generator and the fake Telegram/Zalo servers run in this process
                       "clients and fake platforms": (clients_after.user - clients_before.user
                                                      + clients_after.system - clients_before.system)}
                machine = (machine_after - machine_before) / os.sysconf("SC_CLK_TCK")
                cpu["everything else on the machine"] = max(machine - sum(cpu.values()), 0.0)
                acknowledged = sum(1 for rows in results.values() for s, _ in rows if s == 200)
                expected_chats = sum(1 for n in ("webhooks/telegram", "webhooks/zalo-bot")
                                     for s, _ in results.get(n, []) if s == 200)
                deadline = time.monotonic() + 120  # let background replies drain
                while time.monotonic() < deadline and len(answered_chats(tg, zalo)) < expected_chats:
                    time.sleep(0.2)
                drained = time.monotonic() - started - elapsed
                encoder = httpx.get(f"{base}/healthz", timeout=10).json().get("encoder", {}) or {}
                time.sleep(1)
                if profiler is not None:
                    profiler.wait(timeout=60)
            finally:
                server.terminate()
                server.wait(timeout=30)
            logged, in_window = count_logged(data, database_url, started_at, ended_at)
            replied = len(answered_chats(tg, zalo))
    finally:
        if cluster is not None and db_name is not None:
            cluster.drop_database(db_name)  # type: ignore[attr-defined]
    return Run(backend, workers, elapsed, results, acknowledged, expected_chats, replied, drained, logged,
               in_window, encoder, cpu)


def count_logged(data: Path, database_url: str | None, started_at: str, ended_at: str) -> tuple[int, int]:
    """Rows in the question log, and those logged while the clients were driving."""
    if database_url is None:
        with sqlite3.connect(data / "bhxh.db") as db:
            logged = db.execute("SELECT count(*) FROM questions").fetchone()[0]
            in_window = db.execute("SELECT count(*) FROM questions WHERE ts >= ? AND ts <= ?",
                                   [started_at, ended_at]).fetchone()[0]
        return logged, in_window
    import psycopg

    with psycopg.connect(database_url) as conn:
        logged = conn.execute("SELECT count(*) FROM questions").fetchone()[0]  # type: ignore[index]
        in_window = conn.execute("SELECT count(*) FROM questions WHERE ts >= %s::timestamptz AND ts <= %s::timestamptz",
                                 [started_at, ended_at]).fetchone()[0]  # type: ignore[index]
    return logged, in_window


def report(run: Run, args: argparse.Namespace) -> None:
    workload = "evaluation questions with repeats" if args.repeats else "distinct question texts"
    print(f"\n{run.backend}, {run.workers} worker(s): {args.clients} clients for {run.elapsed:.0f} s"
          f" on {os.cpu_count()} cores; {workload}")
    print("| endpoint | requests | 2xx | errors | median ms | p99 ms |")
    print("|---|---|---|---|---|---|")
    for name, rows in sorted(run.results.items()):
        ok = sum(1 for s, _ in rows if s == 200)
        lat = latency_summary([t for _, t in rows])
        print(f"| {name} | {len(rows)} | {ok} | {len(rows) - ok} | {lat['median_ms']:.1f} | {lat['p99_ms']:.1f} |")
    print(f"\nanswered during the run: {run.in_window} ({run.in_window / run.elapsed:.1f}/s); acknowledged:"
          f" {run.acknowledged} ({run.acknowledged / run.elapsed:.1f}/s); webhook chats answered: {run.replied} of"
          f" {run.expected_chats} (backlog drained {run.drained:.1f} s after the run); rows in the question log:"
          f" {run.logged} (lost: {max(run.acknowledged - run.logged, 0)})")
    encoder = run.encoder
    if encoder.get("batches") is not None:
        asked = encoder["query_cache_hits"] + encoder["query_cache_misses"]
        print(f"encoder: {encoder['query_precision']}; {encoder['batched_queries']} queries in {encoder['batches']}"
              f" forward passes (mean batch {encoder['batched_queries'] / max(encoder['batches'], 1):.1f});"
              f" query cache hits {encoder['query_cache_hits'] / max(asked, 1):.0%}")
    if args.profile and args.profile.exists():
        print("\n| where the server's busy samples are (py-spy) | share |\n|---|---|")
        for name, share in profile_breakdown(args.profile):
            print(f"| {name} | {share:.0%} |")


def compare(runs: list[Run]) -> None:
    """One table over the runs: throughput, latency over every request, and where the machine's CPU went
    (CPU seconds / (seconds x cores): the four CPU columns of a row add up to how busy the machine was;
    "other processes" is everyone else's load on a shared machine, which slows both runs alike only if steady)."""
    capacity = (os.cpu_count() or 1)
    print(f"\n| backend | workers | requests/s | median ms | p99 ms | errors | server CPU | PostgreSQL CPU"
          f" | clients CPU | other processes | machine busy ({capacity} cores) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for run in runs:
        times = [t for rows in run.results.values() for _, t in rows]
        lat = latency_summary(times)
        share = {who: seconds / (run.elapsed * capacity) for who, seconds in run.cpu.items()}
        busy = sum(share.values())
        print(f"| {run.backend} | {run.workers} | {len(times) / run.elapsed:.1f} | {lat['median_ms']:.1f}"
              f" | {lat['p99_ms']:.1f} | {run.errors} | {share['server processes']:.0%}"
              f" | {share['PostgreSQL']:.0%} | {share['clients and fake platforms']:.0%}"
              f" | {share['everything else on the machine']:.0%} | {busy:.0%} |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--repeats", action="store_true",
                        help="draw from the 371 evaluation questions as written (repeats hit the query cache); "
                             "default: every text distinct")
    parser.add_argument("--profile", type=Path, help="write a py-spy raw profile of the server here "
                        "(SQLite run only)")
    parser.add_argument("--database", choices=["sqlite", "postgresql", "both"], default="sqlite",
                        help="sqlite: 1 worker on a SQLite file; postgresql: --workers workers on a throwaway "
                             "PostgreSQL cluster (tests/pg.py); both: the two, one after the other, same workload")
    parser.add_argument("--workers", type=int, default=2, help="workers for the PostgreSQL run")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))

    runs: list[Run] = []
    if args.database in ("sqlite", "both"):
        runs.append(run_once(args, "SQLite", 1))
        report(runs[-1], args)
    if args.database in ("postgresql", "both"):
        from tests.pg import start_cluster

        args.profile = None  # py-spy would follow only the supervisor, not its workers
        try:
            cluster = start_cluster()
        except RuntimeError as exc:  # not installed (`make postgres` as root), or no postgres user
            print(f"PostgreSQL run not done: {exc}", file=sys.stderr)
            compare(runs)
            return 1
        try:
            runs.append(run_once(args, "PostgreSQL", args.workers, cluster))
        finally:
            cluster.stop()
        report(runs[-1], args)
    compare(runs)
    return 0 if all(run.ok for run in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
