"""A second learned ranking, over words: one linear classifier per id on tf-idf word and word-pair features.

The entry classifier (retrieval/ranker.py) reads e5 vectors, which blur the words that
tell sibling entries apart ("chết khi đang đóng" / "chết khi đã nghỉ hưu", "tự nguyện" /
"bắt buộc"). This one reads the words themselves, accent-folded, as pairs too: the
sparse features of Rasa's DIET beside its dense ones. It is trained on every id's
texts plus copies typed without accents and in teen-code (normalized as a question
would be), one-vs-rest linear SVM (liblinear). The index blends its min-max normalised
scores into the ranking (SearchConfig.word_classifier_weight).

Cached like the entry classifier, keyed by a hash of each id's texts:
- same texts: loaded;
- a few ids changed (a staff edit): only their rows are refitted, on the cached vocabulary
  (a new word counts once the next full training runs, e.g. `bhxh build`);
- otherwise: full training (about 5 s on this 2-core machine).
"""

from __future__ import annotations

import itertools
import logging
import math
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from retrieval.normalize import folded_tokens, normalize_document, normalize_query
from retrieval.ranker import TrainingReport, augmentations, class_key, load_cache, reuse_rows, save_cache

log = logging.getLogger(__name__)

WORD_RANKER_VERSION = "svm-words-1"  # bump when `features` or the training changes: it keys the cache


@dataclass(frozen=True)
class WordClassifierConfig:
    # liblinear's C: 0.5 and 1 rank alike on both tuning halves; the smaller one regularizes more.
    c: float = 0.5
    max_patched_share: float = 0.10  # as ClassifierConfig.max_patched_share

    def key(self) -> str:
        return f"{WORD_RANKER_VERSION}:{self.c}"


def features(text: str) -> list[str]:
    """Accent-folded words and adjacent word pairs of an already normalized text."""
    words = folded_tokens(text)
    return words + [f"{a} {b}" for a, b in itertools.pairwise(words)]


def training_texts(raw: str) -> list[str]:
    """A knowledge-base text as written, and as typed without accents and in teen-code (normalized as a question)."""
    return [normalize_document(raw), *(normalize_query(variant) for variant in augmentations(raw))]


class WordClassifier:
    """`scores(normalized_text)` ranks every id (aligned with `ids`); higher is likelier."""

    def __init__(self, ids: Sequence[str], vocabulary: Sequence[str], idf: np.ndarray, weights: np.ndarray,
                 biases: np.ndarray) -> None:
        self.ids = list(ids)
        self.vocabulary = list(vocabulary)
        self._column = {term: n for n, term in enumerate(self.vocabulary)}
        self.idf = idf.astype(np.float32)
        # Column-major: a question touches a handful of columns (its words), read contiguously.
        self._weights = np.asfortranarray(weights, dtype=np.float32)
        self._biases = biases.astype(np.float32)

    def vector(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """The tf-idf (sublinear tf, l2-normalized) of a normalized text: (columns, values)."""
        counts = Counter(c for c in map(self._column.get, features(text)) if c is not None)
        if not counts:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        columns = np.fromiter(counts, dtype=np.int64, count=len(counts))
        values = np.array([1.0 + math.log(counts[c]) for c in columns], dtype=np.float32) * self.idf[columns]
        return columns, values / max(float(np.linalg.norm(values)), 1e-12)

    def scores(self, text: str) -> np.ndarray:
        columns, values = self.vector(text)
        if not len(columns):
            return self._biases.copy()
        return np.einsum("ij,j->i", self._weights[:, columns], values) + self._biases

    @classmethod
    def build(cls, ids: Sequence[str], texts_by_id: dict[str, list[str]], *, cache_path: Path | None = None,
              config: WordClassifierConfig | None = None) -> tuple[WordClassifier, TrainingReport]:
        """Train, load or patch the classifier for `texts_by_id` (raw texts; ids without texts score lowest)."""
        config = config or WordClassifierConfig()
        started = time.perf_counter()
        ids = list(ids)
        keys = [class_key(id_, texts_by_id.get(id_, [])) for id_ in ids]
        stored = load_cache(cache_path, config.key(), "word classifier") if cache_path is not None else None
        if stored is not None and stored["keys"] == keys:
            return (cls(ids, stored["vocabulary"], stored["idf"], stored["weights"], stored["biases"]),
                    TrainingReport("loaded", time.perf_counter() - started, 0))

        label = {id_: n for n, id_ in enumerate(ids)}
        samples: dict[str, int] = {}  # normalized text → class (the first id wins on duplicates)
        for id_ in ids:
            for raw in texts_by_id.get(id_, []):
                for text in training_texts(raw):
                    samples.setdefault(text, label[id_])
        texts, y = list(samples), np.fromiter(samples.values(), dtype=np.int64, count=len(samples))

        report = TrainingReport("trained", 0.0, len(texts), refitted=len(ids))
        full_keys = keys
        if stored is not None and len(set(keys) ^ set(stored["full_keys"])) <= max(  # removed ids count too
                1, int(config.max_patched_share * len(ids))):
            vocabulary, idf = _extended(stored["vocabulary"], stored["idf"], texts)
            x = _matrix(texts, vocabulary, idf)
            weights, biases, refit = reuse_rows(stored, keys, len(vocabulary))
            for row in refit:
                weights[row], biases[row] = _fit_one(x, y == row, config)
            full_keys = stored["full_keys"]
            report = TrainingReport("patched", 0.0, len(texts), refitted=len(refit))
        else:
            vocabulary, idf = _vocabulary(texts)
            x = _matrix(texts, vocabulary, idf)
            weights, biases = _fit_all(x, y, len(ids), config)
        if cache_path is not None:
            save_cache(cache_path, config.key(), "word classifier", keys=keys, full_keys=full_keys,
                       vocabulary=vocabulary, idf=idf, weights=weights, biases=biases)
        report.seconds = time.perf_counter() - started
        log.info("word classifier %s in %.2f s (%d samples, %d ids refitted)", report.how, report.seconds,
                 report.samples, report.refitted)
        return cls(ids, vocabulary, idf, weights, biases), report


# ------------------------------------------------------------------ training


def _vocabulary(texts: Sequence[str]) -> tuple[list[str], np.ndarray]:
    """Every feature of the training texts, with its smoothed idf (as scikit-learn's TfidfVectorizer)."""
    df: Counter[str] = Counter()
    for text in texts:
        df.update(set(features(text)))
    vocabulary = sorted(df)
    n = len(texts)
    idf = np.array([math.log((1 + n) / (1 + df[t])) + 1.0 for t in vocabulary], dtype=np.float32)
    return vocabulary, idf


def _extended(vocabulary: list[str], idf: np.ndarray, texts: Sequence[str]) -> tuple[list[str], np.ndarray]:
    """The cached vocabulary plus the features it lacks (a staff edit's new words), which get the idf they
    have in `texts`; every unchanged row weighs them 0, so only the refitted rows use them."""
    new_df: Counter[str] = Counter()
    known = set(vocabulary)
    for text in texts:
        new_df.update(set(features(text)) - known)
    if not new_df:
        return vocabulary, idf
    added = sorted(new_df)
    n = len(texts)
    added_idf = np.array([math.log((1 + n) / (1 + new_df[t])) + 1.0 for t in added], dtype=np.float32)
    return vocabulary + added, np.concatenate([idf, added_idf])


def _matrix(texts: Sequence[str], vocabulary: Sequence[str], idf: np.ndarray):  # -> scipy.sparse.csr_matrix
    from scipy.sparse import csr_matrix

    model = WordClassifier([], vocabulary, idf, np.zeros((0, len(vocabulary))), np.zeros(0))
    indptr, indices, data = [0], [], []
    for text in texts:
        columns, values = model.vector(text)
        indices.append(columns)
        data.append(values)
        indptr.append(indptr[-1] + len(columns))
    matrix = csr_matrix((np.concatenate(data) if data else np.zeros(0, dtype=np.float32),
                         np.concatenate(indices) if indices else np.zeros(0, dtype=np.int64), indptr),
                        shape=(len(texts), len(vocabulary)), dtype=np.float32)
    matrix.indices, matrix.indptr = matrix.indices.astype(np.int32), matrix.indptr.astype(np.int32)  # liblinear's
    return matrix


def _fit_all(x, y: np.ndarray, n_classes: int, config: WordClassifierConfig) -> tuple[np.ndarray, np.ndarray]:
    """One-vs-rest linear SVMs for every class; a class without samples gets the lowest bias."""
    from sklearn.svm import LinearSVC

    weights = np.zeros((n_classes, x.shape[1]), dtype=np.float32)
    biases = np.full(n_classes, -1.0, dtype=np.float32)
    present = np.unique(y)
    if len(present) == 1:  # liblinear needs two classes
        biases[present[0]] = 1.0
        return weights, biases
    svm = LinearSVC(C=config.c).fit(x, y)
    coef = svm.coef_ if len(present) > 2 else np.vstack([-svm.coef_, svm.coef_])
    intercept = svm.intercept_ if len(present) > 2 else np.array([-svm.intercept_[0], svm.intercept_[0]])
    weights[present], biases[present] = coef, intercept
    return weights, biases


def _fit_one(x, positive: np.ndarray, config: WordClassifierConfig) -> tuple[np.ndarray, float]:
    """One class's row against all other samples (as one class of the one-vs-rest training)."""
    from sklearn.svm import LinearSVC

    if not positive.any() or positive.all():
        return np.zeros(x.shape[1], dtype=np.float32), (1.0 if positive.any() else -1.0)
    svm = LinearSVC(C=config.c).fit(x, positive.astype(np.int64))
    return svm.coef_[0].astype(np.float32), float(svm.intercept_[0])
