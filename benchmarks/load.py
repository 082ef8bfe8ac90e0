"""Load benchmark: the real server on 127.0.0.1 under concurrent clients (part of `make bench`).

Starts `bhxh serve` in a child process (Telegram and Zalo Bot webhooks enabled,
their platform APIs faked on 127.0.0.1 so replies are counted), then drives
`POST /api/ask`, `POST /webhooks/telegram` and `POST /webhooks/zalo-bot` with
`--clients` concurrent clients for `--seconds`, and reports throughput, latency
median/p99, errors, and whether every acknowledged question is in the log.

    python -m benchmarks.load --seconds 60 --clients 32 [--repeats] [--profile out.raw]

Exits non-zero on any HTTP error, any acknowledged question missing from the
log, or any webhook chat left unanswered.
"""

from __future__ import annotations

import argparse
import asyncio
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


def start_server(data_dir: Path, port: int, telegram_url: str, zalo_url: str) -> subprocess.Popen:
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
    return subprocess.Popen([sys.executable, "-m", "bhxh.cli", "serve", "--port", str(port)], env=env, cwd=ROOT)


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
                t0 = time.perf_counter()
                try:
                    status = (await req).status_code
                except httpx.HTTPError:
                    status = 0
                results[name].append((status, time.perf_counter() - t0))

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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--repeats", action="store_true",
                        help="draw from the 371 evaluation questions as written (repeats hit the query cache); "
                             "default: every text distinct")
    parser.add_argument("--profile", type=Path, help="write a py-spy raw profile of the server here")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from tests.fakes.telegram import FakeTelegram
    from tests.fakes.zalo import FakeZaloBot

    source = Path(os.environ.get("BHXH_DATA_DIR", ROOT / "var"))
    with tempfile.TemporaryDirectory() as tmp, FakeTelegram(TELEGRAM_TOKEN) as tg, FakeZaloBot(ZALO_TOKEN) as zalo:
        data = Path(tmp)
        (data / "models").symlink_to((source / "models").resolve())
        if (source / "cache").exists():
            shutil.copytree(source / "cache", data / "cache")
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        server = start_server(data, port, tg.base_url, zalo.url)
        try:
            asyncio.run(wait_ready(base))
            profiler = start_profiler(server.pid, args.seconds, args.profile) if args.profile else None
            started, started_at = time.monotonic(), utc_stamp()
            results = asyncio.run(drive(base, args.seconds, args.clients, questions(not args.repeats)))
            elapsed, ended_at = time.monotonic() - started, utc_stamp()
            acknowledged = sum(1 for rows in results.values() for s, _ in rows if s == 200)
            expected_chats = sum(1 for n in ("webhooks/telegram", "webhooks/zalo-bot")
                                 for s, _ in results.get(n, []) if s == 200)
            deadline = time.monotonic() + 120  # let background replies drain
            while time.monotonic() < deadline and len(answered_chats(tg, zalo)) < expected_chats:
                time.sleep(0.2)
            drained = time.monotonic() - started - elapsed
            encoder = httpx.get(f"{base}/healthz", timeout=10).json().get("encoder", {})
            time.sleep(1)
            if profiler is not None:
                profiler.wait(timeout=60)
        finally:
            server.terminate()
            server.wait(timeout=30)
        with sqlite3.connect(data / "bhxh.db") as db:
            logged = db.execute("SELECT count(*) FROM questions").fetchone()[0]
            in_window = db.execute("SELECT count(*) FROM questions WHERE ts >= ? AND ts <= ?",
                                   [started_at, ended_at]).fetchone()[0]
        replied = len(answered_chats(tg, zalo))

    workload = "evaluation questions with repeats" if args.repeats else "distinct question texts"
    print(f"{args.clients} clients for {elapsed:.0f} s on {os.cpu_count()} cores; {workload}")
    print("| endpoint | requests | 2xx | errors | median ms | p99 ms |")
    print("|---|---|---|---|---|---|")
    for name, rows in sorted(results.items()):
        ok = sum(1 for s, _ in rows if s == 200)
        lat = latency_summary([t for _, t in rows])
        print(f"| {name} | {len(rows)} | {ok} | {len(rows) - ok} | {lat['median_ms']:.1f} | {lat['p99_ms']:.1f} |")
    print(f"\nanswered during the run: {in_window} ({in_window / elapsed:.1f}/s); acknowledged: {acknowledged}"
          f" ({acknowledged / elapsed:.1f}/s); webhook chats answered: {replied} of {expected_chats}"
          f" (backlog drained {drained:.1f} s after the run); rows in the question log: {logged}"
          f" (lost: {max(acknowledged - logged, 0)})")
    if encoder:
        asked = encoder["query_cache_hits"] + encoder["query_cache_misses"]
        print(f"encoder: {encoder['query_precision']}; {encoder['batched_queries']} queries in {encoder['batches']}"
              f" forward passes (mean batch {encoder['batched_queries'] / max(encoder['batches'], 1):.1f});"
              f" query cache hits {encoder['query_cache_hits'] / max(asked, 1):.0%}")
    if args.profile and args.profile.exists():
        print("\n| where the server's busy samples are (py-spy) | share |\n|---|---|")
        for name, share in profile_breakdown(args.profile):
            print(f"| {name} | {share:.0%} |")
    errors = sum(1 for rows in results.values() for s, _ in rows if s != 200)
    return 0 if acknowledged == logged and replied == expected_chats and not errors else 1


if __name__ == "__main__":
    sys.exit(main())
