"""Teach the e5 encoder the knowledge base: a LoRA adapter trained on its own texts.

The offline e5-small places "chết khi đang đóng" and "đã nghỉ hưu rồi mất" almost on top of each other;
the two learned rankers (retrieval/ranker.py, retrieval/word_ranker.py) re-rank what the vectors find but
cannot find what the vectors miss. This module fine-tunes the encoder itself, contrastively:

- anchor: a paraphrase of an entry (three in ten typed without accents or in teen-code, as people write);
- positive: another text of the same entry;
- hard negative: a text of a sibling entry in the same topic (the confusions that matter);
- the rest of the batch (32 distinct entries) as further negatives: MultipleNegativesRankingLoss;
- decline intents (knowledge/out_of_scope.yaml) take part as classes of their own, so commercial
  insurance questions stay apart from BHXH ones.

Only low-rank adapters (LoRA, rank 16) on the transformer's linear layers are trained; the word
embeddings and the base weights stay frozen. The adapter is a few MB and lives in the repository
(``retrieval/data/e5-bhxh-lora.npz``); ``ensure_tuned_model`` merges it into the offline base model once
(``W + scale·B·A``), giving an ordinary sentence-transformers directory that the ONNX export and the
index cache key on like any model. A staff edit does not wait for retraining: the edit's texts are
embedded at once and both classifiers refit their rows; retrain the adapter (``bhxh train-encoder``,
about 22 minutes on 2 cores) when the knowledge base has grown a lot.
"""

from __future__ import annotations

import hashlib
import json
import random
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from retrieval.offline_model import MARKER_NAME, build_lock, is_complete_build
from retrieval.progress import say

if TYPE_CHECKING:
    import torch

__all__ = [
    "ADAPTER_PATH",
    "TUNING_VERSION",
    "TrainingConfig",
    "apply_adapter",
    "ensure_tuned_model",
    "load_adapter",
    "train_adapter",
    "training_triples",
]

#: The adapter trained on this repository's knowledge base.
ADAPTER_PATH = Path(__file__).with_name("data") / "e5-bhxh-lora.npz"
#: Bump when the merged directory changes in a way callers should rebuild for.
TUNING_VERSION = 1
#: The transformer's linear layers that get an adapter (names inside each BertLayer).
TARGETS = ("attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense",
           "intermediate.dense", "output.dense")

Progress = Callable[[str], None]


@dataclass(frozen=True)
class TrainingConfig:
    rank: int = 16
    alpha: float = 32.0
    learning_rate: float = 2e-4
    epochs: int = 1
    batch_size: int = 32
    max_seq_length: int = 96
    augmented_share: float = 0.3  # anchors typed without accents or in teen-code
    seed: int = 0
    mined_negatives: bool = True  # hard negatives: the untuned encoder's nearest texts of other classes
    max_steps: int = 0  # 0 = every batch of every epoch (tests use a few)


# ------------------------------------------------------------------ training data


def training_triples(classes: dict[str, tuple[str, Sequence[str]]], rng: random.Random,
                     augmented_share: float, nearest: Callable[[str, str], list[str]] | None = None,
                     ) -> list[tuple[str, str, str, str]]:
    """(anchor, positive, hard negative, class id) for every paraphrase of every class.

    ``classes`` maps a class id to (group, texts): texts[0] is the class's question, the rest its
    paraphrases. The hard negative is one of ``nearest(anchor, class id)`` (other classes' texts the
    untuned encoder finds closest: the confusions to unlearn, decline intents included) when given,
    else a text of another class of the same group.
    """
    from retrieval.ranker import augmentations

    by_group: dict[str, list[str]] = {}
    for class_id, (group, _) in classes.items():
        by_group.setdefault(group, []).append(class_id)
    everyone = sorted(classes)
    triples = []
    for class_id in sorted(classes):
        group, texts = classes[class_id]
        siblings = [c for c in by_group[group] if c != class_id] or [c for c in everyone if c != class_id]
        for anchor in texts[1:]:
            positive = rng.choice([t for t in texts if t != anchor])
            close = nearest(anchor, class_id) if nearest else []
            negative = rng.choice(close) if close else rng.choice(list(classes[rng.choice(siblings)][1]))
            if rng.random() < augmented_share:
                anchor = rng.choice(augmentations(anchor))
            triples.append((anchor, positive, negative, class_id))
    rng.shuffle(triples)
    return triples


def knowledge_classes(kb: Any, out_of_scope: dict[str, Any]) -> dict[str, tuple[str, list[str]]]:
    """Each entry (grouped by topic) and each decline intent (grouped together) as a class."""
    classes = {entry.id: (entry.topic, entry.texts()) for entry in kb.entries.values()}
    for intent in out_of_scope.values():
        if len(intent.examples) >= 2:
            classes["oos:" + intent.id] = ("out_of_scope", list(intent.examples))
    return classes


def nearest_texts(model: Any, classes: dict[str, tuple[str, list[str]]], depth: int = 8,
                  ) -> Callable[[str, str], list[str]]:
    """For an anchor, the ``depth`` texts of other classes closest to it under ``model`` (one pass over all texts)."""
    owners = [(c, t) for c, (_, texts) in sorted(classes.items()) for t in texts]
    vectors = model.encode(["passage: " + t for _, t in owners], batch_size=64, normalize_embeddings=True,
                           prompt="")
    row = {(c, t): i for i, (c, t) in enumerate(owners)}
    owner_of = np.array([c for c, _ in owners])

    def nearest(anchor: str, class_id: str) -> list[str]:
        sims = vectors @ vectors[row[(class_id, anchor)]]
        sims[owner_of == class_id] = -1.0
        return [owners[i][1] for i in np.argsort(-sims)[:depth]]

    return nearest


def _batches(triples: list[tuple[str, str, str, str]], size: int) -> list[list[tuple[str, str, str, str]]]:
    """Consecutive batches with distinct classes (a class twice in a batch would be its own negative)."""
    batches, pending = [], list(triples)
    while pending:
        batch, seen, rest = [], set(), []
        for triple in pending:
            if len(batch) < size and triple[3] not in seen:
                batch.append(triple)
                seen.add(triple[3])
            else:
                rest.append(triple)
        batches.append(batch)
        pending = rest
    return batches


# ------------------------------------------------------------------ LoRA


def _lora_modules(transformer: torch.nn.Module) -> dict[str, torch.nn.Linear]:
    import torch

    found = {}
    for name, module in transformer.named_modules():
        if isinstance(module, torch.nn.Linear) and name.startswith("encoder.layer.") and name.endswith(TARGETS):
            found[name] = module
    return found


def lora_linear(linear: torch.nn.Linear, rank: int, scale: float, generator: torch.Generator) -> torch.nn.Module:
    """A frozen Linear with a trainable low-rank update: y = W x + b + scale · B (A x); B starts at 0."""
    import torch

    class LoRALinear(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.base = linear
            self.a = torch.nn.Parameter(torch.empty(rank, linear.in_features))
            torch.nn.init.kaiming_uniform_(self.a, a=5 ** 0.5, generator=generator)
            self.b = torch.nn.Parameter(torch.zeros(linear.out_features, rank))
            self.scale = scale

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.base(x) + self.scale * ((x @ self.a.T) @ self.b.T)

    return LoRALinear()


def _set_module(root: torch.nn.Module, name: str, module: torch.nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    setattr(root.get_submodule(parent_name), child, module)


def train_adapter(model: Any, classes: dict[str, tuple[str, list[str]]], config: TrainingConfig,
                  progress: Progress = say) -> dict[str, np.ndarray]:
    """Train LoRA adapters on ``model`` (a sentence-transformers e5, left unchanged); returns the tensors."""
    import torch
    from sentence_transformers.sentence_transformer import losses

    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    transformer = model[0].auto_model
    for parameter in model.parameters():
        parameter.requires_grad = False
    scale = config.alpha / config.rank
    originals = _lora_modules(transformer)
    wrapped = {name: lora_linear(linear, config.rank, scale, generator) for name, linear in originals.items()}
    for name, module in wrapped.items():
        _set_module(transformer, name, module)
    previous_length = model.max_seq_length
    model.max_seq_length = config.max_seq_length
    try:
        parameters = [p for module in wrapped.values() for p in (module.a, module.b)]
        optimizer = torch.optim.AdamW(parameters, lr=config.learning_rate, weight_decay=0.0)
        loss_fn = losses.MultipleNegativesRankingLoss(model)
        rng = random.Random(config.seed)
        nearest = nearest_texts(model, classes) if config.mined_negatives else None
        batches = [b for _ in range(config.epochs) for b in _batches(
            training_triples(classes, rng, config.augmented_share, nearest), config.batch_size)]
        batches = [b for b in batches if len(b) > 1]
        if config.max_steps:
            batches = batches[:config.max_steps]
        total = len(batches)
        warmup = max(1, total // 10)
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: min((step + 1) / warmup, max(0.0, (total - step) / max(1, total - warmup))))
        model.train()
        started = time.perf_counter()
        for step, batch in enumerate(batches, 1):
            features = [model.preprocess([("query: " if k == 0 else "passage: ") + t[k] for t in batch])
                        for k in range(3)]
            loss = loss_fn(features, None)
            loss.backward()
            optimizer.step()
            schedule.step()
            optimizer.zero_grad()
            if step % 10 == 0 or step == total:
                progress(f"encoder tuning: step {step}/{total}, loss {loss.item():.3f}, "
                         f"{time.perf_counter() - started:.0f} s")
        model.eval()
        return {f"{name}.{part}": getattr(module, part).detach().numpy().astype(np.float32).copy()
                for name, module in wrapped.items() for part in ("a", "b")} | {
                    "scale": np.asarray(scale, dtype=np.float32)}
    finally:
        for name, linear in originals.items():
            _set_module(transformer, name, linear)
        model.max_seq_length = previous_length


# ------------------------------------------------------------------ the adapter file


def save_adapter(path: Path, tensors: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".npz", delete=False) as handle:
        np.savez_compressed(handle, __meta__=np.asarray(json.dumps(meta, ensure_ascii=False)), **tensors)
    Path(handle.name).replace(path)


def load_adapter(path: Path = ADAPTER_PATH) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    with np.load(path, allow_pickle=False) as data:
        tensors = {key: data[key] for key in data.files if key != "__meta__"}
        meta = json.loads(str(data["__meta__"]))
    return tensors, meta


def apply_adapter(model: Any, tensors: dict[str, np.ndarray]) -> int:
    """Merge the adapter into ``model``'s weights in place; returns the number of layers changed."""
    import torch

    scale = float(tensors["scale"])
    modules = _lora_modules(model[0].auto_model)
    expected = {f"{name}.{part}" for name in modules for part in ("a", "b")}
    if set(tensors) - {"scale"} != expected:
        raise ValueError("adapter does not match the model's layers")
    with torch.no_grad():
        for name, linear in modules.items():
            delta = torch.from_numpy(tensors[f"{name}.b"]) @ torch.from_numpy(tensors[f"{name}.a"])
            linear.weight += scale * delta.to(linear.weight.dtype)
    return len(modules)


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def ensure_tuned_model(base_dir: Path, out_dir: Path, adapter: Path = ADAPTER_PATH,
                       progress: Progress = say) -> Path:
    """``out_dir``: the base model with the adapter merged in, built once per adapter."""
    out_dir = Path(out_dir).resolve()
    digest = file_digest(adapter)
    if _current(out_dir, digest):
        return out_dir
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    with build_lock(out_dir):
        if _current(out_dir, digest):
            return out_dir
        from sentence_transformers import SentenceTransformer

        progress("model: merging the knowledge-base adapter into the encoder (once)")
        model = SentenceTransformer(str(base_dir), device="cpu", local_files_only=True)
        tensors, meta = load_adapter(adapter)
        apply_adapter(model, tensors)
        work = Path(tempfile.mkdtemp(prefix=out_dir.name + ".", dir=out_dir.parent))
        try:
            model.save(str(work))
            base_marker = json.loads((Path(base_dir) / MARKER_NAME).read_text(encoding="utf-8"))
            marker = base_marker | {"adapter_sha256": digest, "tuning_version": TUNING_VERSION,
                                    "adapter": {k: meta.get(k) for k in ("trained_on", "config")}}
            (work / MARKER_NAME).write_text(json.dumps(marker, ensure_ascii=False, indent=1), encoding="utf-8")
            if out_dir.exists():
                shutil.rmtree(out_dir)
            work.replace(out_dir)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return out_dir


def _current(out_dir: Path, digest: str) -> bool:
    if not is_complete_build(out_dir):
        return False
    marker = json.loads((out_dir / MARKER_NAME).read_text(encoding="utf-8"))
    return marker.get("adapter_sha256") == digest and marker.get("tuning_version") == TUNING_VERSION


# ------------------------------------------------------------------ training the committed adapter


def train_and_save(classes: dict[str, tuple[str, list[str]]], base_dir: Path, out: Path = ADAPTER_PATH,
                   config: TrainingConfig = TrainingConfig(), progress: Progress = say) -> dict[str, Any]:
    """Train on ``classes`` (``knowledge_classes``) from the published e5 in ``base_dir``; write the adapter."""
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(base_dir), device="cpu", local_files_only=True)
    started = time.perf_counter()
    tensors = train_adapter(model, classes, config, progress=progress)
    texts = json.dumps(sorted((k, v[1]) for k, v in classes.items()), ensure_ascii=False)
    meta = {"trained_on": {"classes": len(classes), "texts": sum(len(v[1]) for v in classes.values()),
                           "texts_sha256": hashlib.sha256(texts.encode()).hexdigest()},
            "config": asdict(config), "seconds": round(time.perf_counter() - started)}
    save_adapter(out, tensors, meta)
    return meta
