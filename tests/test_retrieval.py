import numpy as np
import pytest

from retrieval import HybridIndex, SearchConfig, build_index
from retrieval.accents import AccentRestorer
from retrieval.bm25 import LexicalIndex
from retrieval.dense import EmbeddingCache
from retrieval.fusion import convex, minmax, ranks, rrf

FILLER = [
    "Hợp đồng lao động có thời hạn từ đủ một tháng",
    "Đăng ký tham gia qua ứng dụng VssID",
    "Tổng đài hỗ trợ khách hàng",
    "Quy định về giao dịch điện tử",
]

DOCS = [
    ("mot-lan", "Điều kiện rút bảo hiểm xã hội một lần là gì?"),
    ("mot-lan", "Khi nào được nhận BHXH một lần"),
    ("phat", "Mức phạt khi doanh nghiệp trốn đóng bảo hiểm xã hội"),
    ("y-te", "Thẻ bảo hiểm y tế dùng ở đâu, khám ở bệnh viện nào?"),
    ("huu", "Đóng bao nhiêu năm thì được hưởng lương hưu?"),
]


def test_bm25_matches_unaccented_query_through_the_folded_field():
    index = LexicalIndex([t for _, t in DOCS])
    scores = index.scores("rut bao hiem xa hoi mot lan")
    assert int(np.argmax(scores)) == 0


def test_bm25_accented_query_gets_a_precision_bonus():
    index = LexicalIndex(["bảo hiểm y tế", "bao hiem y te", *FILLER])
    scores = index.scores("bảo hiểm y tế")
    assert scores[0] > scores[1]


def test_bm25_keeps_one_letter_syllables():
    index = LexicalIndex(["thẻ y tế", "thẻ ngân hàng", *FILLER])
    assert index.scores("y tế")[0] > index.scores("y tế")[1]


def test_bm25_matches_rank_bm25_reference_scores():
    from rank_bm25 import BM25Okapi

    from retrieval.bm25 import _FastBM25

    corpus = [t.lower().split() for _, t in DOCS]
    query = "bảo hiểm xã hội một lần".split()
    assert np.allclose(_FastBM25(corpus).get_scores(query), BM25Okapi(corpus).get_scores(query))


def test_lexical_index_on_empty_corpus():
    assert LexicalIndex([]).scores("bất kỳ").size == 0
    assert HybridIndex([]).search("bất kỳ") == []


def test_fusion_ranks_and_rrf():
    assert list(ranks(np.array([0.1, 0.9, 0.5]))) == [3, 1, 2]
    fused = rrf(np.array([3.0, 1.0, 2.0]), np.array([0.2, 0.9, 0.5]), k=60)
    # doc 0 is 1st lexically and 3rd densely; doc 2 is 2nd in both.
    assert np.isclose(fused[0], 1 / 61 + 1 / 63)
    assert np.isclose(fused[2], 2 / 62)
    assert np.isclose(fused[0], fused[1])
    # Weighting toward the lexical side favours the lexical winner.
    weighted = rrf(np.array([3.0, 1.0, 2.0]), np.array([0.2, 0.9, 0.5]), lexical_weight=0.8)
    assert int(np.argmax(weighted)) == 0


def test_convex_fusion_weights_and_normalisation():
    lexical, dense = np.array([10.0, 0.0, 5.0]), np.array([0.80, 0.95, 0.90])
    assert list(minmax(lexical)) == [1.0, 0.0, 0.5]
    assert int(np.argmax(convex(lexical, dense, lexical_weight=0.9))) == 0
    assert int(np.argmax(convex(lexical, dense, lexical_weight=0.1))) == 1
    assert list(minmax(np.array([2.0, 2.0]))) == [0.0, 0.0]


def test_ids_with_several_texts_score_by_best_text():
    index = build_index(DOCS)
    hits = index.search("nhận BHXH một lần khi nào", k=3, mode="lexical")
    assert hits[0].id == "mot-lan"
    assert len({h.id for h in hits}) == len(hits)


def test_accent_restorer_uses_corpus_vocabulary():
    restorer = AccentRestorer([t for _, t in DOCS])
    assert restorer.restore("rut bao hiem xa hoi mot lan") == "rút bảo hiểm xã hội một lần"
    # Marks the user typed are kept as typed.
    assert restorer.restore("bảo hiem y te") == "bảo hiểm y tế"


class CountingEncoder:
    """A stand-in encoder that counts calls; the real model is tested below."""

    passage_prompt = "passage: "
    dim = 3
    fingerprint = "test"

    def __init__(self) -> None:
        self.encoded: list[str] = []

    def encode_passages(self, texts):
        self.encoded.extend(texts)
        return np.array([[len(t), 1.0, 0.0] for t in texts], dtype=np.float32)


def test_embedding_cache_reencodes_only_changed_texts(tmp_path):
    enc = CountingEncoder()
    first = EmbeddingCache(tmp_path, "m").encode_passages(enc, ["a", "bb"])
    assert sorted(enc.encoded) == ["a", "bb"]
    again = EmbeddingCache(tmp_path, "m").encode_passages(enc, ["a", "bb", "ccc"])
    assert sorted(enc.encoded) == ["a", "bb", "ccc"]  # only the new text was encoded
    assert np.allclose(first, again[:2])


def test_corrupt_embedding_cache_is_rebuilt(tmp_path, caplog):
    enc = CountingEncoder()
    cache = EmbeddingCache(tmp_path, "m")
    cache.encode_passages(enc, ["a"])
    cache.path.write_bytes(b"not an npz file")
    rebuilt = EmbeddingCache(tmp_path, "m")
    assert "unreadable" in caplog.text
    rebuilt.encode_passages(enc, ["a"])
    assert enc.encoded == ["a", "a"]
    assert EmbeddingCache(tmp_path, "m").encode_passages(enc, ["a"]).shape == (1, 3)


def test_real_model_hybrid_search(encoder, tmp_path):
    index = HybridIndex(DOCS, encoder=encoder, cache_dir=tmp_path, config=SearchConfig("convex", 0.5))
    for query, expected in [
        ("Tôi muốn rút bảo hiểm xã hội một lần", "mot-lan"),
        ("toi muon rut bhxh 1 lan", "mot-lan"),
        ("cong ty khong dong bao hiem cho nhan vien bi phat the nao", "phat"),
        ("đi khám bệnh bằng thẻ bhyt", "y-te"),
        ("bao nhieu nam moi co luong huu", "huu"),
    ]:
        hits = index.search(query, k=3)
        assert hits[0].id == expected, (query, hits)
        assert -1.0 <= hits[0].dense <= 1.0 and hits[0].lexical >= 0
    dense_only = index.search("khám chữa bệnh", k=1, mode="dense")
    assert dense_only[0].id == "y-te"
    # A restart reads every passage vector from the cache.
    again = HybridIndex(DOCS, encoder=encoder, cache_dir=tmp_path)
    assert again.cache is not None and again.cache.misses == 0 and again.cache.hits == len(DOCS)


@pytest.mark.parametrize("query", ["", "   ", "???"])
def test_queries_with_no_words_return_nothing(query):
    assert build_index(DOCS).search(query) == []


def test_query_batcher_batches_concurrent_queries_and_keeps_order():
    import threading
    import time

    from retrieval.dense import QueryBatcher

    calls = []

    def slow_encode(texts):
        calls.append(list(texts))
        time.sleep(0.05)
        return np.array([[float(len(t))] for t in texts])

    batcher = QueryBatcher(slow_encode, max_batch=8)
    results = {}
    threads = [threading.Thread(target=lambda t=t: results.__setitem__(t, batcher.encode(t)))
               for t in ["a", "bb", "ccc", "dddd", "eeeee"]]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert {t: v[0] for t, v in results.items()} == {"a": 1, "bb": 2, "ccc": 3, "dddd": 4, "eeeee": 5}
    assert len(calls) < 5  # at least two queries shared a forward pass
    assert batcher.queries == 5


def test_query_batcher_passes_errors_to_callers():
    from retrieval.dense import QueryBatcher

    def broken(texts):
        raise RuntimeError("model failed")

    with pytest.raises(RuntimeError, match="model failed"):
        QueryBatcher(broken).encode("x")


def batch_agreement(encoder) -> float:
    """How alike one text's vectors must be alone and in a batch. Float encoders mask padding exactly; ONNX int8
    quantizes each batch's activations with one scale, so its neighbours move a vector slightly (cosine ≈ .998)."""
    return 0.995 if encoder.query_precision == "onnx-int8" else 0.9999


def test_real_encoder_batched_and_single_queries_agree(encoder):
    single = encoder.encode_query("rút bảo hiểm xã hội một lần")
    batched = encoder.encode_queries(["rút bảo hiểm xã hội một lần", "một câu dài hơn nhiều để có đệm padding"])[0]
    assert float(single @ batched) > batch_agreement(encoder)


def test_accented_queries_are_not_restored():
    fillers = [(f"f{i}", t) for i, t in enumerate(FILLER)]
    index = build_index([("a", "Đủ điều kiện đi du lịch"), ("b", "Thủ tục đủ"), *fillers])
    assert index.restored("đi du lịch nước ngoài") == "đi du lịch nước ngoài"
    assert index.restored("di du lich") == "đi du lịch"


def test_interleaved_texts_of_one_id_score_by_their_best_text():
    index = build_index([("a", "thẻ bảo hiểm y tế"), ("b", "rút bảo hiểm xã hội một lần"),
                         ("a", "mức phạt chậm đóng"), ("c", "lương hưu hằng tháng"), ("b", "trợ cấp thai sản")])
    assert index.ids == ["a", "b", "c"]
    per_text = np.array([1.0, 2.0, 5.0, 3.0, 4.0])  # in the order the texts were given
    order = [index.texts.index(t) for t in ["thẻ bảo hiểm y tế", "rút bảo hiểm xã hội một lần",
                                             "mức phạt chậm đóng", "lương hưu hằng tháng", "trợ cấp thai sản"]]
    grouped = np.empty(5)
    grouped[order] = per_text
    assert index._pool(grouped).tolist() == [5.0, 4.0, 3.0]
    assert index.search("mức phạt chậm đóng", k=1, mode="lexical")[0].id == "a"


def test_lru_cache_is_bounded_and_keeps_recent_keys():
    from retrieval.dense import LRUCache

    cache = LRUCache(2)
    cache.put("a", np.zeros(1))
    cache.put("b", np.ones(1))
    assert cache.get("a") is not None  # "a" is now the most recent
    cache.put("c", np.ones(1))
    assert cache.get("b") is None and cache.get("a") is not None and cache.get("c") is not None
    assert (cache.hits, cache.misses) == (3, 1)
    LRUCache(0).put("x", np.zeros(1))  # size 0 keeps nothing and does not fail


def test_query_precision_is_resolved_from_the_cpu_or_the_setting(monkeypatch):
    from retrieval.dense import cpu_has_native_bf16, resolve_query_precision, torch_query_precision

    assert resolve_query_precision("fp32") == "float32" and resolve_query_precision("bf16") == "bfloat16"
    assert torch_query_precision() == ("bfloat16" if cpu_has_native_bf16() else "float32")
    assert resolve_query_precision(None) == "onnx-int8"  # onnxruntime is a dependency (tests/test_onnx_encoder.py)
    assert resolve_query_precision(None, onnx_available=False) == torch_query_precision()
    assert resolve_query_precision("auto") == resolve_query_precision(None)
    monkeypatch.setenv("BHXH_QUERY_PRECISION", "float32")  # the environment is read by Settings, not here
    assert resolve_query_precision(None) == "onnx-int8"
    with pytest.raises(ValueError, match="unknown query precision"):
        resolve_query_precision("int4")


def test_bfloat16_queries_agree_with_float32_and_repeats_are_cached(encoder):
    from retrieval.dense import DenseEncoder

    queries = ["rut bhxh 1 lan dc ko", "đóng bảo hiểm tự nguyện được nhà nước hỗ trợ bao nhiêu",
               "Kính gửi cơ quan BHXH, tôi đã đóng 12 năm, nay nghỉ việc thì lương hưu tính thế nào?",
               "mức phạt chậm đóng bảo hiểm xã hội", "thai sản nam được nghỉ mấy ngày"]
    reference = DenseEncoder(encoder.name, query_precision="float32", query_cache_size=0)
    fast = DenseEncoder(encoder.name, query_precision="bfloat16")
    cosines = (reference.encode_queries(queries) * fast.encode_queries(queries)).sum(axis=1)
    assert cosines.min() > 0.999, cosines
    first = fast.encode_query(queries[0])
    assert fast.encode_query(queries[0]) is first and fast.recent_queries.hits == 1
    assert not first.flags.writeable  # callers share the cached vector


def test_length_groups_bound_padding_and_cover_every_text():
    from retrieval.dense import length_groups

    lengths = [30, 400, 32, 35, 410, 28, 33, 31, 36, 29]
    groups = length_groups(lengths, max_size=4)
    assert sorted(i for g in groups for i in g) == list(range(len(lengths)))
    assert all(len(g) <= 4 for g in groups)
    for g in groups:  # padding every member to the longest stays within 25 %
        padded = max(lengths[i] + 8 for i in g) * len(g)
        assert padded <= 1.25 * sum(lengths[i] + 8 for i in g)
    assert {1, 4} in [set(g) for g in groups]  # the two long letters go together


def test_grouped_query_encoding_keeps_the_input_order(encoder):
    texts = ["rút bhxh 1 lần", "Kính gửi cơ quan bảo hiểm xã hội, tôi muốn hỏi về chế độ thai sản khi sinh con "
             "thứ hai và thời gian nghỉ của chồng", "phạt chậm đóng", "lương hưu tối thiểu"]
    together = encoder.encode_queries(texts)
    for text, vector in zip(texts, together, strict=True):
        assert float(encoder.encode_queries([text])[0] @ vector) > min(batch_agreement(encoder), 0.999)


def test_query_batcher_with_two_workers_answers_every_caller():
    import threading

    from retrieval.dense import QueryBatcher

    batcher = QueryBatcher(lambda texts: np.array([[float(len(t))] for t in texts]), max_batch=4, workers=2)
    texts = [("x" * n) for n in range(1, 41)]
    results: dict[str, float] = {}
    threads = [threading.Thread(target=lambda t=t: results.__setitem__(t, float(batcher.encode(t)[0])))
               for t in texts]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert results == {t: float(len(t)) for t in texts} and batcher.queries == 40
