"""Ranking metrics and latency summaries shared by the benchmarks."""

from __future__ import annotations

import statistics
from collections.abc import Sequence


def first_relevant_rank(ranked: Sequence[str], gold: set[str]) -> int | None:
    for n, item in enumerate(ranked, start=1):
        if item in gold:
            return n
    return None


def ranking_metrics(ranks: Sequence[int | None], ks: Sequence[int] = (1, 5, 10), mrr_at: int = 10) -> dict[str, float]:
    """Recall@k (share with a gold item in the top k) and MRR@mrr_at."""
    n = len(ranks) or 1
    out = {f"R@{k}": sum(1 for r in ranks if r is not None and r <= k) / n for k in ks}
    out[f"MRR@{mrr_at}"] = sum(1 / r for r in ranks if r is not None and r <= mrr_at) / n
    return out


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def latency_summary(seconds: Sequence[float]) -> dict[str, float]:
    ms = [s * 1000 for s in seconds]
    return {"median_ms": statistics.median(ms) if ms else float("nan"), "p99_ms": percentile(ms, 99)}


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    def cell(v: object) -> str:
        return f"{v:.3f}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)
