"""Chat channels over one Service: Telegram, Zalo Bot Platform, Zalo Official Account.

Each adapter verifies the delivery, drops duplicates, parses the message,
calls `Service` (in a worker thread: it does SQLite and search), renders the
Reply for its channel (`bot.channels.format`) and sends it. This module holds
the little they share: secret masking for logs, a bounded duplicate filter and
environment helpers.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from collections import OrderedDict, deque
from collections.abc import Mapping

from bot.reply import Reply

log = logging.getLogger(__name__)

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


class RecentIds:
    """Delivery ids seen in the last `ttl` seconds (at most `size`): drops redeliveries that
    arrive while the first copy is still being answered. Service's log catches later ones."""

    def __init__(self, size: int = 10_000, ttl: float = 3600.0) -> None:
        self.size, self.ttl = size, ttl
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def seen(self, key: str, now: float | None = None) -> bool:
        """True if `key` was seen recently; otherwise remember it and return False."""
        now = time.monotonic() if now is None else now
        with self._lock:
            while self._seen and (len(self._seen) > self.size or now - next(iter(self._seen.values())) > self.ttl):
                self._seen.popitem(last=False)
            if key in self._seen:
                return True
            self._seen[key] = now
            return False


def entry_title(kb: object, reply: Reply) -> str | None:
    """The canonical question of the answered entry (shown in bold above the answer)."""
    if reply.kind not in ("answer", "personal") or not reply.entry_id:
        return None
    entry = getattr(kb, "entries", {}).get(reply.entry_id)
    return entry.question if entry is not None else None


def env_str(env: Mapping[str, str], name: str, default: str = "") -> str:
    return (env.get(name) or default).strip()
