"""Several `bhxh serve` processes on one PostgreSQL (issue 15), as in production: real processes on their
own ports, their own data directories, a throwaway PostgreSQL (tests/pg.py) and a fake Zalo Bot Platform
receiving the replies. What one worker does, another sees: the question log, staff edits (within 2 s),
webhook deliveries (answered once, one chat in order, a killed worker's finished by the others), per-user
limits. Lexical search only, so the workers start fast. Skipped where PostgreSQL cannot start.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fakes.server import wait_for
from fakes.zalo import FakeZaloBot, bot_update
from fastapi import Request
from fastapi.responses import JSONResponse
from starlette.requests import ClientDisconnect

from tests.pg import Cluster, pg_cluster, pg_url  # noqa: F401 (fixtures)

STAFF_TOKEN = "scale-out-staff-token-0123456789"
BOT_TOKEN, BOT_SECRET = "zb-token-123", "zb-secret-123456"
LEASE_SECONDS = 3.0  # BHXH_INBOX_LEASE_SECONDS of the workers: a killed worker's deliveries move on after this
ROOT = Path(__file__).resolve().parent.parent


class SlowZaloBot(FakeZaloBot):
    """The fake Bot Platform, taking `delay` seconds per sendMessage (a slow platform: deliveries pile up)."""

    delay = 0.0

    async def _handle(self, token: str, method: str, request: Request) -> JSONResponse:
        if method == "sendMessage" and self.delay:
            await asyncio.sleep(self.delay)
        try:
            return await super()._handle(token, method, request)
        except ClientDisconnect:  # the sender was killed while the request was on its way: it never arrived
            return JSONResponse({"ok": False}, status_code=499)

    def texts_to(self, chat: str) -> list[str]:
        return [m["text"] for m in self.sent() if m.get("chat_id") == chat]


@dataclass
class Worker:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(database_url: str, data_dir: Path, bot_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "ZALO_", "BHXH_"))}
    env.update(BHXH_DATA_DIR=str(data_dir), BHXH_EMBED_MODEL="none", BHXH_ADMIN_TOKEN=STAFF_TOKEN,
               BHXH_DATABASE_URL=database_url, BHXH_HASH_KEY="one-key-for-every-worker-0123456789",
               BHXH_INBOX_LEASE_SECONDS=str(LEASE_SECONDS), BHXH_IP_RATE_LIMIT="100000",
               ZALO_BOT_TOKEN=BOT_TOKEN, ZALO_BOT_SECRET=BOT_SECRET, ZALO_BOT_API_BASE_URL=bot_url,
               PYTHONPATH=str(ROOT))
    return env


def _start(name: str, database_url: str, tmp: Path, bot_url: str, *args: str) -> Worker:
    data_dir = tmp / name
    data_dir.mkdir(exist_ok=True)
    port = _free_port()
    log = tmp / f"{name}.log"
    process = subprocess.Popen([sys.executable, "-m", "bhxh.cli", "serve", "--port", str(port), *args],
                               env=_env(database_url, data_dir, bot_url), cwd=ROOT,
                               stdout=log.open("wb"), stderr=subprocess.STDOUT)
    return Worker(name, port, process, log)


def _wait_up(worker: Worker, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if worker.process.poll() is not None:
            pytest.fail(f"worker {worker.name} exited: {worker.log.read_text()[-2000:]}")
        with contextlib.suppress(httpx.HTTPError):
            health = httpx.get(f"{worker.url}/healthz", timeout=2)
            if health.status_code == 200:
                assert health.json()["database"] == "postgresql"
                return
        time.sleep(0.3)
    pytest.fail(f"worker {worker.name} did not start: {worker.log.read_text()[-2000:]}")


def _stop(worker: Worker) -> None:
    if worker.process.poll() is None:
        worker.process.terminate()
        try:
            worker.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.process.kill()
            worker.process.wait(timeout=10)


@pytest.fixture(scope="module")
def bot() -> Iterator[SlowZaloBot]:
    with SlowZaloBot(BOT_TOKEN) as fake:
        yield fake  # type: ignore[misc]


@pytest.fixture(scope="module")
def database(pg_cluster: Cluster) -> Iterator[str]:  # noqa: F811
    name = pg_cluster.create_database()
    try:
        yield pg_cluster.database_url(name)
    finally:
        pg_cluster.drop_database(name)


@pytest.fixture(scope="module")
def workers(database: str, bot: SlowZaloBot, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Worker]]:
    """Three `bhxh serve` processes on one PostgreSQL database, started side by side."""
    tmp = tmp_path_factory.mktemp("workers")
    started = [_start(name, database, tmp, bot.url) for name in ("w1", "w2", "w3")]
    try:
        for worker in started:
            _wait_up(worker)
        yield started
    finally:
        for worker in started:
            _stop(worker)


def staff(token: str = STAFF_TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def post_delivery(worker: Worker, update: dict[str, Any]) -> dict[str, Any]:
    response = httpx.post(f"{worker.url}/webhooks/zalo-bot", json=update,
                          headers={"X-Bot-Api-Secret-Token": BOT_SECRET}, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def pending_deliveries(database: str) -> int:
    import psycopg

    with psycopg.connect(database) as conn:
        return conn.execute("SELECT count(*) FROM inbox WHERE done_ts IS NULL").fetchone()[0]


def _engine_build_seconds() -> float:
    """How long building a lexical engine like the workers' takes on this machine right now."""
    from bot.engine import Engine
    from knowledge.schema import load_knowledge

    kb = load_knowledge()
    started = time.perf_counter()
    Engine(kb, None)
    return time.perf_counter() - started


# ---------------------------------------------------------------- the tests


def test_a_question_asked_on_one_worker_is_in_the_log_read_through_another(workers: list[Worker]):
    w1, w2, _ = workers
    marker = uuid.uuid4().hex[:10]
    asked = httpx.post(f"{w1.url}/api/ask", json={"question": f"lương hưu tối thiểu là bao nhiêu {marker}",
                                                   "user_id": "web-log"}, timeout=30)
    assert asked.status_code == 200 and asked.json()["question_id"]
    page = httpx.get(f"{w2.url}/admin/questions", params={"contains": marker}, headers=staff(), timeout=30)
    assert page.status_code == 200, page.text
    [row] = page.json()["items"]
    assert row["id"] == asked.json()["question_id"] and marker in row["text"]
    # The other staff pages read the same shared log on PostgreSQL.
    for path in ("/admin/dashboard", "/admin/review", "/admin/topics", "/admin/topics/daily", "/admin/feedback",
                 "/admin/unanswered", "/admin/audit", "/admin/export/questions.csv", "/admin/export/topics.csv"):
        assert httpx.get(f"{w2.url}{path}", headers=staff(), timeout=60).status_code == 200, path


def test_a_dashboard_login_on_one_worker_is_valid_on_every_worker_until_logout(workers: list[Worker]):
    w1, w2, w3 = workers
    login = httpx.post(f"{w1.url}/admin/login", data={"token": STAFF_TOKEN, "name": "Phạm Thu Hà"}, timeout=30)
    assert login.status_code == 303 and login.headers["location"] == "/admin/dashboard"
    cookies = dict(login.cookies)
    for worker in (w2, w3):
        assert httpx.get(f"{worker.url}/admin/dashboard", cookies=cookies, timeout=30).status_code == 200
    assert httpx.post(f"{w3.url}/admin/logout", cookies=cookies, timeout=30).status_code == 303
    assert httpx.get(f"{w1.url}/admin/dashboard", cookies=cookies, timeout=30).status_code == 303  # ended everywhere


def test_a_staff_edit_on_one_worker_answers_on_another_after_one_rebuild(workers: list[Worker]):
    w1, _, w3 = workers
    entry_id = "lh-dieu-kien-huong-luong-huu"
    record = httpx.get(f"{w1.url}/admin/entries/{entry_id}", headers=staff(), timeout=30).json()["record"]
    phrase = f"điều kiện nhận lương hưu của mẹ tôi thế nào {uuid.uuid4().hex[:6]}"
    record["paraphrases"] = [*record["paraphrases"], phrase]
    saved = httpx.put(f"{w1.url}/admin/entries/{entry_id}", json=record, headers=staff(), timeout=60)
    assert saved.status_code == 200, saved.text
    edited_at = time.monotonic()

    def w3_has_it() -> bool:  # the entries list is read from w3's own in-memory knowledge base
        listed = httpx.get(f"{w3.url}/admin/entries", params={"q": phrase[-6:]}, headers=staff(), timeout=5)
        return [e["id"] for e in listed.json()] == [entry_id]

    wait_for(w3_has_it, timeout=15, interval=0.1)
    reached_after = time.monotonic() - edited_at
    # The notice itself arrives at once (LISTEN/NOTIFY); then the worker rebuilds its engine, a cost of the
    # machine: measured here, under the same load, by building the same lexical engine in this process. The
    # two other workers rebuild side by side on the same cores, hence up to 2 builds' time each (+1 margin).
    rebuild = _engine_build_seconds()
    print(f"staff edit reached the other worker after {reached_after:.2f} s (one engine build here: {rebuild:.2f} s)")
    assert reached_after < 2.0 + 3 * rebuild, f"the edit reached the other worker after {reached_after:.2f} s"
    answer = httpx.post(f"{w3.url}/api/ask", json={"question": phrase, "user_id": "web-edit"}, timeout=30).json()
    assert answer["entry_id"] == entry_id


def test_a_delivery_posted_to_every_worker_is_answered_once(workers: list[Worker], bot: SlowZaloBot):
    update = bot_update("Đóng BHXH tự nguyện bao nhiêu tiền một tháng?", user="chat-once")
    answers = [post_delivery(w, update) for w in workers]
    assert sum(1 for a in answers if not a.get("duplicate")) == 1, answers
    wait_for(lambda: bot.texts_to("chat-once"), timeout=20)
    time.sleep(2 * LEASE_SECONDS)  # long enough for any other worker to (wrongly) answer it too
    first = bot.texts_to("chat-once")
    assert len(first) >= 1
    assert first[0] not in first[1:]  # no message twice


def test_one_chats_replies_leave_in_order_across_workers(workers: list[Worker], bot: SlowZaloBot):
    questions = ["Điều kiện hưởng lương hưu?", "Mức đóng BHXH tự nguyện?", "Thủ tục nhận trợ cấp thai sản?",
                 "Rút BHXH một lần được không?", "Trợ cấp thất nghiệp được bao nhiêu?"]
    asked = [httpx.post(f"{workers[0].url}/api/ask", json={"question": q, "user_id": "web-order"},
                        timeout=30).json() for q in questions]
    expected = [a.get("short") or a["answer"] for a in asked]  # a chat shows the short answer first
    bot.delay = 0.4  # slow sends: later deliveries would overtake earlier ones if nothing kept them in turn
    try:
        for n, question in enumerate(questions):  # spread over the workers, in this order
            post_delivery(workers[n % 3], bot_update(question, user="chat-order"))
        wait_for(lambda: len(bot.texts_to("chat-order")) >= len(questions), timeout=60, interval=0.2)
        time.sleep(1.0)
    finally:
        bot.delay = 0.0
    texts = bot.texts_to("chat-order")
    firsts = []  # which question each message answers, by the start of the answer it carries
    for text in texts:
        found = [n for n, answer in enumerate(expected) if answer[:40] and answer[:40] in text]
        if found:
            firsts.append(found[0])
    order = list(dict.fromkeys(firsts))
    assert order == list(range(len(questions))), (order, texts)


def test_per_user_limits_hold_across_workers(workers: list[Worker]):
    user = f"web-limit-{uuid.uuid4().hex[:6]}"
    kinds = []
    for n in range(26):  # Service's limit: 20 questions a minute per user, whichever worker takes them
        reply = httpx.post(f"{workers[n % 3].url}/api/ask", json={"question": "mức lương cơ sở", "user_id": user},
                           timeout=30).json()
        kinds.append("limited" if reply["kind"] == "invalid" and "hơi nhanh" in reply["answer"] else "answered")
    # A shared sliding window: at most 20 (a few fewer if the run straddles the window's edge).
    assert 17 <= kinds.count("answered") <= 20 and kinds[:17] == ["answered"] * 17, kinds


def test_a_killed_workers_deliveries_are_finished_by_the_others(workers: list[Worker], bot: SlowZaloBot,
                                                                database: str):
    victim = workers[2]
    chats = [f"burst-{n:02d}" for n in range(12)]
    bot.delay = 1.0  # the victim acknowledges the whole burst long before it can have answered it
    try:
        # Two questions per chat: at the kill the first ones are on their way to the platform, the second
        # ones wait for their turn (not answered yet): the others apologise for the first, answer the second.
        for question in ("Mức đóng BHXH tự nguyện thấp nhất?", "Điều kiện hưởng lương hưu là gì?"):
            with ThreadPoolExecutor(len(chats)) as pool:  # a burst: all at once
                receipts = list(pool.map(lambda chat, q=question: post_delivery(victim, bot_update(q, user=chat)),
                                         chats))
            assert not [r for r in receipts if r.get("duplicate")]
        victim.process.send_signal(signal.SIGKILL)
        victim.process.wait(timeout=10)
        killed_at = time.monotonic()
        answered_before = {c for c in chats if bot.texts_to(c)}
        assert len(answered_before) < len(chats)  # it died mid-burst
        wait_for(lambda: pending_deliveries(database) == 0, timeout=60 + 4 * LEASE_SECONDS, interval=0.3)
        finished_after = time.monotonic() - killed_at
        time.sleep(2.0)  # any late duplicate would arrive now
    finally:
        bot.delay = 0.0
    unanswered = [c for c in chats if not bot.texts_to(c)]
    assert unanswered == [], unanswered
    repeated = [c for c in chats if len(set(bot.texts_to(c))) != len(bot.texts_to(c))]
    assert repeated == [], repeated  # a message on its way at the kill is followed by an apology, never repeated
    apologies = sum(1 for c in chats for t in bot.texts_to(c) if "gián đoạn" in t)
    answers = sum(1 for c in chats for t in bot.texts_to(c) if "gián đoạn" not in t)
    assert answers >= 2 * len(chats) - apologies  # each delivery: its answer, or an apology if it may have gone
    print(f"killed mid-burst: {len(chats) - len(answered_before)} of {len(chats)} chats unanswered at the kill, "
          f"all finished by the others {finished_after:.1f} s later (lease {LEASE_SECONDS} s): {answers} answer "
          f"messages, {apologies} apologies, 0 repeated")


def test_serve_refuses_several_workers_on_sqlite(tmp_path: Path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "ZALO_", "BHXH_"))}
    env.update(BHXH_DATA_DIR=str(tmp_path), BHXH_EMBED_MODEL="none", BHXH_ADMIN_TOKEN=STAFF_TOKEN)
    done = subprocess.run([sys.executable, "-m", "bhxh.cli", "serve", "--workers", "2", "--port", str(_free_port())],
                          env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "needs PostgreSQL" in done.stderr


def test_serve_with_two_workers_runs_two_processes_on_one_port(pg_url: str, tmp_path: Path,  # noqa: F811
                                                               bot: SlowZaloBot):
    server = _start("pair", pg_url, tmp_path, bot.url, "--workers", "2")
    try:
        _wait_up(server)
        children = Path(f"/proc/{server.process.pid}/task/{server.process.pid}/children")
        pids = wait_for(lambda: (found := children.read_text().split()) and len(found) == 2 and found, timeout=30)
        answered = [httpx.post(f"{server.url}/api/ask", json={"question": "lương hưu", "user_id": f"u{n}"},
                               timeout=30).status_code for n in range(6)]
        assert answered == [200] * 6
        os.kill(int(pids[0]), signal.SIGKILL)  # a worker that dies is started again
        wait_for(lambda: (now := children.read_text().split()) and len(now) == 2 and pids[0] not in now, timeout=30)
        _wait_up(server)
    finally:
        _stop(server)
    assert server.process.returncode == 0


def test_a_token_refresh_happens_once_across_workers(pg_url: str, tmp_path: Path):  # noqa: F811
    """Two workers' Zalo OA clients (each its own store on one database) meet an expired token at once:
    the refresh token is spent once, and both send with the new access token."""
    from fakes.zalo import FakeZaloOA

    from bot.channels.zalo_oa import SharedTokenStore, Tokens, ZaloOAClient, ZaloOAConfig
    from storage.factory import open_store

    stores = [open_store(pg_url, b"k" * 32) for _ in range(2)]
    try:
        with FakeZaloOA("app-1", "app-secret", "at-valid", "rt-first") as fake:
            config = ZaloOAConfig(app_id="app-1", oa_secret_key="oa-secret", app_secret="app-secret",
                                  access_token="at-stale", refresh_token="rt-first", api_base=fake.url,
                                  oauth_base=fake.url, token_file=tmp_path / "unused.json")
            SharedTokenStore(stores[0]).save(Tokens("at-stale", "rt-first", time.time() + 9e4, ""))

            async def both() -> list[bool]:
                async with httpx.AsyncClient() as http:
                    clients = [ZaloOAClient(config, SharedTokenStore(s, "at-stale", "rt-first"), http) for s in stores]
                    return await asyncio.gather(*(c.send_text("5510185758261927916", f"tin {n}")
                                                  for n, c in enumerate(clients)))

            outcomes: list[bool] = []
            thread = threading.Thread(target=lambda: outcomes.extend(asyncio.run(both())))
            thread.start()
            thread.join(60)
            assert outcomes == [True, True]
            assert len(fake.refreshes) == 1
            assert stores[1].token_get("zalo_oa")["access_token"] == fake.access_token
    finally:
        for store in stores:
            store.close()
