"""Secrets never reach a log line: bot tokens, keys and rotating access tokens are masked in every record."""

from __future__ import annotations

import logging
import threading
import traceback
from collections import deque

MASK = "***"
_secrets: set[str] = set()  # fixed for the process: bot tokens, keys
_rotating: deque[str] = deque(maxlen=8)  # Zalo OA access/refresh tokens, newest last
_secrets_lock = threading.Lock()
_factory_installed = False


def register_secret(*values: str | None, rotating: bool = False) -> None:
    """Never let these strings reach a log line (tokens, keys; also the part after a "id:" prefix).
    `rotating` secrets (refreshed tokens) are kept only while they are among the newest few."""
    with _secrets_lock:
        for value in values:
            if not value or len(value) < 6:
                continue
            parts = [value]
            head, sep, tail = value.partition(":")
            if sep and head.isdigit() and len(tail) >= 8:  # "<bot id>:<secret>" tokens
                parts.append(tail)
            for part in parts:
                if rotating:
                    if part not in _rotating:
                        _rotating.append(part)
                else:
                    _secrets.add(part)
    install_log_masking()


def mask(text: str) -> str:
    """`text` with every registered secret replaced by ***."""
    with _secrets_lock:
        secrets = sorted({*_secrets, *_rotating}, key=len, reverse=True)
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def install_log_masking() -> None:
    """Mask secrets in every log record (message and traceback), whoever logs it and however
    logging is configured: httpx logs request URLs, which carry the Telegram/Zalo bot token."""
    global _factory_installed
    with _secrets_lock:
        if _factory_installed:
            return
        _factory_installed = True
    previous = logging.getLogRecordFactory()

    def factory(*args: object, **kwargs: object) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        if not _secrets and not _rotating:
            return record
        try:
            message = record.getMessage()
            masked = mask(message)
            if masked != message:
                record.msg, record.args = masked, None
            if record.exc_info and record.exc_info[1] is not None:
                text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
                record.exc_text = mask(text)  # formatters use exc_text when it is set
        except Exception:  # logging must never fail because of masking
            pass
        return record

    logging.setLogRecordFactory(factory)
    logging.getLogger("httpx").setLevel(max(logging.WARNING, logging.getLogger("httpx").level))
