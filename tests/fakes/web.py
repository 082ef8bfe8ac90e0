"""Helpers for the web chat driven in Chromium (Playwright pages)."""

from __future__ import annotations

from typing import Any


def ask(page: Any, text: str, timeout: float = 15000) -> Any:
    """Type a question in the web chat, wait for the bot's next message and return it (a Locator)."""
    before = page.locator(".msg.bot:not(.typing)").count()
    page.fill("#q", text)
    page.keyboard.press("Enter")
    page.wait_for_function(f"document.querySelectorAll('.msg.bot:not(.typing)').length > {before}", timeout=timeout)
    return page.locator(".msg.bot").last
