"""The query side of the dense encoder in ONNX Runtime, exported offline from the local model.

A sentence-transformers model made of Transformer -> mean Pooling (-> Normalize), the offline e5
of retrieval/offline_model.py, is exported with torch's own exporter (nothing is downloaded),
pooling and L2 normalisation inside the graph, then (for "onnx-int8") dynamically quantized by
ONNX Runtime: weights int8 per output channel, activations quantized per call, the middle layers'
feed-forward outputs kept float32 (`quantize`). On this 2-core CPU that is 2.8x less CPU per query
than torch bfloat16 and 3.7x less than float32, at float32's accuracy on the tuning splits
(benchmarks/encoder_speed.py).

The export is cached under the data directory's cache, in a directory named by a key over the
model files' content, the export recipe and the versions of the exporting libraries, so a changed
model or exporter builds a new one and a restart reuses it. A directory is complete only when its
marker (written last, after a check against the torch model) is there; a missing, partial or
corrupt one is rebuilt. Passages stay float32 torch vectors in the embedding cache.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
import logging
import os
import re
import shutil
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from retrieval.offline_model import build_lock

log = logging.getLogger(__name__)

ONNX_PRECISIONS = ("onnx-int8", "onnx-fp32")
#: Bump when the exported graph or its quantization changes: every cached export is rebuilt.
EXPORT_RECIPE = 3
MARKER = "export.json"
GRAPH = "model.onnx"
# A build is checked against torch float32 on this text; a load against the build's own output.
PROBE = "Tôi đóng bảo hiểm xã hội tự nguyện được 12 năm, nay muốn rút một lần có được không?"
MIN_BUILD_COSINE = 0.98  # ONNX vs torch float32 (int8 measured >= 0.99)
MIN_LOAD_COSINE = 0.9999  # the same graph on the same text: anything less is a damaged file
_MODULE_TYPES = ("Transformer", "Pooling", "Normalize")


def onnx_runtime_available() -> bool:
    return importlib.util.find_spec("onnxruntime") is not None and importlib.util.find_spec("onnx") is not None


def exportable(model_dir: str | Path) -> str | None:
    """Why `model_dir` cannot go through ONNX (None when it can): a local sentence-transformers
    directory of Transformer -> mean Pooling (-> Normalize), the offline e5's layout."""
    directory = Path(model_dir)
    try:
        modules = json.loads((directory / "modules.json").read_text(encoding="utf-8"))
        types = [m["type"].rsplit(".", 1)[-1] for m in modules]
        if types not in (list(_MODULE_TYPES), list(_MODULE_TYPES[:2])):
            return f"modules {types} are not Transformer, Pooling, Normalize"
        pooling = json.loads((directory / modules[1]["path"] / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, KeyError, IndexError) as exc:
        return f"not a local sentence-transformers directory ({exc})"
    if pooling.get("pooling_mode", "mean" if pooling.get("pooling_mode_mean_tokens") else None) != "mean":
        return f"pooling {pooling} is not mean pooling"
    return None


def model_digest(model_dir: str | Path) -> str:
    """sha256 over the model files' names and contents (the build's README and marker left out: a
    rebuild of the same weights keeps the export)."""
    directory = Path(model_dir)
    digest = hashlib.sha256()
    for file in sorted(p for p in directory.rglob("*") if p.is_file()):
        if file.name in ("README.md", "bhxh-build.json"):
            continue
        digest.update(str(file.relative_to(directory)).encode() + b"\0")
        with open(file, "rb") as fh:
            digest.update(hashlib.file_digest(fh, "sha256").digest())
    return digest.hexdigest()


def _versions() -> dict[str, str]:
    versions = {}
    for name in ("torch", "onnx", "onnxruntime"):
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "missing"
    return versions


def export_dir(cache_dir: str | Path, model_dir: str | Path, precision: str) -> Path:
    """Where the export of `model_dir` at `precision` lives: named by the model's content, the
    recipe and the exporter versions."""
    if precision not in ONNX_PRECISIONS:
        raise ValueError(f"ONNX precision must be one of {ONNX_PRECISIONS}, got {precision!r}")
    recipe = json.dumps({"model": model_digest(model_dir), "recipe": EXPORT_RECIPE, "versions": _versions()},
                        sort_keys=True)
    return Path(cache_dir) / f"{precision}-{hashlib.sha256(recipe.encode()).hexdigest()[:16]}"


def export_graph(model: Any, path: Path) -> None:
    """The float32 SentenceTransformer's forward pass, mean pooling and normalisation as one graph:
    inputs input_ids and attention_mask [batch, tokens], output the unit vector [batch, dim]."""
    import torch

    class Pooled(torch.nn.Module):
        def __init__(self, transformer: torch.nn.Module) -> None:
            super().__init__()
            self.transformer = transformer

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            hidden = self.transformer(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, dim=-1)

    sample = model.tokenizer(["query: mức đóng bảo hiểm xã hội", "query: rút một lần"], padding=True,
                             return_tensors="pt")
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the legacy exporter's deprecation and tracer notes
        # dynamo=False: the TorchScript exporter needs no onnxscript and gives the plain MatMul graph
        # that ONNX Runtime's quantizer knows.
        torch.onnx.export(Pooled(model[0].auto_model.eval()), (sample["input_ids"], sample["attention_mask"]),
                          str(path), dynamo=False, input_names=["input_ids", "attention_mask"],
                          output_names=["embedding"], opset_version=17,
                          dynamic_axes={"input_ids": {0: "batch", 1: "tokens"},
                                        "attention_mask": {0: "batch", 1: "tokens"}, "embedding": {0: "batch"}})


class _QuietQuantizer(logging.Filter):
    """Drops ONNX Runtime's quantizer lines (it logs a note per tensor on the root logger)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "onnxruntime" not in Path(record.pathname).parts


_FFN_OUTPUT = re.compile(r"layer\.(\d+)/output/dense/")


def ffn_output_matmuls(graph: Path, layers: Iterable[int] | None = None) -> list[str]:
    """The MatMul nodes of BERT's feed-forward outputs (`layer.N.output.dense`) in `layers`; None: the
    middle third of the layers (4-7 of e5-small's 12)."""
    import onnx

    found = [(int(match[1]), node.name) for node in onnx.load(str(graph)).graph.node
             if node.op_type == "MatMul" and (match := _FFN_OUTPUT.search(node.name))]
    count = max((layer for layer, _ in found), default=-1) + 1
    wanted = set(range(count // 3, 2 * count // 3) if layers is None else layers)
    return [name for layer, name in found if layer in wanted]


def quantize(float_graph: Path, out: Path, *, float_nodes: Sequence[str] | None = None, **options: Any) -> None:
    """ONNX Runtime's dynamic int8 quantization of `float_graph` into `out`: weights int8 per output
    channel, activations quantized per run, the MatMuls named in `float_nodes` left float32 (None: the
    middle third's feed-forward outputs, production's recipe). `options` go to `quantize_dynamic`.

    Measured against torch float32 (benchmarks/encoder_speed.py, tuning splits, one thread): every
    MatMul int8 was the fastest (9.1 ms CPU a short question; bf16 28.5, float32 38.8) but lost 2.8
    points of real questions answered right (7 gained, 14 lost) and 2.3-2.5 of off-topic declined;
    the middle third's feed-forward outputs kept float32 (their activations carry BERT's outliers)
    cost 10.3 ms and matched float32 (real right 0.628 = 0.628, 6 gained and 6 lost; ours right +1.3,
    off-topic declined +2.4, real off-topic declined -1.2); all twelve float32: 12.3 ms, no better.
    Per tensor instead of per channel: as fast, cosine to float32 min 0.972 against 0.991."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    if float_nodes is None:
        float_nodes = ffn_output_matmuls(float_graph)
    quiet = _QuietQuantizer()
    logging.getLogger().addFilter(quiet)
    try:
        quantize_dynamic(str(float_graph), str(out), weight_type=QuantType.QInt8,
                         **({"per_channel": True, "nodes_to_exclude": list(float_nodes)} | options))
    finally:
        logging.getLogger().removeFilter(quiet)


def export_marker(model: Any, model_dir: str | Path, precision: str) -> dict[str, Any]:
    """What OnnxQueryModel needs to know about a graph exported from `model` (and what built it)."""
    return {"precision": precision, "recipe": EXPORT_RECIPE, "versions": _versions(), "model": str(model_dir),
            "max_length": int(model.max_seq_length), "dim": int(model.get_embedding_dimension()),
            "prompts": dict(getattr(model, "prompts", {}) or {})}


def build_export(model: Any, model_dir: str | Path, out_dir: Path, precision: str,
                 progress: Callable[[str], None] | None = None) -> Path:
    """Export `model` (the float32 SentenceTransformer loaded from `model_dir`) into `out_dir`, checked
    against torch on PROBE; built beside it and renamed into place, the marker written last."""
    say = progress or (lambda _message: None)
    started = time.perf_counter()
    marker = export_marker(model, model_dir, precision) | {"model_digest": model_digest(model_dir)}
    query_prompt = marker["prompts"].get("query", "")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.build-", dir=out_dir.parent))
    try:
        say(f"exporting {Path(model_dir).name} to ONNX …")
        float_graph = work / "float32.onnx"
        export_graph(model, float_graph)
        if precision == "onnx-int8":
            say("quantizing to int8 …")
            quantize(float_graph, work / GRAPH)
            float_graph.unlink()
        else:
            float_graph.rename(work / GRAPH)
        reference = np.asarray(model.encode([PROBE], prompt=query_prompt, normalize_embeddings=True,
                                            convert_to_numpy=True, show_progress_bar=False), dtype=np.float32)[0]
        probe = OnnxQueryModel(work, marker=marker, threads=1).encode([PROBE], prompt=query_prompt)[0]
        cosine = float(probe @ reference)
        if not cosine >= MIN_BUILD_COSINE:
            raise ValueError(f"ONNX export disagrees with torch: cosine {cosine:.4f} < {MIN_BUILD_COSINE}")
        marker |= {"probe": probe.tolist(), "probe_cosine_to_torch": cosine,
                   "build_seconds": round(time.perf_counter() - started, 1),
                   "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        (work / MARKER).write_text(json.dumps(marker, ensure_ascii=False), encoding="utf-8")
        work.chmod(0o755)  # mkdtemp's 0700
        if out_dir.exists():  # a damaged earlier build: moved aside, deleted with the work directory
            os.replace(out_dir, work / "previous")
        os.replace(work, out_dir)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    shutil.rmtree(out_dir / "previous", ignore_errors=True)
    _remove_superseded(out_dir, marker["model_digest"])
    say(f"{precision} ready in {time.perf_counter() - started:.1f} s (cosine to torch float32 {cosine:.4f})")
    return out_dir


def _remove_superseded(current: Path, digest: str) -> None:
    """Delete the earlier exports of the same model at the same precision (another recipe or library
    version): each is 120-450 MB and nothing loads it again. A running process keeps its session."""
    for other in current.parent.glob(current.name.rsplit("-", 1)[0] + "-*"):
        try:
            if other != current and json.loads((other / MARKER).read_text("utf-8")).get("model_digest") == digest:
                shutil.rmtree(other, ignore_errors=True)
        except (OSError, ValueError):
            continue  # not an export, or one being built


class OnnxQueryModel:
    """An exported graph in an ONNX Runtime session, with SentenceTransformer's `encode` signature.

    One session serves every thread: `InferenceSession.run` may be called concurrently, and the
    tokenizer's truncation and padding are fixed once here (a Rust tokenizer whose settings change
    per call fails with "Already borrowed" under concurrent use). `threads` is ONNX Runtime's
    intra-op thread count per run, default 1: one question's pass is too small to split across the
    cores of a shared 2-core machine (measured under a load average of 4-5: a lone caller's short
    question 13 ms median with 1 thread, 24 ms with 2); concurrency comes from callers side by side
    (QueryBatcher workers: 16 concurrent callers got 52-62 queries/s whichever of 1x1, 1x2, 2x1
    workers x threads, against 25-44 for torch bf16; benchmarks/encoder_speed.py --concurrency).
    """

    def __init__(self, directory: Path, *, model_dir: str | Path | None = None, marker: dict[str, Any] | None = None,
                 threads: int | None = None) -> None:
        from tokenizers import Tokenizer

        self.directory = Path(directory)
        self.marker = marker if marker is not None else json.loads((self.directory / MARKER).read_text("utf-8"))
        self.precision: str = self.marker["precision"]
        self.prompts: dict[str, str] = dict(self.marker.get("prompts") or {})
        self.max_seq_length: int = int(self.marker["max_length"])
        self.dim: int = int(self.marker["dim"])
        model_dir = Path(model_dir or self.marker["model"])  # the tokenizer: the same content wherever it lives
        tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        tokenizer.enable_truncation(self.max_seq_length)
        config = json.loads((model_dir / "tokenizer_config.json").read_text(encoding="utf-8"))
        pad_token = config.get("pad_token") or "<pad>"
        pad_id = tokenizer.token_to_id(pad_token)
        tokenizer.enable_padding(pad_id=0 if pad_id is None else pad_id, pad_token=pad_token)
        self.tokenizer = tokenizer
        self._threads_lock = threading.Lock()
        self.threads = 0
        self.session: Any = None
        self.set_threads(threads or 1)

    def set_threads(self, threads: int) -> None:
        """Intra-op threads per run; the session is rebuilt (ONNX Runtime fixes the count at creation)."""
        import onnxruntime as ort

        with self._threads_lock:
            if threads == self.threads:
                return
            options = ort.SessionOptions()
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
            options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
            # Idle pool threads sleep instead of spinning: the machine's cores are shared with the server.
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            options.log_severity_level = 3  # errors only: not the optimizer's notes on each start
            self.session = ort.InferenceSession(str(self.directory / GRAPH), options,
                                                providers=["CPUExecutionProvider"])
            self.threads = threads

    def encode(self, texts: Sequence[str], prompt: str = "", **_: Any) -> np.ndarray:
        """Unit vectors of `prompt + text` (SentenceTransformer.encode's other arguments are ignored:
        the graph always pools and normalizes)."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        encodings = self.tokenizer.encode_batch([prompt + text for text in texts])
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        (vectors,) = self.session.run(None, {"input_ids": ids, "attention_mask": mask})
        return np.asarray(vectors, dtype=np.float32)

    def check(self) -> None:
        """ValueError unless the graph still gives the build's vector for PROBE (a damaged file)."""
        probe = np.asarray(self.marker["probe"], dtype=np.float32)
        cosine = float(self.encode([PROBE], prompt=self.prompts.get("query", ""))[0] @ probe)
        if not cosine >= MIN_LOAD_COSINE:
            raise ValueError(f"ONNX export {self.directory} gives another vector than when built (cosine {cosine})")


def load_or_build(model_dir: str | Path, cache_dir: str | Path, precision: str, float_model: Callable[[], Any],
                  *, threads: int | None = None, progress: Callable[[str], None] | None = None) -> OnnxQueryModel:
    """The ONNX query model of `model_dir`, from the cache, or exported from `float_model()` (the float32
    SentenceTransformer, loaded only when a build is needed) when missing, partial or damaged.
    Raises when the export cannot be built or loaded: the caller falls back to torch."""
    reason = exportable(model_dir)
    if reason:
        raise ValueError(reason)
    directory = export_dir(cache_dir, model_dir, precision)
    try:
        model = OnnxQueryModel(directory, model_dir=model_dir, threads=threads)
        model.check()
        return model
    except FileNotFoundError:
        pass  # not built yet
    except Exception as exc:
        log.warning("ONNX query encoder at %s is damaged (%s); rebuilding it", directory, exc)
    directory.parent.mkdir(parents=True, exist_ok=True)
    with build_lock(directory):
        try:  # another process may have built it while this one waited
            model = OnnxQueryModel(directory, model_dir=model_dir, threads=threads)
            model.check()
            return model
        except Exception:
            build_export(float_model(), model_dir, directory, precision, progress)
    model = OnnxQueryModel(directory, model_dir=model_dir, threads=threads)
    model.check()
    return model
