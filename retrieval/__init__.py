"""Generic Vietnamese hybrid retrieval (BM25 + sentence embeddings).

Nothing here knows about social insurance: give it (id, text) pairs.

    >>> from retrieval import build_index
    >>> index = build_index([("a", "Rút bảo hiểm xã hội một lần"), ("b", "Mức phạt trốn đóng")])
    >>> index.search("rut bhxh 1 lan", k=1, mode="lexical")[0].id
    'a'
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from retrieval.dense import DenseEncoder
from retrieval.index import Hit, HybridIndex, SearchConfig

__all__ = ["DenseEncoder", "Hit", "HybridIndex", "SearchConfig", "build_index"]


def build_index(
    items: Iterable[tuple[str, str]],
    *,
    model: str | Path | None = None,
    cache_dir: Path | None = None,
    config: SearchConfig | None = None,
) -> HybridIndex:
    """Build a hybrid index; without `model` it is lexical only."""
    encoder = DenseEncoder(model) if model is not None else None
    return HybridIndex(items, encoder=encoder, cache_dir=cache_dir, config=config)
