"""Chat channels over one Service: Telegram, Zalo Bot Platform, Zalo Official Account.

One pipeline for all of them (`pipeline.Pipeline`): verify → parse → inbox (duplicates dropped
there) → acknowledge → Service (in a worker thread) → render → send (retried, recorded per
message). Each channel module is an adapter that only translates its platform's shapes; the HTTP
route is `admin_api.webhooks`. Shared pieces: `secrets` (log masking), `threads` (worker pools),
`inbox` (the durable inbox), `format` (rendering a Reply as text).
"""

from __future__ import annotations

from collections.abc import Mapping

from bot.channels.inbox import Inbox
from bot.channels.secrets import mask, register_secret
from bot.channels.threads import in_thread
from bot.reply import Reply

__all__ = ["Inbox", "entry_title", "env_str", "in_thread", "mask", "register_secret"]


def entry_title(kb: object, reply: Reply) -> str | None:
    """The canonical question of the answered entry (shown in bold above the answer)."""
    if reply.kind not in ("answer", "personal") or not reply.entry_id:
        return None
    entry = getattr(kb, "entries", {}).get(reply.entry_id)
    return entry.question if entry is not None else None


def env_str(env: Mapping[str, str], name: str, default: str = "") -> str:
    return (env.get(name) or default).strip()
