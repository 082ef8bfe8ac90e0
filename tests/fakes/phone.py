"""A phone-sized page in the `browser` fixture's Chromium, with the page's script errors collected."""

from __future__ import annotations

from typing import Any

PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2, "locale": "vi-VN", "is_mobile": True,
         "has_touch": True}


def phone_page(browser: Any, url: str, **overrides: Any) -> tuple[Any, list[str]]:
    """(page at `url`, the list its uncaught script errors are appended to)."""
    page = browser.new_context(**{**PHONE, **overrides}).new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url)
    return page, errors
