"""Ranking options side by side: nearest neighbour (today) against rankings learned from the knowledge base.

    python -m benchmarks.ranking                 # tuning splits only
    python -m benchmarks.ranking --heldout "lr, w=0.5"   # + held-out splits, for today's and the chosen option
    python -m benchmarks.ranking --finetune-probe 3   # time 3 contrastive fine-tuning steps of the e5 model

Every option ranks the same raw signals, computed once per question exactly as
the engine computes them (a letter: BM25 over the whole text, the encoder reads
its focus): per-id BM25, per-id best cosine, and the query vector. Options:

  nearest            today's ranking: convex(BM25, best cosine) (Engine.candidates)
  centroid           + cosine to each id's mean query vector (a prototype), mixed into the dense side
  lr ...             + the entry classifier (retrieval/ranker.py), w = its share of the ranking; trained
                     on the passage vectors (the default) or on the texts encoded as queries, with or
                     without accent-stripped / teen-code copies; "lex+lr" drops the best-cosine side

Reported: top-1 / top-3 on eval/questions.yaml (our set) and on the real
citizens' questions (eval/real_questions_*.yaml, rows with expected entries),
training time, and the latency the option adds per question.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import yaml

from bot.engine import OOS_PREFIX, Engine
from bot.evaluation import EVAL_FILE, load_eval
from bot.letter import read_letter
from bot.settings import load_settings, resolve_model
from knowledge.schema import load_knowledge
from retrieval.dense import DenseEncoder
from retrieval.fusion import convex, minmax
from retrieval.index import HybridIndex
from retrieval.normalize import normalize_document, normalize_query
from retrieval.ranker import ClassifierConfig, EntryClassifier, TrainingReport

EVAL_DIR = EVAL_FILE.parent


@dataclass
class Question:
    text: str
    expected: frozenset[str]
    group: str  # variant (our set) or style (real set)
    lexical: np.ndarray  # per id
    dense: np.ndarray  # per id (best text)
    vector: np.ndarray  # the query vector the encoder gave


def load_real(split: str, known: set[str]) -> list[tuple[str, frozenset[str], str]]:
    rows = []
    for path in sorted(EVAL_DIR.glob("real_questions_*.yaml")):
        for row in yaml.safe_load(path.read_text(encoding="utf-8")) or []:
            expected = frozenset(row.get("expected") or []) & known
            if row.get("split") == split and expected:
                rows.append((str(row["question"]), expected, str(row.get("style", "?"))))
    return rows


def signals(index: HybridIndex, text: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-id BM25, per-id best cosine and the query vector, as the engine computes them."""
    assert index.encoder is not None
    letter = read_letter(text)
    if letter.is_letter:
        lexical_text = normalize_query(letter.text + " " + " ".join(letter.questions))
        lexical = index.lexical_scores(lexical_text, index.restored(lexical_text, letter.text))
        dense_query = index.restored(normalize_query(letter.focus), letter.focus)
    else:
        normalized = normalize_query(text)
        dense_query = index.restored(normalized, text)
        lexical = index.lexical_scores(normalized, dense_query)
    vector = index.encoder.encode_query(dense_query)
    return lexical, index.dense_scores(dense_query), vector


def collect(index: HybridIndex, rows: list[tuple[str, frozenset[str], str]]) -> list[Question]:
    return [Question(text, expected, group, *signals(index, text)) for text, expected, group in rows]


def score(questions: list[Question], ids: list[str], rank: Callable[[Question], np.ndarray],
          ) -> tuple[float, float, dict[str, str]]:
    entry = np.array([not i.startswith(OOS_PREFIX) for i in ids])
    top1 = top3 = 0
    groups: dict[str, list[int]] = {}
    for q in questions:
        ranking = np.where(entry, rank(q), -np.inf)
        order = [ids[i] for i in np.argsort(-ranking, kind="stable")[:3]]
        hit1, hit3 = order[0] in q.expected, any(o in q.expected for o in order)
        top1 += hit1
        top3 += hit3
        row = groups.setdefault(q.group, [0, 0])
        row[0] += 1
        row[1] += hit1
    n = max(len(questions), 1)
    return top1 / n, top3 / n, {g: f"{h}/{c}" for g, (c, h) in sorted(groups.items())}


def texts_by_id(engine: Engine) -> dict[str, list[str]]:
    out = {e.id: e.texts() for e in engine.kb.entries.values()}
    out.update({oos_id: list(intent.examples) for oos_id, intent in engine.out_of_scope.items()})
    return out


def train_variant(index: HybridIndex, by_id: dict[str, list[str]], config: ClassifierConfig, inputs: str,
                  ) -> tuple[EntryClassifier, TrainingReport, float]:
    """A classifier trained from scratch (no classifier cache): (classifier, report, seconds incl. encoding)."""
    encoder, cache = index.encoder, index.cache
    assert encoder is not None and cache is not None
    started = time.perf_counter()
    if inputs == "passage":  # the index's own passage vectors: nothing new to encode
        clf, report = EntryClassifier.build(index.ids, by_id, lambda t: cache.encode_passages(encoder, t),
                                            prepare=normalize_document, config=replace(config, augment=False))
    else:
        clf, report = EntryClassifier.build(
            index.ids, by_id, lambda t: cache.encode_queries(encoder, t),
            prepare=lambda raw: index.restored(index.normalize_query(raw), raw), config=config)
    return clf, report, time.perf_counter() - started


def centroids(index: HybridIndex, by_id: dict[str, list[str]]) -> np.ndarray:
    """Each id's mean query vector (normalized): a prototype per entry."""
    encoder, cache = index.encoder, index.cache
    assert encoder is not None and cache is not None
    out = np.zeros((len(index.ids), encoder.dim), dtype=np.float32)
    for n, id_ in enumerate(index.ids):
        prepared = [index.restored(index.normalize_query(t), t) for t in by_id[id_]]
        mean = cache.encode_queries(encoder, prepared).mean(axis=0)
        out[n] = mean / max(float(np.linalg.norm(mean)), 1e-12)
    return out


def latency(fn: Callable[[Question], np.ndarray], questions: list[Question]) -> tuple[float, float]:
    """Median and p99 milliseconds of the ranking step alone (the encoder's pass is shared by every option)."""
    times = []
    for q in questions:
        t0 = time.perf_counter()
        fn(q)
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, int(0.99 * len(times)))]


def end_to_end(index: HybridIndex, questions: list[str], weights: tuple[float, ...] = (0.0, 0.5),
               ) -> dict[float, tuple[float, float]]:
    """Median / p99 ms of `index.search` on first-time short questions for each classifier weight,
    interleaved question by question so the shared machine's load falls on every weight alike."""
    assert index.encoder is not None
    saved = index.config
    times: dict[float, list[float]] = {w: [] for w in weights}
    try:
        for q in questions:
            for weight in weights:
                index.config = replace(saved, classifier_weight=weight)
                index.encoder.recent_queries = type(index.encoder.recent_queries)(4096)  # a first-time question
                t0 = time.perf_counter()
                index.search(q, k=12)
                times[weight].append((time.perf_counter() - t0) * 1000)
    finally:
        index.config = saved
    out = {}
    for weight, ms in times.items():
        ms.sort()
        out[weight] = (statistics.median(ms), ms[min(len(ms) - 1, int(0.99 * len(ms)))])
    return out


def finetune_probe(model_dir: str, by_id: dict[str, list[str]], topic_of: dict[str, str], steps: int,
                   batch: int = 16) -> str:
    """Time `steps` steps of MultipleNegativesRankingLoss fine-tuning (anchor = paraphrase, positive = the
    entry's question, hard negative = a sibling entry's question from the same topic)."""
    import random

    import torch
    from sentence_transformers import SentenceTransformer, losses

    rng = random.Random(0)
    model = SentenceTransformer(model_dir, device="cpu", local_files_only=True)
    by_topic: dict[str, list[str]] = {}
    for id_, topic in topic_of.items():
        by_topic.setdefault(topic, []).append(id_)
    triples = []
    for id_, texts in by_id.items():
        if id_ not in topic_of or len(texts) < 2:
            continue
        siblings = [s for s in by_topic[topic_of[id_]] if s != id_] or [id_]
        for para in texts[1:]:
            triples.append(("query: " + para, "passage: " + texts[0], "passage: " + by_id[rng.choice(siblings)][0]))
    rng.shuffle(triples)
    loss_fn = losses.MultipleNegativesRankingLoss(model)
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-5)
    model.train()
    times = []
    for step in range(steps):
        chunk = triples[step * batch:(step + 1) * batch]
        t0 = time.perf_counter()
        prep = getattr(model, "preprocess", model.tokenize)
        features = [prep([t[k] for t in chunk]) for k in range(3)]
        loss = loss_fn(features, None)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        times.append(time.perf_counter() - t0)
    per_step = statistics.median(times)
    epoch_steps = -(-len(triples) // batch)
    return (f"fine-tune probe: {len(triples)} (paraphrase, question, sibling) triples, batch {batch}: "
            f"{per_step:.1f} s per step (median of {steps}) → one epoch = {epoch_steps} steps ≈ "
            f"{per_step * epoch_steps / 60:.0f} min, plus re-encoding every passage and training text")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--heldout", metavar="OPTION",
                        help="also score the held-out splits, for today's ranking and this option only")
    parser.add_argument("--finetune-probe", type=int, default=0, metavar="STEPS")
    parser.add_argument("--no-augment-variant", action="store_true", help="skip the variant without augmentation")
    args = parser.parse_args(argv)

    settings = load_settings()
    model = resolve_model(settings)
    if not model:
        raise SystemExit("the ranking benchmark needs the dense model")
    encoder = DenseEncoder(model)
    kb = load_knowledge()
    engine = Engine(kb, encoder, cache_dir=settings.cache_dir)
    index = engine.index
    ids = index.ids
    by_id = texts_by_id(engine)
    known = set(kb.entries)

    splits = ["tune", "heldout"] if args.heldout else ["tune"]
    sets: dict[str, list[Question]] = {}
    t0 = time.perf_counter()
    for split in splits:
        own = [(q.question, q.expected, q.variant) for q in load_eval(EVAL_FILE) if q.split == split and q.expected]
        sets[f"own/{split}"] = collect(index, own)
        sets[f"real/{split}"] = collect(index, load_real(split, known))
    print(f"{len(ids)} ids, {len(index.texts)} texts; signals for "
          f"{', '.join(f'{k} {len(v)}' for k, v in sets.items())} questions in {time.perf_counter() - t0:.0f} s")

    lw = index.config.lexical_weight
    options: list[tuple[str, Callable[[Question], np.ndarray], str]] = [
        ("nearest (today)", lambda q: convex(q.lexical, q.dense, lw), "-"),
        ("dense only", lambda q: q.dense, "-"),
    ]
    t0 = time.perf_counter()
    proto = centroids(index, by_id)
    proto_s = time.perf_counter() - t0
    options.append(("centroid (query-vector prototype)",
                    lambda q: convex(q.lexical, 0.5 * q.dense + 0.5 * np.einsum("ij,j->i", proto, q.vector), lw),
                    f"{proto_s:.1f} s"))

    chosen: EntryClassifier | None = None
    on_queries = ClassifierConfig(inputs="query")
    variants = [("lr on passage vectors", ClassifierConfig(), "passage"), ("lr", on_queries, "query")]
    if not args.no_augment_variant:
        variants.append(("lr no-aug", replace(on_queries, augment=False), "query"))
    for name, config, inputs in variants:
        clf, report, seconds = train_variant(index, by_id, config, inputs)
        note = f"{seconds:.1f} s ({report.samples} samples)"
        chosen = chosen or clf

        def logits(q: Question, clf: EntryClassifier = clf) -> np.ndarray:
            return minmax(clf.logits(q.vector))

        options.append((f"{name} alone", logits, note))
        for weight in (0.3, 0.5, 0.7):
            options.append((f"{name}, w={weight}",
                            lambda q, w=weight, f=logits: (1 - w) * convex(q.lexical, q.dense, lw) + w * f(q), note))
        options.append((f"lex+{name}, w=0.7",
                        lambda q, f=logits: 0.3 * minmax(q.lexical) + 0.7 * f(q), note))

    header = ["option", *(f"{k} top-1 / top-3" for k in sets), "train", "rank ms (median / p99)"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    groups = []
    for name, fn, train in options:
        cells = []
        for key, questions in sets.items():
            if key.endswith("heldout") and name not in ("nearest (today)", args.heldout):
                cells.append("")
                continue
            top1, top3, by_group = score(questions, ids, fn)
            cells.append(f"{top1:.3f} / {top3:.3f}")
            groups.append(f"{name} [{key}]: {by_group}")
        med, p99 = latency(fn, sets["own/tune"])
        lines.append("| " + " | ".join([name, *cells, train, f"{med:.2f} / {p99:.2f}"]) + " |")
    print("\n".join(lines))
    print("\nTop-1 by variant / style:\n" + "\n".join(groups))

    # End to end: index.search on short first-time questions, nearest vs the classifier blended in.
    short = [q.question for q in load_eval(EVAL_FILE) if q.split == "tune" and not read_letter(q.question).is_letter]
    index.classifier = chosen
    for weight, (med, p99) in end_to_end(index, short).items():
        print(f"index.search, {len(short)} first-time short questions, classifier_weight={weight}: "
              f"median {med:.1f} ms, p99 {p99:.1f} ms")
    if args.finetune_probe:
        topic_of = {e.id: e.topic for e in kb.entries.values()}
        print(finetune_probe(model, by_id, topic_of, args.finetune_probe))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
