"""The store's share of a webhook delivery, on SQLite (one process) and on PostgreSQL (one and two
worker processes), same workload, same run: `python -m benchmarks.store_backends --seconds 5`.

One delivery is what the bot asks of the store for a new message: inbox_accept (before the 200),
seen_message, log_question, clear_state, inbox_done. Each process runs `--threads` threads doing
deliveries back to back; printed: deliveries/s over all processes and the per-delivery latency.
PostgreSQL is `--database-url`, else a throwaway cluster started as the tests do (tests/pg.py).
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

HASH_KEY = b"b" * 32


def _deliveries(target: str, seconds: float, threads: int, tag: str) -> tuple[int, list[float]]:
    from storage.base import LoggedQuestion
    from storage.factory import open_store

    store: Any = open_store(target, HASH_KEY, **({"pool_size": threads} if "://" in target else {}))
    latencies: list[float] = []
    lock = threading.Lock()
    stop = time.perf_counter() + seconds

    def run(n: int) -> None:
        mine: list[float] = []
        i = 0
        while time.perf_counter() < stop:
            key, user = f"{tag}:{n}:{i}", f"user-{n}-{i % 50}"
            started = time.perf_counter()
            store.inbox_accept("telegram", key, {"text": "hỏi lương hưu"})
            if not store.seen_message("telegram", key):
                store.log_question(LoggedQuestion("telegram", user, "Cho hỏi lương hưu tính thế nào", "luong huu",
                                                  "pension", "lh-1", 0.9, "answered", "answer", 3.0, message_id=key))
                store.clear_state(f"telegram:{user}")
            store.inbox_done("telegram", key)
            mine.append(time.perf_counter() - started)
            i += 1
        with lock:
            latencies.extend(mine)

    workers = [threading.Thread(target=run, args=(n,)) for n in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    if hasattr(store, "close"):
        store.close()
    return len(latencies), latencies


def _worker(args: tuple[str, float, int, str]) -> tuple[int, list[float]]:
    return _deliveries(*args)


def run(label: str, target: str, processes: int, seconds: float, threads: int) -> dict[str, Any]:
    tag = uuid.uuid4().hex[:8]
    if processes == 1:
        results = [_deliveries(target, seconds, threads, tag)]
    else:
        with multiprocessing.get_context("spawn").Pool(processes) as pool:
            results = pool.map(_worker, [(target, seconds, threads, f"{tag}-{p}") for p in range(processes)])
    latencies = sorted(t for _, lat in results for t in lat)
    done = sum(n for n, _ in results)
    row = {"backend": label, "processes": processes, "threads": threads, "deliveries/s": done / seconds,
           "p50 ms": 1000 * statistics.median(latencies) if latencies else float("nan"),
           "p99 ms": 1000 * latencies[int(0.99 * (len(latencies) - 1))] if latencies else float("nan")}
    print(f"{label:<22} {processes} proc × {threads} threads: {row['deliveries/s']:8.0f} deliveries/s  "
          f"p50 {row['p50 ms']:6.2f} ms  p99 {row['p99 ms']:7.2f} ms", flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()
    cluster = None
    url = args.database_url
    if not url:
        from tests.pg import start_cluster

        cluster = start_cluster()
        url = cluster.database_url(cluster.create_database())
    try:
        with tempfile.TemporaryDirectory() as tmp:
            run("SQLite (file, WAL)", str(Path(tmp) / "bench.db"), 1, args.seconds, args.threads)
        run("PostgreSQL", url, 1, args.seconds, args.threads)
        run("PostgreSQL", url, 2, args.seconds, args.threads)
    finally:
        if cluster is not None:
            cluster.stop()


if __name__ == "__main__":
    main()
