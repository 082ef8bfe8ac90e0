"""Persistence below the bot: the question log, conversation state, feedback, audit and the webhook inbox.

`bot/` and `admin_api/` both import from here; this package imports only `retrieval/` (for redaction).
"""
