"""Short answer first in the web chat, in Debian's headless Chromium (issue 17 item 2): the short answer
shows, the details and the sources are folded and open on a tap, and the log lands on the START of a new
answer. The printed answer card (/hoi-dap/<id>) still holds the whole answer."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from fakes.phone import phone_page
from fakes.server import ServerThread
from fakes.service import clean_env, make_service
from fakes.web import ask

from admin_api.app import create_app
from bot.short_answer import sentences

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
# A long answer (survivors of a pensioner: four numbered parts) and two short exchanges before it.
LONG_Q = "ông nhà tôi đang hưởng lương hưu mới mất thì gia đình được nhận những gì"
WARM_UP = ("rút bhxh 1 lần được không", "chồng được nghỉ mấy ngày khi vợ sinh con")


@pytest.fixture
def service(tmp_path, monkeypatch):
    clean_env(monkeypatch, tmp_path)
    return make_service(tmp_path / "bhxh.db")


@pytest.fixture
def server(service):
    with ServerThread(create_app(service)) as running:
        yield running


def _settled_scroll(page) -> float:
    """The log's scrollTop once a smooth scroll has stopped moving."""
    return page.evaluate("""() => new Promise((done) => {
        const log = document.getElementById('log');
        let last = -1, still = 0;
        const tick = () => {
            if (log.scrollTop === last) { if (++still >= 5) return done(log.scrollTop); } else { still = 0; }
            last = log.scrollTop;
            requestAnimationFrame(tick);
        };
        tick();
    })""")


def _answer_top(page) -> float:
    """Where the newest answer starts, in pixels below the top of the visible log."""
    return page.evaluate("""() => {
        const log = document.getElementById('log');
        const answers = document.querySelectorAll('.msg.bot:not(.typing)');
        return answers[answers.length - 1].getBoundingClientRect().top - log.getBoundingClientRect().top;
    }""")


def test_short_answer_first_details_folded_and_scrolled_to_its_start(browser, server, service):
    expected = service.engine.ask(LONG_Q)
    assert expected.kind == "answer" and expected.short and expected.details and expected.sources
    # a phone with its keyboard up: the answer is taller than the visible log
    page, errors = phone_page(browser, server.url + "/", viewport={"width": 390, "height": 600})
    for question in WARM_UP:
        ask(page, question)
    answer = ask(page, LONG_Q)

    # The short answer is shown; the details and the sources are there, folded.
    short_text = answer.locator(".short").inner_text()
    assert expected.short.split("\n")[0] in short_text
    more = answer.locator("details.more")
    sources = answer.locator("details.sources")
    assert more.locator("summary").inner_text() == "Xem chi tiết"
    assert sources.locator("summary").inner_text().startswith("Căn cứ")
    assert not more.evaluate("d => d.open") and not sources.evaluate("d => d.open")
    assert not more.locator(".text").first.is_visible() and not sources.locator("li").first.is_visible()
    folded_height = answer.evaluate("n => n.getBoundingClientRect().height")

    # The log landed on the start of the answer, not its end (the old behaviour scrolled to the bottom).
    scroll = _settled_scroll(page)
    room = page.evaluate("(() => { const l = document.getElementById('log'); "
                         "return l.scrollHeight - l.clientHeight; })()")
    top = _answer_top(page)
    assert 0 <= top <= 16, (top, scroll, room)
    assert scroll < room - 20, "the answer is taller than the screen, so its start is not the bottom"
    ARTIFACTS.mkdir(exist_ok=True)
    page.set_viewport_size({"width": 390, "height": 844})
    answer.evaluate("n => n.scrollIntoView({block: 'start'})")
    _settled_scroll(page)
    page.screenshot(path=str(ARTIFACTS / "web-chat-short-answer.png"))

    # A tap opens the details: the rest of the answer, every paragraph of it.
    more.locator("summary").click()
    assert more.evaluate("d => d.open")
    shown = more.inner_text()
    for paragraph in expected.details.split("\n\n"):
        assert paragraph.split("\n")[0].strip() in shown, paragraph
    sources.locator("summary").click()
    assert sources.locator("li").all_inner_texts() == list(expected.sources)
    assert answer.evaluate("n => n.getBoundingClientRect().height") > folded_height + 200
    page.screenshot(path=str(ARTIFACTS / "web-chat-short-answer-open.png"))
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert errors == []
    page.context.close()


def test_answer_card_still_prints_the_whole_answer(browser, server, service):
    """The printable card is the whole answer (the short answer is a chat's first screen, not a cut)."""
    kb = service.engine.kb
    entry_id = service.engine.ask(LONG_Q).entry_id
    entry = kb.entries[entry_id]
    page = browser.new_page(viewport={"width": 390, "height": 844})
    page.goto(f"{server.url}/hoi-dap/{entry_id}")
    page.emulate_media(media="print")
    printed = page.locator("body").inner_text()
    # the short answer leads the card, the whole answer follows it
    short = kb.render_short(entry, dt.date.today())
    assert short and page.locator(".short-answer").inner_text().endswith(short)
    assert (page.locator(".short-answer").bounding_box()["y"]
            < page.locator(".answer").first.bounding_box()["y"])

    for sentence in sentences(kb.render_answer(entry, dt.date.today())):
        core = sentence.lstrip("-•0123456789) ").strip()
        assert core[:40] in " ".join(printed.split()), core
    pdf = page.pdf(format="A4")
    assert pdf.startswith(b"%PDF")
    page.close()


@pytest.mark.parametrize("question", WARM_UP)
def test_api_keeps_the_whole_answer_beside_the_short_one(server, question):
    import httpx

    data = httpx.post(server.url + "/api/ask", json={"question": question, "user_id": "web-short-1"}).json()
    assert data["kind"] == "answer" and data["short"] and data["details"]
    # "answer" stays the whole reply for existing clients: the details are in it, as are the sources
    for paragraph in data["details"].split("\n\n"):
        assert paragraph in data["answer"]
    assert all(source in data["answer"] for source in data["sources"])
