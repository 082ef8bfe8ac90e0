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
    return DenseEncoder(path)


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.exists():
        pytest.skip("../shared is absent")
    return SHARED
