"""The evaluation questions measure; they must never reach the index as paraphrases.

An entry text (question or paraphrase) that shares a long run of words with an
evaluation question would let retrieval find that question by copy instead of by
understanding, and flatter every number `bhxh eval` prints. Short runs are common
phrasing ("có được hưởng trợ cấp thất nghiệp không"); the limits are above them.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from knowledge.schema import load_knowledge
from retrieval.normalize import folded_tokens

EVAL_DIR = Path(__file__).resolve().parent.parent / "eval"
# Longest run of accent-folded words an entry text may share with a question: our own set was written
# from the entries' own questions, so it shares more common phrasing than the real questions do.
MAX_SHARED = {"questions.yaml": 15, "real": 13}


def runs(text: str, n: int) -> set[tuple[str, ...]]:
    words = folded_tokens(text)
    return {tuple(words[i:i + n]) for i in range(len(words) - n + 1)}


def eval_runs(n: int, real: bool) -> dict[tuple[str, ...], str]:
    paths = sorted(EVAL_DIR.glob("real_questions*.yaml")) if real else [EVAL_DIR / "questions.yaml"]
    out: dict[tuple[str, ...], str] = {}
    for path in paths:
        for row in yaml.safe_load(path.read_text(encoding="utf-8")) or []:
            for run in runs(str(row["question"]), n):
                out.setdefault(run, f"{path.name}:{row['id']}")
    return out


@pytest.mark.parametrize("real", [False, True], ids=["own set", "real set"])
def test_no_entry_text_copies_an_evaluation_question(real: bool) -> None:
    n = (MAX_SHARED["real"] if real else MAX_SHARED["questions.yaml"]) + 1
    questions = eval_runs(n, real)
    copied = [f"{entry.id} ~ {questions[run]}: {' '.join(run)}"
              for entry in load_knowledge().entries.values() for text in entry.texts()
              for run in runs(text, n) if run in questions]
    assert not copied, "entry texts copy evaluation questions:\n" + "\n".join(sorted(set(copied))[:20])


def test_the_check_finds_a_copy() -> None:
    """A paraphrase pasted from the set is caught (the check above can fail)."""
    row = (yaml.safe_load((EVAL_DIR / "real_questions_a.yaml").read_text(encoding="utf-8")) or [])[0]
    pasted = runs(str(row["question"]), MAX_SHARED["real"] + 1)
    assert pasted and pasted & set(eval_runs(MAX_SHARED["real"] + 1, real=True))
