"""Shared fixtures: the real offline model (built by `make test` before pytest) and paths."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("BHXH_SHARED_DIR", ROOT.parent / "shared"))
ARTIFACTS = ROOT / "test-artifacts"


def model_dir() -> Path | None:
    """The offline e5 model built by `bhxh build` (None if it has not been built)."""
    candidates = [os.environ.get("BHXH_MODEL_DIR"), ROOT / "var" / "models" / "multilingual-e5-small"]
    for c in candidates:
        if c and (Path(c) / "bhxh-build.json").exists():
            return Path(c)
    return None


@pytest.fixture(scope="session")
def encoder():
    from retrieval.dense import DenseEncoder

    path = model_dir()
    if path is None:
        pytest.skip("offline model not built (run `make model`)")
    from bot.settings import load_settings

    # As the service runs it: the query precision and ONNX export chosen by settings (`bhxh build` caches it).
    settings = load_settings()
    return DenseEncoder(path, query_precision=settings.query_precision, cache_dir=settings.cache_dir)


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.exists():
        pytest.skip("../shared is absent")
    return SHARED


@pytest.fixture(scope="session")
def engine(encoder):
    """The real engine: the real knowledge base and the real model (cached vectors)."""
    from bot.engine import Engine
    from bot.settings import load_settings
    from knowledge.schema import load_knowledge

    return Engine(load_knowledge(), encoder, cache_dir=load_settings().cache_dir)


@pytest.fixture(scope="session")
def lexical_engine():
    """The engine as it runs when no model is available (lexical search only)."""
    from bot.engine import Engine
    from knowledge.schema import load_knowledge

    return Engine(load_knowledge(), None)


# Debian's Chromium, driven by Playwright; tests that take `browser` skip where it is absent.
CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
               "--no-first-run", "--disable-sync"]


@pytest.fixture
def browser():
    if not CHROMIUM.exists():
        pytest.skip("/usr/bin/chromium is absent (make browser installs it)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        yield chromium
        chromium.close()
