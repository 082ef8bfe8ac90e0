"""Fusing a lexical and a dense score list into one ranking.

Two methods, both measured by `bhxh bench-retrieval`:
- RRF: Σ 1/(k + rank); ignores score magnitudes.
- convex: w·lexical' + (1−w)·dense', each min-max normalised over the
  candidate set, so a confident retriever can outvote an unsure one.
"""

from __future__ import annotations

import numpy as np

RRF_K = 60


def ranks(scores: np.ndarray) -> np.ndarray:
    """1-based rank of each position (1 = best); ties broken by position."""
    order = np.argsort(-scores, kind="stable")
    result = np.empty(len(scores), dtype=np.int64)
    result[order] = np.arange(1, len(scores) + 1)
    return result


def rrf(lexical: np.ndarray, dense: np.ndarray, k: int = RRF_K, lexical_weight: float = 0.5) -> np.ndarray:
    """Weighted reciprocal-rank fusion (weight 0.5 is plain RRF up to a constant)."""
    return 2 * (lexical_weight / (k + ranks(lexical)) + (1 - lexical_weight) / (k + ranks(dense)))


def minmax(scores: np.ndarray) -> np.ndarray:
    if len(scores) == 0:
        return scores
    low, high = float(scores.min()), float(scores.max())
    if high - low < 1e-12:
        return np.zeros_like(scores, dtype=np.float64)
    return (scores - low) / (high - low)


def convex(lexical: np.ndarray, dense: np.ndarray, lexical_weight: float = 0.5) -> np.ndarray:
    return lexical_weight * minmax(lexical) + (1 - lexical_weight) * minmax(dense)


METHODS = {"rrf": rrf, "convex": convex}
