"""Worst-case bench (part of `make bench`): do 64 KB adversarial questions delay everyone else?

Starts the real server (`bhxh serve`, as benchmarks/load.py does), then runs two phases of
`--seconds` each with the same background traffic: `--clients` clients asking ordinary questions
and one client polling /healthz every 50 ms. In the second phase, `--attackers` clients also post,
back to back, the security review's worst cases (F1) as bodies just under the 64 KiB cap: 20,000
characters of "tôi tên" + spaces, letters, digits, "kính gửi" + letters, written with three-byte
characters (ideographic spaces, full-width digits, "ố") so each body is ~60 KB. It prints the
median and p99 of /healthz and /api/ask in both phases and the attack requests' own latency.

    python -m benchmarks.worst_case [--seconds 20] [--clients 4] [--attackers 2]

Exits non-zero if /healthz's p99 during the attack is over 1 s (the review's code: 7–36 s).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import httpx

from benchmarks.load import (
    ROOT,
    TELEGRAM_TOKEN,
    ZALO_TOKEN,
    free_port,
    questions,
    scratch_data_dir,
    start_server,
    timed,
    wait_ready,
)
from retrieval.evaluation import latency_summary

HEALTHZ_P99_LIMIT_MS = 1000.0


def worst_cases() -> list[bytes]:
    """The review's F1 shapes at 20,000 characters (AskRequest's limit), each body just under 64 KiB."""
    texts = [
        "tôi tên" + "\u3000" * 19_992 + "!",  # the name-intro pattern's two adjacent \s*
        "ố" * 20_000,  # the e-mail pattern restarting in a long run of letters
        "\uff11" * 20_000,  # full-width digits: the number patterns
        "kính gửi " + "ố" * 19_991,  # the letter boilerplate
    ]
    bodies = [json.dumps({"question": t, "user_id": "attacker"}, ensure_ascii=False).encode() for t in texts]
    assert all(60_000 < len(b) < 64 * 1024 for b in bodies), [len(b) for b in bodies]
    return bodies


async def run_phase(base: str, seconds: float, clients: int, attackers: int, pool: list[str]) -> dict[str, list]:
    results: dict[str, list] = defaultdict(list)  # name -> [(status, seconds)]
    stop_at = time.monotonic() + seconds
    bodies = worst_cases()

    async def asker(n: int) -> None:
        async with httpx.AsyncClient(base_url=base, timeout=120) as client:
            i = n
            while time.monotonic() < stop_at:
                i += clients
                await timed(results, "api/ask", client.post("/api/ask", json={"question": pool[i % len(pool)],
                                                                      "user_id": f"c{n}"}))

    async def poller() -> None:
        async with httpx.AsyncClient(base_url=base, timeout=120) as client:
            while time.monotonic() < stop_at:
                await timed(results, "healthz", client.get("/healthz"))
                await asyncio.sleep(0.05)

    async def attacker(n: int) -> None:
        async with httpx.AsyncClient(base_url=base, timeout=120) as client:
            i = n
            while time.monotonic() < stop_at:
                i += 1
                await timed(results, "api/ask (64 KB worst case)",
                            client.post("/api/ask", content=bodies[i % len(bodies)],
                                        headers={"Content-Type": "application/json"}))

    await asyncio.gather(poller(), *(asker(n) for n in range(clients)), *(attacker(n) for n in range(attackers)))
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20, help="length of each phase")
    parser.add_argument("--clients", type=int, default=4, help="clients asking ordinary questions")
    parser.add_argument("--attackers", type=int, default=2, help="clients posting 64 KB worst cases back to back")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from tests.fakes.telegram import FakeTelegram
    from tests.fakes.zalo import FakeZaloBot

    pool = questions(distinct=True)
    source = Path(os.environ.get("BHXH_DATA_DIR", ROOT / "var"))
    with tempfile.TemporaryDirectory() as tmp, FakeTelegram(TELEGRAM_TOKEN) as tg, FakeZaloBot(ZALO_TOKEN) as zalo:
        data = scratch_data_dir(Path(tmp), source)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        server = start_server(data, port, tg.base_url, zalo.url)
        try:
            asyncio.run(wait_ready(base))
            asyncio.run(run_phase(base, 5, args.clients, 0, pool))  # warm-up (the passage model loads lazily)
            phases = {"without": asyncio.run(run_phase(base, args.seconds, args.clients, 0, pool)),
                      "during": asyncio.run(run_phase(base, args.seconds, args.clients, args.attackers, pool))}
        finally:
            server.terminate()
            server.wait(timeout=30)

    print(f"{args.clients} clients asking + /healthz every 50 ms, {args.seconds:.0f} s per phase, "
          f"{os.cpu_count()} cores; attack: {args.attackers} clients posting ~60 KB worst-case questions back to back")
    print("| phase | endpoint | requests | non-200 | median ms | p99 ms |")
    print("|---|---|---|---|---|---|")
    for phase, results in phases.items():
        for name, rows in sorted(results.items()):
            lat = latency_summary([t for _, t in rows])
            bad = sum(1 for s, _ in rows if s != 200)
            print(f"| {phase} attack | {name} | {len(rows)} | {bad} | {lat['median_ms']:.1f} | {lat['p99_ms']:.1f} |")
    healthz_p99 = latency_summary([t for _, t in phases["during"]["healthz"]])["p99_ms"]
    errors = sum(1 for results in phases.values() for rows in results.values() for s, _ in rows if s != 200)
    ok = healthz_p99 <= HEALTHZ_P99_LIMIT_MS and not errors
    print(f"\n/healthz p99 during the attack: {healthz_p99:.0f} ms (limit {HEALTHZ_P99_LIMIT_MS:.0f}); "
          f"errors: {errors}: {'ok' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
