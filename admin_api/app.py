"""The FastAPI app: public ask API and web chat, channel webhooks, staff API.

`create_app(service)` builds the app around one Service (engine + store);
`bhxh serve` builds the service from the environment and runs uvicorn.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import gc
import logging
import math
import os
import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from admin_api import retention
from admin_api.api_docs import add_local_docs
from bot.reply import Reply
from bot.service import Service, rate_limiter
from bot.settings import Settings, load_settings
from knowledge.calculators import GROUP_LABELS, CalculatorInputError, voluntary_contribution
from retrieval.normalize import valid_unicode

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent / "static"
MAX_BODY_BYTES = 64 * 1024
TOO_LARGE_TEXT = "Nội dung gửi lên quá lớn."
DB_BUSY_TEXT = "Cơ sở dữ liệu đang bận, vui lòng thử lại sau."
TOO_SLOW_TEXT = "Yêu cầu gửi lên quá chậm."
# Slow clients (review F7): a request's head must arrive within HEADER_TIMEOUT seconds of the connection
# (or of the previous response), its whole body within BODY_READ_TIMEOUT (64 KiB at 2G speed: ~7 s); idle keep-alive
# connections close after KEEP_ALIVE_TIMEOUT; at most MAX_CONNECTIONS at once (then 503; by default the
# process's file-descriptor limit less a reserve for the database, models and logs, so the server never
# runs out of descriptors). A reverse proxy in front should still buffer, time out and cap clients per IP.
HEADER_TIMEOUT = 10.0  # defaults of Settings.header_timeout / body_timeout (BHXH_HEADER_TIMEOUT, BHXH_BODY_TIMEOUT)
BODY_READ_TIMEOUT = 20.0
KEEP_ALIVE_TIMEOUT = 5
MAX_CONNECTIONS = 0  # the descriptor limit less 64 (Settings.max_connections, BHXH_MAX_CONNECTIONS)


class AskRequest(BaseModel):
    question: str = Field(..., description="The citizen's question, any spelling", max_length=20_000)
    user_id: str | None = Field(None, max_length=200,
                                description="Opaque id of the web visitor (hashed before storage)")


class ChoiceOut(BaseModel):
    entry_id: str
    question: str


class AskResponse(BaseModel):
    answered: bool = Field(description="a knowledge-base entry answered (kind answer or personal); small talk and "
                                       "calculator results are false here, though the question log counts them "
                                       "as answered")
    answer: str
    entry_id: str | None
    topic: str | None
    score: float
    sources: list[str]
    choices: list[ChoiceOut]
    kind: str
    related: list[ChoiceOut]
    calculator: str | None
    question_id: int | None = None
    short: str | None = Field(None, description="an answer's short form, shown first (issue 17 item 2)")
    details: str | None = Field(None, description="the rest of the answer, behind 'Xem chi tiết'")
    notice: str | None = Field(None, description="e.g. the message was shortened, the date the figures are for")


class FeedbackRequest(BaseModel):
    question_id: int | None = Field(None, ge=1, le=2**62)
    entry_id: str | None = Field(None, max_length=200)
    value: int = Field(..., ge=-1, le=1, description="1 = 👍, -1 = 👎")
    user_id: str | None = Field(None, max_length=200)
    reason: str | None = Field(None, max_length=300, description="Why 👎 (optional; redacted before storage)")


class VoluntaryCalcRequest(BaseModel):
    income: float = Field(..., description="Thu nhập tháng chọn đóng (đồng)")
    group: str = Field("other", max_length=40, description="poor, island, near_poor, ethnic_minority, other")
    months: int = Field(1, description="Phương thức đóng: 1, 3, 6 hoặc 12 tháng")
    on: dt.date | None = Field(None, description="Ngày áp dụng (mặc định hôm nay)")


class VoluntaryCalcResponse(BaseModel):
    on: dt.date
    income: int
    group: str
    group_label: str
    months: int
    contribution_per_month: int
    support_per_month: int
    net_per_month: int
    contribution_per_period: int
    support_per_period: int
    net_per_period: int
    steps: list[str]
    sources: list[str]
    notes: list[str]


class BodyTooLarge(HTTPException):
    def __init__(self) -> None:
        super().__init__(413, TOO_LARGE_TEXT)


class ClientTooSlow(HTTPException):
    def __init__(self) -> None:
        super().__init__(408, TOO_SLOW_TEXT)


class LimitBody:
    """413 for request bodies over `limit` bytes: announced by Content-Length, or counted as they
    stream in (chunked uploads carry no length). Whatever a route makes of the cut-off body, the
    client gets the 413. 408 when the whole body has not arrived `read_timeout` seconds after the
    route first asks for it (a client sending a byte now and then must not hold a connection and a
    worker for ever)."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY_BYTES, read_timeout: float = BODY_READ_TIMEOUT) -> None:
        self.app, self.limit, self.read_timeout = app, limit, read_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length", b"")
        if length.isdigit() and int(length) > self.limit:
            await JSONResponse({"detail": TOO_LARGE_TEXT}, status_code=413)(scope, receive, send)
            return
        received, too_large, too_slow, started, body_done = 0, False, False, False, False
        deadline: float | None = None

        async def limited() -> Message:
            nonlocal received, too_large, too_slow, body_done, deadline
            if body_done:  # after the body only a disconnect can come: wait for it as long as it takes
                return await receive()
            now = asyncio.get_running_loop().time()
            deadline = deadline or now + self.read_timeout
            try:
                message = await asyncio.wait_for(receive(), max(deadline - now, 0.001))
            except TimeoutError:
                too_slow = True
                raise ClientTooSlow() from None
            body_done = message["type"] != "http.request" or not message.get("more_body", False)
            received += len(message.get("body", b""))
            if received > self.limit:
                too_large = True
                raise BodyTooLarge()
            return message

        async def guarded(message: Message) -> None:
            nonlocal started
            if (too_large or too_slow) and not started:
                return  # the route's own answer to the cut-off body is replaced by the 413/408 below
            started = started or message["type"] == "http.response.start"
            await send(message)

        with contextlib.suppress(BodyTooLarge, ClientTooSlow):
            await self.app(scope, limited, guarded)
        if too_large and not started:
            await JSONResponse({"detail": TOO_LARGE_TEXT}, status_code=413)(scope, receive, send)
        elif too_slow and not started:
            await JSONResponse({"detail": TOO_SLOW_TEXT}, status_code=408,
                               headers={"Connection": "close"})(scope, receive, send)


# No script-src yet: the browser tests drive the page with Playwright's evaluate(), which a script-src
# policy blocks (eval); the page itself has no inline script or style, so it can be added with them.
PUBLIC_PAGE_HEADERS = [
    (b"content-security-policy", b"frame-ancestors 'none'; base-uri 'none'; object-src 'none'; form-action 'self'"),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
]


class PublicPageHeaders:
    """The chat page `/` and its `/static/` files (review F18): no framing by other sites (clickjacking),
    no <base> or plugin tricks, no MIME sniffing, no referrer."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if path != "/" and not path.startswith("/static/"):
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {name.lower() for name, _ in message.get("headers", [])}
                message = {**message, "headers": [*message.get("headers", []),
                                                  *(h for h in PUBLIC_PAGE_HEADERS if h[0] not in names)]}
            await send(message)

        await self.app(scope, receive, with_headers)


def _valid(value: Any) -> Any:
    """`value` as strict JSON, since validation errors echo the input back: strings made encodable
    (lone surrogates), NaN and ±Infinity (which Python's JSON parser accepts) as strings."""
    if isinstance(value, str):
        return valid_unicode(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {_valid(k): _valid(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_valid(v) for v in value]
    return value


def _lifespan(service: Service, retention_days: int) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """Start-up upkeep, then the daily retention task while the app runs (the channels' lifespans run inside)."""

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await retention.at_start_up(service, retention_days)
        # The models and indexes loaded at start-up live as long as the process: keep them out of
        # the garbage collector's full passes, which otherwise stall requests for 100s of ms.
        gc.collect()
        gc.freeze()
        # Several workers on PostgreSQL: a staff edit on any of them rebuilds this one's engine too.
        service.follow_kb_changes(functools.partial(_engine_from_store, service))
        try:
            async with retention.daily(service, retention_days):
                yield
        finally:
            service.close()  # stops the kb watch, closes the PostgreSQL pool (SQLite: nothing to close)

    return lifespan


def _engine_from_store(service: Service) -> Any:
    """A new engine from the YAML entries and the stored staff records, like the running one; None if the
    running engine holds exactly those already (the edit was made on this worker, which swapped it in)."""
    from admin_api import staff_kb

    # Under the staff-edit lock: an edit on this worker notifies before it swaps its engine in, so without
    # the lock the check below would see the old engine and build the same one again.
    with staff_kb._EDIT_LOCK:
        staff = {entry_id: row["record"] for entry_id, row in staff_kb.staff_rows(service.store).items()}
        records = [r for _, r in staff_kb.merged_records(staff_kb.yaml_records(), staff) if isinstance(r, dict)]
        kb = service.engine.kb
        if set(kb.entries) == {str(r.get("id")) for r in records} and all(
                staff_kb._record_matches(kb, r) for r in records):
            return None
        return staff_kb.build_engine_like(service.engine, staff_kb.load_knowledge_with_staff(
            service.store, params=kb.parameters))


def create_app(service: Service, *, settings: Settings | None = None, ip_limit: int | None = None,
               ip_window: float = 60.0) -> FastAPI:
    """The app around `service`; `settings` default to the environment's (RuntimeError names a bad value)."""
    settings = settings or load_settings()
    # redirect_slashes=False: Starlette's trailing-slash redirect copies the Host header into Location (F16).
    app = FastAPI(title="Trợ lý BHXH", version="0.1.0", redirect_slashes=False, docs_url=None, redoc_url=None,
                  description="Hỏi đáp BHXH, BHYT, BHTN: API công khai, webhook kênh chat, API cho cán bộ.",
                  lifespan=_lifespan(service, settings.retention_days))
    add_local_docs(app)  # /docs from local files, not a CDN (F15)
    app.state.service = service
    app.state.settings = settings
    # Per-IP limit on the public ask endpoint (requests per window): BHXH_IP_RATE_LIMIT, unless `ip_limit` is given.
    # Counted in the shared store when there is one (several workers), else in memory.
    ip_limiter = rate_limiter(service.store, "ip", ip_limit or settings.ip_rate_limit, ip_window)
    # Votes: the same allowance per IP address, counted apart from the questions.
    feedback_limiter = rate_limiter(service.store, "vote", ip_limiter.limit, ip_window)
    # The web chat's polls for staff replies (GET /api/handoff): the same allowance, counted apart too.
    app.state.handoff_poll_limiter = rate_limiter(service.store, "handoff-poll", ip_limiter.limit, ip_window)

    app.add_middleware(LimitBody, limit=MAX_BODY_BYTES, read_timeout=settings.body_timeout)
    app.add_middleware(PublicPageHeaders)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = jsonable_encoder(exc.errors()[:5], custom_encoder={bytes: lambda b: b.decode("utf-8", "replace")})
        return JSONResponse({"detail": "Yêu cầu không hợp lệ.", "errors": _valid(errors)}, status_code=422)

    @app.exception_handler(UnicodeEncodeError)
    async def unencodable(request: Request, exc: UnicodeEncodeError) -> JSONResponse:
        """Text that is not valid Unicode (a lone surrogate escape) reached code that stores it."""
        log.warning("%s %s: text that cannot be encoded: %s", request.method, request.url.path, exc.reason)
        return JSONResponse({"detail": "Yêu cầu không hợp lệ: văn bản chứa ký tự lỗi."}, status_code=400)

    @app.exception_handler(RecursionError)
    async def too_deep(request: Request, exc: RecursionError) -> JSONResponse:
        """JSON nested thousands deep (review F12: a 500 and a traceback per request on /webhooks/zalo-oa)."""
        log.warning("%s %s: input nested too deeply", request.method, request.url.path)
        return JSONResponse({"detail": "Yêu cầu không hợp lệ: dữ liệu lồng nhau quá sâu."}, status_code=400)

    @app.exception_handler(OverflowError)
    async def out_of_range(request: Request, exc: OverflowError) -> JSONResponse:
        """A number too large for SQLite's 64-bit integers (review F13: a staff cursor id of 10^20)."""
        log.warning("%s %s: number out of range: %s", request.method, request.url.path, exc)
        return JSONResponse({"detail": "Yêu cầu không hợp lệ: số quá lớn."}, status_code=422)

    @app.exception_handler(sqlite3.DatabaseError)
    async def database_busy(request: Request, exc: sqlite3.DatabaseError) -> JSONResponse:
        """Locked, read-only, full or corrupt database on a path that cannot queue (staff reads and edits)."""
        log.warning("%s %s: database unavailable: %s", request.method, request.url.path, exc)
        return JSONResponse({"detail": DB_BUSY_TEXT}, status_code=503, headers={"Retry-After": "5"})

    @app.get("/healthz", tags=["public"])
    def healthz() -> dict[str, Any]:
        encoder = service.engine.index.encoder
        return {"ok": True, "entries": len(service.engine.kb.entries), "dense": service.engine.index.has_dense,
                "pending_log_writes": service.store.pending, "dropped_log_writes": service.store.dropped,
                "database": "memory only" if service.store.in_memory else
                ("postgresql" if hasattr(service.store, "pool") else "file"),
                **({"encoder": encoder.describe()} if encoder is not None else {})}

    @app.post("/api/ask", response_model=AskResponse, tags=["public"],
              responses={429: {"description": "too many requests from this address"}})
    def ask(body: AskRequest, request: Request) -> Any:
        client = request.client.host if request.client else "unknown"
        if not ip_limiter.allow(client):
            return JSONResponse({"detail": "Bạn gửi quá nhiều câu hỏi, vui lòng thử lại sau ít phút."},
                                status_code=429)
        handled = service.handle("web", body.user_id or f"ip:{client}", body.question)
        return {**handled.reply.to_json(), "question_id": handled.question_id}

    @app.post("/api/choose/{entry_id}", response_model=AskResponse, tags=["public"])
    def choose(entry_id: str, request: Request, user_id: str | None = None) -> Any:
        """The answer of an entry the visitor picked from the choices (a stale id gives 404). While a staff
        member has the chat (bot/handoff.py) the press goes to them and the answer is empty, as for a question."""
        client = request.client.host if request.client else "unknown"
        entry = service.engine.kb.entries.get(entry_id)
        if service.handoff.pressed("web", user_id or f"ip:{client}", None, entry.question if entry else None):
            return {**Reply("smalltalk", "").to_json(), "question_id": None}
        reply = service.choose("web", user_id or f"ip:{client}", entry_id)
        if reply is None:
            return JSONResponse({"detail": "Câu hỏi này không còn trong cơ sở dữ liệu, bạn hãy hỏi lại."},
                                status_code=404)
        return {**reply.to_json(), "question_id": None}

    @app.post("/api/calc/voluntary", response_model=VoluntaryCalcResponse, tags=["public"],
              responses={422: {"description": "input out of the allowed range (Vietnamese message)"}})
    def calc_voluntary(body: VoluntaryCalcRequest) -> Any:
        """Tiền đóng BHXH tự nguyện theo thu nhập, nhóm hỗ trợ và phương thức đóng."""
        try:
            r = voluntary_contribution(body.income, body.group, body.months, body.on or dt.date.today(),
                                       table=service.engine.kb.parameters)
        except CalculatorInputError as exc:
            return JSONResponse({"detail": str(exc)}, status_code=422)
        return VoluntaryCalcResponse(
            on=r.on, income=r.income, group=r.group, group_label=GROUP_LABELS[r.group], months=r.months,
            contribution_per_month=r.contribution_per_month, support_per_month=r.support_per_month,
            net_per_month=r.net_per_month, contribution_per_period=r.contribution_per_period,
            support_per_period=r.support_per_period, net_per_period=r.net_per_period,
            steps=list(r.steps), sources=list(r.sources), notes=list(r.notes))

    @app.post("/api/feedback", tags=["public"],
              responses={403: {"description": "the question was asked by someone else"},
                         422: {"description": "neither a question of this visitor nor a known entry"},
                         429: {"description": "too many votes from this address"}})
    def feedback(body: FeedbackRequest, request: Request) -> Any:
        """👍/👎 on an answer: on the visitor's own question (`question_id`, with the `user_id` it was asked
        with), else on an existing entry; one vote per visitor and question, a new one replaces it."""
        client = request.client.host if request.client else "unknown"
        if not feedback_limiter.allow(client):
            return JSONResponse({"detail": "Bạn gửi đánh giá quá nhanh, vui lòng thử lại sau ít phút."},
                                status_code=429)
        if body.value == 0:
            return {"ok": False}
        entry_id = body.entry_id if body.entry_id in service.engine.kb.entries else None
        if body.question_id is None and entry_id is None:
            return JSONResponse({"detail": "Đánh giá cần một câu hỏi của bạn hoặc một câu trả lời có thật."},
                                status_code=422)
        if not service.feedback("web", body.user_id or f"ip:{client}", body.value, entry_id=entry_id,
                                question_id=body.question_id, reason=body.reason):
            return JSONResponse({"detail": "Bạn chỉ có thể đánh giá câu trả lời cho câu hỏi của mình."},
                                status_code=403)
        if body.value < 0:  # 👎: offer a person (bot/handoff.py); the page shows it with a button
            return {"ok": True, "offer": service.handoff.offer("web", body.user_id or f"ip:{client}", "downvote")}
        return {"ok": True}

    if STATIC_DIR.exists():
        app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/", include_in_schema=False)
    def index() -> Any:
        page = STATIC_DIR / "chat.html"
        if page.exists():
            return FileResponse(page, media_type="text/html")
        return JSONResponse({"detail": "web chat not installed"}, status_code=404)

    _include_optional_routers(app, service, settings)
    return app


def _include_optional_routers(app: FastAPI, service: Service, settings: Settings) -> None:
    """Channel webhooks and the staff API live in their own modules."""
    from admin_api import admin, field_kit, handoff_api, staff_review, webhooks

    webhooks.register(app, service, settings)
    admin.register(app, service, settings)
    app.include_router(handoff_api.router(service))  # the staff inbox ("Hỏi cán bộ"), behind the same auth
    app.include_router(handoff_api.public_router(service, app.state.handoff_poll_limiter))  # the web chat's polls
    app.include_router(staff_review.router(service))  # review queue, search and drill-down, all clusters
    app.include_router(field_kit.router)  # public field kit: topic index, answer cards, law articles


def build_service(settings: Settings | None = None) -> Service:
    from admin_api.staff_kb import load_knowledge_with_staff
    from bot.engine import Engine
    from bot.handoff import Handoff
    from storage.factory import is_postgres, open_store
    from storage.store import load_hash_key

    settings = settings or load_settings()
    # BHXH_DATABASE_URL names the backend; empty: the SQLite file settings.database, as before.
    options = {"lease_seconds": settings.inbox_lease_seconds} if is_postgres(settings.database_url) else {}
    store = open_store(settings.database_url, load_hash_key(settings.data_dir, settings.hash_key),
                       default_path=settings.database, **options)
    engine = Engine.from_settings(settings, kb=load_knowledge_with_staff(store))
    if engine.index.encoder is not None:  # concurrent requests share forward passes
        # One single-threaded forward pass per core, side by side: multi-threaded passes wait at every
        # layer for their slowest thread, which loses its core to the server's own Python work.
        # Measured on 2 cores, 20 s runs, medians of 3: 59.6 answered/s (1 worker x 1 thread),
        # 77.8 (1 x 2), 80.0 (2 x 1).
        cores = os.cpu_count() or 2
        engine.index.encoder.enable_batching(threads=1, workers=min(cores, 4))
    return Service(engine, store, memory_seconds=settings.conversation_minutes * 60,
                   handoff=Handoff.from_settings(store, settings))


def _header_timeout_protocol(header_timeout: float) -> type:
    """uvicorn's HTTP protocol (httptools if installed, else h11) that closes a connection whose
    request head has not fully arrived `header_timeout` seconds after it opened or after the last
    response: uvicorn itself waits for ever for a head sent one byte at a time (slowloris)."""
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as Base
    except ImportError:  # httptools is optional
        from uvicorn.protocols.http.h11_impl import H11Protocol as Base  # type: ignore[assignment]

    class HeaderTimeoutProtocol(Base):  # type: ignore[misc, valid-type]
        _head_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._await_head()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._await_head()

        def connection_lost(self, exc: Exception | None) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
            super().connection_lost(exc)

        def _await_head(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
            self._head_timer = self.loop.call_later(header_timeout, self._head_overdue)

        def _head_overdue(self) -> None:
            waiting_for_head = self.cycle is None or self.cycle.response_complete  # no request under way
            if waiting_for_head and not self.transport.is_closing():
                self.transport.close()

    return HeaderTimeoutProtocol


def server_options(*, header_timeout: float = HEADER_TIMEOUT, max_connections: int = MAX_CONNECTIONS) -> dict[str, Any]:
    """uvicorn settings of `bhxh serve` (review F7): timeouts and limits for slow or many clients."""
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft != resource.RLIM_INFINITY:  # keep descriptors for the database, models and logs
            max_connections = max(16, min(max_connections or soft, soft - 64))
    except (ImportError, ValueError, OSError):
        pass
    max_connections = max_connections or 10_000
    return {"http": _header_timeout_protocol(header_timeout), "timeout_keep_alive": KEEP_ALIVE_TIMEOUT,
            "limit_concurrency": max_connections, "h11_max_incomplete_event_size": 16 * 1024}


def serve(app: FastAPI, host: str, port: int) -> None:
    """Run `app` with uvicorn and the settings of `server_options` (timeouts and limits from the app's Settings)."""
    import uvicorn

    settings: Settings = app.state.settings
    options = server_options(header_timeout=settings.header_timeout, max_connections=settings.max_connections)
    uvicorn.run(app, host=host, port=port, log_level="warning", **options)
