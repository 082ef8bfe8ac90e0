"""The external retrieval benchmark (../shared/eval): runs, and beats the peer baselines."""

import re

from retrieval.legal_bench import load_corpus, load_questions, passages, run


def mrr(table: str, retriever: str, variant: str) -> float:
    m = re.search(rf"^\| {re.escape(retriever)} \| {variant} \| [^\n]*\| ([0-9.]+) \|$", table, re.M)
    assert m, f"{retriever}/{variant} missing from:\n{table}"
    return float(m.group(1))


def test_passages_overlap_and_keep_the_title():
    text = "Điều 1. Tiêu đề\n" + " ".join(f"w{i}" for i in range(496))  # 500 words in all
    parts = passages(text, words=200, overlap=50)  # windows start at words 0, 150, 300
    assert len(parts) == 3 and all(p.startswith("Điều 1. Tiêu đề") for p in parts)
    assert parts[-1].endswith("w495")
    assert passages("ngắn thôi") == ["ngắn thôi"]


def test_questions_with_gold_in_corpus(shared_dir):
    corpus = load_corpus(shared_dir / "eval")
    questions = load_questions(shared_dir / "eval", set(corpus))
    assert len(corpus) == 1117 and len(questions) == 24


def test_lexical_beats_whitespace_bm25_baseline(shared_dir):
    # Peer baseline (whitespace BM25): MRR@10 .42 accented, .01 stripped.
    table = run(shared_dir / "eval", None, None)
    assert mrr(table, "lexical", "accented") >= 0.42
    assert mrr(table, "lexical", "stripped") >= 0.40


def test_hybrid_beats_each_retriever_and_the_baselines(shared_dir, encoder, tmp_path_factory):
    """The full run with the real model (encodes ~2,300 passages once, then cached)."""
    from bot.settings import load_settings
    from retrieval.index import SearchConfig

    table = run(shared_dir / "eval", encoder, load_settings().cache_dir,
                configs={"hybrid": SearchConfig("convex", 0.5)})
    for variant in ("accented", "stripped"):
        best_single = max(mrr(table, "lexical", variant), mrr(table, "dense", variant))
        assert mrr(table, "hybrid", variant) >= best_single, table
        assert mrr(table, "hybrid", variant) >= 0.45, table
