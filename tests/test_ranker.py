"""The entry classifier (retrieval/ranker.py) with the real model on a real slice of the knowledge base."""

from __future__ import annotations

import shutil
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from retrieval.index import HybridIndex, SearchConfig
from retrieval.normalize import normalize_query
from retrieval.ranker import ClassifierConfig, augmentations, teen_code

TOPICS = ("maternity", "unemployment")  # two areas with close siblings (leave, allowances, procedures)
LEARNED = SearchConfig("convex", 0.5, classifier_weight=0.5)


def test_teen_code_abbreviates_whole_words_only():
    assert teen_code("Xem được không, bảo hiểm xã hội thì rồi sao, em hỏi như thế nào") == \
        "xem dc ko, bhxh thi r sao, e hoi ntn"
    # The query normalizer expands it back: augmentation trains on what the encoder will really read.
    assert normalize_query(teen_code("Bảo hiểm xã hội có được rút không")) == "bảo hiểm xã hội co được rut không"
    assert augmentations("Đóng bảo hiểm xã hội") == ["Dong bao hiem xa hoi", "dong bhxh"]


@pytest.fixture(scope="module")
def kb_slice():
    from knowledge.schema import load_knowledge

    kb = load_knowledge()
    entries = [e for e in kb.entries.values() if e.topic in TOPICS]
    assert len(entries) >= 15
    return entries


@pytest.fixture()
def cache_dir(tmp_path: Path, encoder) -> Path:
    """A fresh directory for the classifier, seeded with the shared embedding cache (vectors only)."""
    from bot.settings import load_settings

    shared = load_settings().cache_dir / f"embeddings-{encoder.fingerprint}.npz"
    if shared.exists():
        shutil.copy(shared, tmp_path / shared.name)
    return tmp_path


def items_of(entries, held: dict[str, str] | None = None, extra: dict[str, list[str]] | None = None):
    held = held or {}
    extra = extra or {}
    return [(e.id, t) for e in entries for t in [*e.texts(), *extra.get(e.id, [])] if t != held.get(e.id)]


def test_classifier_ranks_texts_it_never_saw(encoder, kb_slice, cache_dir):
    """Hold one paraphrase of each entry out of training: the learned ranking finds its entry."""
    held = {e.id: e.paraphrases[-1] for e in kb_slice if len(e.paraphrases) >= 3}
    index = HybridIndex(items_of(kb_slice, held), encoder=encoder, cache_dir=cache_dir, config=LEARNED)
    assert index.classifier is not None and index.classifier_report is not None
    assert index.classifier_report.how == "trained"
    top1_learned = sum(index.search(text, k=1)[0].id == id_ for id_, text in held.items())
    nearest = replace(LEARNED, classifier_weight=0.0)
    index.config = nearest
    top1_nearest = sum(index.search(text, k=1)[0].id == id_ for id_, text in held.items())
    # Measured on 29 held texts (some are whole letters): learned 22, nearest neighbour 19.
    assert top1_learned >= 0.7 * len(held), (top1_learned, len(held))
    assert top1_learned >= top1_nearest, (top1_learned, top1_nearest)
    # The classifier alone (no lexical, no nearest neighbour) also generalizes to the held texts.
    assert index.classifier is not None and index.encoder is not None
    alone = sum(index.ids[int(np.argmax(index.classifier.logits(index.encoder.encode_query(
        index.restored(normalize_query(text), text)))))] == id_ for id_, text in held.items())
    assert alone >= 0.7 * len(held), (alone, len(held))


def test_cache_is_reused_and_a_staff_edit_takes_effect_at_once(encoder, kb_slice, cache_dir):
    first = HybridIndex(items_of(kb_slice), encoder=encoder, cache_dir=cache_dir, config=LEARNED)
    assert first.classifier_report is not None and first.classifier_report.how == "trained"
    assert (cache_dir / f"classifier-{encoder.fingerprint}.npz").exists()

    started = time.perf_counter()
    again = HybridIndex(items_of(kb_slice), encoder=encoder, cache_dir=cache_dir, config=LEARNED)
    assert again.classifier_report is not None and again.classifier_report.how == "loaded"
    assert time.perf_counter() - started < 5  # the lexical index and accent restorer, no training
    probe = first.encoder.encode_query("nghỉ thai sản được mấy tháng") if first.encoder else None
    assert first.classifier is not None and again.classifier is not None and probe is not None
    np.testing.assert_allclose(first.classifier.logits(probe), again.classifier.logits(probe), rtol=1e-6)

    # A staff member adds a paraphrase in words no entry uses yet.
    target = kb_slice[3]
    new_text = "con mèo nhà hàng xóm sinh con thì chủ nhà có được tiền không"
    assert first.search(new_text, k=1)[0].id != target.id
    edited = HybridIndex(items_of(kb_slice, extra={target.id: [new_text]}), encoder=encoder,
                         cache_dir=cache_dir, config=LEARNED)
    report = edited.classifier_report
    assert report is not None and report.how == "patched" and report.refitted == 1
    assert report.seconds < 3, report  # one row refitted (well under 1 s on an idle core)
    assert edited.search(new_text, k=1)[0].id == target.id
    # The other entries still rank their own texts first.
    others = [e for e in kb_slice if e.id != target.id][:8]
    assert sum(edited.search(e.question, k=1)[0].id == e.id for e in others) >= 7

    # A new entry (a new class) is patched in the same way and found.
    new_entry = [("staff-test-new", "mất giấy chứng sinh của con thì xin lại ở đâu"),
                 ("staff-test-new", "làm lại giấy chứng sinh bị thất lạc")]
    grown = HybridIndex(items_of(kb_slice) + new_entry, encoder=encoder, cache_dir=cache_dir, config=LEARNED)
    assert grown.classifier_report is not None and grown.classifier_report.how == "patched"
    assert grown.search("giấy chứng sinh bị mất xin cấp lại", k=1)[0].id == "staff-test-new"


def test_many_changes_retrain_everything(encoder, kb_slice, cache_dir):
    config = replace(LEARNED, classifier=ClassifierConfig(max_patched_share=0.1))
    HybridIndex(items_of(kb_slice), encoder=encoder, cache_dir=cache_dir, config=config)
    half = {e.id: e.paraphrases[0] for e in kb_slice[: len(kb_slice) // 2] if e.paraphrases}
    changed = HybridIndex(items_of(kb_slice, held=half), encoder=encoder, cache_dir=cache_dir, config=config)
    assert changed.classifier_report is not None and changed.classifier_report.how == "trained"


def test_classifier_off_is_todays_ranking(encoder, kb_slice, cache_dir):
    index = HybridIndex(items_of(kb_slice), encoder=encoder, cache_dir=cache_dir, config=SearchConfig())
    assert index.classifier is None
    lexical_only = HybridIndex(items_of(kb_slice), config=LEARNED)  # no encoder: nothing to train
    assert lexical_only.classifier is None
    assert lexical_only.search(kb_slice[0].question, k=1)[0].id == kb_slice[0].id
    empty = HybridIndex([], encoder=encoder, cache_dir=cache_dir, config=LEARNED)
    assert empty.classifier is None and empty.search("rút bảo hiểm xã hội một lần") == []


def test_many_removed_entries_retrain_everything(encoder, kb_slice, cache_dir):
    """Rows fitted beside classes that are gone are not today's classifier: going back to a much smaller
    knowledge base (an older revision, many deletions) trains afresh instead of keeping those rows."""
    config = replace(LEARNED, classifier=ClassifierConfig(max_patched_share=0.1))
    HybridIndex(items_of(kb_slice), encoder=encoder, cache_dir=cache_dir, config=config)
    smaller = HybridIndex(items_of(kb_slice[: len(kb_slice) // 2]), encoder=encoder, cache_dir=cache_dir,
                          config=config)
    assert smaller.classifier_report is not None and smaller.classifier_report.how == "trained"
    one_less = HybridIndex(items_of(kb_slice[: len(kb_slice) // 2 - 1]), encoder=encoder, cache_dir=cache_dir,
                           config=config)
    assert one_less.classifier_report is not None and one_less.classifier_report.how == "patched"
