"""Load benchmark: the real server on 127.0.0.1 under concurrent clients (`make bench-load`).

Starts `bhxh serve` in a child process (Telegram and Zalo Bot webhooks enabled,
their platform APIs faked on 127.0.0.1 so replies are counted), then drives
`POST /api/ask`, `POST /webhooks/telegram` and `POST /webhooks/zalo-bot` with
`--clients` concurrent clients for `--seconds`, and reports throughput, latency
median/p99, errors, and whether every acknowledged question is in the log.

    python -m benchmarks.load --seconds 60 --clients 32
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


def questions() -> list[str]:
    import yaml

    rows = yaml.safe_load((ROOT / "eval" / "questions.yaml").read_text(encoding="utf-8"))
    return [r["question"] for r in rows]


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
    return subprocess.Popen([sys.executable, "-m", "bot.cli", "serve", "--port", str(port)], env=env, cwd=ROOT)


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
                i, text, roll = next(ids), rng.choice(pool), rng.random()
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--clients", type=int, default=32)
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
            started = time.monotonic()
            results = asyncio.run(drive(base, args.seconds, args.clients, questions()))
            elapsed = time.monotonic() - started
            acknowledged = sum(1 for rows in results.values() for s, _ in rows if s == 200)
            deadline = time.monotonic() + 120  # let background replies drain
            expected_replies = sum(1 for n in ("webhooks/telegram", "webhooks/zalo-bot")
                                   for s, _ in results.get(n, []) if s == 200)
            while time.monotonic() < deadline and len(tg.sent()) + len(zalo.sent()) < expected_replies:
                time.sleep(0.5)
            time.sleep(2)
        finally:
            server.terminate()
            server.wait(timeout=30)
        with sqlite3.connect(data / "bhxh.db") as db:
            logged = db.execute("SELECT count(*) FROM questions").fetchone()[0]
        replies = len(tg.sent()) + len(zalo.sent())

    print(f"{args.clients} clients for {elapsed:.0f} s on {os.cpu_count()} cores")
    print("| endpoint | requests | 2xx | errors | median ms | p99 ms |")
    print("|---|---|---|---|---|---|")
    for name, rows in sorted(results.items()):
        ok = sum(1 for s, _ in rows if s == 200)
        lat = latency_summary([t for _, t in rows])
        print(f"| {name} | {len(rows)} | {ok} | {len(rows) - ok} | {lat['median_ms']:.1f} | {lat['p99_ms']:.1f} |")
    print(f"\nacknowledged: {acknowledged} ({acknowledged / elapsed:.1f}/s); webhook replies sent: {replies}"
          f" of {expected_replies}; rows in the question log: {logged} (lost: {max(acknowledged - logged, 0)})")
    # A long answer is sent as several messages, so replies may exceed the webhook count.
    return 0 if acknowledged == logged and replies >= expected_replies else 1


if __name__ == "__main__":
    sys.exit(main())
