"""The field kit on chat channels (issue 17 item 5): the topic index and law lookup, channel-independent.

Collaborators browse every topic's questions and read the law's articles from a chat:
- the topic index: "/chude" (Telegram), "chủ đề" / "chu de" typed anywhere → the topics with their
  question counts → a topic's questions, a page at a time → the answer (an entry, shown like any answer);
- law lookup: "/luat Điều 70 Luật 41/2024", "tra luật …", or a typed citation on its own ("khoản 2
  điều 31", "nghị định 158 điều 7 quy định gì") → the article's text, or the articles matching some words,
  from the legal texts the deployment installed (`knowledge.legal_texts`, BHXH_LEGAL_DIR).

Everything here returns a `Screen` (plain text paragraphs, items to pick, a "more" item, a web link);
the adapters render it: Telegram as HTML with buttons; Zalo as numbered lines (and buttons "#k:<action>" on
the OA) where the number the user types next is read back by `NumberedTurns` (the actions last shown are
kept in the store under the user's own key, beside but apart from the Service's pending choices).
Fixed sentences live in bot/messages.py (FIELD_KIT_*).

Item actions (also Telegram's callback data, at most 64 bytes):
  t:<topic>[:<page>]        a topic's questions (page from 1)
  e:<entry_id>              an answer (the adapter asks Service.choose for it)
  l:<doc-slug>:<article>    an article's text
"""

from __future__ import annotations

import html
import logging
import os
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote_plus

from bot import messages
from bot.channels.format import split_text
from bot.conversation import parse_pick
from bot.reply import LAW_LOOKUP
from knowledge import legal_texts
from knowledge.schema import KnowledgeBase
from knowledge.topics import MENU_ORDER, TOPICS
from retrieval.normalize import fold_accents, nfc, normalize_query
from storage.base import LoggedQuestion

log = logging.getLogger(__name__)

PUBLIC_URL_ENV = "BHXH_PUBLIC_URL"  # e.g. https://hoidap.example.vn: links to the web field kit pages
PAGE_SIZE = 8  # questions per page of a topic
MAX_MESSAGES = 3  # an article is sent in at most this many messages; the rest is on the web page
STATE_SECONDS = 3600.0  # a numbered list can be answered by number for this long
HIT_LIMIT = 6  # articles listed for a search by words

TOPIC_COMMANDS = {"chu de", "/chude", "chude", "cac chu de", "danh sach chu de", "danh sach cau hoi",
                  "xem chu de", "cau hoi theo chu de"}
# "/luat …", "tra luật: …" (read on the folded text, which keeps the length of an NFC text)
_LAW_PREFIX = re.compile(r"\s*(?:/luat|tra\s+cuu\s+luat|tra\s+dieu\s+luat|tra\s+luat|xem\s+luat)(?:\s*:\s*|\s+|$)")
# Words around a citation that do not make it a question for the engine ("Điều 70 quy định gì").
_FILLER = {"quy", "dinh", "gi", "noi", "la", "ve", "cua", "the", "nao", "dung", "xem", "toan", "van", "tra",
           "cuu", "cho", "hoi", "a", "nhe", "bhxh"}
_CITATION_START = re.compile(r"(?:dieu|khoan|diem [a-z] khoan|d|k)\s*\.?\s*\d")  # "điều 70 …", "k2 đ31"
MAX_CITATION_WORDS = 12  # "điều 70 luật 41 về hưởng một lần": longer texts are questions

TOPICS_TITLE, TOPICS_HINT = messages.FIELD_KIT_TOPICS_TITLE, messages.FIELD_KIT_TOPICS_HINT
HITS_TITLE, NO_TOPIC_ENTRIES = messages.FIELD_KIT_HITS_TITLE, messages.FIELD_KIT_NO_TOPIC_ENTRIES
STALE, MORE_LABEL = messages.FIELD_KIT_STALE, messages.FIELD_KIT_MORE


@dataclass(frozen=True)
class Item:
    label: str
    action: str  # see the module docstring


@dataclass(frozen=True)
class Link:
    label: str
    url: str


@dataclass(frozen=True)
class Screen:
    """What a field-kit command shows, before any channel's markup."""

    title: str = ""
    paragraphs: tuple[str, ...] = ()  # plain text
    items: tuple[Item, ...] = ()  # to pick: buttons on Telegram, numbered lines on Zalo
    more: Item | None = None  # the next page
    link: Link | None = None  # the same on the web (only with BHXH_PUBLIC_URL)
    notes: tuple[str, ...] = ()  # caveats (OCR, compilation, amendments): shown small, before the text
    continued: str = ""  # said after the last message when the text was too long for MAX_MESSAGES
    listed: bool = False  # the paragraphs already list the items, numbered


@dataclass(frozen=True)
class EntryPick:
    """An item naming an answer: the adapter shows it as any answer (Service.choose)."""

    entry_id: str


def public_url(env: Mapping[str, str] | None = None) -> str:
    """The public base URL of the web pages, "" when not configured (links are then left out)."""
    value = ((os.environ if env is None else env).get(PUBLIC_URL_ENV) or "").strip().rstrip("/")
    return value if value.startswith(("https://", "http://")) else ""


def _words(text: str) -> str:
    return " ".join(fold_accents(text).lower().replace("?", " ").split())


def law_query(text: str) -> str | None:
    """The lookup a message asks for, or None when it is a question for the engine.

    A citation typed on its own is a lookup ("Điều 70 Luật 41/2024", "khoản 2 điều 31 nói gì");
    a question that mentions an article among other words ("điều kiện …", "đóng 20 năm …") is not."""
    text = nfc(text)
    if prefix := _LAW_PREFIX.match(fold_accents(text).lower()):
        return text[prefix.end():].strip()
    folded = _words(text)
    ref = legal_texts.parse_reference(text)
    if ref.article is None:
        return None
    left = [w for w in ref.rest.split() if w not in _FILLER]
    if len(left) <= 2 or (_CITATION_START.match(folded) and len(folded.split()) <= MAX_CITATION_WORDS):
        return text.strip()
    return None


def is_topic_command(text: str) -> bool:
    return _words(text) in TOPIC_COMMANDS


def staff_holds(service: Any, channel: str, user_id: str) -> bool:
    """Whether a staff member has this chat (bot/handoff.py): then every message, a field-kit command too,
    goes to them through Service.handle and the bot stays silent."""
    handoff = getattr(service, "handoff", None)
    if handoff is None or not getattr(handoff, "enabled", False):
        return False
    try:
        return handoff.store.handoff_active(channel, user_id) is not None
    except Exception:  # the database is down: answer as usual, like the handoff itself does
        return False


def log_law_lookup(service: Any, channel: str, user_id: str, text: str, started: float | None = None) -> None:
    """A law lookup typed on chat goes into the question log (outcome and kind "law_lookup"; the store
    redacts it like every question), so staff can count them; topic browsing is not logged. A log that
    cannot be written never stops the article from being shown."""
    latency_ms = (time.perf_counter() - started) * 1000 if started is not None else 0.0
    try:
        service.store.log_question(LoggedQuestion(
            channel=channel, user_id=user_id, text=text, normalized=normalize_query(text), topic=None,
            entry_id=None, score=0.0, outcome=LAW_LOOKUP, kind=LAW_LOOKUP, latency_ms=latency_ms))
    except Exception:
        log.exception("field kit: could not log a law lookup")


def source_url(source: str, base: str) -> str | None:
    """The web page of a "Căn cứ" citation ("Luật 41/2024/QH15, Điều 70, khoản 1"), None without a
    public URL or when its text is not installed."""
    if not base:
        return None
    path = legal_texts.library().citation_link(source).path
    return base + path if path else None


class FieldKit:
    """The commands over the current knowledge base (`kb()`: the engine is swapped on staff edits)."""

    def __init__(self, kb: Callable[[], KnowledgeBase], *, base_url: str | None = None,
                 page_size: int = PAGE_SIZE) -> None:
        self.kb = kb
        self._base_url = base_url
        self.page_size = page_size

    @property
    def base_url(self) -> str:
        """The given base URL, else BHXH_PUBLIC_URL read at each command (no link when unset)."""
        return public_url() if self._base_url is None else self._base_url.rstrip("/")

    # ------------------------------------------------------------ routing

    def command(self, text: object) -> Screen | None:
        """The screen a typed message asks for, None when it is not a field-kit command."""
        if not isinstance(text, str) or len(text) > 300:
            return None
        if is_topic_command(text):
            return self.topics()
        query = law_query(text)
        return None if query is None else self.law(query)

    def typed(self, service: Any, channel: str, user_id: str, text: object) -> Screen | None:
        """`command` for a message from a citizen's chat: None while a staff member has the chat (it goes
        to them), and a law lookup is logged (`log_law_lookup`)."""
        return None if staff_holds(service, channel, user_id) else self.logged_command(service, channel, user_id, text)

    def logged_command(self, service: Any, channel: str, user_id: str, text: object) -> Screen | None:
        """`command`, a law lookup logged in the question log (`log_law_lookup`)."""
        started = time.perf_counter()
        screen = self.command(text)
        if screen is not None and isinstance(text, str) and not is_topic_command(text):
            log_law_lookup(service, channel, user_id, text, started)
        return screen

    def act(self, action: str) -> Screen | EntryPick | None:
        """What an item's action shows; None for an unreadable or stale action."""
        kind, _, rest = action.partition(":")
        if kind == "e" and rest in self.kb().entries:
            return EntryPick(rest)
        if kind == "t":
            topic, _, page = rest.partition(":")
            if topic in TOPICS and (not page or page.isdecimal()):
                return self.topic(topic, int(page or 1))
        if kind == "l":
            slug, _, article = rest.partition(":")
            return self.article(slug, int(article)) if article.isdecimal() else None
        return None

    # ------------------------------------------------------------ topics

    def topics(self) -> Screen:
        by_topic = self.kb().by_topic()
        order = [*MENU_ORDER, *(t for t in TOPICS if t not in MENU_ORDER)]
        items = tuple(Item(f"{TOPICS[t]} ({len(by_topic[t])})", f"t:{t}") for t in order if by_topic.get(t))
        return Screen(TOPICS_TITLE, (TOPICS_HINT,), items, link=self._link("Xem trên web", "/chu-de"))

    def topic(self, topic: str, page: int = 1) -> Screen:
        entries = self.kb().by_topic().get(topic, [])
        link = self._link("Xem cả danh sách trên web", f"/chu-de#{topic}")
        if not entries:
            return Screen(TOPICS[topic], (NO_TOPIC_ENTRIES,), link=link)
        pages = (len(entries) + self.page_size - 1) // self.page_size
        page = min(max(page, 1), pages)
        shown = entries[(page - 1) * self.page_size: page * self.page_size]
        where = f" (trang {page}/{pages})" if pages > 1 else ""
        more = Item(MORE_LABEL, f"t:{topic}:{page + 1}") if page < pages else None
        return Screen(TOPICS[topic], (f"{len(entries)} câu hỏi{where}.",),
                      tuple(Item(e.question, f"e:{e.id}") for e in shown), more, link)

    # ------------------------------------------------------------ the law

    def law(self, query: str) -> Screen:
        library = legal_texts.library()
        result = library.lookup(query)
        if result.article is not None and result.document is not None:
            clause = result.reference.clause if result.reference is not None and not result.message else None
            return self._article_screen(result.document, result.article, clause, result.message)
        if result.hits:
            hits = result.hits[:HIT_LIMIT]
            items = tuple(Item(f"{h.document.name}, {h.article.heading}", f"l:{h.document.slug}:{h.article.number}")
                          for h in hits)
            snippets = tuple(f"{n}. {h.document.name}, {h.article.heading}: {h.snippet}"
                             for n, h in enumerate(hits, start=1))
            return Screen(HITS_TITLE, snippets, items, link=self._link("Tìm trên web", "/luat?q=" + quote_plus(query)),
                          listed=True)
        if result.document is not None and not result.message:
            document = result.document
            return Screen(f"{document.name}: {document.title}",
                          (f"Văn bản có {document.span()}. Gõ số điều để xem, ví dụ: Điều "
                           f"{min(document.articles)} {document.name}.",),
                          notes=tuple(document.notes), link=self._link("Xem trên web", f"/luat/{document.slug}"))
        return Screen(paragraphs=(result.message or legal_texts.EMPTY_QUERY,))

    def article(self, slug: str, number: int) -> Screen | None:
        document = legal_texts.library().by_slug(slug)
        article = document.articles.get(number) if document is not None else None
        if document is None or article is None:
            return None
        return self._article_screen(document, article, None, "")

    def _article_screen(self, document: legal_texts.LegalDocument, article: legal_texts.Article,
                        clause: int | None, message: str) -> Screen:
        asked = article.clause(clause) if clause is not None else None
        if asked is not None:
            title = f"Khoản {clause} Điều {article.number} {document.name}"
            paragraphs = ("\n".join(asked.lines),)
        else:
            title = f"{document.name}, {article.heading}"
            paragraphs = tuple(p for p in ("\n".join(article.intro), *("\n".join(c.lines) for c in article.clauses))
                               if p)
        if message:
            paragraphs = (message, *paragraphs)
        link = self._link("Xem toàn văn trên web", legal_texts.article_path(document, article.number, clause))
        hint = (f"Còn tiếp. Gõ “khoản 1 điều {article.number} {document.name}” (hoặc số khoản khác) để xem "
                "từng khoản.") if article.clauses else "Còn tiếp."
        return Screen(title, paragraphs, notes=tuple(document.notes_for(article.number)), link=link,
                      continued="Còn tiếp trên trang web." if link else hint)

    def _link(self, label: str, path: str) -> Link | None:
        return Link(label, self.base_url + path) if self.base_url else None


# ------------------------------------------------------------ numbered lists (channels without buttons)


def numbered_state(screen: Screen, now: float | None = None) -> dict[str, Any] | None:
    """What to remember so the next "1", "2" … (or "0" for more) picks from this screen."""
    if not screen.items and screen.more is None:
        return None
    return {"fieldkit": [i.action for i in screen.items], "more": screen.more.action if screen.more else None,
            "at": time.time() if now is None else now}


def _expired(state: Mapping[str, Any], now: float | None) -> bool:
    return (time.time() if now is None else now) - float(state.get("at") or 0) > STATE_SECONDS


def picked(state: Mapping[str, Any], number: int) -> str | None:
    """The action the number picks from the remembered screen, None when it picks nothing."""
    actions = state.get("fieldkit")
    if not isinstance(actions, list):
        return None
    if number == 0:
        return state["more"] if isinstance(state.get("more"), str) else None
    return str(actions[number - 1]) if 1 <= number <= len(actions) else None


def _pick_range(state: Mapping[str, Any]) -> str:
    count = len(state.get("fieldkit") or [])
    more = ", hoặc 0 để xem thêm" if state.get("more") else ""
    return f"Bạn hãy gõ một số từ 1 đến {count}{more}." if count else "Bạn hãy gõ 0 để xem thêm."


class NumberedTurns:
    """Field-kit commands on a channel without buttons (Zalo): a typed command shows a numbered
    screen, the number typed next picks from it. The screen's actions are kept in the store under
    the user's own key ("fieldkit:<channel>:<user hash>"), so they never mix with the Service's
    pending choices; any other message forgets them and goes to the Service as usual."""

    def __init__(self, kit: FieldKit, service: Any, channel: str) -> None:
        self.kit, self.service, self.store, self.channel = kit, service, service.store, channel

    def _key(self, user_id: str) -> str:
        return f"fieldkit:{self.channel}:{self.store.hash_user(self.channel, user_id)}"

    def turn(self, user_id: str, text: object, now: float | None = None) -> Screen | EntryPick | None:
        """The field kit's answer to a typed message, None when the message is for the Service (or for the
        staff member who has the chat)."""
        if staff_holds(self.service, self.channel, user_id):
            return None
        key = self._key(user_id)
        state = self.store.load_state(key)
        number = parse_pick(text)
        result: Screen | EntryPick | None
        if state and number is not None:
            if _expired(state, now):
                self.store.clear_state(key)
                return Screen(paragraphs=(STALE,))
            action = picked(state, number)
            if action is None:
                return Screen(paragraphs=(_pick_range(state),))  # the list stays: pick again
            result = self.kit.act(action) or Screen(paragraphs=(STALE,))
        else:
            result = self.kit.logged_command(self.service, self.channel, user_id, text)
            if result is None:
                if state:
                    self.store.clear_state(key)
                return None
        return self._shown(key, state, result, now)

    def act(self, user_id: str, action: str) -> Screen | EntryPick:
        """A button's action (a platform with buttons that come back as events): shown, and remembered so
        typed numbers pick from it too."""
        key = self._key(user_id)
        return self._shown(key, self.store.load_state(key), self.kit.act(action) or Screen(paragraphs=(STALE,)))

    def _shown(self, key: str, state: Mapping[str, Any], result: Screen | EntryPick,
               now: float | None = None) -> Screen | EntryPick:
        remembered = numbered_state(result, now) if isinstance(result, Screen) else None
        if remembered is not None:
            self.store.save_state(key, remembered)
        elif state:
            self.store.clear_state(key)
        return result


# ------------------------------------------------------------ rendering


def fit(text: str, limit: int, continued: str) -> list[str]:
    """Messages of at most `limit` characters, split on paragraphs, at most MAX_MESSAGES of them; when
    the text is longer, the last one ends with `continued` (already in the channel's markup)."""
    messages = split_text(text, limit)
    if len(messages) <= MAX_MESSAGES:
        return messages
    kept = messages[:MAX_MESSAGES]
    tail = "\n\n" + continued
    if len(kept[-1]) + len(tail) > limit:
        kept[-1] = split_text(kept[-1], limit - len(tail))[0]
    kept[-1] += tail
    return kept


def _numbered(items: tuple[Item, ...]) -> str:
    return "\n".join(f"{n}. {item.label}" for n, item in enumerate(items, start=1))


def plain_messages(screen: Screen, limit: int) -> list[str]:
    """Zalo: plain text, the items numbered to answer by number."""
    parts = [f"📖 {screen.title}" if screen.title else "", *(f"({note})" for note in screen.notes), *screen.paragraphs]
    texts = fit("\n\n".join(p for p in parts if p), limit, screen.continued)
    tail = []
    if screen.items and not screen.listed:
        tail.append(_numbered(screen.items))
    picks = [f"1 đến {len(screen.items)} để chọn"] if screen.items else []
    picks += ["0 để xem thêm"] if screen.more else []
    if picks:
        tail.append("👉 Gõ " + ", ".join(picks) + ".")
    if screen.link:
        tail.append(f"{screen.link.label}: {screen.link.url}")
    if not tail:
        return texts
    after = "\n\n".join(tail)
    if texts and len(texts[-1]) + 2 + len(after) <= limit:
        return [*texts[:-1], texts[-1] + "\n\n" + after]
    return texts + split_text(after, limit)


def html_messages(screen: Screen, limit: int, button_limit: int) -> tuple[list[str], list[Item]]:
    """Telegram: HTML messages and the buttons (numbered items, then "Xem thêm") for the last one. The
    items are listed in the text too when a button would cut a label short."""
    esc = lambda s: html.escape(s, quote=False)  # noqa: E731
    parts = [f"<b>{esc(screen.title)}</b>" if screen.title else "", *(f"<i>{esc(note)}</i>" for note in screen.notes),
             *map(esc, screen.paragraphs)]
    if not screen.listed and any(len(f"{n}. {i.label}") > button_limit for n, i in enumerate(screen.items, 1)):
        parts.append(esc(_numbered(screen.items)))
    continued = esc(screen.continued)
    if screen.link:
        link = f'<a href="{html.escape(screen.link.url)}">{esc(screen.link.label)}</a>'
        continued = f'{esc("Còn tiếp:")} {link}'
    texts = fit("\n\n".join(p for p in parts if p), limit, continued)
    if screen.link and continued not in texts[-1]:
        texts[-1] += f"\n\n🌐 {link}"
    numbered = [Item(f"{n}. {i.label}", i.action) for n, i in enumerate(screen.items, start=1)]
    return texts, [*numbered, *([Item(f"➡️ {screen.more.label}", screen.more.action)] if screen.more else [])]
