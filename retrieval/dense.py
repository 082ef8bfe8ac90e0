"""Dense search with sentence-transformers, and an on-disk cache of passage vectors.

The encoder is any sentence-transformers model name or local path. For e5
models the `query: ` / `passage: ` prompts are applied (from the model's own
prompt config when it has one). Models are always loaded with
`local_files_only=True`: nothing is ever downloaded at run time.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import os
import queue
import re
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import numpy as np

from retrieval.onnx_encoder import ONNX_PRECISIONS, OnnxQueryModel, load_or_build, onnx_runtime_available
from retrieval.progress import say

log = logging.getLogger(__name__)


class QueryBatcher:
    """Encode concurrent single queries together, in one forward pass.

    Opportunistic: a lone query is encoded at once (no added latency); queries
    that arrive while the model is busy wait in a queue and go through as one
    batch, which is several times cheaper per query on a CPU.
    """

    def __init__(self, encode: Callable[[list[str]], np.ndarray], max_batch: int = 32, workers: int = 1) -> None:
        self._encode = encode
        self._max_batch = max_batch
        self._queue: queue.SimpleQueue[tuple[str, Future[np.ndarray]]] = queue.SimpleQueue()
        self.batches = 0
        self.queries = 0
        self._stats_lock = threading.Lock()
        for n in range(workers):
            threading.Thread(target=self._run, name=f"query-batcher-{n}", daemon=True).start()

    def encode(self, text: str) -> np.ndarray:
        future: Future[np.ndarray] = Future()
        self._queue.put((text, future))
        return future.result()

    def _run(self) -> None:
        while True:
            batch = [self._queue.get()]
            while len(batch) < self._max_batch:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            try:
                vectors = self._encode([text for text, _ in batch])
            except Exception as exc:  # hand the error to every waiting caller
                for _, future in batch:
                    future.set_exception(exc)
                continue
            with self._stats_lock:
                self.batches += 1
                self.queries += len(batch)
            for (_, future), vector in zip(batch, vectors, strict=True):
                future.set_result(vector)


def cpu_has_native_bf16() -> bool:
    """Does this CPU multiply bfloat16 in hardware (AVX512-BF16 or AMX)? Emulated bf16 is slower than fp32."""
    try:
        flags = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return False
    return bool(re.search(r"\b(avx512_bf16|amx_bf16)\b", flags))


QUERY_PRECISION_ALIASES = {"fp32": "float32", "float32": "float32", "bf16": "bfloat16", "bfloat16": "bfloat16",
                           "int8": "int8", "qint8": "int8", "onnx": "onnx-int8", "onnx-int8": "onnx-int8",
                           "onnx-fp32": "onnx-fp32"}


def torch_query_precision() -> str:
    """The torch precision for queries when ONNX Runtime is not used: bfloat16 only on native-bf16 CPUs."""
    return "bfloat16" if cpu_has_native_bf16() else "float32"


def resolve_query_precision(requested: str | None, onnx_available: bool | None = None) -> str:
    """"onnx-int8", "onnx-fp32", "float32", "bfloat16" or "int8" for query encoding. "auto" picks
    onnx-int8 when onnxruntime is installed (3x less CPU than torch float32 at the same answers,
    benchmarks/encoder_speed.py), else torch_query_precision()."""
    choice = (requested or "auto").strip().lower()
    if choice == "auto":
        if onnx_available is None:
            onnx_available = onnx_runtime_available()
        return "onnx-int8" if onnx_available else torch_query_precision()
    if choice not in QUERY_PRECISION_ALIASES:
        raise ValueError(f"unknown query precision {choice!r}: use auto, onnx-int8, onnx-fp32, float32, bfloat16 "
                         "or int8")
    return QUERY_PRECISION_ALIASES[choice]


# BERT's feed-forward output layers (encoder.layer.N.output.dense) carry the activation outliers that
# int8 handles worst: quantizing them too cost 10 points of dense top-1 on the real questions
# (benchmarks/encoder_speed.py), so they stay float32.
_KEEP_FLOAT = re.compile(r"(^|\.)layer\.\d+\.output\.dense$")


def int8_query_model(model: Any) -> Any:
    """A copy of a float32 SentenceTransformer whose Linear layers are dynamically quantized to int8.

    Built at start-up from the float32 weights (nothing is downloaded or saved): weights int8 per
    output channel, activations quantized per call, the feed-forward output layers left float32.
    Everything that is not a quantized layer (the 250k-token embedding table, layer norms, the
    float32 layers) is shared with `model`, not copied.
    """
    import warnings

    import torch
    from torch.ao.quantization import per_channel_dynamic_qconfig

    quantize = {name: per_channel_dynamic_qconfig for name, module in model.named_modules()
                if isinstance(module, torch.nn.Linear) and not _KEEP_FLOAT.search(name)}
    shared: dict[int, Any] = {}
    for name, module in model.named_modules():
        if name not in quantize:
            for tensor in [*module.parameters(recurse=False), *module.buffers(recurse=False)]:
                shared[id(tensor)] = tensor
    quantized = copy.deepcopy(model, shared)
    with warnings.catch_warnings():  # torch.ao's notice that eager quantization moves to torchao
        warnings.simplefilter("ignore")
        torch.ao.quantization.quantize_dynamic(quantized, quantize, dtype=torch.qint8, inplace=True)
    return quantized


class LRUCache:
    """A thread-safe, bounded least-recently-used map (size 0 keeps nothing)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: str) -> np.ndarray | None:
        with self._lock:
            value = self._items.get(key)
            if value is None:
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return value

    def put(self, key: str, value: np.ndarray) -> None:
        if self.size <= 0:
            return
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)


def length_groups(lengths: Sequence[int], max_size: int, max_padding: float = 0.25) -> list[list[int]]:
    """Indexes grouped by similar length: each group (at most `max_size`) pads at most
    `max_padding` of its real length when padded to its longest member."""
    groups: list[list[int]] = []
    current: list[int] = []
    total = 0
    for i in sorted(range(len(lengths)), key=lengths.__getitem__):
        n = lengths[i] + 8  # the prompt and special tokens
        if current and (len(current) >= max_size or n * (len(current) + 1) > (1 + max_padding) * (total + n)):
            groups.append(current)
            current, total = [], 0
        current.append(i)
        total += n
    if current:
        groups.append(current)
    return groups


def _quiet_prompt_note(record: logging.LogRecord) -> bool:
    """Drop sentence-transformers' notice that the e5 model's default prompt is "query" (we pass prompts)."""
    return not str(record.msg).startswith("Default prompt name is set")


class DenseEncoder:
    """Wraps a SentenceTransformer; vectors are L2-normalized float32.

    Passages are always encoded by the torch float32 model (once, then cached on
    disk). Queries, the hot path, are by default ("auto") encoded by ONNX Runtime
    on an int8 export of the same model (retrieval/onnx_encoder.py), built once
    into `cache_dir` and reused: 3.7x less CPU than torch float32 and 2.8x less
    than bfloat16 for a short question, cosine >= 0.997 to float32's vector and
    the same accuracy on the tuning splits (retrieval.onnx_encoder.quantize). Without
    onnxruntime, a `cache_dir` or a working export, auto falls back (logged) to
    torch: a bfloat16 copy on CPUs with native bf16 (2-3x float32's throughput,
    cosine ~0.999), else float32. "int8" (opt-in) is torch's dynamic quantization
    (`int8_query_model`): 1.35x less CPU than float32 but dense top-1 differs from
    float32's on ~9% of questions, so auto never picks it (benchmarks/encoder_speed.py).
    """

    def __init__(self, model: str | Path, *, device: str = "cpu", threads: int | None = None,
                 query_precision: str | None = None, query_cache_size: int = 4096,
                 cache_dir: str | Path | None = None) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        import torch
        import transformers

        # A start-up log shows our own progress lines (retrieval/progress.py), not the libraries' weight-loading
        # bar and their note on the default prompt, which people read as errors (UX review).
        transformers.utils.logging.disable_progress_bar()
        logging.getLogger("sentence_transformers.base.model").addFilter(_quiet_prompt_note)
        if threads:
            torch.set_num_threads(threads)
        self.name = str(model)
        self._device = device
        # The float32 model encodes passages: loaded now if queries use it too (int8 is quantized from
        # it), else on the first passage the disk cache lacks (a warm start never needs it).
        self._passage_model: Any = None
        self._passage_lock = threading.Lock()
        self.query_precision = resolve_query_precision(query_precision)
        self.query_model: Any = None
        if self.query_precision in ONNX_PRECISIONS:
            self.query_model = self._onnx_query_model(cache_dir, threads)
            if self.query_model is None:
                self.query_precision = torch_query_precision()
        if self.query_model is None:
            self.query_model = self._torch_query_model()
            prompts = dict(getattr(self.query_model, "prompts", {}) or {})
            self.dim = int(self.query_model.get_embedding_dimension())
        else:
            prompts, self.dim = self.query_model.prompts, self.query_model.dim
        is_e5 = "e5" in self.name.lower()
        self.query_prompt = prompts.get("query", "query: " if is_e5 else "")
        self.passage_prompt = prompts.get("passage", "passage: " if is_e5 else "")
        self.fingerprint = _model_fingerprint(self.name)
        self.batcher: QueryBatcher | None = None
        # People ask the same few questions in the same words, in bursts after a post is shared.
        self.recent_queries = LRUCache(query_cache_size)

    def _torch_query_model(self) -> Any:
        import torch
        from sentence_transformers import SentenceTransformer

        if self.query_precision == "bfloat16":
            return SentenceTransformer(self.name, device=self._device, local_files_only=True,
                                       model_kwargs={"dtype": torch.bfloat16})
        return int8_query_model(self.model) if self.query_precision == "int8" else self.model

    def _onnx_query_model(self, cache_dir: str | Path | None, threads: int | None) -> OnnxQueryModel | None:
        """The ONNX Runtime query model (exported on the first start, then from `cache_dir`), or None
        with a log line saying why queries go through torch instead."""
        fallback = torch_query_precision()
        if cache_dir is None:
            log.info("no cache directory for the ONNX export: queries are encoded by torch (%s)", fallback)
            return None
        if not onnx_runtime_available():
            log.warning("onnxruntime is not installed: queries are encoded by torch (%s)", fallback)
            return None
        try:
            return load_or_build(self.name, cache_dir, self.query_precision, lambda: self.model, threads=threads,
                                 progress=lambda message: say(f"query encoder: {message}"))
        except Exception as exc:  # the service keeps answering, a little slower
            log.warning("ONNX query encoder unavailable (%s): queries are encoded by torch (%s)", exc, fallback)
            return None

    def describe(self) -> dict[str, Any]:
        """How queries are being encoded, for health checks and benchmarks."""
        batcher = self.batcher
        onnx = isinstance(self.query_model, OnnxQueryModel)
        return {"query_precision": self.query_precision,
                "query_threads": self.query_model.threads if onnx else None,
                "batches": batcher.batches if batcher else 0, "batched_queries": batcher.queries if batcher else 0,
                "query_cache_hits": self.recent_queries.hits, "query_cache_misses": self.recent_queries.misses}

    @property
    def model(self) -> Any:
        """The float32 SentenceTransformer (passages)."""
        with self._passage_lock:
            if self._passage_model is None:
                import torch
                from sentence_transformers import SentenceTransformer

                self._passage_model = SentenceTransformer(self.name, device=self._device, local_files_only=True,
                                                          model_kwargs={"dtype": torch.float32})
            return self._passage_model

    def enable_batching(self, max_batch: int = 32, threads: int | None = None, workers: int = 1) -> None:
        """Serve concurrent callers (a web server's threads) through one QueryBatcher: `workers`
        threads each run forward passes on `threads` CPU threads (default: torch's / the ONNX session's)."""
        if threads:
            import torch

            torch.set_num_threads(threads)
            if isinstance(self.query_model, OnnxQueryModel):
                self.query_model.set_threads(threads)
        if self.batcher is None:
            self.batcher = QueryBatcher(lambda texts: self.encode_queries(texts, max_batch), max_batch, workers)

    def encode_query(self, text: str) -> np.ndarray:
        cached = self.recent_queries.get(text)
        if cached is not None:
            return cached
        vector = self.batcher.encode(text) if self.batcher is not None else self.encode_queries([text], 1)[0]
        vector.setflags(write=False)  # shared by every caller that asks the same question
        self.recent_queries.put(text, vector)
        return vector

    def _encode(self, texts: Sequence[str], prompt: str, batch_size: int, model: Any = None) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = (self.model if model is None else model).encode(
            list(texts),
            prompt=prompt,
            batch_size=batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        vectors = np.asarray(vectors, dtype=np.float32)
        if model is not None and model is not self._passage_model:  # re-normalize after the low-precision pass
            vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        return vectors

    def encode_queries(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """Query vectors, in forward passes over texts of similar length.

        A batch is padded to its longest text, so one long letter among short
        questions would multiply the work (measured: 71 q/s for mixed batches of
        14 against 194 q/s for length-sorted ones).
        """
        if len(texts) <= 1:
            return self._encode(texts, self.query_prompt, batch_size, self.query_model)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for group in length_groups([len(t) for t in texts], batch_size):
            out[group] = self._encode([texts[i] for i in group], self.query_prompt, len(group), self.query_model)
        return out

    def encode_passages(self, texts: Sequence[str], batch_size: int = 16) -> np.ndarray:
        return self._encode(texts, self.passage_prompt, batch_size)

    def encode_queries_exact(self, texts: Sequence[str], batch_size: int = 16) -> np.ndarray:
        """Query-side vectors from the float32 model, whatever the query precision: training data
        (the entry classifier's) must not depend on the CPU it was built on."""
        return self._encode(texts, self.query_prompt, batch_size)


def _model_fingerprint(name: str) -> str:
    """Identify a model for the cache, independent of where a local copy lives.

    A local directory is identified by its files' names, sizes and small
    config files (so the same build under another path shares the cache); a
    hub name by itself.
    """
    path = Path(name)
    if not path.is_dir():
        return hashlib.sha256(name.encode()).hexdigest()[:16]
    h = hashlib.sha256(b"local")
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        h.update(f"{file.relative_to(path)}:{file.stat().st_size}".encode())
        if file.suffix == ".json" and file.stat().st_size < 100_000:
            h.update(file.read_bytes())
    return h.hexdigest()[:16]


def text_key(prompt: str, text: str) -> str:
    return hashlib.sha256(f"{prompt}\x00{text}".encode()).hexdigest()


class EmbeddingCache:
    """Passage vectors on disk, keyed by the hash of (prompt, text), one file per model.

    A restart re-encodes only texts that changed. A missing or unreadable file
    is treated as empty (and rewritten), never as a fatal error.
    """

    def __init__(self, directory: Path, fingerprint: str) -> None:
        self.path = Path(directory) / f"embeddings-{fingerprint}.npz"
        self._vectors: dict[str, np.ndarray] = {}
        self.hits = 0
        self.misses = 0
        self._load()

    def _load(self) -> None:
        if not self.path.exists():
            return
        try:
            with np.load(self.path, allow_pickle=False) as data:
                keys = [str(k) for k in data["keys"]]
                matrix = data["vectors"]
            if len(keys) != len(matrix):
                raise ValueError("keys and vectors differ in length")
            self._vectors = dict(zip(keys, matrix, strict=True))
        except Exception as exc:  # corrupt or truncated: rebuild rather than crash
            log.warning("embedding cache %s unreadable (%s); it will be rebuilt", self.path, exc)
            self._vectors = {}

    def encode_passages(self, encoder: DenseEncoder, texts: Sequence[str]) -> np.ndarray:
        return self._cached(encoder, texts, encoder.passage_prompt, encoder.encode_passages)

    def encode_queries(self, encoder: DenseEncoder, texts: Sequence[str]) -> np.ndarray:
        """Float32 query-side vectors (the entry classifier's training texts), cached like passages."""
        return self._cached(encoder, texts, encoder.query_prompt, encoder.encode_queries_exact)

    def _cached(self, encoder: DenseEncoder, texts: Sequence[str], prompt: str,
                encode: Callable[[list[str]], np.ndarray]) -> np.ndarray:
        keys = [text_key(prompt, t) for t in texts]
        missing = sorted({k: t for k, t in zip(keys, texts, strict=True) if k not in self._vectors}.items())
        self.misses += len(missing)
        self.hits += len(keys) - len(missing)
        if missing:
            vectors = encode([t for _, t in missing])
            for (key, _), vec in zip(missing, vectors, strict=True):
                self._vectors[key] = vec
            self.save()
        if not keys:
            return np.zeros((0, encoder.dim), dtype=np.float32)
        return np.stack([self._vectors[k] for k in keys]).astype(np.float32)

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        keys = np.array(list(self._vectors.keys()))
        matrix = np.stack(list(self._vectors.values())) if self._vectors else np.zeros((0, 0))
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, suffix=".npz.tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                np.savez(fh, keys=keys, vectors=matrix)
            os.replace(tmp, self.path)
        except OSError as exc:  # read-only or full disk: keep serving from memory
            log.warning("could not write embedding cache %s: %s", self.path, exc)
            Path(tmp).unlink(missing_ok=True)

    def describe(self) -> dict[str, object]:
        return {"path": str(self.path), "entries": len(self._vectors), "hits": self.hits,
                "misses": self.misses}

