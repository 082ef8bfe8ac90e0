"""Side by side: our engine against a peer-style retrieval stack, on both evaluation sets.

The peer-style stack is what a typical FAQ bot does: rank-bm25 over lower-cased
whitespace tokens, the same e5 model in float32 with no cache, plain reciprocal-rank
fusion (k = 60) of the two entry rankings (each entry scored by its best text), and
it always answers the top entry. Ours is `Engine.ask` as the server runs it.

For each set and style: top-1 (the first entry ranked is one that answers it),
answered right (for the real set: every fact in the reply; for our set: the
answered entry is expected), off-topic declined, and per-question latency
(median, p99; first time each question is asked). Ratios are ours / peer's.

    python -m benchmarks.peer_stack            # both sets, held-out halves
    python -m benchmarks.peer_stack --split all
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import statistics
import time
from collections import defaultdict
from dataclasses import dataclass

import numpy as np
from rank_bm25 import BM25Okapi

from bot import real_eval
from bot.engine import Engine
from bot.evaluation import EVAL_FILE, load_eval
from bot.reply import Reply
from knowledge.schema import KnowledgeBase
from retrieval.evaluation import markdown_table, percentile

RRF_K = 60


class PeerStack:
    """rank-bm25 on whitespace tokens + e5 float32 (no cache) + plain RRF; always answers the top entry."""

    def __init__(self, kb: KnowledgeBase, model_path: str) -> None:
        from sentence_transformers import SentenceTransformer

        self.kb = kb
        self.owner: list[str] = []
        texts: list[str] = []
        for entry in kb.entries.values():
            for text in entry.texts():
                self.owner.append(entry.id)
                texts.append(text)
        self.ids = list(dict.fromkeys(self.owner))
        position = {i: n for n, i in enumerate(self.ids)}
        self.owner_index = np.array([position[i] for i in self.owner])
        self.bm25 = BM25Okapi([t.lower().split() for t in texts])
        self.model = SentenceTransformer(model_path, device="cpu", local_files_only=True)
        self.vectors = self.model.encode([f"passage: {t}" for t in texts], normalize_embeddings=True,
                                         batch_size=32, convert_to_numpy=True)

    def _per_entry(self, per_text: np.ndarray) -> np.ndarray:
        best = np.full(len(self.ids), -np.inf)
        np.maximum.at(best, self.owner_index, per_text)
        return best

    def rank(self, question: str) -> list[str]:
        lexical = self._per_entry(np.asarray(self.bm25.get_scores(question.lower().split())))
        query = self.model.encode([f"query: {question}"], normalize_embeddings=True, convert_to_numpy=True)[0]
        dense = self._per_entry(self.vectors @ query)
        fused = np.zeros(len(self.ids))
        for scores in (lexical, dense):
            order = np.argsort(-scores, kind="stable")
            fused[order] += 1.0 / (RRF_K + np.arange(1, len(order) + 1))
        return [self.ids[i] for i in np.argsort(-fused, kind="stable")]

    def ask(self, question: str, on: dt.date) -> Reply:
        ranked = self.rank(question)
        entry = self.kb.entries[ranked[0]]
        return Reply("answer", self.kb.render_answer(entry, on), entry_id=entry.id, topic=entry.topic,
                     sources=entry.sources, candidates=tuple(ranked[:10]))


@dataclass
class Row:
    style: str
    top1: bool | None  # None: no labelled entry
    right: bool | None  # None: off topic
    declined: bool
    seconds: float


def run(ask, questions, kind: str, on: dt.date) -> list[Row]:
    rows = []
    for q in questions:
        t0 = time.perf_counter()
        reply = ask(q.question, on)
        seconds = time.perf_counter() - t0
        if kind == "real":
            expected, style, in_scope = q.expected, q.style, q.in_scope
            verdict = real_eval.judge(q, reply)
            right = (verdict == "right") if in_scope else None
        else:
            expected, style, in_scope = q.expected, q.variant, q.in_scope
            right = (reply.answered and reply.entry_id in expected) if in_scope else None
        top1 = (bool(reply.candidates) and reply.candidates[0] in expected) if expected else None
        rows.append(Row(style, top1, right, reply.outcome == "declined", seconds))
    return rows


def table(ours: list[Row], peer: list[Row]) -> str:
    styles = list(dict.fromkeys(r.style for r in ours))
    out = []

    def share(rows: list[Row], attr: str) -> float:
        vals = [getattr(r, attr) for r in rows if getattr(r, attr) is not None]
        return sum(vals) / len(vals) if vals else float("nan")

    groups: dict[str, tuple[list[Row], list[Row]]] = defaultdict(lambda: ([], []))
    for o, p in zip(ours, peer, strict=True):
        groups[o.style][0].append(o)
        groups[o.style][1].append(p)
    for style in [*styles, "all"]:
        o, p = (ours, peer) if style == "all" else groups[style]
        in_o = [r for r in o if r.right is not None]
        off_o = [r for r in o if r.right is None]
        off_p = [r for r in p if r.right is None]
        out.append([style, len(in_o) or len(off_o), share(o, "top1"), share(p, "top1"), share(o, "right"),
                    share(p, "right"),
                    (sum(r.declined for r in off_o) / len(off_o)) if off_o else float("nan"),
                    (sum(r.declined for r in off_p) / len(off_p)) if off_p else float("nan")])
    return markdown_table(["style", "n", "top-1 ours", "top-1 peer", "right ours", "right peer",
                           "off-topic declined ours", "peer"], out)


def latency(ours: list[Row], peer: list[Row]) -> str:
    rows = []
    groups = (("short (not letter)", lambda r: r.style != "letter"), ("letter", lambda r: r.style == "letter"),
              ("all", lambda r: True))
    for label, pick in groups:
        o = [r.seconds * 1000 for r in ours if pick(r)]
        p = [r.seconds * 1000 for r in peer if pick(r)]
        if not o:
            continue
        mo, mp = statistics.median(o), statistics.median(p)
        rows.append([label, len(o), f"{mo:.1f}", f"{percentile(o, 99):.1f}", f"{mp:.1f}", f"{percentile(p, 99):.1f}",
                     f"{mo / mp:.2f}"])
    return markdown_table(["questions", "n", "ours median ms", "ours p99", "peer median ms", "peer p99",
                           "median ratio ours/peer"], rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", choices=("heldout", "tune", "all"), default="heldout")
    args = parser.parse_args()
    from bot.settings import load_settings, resolve_model

    settings = load_settings()
    # The peer runs e5 as published, even when ours serves the tuned one (BHXH_EMBED_MODEL=tuned).
    model = resolve_model(dataclasses.replace(settings, embed_model="") if settings.uses_tuned_model else settings)
    engine = Engine.from_settings(settings)
    assert model, "the peer-style stack needs the e5 model"
    peer = PeerStack(engine.kb, model)
    on = dt.date.today()
    keep = (lambda q: True) if args.split == "all" else (lambda q: q.split == args.split)
    sets = [("our set (eval/questions.yaml)", "ours", [q for q in load_eval(EVAL_FILE) if keep(q)])]
    real = [q for q in real_eval.load_real() if keep(q) and q.scorable]
    if real:
        sets.append(("real questions (eval/real_questions*.yaml)", "real", real))
    for title, kind, questions in sets:
        engine.ask("xin chào")  # warm both paths on a text outside the set
        peer.ask("xin chào", on)
        ours_rows = run(lambda text, day: engine.ask(text, day), questions, kind, on)
        peer_rows = run(peer.ask, questions, kind, on)
        print(f"\n## {title}, {args.split} split: {len(questions)} questions\n")
        print(table(ours_rows, peer_rows))
        print("\nPer-question latency, each question asked the first time:\n")
        print(latency(ours_rows, peer_rows))


if __name__ == "__main__":
    main()
