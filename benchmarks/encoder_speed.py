"""Query-encoder options side by side: speed, agreement with float32, and accuracy.

    python -m benchmarks.encoder_speed                    # every option, threads 1 and 2
    python -m benchmarks.encoder_speed --options fp32,int8 --threads 1 --limit 60
    python -m benchmarks.encoder_speed --no-accuracy      # latency and agreement only

Timing inputs are exactly the texts the engine hands the encoder (a short
question as restored; a letter's focus, not the whole story), recorded while
the engine answers the questions `bhxh bench` asks: eval/questions.yaml (short
= every variant but letters) and the letters of both sets. They are timing
inputs only. Each text is encoded once per option, the options interleaved
text by text so the shared machine's load falls on all of them alike; wall
time and this process's CPU time are both reported (CPU time is what the work
costs, wall time what a user waits on a busy machine).

Options (query side only; passages stay float32 vectors from the disk cache):

  fp32        the float32 SentenceTransformer, as without a precision setting
  bf16        a bfloat16 copy (what `auto` picks on CPUs with native bf16)
  int8        torch dynamic int8 quantization of every Linear layer of a float32 copy (per tensor)
  int8-pc     the same, per output channel
  int8-mixed  per channel, the feed-forward output layers (BERT's outlier-prone ones) left float32:
              retrieval.dense.int8_query_model, what BHXH_QUERY_PRECISION=int8 runs
  fp32-seq128 float32 with max_seq_length 128 (letters' focus truncated; short questions never reach it)
  ort-fp32    ONNX Runtime on the graph exported from var/models (offline): BHXH_QUERY_PRECISION=onnx-fp32
  ort-int8    that graph with ONNX Runtime's dynamic int8 quantization per channel, the middle third's
              feed-forward outputs left float32: onnx-int8, what auto runs (retrieval.onnx_encoder.quantize)
  ort-int8-all    every MatMul int8 per channel (research: faster, less accurate)
  ort-int8-pt     the same per tensor (research)
  ort-int8-mixed  per channel, every layer's feed-forward output left float32 (int8-mixed's recipe; research)

Agreement: cosine of each option's query vector to the float32 one, and how
often the dense ranking's top entry is the same. Accuracy: on the TUNING splits
only (never the held-out halves), dense top-1 and the whole engine (hybrid
top-1, answered right / wrong, and `ask` on the real questions judged by facts).
"""

from __future__ import annotations

import argparse
import copy
import os
import time
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from bot import real_eval
from bot.engine import OOS_PREFIX, Engine
from bot.evaluation import EVAL_FILE, load_eval, metrics, retrieve_all
from bot.settings import load_settings, resolve_model
from knowledge.schema import load_knowledge
from retrieval.dense import DenseEncoder, LRUCache, int8_query_model
from retrieval.evaluation import markdown_table, percentile
from retrieval.onnx_encoder import (
    GRAPH,
    OnnxQueryModel,
    export_graph,
    export_marker,
    ffn_output_matmuls,
    load_or_build,
    quantize,
)

OPTIONS = ("fp32", "bf16", "int8", "int8-pc", "int8-mixed", "fp32-seq128", "ort-fp32", "ort-int8", "ort-int8-all",
           "ort-int8-pt", "ort-int8-mixed")
DEFAULT_OPTIONS = ("fp32", "bf16", "int8-mixed", "ort-fp32", "ort-int8")


RESEARCH_QUANTIZATION: dict[str, dict[str, Any]] = {
    "ort-int8-all": {"float_nodes": ()}, "ort-int8-pt": {"float_nodes": (), "per_channel": False},
    "ort-int8-mixed": {"float_layers": range(12)}}


def research_graph(model: Any, model_dir: str, workdir: Path, name: str) -> OnnxQueryModel:
    """A quantization recipe production does not use, built (once) in `workdir` from the same float32 export:
    ort-int8-all every MatMul per channel; ort-int8-pt the same per tensor; ort-int8-mixed per channel with
    every layer's feed-forward output MatMul left float32 (production keeps the middle third's)."""
    float_dir = workdir / "float32"
    if not (float_dir / GRAPH).exists():
        float_dir.mkdir(parents=True, exist_ok=True)
        export_graph(model, float_dir / GRAPH)
    out = workdir / name
    if not (out / GRAPH).exists():
        options = dict(RESEARCH_QUANTIZATION[name])
        if "float_layers" in options:
            options["float_nodes"] = ffn_output_matmuls(float_dir / GRAPH, options.pop("float_layers"))
        out.mkdir(parents=True, exist_ok=True)
        quantize(float_dir / GRAPH, out / GRAPH, **options)
    return OnnxQueryModel(out, marker=export_marker(model, model_dir, name), threads=1)


def build_options(names: Sequence[str], fp32: Any, model_dir: str, cache_dir: Path, threads: int) -> dict[str, Any]:
    """name -> an object with SentenceTransformer's `encode` (and max_seq_length when it is one)."""
    import torch

    out: dict[str, Any] = {}
    for name in names:
        if name == "fp32":
            out[name] = fp32
        elif name == "bf16":
            out[name] = copy.deepcopy(fp32).to(torch.bfloat16)
        elif name in ("int8", "int8-pc"):
            qconfig = (torch.ao.quantization.default_dynamic_qconfig if name == "int8"
                       else torch.ao.quantization.per_channel_dynamic_qconfig)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                out[name] = torch.ao.quantization.quantize_dynamic(copy.deepcopy(fp32), {torch.nn.Linear: qconfig},
                                                                   dtype=torch.qint8)
        elif name == "int8-mixed":
            out[name] = int8_query_model(fp32)
        elif name == "fp32-seq128":
            out[name] = _TruncatedModel(fp32, 128)  # shares the weights; only the truncation differs
        elif name in ("ort-fp32", "ort-int8"):  # production's exports (BHXH_QUERY_PRECISION=onnx-fp32 / onnx-int8)
            t0 = time.perf_counter()
            out[name] = load_or_build(model_dir, cache_dir, "onnx-" + name[4:], lambda: fp32, threads=threads)
            print(f"{name}: ready in {time.perf_counter() - t0:.1f} s ({out[name].directory})")
        elif name in RESEARCH_QUANTIZATION:
            out[name] = research_graph(fp32, model_dir, cache_dir / "onnx-research", name)
        else:
            raise SystemExit(f"unknown option {name!r}: choose from {', '.join(OPTIONS)}")
    return out


class _TruncatedModel:
    """The float32 model with a shorter max_seq_length for the duration of each call."""

    def __init__(self, model: Any, max_length: int) -> None:
        self.model, self.max_length = model, max_length

    def encode(self, texts: Sequence[str], **kwargs: Any) -> np.ndarray:
        saved = self.model.max_seq_length
        self.model.max_seq_length = self.max_length
        try:
            return self.model.encode(list(texts), **kwargs)
        finally:
            self.model.max_seq_length = saved


def record_encoder_texts(engine: Engine, encoder: DenseEncoder, questions: Sequence[str]) -> list[str]:
    """The texts the engine asks the encoder for while answering `questions` (in order, once each)."""
    seen: list[str] = []
    original = encoder.encode_query

    def recording(text: str) -> np.ndarray:
        seen.append(text)
        return original(text)

    encoder.encode_query = recording  # type: ignore[method-assign]
    try:
        for q in questions:
            engine.ask(q)
    finally:
        del encoder.encode_query
    return list(dict.fromkeys(seen))


@contextmanager
def query_model(encoder: DenseEncoder, model: Any) -> Iterator[None]:
    """The engine's encoder with `model` on the query side and an empty recent-query cache."""
    saved = encoder.query_model, encoder.recent_queries
    encoder.query_model, encoder.recent_queries = model, LRUCache(0)
    try:
        yield
    finally:
        encoder.query_model, encoder.recent_queries = saved


def time_options(encoder: DenseEncoder, options: dict[str, Any], texts: Sequence[str],
                 ) -> dict[str, tuple[list[float], list[float]]]:
    """name -> (wall seconds, CPU seconds) per text, the options interleaved text by text."""
    out: dict[str, tuple[list[float], list[float]]] = {name: ([], []) for name in options}
    for model in options.values():  # warm-up: first calls allocate
        for text in texts[:3]:
            with query_model(encoder, model):
                encoder.encode_queries([text], 1)
    for text in texts:
        for name, model in options.items():
            with query_model(encoder, model):
                w0, c0 = time.perf_counter(), time.process_time()
                encoder.encode_queries([text], 1)
                out[name][1].append(time.process_time() - c0)
                out[name][0].append(time.perf_counter() - w0)
    return out


def engine_latency(engine: Engine, encoder: DenseEncoder, options: dict[str, Any], questions: Sequence[str],
                   ) -> dict[str, tuple[list[float], list[float]]]:
    """`bhxh bench`'s first-time `ask` latency (no cached query vector), the options interleaved question
    by question: name -> (wall seconds, CPU seconds) per question."""
    out: dict[str, tuple[list[float], list[float]]] = {name: ([], []) for name in options}
    for question in questions:
        for name, model in options.items():
            with query_model(encoder, model):
                w0, c0 = time.perf_counter(), time.process_time()
                engine.ask(question)
                out[name][1].append(time.process_time() - c0)
                out[name][0].append(time.perf_counter() - w0)
    return out


def agreement(engine: Engine, encoder: DenseEncoder, options: dict[str, Any], texts: Sequence[str],
              ) -> dict[str, dict[str, float]]:
    """Cosine of each option's query vectors to float32's, and dense top-1 agreement."""
    index = engine.index
    reference = encoder.encode_queries_exact(list(texts))

    def top_ids(vectors: np.ndarray) -> list[str]:
        return [index.ids[int(np.argmax(index._dense_from_vector(v)))] for v in vectors]

    ref_top = top_ids(reference)
    out = {}
    for name, model in options.items():
        with query_model(encoder, model):
            vectors = np.stack([encoder.encode_queries([t], 1)[0] for t in texts])
        cosines = (vectors * reference).sum(1)
        same = sum(a == b for a, b in zip(top_ids(vectors), ref_top, strict=True))
        out[name] = {"cos_min": float(cosines.min()), "cos_p1": percentile(list(cosines), 1),
                     "cos_mean": float(cosines.mean()), "top1_same": same / len(texts)}
    return out


def accuracy(engine: Engine, encoder: DenseEncoder, model: Any, ours: Sequence[Any], real: Sequence[Any],
             ) -> tuple[dict[str, float], dict[str, str]]:
    """Tuning splits only (`ours` and `real` are those): dense and hybrid top-1 and decisions on our set; the
    real questions through `ask`. Also each real question's verdict (id -> right/wrong/choices/declined)."""
    with query_model(encoder, model):
        dense = metrics(engine, retrieve_all(engine, ours, "dense"), engine.thresholds)
        hybrid = metrics(engine, retrieve_all(engine, ours, "hybrid"), engine.thresholds)
        labelled = [q for q in real if q.in_scope and q.expected]
        real_dense = [next((c.entry_id for c in engine.candidates(q.question, mode="dense")
                            if not c.entry_id.startswith(OOS_PREFIX)), None) in q.expected for q in labelled]
        judged = real_eval.judge_all(engine.ask, real)
    summary = real_eval.summary(judged)
    return ({"ours dense top1": dense["top1"], "ours top1": hybrid["top1"],
             "ours right": hybrid["answered_right"], "ours wrong": hybrid["answered_wrong"],
             "ours off declined": hybrid["off_topic_declined"],
             "real dense top1": sum(real_dense) / max(len(real_dense), 1), "real top1": summary["top1"],
             "real right": summary["answered_right"], "real wrong": summary["answered_wrong"],
             "real off declined": summary["off_topic_declined"]},
            {j.question.id: j.verdict for j in judged})


def use_threads(options: dict[str, Any], threads: int) -> None:
    """Intra-op threads for torch and for every ONNX Runtime session (rebuilt: its count is fixed at creation)."""
    import torch

    torch.set_num_threads(threads)
    for model in options.values():
        if isinstance(model, OnnxQueryModel):
            model.set_threads(threads)


def concurrent_throughput(encoder: DenseEncoder, model: Any, texts: Sequence[str], clients: int, workers: int,
                          threads: int, seconds: float) -> dict[str, float]:
    """`clients` threads asking distinct texts through a QueryBatcher of `workers` x `threads` (as the web
    server does) for `seconds`: queries/s, latency median and p99 (ms), and CPU ms per query."""
    import threading

    from retrieval.dense import QueryBatcher

    use_threads({"model": model}, threads)
    latencies: list[float] = []
    lock = threading.Lock()
    counter = iter(range(10**9))
    with query_model(encoder, model):
        batcher = QueryBatcher(lambda batch: encoder.encode_queries(batch, 32), 32, workers)
        deadline = time.perf_counter() + seconds

        def client() -> None:
            while time.perf_counter() < deadline:
                text = texts[next(counter) % len(texts)]
                t0 = time.perf_counter()
                batcher.encode(text)
                with lock:
                    latencies.append(time.perf_counter() - t0)

        c0, w0 = time.process_time(), time.perf_counter()
        pool = [threading.Thread(target=client) for _ in range(clients)]
        for thread in pool:
            thread.start()
        for thread in pool:
            thread.join()
        wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    return {"queries/s": len(latencies) / wall, "median ms": _ms(latencies, 50), "p99 ms": _ms(latencies, 99),
            "CPU ms/query": cpu * 1000 / max(len(latencies), 1), "queries per pass": batcher.queries / batcher.batches}


def _ms(values: Sequence[float], q: float) -> float:
    return percentile([v * 1000 for v in values], q)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--options", default=",".join(DEFAULT_OPTIONS), help=f"from {', '.join(OPTIONS)}")
    parser.add_argument("--threads", default="1,2", help="torch / ONNX Runtime intra-op threads to try")
    parser.add_argument("--limit", type=int, default=150, help="timing questions per group, a fixed sample (0 = all)")
    parser.add_argument("--no-accuracy", action="store_true")
    parser.add_argument("--concurrency", type=int, default=0, metavar="CLIENTS",
                        help="also run CLIENTS concurrent callers through a QueryBatcher per option, for workers x "
                             "threads 1x1, 1x2 and 2x1 (the web server's choice), --seconds each")
    parser.add_argument("--seconds", type=float, default=15, help="seconds per --concurrency run")
    parser.add_argument("--engine", action="store_true",
                        help="also time whole `ask` calls per option (bhxh bench's first-time latency)")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    settings = load_settings()
    model_path = resolve_model(settings)
    if not model_path:
        raise SystemExit("no dense model configured")
    torch.set_num_threads(1)  # recording and accuracy passes: two threads crawl on a loaded machine
    encoder = DenseEncoder(model_path, query_precision="float32")
    engine = Engine(load_knowledge(), encoder, cache_dir=settings.cache_dir)
    ours = load_eval(EVAL_FILE)
    real = real_eval.load_real()
    groups = {"short": [q.question for q in ours if q.variant != "letter"],
              "letters": [q.question for q in ours if q.variant == "letter"]
              + [q.question for q in real if q.style == "letter"]}
    rng = np.random.default_rng(0)
    for name, group in groups.items():
        if args.limit and len(group) > args.limit:
            groups[name] = [group[i] for i in sorted(rng.choice(len(group), args.limit, replace=False))]
    texts = {name: record_encoder_texts(engine, encoder, qs) for name, qs in groups.items()}
    for name in texts:
        lengths = [len(encoder.query_model.tokenizer(encoder.query_prompt + t)["input_ids"]) for t in texts[name]]
        print(f"{name}: {len(texts[name])} encoder texts, tokens median {int(np.median(lengths))}, "
              f"max {max(lengths)}")
    names = [n.strip() for n in args.options.split(",") if n.strip()]
    thread_counts = [int(n) for n in args.threads.split(",")]
    options = build_options(names, encoder.query_model, model_path, settings.cache_dir, thread_counts[0])
    for threads in thread_counts:
        rows = []
        use_threads(options, threads)
        for group, group_texts in texts.items():
            timed = time_options(encoder, options, group_texts)
            base = np.median(timed[names[0]][1]) if names[0] in timed else float("nan")
            for name, (wall, cpu) in timed.items():
                rows.append([name, threads, group, _ms(wall, 50), _ms(wall, 99), _ms(cpu, 50), _ms(cpu, 99),
                             base / np.median(cpu)])
        print(f"\n## Latency per text (ms), {threads} thread(s); speed-up = CPU-time median of "
              f"{names[0]} / this option's\n")
        print(markdown_table(["option", "threads", "texts", "wall median", "wall p99", "CPU median", "CPU p99",
                              "speed-up (CPU)"], rows))
        if args.engine:
            rows = []
            for group, questions in groups.items():
                timed = engine_latency(engine, encoder, options, questions)
                base = np.median(timed[names[0]][1]) if names[0] in timed else float("nan")
                rows += [[name, threads, group, _ms(wall, 50), _ms(wall, 99), _ms(cpu, 50), _ms(cpu, 99),
                          base / np.median(cpu)] for name, (wall, cpu) in timed.items()]
            print(f"\n## Whole `ask` per question, first time (ms), {threads} thread(s)\n")
            print(markdown_table(["option", "threads", "questions", "wall median", "wall p99", "CPU median",
                                  "CPU p99", "speed-up (CPU)"], rows))
    if args.concurrency:
        rows = []
        mixed = [t for pair in zip(texts["short"], texts["letters"], strict=False) for t in pair]
        for name, model in options.items():
            for workers, threads in ((1, 1), (1, 2), (2, 1)):
                result = concurrent_throughput(encoder, model, mixed, args.concurrency, workers, threads, args.seconds)
                rows.append([name, f"{workers}x{threads}", *result.values()])
        print(f"\n## {args.concurrency} concurrent callers, short and letter texts alternating, {args.seconds:.0f} s "
              "each (workers x threads)\n")
        print(markdown_table(["option", "workers x threads", "queries/s", "median ms", "p99 ms", "CPU ms/query",
                              "queries per pass"], rows))
    use_threads(options, 1)
    all_texts = texts["short"] + texts["letters"]
    agree = agreement(engine, encoder, options, all_texts)
    print(f"\n## Agreement with float32 query vectors ({len(all_texts)} texts)\n")
    print(markdown_table(["option", "cosine min", "cosine p1", "cosine mean", "dense top-1 same"],
                         [[n, a["cos_min"], a["cos_p1"], a["cos_mean"], a["top1_same"]] for n, a in agree.items()]))
    if not args.no_accuracy:
        # Loaded once: the sets may grow while this runs, and every option must see the same questions.
        ours_tune = [q for q in ours if q.split == "tune"]
        real_tune = [q for q in real if q.split == "tune"]
        print(f"\n## Accuracy on the tuning splits (ours: {len(ours_tune)}, real: {len(real_tune)} questions); "
              f"real right gained / lost: questions whose verdict became / stopped being right against {names[0]}\n")
        first: dict[str, str] = {}
        for n, (name, model) in enumerate(options.items()):
            result, verdicts = accuracy(engine, encoder, model, ours_tune, real_tune)
            first = first or verdicts
            gained = sum(v == "right" != first[q] for q, v in verdicts.items())
            lost = sum(first[q] == "right" != v for q, v in verdicts.items())
            table = markdown_table(["option", *result, "real right gained / lost"],
                                   [[name, *result.values(), f"+{gained} / -{lost}"]]).split("\n")
            print("\n".join(table if n == 0 else table[2:]), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

