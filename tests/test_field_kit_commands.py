"""The field kit on chat channels (bot/field_kit.py): the topic index and law lookup, first on their
own, then end to end: a real python-telegram-bot Application against the fake Bot API and the Zalo Bot
Platform webhook against the fake Zalo server. Legal texts come from ../shared/legal (BHXH_LEGAL_DIR);
the tests that need them skip when it is absent."""

from __future__ import annotations

import html
import re
import time
from pathlib import Path

import pytest
import test_telegram
import test_zalo
import test_zalo_oa
from fakes.service import clean_env, engine, make_service, question_count
from fakes.telegram import callback_update, text_update
from fakes.zalo import bot_update

from bot.channels.format import BUTTON_LABEL_LIMIT, TELEGRAM_LIMIT, ZALO_LIMIT, zalo_messages
from bot.channels.zalo_oa import MAX_BUTTONS
from bot.field_kit import (
    MAX_MESSAGES,
    MORE_LABEL,
    STALE,
    STATE_SECONDS,
    EntryPick,
    FieldKit,
    NumberedTurns,
    Screen,
    html_messages,
    is_topic_command,
    law_query,
    plain_messages,
    source_url,
)
from knowledge.legal_texts import EMPTY_QUERY, NO_TEXTS
from knowledge.topics import MENU_ORDER, TOPICS

# The channels' own fixtures: a real PTB Application on the fake Bot API, the Zalo Bot Platform webhook on
# the fake Zalo server.
fake, tg, zb = test_telegram.fake, test_telegram.tg, test_zalo.zb
oa, oa_fake = test_zalo_oa.oa, test_zalo_oa.oa_fake  # the Zalo OA webhook on the fake OA server
PUBLIC = "https://hoidap.example.vn"
CITATIONS = ["Điều 70 Luật 41/2024", "khoản 2 điều 31", "nghị định 158 điều 7", "nd 158 d7",
             "Điều 70 Luật BHXH 2024 quy định gì", "dieu 70 luat bhxh", "/luat hưởng một lần", "tra luật: thai sản"]
QUESTIONS = ["điều kiện hưởng lương hưu là gì", "đóng 20 năm được bao nhiêu", "rút bhxh 1 lần được không",
             "nghỉ việc 12 tháng có được rút không", "chủ đề thai sản thế nào"]


@pytest.fixture
def no_texts(tmp_path, monkeypatch):
    clean_env(monkeypatch, tmp_path)
    monkeypatch.delenv("BHXH_LEGAL_DIR", raising=False)
    monkeypatch.delenv("BHXH_PUBLIC_URL", raising=False)


@pytest.fixture
def legal(shared_dir, no_texts, monkeypatch) -> Path:
    folder = shared_dir / "legal"
    if not folder.is_dir():
        pytest.skip("../shared/legal is absent")
    monkeypatch.setenv("BHXH_LEGAL_DIR", str(folder))
    return folder


def kit(base_url: str = "") -> FieldKit:
    return FieldKit(lambda: engine().kb, base_url=base_url)


# ============================================================ on their own


@pytest.mark.parametrize("text", CITATIONS)
def test_citations_and_law_commands_go_to_the_lookup(text):
    assert law_query(text) is not None


@pytest.mark.parametrize(("text", "query"), [("tra   luật: thai sản", "thai sản"), ("tra luật:thai sản", "thai sản"),
                                            ("Tra cứu luật hưởng một lần", "hưởng một lần"), ("/luat", ""),
                                            ("/luatx", None), ("trả lương", None)])
def test_law_commands_keep_the_words_after_them(text, query):
    assert law_query(text) == query


def test_questions_stay_with_the_engine_even_when_they_cite_an_article():
    questions = [*QUESTIONS, *(e.question for e in engine().kb.entries.values()),
                 "Theo quy định tại Điều 28 Luật BHXH thì lao động nữ được hưởng toàn bộ chế độ thai sản khi đã "
                 "đóng đủ 6 tháng, xin hỏi trường hợp của tôi nếu bị gián đoạn đóng thì có được hưởng không?"]
    routed = [q for q in questions if law_query(q) is not None or is_topic_command(q)]
    assert routed == []


def test_topic_index_lists_every_entry_once_across_pages():
    screen = kit().topics()
    by_topic = engine().kb.by_topic()
    shown = [i.action.removeprefix("t:") for i in screen.items]
    assert sorted(shown) == sorted(t for t in TOPICS if by_topic[t]) and shown[:3] == MENU_ORDER[:3]
    assert all(f"({len(by_topic[t])})" in i.label for t, i in zip(shown, screen.items, strict=True))
    seen: list[str] = []
    for topic in TOPICS:
        page: Screen | None = kit().topic(topic)
        while page is not None:
            assert len(page.items) <= 8
            seen += [i.action.removeprefix("e:") for i in page.items]
            page = kit().act(page.more.action) if page.more else None  # type: ignore[assignment]
    assert sorted(seen) == sorted(engine().kb.entries)


def test_topic_page_links_to_the_web_only_with_a_public_url():
    assert kit().topic("pension").link is None
    assert kit(PUBLIC + "/").topic("pension").link.url == PUBLIC + "/chu-de#pension"  # type: ignore[union-attr]


def test_no_legal_texts_says_so(no_texts):
    for text in ("khoản 2 điều 31", "/luat hưởng một lần"):
        screen = kit().command(text)
        assert screen is not None and screen.paragraphs == (NO_TEXTS,) and not screen.items


def test_a_clause_asked_shows_that_clause(legal):
    screen = kit(PUBLIC).command("khoản 2 điều 31")
    assert screen is not None and screen.title == "Khoản 2 Điều 31 Luật 41/2024/QH15"
    assert screen.paragraphs[0].startswith("2. ") and "mức chuẩn hộ nghèo" in screen.paragraphs[0]
    assert screen.link.url == PUBLIC + "/luat/41-2024-qh15/31#khoan-2"  # type: ignore[union-attr]


@pytest.mark.parametrize("limit", [ZALO_LIMIT, TELEGRAM_LIMIT])
def test_a_long_article_is_split_under_the_limit_and_ends_with_its_link(legal, limit):
    screen = kit(PUBLIC).command("nghị định 283 điều 49")  # about 15,600 characters
    assert screen is not None and screen.title.startswith("Nghị định 283/2026/NĐ-CP, Điều 49")
    texts = plain_messages(screen, limit) if limit == ZALO_LIMIT else html_messages(screen, limit, 60)[0]
    assert all(len(t) <= limit for t in texts) and len(texts) <= MAX_MESSAGES + 1
    assert PUBLIC + "/luat/283-2026-nd-cp/49" in texts[-1]
    assert any("OCR" in t for t in texts[:1])  # the caveat comes before the text, never cut off


def test_words_give_numbered_articles_each_opening_its_text(legal):
    screen = kit().command("/luat hưởng bảo hiểm xã hội một lần")
    assert screen is not None and screen.items and screen.listed
    assert all(re.fullmatch(r"l:[a-z0-9-]+:\d+", i.action) and len(i.action.encode()) <= 64 for i in screen.items)
    opened = kit().act(screen.items[0].action)
    assert isinstance(opened, Screen) and opened.title == screen.items[0].label


def test_numbered_turns_pick_page_and_answer_then_forget(tmp_path):
    turns = NumberedTurns(kit(), make_service(tmp_path / "bhxh.db"), "zalo_bot")
    index = turns.turn("u1", "Chủ đề")
    assert isinstance(index, Screen) and index.items
    n = [i.action for i in index.items].index("t:pension") + 1
    first = turns.turn("u1", str(n))
    assert isinstance(first, Screen) and first.title == TOPICS["pension"] and first.more is not None
    second = turns.turn("u1", "0")
    assert isinstance(second, Screen) and "trang 2/" in second.paragraphs[0]
    assert turns.turn("u1", "99") == Screen(paragraphs=("Bạn hãy gõ một số từ 1 đến 8, hoặc 0 để xem thêm.",))
    assert turns.turn("u1", "1") == EntryPick(second.items[0].action.removeprefix("e:"))
    assert turns.turn("u1", "1") is None  # the answer ended the list: "1" is the Service's again
    turns.turn("u1", "chu de")
    assert turns.turn("u1", "rút bhxh 1 lần được không") is None and turns.turn("u1", "2") is None
    turns.turn("u2", "chủ đề")
    later = turns.turn("u2", "1", now=time.time() + STATE_SECONDS + 1)
    assert later == Screen(paragraphs=(STALE,)) and turns.turn("u2", "1") is None


def test_a_button_press_is_remembered_for_typed_numbers(tmp_path):
    turns = NumberedTurns(kit(), make_service(tmp_path / "bhxh.db"), "zalo_oa")
    page = turns.act("u1", "t:maternity:2")
    assert isinstance(page, Screen) and "trang 2/" in page.paragraphs[0]
    assert turns.turn("u1", "1") == EntryPick(page.items[0].action.removeprefix("e:"))
    assert turns.act("u1", "t:no-such-topic") == Screen(paragraphs=(STALE,))


# ============================================================ Telegram, end to end


def _buttons(call) -> list[tuple[str, str]]:
    markup = call.params.get("reply_markup") or {}
    return [(b["text"], b.get("callback_data", "")) for row in markup.get("inline_keyboard", []) for b in row]


def test_telegram_chude_topic_pages_and_an_answer(no_texts, tg):
    tg.post(text_update("/chude"))
    (index,) = tg.fake.wait_sent(1)
    assert "<b>Câu hỏi theo chủ đề</b>" in index.params["text"]
    assert "t:pension" in [d for _, d in _buttons(index)]
    tg.post(callback_update("t:pension"))
    page = tg.fake.wait_sent(2)[1]
    datas = [d for _, d in _buttons(page)]
    assert len([d for d in datas if d.startswith("e:")]) == 8 and datas[-1] == "t:pension:2"
    assert _buttons(page)[-1][0].endswith(MORE_LABEL)
    pages = -(-len(engine().kb.by_topic()["pension"]) // 8)
    tg.post(callback_update(f"t:pension:{pages}"))
    last = tg.fake.wait_sent(3)[2]
    assert f"trang {pages}/{pages}" in last.params["text"]
    assert not any(d.startswith("t:") for _, d in _buttons(last))
    entry = next(d for _, d in _buttons(last)).removeprefix("e:")
    tg.post(callback_update(f"e:{entry}"))
    answer = tg.fake.wait_sent(4)[3]
    assert answer.params["text"].startswith(f"<b>{html.escape(engine().kb.entries[entry].question, quote=False)}")
    tg.post(text_update("chủ đề"))  # typed, with or without the slash
    assert "Câu hỏi theo chủ đề" in tg.fake.wait_sent(5)[4].params["text"]
    assert question_count(tg.service) == 0  # browsing is not asking
    assert all(len(label) <= BUTTON_LABEL_LIMIT for label, _ in _buttons(page))


def test_telegram_luat_shows_the_article_with_its_web_link(legal, tg, monkeypatch):
    monkeypatch.setenv("BHXH_PUBLIC_URL", PUBLIC)
    tg.post(text_update("/luat Điều 70 Luật 41/2024"))
    sent = tg.fake.wait_sent(1)
    text = "\n".join(c.params["text"] for c in sent)
    assert "<b>Luật 41/2024/QH15, Điều 70. Hưởng bảo hiểm xã hội một lần</b>" in sent[0].params["text"]
    assert all(len(c.params["text"]) <= TELEGRAM_LIMIT for c in sent)
    assert "a) Đủ tuổi hưởng lương hưu mà chưa đủ 15 năm đóng bảo hiểm xã hội." in text
    assert f'<a href="{PUBLIC}/luat/41-2024-qh15/70">' in sent[-1].params["text"]


def logged(service) -> list[tuple[str, str, str, str | None]]:
    """The question log's (text, outcome, kind, entry) rows, oldest first."""
    return service.store.db.execute("SELECT text, outcome, kind, entry_id FROM questions ORDER BY id").fetchall()


def test_telegram_typed_citation_is_looked_up_not_asked(legal, tg):
    tg.post(text_update("khoản 2 điều 31"))
    (call,) = tg.fake.wait_sent(1)
    assert call.params["text"].startswith("<b>Khoản 2 Điều 31 Luật 41/2024/QH15</b>")
    assert "mức chuẩn hộ nghèo" in call.params["text"]
    assert logged(tg.service) == [("khoản 2 điều 31", "law_lookup", "law_lookup", None)]  # counted, not asked


def test_telegram_law_lookups_are_logged_redacted(legal, tg):
    tg.post(text_update("điều 64 luật bhxh 0912345678"))  # a citation alone, a phone number typed after it
    assert tg.fake.wait_sent(1)[0].params["text"].startswith("<b>Luật 41/2024/QH15, Điều 64")
    tg.post(text_update("/luat hưởng một lần"))
    tg.fake.wait_sent(2)
    tg.post(callback_update("t:pension"))  # browsing topics is not a lookup
    tg.fake.wait_sent(3)
    rows = logged(tg.service)
    assert [(outcome, kind) for _, outcome, kind, _ in rows] == [("law_lookup", "law_lookup")] * 2
    assert "0912345678" not in rows[0][0] and rows[0][0].startswith("điều 64 luật bhxh")
    assert rows[1][0] == "/luat hưởng một lần"


def test_telegram_luat_by_words_then_a_button(legal, tg):
    tg.post(text_update("/luat hưởng bảo hiểm xã hội một lần"))
    (hits,) = tg.fake.wait_sent(1)
    datas = [d for _, d in _buttons(hits)]
    assert datas and all(d.startswith("l:") for d in datas)
    tg.post(callback_update(datas[0]))
    article = tg.fake.wait_sent(2)[1]
    assert article.params["text"].startswith("<b>") and "Điều" in article.params["text"]
    tg.post(text_update("/luat"))
    assert tg.fake.wait_sent(3)[2].params["text"] == html.escape(EMPTY_QUERY, quote=False)


def test_telegram_luat_without_texts_says_none_are_installed(no_texts, tg):
    tg.post(text_update("/luat Điều 70"))
    (call,) = tg.fake.wait_sent(1)
    assert call.params["text"] == html.escape(NO_TEXTS, quote=False)


# ============================================================ Zalo Bot Platform, end to end


def test_zalo_chu_de_numbers_pages_and_an_answer(no_texts, zb):
    zb.post(bot_update("chu de"))
    (index,) = zb.fake.wait_sent(1)
    lines = index["text"].splitlines()
    n = next(line.split(".")[0] for line in lines if line.split(". ", 1)[-1].startswith(TOPICS["survivors"]))
    assert "👉 Gõ 1 đến" in index["text"]
    zb.post(bot_update(n))
    page = zb.fake.wait_sent(2)[1]["text"]
    assert page.startswith("📖 " + TOPICS["survivors"]) and "0 để xem thêm" in page
    zb.post(bot_update("0"))
    page2 = zb.fake.wait_sent(3)[2]["text"]
    assert "trang 2/" in page2
    first = re.search(r"^1\. (.+)$", page2, re.M).group(1)  # type: ignore[union-attr]
    zb.post(bot_update("1"))
    assert zb.fake.wait_sent(4)[3]["text"].startswith("❓ " + first)
    assert question_count(zb.service) == 0
    zb.post(bot_update("rút bhxh 1 lần được không"))  # an ordinary question goes to the Service as before
    zb.fake.wait_sent(5)
    assert question_count(zb.service) == 1


def test_zalo_citation_split_under_2000(legal, zb):
    zb.post(bot_update("nghị định 158 điều 7"))
    sent = zb.fake.wait_sent(2)
    assert sent[0]["text"].startswith("📖 Nghị định 158/2025/NĐ-CP, Điều 7.")
    assert all(len(m["text"]) <= ZALO_LIMIT for m in sent)
    zb.post(bot_update("tra luật: thai sản"))
    zb.fake.wait_sent(3)
    assert logged(zb.service) == [("nghị định 158 điều 7", "law_lookup", "law_lookup", None),
                                  ("tra luật: thai sản", "law_lookup", "law_lookup", None)]


def test_zalo_without_texts(no_texts, zb):
    zb.post(bot_update("điều 70 luật bhxh"))
    assert zb.fake.wait_sent(1)[0]["text"] == NO_TEXTS


def test_zalo_field_kit_stays_silent_while_a_staff_member_has_the_chat(no_texts, zb):
    zb.post(bot_update("gặp cán bộ"))
    zb.fake.wait_sent(1)
    assert zb.service.store.handoff_active("zalo_bot", "u-lan-01") is not None
    zb.post(bot_update("chủ đề"))  # goes to the staff member like any message, no topic list from the bot
    time.sleep(0.5)
    assert len(zb.fake.sent()) == 1


def test_telegram_answer_links_each_source_to_its_article(legal, tg, monkeypatch):
    monkeypatch.setenv("BHXH_PUBLIC_URL", PUBLIC)
    expected = engine().ask("rút bhxh 1 lần được không")
    linked = [s for s in expected.sources if "Luật 41/2024/QH15, Điều" in s]
    assert linked
    tg.post(text_update("rút bhxh 1 lần được không"))
    text = "\n".join(c.params["text"] for c in tg.fake.wait_sent(1))
    for source in linked:
        article = re.search(r"Điều (\d+)", source).group(1)  # type: ignore[union-attr]
        assert re.search(rf'<a href="{PUBLIC}/luat/41-2024-qh15/{article}(#khoan-\d+)?">{re.escape(source)}</a>',
                         text), source


def test_telegram_sources_are_plain_text_without_a_public_url(legal, tg):
    tg.post(text_update("rút bhxh 1 lần được không"))
    assert "<a href" not in "\n".join(c.params["text"] for c in tg.fake.wait_sent(1))


def _article_lines(sources: tuple[str, ...]) -> list[str]:
    """The "🔗" line a Zalo answer has for each cited article of Luật 41/2024 (one per article)."""
    articles = dict.fromkeys(re.search(r"Điều (\d+)", s).group(1) for s in sources  # type: ignore[union-attr]
                             if s.startswith("Luật 41/2024/QH15, Điều"))
    return [f"🔗 Luật 41/2024/QH15, Điều {a}: {PUBLIC}/luat/41-2024-qh15/{a}" for a in articles]


def test_zalo_bot_answer_links_each_cited_article(legal, zb, monkeypatch):
    monkeypatch.setenv("BHXH_PUBLIC_URL", PUBLIC)
    expected = engine().ask("rút bhxh 1 lần được không")
    lines = _article_lines(expected.sources)
    assert lines
    zb.post(bot_update("rút bhxh 1 lần được không"))
    sent = [m["text"] for m in zb.fake.wait_sent(1)]
    text = "\n".join(sent)
    assert all(line in text.splitlines() for line in lines) and all(len(t) <= ZALO_LIMIT for t in sent)
    assert "Căn cứ: " + "; ".join(expected.sources) + "." in text  # the citations themselves as before


def test_zalo_sources_stay_plain_without_a_public_url(legal, zb):
    zb.post(bot_update("rút bhxh 1 lần được không"))
    assert "🔗" not in zb.fake.wait_sent(1)[0]["text"] and "http" not in zb.fake.wait_sent(1)[0]["text"]


def test_every_entry_with_its_article_links_fits_zalo_messages(legal):
    """Every entry rendered for Zalo with a long public URL: each message within 2,000 characters, each cited
    article of the law linked once, no URL cut between two messages."""
    base = "https://hoi-dap-bao-hiem-xa-hoi.tinh-lam-dong.example.gov.vn"
    for entry_id in engine().kb.entries:
        reply = engine().entry_reply(entry_id, None)
        assert reply is not None
        sent = zalo_messages(reply, source_url=lambda s: source_url(s, base))
        assert all(len(t) <= ZALO_LIMIT for t in sent), entry_id
        links = [line for t in sent for line in t.splitlines() if line.startswith("🔗 ")]
        wanted = [line.replace(PUBLIC, base) for line in _article_lines(reply.sources)]
        assert [line for line in links if "Luật 41/2024/QH15" in line] == wanted, entry_id
        # an article's page, or the document's when a whole decree is cited
        assert all(re.fullmatch(r"🔗 .+: " + re.escape(base) + r"/luat/[a-z0-9-]+(/\d+)?", line) for line in links)


# ============================================================ Zalo OA, end to end


def test_zalo_oa_answer_links_each_cited_article(legal, oa, monkeypatch):
    monkeypatch.setenv("BHXH_PUBLIC_URL", PUBLIC)
    expected = engine().ask("rút bhxh 1 lần được không")
    oa.say("rút bhxh 1 lần được không")
    sent = [m["message"]["text"] for m in oa.fake.wait_messages(1)]
    assert all(line in "\n".join(sent).splitlines() for line in _article_lines(expected.sources))
    assert all(len(t) <= ZALO_LIMIT for t in sent)


def test_zalo_oa_topic_index_buttons_pages_and_an_answer(no_texts, oa):
    oa.say("chủ đề")
    index = oa.fake.wait_messages(1)[0]["message"]
    assert index["text"].startswith("📖 Câu hỏi theo chủ đề")
    buttons = oa.fake.buttons(0)
    assert len(buttons) == MAX_BUTTONS and all(b["payload"].startswith("#k:t:") for b in buttons)
    test_zalo_oa._press(oa, buttons[0])  # a topic: its first page, every question a button, then "Xem thêm"
    page = oa.fake.wait_messages(2)[1]["message"]["text"]
    first = oa.fake.buttons(1)
    assert [b["payload"].split(":")[1] for b in first] == ["e"] * (MAX_BUTTONS - 1) + ["t"]
    assert first[-1]["title"].endswith(MORE_LABEL) and "trang 1/" in page
    test_zalo_oa._press(oa, first[-1])
    assert "trang 2/" in oa.fake.wait_messages(3)[2]["message"]["text"]
    second = oa.fake.buttons(2)
    oa.say("1")  # typed numbers pick from the page a button opened
    answer = oa.fake.wait_messages(4)[3]["message"]["text"]
    assert answer.startswith("❓ " + second[0]["title"].split(". ", 1)[1].rstrip("…")[:40])
    assert question_count(oa.service) == 0


def test_zalo_oa_citation_shows_the_article(legal, oa):
    oa.say("khoản 2 điều 31")
    text = oa.fake.wait_messages(1)[0]["message"]["text"]
    assert text.startswith("📖 Khoản 2 Điều 31 Luật 41/2024/QH15") and len(text) <= ZALO_LIMIT
    assert logged(oa.service) == [("khoản 2 điều 31", "law_lookup", "law_lookup", None)]
