"""A ranking learned from the knowledge base itself: one class per id, a classifier over e5 vectors.

Nearest neighbour scores an id by its single best text ("max over paraphrases"),
so one loosely worded paraphrase can win a question that the id's other texts
do not support. The classifier instead learns, from all of each id's texts at
once, which directions of the embedding space tell the ids apart:

    logit_c(q) = scale · w_c·q + b_c        (multinomial logistic regression)

trained by default on the e5 passage vectors the index already holds for every
id's texts (question and paraphrases), so it costs no extra encoding; it can
instead be trained on query-side vectors of the same texts plus copies typed
without accents and in teen-code (ClassifierConfig.inputs = "query"). The index
blends the min-max normalised logits with its lexical/dense fusion
(SearchConfig.classifier_weight).

The trained weights are cached under the index cache directory, keyed by the
model and by a hash of each id's texts:
- same texts as the cache: loaded (milliseconds);
- a few ids changed (a staff edit): only their rows are refitted, holding every
  other row fixed (a 385-parameter problem per id: well under a second);
- many changed, or no cache: full training (seconds; `bhxh build` does it once).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from retrieval.normalize import ABBREVIATIONS, fold_accents

log = logging.getLogger(__name__)

RANKER_VERSION = "lr-1"


@dataclass(frozen=True)
class ClassifierConfig:
    # What the classifier is trained on: "passage" = the index's own passage vectors of each text
    # (nothing new to encode; best on both tuning sets, see benchmarks/ranking.py), or "query" =
    # each text encoded as a user's question (+ augmented copies): 2-3x the encoding at build time.
    inputs: str = "passage"
    scale: float = 20.0  # logit temperature: cosines live in a narrow band, so they are scaled up
    weight_decay: float = 1e-4
    # L-BFGS iterations of a full training: 50 ranks as well as 150 on the tuning splits (own .902 vs .915,
    # real .611 vs .588 top-1) and trains in 3 s instead of 30 s on this 2-core machine.
    max_iter: int = 50
    augment: bool = True  # with query inputs: accent-stripped and teen-code copies of every text
    # Patch (refit only the changed ids) while at most this share of ids differs from the last full training.
    max_patched_share: float = 0.10

    def key(self) -> str:
        return f"{RANKER_VERSION}:{self.inputs}:{self.scale}:{self.weight_decay}:{self.max_iter}:{self.augment}"


# ------------------------------------------------------------------ augmentation

# Teen-code as people type it: the accented phrase → its short form (the reverse of the
# normalizer's table; longest phrases first, so "bảo hiểm xã hội" becomes "bhxh", not "bh xã hội").
_TEEN_FORMS = {"bhxh", "bhyt", "bhtn", "ko", "dc", "j", "ntn", "bn", "nld", "cty", "hdld", "tg", "mk", "e", "r", "v"}
_TEEN = {long: short for short, long in ABBREVIATIONS.items() if short in _TEEN_FORMS}
_TEEN_RE = re.compile(r"(?<!\w)(?:" + "|".join(re.escape(p) for p in sorted(_TEEN, key=len, reverse=True))
                      + r")(?!\w)")


def teen_code(text: str) -> str:
    """`text` as typed on a phone: common words abbreviated, no diacritics."""
    return fold_accents(_TEEN_RE.sub(lambda m: _TEEN[m.group(0)], text.lower()))


def augmentations(text: str) -> list[str]:
    """Raw (as a user would type) variants of a knowledge-base text."""
    return [fold_accents(text), teen_code(text)]


# ------------------------------------------------------------------ training


def train_logistic(x: np.ndarray, y: np.ndarray, n_classes: int, config: ClassifierConfig,
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Multinomial logistic regression (full-batch L-BFGS): weights (C, D), biases (C,)."""
    import torch

    xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    yt = torch.from_numpy(np.asarray(y, dtype=np.int64))
    w = torch.zeros(n_classes, x.shape[1], requires_grad=True)
    b = torch.zeros(n_classes, requires_grad=True)
    optimizer = torch.optim.LBFGS([w, b], lr=1, max_iter=config.max_iter, history_size=20,
                                  line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        logits = config.scale * xt @ w.T + b
        loss = torch.nn.functional.cross_entropy(logits, yt) + config.weight_decay * (w * w).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    return w.detach().numpy().astype(np.float32), b.detach().numpy().astype(np.float32)


def refit_rows(x: np.ndarray, y: np.ndarray, weights: np.ndarray, biases: np.ndarray, rows: Sequence[int],
               config: ClassifierConfig) -> tuple[np.ndarray, np.ndarray]:
    """Refit only `rows` (ids whose texts changed), every other class's weights held fixed.

    Each row is a small problem over all samples: the other classes' logits are
    constants, so their log-sum-exp is computed once.
    """
    import torch

    weights, biases = weights.copy(), biases.copy()
    rows = list(rows)
    if not rows:
        return weights, biases
    fixed = np.ones(len(weights), dtype=bool)
    fixed[rows] = False
    xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    yt = torch.from_numpy(np.asarray(y, dtype=np.int64))
    logits_fixed = config.scale * xt @ torch.from_numpy(weights).T + torch.from_numpy(biases)
    logits_fixed[:, torch.from_numpy(~fixed)] = -torch.inf
    base_lse = torch.logsumexp(logits_fixed, dim=1)
    # The true-class logit of samples whose class is fixed does not change.
    true_fixed = logits_fixed.gather(1, yt[:, None])[:, 0]
    init_w = np.stack([_centroid(x, y, r) for r in rows])  # start from the class mean: a sane direction
    w = torch.from_numpy(init_w).requires_grad_(True)
    b = torch.zeros(len(rows), requires_grad=True)
    label_of = {r: n for n, r in enumerate(rows)}
    own = torch.tensor([label_of.get(int(c), -1) for c in y], dtype=torch.int64)
    optimizer = torch.optim.LBFGS([w, b], lr=1, max_iter=100, history_size=20, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        new = config.scale * xt @ w.T + b  # (N, len(rows))
        lse = torch.logaddexp(base_lse, torch.logsumexp(new, dim=1))
        true = torch.where(own >= 0, new.gather(1, own.clamp(min=0)[:, None])[:, 0], true_fixed)
        loss = (lse - true).mean() + config.weight_decay * (w * w).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    weights[rows] = w.detach().numpy()
    biases[rows] = b.detach().numpy()
    return weights, biases


def _centroid(x: np.ndarray, y: np.ndarray, label: int) -> np.ndarray:
    members = x[y == label]
    if not len(members):
        return np.zeros(x.shape[1], dtype=np.float32)
    mean = members.mean(axis=0)
    return (mean / max(float(np.linalg.norm(mean)), 1e-12)).astype(np.float32)


def class_key(id_: str, texts: Sequence[str]) -> str:
    return hashlib.sha256("\x00".join([id_, *texts]).encode()).hexdigest()[:24]


# ------------------------------------------------------------------ the ranker


@dataclass
class TrainingReport:
    how: str  # "loaded", "patched", "trained"
    seconds: float
    samples: int
    refitted: int = 0


class EntryClassifier:
    """One class per id; `logits(query_vector)` scores every id (aligned with `ids`)."""

    def __init__(self, ids: Sequence[str], weights: np.ndarray, biases: np.ndarray, scale: float) -> None:
        self.ids = list(ids)
        # Scale folded into the weights: scoring is one matrix-vector product.
        self._weights = np.ascontiguousarray(weights * scale, dtype=np.float32)
        self._biases = biases.astype(np.float32)

    def logits(self, query_vector: np.ndarray) -> np.ndarray:
        # einsum, not `@`: no BLAS threads (see HybridIndex.dense_scores).
        return np.einsum("ij,j->i", self._weights, query_vector) + self._biases

    @classmethod
    def build(
        cls,
        ids: Sequence[str],
        texts_by_id: dict[str, list[str]],
        encode: Callable[[list[str]], np.ndarray],
        *,
        prepare: Callable[[str], str] = lambda text: text,
        cache_path: Path | None = None,
        config: ClassifierConfig | None = None,
    ) -> tuple[EntryClassifier, TrainingReport]:
        """Train (or load, or patch) the classifier.

        `texts_by_id`: the raw texts of each id. `prepare` turns a raw text into
        what the encoder reads for a user's question (normalize, restore accents);
        `encode` gives query-side vectors for prepared texts (cache them: it is
        called on every build).
        """
        config = config or ClassifierConfig()
        started = time.perf_counter()
        ids = list(ids)
        keys = [class_key(id_, texts_by_id.get(id_, [])) for id_ in ids]
        stored = load_cache(cache_path, config.key(), "classifier") if cache_path is not None else None
        if stored is not None and stored["keys"] == keys:  # the common start: nothing changed
            report = TrainingReport("loaded", time.perf_counter() - started, 0)
            return cls(ids, stored["weights"], stored["biases"], config.scale), report

        label = {id_: n for n, id_ in enumerate(ids)}
        samples: dict[str, int] = {}  # prepared text → class (first id wins on duplicates)
        for id_ in ids:
            for raw in texts_by_id.get(id_, []):
                for variant in [raw, *(augmentations(raw) if config.augment else [])]:
                    samples.setdefault(prepare(variant), label[id_])
        texts = list(samples)
        y = np.fromiter(samples.values(), dtype=np.int64, count=len(samples))
        x = encode(texts) if texts else np.zeros((0, 0), dtype=np.float32)

        weights = biases = None
        full_keys = keys
        report = TrainingReport("trained", 0.0, len(texts), refitted=len(ids))
        if stored is not None:
            # Removed ids count as much as new ones: the kept rows were fitted against them, so a much
            # smaller class set (an older knowledge base, many deletions) needs a full training too.
            drifted = set(keys) ^ set(stored["full_keys"])
            if len(drifted) <= max(1, int(config.max_patched_share * len(ids))):
                weights, biases, refit = reuse_rows(stored, keys)
                weights, biases = refit_rows(x, y, weights, biases, refit, config)
                full_keys = stored["full_keys"]
                report = TrainingReport("patched", 0.0, len(texts), refitted=len(refit))
        if weights is None or biases is None:
            weights, biases = train_logistic(x, y, len(ids), config)
        if cache_path is not None:
            save_cache(cache_path, config.key(), "classifier", keys=keys, full_keys=full_keys, weights=weights,
                       biases=biases)
        report.seconds = time.perf_counter() - started
        log.info("entry classifier %s in %.2f s (%d samples, %d ids refitted)", report.how, report.seconds,
                 report.samples, report.refitted)
        return cls(ids, weights, biases, config.scale), report


def reuse_rows(stored: dict, keys: list[str], width: int | None = None) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """The stored rows of ids whose texts are unchanged (0 on any column added since, up to `width`);
    the positions that need refitting."""
    row_of = {k: n for n, k in enumerate(stored["keys"])}
    stored_width = stored["weights"].shape[1]
    weights = np.zeros((len(keys), width or stored_width), dtype=np.float32)
    biases = np.zeros(len(keys), dtype=np.float32)
    refit = []
    for n, k in enumerate(keys):
        if k in row_of:
            weights[n, :stored_width], biases[n] = stored["weights"][row_of[k]], stored["biases"][row_of[k]]
        else:
            refit.append(n)
    return weights, biases, refit


_TEXT_ARRAYS = frozenset({"keys", "full_keys", "vocabulary"})


def load_cache(path: Path, config_key: str, what: str) -> dict | None:
    """A classifier cache written for `config_key`: its arrays, with keys, full_keys (and a vocabulary, if
    any) as lists of str and weights, biases (and idf) as float32; None when absent, stale or unreadable."""
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            if str(data["config"]) != config_key:
                return None
            return {name: [str(v) for v in data[name]] if name in _TEXT_ARRAYS else data[name].astype(np.float32)
                    for name in data.files if name != "config"}
    except Exception as exc:  # corrupt or truncated: retrain rather than crash
        log.warning("%s cache %s unreadable (%s); it will be retrained", what, path, exc)
        return None


def save_cache(path: Path, config_key: str, what: str, **arrays: object) -> None:
    """Write a classifier cache atomically (a reader never sees half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npz.tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, config=np.array(config_key), **{k: np.asarray(v) for k, v in arrays.items()})
        os.replace(tmp, path)
    except OSError as exc:  # read-only or full disk: keep serving from memory
        log.warning("could not write %s cache %s: %s", what, path, exc)
        Path(tmp).unlink(missing_ok=True)
