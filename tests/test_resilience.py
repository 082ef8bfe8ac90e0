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
    from retrieval import HybridIndex

    docs = [("a", "Rút bảo hiểm xã hội một lần"), ("b", "Mức phạt trốn đóng bảo hiểm"), ("c", "Thẻ bảo hiểm y tế")]
    first = HybridIndex(docs, encoder=encoder, cache_dir=tmp_path)
    assert first.cache.misses == 3
    first.cache.path.write_bytes(first.cache.path.read_bytes()[:100])  # a torn write
    with caplog.at_level(logging.WARNING):
        rebuilt = HybridIndex(docs, encoder=encoder, cache_dir=tmp_path)
    assert "unreadable" in caplog.text
    assert rebuilt.cache.misses == 3 and rebuilt.search("rut bhxh 1 lan", k=1)[0].id == "a"
    assert HybridIndex(docs, encoder=encoder, cache_dir=tmp_path).cache.misses == 0
