"""The ONNX Runtime query encoder (retrieval/onnx_encoder.py), on the real offline model.

The export is built once into the data directory's cache (as `bhxh build` does) and reused; the
tests that damage or move an export work on copies in a temporary directory.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest

from retrieval import onnx_encoder
from retrieval.dense import DenseEncoder, resolve_query_precision, torch_query_precision
from retrieval.onnx_encoder import GRAPH, MARKER, OnnxQueryModel, export_dir, load_or_build, model_digest

# Written for this test (not evaluation questions): short, unaccented, teen-code, letters.
QUESTIONS = ["rút bảo hiểm xã hội một lần", "mức đóng bhxh tự nguyện hằng tháng", "lương hưu tối thiểu bao nhiêu",
             "nghỉ thai sản được mấy tháng", "chồng được nghỉ mấy ngày khi vợ sinh con",
             "phạt chậm đóng bảo hiểm xã hội", "tra cứu quá trình đóng bảo hiểm", "ốm đau được hưởng bao nhiêu",
             "mat so bhxh thi lam lai the nao", "bh tn dc hỗ trợ ko",
             "Em làm công ty 6 năm rồi nghỉ, giờ muốn hỏi có được rút tiền bảo hiểm không ạ?",
             "bố tôi mất khi đang đóng bảo hiểm thì gia đình được nhận những khoản gì",
             "Chào anh chị, mẹ em năm nay 58 tuổi, đã đóng bảo hiểm xã hội bắt buộc 14 năm ở công ty may, "
             "sau đó nghỉ việc về quê. Giờ mẹ em muốn đóng tiếp tự nguyện cho đủ để hưởng lương hưu thì có "
             "được không, và mỗi tháng phải đóng khoảng bao nhiêu tiền ạ?"]


@pytest.fixture(scope="module")
def cache_dir() -> Path:
    from bot.settings import load_settings

    return load_settings().cache_dir


@pytest.fixture(scope="module")
def onnx_encoder_int8(encoder: DenseEncoder, cache_dir: Path) -> DenseEncoder:
    return DenseEncoder(encoder.name, query_precision="onnx-int8", cache_dir=cache_dir)


def test_auto_picks_onnx_int8_when_onnxruntime_is_installed(encoder, onnx_encoder_int8, cache_dir):
    assert onnx_encoder.onnx_runtime_available()  # a dependency: installed by `make setup`
    assert resolve_query_precision("auto") == resolve_query_precision(None) == "onnx-int8"
    assert resolve_query_precision("auto", onnx_available=False) == torch_query_precision()
    assert resolve_query_precision("ONNX") == "onnx-int8" and resolve_query_precision("onnx-fp32") == "onnx-fp32"
    auto = DenseEncoder(encoder.name, cache_dir=cache_dir)  # the export built by the fixture is reused
    assert auto.query_precision == "onnx-int8" and isinstance(auto.query_model, OnnxQueryModel)
    assert auto.query_model.directory == export_dir(cache_dir, encoder.name, "onnx-int8")
    assert auto._passage_model is None  # a warm start loads no torch model at all
    assert auto.describe()["query_threads"] == auto.query_model.threads
    assert (auto.query_prompt, auto.passage_prompt, auto.dim) == ("query: ", "passage: ", 384)


def test_int8_graph_keeps_the_middle_layers_feed_forward_outputs_float(onnx_encoder_int8):
    import onnx

    graph = onnx.load(str(onnx_encoder_int8.query_model.directory / GRAPH)).graph
    float_matmuls = sorted(node.name for node in graph.node if node.op_type == "MatMul"
                           and "/output/dense/" in node.name and "attention" not in node.name)
    assert float_matmuls == [f"/transformer/encoder/layer.{n}/output/dense/MatMul" for n in range(4, 8)]
    integer = [node for node in graph.node if node.op_type in ("MatMulInteger", "DynamicQuantizeMatMul")]
    assert len(integer) == 12 * 6 - 4  # Q, K, V, attention output, feed-forward in and out per layer


def test_onnx_int8_vectors_agree_with_torch_float32(onnx_encoder_int8):
    batched = onnx_encoder_int8.encode_queries(QUESTIONS)
    alone = np.stack([onnx_encoder_int8.encode_queries([q])[0] for q in QUESTIONS])
    exact = onnx_encoder_int8.encode_queries_exact(QUESTIONS)  # the torch float32 model
    assert np.allclose(np.linalg.norm(batched, axis=1), 1.0, atol=1e-5)
    for vectors in (batched, alone):
        cosines = (vectors * exact).sum(axis=1)
        assert cosines.min() >= 0.98 and cosines.mean() >= 0.99, cosines
    # Same ids as the SentenceTransformer's own tokenization (prompt, special tokens, padding, truncation).
    long_letter = " ".join([QUESTIONS[-1]] * 12)  # > 512 tokens: truncated alike
    texts = ["  rút bhxh  ", QUESTIONS[-1], long_letter]
    ours = onnx_encoder_int8.query_model.tokenizer.encode_batch(["query: " + t for t in texts])
    theirs = onnx_encoder_int8.model.preprocess(texts, prompt="query: ")
    assert [e.ids for e in ours] == theirs["input_ids"].tolist()
    assert [e.attention_mask for e in ours] == theirs["attention_mask"].tolist()
    assert len(ours[2].ids) == 512


def test_one_session_serves_concurrent_threads(onnx_encoder_int8):
    model: OnnxQueryModel = onnx_encoder_int8.query_model
    expected = [model.encode([q], prompt="query: ")[0] for q in QUESTIONS]
    results: dict[int, list[np.ndarray]] = {}

    def worker(n: int) -> None:
        results[n] = [model.encode([q], prompt="query: ")[0] for q in QUESTIONS[n % 3:] + QUESTIONS[:n % 3]]

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for n, vectors in results.items():
        order = QUESTIONS[n % 3:] + QUESTIONS[:n % 3]
        for question, vector in zip(order, vectors, strict=True):
            assert np.allclose(vector, expected[QUESTIONS.index(question)], atol=1e-6)
    threads_before = model.threads
    onnx_encoder_int8.enable_batching(threads=1, workers=2)  # what the web server does
    assert model.threads == 1 and model.session.get_session_options().intra_op_num_threads == 1
    assert np.allclose(onnx_encoder_int8.encode_query("mức hưởng ốm đau"),
                       model.encode(["mức hưởng ốm đau"], prompt="query: ")[0], atol=1e-6)
    model.set_threads(threads_before)


def _linked_copy(source: Path, target: Path) -> Path:
    """A copy of a model directory whose files are hard links (the 470 MB weights are not copied)."""
    for file in source.rglob("*"):
        if file.is_file():
            (target / file.relative_to(source)).parent.mkdir(parents=True, exist_ok=True)
            os.link(file, target / file.relative_to(source))
    return target


def test_cache_key_follows_the_model_files_content_and_the_recipe(encoder, tmp_path, monkeypatch):
    original = Path(encoder.name)
    copy = _linked_copy(original, tmp_path / "model")
    key = export_dir(tmp_path, original, "onnx-int8").name
    assert export_dir(tmp_path, copy, "onnx-int8").name == key  # where it lives does not matter
    assert export_dir(tmp_path, original, "onnx-fp32").name != key
    (copy / "README.md").unlink()
    (copy / "README.md").write_text("rebuilt\n")  # the build's README is not the model
    assert export_dir(tmp_path, copy, "onnx-int8").name == key
    config = copy / "tokenizer_config.json"
    text = config.read_text()
    config.unlink()  # a hard link: replace, never edit the original in place
    config.write_text(text.replace('"model_max_length": 512', '"model_max_length": 256'))
    assert model_digest(copy) != model_digest(original)
    assert export_dir(tmp_path, copy, "onnx-int8").name != key
    monkeypatch.setattr(onnx_encoder, "EXPORT_RECIPE", onnx_encoder.EXPORT_RECIPE + 1)
    assert export_dir(tmp_path, original, "onnx-int8").name != key


def test_damaged_export_is_rebuilt_or_falls_back_to_torch(encoder, onnx_encoder_int8, tmp_path, caplog):
    built = onnx_encoder_int8.query_model.directory
    target = export_dir(tmp_path, encoder.name, "onnx-int8")
    shutil.copytree(built, target)
    marker = json.loads((target / MARKER).read_text())
    marker["probe"] = list(-np.asarray(marker["probe"]))  # as if the graph had changed under the marker
    (target / MARKER).write_text(json.dumps(marker))

    def no_torch_model():
        raise RuntimeError("no float32 model in this step")

    with pytest.raises(RuntimeError, match="no float32 model"):
        load_or_build(encoder.name, tmp_path, "onnx-int8", no_torch_model)

    # Without a usable cache the encoder still starts, on torch, and says why.
    with caplog.at_level(logging.WARNING, logger="retrieval.dense"):
        blocked = tmp_path / "not-a-directory"
        blocked.write_text("")
        fallback = DenseEncoder(encoder.name, query_precision="onnx-int8", cache_dir=blocked)
    assert fallback.query_precision == torch_query_precision()
    assert not isinstance(fallback.query_model, OnnxQueryModel)
    assert "queries are encoded by torch" in caplog.text
    with caplog.at_level(logging.INFO, logger="retrieval.dense"):
        assert DenseEncoder(encoder.name, cache_dir=None).query_precision == torch_query_precision()
    assert "no cache directory for the ONNX export" in caplog.text

    # A truncated graph file is rebuilt from the float32 model (the real export: tens of seconds); an
    # export of the same model by an earlier recipe is deleted then, another model's is kept.
    with open(target / GRAPH, "r+b") as fh:
        fh.truncate(1000)
    superseded, other_model = tmp_path / "onnx-int8-0000000000000000", tmp_path / "onnx-int8-1111111111111111"
    for directory, digest in ((superseded, marker["model_digest"]), (other_model, "another model")):
        directory.mkdir()
        (directory / MARKER).write_text(json.dumps({"model_digest": digest}))
    rebuilt = load_or_build(encoder.name, tmp_path, "onnx-int8", lambda: onnx_encoder_int8.model, threads=1)
    assert rebuilt.directory == target and (target / GRAPH).stat().st_size > 50_000_000
    vector = rebuilt.encode([QUESTIONS[0]], prompt="query: ")[0]
    assert float(vector @ onnx_encoder_int8.encode_queries_exact(QUESTIONS[:1])[0]) >= 0.98
    assert not list(tmp_path.glob(".onnx-int8-*.build-*"))  # no work directory left behind
    assert not superseded.exists() and other_model.exists()
