"""The hybrid index: build from (id, text) pairs, search, get scored hits.

Several texts may share one id (a question and its paraphrases, say): each id
is scored by its best-matching text, separately for the lexical and the dense
side, before fusion.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import numpy as np

from retrieval import progress
from retrieval.accents import AccentRestorer
from retrieval.bm25 import LexicalIndex
from retrieval.dense import DenseEncoder, EmbeddingCache, text_key
from retrieval.fusion import METHODS, minmax
from retrieval.normalize import normalize_document, normalize_query, tokenize
from retrieval.ranker import ClassifierConfig, EntryClassifier, TrainingReport
from retrieval.word_ranker import WordClassifier, WordClassifierConfig

log = logging.getLogger(__name__)

Mode = Literal["hybrid", "lexical", "dense"]

# About a quarter of the syllables of accented Vietnamese carry no marks ("bao", "tin");
# a query with at least this share of unmarked syllables was typed without accents.
UNACCENTED_QUERY_SHARE = 0.75


@dataclass(frozen=True)
class Hit:
    id: str
    score: float  # the ranking score of the chosen mode (fused for hybrid)
    lexical: float  # BM25 of the id's best text
    dense: float  # cosine of the id's best text (0.0 without an encoder)
    learned: float = 1.0  # the entry classifier's probability for this id (1.0 without a classifier)


@dataclass(frozen=True)
class SearchConfig:
    fusion: str = "convex"
    lexical_weight: float = 0.5
    restore_accents: bool = True  # restore marks before dense encoding
    # Share of the ranking given to the entry classifier (retrieval/ranker.py), trained on the
    # index's own texts: ranking = (1 − w)·fusion(lexical, dense) + w·minmax(classifier logits).
    # 0 = nearest neighbour only (each id scored by its best text). Needs an encoder.
    classifier_weight: float = 0.0
    classifier: ClassifierConfig = field(default_factory=ClassifierConfig)
    # Share of the ranking then given to the word classifier (retrieval/word_ranker.py):
    # ranking = (1 − v)·ranking + v·minmax(word scores), in hybrid mode. 0 = off.
    word_classifier_weight: float = 0.0
    word_classifier: WordClassifierConfig = field(default_factory=WordClassifierConfig)
    # The word classifier stays out of a question where a `held` id (a decline intent) ranks among this
    # many first: whether to decline is the fused ranking's call, whose thresholds were tuned on it.
    held_depth: int = 3
    # ...and from a question for which no id's one-vs-rest score passes this (the SVM's margin, 0 = its
    # boundary): in words unlike the knowledge base's, its ranking is noise. On the tuning halves, -0.45 kept
    # nearly all of the gain on ours (right .878 -> .882, wrong .048 -> .035) and half the real wrong answers
    # it had added (.108 -> .100); 0 took part too rarely (ours .838), -0.3 .856 / real .092.
    word_min_score: float = -0.45


class HybridIndex:
    def __init__(
        self,
        items: Iterable[tuple[str, str]],
        *,
        encoder: DenseEncoder | None = None,
        cache_dir: Path | None = None,
        config: SearchConfig | None = None,
        query_normalizer: Callable[[str], str] = normalize_query,
        held: Callable[[str], bool] | None = None,
    ) -> None:
        pairs = list(items)
        self.config = config or SearchConfig()
        self.normalize_query = query_normalizer
        self.ids: list[str] = list(dict.fromkeys(i for i, _ in pairs))
        position = {id_: n for n, id_ in enumerate(self.ids)}
        # Texts grouped by id (stable), so pooling per id is one np.maximum.reduceat.
        pairs.sort(key=lambda pair: position[pair[0]])
        self.texts = [t for _, t in pairs]
        owner = np.array([position[i] for i, _ in pairs], dtype=np.int64)
        self._starts = np.flatnonzero(np.r_[True, owner[1:] != owner[:-1]]) if len(owner) else owner
        documents = [normalize_document(t) for t in self.texts]
        self.lexical = LexicalIndex(documents)
        self.restorer = AccentRestorer(documents)
        self.encoder = encoder
        self.cache: EmbeddingCache | None = None
        self.cache_keys: list[str] = []
        self.vectors: np.ndarray | None = None
        if encoder is not None:
            encode: Callable[[list[str]], np.ndarray] = encoder.encode_passages
            if cache_dir is not None:
                cache = self.cache = EmbeddingCache(cache_dir, encoder.fingerprint)
                encode = lambda texts: cache.encode_passages(encoder, texts)  # noqa: E731 - saved a chunk at a time
                self.cache_keys = [text_key(encoder.passage_prompt, d) for d in documents]
            self.vectors = progress.chunked(encode, "index: texts encoded or read from the cache",
                                            np.concatenate)(documents)
        self.classifier: EntryClassifier | None = None
        self.classifier_report: TrainingReport | None = None
        if encoder is not None and self.config.classifier_weight > 0 and self.ids:
            self.build_classifier(pairs, cache_dir)
        # Ids the word classifier never lifts (see SearchConfig.held_depth).
        self._held = np.array([bool(held and held(i)) for i in self.ids], dtype=bool)
        self.word_classifier: WordClassifier | None = None
        self.word_classifier_report: TrainingReport | None = None
        if encoder is not None and self.config.word_classifier_weight > 0 and self.ids:  # blended in hybrid mode
            texts_by_id: dict[str, list[str]] = {}
            for id_, text in pairs:
                texts_by_id.setdefault(id_, []).append(text)
            self.word_classifier, self.word_classifier_report = WordClassifier.build(
                self.ids, texts_by_id, config=self.config.word_classifier,
                cache_path=cache_dir / "word-classifier.npz" if cache_dir is not None else None)

    def build_classifier(self, pairs: list[tuple[str, str]], cache_dir: Path | None) -> None:
        """Train, load or patch the entry classifier over this index's texts (see retrieval/ranker.py)."""
        encoder = self.encoder
        assert encoder is not None
        texts_by_id: dict[str, list[str]] = {}
        for id_, text in pairs:
            texts_by_id.setdefault(id_, []).append(text)
        cache = self.cache

        config = self.config.classifier
        if config.inputs == "passage":  # the passage vectors this index already holds (all cache hits)
            prepare: Callable[[str], str] = normalize_document
            held = self.vectors if self.vectors is not None else np.zeros((0, encoder.dim), dtype=np.float32)
            passages = dict(zip((normalize_document(t) for t in self.texts), held, strict=True))

            def encode(texts: list[str]) -> np.ndarray:
                missing = [t for t in texts if t not in passages]
                if missing:  # only reached for texts the index does not hold
                    passages.update(zip(missing, encoder.encode_passages(missing), strict=True))
                return np.stack([passages[t] for t in texts])

            config = replace(config, augment=False)
        else:
            def prepare(raw: str) -> str:  # what the encoder would read, had a user typed `raw`
                return self.restored(self.normalize_query(raw), raw)

            def encode(texts: list[str]) -> np.ndarray:
                if cache is not None:
                    return cache.encode_queries(encoder, texts)
                return encoder.encode_queries_exact(texts)

        self.classifier, self.classifier_report = EntryClassifier.build(
            self.ids, texts_by_id, progress.chunked(encode, "index: classifier texts", np.concatenate),
            prepare=prepare, config=config,
            cache_path=cache_dir / f"classifier-{encoder.fingerprint}.npz" if cache_dir is not None else None)

    @property
    def has_dense(self) -> bool:
        return self.vectors is not None

    def _pool(self, per_text: np.ndarray) -> np.ndarray:
        """Each id's score: the best of its texts' scores."""
        return np.maximum.reduceat(per_text, self._starts).astype(np.float64)

    def restored(self, normalized_query: str, typed: str | None = None) -> str:
        """The query with diacritics restored from the corpus, if it was typed without them.

        `typed` is the text as the user wrote it (before abbreviations were
        expanded into accented words). A query typed with marks is left alone:
        its unmarked syllables ("du lịch", "thu nhập") are unmarked on purpose.
        """
        share = AccentRestorer.unaccented_share(typed if typed is not None else normalized_query)
        if self.config.restore_accents and share >= UNACCENTED_QUERY_SHARE:
            return self.restorer.restore(normalized_query)
        return normalized_query

    def lexical_scores(self, normalized_query: str, restored_query: str | None = None) -> np.ndarray:
        if not self.ids:
            return np.zeros(0)
        return self._pool(self.lexical.scores(normalized_query, accented_query=restored_query))

    def dense_scores(self, restored_query: str) -> np.ndarray:
        if self.encoder is None or self.vectors is None or not self.ids:
            return np.zeros(len(self.ids))
        return self._dense_from_vector(self.encoder.encode_query(restored_query))

    def _dense_from_vector(self, query_vector: np.ndarray) -> np.ndarray:
        assert self.vectors is not None
        # einsum, not `@`: BLAS spins up its own threads, which under many concurrent requests
        # fight each other and the encoder (measured 1.8 ms instead of 0.1 ms per product).
        return self._pool(np.einsum("ij,j->i", self.vectors, query_vector))

    def rank(self, lexical: np.ndarray, dense_query: str | None, mode: Mode = "hybrid",
             ) -> tuple[np.ndarray, np.ndarray]:
        """(ranking, dense cosines) of every id, from lexical scores and the (restored) text the
        encoder should read; `dense_query` None, or no encoder, ranks lexically."""
        ranking, dense, _ = self.rank_scores(lexical, dense_query, mode)
        return ranking, dense

    def rank_scores(self, lexical: np.ndarray, dense_query: str | None, mode: Mode = "hybrid",
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """`rank` plus the entry classifier's probability of every id (all 1.0 when it did not take part):
        how sure the learned ranking is, a signal the fused score's scale does not keep."""
        no_classifier = np.ones(len(self.ids))
        if dense_query is None or mode == "lexical" or self.encoder is None or self.vectors is None:
            return lexical, np.zeros(len(self.ids)), no_classifier
        query_vector = self.encoder.encode_query(dense_query)
        dense = self._dense_from_vector(query_vector)
        if mode == "dense":
            return dense, dense, no_classifier
        ranking = METHODS[self.config.fusion](lexical, dense, lexical_weight=self.config.lexical_weight)
        weight = self.config.classifier_weight
        if self.classifier is None or weight <= 0:
            return self._with_words(ranking, dense_query), dense, no_classifier
        logits = self.classifier.logits(query_vector)
        ranking = self._with_words((1 - weight) * ranking + weight * minmax(logits), dense_query)
        odds = np.exp(logits - logits.max())
        return ranking, dense, odds / odds.sum()

    def _with_words(self, ranking: np.ndarray, text: str) -> np.ndarray:
        """`ranking` with the word classifier's scores of `text` blended in, unless a held id ranks near the top
        or the classifier recognizes nothing."""
        weight = self.config.word_classifier_weight
        if self.word_classifier is None or weight <= 0:
            return ranking
        if self._held.any() and self._held[np.argsort(-ranking, kind="stable")[:self.config.held_depth]].any():
            return ranking
        words = self.word_classifier.scores(text)
        if np.where(self._held, -np.inf, words).max() <= self.config.word_min_score:
            return ranking
        blended = (1 - weight) * ranking + weight * minmax(words)
        return np.where(self._held, 0.0, blended)

    def search(self, query: str, k: int = 10, mode: Mode = "hybrid", *, normalized: str | None = None) -> list[Hit]:
        """The best `k` ids for `query` as typed; pass `normalized` when the caller already normalized it
        with this index's query normalizer, so it is not done twice."""
        normalized = self.normalize_query(query) if normalized is None else normalized
        if not tokenize(normalized) or not self.ids:
            return []
        restored = self.restored(normalized, query)
        lexical = self.lexical_scores(normalized, restored)
        ranking, dense, learned = self.rank_scores(lexical, restored, mode)
        top = np.argsort(-ranking, kind="stable")[:k]
        return [
            Hit(self.ids[i], float(ranking[i]), float(lexical[i]), float(dense[i]), float(learned[i])) for i in top
        ]
