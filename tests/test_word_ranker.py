"""The word classifier (retrieval/word_ranker.py) on a real slice of the knowledge base, and its place in the index."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from retrieval.index import HybridIndex, SearchConfig
from retrieval.normalize import normalize_query
from retrieval.word_ranker import WordClassifier, features, training_texts

TOPICS = ("maternity", "unemployment", "survivors")


@pytest.fixture(scope="module")
def kb_slice():
    from knowledge.schema import load_knowledge

    entries = [e for e in load_knowledge().entries.values() if e.topic in TOPICS]
    assert len(entries) >= 30
    return entries


def texts_of(entries, held: dict[str, str] | None = None, extra: dict[str, list[str]] | None = None):
    held, extra = held or {}, extra or {}
    return {e.id: [t for t in [*e.texts(), *extra.get(e.id, [])] if t != held.get(e.id)] for e in entries}


def top(clf: WordClassifier, typed: str) -> str:
    return clf.ids[int(np.argmax(clf.scores(normalize_query(typed))))]


def test_features_are_folded_words_and_pairs():
    assert features("chết khi đang đóng") == ["chet", "khi", "dang", "dong", "chet khi", "khi dang", "dang dong"]
    # Trained on the text as written and as typed on a phone, each normalized as a question would be.
    assert training_texts("Đóng bảo hiểm xã hội") == ["đóng bảo hiểm xã hội", "dong bao hiem xa hoi",
                                                      "dong bảo hiểm xã hội"]


def test_ranks_texts_it_never_saw(kb_slice):
    held = {e.id: e.paraphrases[-1] for e in kb_slice if len(e.paraphrases) >= 3}
    ids = [e.id for e in kb_slice]
    clf, report = WordClassifier.build(ids, texts_of(kb_slice, held))
    assert report.how == "trained" and report.refitted == len(ids)
    found = sum(top(clf, text) == id_ for id_, text in held.items())
    # Measured: 53 of 62 held paraphrases (some are letters or other-angle questions) ranked first.
    assert found >= 0.75 * len(held), (found, len(held))
    # Typed without accents and in teen-code, a question still finds its entry.
    target = next(e for e in kb_slice if e.id == "ts-nghi-sinh-bao-lau")
    assert top(clf, "nghi sinh con dc bao lau") == target.id


def test_cache_is_reused_and_a_staff_edit_takes_effect_at_once(kb_slice, tmp_path: Path):
    ids = [e.id for e in kb_slice]
    path = tmp_path / "word-classifier.npz"
    first, report = WordClassifier.build(ids, texts_of(kb_slice), cache_path=path)
    assert report.how == "trained" and path.exists()
    started = time.perf_counter()
    again, report = WordClassifier.build(ids, texts_of(kb_slice), cache_path=path)
    assert report.how == "loaded" and time.perf_counter() - started < 2
    probe = normalize_query("vợ sinh con chồng được hưởng gì")
    np.testing.assert_array_equal(first.scores(probe), again.scores(probe))

    # A staff member adds a paraphrase in words no entry uses: only that row is refitted, the words are learned.
    target = kb_slice[5]
    new_text = "con mèo nhà hàng xóm sinh con thì chủ nhà có được tiền không"
    assert top(first, new_text) != target.id
    edited, report = WordClassifier.build(ids, texts_of(kb_slice, extra={target.id: [new_text]}), cache_path=path)
    assert report.how == "patched" and report.refitted == 1
    assert top(edited, new_text) == target.id
    assert top(edited, "mèo hàng xóm") == target.id  # a word only the new paraphrase has
    others = [e for e in kb_slice if e.id != target.id][:10]
    assert sum(top(edited, e.question) == e.id for e in others) >= 9

    # A new entry is a new row, patched the same way.
    grown_texts = texts_of(kb_slice) | {"staff-test-new": ["mất giấy chứng sinh của con thì xin lại ở đâu",
                                                           "làm lại giấy chứng sinh bị thất lạc"]}
    grown, report = WordClassifier.build([*ids, "staff-test-new"], grown_texts, cache_path=path)
    assert report.how == "patched"
    assert top(grown, "giấy chứng sinh bị mất xin cấp lại") == "staff-test-new"


def test_many_changes_retrain_everything(kb_slice, tmp_path: Path):
    ids = [e.id for e in kb_slice]
    path = tmp_path / "word-classifier.npz"
    WordClassifier.build(ids, texts_of(kb_slice), cache_path=path)
    half = {e.id: e.paraphrases[0] for e in kb_slice[: len(kb_slice) // 2] if e.paraphrases}
    _, report = WordClassifier.build(ids, texts_of(kb_slice, held=half), cache_path=path)
    assert report.how == "trained"


def test_many_removed_entries_retrain_everything(kb_slice, tmp_path: Path):
    """Rows fitted beside classes that are gone are not today's classifier: a much smaller set trains afresh."""
    path = tmp_path / "word-classifier.npz"
    WordClassifier.build([e.id for e in kb_slice], texts_of(kb_slice), cache_path=path)
    half = kb_slice[: len(kb_slice) // 2]
    _, report = WordClassifier.build([e.id for e in half], texts_of(half), cache_path=path)
    assert report.how == "trained"


def test_a_corrupt_cache_is_retrained(kb_slice, tmp_path: Path):
    path = tmp_path / "word-classifier.npz"
    path.write_bytes(b"not a cache")
    _, report = WordClassifier.build([e.id for e in kb_slice], texts_of(kb_slice), cache_path=path)
    assert report.how == "trained"
    _, report = WordClassifier.build([e.id for e in kb_slice], texts_of(kb_slice), cache_path=path)
    assert report.how == "loaded"


def test_ids_without_texts_and_a_single_class():
    clf, _ = WordClassifier.build(["a", "b"], {"a": ["rút bảo hiểm xã hội một lần"]})
    assert top(clf, "rút một lần") == "a"
    assert clf.scores(normalize_query("không có từ nào quen"))[1] < clf.scores(normalize_query("rút"))[0]


# ------------------------------------------------------------------ in the index


WORDS = SearchConfig("convex", 0.5, classifier_weight=0.5, word_classifier_weight=0.4)
DECLINE = [("oos:thue", "thuế thu nhập cá nhân tính thế nào"), ("oos:thue", "quyết toán thuế thu nhập cá nhân"),
           ("oos:thue", "giảm trừ gia cảnh khi tính thuế")]


@pytest.fixture(scope="module")
def index_with_words(encoder, kb_slice, tmp_path_factory):
    items = [(e.id, t) for e in kb_slice for t in e.texts()] + DECLINE
    return HybridIndex(items, encoder=encoder, cache_dir=tmp_path_factory.mktemp("words"), config=WORDS,
                       held=lambda i: i.startswith("oos:"))


def ranking_without_words(index: HybridIndex, lexical: np.ndarray, query: str) -> np.ndarray:
    index.config = replace(WORDS, word_classifier_weight=0.0)
    try:
        return index.rank_scores(lexical, query)[0]
    finally:
        index.config = WORDS


def test_the_word_classifier_takes_part_in_the_ranking(index_with_words):
    index = index_with_words
    assert index.word_classifier is not None and index.word_classifier_report is not None
    query = normalize_query("chồng có được hưởng chế độ khi vợ sinh con không")
    lexical = index.lexical_scores(query)
    with_words, _, _ = index.rank_scores(lexical, query)
    without = ranking_without_words(index, lexical, query)
    assert not np.allclose(with_words, without)
    words = index.word_classifier.scores(query)
    best_by_words = int(np.argmax(np.where(index._held, -np.inf, words)))
    # The blend moves the word classifier's favourite up relative to the others.
    assert (with_words[best_by_words] - with_words.max()) >= (without[best_by_words] - without.max()) - 1e-9


def test_a_decline_intent_near_the_top_keeps_the_fused_ranking(index_with_words):
    index = index_with_words
    query = normalize_query("quyết toán thuế thu nhập cá nhân như thế nào")
    lexical = index.lexical_scores(query)
    with_words, _, _ = index.rank_scores(lexical, query)
    assert index.ids[int(np.argmax(with_words))] == "oos:thue"
    without = ranking_without_words(index, lexical, query)
    np.testing.assert_array_equal(with_words, without)  # whether to decline stays the fused ranking's call
    # Elsewhere a decline intent is never lifted by the words: it scores the floor.
    query = normalize_query("nghỉ thai sản được mấy tháng")
    ranking, _, _ = index.rank_scores(index.lexical_scores(query), query)
    assert ranking[index.ids.index("oos:thue")] == 0.0


def test_a_question_the_words_do_not_recognize_keeps_the_fused_ranking(index_with_words):
    index = index_with_words
    query = normalize_query("giá vé máy bay đi Đà Nẵng tháng sau")
    assert index.word_classifier is not None
    assert index.word_classifier.scores(query).max() <= index.config.word_min_score
    lexical = index.lexical_scores(query)
    with_words, _, _ = index.rank_scores(lexical, query)
    without = ranking_without_words(index, lexical, query)
    np.testing.assert_array_equal(with_words, without)
