"""The real engine for tests that want the production retrieval: dense when the offline model is built."""

from __future__ import annotations

import pytest

from bot.engine import Engine
from bot.settings import load_settings
from knowledge.schema import load_knowledge


def real_engine(request: pytest.FixtureRequest) -> Engine:
    """The engine on the real knowledge base, with the session's `encoder` fixture (tests/conftest.py)
    when the offline model is built, else lexical only."""
    try:
        encoder = request.getfixturevalue("encoder")
    except pytest.skip.Exception:
        encoder = None
    return Engine(load_knowledge(), encoder, cache_dir=load_settings().cache_dir if encoder else None)
