"""BHXH_QUERY_PRECISION=int8: the query encoder quantized from the float32 model at start-up.

The bounds are measured (benchmarks/encoder_speed.py, 231 questions of both evaluation sets):
cosine to the float32 query vector min 0.993, mean 0.996, against 0.962 / 0.975 for quantizing
every Linear layer per tensor, which lost 10 points of dense top-1 on the real questions.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pytest

from retrieval.dense import DenseEncoder, LRUCache, resolve_query_precision

# Written for this test (not evaluation questions): short, unaccented, teen-code, a letter's question.
QUESTIONS = ["rút bảo hiểm xã hội một lần", "mức đóng bhxh tự nguyện hằng tháng", "lương hưu tối thiểu bao nhiêu",
             "nghỉ thai sản được mấy tháng", "chồng được nghỉ mấy ngày khi vợ sinh con",
             "phạt chậm đóng bảo hiểm xã hội", "tra cứu quá trình đóng bảo hiểm", "ốm đau được hưởng bao nhiêu",
             "mat so bhxh thi lam lai the nao", "bh tn dc hỗ trợ ko",
             "Em làm công ty 6 năm rồi nghỉ, giờ muốn hỏi có được rút tiền bảo hiểm không ạ?",
             "bố tôi mất khi đang đóng bảo hiểm thì gia đình được nhận những khoản gì"]


@pytest.fixture(scope="module")
def int8_encoder(encoder: DenseEncoder) -> DenseEncoder:
    return DenseEncoder(encoder.name, query_precision="int8")


@contextmanager
def float32_queries(encoder: DenseEncoder) -> Iterator[None]:
    """The same encoder with its float32 model on the query side (and no cached query vectors)."""
    saved = encoder.query_model, encoder.recent_queries
    encoder.query_model, encoder.recent_queries = encoder.model, LRUCache(0)
    try:
        yield
    finally:
        encoder.query_model, encoder.recent_queries = saved


def test_precision_setting_accepts_int8_and_auto_never_picks_it(monkeypatch):
    from bot.settings import load_settings

    assert resolve_query_precision("int8") == resolve_query_precision("QINT8") == "int8"
    assert resolve_query_precision("auto") == "onnx-int8"  # ONNX Runtime's int8, never torch's
    with pytest.raises(ValueError, match="float32, bfloat16 or int8"):
        resolve_query_precision("int4")
    assert load_settings({"BHXH_DATA_DIR": "/tmp", "BHXH_QUERY_PRECISION": "int8"}).query_precision == "int8"
    assert load_settings({"BHXH_DATA_DIR": "/tmp", "BHXH_QUERY_PRECISION": "onnx"}).query_precision == "onnx-int8"
    assert load_settings({"BHXH_DATA_DIR": "/tmp", "BHXH_QUERY_PRECISION": "ONNX-FP32"}).query_precision == "onnx-fp32"
    with pytest.raises(RuntimeError, match="BHXH_QUERY_PRECISION"):
        load_settings({"BHXH_DATA_DIR": "/tmp", "BHXH_QUERY_PRECISION": "int4"})


def test_int8_model_is_quantized_and_shares_the_float32_weights(int8_encoder):
    import torch

    quantized, exact = int8_encoder.query_model, int8_encoder.model
    assert quantized is not exact and int8_encoder.describe()["query_precision"] == "int8"
    kinds = {name: type(module) for name, module in quantized.named_modules()}
    assert sum("quantized" in kind.__module__ for kind in kinds.values()) >= 60  # 12 layers x 5 + pooler
    ffn_out = [kind for name, kind in kinds.items() if name.endswith(".output.dense") and "attention" not in name]
    assert len(ffn_out) == 12 and all(kind is torch.nn.Linear for kind in ffn_out)  # kept float32
    embedding = next(m for m in quantized.modules() if isinstance(m, torch.nn.Embedding))
    assert any(embedding.weight is m.weight for m in exact.modules() if isinstance(m, torch.nn.Embedding))


def test_int8_query_vectors_agree_with_float32(int8_encoder):
    fast = int8_encoder.encode_queries(QUESTIONS)
    exact = int8_encoder.encode_queries_exact(QUESTIONS)
    assert np.allclose(np.linalg.norm(fast, axis=1), 1.0, atol=1e-5)
    cosines = (fast * exact).sum(axis=1)
    assert cosines.min() > 0.985 and cosines.mean() > 0.99, cosines
    # Activations are quantized with one scale per forward pass, so a vector depends a little on the
    # queries it was batched with (QueryBatcher): one at a time it is as close to float32 as in a batch.
    alone = np.stack([int8_encoder.encode_queries([q])[0] for q in QUESTIONS[:4]])
    assert (alone * exact[:4]).sum(axis=1).min() > 0.985 and (alone * fast[:4]).sum(axis=1).min() > 0.985


def test_engine_answers_the_same_with_int8_queries(int8_encoder):
    from bot.engine import Engine
    from bot.settings import load_settings
    from knowledge.schema import load_knowledge

    engine = Engine(load_knowledge(), int8_encoder, cache_dir=load_settings().cache_dir)

    def answers() -> list[tuple[str, str | None]]:
        return [(reply.outcome, reply.entry_id) for reply in map(engine.ask, QUESTIONS)]

    with_int8 = answers()
    with float32_queries(int8_encoder):
        with_float32 = answers()
    differ = [(q, a, b) for q, a, b in zip(QUESTIONS, with_int8, with_float32, strict=True) if a != b]
    # A borderline question may tip between an answer and choices (measured: "bh tn dc hỗ trợ ko"),
    # never to a different answered entry.
    assert len(differ) <= 1, differ
    assert not any(a[0] == b[0] == "answered" for _, a, b in differ), differ
