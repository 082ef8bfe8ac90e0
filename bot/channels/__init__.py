"""Chat channels over one Service: Telegram, Zalo Bot Platform, Zalo Official Account.

One pipeline for all of them (`pipeline.Pipeline`): verify → parse → inbox (duplicates dropped
there) → acknowledge → Service (in a worker thread) → render → send (retried, recorded per
message). Each channel module is an adapter that only translates its platform's shapes; the HTTP
route is `admin_api.webhooks`. Shared pieces: `secrets` (log masking), `threads` (worker pools),
`inbox` (the durable inbox), `format` (rendering a Reply as text).
"""

from __future__ import annotations

from bot.channels.inbox import Inbox
from bot.channels.secrets import mask, register_secret
from bot.channels.threads import in_thread

__all__ = ["Inbox", "in_thread", "mask", "register_secret"]
