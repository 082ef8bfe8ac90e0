"""Lexical search: BM25 (rank-bm25's Okapi) over two views of each text.

    score(d, q) = Σ_t idf(t) · f(t,d)·(k1+1) / (f(t,d) + k1·(1 − b + b·|d|/avgdl))

is computed once over the accented syllables and once over the accent-folded
syllables (đ→d, marks removed); the document score is their sum. A query typed
with diacritics earns points on both views, so accents act as a precision
bonus; a query typed without them still matches through the folded view.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from rank_bm25 import BM25Okapi

from retrieval.normalize import fold_accents, tokenize


class _FastBM25(BM25Okapi):
    """BM25Okapi with the per-term document frequencies held in an inverted index.

    rank-bm25 scans every document's term dict for every query term; with an
    inverted index we touch only the documents that contain the term. The
    formula and parameters are rank-bm25's own (idf, k1, b, epsilon).
    """

    def __init__(self, corpus: list[list[str]], k1: float = 1.5, b: float = 0.75) -> None:
        super().__init__(corpus, k1=k1, b=b)
        doc_len = np.asarray(self.doc_len, dtype=np.float64)
        self._norm = self.k1 * (1 - self.b + self.b * doc_len / max(self.avgdl, 1e-9))
        postings: dict[str, tuple[list[int], list[int]]] = {}
        for doc_index, freqs in enumerate(self.doc_freqs):
            for term, count in freqs.items():
                docs, counts = postings.setdefault(term, ([], []))
                docs.append(doc_index)
                counts.append(count)
        self._postings = {
            term: (np.asarray(d, dtype=np.int64), np.asarray(c, dtype=np.float64))
            for term, (d, c) in postings.items()
        }

    def get_scores(self, query: list[str]) -> np.ndarray:
        scores = np.zeros(self.corpus_size)
        for term in query:
            posting = self._postings.get(term)
            if posting is None:
                continue
            docs, tf = posting
            scores[docs] += self.idf[term] * tf * (self.k1 + 1) / (tf + self._norm[docs])
        return scores


class LexicalIndex:
    """BM25 over an accented field and an accent-folded field of each text."""

    def __init__(self, texts: Sequence[str], k1: float = 1.5, b: float = 0.75) -> None:
        accented = [tokenize(t) for t in texts]
        folded = [[fold_accents(tok) for tok in toks] for toks in accented]
        # rank-bm25 divides by the corpus size; an empty corpus has no scores.
        self.size = len(texts)
        self._accented = _FastBM25(accented, k1, b) if texts else None
        self._folded = _FastBM25(folded, k1, b) if texts else None
        self.vocabulary = {tok for toks in accented for tok in toks}

    def scores(self, query: str, *, accented_query: str | None = None, accented_weight: float = 1.0) -> np.ndarray:
        """BM25 score of every text: folded field + accented field.

        `accented_query` (e.g. the query with diacritics restored) is matched
        against the accented field instead of `query` when given.
        """
        if self._accented is None or self._folded is None:
            return np.zeros(0)
        folded = [fold_accents(t) for t in tokenize(query)]
        result = self._folded.get_scores(folded)
        if accented_weight:
            tokens = tokenize(accented_query if accented_query is not None else query)
            result = result + accented_weight * self._accented.get_scores(tokens)
        return result
