"""Render a Reply for a chat channel: Telegram HTML (4,096 chars) or Zalo plain text (2,000 chars).

Messages are built from paragraphs and split on paragraph boundaries, so a
piece never ends inside an HTML tag or entity. Buttons are the adapters' job;
here choices also appear as numbered lines, so "1", "2", "3" work everywhere.

An answer with a short form (issue 17 item 2) is its short answer first; the details go out only when
asked for ("Xem chi tiết": a Telegram button, "0" on Zalo Bot, an OA button), as a reply of their own
(`bot.short_answer.details_reply`). Telegram folds the sources in an expandable blockquote (Bot API 7.4).
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable

from bot.messages import DETAILS_HINT_ZALO, NONE_OF_THESE, NONE_OF_THESE_WORD_HINT, RELATED_LABEL, SOURCES_LABEL
from bot.reply import Choice, Reply

TELEGRAM_LIMIT = 4096
ZALO_LIMIT = 2000
BUTTON_LABEL_LIMIT = 60

_ENTITY_TAIL = re.compile(r"&[#a-zA-Z0-9]{0,8}$")


def pick_hint(count: int) -> str:
    """"1, 2 hoặc 3" for three choices; "1 hoặc 2" for two."""
    numbers = [str(n) for n in range(1, count + 1)]
    return numbers[0] if count == 1 else ", ".join(numbers[:-1]) + " hoặc " + numbers[-1]


def numbered(choices: tuple[Choice, ...]) -> str:
    return "\n".join(f"{n}. {c.question}" for n, c in enumerate(choices, start=1))


def sources_line(reply: Reply) -> str:
    return "; ".join(reply.sources) + "." if reply.sources else ""


def body(reply: Reply) -> str:
    """What a channel shows of the reply's text: the short answer when it has one, else the whole text."""
    return reply.short or reply.text


def has_details(reply: Reply) -> bool:
    """Whether "Xem chi tiết" has something to open for this reply."""
    return bool(reply.short and reply.details)


def button_label(text: str, limit: int = BUTTON_LABEL_LIMIT) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


# ------------------------------------------------------------ splitting


def _hard_cut(text: str, limit: int) -> list[str]:
    """Cut a piece with no usable whitespace, never inside an HTML entity."""
    pieces = []
    while len(text) > limit:
        cut = limit
        tail = _ENTITY_TAIL.search(text[:cut])
        if tail and tail.start() > 0:
            cut = tail.start()
        pieces.append(text[:cut])
        text = text[cut:]
    return [*pieces, text] if text else pieces


def _split_block(block: str, limit: int, separators: tuple[str, ...]) -> list[str]:
    if len(block) <= limit:
        return [block]
    if not separators:
        return _hard_cut(block, limit)
    sep, rest = separators[0], separators[1:]
    pieces: list[str] = []
    current = ""
    for part in block.split(sep):
        candidate = part if not current else current + sep + part
        if len(candidate) <= limit:
            current = candidate
            continue
        if current:
            pieces.append(current)
        if len(part) <= limit:
            current = part
        else:
            *whole, current = _split_block(part, limit, rest)
            pieces.extend(whole)
    if current:
        pieces.append(current)
    return pieces


def split_text(text: str, limit: int) -> list[str]:
    """Split into pieces of at most `limit` chars: on blank lines, then lines, then spaces."""
    pieces = _split_block(text.strip(), limit, ("\n\n", "\n", " "))
    return [p.strip() for p in pieces if p.strip()]


# ------------------------------------------------------------ Telegram


def telegram_messages(reply: Reply, *, title: str | None = None, limit: int = TELEGRAM_LIMIT,
                      source_url: Callable[[str], str | None] | None = None) -> list[str]:
    """HTML messages (parse_mode=HTML): notice in italics, question in bold, answer, bold "Căn cứ".
    `source_url(source)`: the web page of a source's article (bot.field_kit.source_url), linked when given."""
    esc = lambda s: html.escape(s, quote=False)  # noqa: E731

    def cite(source: str) -> str:
        url = source_url(source) if source_url is not None else None
        return f'<a href="{html.escape(url)}">{esc(source)}</a>' if url else esc(source)

    title = title or reply.title
    paragraphs: list[str] = []
    if reply.notice:
        paragraphs.append(f"<i>{esc(reply.notice)}</i>")
    if title:
        paragraphs.append(f"<b>{esc(title)}</b>")
    if body(reply):
        paragraphs.append(esc(body(reply)))
    if reply.sources:  # folded: the articles took half a phone screen
        cited = "; ".join(cite(s) for s in reply.sources) + "."
        paragraphs.append(f"<blockquote expandable><b>{SOURCES_LABEL}</b> {cited}</blockquote>")
    if reply.choices:
        paragraphs.append(esc(numbered(reply.choices)))
        paragraphs.append(f"👉 <i>Bấm nút bên dưới, hoặc trả lời {pick_hint(len(reply.choices))} "
                          f"({NONE_OF_THESE_WORD_HINT} nếu không có câu nào đúng).</i>")
    return split_text("\n\n".join(paragraphs), limit) or [esc("Xin lỗi, tôi chưa có câu trả lời.")]


# ------------------------------------------------------------ Zalo


def zalo_sources(reply: Reply, source_url: Callable[[str], str | None] | None = None) -> str:
    """"Căn cứ: A; B." in plain text; with `source_url` (bot.field_kit.source_url), a line under it per cited
    article whose text is on the web: "🔗 Luật 41/2024/QH15, Điều 70: <its page>" (Zalo links a typed URL;
    an article cited for several clauses gets one line)."""
    lines = [f"{SOURCES_LABEL} {sources_line(reply)}"]
    seen: set[str] = set()
    for source in reply.sources if source_url is not None else ():
        url = (source_url(source) or "").split("#")[0]  # the article's page, not one clause's anchor
        if url and url not in seen:
            seen.add(url)
            lines.append(f"🔗 {source.split(', khoản')[0]}: {url}")
    return "\n".join(lines)


def zalo_messages(reply: Reply, *, title: str | None = None, limit: int = ZALO_LIMIT,
                  details_hint: str = DETAILS_HINT_ZALO,
                  source_url: Callable[[str], str | None] | None = None) -> list[str]:
    """Plain-text messages: no buttons on Zalo, so choices are numbered lines to answer by number, and the
    details of a short answer are asked for by a word (`details_hint`, "" where a button does it).
    `source_url(source)`: the web page of a source's article, listed under the sources when given (`zalo_sources`)."""
    title = title or reply.title
    paragraphs: list[str] = []
    if reply.notice:
        paragraphs.append(reply.notice)
    if title:
        paragraphs.append(f"❓ {title}")
    if body(reply):
        paragraphs.append(body(reply))
    if reply.sources:
        paragraphs.append(zalo_sources(reply, source_url))
    if has_details(reply) and details_hint:
        paragraphs.append(details_hint)
    if reply.choices:
        paragraphs.append(numbered(reply.choices) + f"\n{NONE_OF_THESE_WORD_HINT}. {NONE_OF_THESE}")
        paragraphs.append(f"👉 Trả lời {pick_hint(len(reply.choices))} để chọn câu hỏi, "
                          f"hoặc {NONE_OF_THESE_WORD_HINT} nếu không có câu nào đúng.")
    if reply.related:
        paragraphs.append(RELATED_LABEL + "\n" + "\n".join(f"• {c.question}" for c in reply.related))
    return split_text("\n\n".join(paragraphs), limit) or ["Xin lỗi, tôi chưa có câu trả lời."]
