"""Retrieval benchmark on external legal data (`bhxh bench-retrieval`).

Questions: the Zalo legal-retrieval questions about insurance whose gold
articles are in the corpus (../shared/eval/zalo_insurance_subset.jsonl).
Corpus: every article of ../shared/eval/law_corpus_2014/law_dict.json.
Nobody on this project wrote either, so the numbers measure the engine, not
our own content. Long articles are split into overlapping passages that share
the article's id (the index scores an id by its best passage).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from retrieval.dense import DenseEncoder
from retrieval.evaluation import first_relevant_rank, latency_summary, markdown_table, ranking_metrics
from retrieval.index import HybridIndex, SearchConfig
from retrieval.normalize import fold_accents

SUBSET = "zalo_insurance_subset.jsonl"
CORPUS = "law_corpus_2014/law_dict.json"


@dataclass(frozen=True)
class Question:
    qid: str
    text: str
    gold: frozenset[str]


def load_questions(eval_dir: Path, corpus_ids: set[str]) -> list[Question]:
    """Questions whose every gold id is an article of the corpus."""
    out = []
    for line in (eval_dir / SUBSET).read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        gold = frozenset(g.lower() for g in row["gold_ids"])
        if row.get("gold_texts") and gold <= corpus_ids:
            out.append(Question(row["qid"], row["question"], gold))
    return out


def load_corpus(eval_dir: Path) -> dict[str, str]:
    laws = json.loads((eval_dir / CORPUS).read_text(encoding="utf-8"))
    return {f"{law.lower()}|{art}": text for law, arts in laws.items() for art, text in arts.items()}


def passages(text: str, words: int = 220, overlap: int = 40) -> list[str]:
    """Split a long article into overlapping word windows (the title stays in each)."""
    tokens = text.split()
    if len(tokens) <= words:
        return [text]
    title = text.split("\n", 1)[0][:200]
    out, start = [], 0
    while start < len(tokens):
        chunk = " ".join(tokens[start : start + words])
        out.append(chunk if start == 0 else f"{title}\n{chunk}")
        if start + words >= len(tokens):
            break
        start += words - overlap
    return out


def run(eval_dir: Path, encoder: DenseEncoder | None, cache_dir: Path | None,
        configs: dict[str, SearchConfig] | None = None, chunk: bool = True) -> str:
    corpus = load_corpus(eval_dir)
    questions = load_questions(eval_dir, set(corpus))
    items = [(doc_id, p) for doc_id, text in corpus.items() for p in (passages(text) if chunk else [text])]
    configs = configs or {
        "hybrid (convex, w=.5)": SearchConfig("convex", 0.5),
        "hybrid (convex, w=.7)": SearchConfig("convex", 0.7),
        "hybrid (rrf)": SearchConfig("rrf", 0.5),
        "hybrid (rrf, w=.7)": SearchConfig("rrf", 0.7),
    }
    started = time.perf_counter()
    index = HybridIndex(items, encoder=encoder, cache_dir=cache_dir)
    build_seconds = time.perf_counter() - started

    rows, latencies = [], {}
    retrievers: list[tuple[str, str, SearchConfig | None]] = [("lexical", "lexical", None)]
    if encoder is not None:
        no_restore = SearchConfig(restore_accents=False)
        retrievers += [("dense", "dense", None), ("dense (no accent restore)", "dense", no_restore)]
        retrievers += [(name, "hybrid", cfg) for name, cfg in configs.items()]
    for variant in ("accented", "stripped"):
        for name, mode, cfg in retrievers:
            index.config = cfg or SearchConfig()
            ranks, times = [], []
            for q in questions:
                text = q.text if variant == "accented" else fold_accents(q.text)
                t0 = time.perf_counter()
                hits = index.search(text, k=10, mode=mode)  # type: ignore[arg-type]
                times.append(time.perf_counter() - t0)
                ranks.append(first_relevant_rank([h.id for h in hits], set(q.gold)))
            metrics = ranking_metrics(ranks)
            latencies[name] = latencies.get(name, []) + times
            rows.append([name, variant, *metrics.values()])
    index.config = SearchConfig()
    lines = [
        f"Corpus: {len(corpus)} articles ({len(items)} passages); questions: {len(questions)} "
        f"(each moves a score by {100 / max(len(questions), 1):.1f} points)",
        "",
        markdown_table(["retriever", "questions", "R@1", "R@5", "R@10", "MRR@10"], rows),
        "",
        f"Index build: {build_seconds:.1f} s"
        + (f" (embedding cache: {index.cache.describe()})" if index.cache else ""),
        "",
        markdown_table(
            ["retriever", "query median ms", "query p99 ms"],
            [[n, *latency_summary(t).values()] for n, t in latencies.items()],
        ),
    ]
    return "\n".join(lines)
