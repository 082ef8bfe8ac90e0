"""Bad input, fuzzed (hypothesis) against the real app with all three webhooks mounted on local fakes:
the ask endpoint and every webhook get empty, huge, binary, script, SQL-looking and wrongly shaped
bodies, missing or wrong signatures and replays. Expected: a clear 4xx or a polite Vietnamese reply,
never a 5xx, nothing stored for a refused request, and never raw PII in the database files."""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import re
import sqlite3
import time
import unicodedata
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from fakes.server import wait_for
from fakes.service import clean_env, engine, question_count
from fakes.telegram import FakeTelegram, text_update
from fakes.zalo import FakeZaloBot, FakeZaloOA, bot_update, oa_event
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_pii import _name_form, _number_form

from admin_api.app import MAX_BODY_BYTES, create_app
from bot.channels import zalo_oa
from bot.service import Service
from retrieval.normalize import redact_pii
from storage.store import Store

TG_TOKEN, TG_SECRET = "123456789:AAHfuzzTokenForTestsOnly_abcdefghijkl", "fuzz-webhook-secret_0123"
ZB_TOKEN, ZB_SECRET = "4417239846:zbFuzzTokenForTests_0123456789abcdef", "zalo-bot-fuzz-secret-01"
APP_ID, OA_SECRET, OA_APP_SECRET = "50554360515256678", "oaFuzzSecretKey-9876543210", "appFuzzSecret-0123456789"
CHANNELS = ("telegram", "zalo-bot", "zalo-oa")
ANSWER_Q = "rút bhxh 1 lần được không"
CHOICES_Q = "đóng bhxh tự nguyện bao nhiêu"
VIETNAMESE = set("ăâđêôơưạảãáàầấẩẫậằắẳẵặèéẻẽẹềếểễệìíỉĩịòóỏõọồốổỗộờớởỡợùúủũụừứửữựỳýỷỹỵ")

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
_ids = itertools.count(1)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimpleNamespace]:
    tmp = tmp_path_factory.mktemp("fuzz")
    tg, zb = FakeTelegram(TG_TOKEN), FakeZaloBot(ZB_TOKEN)
    oa = FakeZaloOA(APP_ID, OA_APP_SECRET, "at-fuzz-0001", "rt-fuzz-0001")
    with tg, zb, oa, pytest.MonkeyPatch.context() as mp:
        clean_env(mp, tmp)
        for name, value in {
            "TELEGRAM_BOT_TOKEN": TG_TOKEN, "TELEGRAM_WEBHOOK_SECRET": TG_SECRET,
            "TELEGRAM_API_BASE_URL": tg.base_url, "TELEGRAM_API_FILE_URL": tg.file_url,
            "ZALO_BOT_TOKEN": ZB_TOKEN, "ZALO_BOT_SECRET": ZB_SECRET, "ZALO_BOT_API_BASE_URL": zb.url,
            "ZALO_OA_APP_ID": APP_ID, "ZALO_OA_SECRET_KEY": OA_SECRET, "ZALO_OA_APP_SECRET": OA_APP_SECRET,
            "ZALO_OA_ACCESS_TOKEN": "at-fuzz-0001", "ZALO_OA_REFRESH_TOKEN": "rt-fuzz-0001",
            "ZALO_OA_API_BASE_URL": oa.url, "ZALO_OA_OAUTH_BASE_URL": oa.url,
        }.items():
            mp.setenv(name, value)
        service = Service(engine(), Store(tmp / "bhxh.db", b"fuzz-hash-key"), user_limit=1_000_000)
        app = create_app(service, ip_limit=1_000_000)  # the per-IP limit must not make the run flaky
        with TestClient(app, raise_server_exceptions=False) as client:
            assert sorted(client.app.state.webhooks) == [f"/webhooks/{c}" for c in CHANNELS]
            yield SimpleNamespace(client=client, service=service, db=tmp / "bhxh.db", tg=tg, zb=zb, oa=oa)


# ------------------------------------------------------------ helpers


def _mac(body: bytes, timestamp: str, secret: str = OA_SECRET) -> str:
    return "mac=" + hashlib.sha256(APP_ID.encode() + body + timestamp.encode() + secret.encode()).hexdigest()


def _timestamp_of(body: bytes) -> str:
    try:
        payload = json.loads(body)
    except ValueError:
        return ""
    return str(payload.get("timestamp") or "") if isinstance(payload, dict) else ""


def post_webhook(world: SimpleNamespace, channel: str, body: bytes, auth: str = "good") -> httpx.Response:
    """POST raw bytes to a webhook with a good, wrong or missing secret (Zalo OA: MAC of the body)."""
    headers = {"Content-Type": "application/json"}
    if channel == "zalo-oa":
        secret = {"good": OA_SECRET, "wrong": "not-the-oa-secret", "other": ZB_SECRET}.get(auth)
        if secret is not None:
            headers["X-ZEvent-Signature"] = _mac(body, _timestamp_of(body), secret)
        elif auth == "empty":
            headers["X-ZEvent-Signature"] = ""
    else:
        name = "X-Telegram-Bot-Api-Secret-Token" if channel == "telegram" else "X-Bot-Api-Secret-Token"
        good, other = (TG_SECRET, ZB_SECRET) if channel == "telegram" else (ZB_SECRET, TG_SECRET)
        value = {"good": good, "wrong": good[:-1] + "x", "other": other, "empty": ""}.get(auth)
        if value is not None:
            headers[name] = value
    return world.client.post(f"/webhooks/{channel}", content=body, headers=headers)


def _tg_uid(user: str) -> int:
    return 10_000 + int(hashlib.sha256(user.encode()).hexdigest()[:8], 16)


def message(channel: str, text: str, user: str) -> dict[str, Any]:
    """A well-formed text delivery of `channel` from `user`."""
    if channel == "telegram":
        return text_update(text, user={"id": _tg_uid(user), "is_bot": False, "first_name": "Dân"})
    if channel == "zalo-bot":
        return bot_update(text, user=user)
    return oa_event(text, app_id=APP_ID, user=user)


def replies_to(world: SimpleNamespace, channel: str, user: str) -> list[str]:
    if channel == "telegram":
        return [c.params["text"] for c in world.tg.sent() if int(c.params.get("chat_id", 0)) == _tg_uid(user)]
    if channel == "zalo-bot":
        return [p["text"] for p in world.zb.sent() if p.get("chat_id") == user]
    return world.oa.texts(user)


def settled(read: Callable[[], list[str]], quiet: float = 0.3) -> list[str]:
    """`read()` once it is non-empty and has not changed for `quiet` seconds (replies may come in chunks)."""
    last = wait_for(read)
    while True:
        time.sleep(quiet)
        if (now := read()) == last:
            return last
        last = now


def row_counts(db: Path) -> dict[str, int]:
    with contextlib.closing(sqlite3.connect(db)) as con:
        tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {t: con.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables}


def stored(db: Path) -> tuple[str, bytes]:
    """Every text value of every table, and the raw bytes of the database and its WAL."""
    values: list[str] = []
    with contextlib.closing(sqlite3.connect(db)) as con:
        for (table,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall():
            for row in con.execute(f'SELECT * FROM "{table}"'):
                values += [v.decode("utf-8", "replace") if isinstance(v, bytes) else v
                           for v in row if isinstance(v, str | bytes)]
    files = [db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-journal")]
    return "\n".join(values), b"".join(f.read_bytes() for f in files if f.exists())


def assert_polite(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body = response.json()
    assert isinstance(body["answer"], str) and body["answer"].strip()
    assert VIETNAMESE & set(body["answer"].lower()), body["answer"]
    assert body["kind"] in {"answer", "choices", "not_sure", "out_of_scope", "smalltalk", "personal",
                            "calculator", "invalid"}
    return body


def ask(world: SimpleNamespace, body: bytes, content_type: str = "application/json") -> httpx.Response:
    return world.client.post("/api/ask", content=body, headers={"Content-Type": content_type})


def encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


# ------------------------------------------------------------ /api/ask


EMPTY = ["", "   ", "\n\t", "\u200b\u200c\u200d\ufeff", "\u200f\u202e", "😀🙏🏻👍", "🇻🇳🇻🇳", "!!!???..."]


@pytest.mark.parametrize("question", EMPTY)
def test_empty_or_symbol_only_questions_get_a_polite_invalid_reply(world: SimpleNamespace, question: str) -> None:
    body = assert_polite(world.client.post("/api/ask", json={"question": question}))
    assert body["kind"] == "invalid" and body["answered"] is False


@pytest.mark.parametrize("question", [
    "<script>alert(1)</script>", "<b>rút bhxh</b> 1 lần", "<img src=x onerror=alert(1)>rút bhxh 1 lần",
    "'; DROP TABLE questions; --", "1 OR 1=1", "rút bhxh 1 lần' OR '1'='1", "rút bhxh\x00 1 lần",
    "\u202erút bhxh 1 lần", "r\u200bút bhxh 1 l\u200dần", "%00%27%22", "{{7*7}} ${7*7}", "../../etc/passwd",
    "rút bhxh 1 lần " + "a" * 2500, "bảo hiểm " * 2000, "\U0001F600" * 5000,
])
def test_hostile_or_long_questions_get_a_polite_reply_and_are_logged_verbatim(world: SimpleNamespace,
                                                                           question: str) -> None:
    before = question_count(world.service)
    body = assert_polite(world.client.post("/api/ask", json={"question": question, "user_id": "hostile"}))
    assert "<script" not in body["answer"] and "onerror" not in body["answer"]  # no reflection
    if len(question) > 2000 and any(ch.isalnum() for ch in question):
        assert "dài quá" in body["answer"]  # the truncation notice
    assert question_count(world.service) == before + 1  # the SQL-looking text did not drop anything
    row = world.service.store.db.execute("SELECT text FROM questions ORDER BY id DESC LIMIT 1").fetchone()
    assert row[0] == redact_pii(question)[:4000]


def test_markup_is_stripped_before_matching(world: SimpleNamespace) -> None:
    plain = assert_polite(world.client.post("/api/ask", json={"question": ANSWER_Q}))
    tagged = assert_polite(world.client.post("/api/ask", json={"question": "<b>rút</b> <i>bhxh</i> 1 lần được không"}))
    assert plain["answered"] and {**tagged, "question_id": 0} == {**plain, "question_id": 0}


@pytest.mark.parametrize("number", ["¹", "²", "①", "⑴", "1²"])
def test_unicode_digits_that_int_refuses_get_a_polite_reply(world: SimpleNamespace, number: str) -> None:
    """ "¹".isdigit() is True but int("¹") raises: the "reply 1, 2 or 3" path must not crash."""
    assert_polite(world.client.post("/api/ask", json={"question": number, "user_id": f"digits-{next(_ids)}"}))


def test_a_choice_can_be_picked_with_a_fullwidth_or_arabic_indic_digit(world: SimpleNamespace) -> None:
    for number, index in (("１", 0), ("٢", 1)):
        user = {"user_id": f"digits-{next(_ids)}"}
        offered = assert_polite(world.client.post("/api/ask", json={"question": CHOICES_Q, **user}))["choices"]
        picked = assert_polite(world.client.post("/api/ask", json={"question": number, **user}))
        assert picked["entry_id"] == offered[index]["entry_id"]


@pytest.mark.parametrize(("body", "statuses"), [
    (b"\xff\xfe\x00", {400, 422}),
    (b'{"question": "r\xfat bhxh"}', {400, 422}),  # latin-1, not UTF-8
    (b"not json at all", {400, 422}),
    (b'{"question": "rut bhxh"', {400, 422}),
    (b"", {422}), (b"null", {422}), (b"5", {422}), (b'"rut bhxh"', {422}), (b'["rut bhxh"]', {422}),
    (b"{}", {422}), (b'{"question": 5}', {422}), (b'{"question": null}', {422}), (b'{"question": ["a"]}', {422}),
    (b'{"question": {"text": "a"}}', {422}), (b'{"q": "rut bhxh"}', {422}), (b'{"question": true}', {422}),
    (b'{"question": "\\ud800"}', {422}), (b'{"question": "r\\udfffut bhxh \\ud83d"}', {422}),
    (b'{"question": "x", "user_id": "\\udc00"}', {422}), (b'{"question": "x", "user_id": 7}', {422}),
    (b'{"question": NaN}', {422}), (b'{"question": "x", "user_id": -Infinity}', {422}), (b"[Infinity]", {422}),
    (json.dumps({"question": "a" * 30_000}).encode(), {422}),  # 30 kB: under the body cap, over the field cap
    (json.dumps({"question": "a" * 100_000}).encode(), {413}),
    (b'{"question": "' + b"a" * (1 << 20) + b'"}', {413}),
    (b"\x00" * (1 << 20), {413}),
])
def test_malformed_bodies_are_a_clear_4xx_and_log_nothing(world: SimpleNamespace, body: bytes,
                                                          statuses: set[int]) -> None:
    before = question_count(world.service)
    response = ask(world, body)
    assert response.status_code in statuses, response.text[:300]
    assert response.json()["detail"]  # JSON with a message, even for a surrogate echoed back
    assert question_count(world.service) == before


@pytest.mark.parametrize(("path", "body"), [
    ("/api/feedback", b'{"value": 1, "question_id": 99999999999999999999999}'),  # > SQLite's 64-bit integers
    ("/api/feedback", b'{"value": 1, "question_id": -1}'),
    ("/api/feedback", b'{"value": NaN}'),
    ("/api/feedback", b'{"value": 1, "user_id": "\\ud800"}'),
    ("/api/feedback", b'{"value": 1, "entry_id": "\\udfff"}'),
    ("/api/calc/voluntary", b'{"income": "\\ud800"}'),
    ("/api/calc/voluntary", b'{"income": Infinity}'),
    ("/api/calc/voluntary", b'{"income": 5000000, "months": 99999999999999999999999}'),
    ("/api/choose/%ED%A0%80", b""),
])
def test_other_public_endpoints_answer_bad_input_with_a_4xx(world: SimpleNamespace, path: str, body: bytes) -> None:
    counts = row_counts(world.db)
    response = world.client.post(path, content=body, headers={"Content-Type": "application/json"})
    assert 400 <= response.status_code < 500 and response.json()["detail"], response.text
    assert row_counts(world.db) == counts


def test_a_streamed_1_mb_body_without_length_is_refused_with_413(world: SimpleNamespace) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"question": "'
        for _ in range(1024):
            yield b"a" * 1024
        yield b'"}'

    response = world.client.post("/api/ask", content=chunks(), headers={"Content-Type": "application/json"})
    assert response.status_code == 413 and response.json() == {"detail": "Nội dung gửi lên quá lớn."}
    just_under = json.dumps({"question": "a" * 100}).encode().ljust(MAX_BODY_BYTES, b" ")
    assert ask(world, just_under).status_code == 200  # the cap is exact, whitespace and all


def test_extra_fields_are_ignored(world: SimpleNamespace) -> None:
    body = {"question": ANSWER_Q, "user_id": None, "admin": True, "question_id": 1, "__proto__": {}}
    assert assert_polite(world.client.post("/api/ask", json=body))["answered"] is True


def test_wrong_content_type_is_a_4xx(world: SimpleNamespace) -> None:
    body = json.dumps({"question": ANSWER_Q}).encode()
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"):
        assert 400 <= ask(world, body, content_type).status_code < 500


_surrogate_text = st.builds(lambda a, s, b: a + s + b, st.text(max_size=40), st.characters(categories=["Cs"]),
                            st.text(max_size=40))
_questions = st.one_of(
    st.text(max_size=400),
    st.text(st.characters(categories=["Cc", "Cf", "Zs", "Zl", "Zp", "Mn", "So", "Sk"]), max_size=60),
    _surrogate_text,
    st.sampled_from([*EMPTY, "<script>alert(1)</script>", "'; DROP TABLE questions; --", ANSWER_Q]),
)


@FUZZ
@given(question=_questions)
def test_any_question_text_gets_a_polite_reply_or_a_clear_422(world: SimpleNamespace, question: str) -> None:
    response = ask(world, json.dumps({"question": question}).encode())  # ASCII JSON: surrogates as escapes
    if encodable(question):
        assert_polite(response)
    else:
        assert response.status_code == 422 and response.json()["detail"] == "Yêu cầu không hợp lệ."


@FUZZ
@given(text=_surrogate_text, user=_surrogate_text)
def test_service_answers_and_logs_text_with_lone_surrogates(world: SimpleNamespace, text: str, user: str) -> None:
    """What every channel calls, whatever a platform's JSON decoded to: answered, logged (as "?")."""
    before = question_count(world.service)
    handled = world.service.handle("zalo_oa", user, text, message_id=f"m-{next(_ids)}-{user}")
    assert handled.reply.text and not handled.duplicate
    assert question_count(world.service) == before + 1 and handled.question_id is not None


_json = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
                     lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner,
                                                                                 max_size=4),
                     max_leaves=12)
_ask_bodies = st.one_of(_json, st.fixed_dictionaries({"question": _json}, optional={"user_id": _json}))


@FUZZ
@given(body=_ask_bodies)
def test_any_json_body_gets_200_exactly_when_it_is_a_question(world: SimpleNamespace, body: Any) -> None:
    response = ask(world, json.dumps(body).encode())
    valid = (isinstance(body, dict) and isinstance(body.get("question"), str)
             and (body.get("user_id") is None or (isinstance(body["user_id"], str) and len(body["user_id"]) <= 200)))
    if valid:
        assert_polite(response)
    else:
        assert response.status_code == 422 and response.json()["detail"] == "Yêu cầu không hợp lệ."


# ------------------------------------------------------------ webhooks: signatures


@pytest.mark.parametrize("channel", CHANNELS)
@pytest.mark.parametrize("auth", ["missing", "empty", "wrong", "other"])
def test_webhook_without_the_right_secret_is_403_and_nothing_happens(world: SimpleNamespace, channel: str,
                                                                     auth: str) -> None:
    user = f"u-sig-{next(_ids)}"
    counts = row_counts(world.db)
    body = json.dumps(message(channel, ANSWER_Q, user), ensure_ascii=False).encode()
    response = post_webhook(world, channel, body, auth)
    assert response.status_code == 403 and response.json()["ok"] is False
    time.sleep(0.05)
    assert row_counts(world.db) == counts and replies_to(world, channel, user) == []


@FUZZ
@given(channel=st.sampled_from(["telegram", "zalo-bot"]),
       secret=st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=40))
def test_any_other_secret_header_is_403(world: SimpleNamespace, channel: str, secret: str) -> None:
    good = TG_SECRET if channel == "telegram" else ZB_SECRET
    name = "X-Telegram-Bot-Api-Secret-Token" if channel == "telegram" else "X-Bot-Api-Secret-Token"
    body = json.dumps(message(channel, ANSWER_Q, "u-secret-fuzz")).encode()
    response = world.client.post(f"/webhooks/{channel}", content=body, headers={name: secret})
    assert response.status_code == (200 if secret == good else 403)


# ------------------------------------------------------------ webhooks: garbage with the right secret


@pytest.mark.parametrize("channel", CHANNELS)
@pytest.mark.parametrize("body", [b"", b"\xff\xfe\x00", b"{", b'{"update_id": ', b"null", b"[]", b"5", b'"x"',
                                  b'{"message": "\xff"}'], ids=repr)
def test_webhook_garbage_body_is_4xx_or_ignored_never_5xx(world: SimpleNamespace, channel: str,
                                                           body: bytes) -> None:
    counts = row_counts(world.db)
    response = post_webhook(world, channel, body)
    assert response.status_code in {200, 400}, response.text
    if response.status_code == 200:
        assert response.json() == {"ok": True, "ignored": True}
    else:
        assert response.json()["ok"] is False
    assert row_counts(world.db) == counts


@pytest.mark.parametrize("channel", CHANNELS)
def test_webhook_1_mb_body_is_413(world: SimpleNamespace, channel: str) -> None:
    body = json.dumps(message(channel, "a" * (1 << 20), "u-huge")).encode()
    assert post_webhook(world, channel, body).status_code == 413

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(body), 8192):
            yield body[start:start + 8192]

    streamed = world.client.post(f"/webhooks/{channel}", content=chunks(),
                                 headers={"X-Telegram-Bot-Api-Secret-Token": TG_SECRET,
                                          "X-Bot-Api-Secret-Token": ZB_SECRET})
    assert streamed.status_code == 413
    assert replies_to(world, channel, "u-huge") == []


_text = st.one_of(st.text(max_size=200), _surrogate_text, st.sampled_from([*EMPTY, ANSWER_Q, "1", "/start"]))
_anything = st.one_of(_json, _text)


def _telegram_garbage() -> st.SearchStrategy[Any]:
    user = st.fixed_dictionaries({"id": st.one_of(st.integers(1, 2**40), _json), "is_bot": st.booleans(),
                                  "first_name": st.one_of(_text, _json)})
    msg = st.fixed_dictionaries({"message_id": st.one_of(st.integers(1, 2**31), _json),
                                 "date": st.one_of(st.integers(0, 2**31), _json),
                                 "chat": st.fixed_dictionaries({"id": st.one_of(st.integers(1, 2**40), _json),
                                                                "type": st.sampled_from(["private", "group", "x"])}),
                                 "from": st.one_of(user, _json)},
                                optional={"text": _anything, "entities": _json, "sticker": _json})
    return st.one_of(_json, st.fixed_dictionaries({"update_id": st.one_of(st.integers(0, 2**31), _json)},
                                                  optional={"message": st.one_of(msg, _json),
                                                            "callback_query": _json, "edited_message": msg}))


def _zalo_bot_garbage() -> st.SearchStrategy[Any]:
    msg = st.fixed_dictionaries({"from": st.one_of(st.fixed_dictionaries({"id": _anything}), _json),
                                 "chat": st.one_of(st.fixed_dictionaries(
                                     {"id": _anything, "chat_type": st.sampled_from(["PRIVATE", "GROUP", 5])}), _json),
                                 "message_id": _anything}, optional={"text": _anything, "date": _json})
    event = st.sampled_from(["message.text.received", "message.image.received", "message.sticker.received", "x"])
    update = st.fixed_dictionaries({"event_name": st.one_of(event, _json), "message": st.one_of(msg, _json)})
    return st.one_of(_json, update, st.fixed_dictionaries({"ok": st.booleans(), "result": update}))


def _zalo_oa_garbage() -> st.SearchStrategy[Any]:
    fresh = st.builds(lambda: str(int(time.time() * 1000)))
    event = st.sampled_from(["user_send_text", "user_send_image", "follow", "oa_send_text", "x"])
    return st.fixed_dictionaries(
        {"event_name": st.one_of(event, _json), "timestamp": st.one_of(fresh, fresh, _json)},
        optional={"sender": st.one_of(st.fixed_dictionaries({"id": _anything}), _json),
                  "follower": st.one_of(st.fixed_dictionaries({"id": _anything}), _json),
                  "message": st.one_of(st.fixed_dictionaries({"text": _anything, "msg_id": _anything}), _json)})


def _fresh(timestamp: object) -> bool:
    try:
        value = float(str(timestamp))
    except ValueError:
        return False
    return bool(timestamp) and abs(time.time() - value / (1000 if len(str(timestamp)) > 10 else 1)) <= 300


@pytest.mark.parametrize("channel", CHANNELS)
@settings(FUZZ, max_examples=50)
@given(data=st.data())
def test_webhook_garbage_json_with_the_right_secret_never_fails(world: SimpleNamespace, channel: str,
                                                                data: st.DataObject) -> None:
    strategy = {"telegram": _telegram_garbage, "zalo-bot": _zalo_bot_garbage, "zalo-oa": _zalo_oa_garbage}[channel]
    payload = data.draw(strategy())
    response = post_webhook(world, channel, json.dumps(payload).encode())
    # 400: unreadable (or text no platform can send: a lone surrogate); Zalo OA checks the MAC first
    expected = {200, 400} if channel != "zalo-oa" or _fresh(payload.get("timestamp")) else {403}
    assert response.status_code in expected, response.text
    assert response.status_code != 200 or response.json()["ok"] is True
    assert world.client.get("/healthz").status_code == 200


def test_zalo_bot_calculator_step_with_a_superscript_digit_gets_a_reply(world: SimpleNamespace) -> None:
    user = f"u-calc-{next(_ids)}"
    assert post_webhook(world, "zalo-bot", json.dumps(message("zalo-bot", "tính", user)).encode()).status_code == 200
    assert "nhóm" in wait_for(lambda: replies_to(world, "zalo-bot", user))[0]  # the calculator's first step
    assert post_webhook(world, "zalo-bot", json.dumps(message("zalo-bot", "²", user)).encode()).status_code == 200
    wait_for(lambda: len(replies_to(world, "zalo-bot", user)) == 2, timeout=1.0)


# ------------------------------------------------------------ Zalo OA: timestamps and replays


@pytest.mark.parametrize("timestamp", [
    pytest.param(lambda now: str(int((now - 301) * 1000)), id="5-minutes-old"),
    pytest.param(lambda now: str(int((now - 86_400) * 1000)), id="a-day-old"),
    pytest.param(lambda now: str(int((now + 301) * 1000)), id="5-minutes-ahead"),
    pytest.param(lambda now: str(int(now - 600)), id="seconds-10-minutes-old"),
    pytest.param(lambda now: "0", id="zero"),
    pytest.param(lambda now: "-1", id="negative"),
    pytest.param(lambda now: "1e30", id="huge"),
    pytest.param(lambda now: "inf", id="inf"),
    pytest.param(lambda now: "abc", id="not-a-number"),
    pytest.param(lambda now: "nan", id="nan"),
])
def test_oa_signed_event_with_a_stale_future_or_bogus_timestamp_is_403(world: SimpleNamespace,
                                                                       timestamp: Callable[[float], str]) -> None:
    user = f"u-ts-{next(_ids)}"
    counts = row_counts(world.db)
    event = oa_event(ANSWER_Q, app_id=APP_ID, user=user)
    event["timestamp"] = timestamp(time.time())
    response = post_webhook(world, "zalo-oa", json.dumps(event).encode())  # correctly signed
    assert response.status_code == 403, response.text
    time.sleep(0.05)
    assert row_counts(world.db) == counts and replies_to(world, "zalo-oa", user) == []


def test_oa_event_replayed_after_five_minutes_is_403(world: SimpleNamespace, monkeypatch: pytest.MonkeyPatch) -> None:
    user = f"u-replay-{next(_ids)}"
    body = json.dumps(oa_event(ANSWER_Q, app_id=APP_ID, user=user)).encode()
    assert post_webhook(world, "zalo-oa", body).json() == {"ok": True}
    answer = settled(lambda: replies_to(world, "zalo-oa", user))
    later = time.time() + 301
    monkeypatch.setattr(zalo_oa, "time", SimpleNamespace(time=lambda: later))
    response = post_webhook(world, "zalo-oa", body)  # a captured delivery, sent again 5 minutes later
    assert response.status_code == 403 and response.json()["error"] == "stale event"
    assert replies_to(world, "zalo-oa", user) == answer


@pytest.mark.parametrize("channel", CHANNELS)
def test_identical_signed_delivery_replayed_is_answered_once(world: SimpleNamespace, channel: str) -> None:
    user = f"u-dup-{next(_ids)}"
    body = json.dumps(message(channel, ANSWER_Q, user), ensure_ascii=False).encode()
    before = question_count(world.service)
    assert post_webhook(world, channel, body).json() == {"ok": True}
    wait_for(lambda: question_count(world.service) == before + 1)
    answer = settled(lambda: replies_to(world, channel, user))
    for _ in range(2):
        assert post_webhook(world, channel, body).json() == {"ok": True, "duplicate": True}
    time.sleep(0.2)
    assert replies_to(world, channel, user) == answer and question_count(world.service) == before + 1


# ------------------------------------------------------------ PII never stored raw

_mobile = st.builds(lambda p, rest: "0" + p + rest, st.sampled_from("35789"),
                    st.text("0123456789", min_size=8, max_size=8))


def _phone_forms(number: str) -> st.SearchStrategy[str]:
    d = number[1:]  # the 9 digits after the leading 0
    return st.sampled_from([
        number, f"{number[:4]} {number[4:7]} {number[7:]}", f"{number[:4]}.{number[4:7]}.{number[7:]}",
        f"{number[:4]}-{number[4:7]}-{number[7:]}", f"{number[:3]} {number[3:6]} {number[6:]}",
        f"+84{d}", f"+84 {d[:3]} {d[3:6]} {d[6:]}", f"(+84) {d[:3]} {d[3:6]} {d[6:]}", f"84{d}",
        f"0084 {d[:3]} {d[3:6]} {d[6:]}", f"+84 (0) {d[:3]} {d[3:6]} {d[6:]}",
        " ".join(number[i:i + 2] for i in range(0, 10, 2)),
    ])


def _cccd_forms(number: str) -> st.SearchStrategy[str]:
    threes, fours = [number[i:i + 3] for i in range(0, 12, 3)], [number[i:i + 4] for i in range(0, 12, 4)]
    return st.sampled_from([number, " ".join(threes), ".".join(threes), "-".join(threes), " ".join(fours),
                            ".".join(fours), f"{number[:6]} {number[6:]}"])


_syllables = ["Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Đặng", "Bùi", "Đỗ", "Hồ", "Ngô", "Dương", "Lý", "Văn", "Thị",
              "Hữu", "Đức", "Minh", "Ngọc", "Thanh", "Quốc", "Ánh", "Bình", "Cường", "Dũng", "Hoa", "Lan", "Ơn",
              "Uyên", "Quỳnh", "Yến", "Thư", "Khánh", "Ưng", "Ất"]
_name = st.lists(st.sampled_from(_syllables), min_size=2, max_size=4).map(" ".join)
_email = st.builds(lambda user, dom, tld: f"{user}@{dom}.{tld}",
                   st.from_regex(r"[a-z][a-z0-9._+-]{0,15}[a-z0-9]", fullmatch=True),
                   st.from_regex(r"[a-z][a-z0-9-]{0,10}[a-z0-9]", fullmatch=True),
                   st.sampled_from(["com", "vn", "com.vn", "edu.vn", "gov.vn", "org"]))


@st.composite
def _pii(draw: st.DrawFn) -> tuple[str, list[str], list[str]]:
    """(the question, the raw forms that must never be stored, the labels the log must show instead)."""
    parts, raw, labels = [], [], []
    for kind in draw(st.lists(st.sampled_from(["phone", "cccd", "email", "name"]), min_size=1, max_size=4,
                              unique=True)):
        if kind == "phone":
            number = draw(_mobile)
            form = draw(_phone_forms(number))
            parts.append(f"{draw(st.sampled_from(['sđt', 'số điện thoại', 'gọi cho tôi', 'zalo']))} {form}")
            raw += [form, number, number[1:]]
            labels.append("[SĐT]")
        elif kind == "cccd":
            number = draw(st.text("0123456789", min_size=12, max_size=12))
            form = draw(_cccd_forms(number))
            parts.append(f"{draw(st.sampled_from(['CCCD', 'số căn cước', 'cccd của em là']))} {form}")
            raw += [form, number]
            labels.append("[CCCD]")
        elif kind == "email":
            email = draw(_email)
            parts.append(f"email {email}")
            raw.append(email)
            labels.append("[EMAIL]")
        else:
            name = draw(_name)
            parts.append(f"{draw(st.sampled_from(['tôi tên là', 'Tôi tên là', 'tên tôi là', 'em tên là']))} {name}")
            raw.append(name)
            labels.append("[TÊN]")
    order = draw(st.permutations(range(len(parts))))
    tail = draw(st.sampled_from(["", "hỏi rút bhxh 1 lần được không", "nhờ tư vấn thai sản", "cảm ơn"]))
    question = ", ".join([*(parts[i] for i in order), tail]).strip(", ")
    return unicodedata.normalize("NFC", question), raw, labels


def ask_web_and_channel(world: SimpleNamespace, channel: str, question: str) -> int:
    """Ask once on the web and once by a channel's webhook, wait until both are logged; the question count
    before them."""
    before = question_count(world.service)
    assert_polite(world.client.post("/api/ask", json={"question": question, "user_id": "pii-visitor"}))
    user = f"u-pii-{next(_ids)}"
    response = post_webhook(world, channel, json.dumps(message(channel, question, user), ensure_ascii=False).encode())
    assert response.json() == {"ok": True}
    wait_for(lambda: question_count(world.service) == before + 2)
    return before


@settings(FUZZ, max_examples=50)
@given(case=_pii(), channel=st.sampled_from(CHANNELS))
def test_pii_is_never_stored_raw(world: SimpleNamespace, case: tuple[str, list[str], list[str]],
                                 channel: str) -> None:
    question, raw, labels = case
    ask_web_and_channel(world, channel, question)
    logged = [r[0] for r in world.service.store.db.execute(
        "SELECT text FROM questions ORDER BY id DESC LIMIT 2").fetchall()]
    for label in labels:  # redacted, not dropped: the question itself is kept
        assert all(label in text for text in logged), (label, logged)
    texts, files = stored(world.db)
    for secret in raw:
        assert secret not in texts, secret
        assert secret.encode() not in files, secret


@pytest.mark.parametrize("text", [
    "(+84) 912 345 678", "0084 912 345 678", "+84 (0) 912 345 678", "+84 0912 345 678", "(024) 3824 5678",
    "09 12 34 56 78", "001203 004567",
])
def test_phone_and_id_forms_found_by_fuzzing_are_redacted(text: str) -> None:
    redacted = redact_pii(f"liên hệ {text} nhé")
    assert not any(ch.isdigit() for ch in redacted), redacted
    assert "[SĐT]" in redacted or "[CCCD]" in redacted


# The security review's forms (F2): numbers grouped and split any way (NBSP, newlines, " - ", "/", markup,
# full-width digits), names after form labels and sign-offs, e-mails without a domain ending. Sent through
# /api/ask and a webhook; then the stored values and the raw bytes of the database and its WAL are read.
_review_case = st.one_of(
    _number_form().map(lambda c: (c[0], c[1], "number")),
    _name_form().map(lambda c: (c[0], c[1], "name")),
    st.builds(lambda u, d: (f"mail {u}@{d}", u, "email"),
              st.from_regex(r"[a-z][a-z0-9.]{4,12}[a-z0-9]", fullmatch=True), st.sampled_from(["gmail", "yahoo"])),
)


@settings(FUZZ, max_examples=40)
@given(case=_review_case, channel=st.sampled_from(CHANNELS),
       wrap=st.sampled_from(["{}", "Kính gửi BHXH,\n{}\nEm hỏi rút một lần ạ.", "<p>{}</p> hỏi thai sản"]))
def test_review_pii_forms_never_reach_the_database_or_its_wal(world: SimpleNamespace, case: tuple[str, str, str],
                                                             channel: str, wrap: str) -> None:
    form, secret, kind = case
    question = wrap.format(form)
    before = ask_web_and_channel(world, channel, question)
    texts, files = stored(world.db)
    if kind == "number":  # no six consecutive digits of the number, however they were grouped
        with contextlib.closing(sqlite3.connect(world.db)) as con:
            logged = [v for row in con.execute("SELECT text, normalized FROM questions WHERE id > ?", [before])
                      for v in row] + [json.dumps(json.loads(p), ensure_ascii=False)
                                   for (p,) in con.execute("SELECT payload FROM inbox WHERE payload IS NOT NULL")]
        for value in logged:
            digits = re.sub(r"[\s.\-/_()]", "", unicodedata.normalize("NFKC", value or ""))
            assert not any(secret[i:i + 6] in digits for i in range(len(secret) - 5)), (form, value)
    else:
        assert secret not in texts, (form, secret)
    for raw in {secret, form}:
        assert raw.encode() not in files, raw
