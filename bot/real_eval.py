"""The real-question development set: questions citizens actually published, scored by facts.

Each question in eval/real_questions*.yaml was written and published by a real person
(newspaper reader columns, the VSS portal, legal Q&A sites, the Zalo legal data) and
carries the facts a correct answer under today's law must contain. An answer is
right when every fact appears in it (any of the fact's wordings; case, accents and
decimal commas ignored), so the score does not depend on which entry answered.
Off-topic near misses carry no facts and must be declined.

These questions measure; they are never indexed or copied into answers. Thresholds
may be tuned on the tune split only; the held-out split is what we report.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import yaml

from bot.reply import Reply
from retrieval.evaluation import markdown_table
from retrieval.normalize import fold_accents

EVAL_DIR = Path(__file__).resolve().parent.parent / "eval"
REAL_GLOB = "real_questions*.yaml"
STYLES = ("short", "letter", "informal")
OFF_TOPIC = "off_topic"


@dataclass(frozen=True)
class RealQuestion:
    id: str
    question: str
    area: str
    style: str
    facts: tuple[tuple[str, ...], ...]  # every item must appear; any wording of an item will do
    expected: frozenset[str]  # entries whose answer answers it (for ranking measures)
    split: str
    source: str = ""

    @property
    def in_scope(self) -> bool:
        return self.area != OFF_TOPIC

    @property
    def scorable(self) -> bool:
        return not self.in_scope or bool(self.facts) or bool(self.expected)


def real_files(eval_dir: Path = EVAL_DIR) -> list[Path]:
    return sorted(eval_dir.glob(REAL_GLOB))


def load_real(paths: Iterable[Path] | None = None) -> list[RealQuestion]:
    out: list[RealQuestion] = []
    seen: set[str] = set()
    seen_texts: dict[str, str] = {}
    for path in paths if paths is not None else real_files():
        for n, row in enumerate(yaml.safe_load(path.read_text(encoding="utf-8")) or []):
            qid = str(row.get("id", f"{path.stem}:{n}"))
            problems = []
            if qid in seen:
                problems.append("duplicate id")
            text_key = " ".join(fact_form(str(row.get("question") or "")).split())
            if text_key in seen_texts:
                problems.append(f"same question as {seen_texts[text_key]!r}")
            if row.get("style") not in STYLES:
                problems.append(f"style {row.get('style')!r} not in {STYLES}")
            if row.get("split") not in ("tune", "heldout"):
                problems.append(f"split {row.get('split')!r}")
            if not str(row.get("question") or "").strip():
                problems.append("empty question")
            facts = tuple(tuple(str(w) for w in (item if isinstance(item, list) else [item]))
                          for item in (row.get("facts") or []))
            if row.get("area") == OFF_TOPIC and (facts or row.get("expected")):
                problems.append("an off-topic question has facts or expected entries")
            if problems:
                raise ValueError(f"{path.name}: question {qid!r}: " + "; ".join(problems))
            seen.add(qid)
            seen_texts[text_key] = qid
            out.append(RealQuestion(qid, str(row["question"]).strip(), str(row["area"]), row["style"], facts,
                                    frozenset(row.get("expected") or ()), row["split"], str(row.get("source", ""))))
    return out


_DECIMAL_COMMA = re.compile(r"(?<=\d),(?=\d)")
_SPACES = re.compile(r"\s+")


def fact_form(text: str) -> str:
    """The form facts are compared in: lower case, no accents, decimal point, single spaces."""
    folded = fold_accents(text.lower())
    return _SPACES.sub(" ", _DECIMAL_COMMA.sub(".", folded)).strip()


def missing_facts(q: RealQuestion, answer_text: str) -> list[tuple[str, ...]]:
    text = fact_form(answer_text)
    return [item for item in q.facts if not any(fact_form(w) in text for w in item)]


def judge(q: RealQuestion, reply: Reply) -> str:
    """right | wrong | choices | declined (in scope); declined | answered (off topic)."""
    if not q.in_scope:
        return "declined" if reply.outcome == "declined" else "answered"
    if reply.outcome == "declined":
        return "declined"
    if reply.outcome == "choices":
        return "choices"
    if q.facts:
        return "right" if not missing_facts(q, reply.full_text()) else "wrong"
    return "right" if reply.entry_id in q.expected else "wrong"


@dataclass
class Judged:
    question: RealQuestion
    verdict: str
    ranked: tuple[str, ...]


def judge_all(ask: Callable[[str], Reply], questions: Iterable[RealQuestion]) -> list[Judged]:
    out = []
    for q in questions:
        if not q.scorable:
            continue
        reply = ask(q.question)
        out.append(Judged(q, judge(q, reply), tuple(reply.candidates)))
    return out


def summary(judged: list[Judged]) -> dict[str, float]:
    ins = [j for j in judged if j.question.in_scope]
    off = [j for j in judged if not j.question.in_scope]
    ranked = [j for j in ins if j.question.expected]
    n_in, n_off, n_rank = max(len(ins), 1), max(len(off), 1), max(len(ranked), 1)

    def share(verdict: str) -> float:
        return sum(j.verdict == verdict for j in ins) / n_in

    return {
        "n_in_scope": len(ins), "n_off_topic": len(off),
        "answered_right": share("right"), "answered_wrong": share("wrong"),
        "clarification": share("choices"), "in_scope_declined": share("declined"),
        "off_topic_declined": sum(j.verdict == "declined" for j in off) / n_off,
        "top1": sum(bool(j.ranked) and j.ranked[0] in j.question.expected for j in ranked) / n_rank,
        "n_ranked": len(ranked),
    }


def report(judged: list[Judged], title: str) -> str:
    m = summary(judged)
    lines = [f"## {title}: {m['n_in_scope']} in scope, {m['n_off_topic']} off topic", "",
             markdown_table(["answered right", "answered wrong", "clarification", "in-scope declined",
                             "off-topic declined", f"top-1 ({m['n_ranked']} labelled)"],
                            [[m["answered_right"], m["answered_wrong"], m["clarification"], m["in_scope_declined"],
                              m["off_topic_declined"], m["top1"]]])]
    for key, values in (("area", None), ("style", STYLES)):
        groups: dict[str, list[Judged]] = defaultdict(list)
        for j in judged:
            if j.question.in_scope:
                groups[getattr(j.question, key)].append(j)
        rows = []
        for name in values or sorted(groups):
            g = groups.get(name, [])
            if not g:
                continue
            s = summary(g)
            rows.append([name, len(g), s["answered_right"], s["answered_wrong"], s["clarification"],
                         s["in_scope_declined"], s["top1"]])
        lines += ["", f"by {key}:", "",
                  markdown_table([key, "n", "right", "wrong", "choices", "declined", "top-1"], rows)]
    return "\n".join(lines)
