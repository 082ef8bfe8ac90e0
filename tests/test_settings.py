"""Settings: every BHXH_* variable read once, with defaults, and refused with a message that names it."""

from __future__ import annotations

from pathlib import Path

import pytest

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
    ("BHXH_QUERY_PRECISION", "int4", "BHXH_QUERY_PRECISION must be auto, float32 or bfloat16"),
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
