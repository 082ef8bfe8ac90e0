"""The knowledge-base adapter of the e5 encoder (retrieval/encoder_tuning.py): data, training, merging, serving."""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import numpy as np
import pytest

from retrieval import encoder_tuning as et
from tests.conftest import model_dir

CLASSES = {
    "death-paying": ("survivors", ["Chết khi đang đóng BHXH", "bố em mất khi đang đi làm",
                                   "người lao động qua đời lúc còn đóng bảo hiểm"]),
    "death-retired": ("survivors", ["Chết khi đang hưởng lương hưu", "ông nghỉ hưu rồi mới mất",
                                    "mẹ tôi đang lĩnh lương hưu thì qua đời"]),
    "maternity-leave": ("maternity", ["Nghỉ thai sản mấy tháng", "sinh con được nghỉ bao lâu"]),
    "oos:life": ("out_of_scope", ["bảo hiểm nhân thọ có nên mua", "hợp đồng nhân thọ bị hủy"]),
}


def base_dir() -> Path:
    base = model_dir()  # the published e5, built by `make model`
    if base is None:
        pytest.skip("offline model not built (run `make model`)")
    return base


@pytest.fixture(scope="module")
def base_model():
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(base_dir()), device="cpu", local_files_only=True)


def test_every_paraphrase_is_an_anchor_against_a_sibling():
    triples = et.training_triples(CLASSES, random.Random(0), augmented_share=0.0)
    assert sorted(t[3] for t in triples) == sorted(c for c, (_, texts) in CLASSES.items() for _ in texts[1:])
    for anchor, positive, negative, cls in triples:
        group, texts = CLASSES[cls]
        assert anchor in texts[1:] and positive in texts and positive != anchor
        owner = next(c for c, (_, t) in CLASSES.items() if negative in t)
        assert owner != cls
        siblings = [c for c, (g, _) in CLASSES.items() if g == group and c != cls]
        assert owner in siblings or not siblings  # same topic when the topic has another class
    # with augmentation every anchor is still the class's text, as typed (accents off or teen-code)
    from retrieval.normalize import fold_accents

    augmented = et.training_triples(CLASSES, random.Random(1), augmented_share=1.0)
    folded = {fold_accents(t).lower() for _, texts in CLASSES.values() for t in texts}
    assert any(fold_accents(a).lower() in folded and a not in CLASSES[c][1] for a, _, _, c in augmented)


def test_batches_never_hold_a_class_twice():
    triples = [(f"a{i}", "p", "n", f"c{i % 5}") for i in range(23)]
    batches = et._batches(triples, 4)
    assert sorted(t for b in batches for t in b) == sorted(triples)
    assert all(len({t[3] for t in b}) == len(b) <= 4 for b in batches)


def test_training_changes_only_the_adapter_and_merging_equals_the_adapted_forward(base_model):
    import torch

    texts = ["bố em mất khi đang đóng bhxh", "Nghỉ thai sản mấy tháng"]
    before = base_model.encode(texts, normalize_embeddings=True)
    weights = {n: p.detach().clone() for n, p in base_model.named_parameters()}
    config = et.TrainingConfig(batch_size=4, max_seq_length=24, learning_rate=5e-3, max_steps=3, seed=3)
    tensors = et.train_adapter(base_model, CLASSES, config, progress=lambda _: None)
    # the model handed in is left as it was
    assert all(torch.equal(weights[n], p) for n, p in base_model.named_parameters())
    assert np.allclose(base_model.encode(texts, normalize_embeddings=True), before, atol=1e-6)
    layers = et._lora_modules(base_model[0].auto_model)
    assert len(layers) == 12 * len(et.TARGETS)
    assert set(tensors) == {f"{n}.{p}" for n in layers for p in ("a", "b")} | {"scale"}
    assert any(np.abs(tensors[f"{n}.b"]).max() > 0 for n in layers)  # B starts at 0: training moved it
    # merged weights compute what the adapted layer computes
    name, linear = next(iter(layers.items()))
    x = torch.randn(3, linear.in_features)
    a, b = torch.from_numpy(tensors[f"{name}.a"]), torch.from_numpy(tensors[f"{name}.b"])
    adapted = linear(x) + float(tensors["scale"]) * (x @ a.T) @ b.T
    merged = torch.nn.Linear(linear.in_features, linear.out_features)
    merged.load_state_dict(linear.state_dict())
    with torch.no_grad():
        merged.weight += float(tensors["scale"]) * b @ a
    assert torch.allclose(merged(x), adapted, atol=1e-5)


def test_an_adapter_that_does_not_fit_is_refused(base_model):
    with pytest.raises(ValueError, match="does not match"):
        et.apply_adapter(base_model, {"scale": np.asarray(2.0), "encoder.layer.0.nothing.a": np.zeros((2, 2))})


def test_the_committed_adapter_is_small_and_fits_the_model(base_model):
    tensors, meta = et.load_adapter()
    assert et.ADAPTER_PATH.stat().st_size < 20_000_000
    assert meta["config"]["rank"] == tensors["encoder.layer.0.attention.self.query.a"].shape[0]
    assert meta["trained_on"]["classes"] > 300
    assert set(tensors) - {"scale"} == {f"{n}.{p}" for n in et._lora_modules(base_model[0].auto_model)
                                        for p in ("a", "b")}


def test_settings_serve_the_tuned_model_on_request(tmp_path):
    from bot.settings import DEFAULT_MODEL_NAME, TUNED_MODEL_NAME, load_settings, resolve_model

    env = {"BHXH_DATA_DIR": str(tmp_path), "BHXH_ADMIN_TOKEN": "t" * 20}
    assert load_settings(env).model_dir == tmp_path.resolve() / "models" / DEFAULT_MODEL_NAME
    tuned = load_settings(env | {"BHXH_EMBED_MODEL": "tuned"})
    assert tuned.model_dir.name == TUNED_MODEL_NAME and tuned.uses_default_model
    assert resolve_model(tuned, build=False) is None  # not built yet: the caller falls back to lexical search


def test_the_tuned_model_is_built_once_per_adapter(tmp_path):
    from sentence_transformers import SentenceTransformer

    base = base_dir()
    tensors, meta = et.load_adapter()
    adapter = tmp_path / "adapter.npz"
    shutil.copy(et.ADAPTER_PATH, adapter)
    out = tmp_path / "tuned"
    assert et.ensure_tuned_model(base, out, adapter, progress=lambda _: None) == out.resolve()
    built = (out / "model.safetensors").stat().st_mtime_ns
    et.ensure_tuned_model(base, out, adapter, progress=lambda _: None)
    assert (out / "model.safetensors").stat().st_mtime_ns == built  # reused
    text = ["chồng tôi mất khi đang đóng bảo hiểm"]
    tuned_vector = SentenceTransformer(str(out), device="cpu", local_files_only=True).encode(text)
    base_vector = SentenceTransformer(str(base), device="cpu", local_files_only=True).encode(text)
    assert not np.allclose(tuned_vector, base_vector, atol=1e-3)
    # a new adapter (here: one that changes nothing) rebuilds the directory
    et.save_adapter(adapter, {k: (v if k.endswith(".a") or k == "scale" else np.zeros_like(v))
                              for k, v in tensors.items()}, meta)
    et.ensure_tuned_model(base, out, adapter, progress=lambda _: None)
    assert np.allclose(SentenceTransformer(str(out), device="cpu", local_files_only=True).encode(text),
                       base_vector, atol=1e-5)


def test_the_tuned_encoder_brings_its_own_thresholds(tmp_path):
    from bot.engine import TUNED_ENCODER_THRESHOLDS, Engine, Thresholds
    from bot.settings import load_settings

    env = {"BHXH_DATA_DIR": str(tmp_path), "BHXH_ADMIN_TOKEN": "t" * 20}
    tuned = Engine.from_settings(load_settings(env | {"BHXH_EMBED_MODEL": "tuned"}), build_model=False)
    # not built here: lexical search, whose decisions the default thresholds govern
    assert tuned.index.encoder is None and tuned.thresholds == Thresholds()
    assert TUNED_ENCODER_THRESHOLDS.min_confidence < Thresholds().min_confidence
