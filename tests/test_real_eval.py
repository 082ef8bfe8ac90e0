"""The real-question set: loading, validation and fact-based judging."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.real_eval import OFF_TOPIC, RealQuestion, fact_form, judge, load_real, missing_facts, real_files, summary
from bot.reply import Choice, Reply


def _q(facts=(("tuất một lần",), ("1,5 tháng", "một tháng rưỡi")), area="survivors", expected=()) -> RealQuestion:
    return RealQuestion("r1", "bố tôi mất thì được gì", area, "short", tuple(facts), frozenset(expected), "tune")


def test_fact_form_ignores_case_accents_and_decimal_commas() -> None:
    assert fact_form("Trợ cấp TUẤT  một lần bằng 1,5 tháng") == "tro cap tuat mot lan bang 1.5 thang"


def test_right_needs_every_fact() -> None:
    q = _q()
    full = Reply("answer", "Gia đình được trợ cấp tuất một lần: mỗi năm đóng bằng 1.5 tháng lương.", entry_id="x")
    half = Reply("answer", "Gia đình được trợ cấp tuất một lần.", entry_id="x")
    assert judge(q, full) == "right"
    assert judge(q, half) == "wrong"
    assert missing_facts(q, half.full_text()) == [("1,5 tháng", "một tháng rưỡi")]


def test_choices_and_declines_are_not_right() -> None:
    q = _q()
    assert judge(q, Reply("choices", "Chọn", choices=(Choice("a", "A"),))) == "choices"
    assert judge(q, Reply("not_sure", "Xin lỗi")) == "declined"
    off = _q(facts=(), area=OFF_TOPIC)
    assert judge(off, Reply("out_of_scope", "Không thuộc BHXH")) == "declined"
    assert judge(off, Reply("answer", "tuất một lần 1,5 tháng", entry_id="x")) == "answered"


def test_without_facts_the_entry_decides() -> None:
    q = _q(facts=(), expected=("tt-a",))
    assert judge(q, Reply("answer", "…", entry_id="tt-a")) == "right"
    assert judge(q, Reply("answer", "…", entry_id="tt-b")) == "wrong"


def test_summary_counts(tmp_path: Path) -> None:
    from bot.real_eval import Judged

    judged = [Judged(_q(expected=("a",)), "right", ("a",)), Judged(_q(expected=("a",)), "wrong", ("b",)),
              Judged(_q(facts=(), area=OFF_TOPIC), "declined", ())]
    m = summary(judged)
    assert (m["answered_right"], m["answered_wrong"], m["off_topic_declined"], m["top1"]) == (0.5, 0.5, 1.0, 0.5)


def test_loader_rejects_bad_rows(tmp_path: Path) -> None:
    bad = tmp_path / "real_questions_x.yaml"
    bad.write_text("- {id: r1, question: q, area: off_topic, style: short, split: tune, facts: [[a]]}\n",
                   encoding="utf-8")
    with pytest.raises(ValueError, match="off-topic"):
        load_real([bad])
    bad.write_text("- {id: r1, question: q, area: pension, style: poem, split: tune}\n", encoding="utf-8")
    with pytest.raises(ValueError, match="style"):
        load_real([bad])


@pytest.mark.skipif(not real_files(), reason="no real-question files in eval/")
def test_repository_real_question_files_load() -> None:
    questions = load_real()
    assert len({q.id for q in questions}) == len(questions)
    assert all(q.source for q in questions), "every real question names where it was published"


def test_threshold_grid_follows_the_encoder_scale() -> None:
    from bot.engine import TUNED_ENCODER_THRESHOLDS, Thresholds
    from bot.evaluation import threshold_grid

    for base in (Thresholds(), TUNED_ENCODER_THRESHOLDS):
        grid = threshold_grid(base)
        confidences = sorted({t.min_confidence for t in grid})
        assert base in grid  # the current thresholds are always a candidate
        assert confidences[0] < base.min_confidence < confidences[-1]
        assert confidences[-1] - confidences[0] <= 0.12
        assert {t.doubt_margin for t in grid} == {base.doubt_margin}  # only the four gridded fields move
