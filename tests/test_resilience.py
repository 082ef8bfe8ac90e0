"""The engine starts and answers when its model or caches are missing or broken."""

import logging

from bot.engine import Engine
from bot.settings import Settings


def settings(tmp_path, model: str) -> Settings:
    return Settings(data_dir=tmp_path, embed_model=model, admin_token="", hash_key="")


def test_missing_model_falls_back_to_lexical_search_with_a_warning(tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        engine = Engine.from_settings(settings(tmp_path, str(tmp_path / "no-such-model")))
    assert not engine.index.has_dense
    assert "falling back to lexical search" in caplog.text
    assert engine.ask("đóng bhxh tự nguyện thấp nhất bao nhiêu").topic == "voluntary"


def test_corrupt_embedding_cache_is_rebuilt_on_start(tmp_path, encoder, caplog):
    from bot.settings import load_settings
    from knowledge.schema import load_knowledge
    from retrieval.dense import EmbeddingCache

    kb = load_knowledge()
    cache_dir = tmp_path / "cache"
    cache_dir.mkdir()
    # Start from a copy of the real cache so only the corruption path is exercised, then corrupt it.
    real = EmbeddingCache(load_settings().cache_dir, encoder.fingerprint)
    real.path = cache_dir / real.path.name
    real.save()
    real.path.write_bytes(real.path.read_bytes()[:1000])
    with caplog.at_level(logging.WARNING):
        engine = Engine(kb, encoder, cache_dir=cache_dir)
    assert "unreadable" in caplog.text
    # every (distinct) text was re-encoded
    assert engine.index.has_dense and engine.index.cache.misses == len(set(engine.index.cache_keys))
    assert Engine(kb, encoder, cache_dir=cache_dir).index.cache.misses == 0
