"""Settings: every BHXH_* variable read once, with defaults, and refused with a message that names it."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.channel_settings import TELEGRAM_BASE_URL, ZALO_OA_API_BASE, TelegramConfig, ZaloBotConfig, ZaloOAConfig
from bot.channels.secrets import mask
from bot.settings import DEFAULT_IP_RATE_LIMIT, DEFAULT_RETENTION_DAYS, Settings, load_settings


def test_an_empty_environment_gives_the_documented_defaults(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    settings = load_settings({})
    assert settings.data_dir == (tmp_path / "var").resolve()
    assert settings.database == settings.data_dir / "bhxh.db" and settings.database_url == ""
    assert (settings.retention_days, settings.ip_rate_limit) == (DEFAULT_RETENTION_DAYS, DEFAULT_IP_RATE_LIMIT)
    assert settings.query_precision == "auto" and settings.uses_default_model
    assert (settings.header_timeout, settings.body_timeout, settings.max_connections) == (10.0, 20.0, 0)
    assert settings.shared_dir.name == "shared"
    assert (settings.telegram, settings.zalo_bot, settings.zalo_oa) == (None, None, None)  # no channel is on


def test_every_variable_reaches_its_field(tmp_path):
    settings = load_settings({
        "BHXH_DATA_DIR": str(tmp_path), "BHXH_EMBED_MODEL": " none ", "BHXH_ADMIN_TOKEN": "t" * 20,
        "BHXH_HASH_KEY": "k", "BHXH_RETENTION_DAYS": "0", "BHXH_IP_RATE_LIMIT": "5",
        "BHXH_QUERY_PRECISION": "BF16", "BHXH_SHARED_DIR": str(tmp_path / "s"),
        "BHXH_DATABASE_URL": "postgresql://bhxh@localhost/bhxh", "BHXH_HEADER_TIMEOUT": "1.5",
        "BHXH_BODY_TIMEOUT": "2", "BHXH_MAX_CONNECTIONS": "100", "BHXH_REVIEW_AGE_DAYS": "30",
    })
    assert settings == Settings(
        data_dir=tmp_path.resolve(), embed_model="none", admin_token="t" * 20, hash_key="k", retention_days=0,
        ip_rate_limit=5, query_precision="bfloat16", shared_dir=tmp_path / "s",
        database_url="postgresql://bhxh@localhost/bhxh", header_timeout=1.5, body_timeout=2.0,
        max_connections=100, review_age_days=30)
    assert settings.lexical_only and settings.staff_token() == "t" * 20


@pytest.mark.parametrize(("name", "value", "message"), [
    ("BHXH_RETENTION_DAYS", "a year", "BHXH_RETENTION_DAYS must be a whole number of days (0 = keep forever)"),
    ("BHXH_RETENTION_DAYS", "-1", "BHXH_RETENTION_DAYS must be 0 or more"),
    ("BHXH_IP_RATE_LIMIT", "0", "BHXH_IP_RATE_LIMIT must be 1 or more"),
    ("BHXH_IP_RATE_LIMIT", "lots", "BHXH_IP_RATE_LIMIT must be a whole number of questions a minute"),
    ("BHXH_QUERY_PRECISION", "int4", "BHXH_QUERY_PRECISION must be auto, onnx-int8, onnx-fp32, float32"),
    ("BHXH_HEADER_TIMEOUT", "soon", "BHXH_HEADER_TIMEOUT must be a number of seconds"),
    ("BHXH_BODY_TIMEOUT", "nan", "BHXH_BODY_TIMEOUT must be 0.1 or more"),
    ("BHXH_HEADER_TIMEOUT", "0", "BHXH_HEADER_TIMEOUT must be 0.1 or more"),
    ("BHXH_MAX_CONNECTIONS", "1e3", "BHXH_MAX_CONNECTIONS must be a whole number"),
])
def test_a_bad_value_is_refused_with_a_message_naming_the_variable(name, value, message):
    with pytest.raises(RuntimeError) as refused:
        load_settings({name: value})
    assert str(refused.value).startswith(message) and value in str(refused.value)  # it echoes the value


@pytest.mark.parametrize(("token", "message"), [
    ("", "BHXH_ADMIN_TOKEN is not set"),
    ("   ", "BHXH_ADMIN_TOKEN is not set"),
    ("short-token", "BHXH_ADMIN_TOKEN is shorter than 16 characters"),
])
def test_the_staff_token_is_refused_when_missing_or_short_and_the_message_says_how_to_make_one(token, message):
    settings = Settings(data_dir=Path("var"), admin_token=token)
    with pytest.raises(RuntimeError, match=message) as refused:
        settings.staff_token()
    assert "secrets.token_urlsafe(32)" in str(refused.value)


def test_the_channel_variables_reach_their_configs_and_their_secrets_are_masked(tmp_path):
    settings = load_settings({
        "BHXH_DATA_DIR": str(tmp_path), "TELEGRAM_BOT_TOKEN": " 123456:telegram-token-abcdef ",
        "TELEGRAM_WEBHOOK_SECRET": "hook-secret-1", "TELEGRAM_WEBHOOK_URL": "https://bhxh.example/webhooks/telegram",
        "ZALO_BOT_TOKEN": "zalo-bot-token-1", "ZALO_BOT_SECRET": "zalo-bot-secret", "ZALO_BOT_API_BASE_URL": "http://z/",
        "ZALO_OA_APP_ID": "42", "ZALO_OA_SECRET_KEY": "oa-secret-key-1", "ZALO_OA_OAUTH_BASE_URL": "http://o/",
    })
    assert settings.telegram == TelegramConfig("123456:telegram-token-abcdef", "hook-secret-1",
                                               "https://bhxh.example/webhooks/telegram", TELEGRAM_BASE_URL)
    assert settings.zalo_bot == ZaloBotConfig("zalo-bot-token-1", "zalo-bot-secret", "http://z")
    tokens = tmp_path.resolve() / "zalo_oa_tokens.json"  # beside the database, in BHXH_DATA_DIR
    assert settings.zalo_oa == ZaloOAConfig("42", "oa-secret-key-1", api_base=ZALO_OA_API_BASE,
                                            oauth_base="http://o", token_file=tokens)
    assert mask("key oa-secret-key-1, token zalo-bot-token-1, hook hook-secret-1") == "key ***, token ***, hook ***"


@pytest.mark.parametrize("env", [{"ZALO_BOT_TOKEN": "only-the-token"}, {"ZALO_OA_APP_ID": "42"},
                                 {"TELEGRAM_WEBHOOK_SECRET": "a secret without a token"}])
def test_a_channel_without_its_required_secrets_stays_off(env):
    settings = load_settings(env)
    assert (settings.telegram, settings.zalo_bot, settings.zalo_oa) == (None, None, None)


def test_the_public_url_and_the_legal_folder(tmp_path):
    settings = load_settings({"BHXH_PUBLIC_URL": " https://hoidap.example.vn/ ", "BHXH_LEGAL_DIR": str(tmp_path)})
    assert (settings.public_url, settings.legal_dir) == ("https://hoidap.example.vn", tmp_path)
    assert (load_settings({}).public_url, load_settings({}).legal_dir) == ("", None)
    with pytest.raises(RuntimeError, match="BHXH_PUBLIC_URL must start with https://"):
        load_settings({"BHXH_PUBLIC_URL": "hoidap.example.vn"})


def test_from_env_is_the_channels_part_of_the_settings(tmp_path):
    env = {"BHXH_DATA_DIR": str(tmp_path), "ZALO_BOT_TOKEN": "zalo-bot-token-2", "ZALO_BOT_SECRET": "zalo-secret-2"}
    assert ZaloBotConfig.from_env(env) == load_settings(env).zalo_bot is not None
    assert TelegramConfig.from_env(env) is None and ZaloOAConfig.from_env(env) is None
