"""The staff API under /admin/ and the staff dashboard.

Authentication
    Every /admin/ endpoint needs ``Authorization: Bearer <BHXH_ADMIN_TOKEN>`` (compared in
    constant time). The dashboard (/admin/dashboard) is for browsers: /admin/login takes the
    token (and the staff member's name) in a form and sets a session cookie (an HMAC of the
    token, never the token itself; HttpOnly, SameSite=Strict, path /admin, 12 hours), so the
    token never sits in a URL; a bearer header opens the page too. The cookie is also accepted
    for GET requests of the API (so the dashboard's CSV links work); changes need the bearer
    header, or the dashboard's own form with its CSRF field. ``X-Staff-Name`` names the person
    for the audit log (default "staff"; UTF-8 or percent-encoded).

Environment
    BHXH_ADMIN_TOKEN     required: without it `register` raises RuntimeError (no open admin).
    BHXH_RETENTION_DAYS  days of question log to keep (default 365; 0 = keep forever); applied
                         at start-up and then daily by a background task.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import datetime as dt
import gc
import hashlib
import hmac
import io
import logging
import os
import secrets
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qs, quote, unquote, urlencode

from fastapi import APIRouter, Depends, FastAPI, Header, HTTPException, Query, Request, Security
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup
from pydantic import BaseModel, Field

from admin_api import analytics as an
from admin_api import staff_kb as skb
from bot.service import RateLimiter, Service
from knowledge.topics import TOPICS
from storage.store import Store

log = logging.getLogger(__name__)

TEMPLATES = Path(__file__).resolve().parent / "templates"
SESSION_COOKIE = "bhxh_staff_session"
SESSION_SECONDS = 12 * 3600  # a dashboard session ends this long after login, or at logout
MAX_SESSIONS = 1000
BEARER_FAILURES_PER_MINUTE = 10  # wrong bearer tokens one IP address may send a minute (then 429)
NAME_COOKIE = "bhxh_staff_name"  # who signed in, for the audit log of dashboard actions
DEFAULT_RETENTION_DAYS = 365
MIN_TOKEN_CHARS = 16
CSV_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
OUTCOME_LABELS = {"answered": "Trả lời được", "choices": "Hỏi lại để chọn", "declined": "Chưa trả lời"}
PALETTE = ("#1d6fb8", "#e07b00", "#2a9d8f", "#c0392b", "#7b4fa0", "#8c6d31")

TopicKey = Enum("TopicKey", {k: k for k in TOPICS}, type=str)  # the fixed topic list, as an OpenAPI enum


# ---------------------------------------------------------------- settings


def admin_token() -> str:
    token = os.environ.get("BHXH_ADMIN_TOKEN", "").strip()
    if not token:
        raise RuntimeError(
            "BHXH_ADMIN_TOKEN is not set: the staff API (/admin/) refuses to run without a token. "
            "Set it to a long random secret, e.g. BHXH_ADMIN_TOKEN=$(python -c 'import secrets; "
            "print(secrets.token_urlsafe(32))')")
    if len(token) < MIN_TOKEN_CHARS:  # a short token can be guessed (review F14): refuse, do not just warn
        raise RuntimeError(
            f"BHXH_ADMIN_TOKEN is shorter than {MIN_TOKEN_CHARS} characters: use a long random secret, e.g. "
            "$(python -c 'import secrets; print(secrets.token_urlsafe(32))')")
    return token


def retention_days() -> int:
    raw = os.environ.get("BHXH_RETENTION_DAYS", "").strip()
    if not raw:
        return DEFAULT_RETENTION_DAYS
    try:
        days = int(raw)
    except ValueError:
        raise RuntimeError(
            f"BHXH_RETENTION_DAYS must be a whole number of days (0 = keep forever), got {raw!r}") from None
    if days < 0:
        raise RuntimeError(f"BHXH_RETENTION_DAYS must be 0 or more, got {days}")
    return days


def apply_retention(store: Store, days: int) -> int:
    """Delete questions and feedback older than `days` days (0: keep everything)."""
    if days <= 0:
        return 0
    deleted = store.delete_older_than(days)
    if deleted:
        log.info("retention: deleted %d questions older than %d days", deleted, days)
        store.audit("system", "retention", "questions", {"deleted": deleted, "days": days})
    return deleted


def prepare_database(service: Service) -> bool:
    """The staff indexes, daily counts and staff entries (idempotent). False if the database refuses
    (locked by another process, read-only): the bot still starts, and this is retried at start-up and daily."""
    try:
        an.migrate(service.store)
        skb.ensure_staff_entries_loaded(service)
        return True
    except sqlite3.OperationalError as exc:
        log.warning("database not ready for the staff API (%s); retried at start-up and daily", exc)
        return False


async def _retention_loop(service: Service, days: int, every_s: float = 86_400.0) -> None:
    while True:
        await asyncio.sleep(every_s)
        try:
            await asyncio.to_thread(prepare_database, service)
            await asyncio.to_thread(apply_retention, service.store, days)
        except Exception:  # keep the loop alive: the next day retries
            log.exception("retention run failed")


def _install_retention(app: FastAPI, service: Service, days: int) -> None:
    """At start-up apply retention once (then daily) and freeze the start-up heap, wrapping the app's own
    lifespan."""
    inner = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(app_: Any) -> AsyncIterator[Any]:
        try:
            await asyncio.to_thread(prepare_database, service)
            await asyncio.to_thread(apply_retention, service.store, days)
        except Exception:
            log.exception("retention at start-up failed")
        # The models and indexes loaded at start-up live as long as the process: keep them out of
        # the garbage collector's full passes, which otherwise stall requests for 100s of ms.
        gc.collect()
        gc.freeze()
        task = asyncio.create_task(_retention_loop(service, days)) if days > 0 else None
        try:
            async with inner(app_) as state:
                yield state
        finally:
            if task is not None:
                task.cancel()

    app.router.lifespan_context = lifespan


# ---------------------------------------------------------------- authentication


@dataclass(frozen=True)
class Staff:
    name: str


def staff_name(raw: str | None) -> str:
    """The X-Staff-Name header: UTF-8 bytes arrive as latin-1 text, or it may be percent-encoded."""
    if not raw:
        return "staff"
    with contextlib.suppress(UnicodeEncodeError, UnicodeDecodeError):
        raw = raw.encode("latin-1").decode("utf-8")
    if "%" in raw:
        raw = unquote(raw)
    name = "".join(ch for ch in raw if ch.isprintable()).strip()[:80]
    return name or "staff"


bearer_scheme = HTTPBearer(auto_error=False, scheme_name="StaffToken",
                           description="The value of BHXH_ADMIN_TOKEN, as `Authorization: Bearer <token>`.")


class StaffAuth:
    """FastAPI dependency: the bearer token (or, for GET, the dashboard's session cookie).

    Dashboard sessions are kept on the server (in memory): a random id per login, valid for
    SESSION_SECONDS, ended by logout; the cookie holds only that id, and the form's CSRF value is
    derived from it. A restart ends every session (staff sign in again)."""

    def __init__(self, token: str, *, session_seconds: float = SESSION_SECONDS) -> None:
        self._token = token.encode()
        self.session_seconds = session_seconds
        self._sessions: OrderedDict[str, float] = OrderedDict()  # sha256 of the session id -> expiry (epoch s)
        self._sessions_lock = threading.Lock()
        # Wrong bearer tokens per IP address (review F14: guessing was unlimited; the login form had a limit).
        self._failures = RateLimiter(BEARER_FAILURES_PER_MINUTE, 60.0)

    def _derive(self, purpose: bytes) -> str:
        return hmac.new(self._token, purpose, hashlib.sha256).hexdigest()

    @staticmethod
    def _session_key(session_id: str) -> str:
        return hashlib.sha256(session_id.encode("utf-8", "replace")).hexdigest()

    def start_session(self) -> str:
        """A new session id (the cookie value), valid for `session_seconds`."""
        session_id = secrets.token_hex(32)
        now = time.time()
        with self._sessions_lock:
            for key in [k for k, expiry in self._sessions.items() if expiry <= now]:
                del self._sessions[key]
            self._sessions[self._session_key(session_id)] = now + self.session_seconds
            while len(self._sessions) > MAX_SESSIONS:  # logins need the token and are rate-limited; still bounded
                self._sessions.popitem(last=False)
        return session_id

    def end_session(self, request: Request) -> None:
        cookie = request.cookies.get(SESSION_COOKIE)
        if cookie:
            with self._sessions_lock:
                self._sessions.pop(self._session_key(cookie), None)

    def _session_id(self, request: Request) -> str | None:
        """The request's session id if it names a live session."""
        cookie = request.cookies.get(SESSION_COOKIE)
        if not cookie:
            return None
        key = self._session_key(cookie)
        with self._sessions_lock:
            expiry = self._sessions.get(key)
            if expiry is None:
                return None
            if expiry <= time.time():
                del self._sessions[key]
                return None
        return cookie

    def csrf_for(self, request: Request) -> str:
        """The dashboard form's CSRF value: bound to the session (or, with the bearer header, fixed)."""
        session_id = self._session_id(request)
        if session_id is None:
            return self._derive(b"bhxh-dashboard-csrf-v1")
        return self._derive(b"bhxh-dashboard-csrf-v2:" + session_id.encode())

    def token_ok(self, presented: str | None) -> bool:
        return presented is not None and hmac.compare_digest(presented.encode(), self._token)

    def session_ok(self, request: Request) -> bool:
        return self._session_id(request) is not None

    def csrf_ok(self, request: Request, presented: str | None) -> bool:
        return presented is not None and hmac.compare_digest(presented.encode(), self.csrf_for(request).encode())

    def __call__(
        self,
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer_scheme)],
        x_staff_name: Annotated[str | None, Header(description="Who is acting, for the audit log")] = None,
    ) -> Staff:
        if credentials is not None and self.token_ok(credentials.credentials):
            return Staff(staff_name(x_staff_name))
        if credentials is not None and not self._failures.allow(request.client.host if request.client else ""):
            raise HTTPException(status_code=429, detail="Sai mã truy cập quá nhiều lần. Vui lòng chờ một phút.")
        if request.method in ("GET", "HEAD") and self.session_ok(request):
            return Staff(staff_name(x_staff_name))
        message = "Thiếu mã truy cập của cán bộ." if credentials is None else "Mã truy cập không đúng."
        raise HTTPException(status_code=401, detail=message, headers={"WWW-Authenticate": "Bearer"})


def require_staff(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer_scheme)],
    x_staff_name: Annotated[str | None, Header(description="Who is acting, for the audit log (UTF-8)")] = None,
) -> Staff:
    """The auth dependency of every /admin/ endpoint (the app's StaffAuth, set by `register`)."""
    auth: StaffAuth = request.app.state.staff_auth
    return auth(request, credentials, x_staff_name)


StaffDep = Annotated[Staff, Depends(require_staff)]
Channel = Annotated[str | None, Query(max_length=50, description="web, telegram, zalo, …")]
TopicQ = Annotated[TopicKey | None, Query(description="Topic key")]  # type: ignore[valid-type]
OutcomeQ = Annotated[an.Outcome | None, Query()]
From = Annotated[dt.datetime | None, Query(alias="from", description="ISO time (naive = UTC), inclusive")]
To = Annotated[dt.datetime | None, Query(description="ISO time (naive = UTC), exclusive")]
Contains = Annotated[str | None, Query(max_length=200, description="Text contains (redacted or normalized)")]
EntryId = Annotated[str, PathParam(max_length=200, description="Entry id (slug)")]


# ---------------------------------------------------------------- request/response models


class AttachRequest(BaseModel):
    """Give `question_id` (its normalized, redacted text is attached) or `text` (redacted again)."""

    question_id: int | None = Field(None, ge=1, le=2**62, description="A logged question")
    text: str | None = Field(None, max_length=1000, description="A text to attach instead")


class AttachResponse(BaseModel):
    entry: skb.EntryOut
    paraphrase: str = Field(description="The text added to the entry's paraphrases")


class RevertResponse(BaseModel):
    reverted: bool
    entry: skb.EntryOut | None = Field(description="The YAML version now in force, or null if the entry is gone")


def _problems_response(exc: skb.StaffEditError) -> JSONResponse:
    body: dict[str, Any] = {"detail": exc.detail}
    if exc.status == 422 or exc.problems:
        body["problems"] = [skb.parse_problem(p).model_dump() for p in exc.problems]
    return JSONResponse(body, status_code=exc.status)


EDIT_RESPONSES: dict[int | str, dict[str, Any]] = {
    404: {"description": "unknown entry or question"},
    409: {"description": "already exists"},
    422: {"model": skb.ProblemReport, "description": "validation problems (file, entry, field), as `bhxh kb check`"},
    503: {"description": "the search index could not be rebuilt; nothing was changed"},
}


# ---------------------------------------------------------------- CSV


def _csv_cell(value: Any) -> Any:
    """Keep spreadsheets from running user text as a formula."""
    if isinstance(value, str) and value.startswith(CSV_FORMULA_START):
        return "'" + value
    return "" if value is None else value


def _csv_stream(header: list[str], rows: Iterator[tuple[Any, ...]] | list[tuple[Any, ...]]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    buffer.write("\ufeff")  # so spreadsheet programs read UTF-8 Vietnamese correctly
    writer.writerow(header)
    for n, row in enumerate(rows, start=1):
        writer.writerow([_csv_cell(v) for v in row])
        if n % 1000 == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def _csv_response(name: str, header: list[str], rows: Any) -> StreamingResponse:
    return StreamingResponse(_csv_stream(header, rows), media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": f'attachment; filename="{name}"'})


CSV_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/csv": {}}, "description": "CSV, UTF-8 with BOM"}}


# ---------------------------------------------------------------- registration


def register(app: FastAPI, service: Service) -> None:
    """Mount the staff API and dashboard (refuses to start without BHXH_ADMIN_TOKEN)."""
    auth = StaffAuth(admin_token())
    app.state.staff_auth = auth
    keep_days = retention_days()
    prepare_database(service)
    _install_retention(app, service, keep_days)

    @app.exception_handler(skb.StaffEditError)
    async def staff_edit_error(request: Request, exc: skb.StaffEditError) -> JSONResponse:
        return _problems_response(exc)

    app.include_router(_api_router(service))
    app.include_router(_dashboard_router(service, auth))


def _api_router(service: Service) -> APIRouter:
    router = APIRouter(prefix="/admin", tags=["staff"], responses={401: {"description": "missing or wrong token"}})

    def filters(start: dt.datetime | None, to: dt.datetime | None, topic: Any, channel: str | None,
                outcome: str | None, q: str | None) -> an.QuestionFilter:
        return an.QuestionFilter(start=start, end=to, topic=topic.value if topic else None, channel=channel or None,
                                 outcome=outcome, contains=q or None)

    @router.get("/topics", response_model=an.TopicsReport)
    def topics(_: StaffDep, days: Annotated[int, Query(ge=1, le=365)] = 7, channel: Channel = None) -> Any:
        """Questions per topic in the last `days` days and in the `days` before, with the rising test:
        with n = current + previous, under "no change" current ~ Binomial(n, 1/2); a topic is
        **rising** when P(X >= current) < 0.01, current >= 10 and current >= 1.5 x max(previous, 1).
        Every topic of knowledge/topics.py is listed, zero counts included."""
        return an.topic_trends(service.store, days, channel or None)

    @router.get("/topics/daily", response_model=an.DailySeries)
    def topics_daily(_: StaffDep, days: Annotated[int, Query(ge=1, le=365)] = 30, channel: Channel = None) -> Any:
        """Daily counts per topic and per outcome (Vietnam days, UTC+7), oldest first."""
        return an.daily_series(service.store, days, channel or None)

    @router.get("/questions", response_model=an.QuestionPage)
    def questions(_: StaffDep, start: From = None, to: To = None, topic: TopicQ = None, channel: Channel = None,
                  outcome: OutcomeQ = None, q: Contains = None,
                  limit: Annotated[int, Query(ge=1, le=500)] = 50,
                  cursor: Annotated[str | None, Query(max_length=200, description="next_cursor of the previous page")]
                  = None) -> Any:
        """The question log (redacted), newest first; page with `cursor`."""
        try:
            return an.list_questions(service.store, filters(start, to, topic, channel, outcome, q), limit, cursor)
        except ValueError as exc:
            return JSONResponse({"detail": f"Tham số không hợp lệ: {exc}."}, status_code=422)

    @router.get("/unanswered", response_model=an.UnansweredReport)
    def unanswered(_: StaffDep, days: Annotated[int, Query(ge=1, le=90)] = 7, channel: Channel = None,
                   min_score: Annotated[float | None, Query(
                       ge=0, le=1, allow_inf_nan=False, description="default: the engine's answer threshold + 0.02")]
                   = None,
                   limit: Annotated[int, Query(ge=1, le=100)] = 20,
                   examples: Annotated[int, Query(ge=1, le=10)] = 3,
                   include_out_of_scope: Annotated[bool, Query(description="also off-topic questions")] = False
                   ) -> Any:
        """Declined, choice and low-score questions grouped into clusters of similar wording, largest
        first, each with examples and its nearest entries (to attach as a paraphrase)."""
        return an.unanswered(service.store, service.engine, days, channel or None, min_score, limit, examples,
                             include_out_of_scope)

    @router.get("/feedback", response_model=an.FeedbackReport)
    def feedback(_: StaffDep, days: Annotated[int | None, Query(ge=1, le=3650)] = None) -> Any:
        """👍/👎 counts per entry (all time, or the last `days` days), most 👎 first."""
        return an.feedback_counts(service.store, service.engine, days)

    @router.get("/export/questions.csv", response_class=StreamingResponse, responses=CSV_RESPONSE)
    def export_questions(_: StaffDep, start: From = None, to: To = None, topic: TopicQ = None, channel: Channel = None,
                         outcome: OutcomeQ = None, q: Contains = None,
                         limit: Annotated[int, Query(ge=1, le=1_000_000)] = 100_000) -> Any:
        """The filtered log as CSV (newest first)."""
        rows = an.iter_questions(service.store, filters(start, to, topic, channel, outcome, q), limit)
        return _csv_response("questions.csv", list(an.QUESTION_COLUMNS), rows)

    @router.get("/export/topics.csv", response_class=StreamingResponse, responses=CSV_RESPONSE)
    def export_topics(_: StaffDep, days: Annotated[int, Query(ge=1, le=365)] = 30, channel: Channel = None) -> Any:
        """Questions per Vietnam day and topic (zeros included) with their outcomes, as CSV."""
        rows = [(day, topic or "(none)", TOPICS.get(topic, "Không xác định chủ đề"), a + c + d, a, c, d)
                for day, topic, a, c, d in an.daily_topic_rows(service.store, days, channel or None)]
        return _csv_response("topics.csv", ["day", "topic", "label", "questions", "answered", "choices", "declined"],
                             rows)

    @router.get("/review")
    def review(_: StaffDep) -> Any:
        """Entries to re-review: a cited document changed since their review (error), or the scope
        is unknown or the review is old (warning). Same list as `bhxh kb check`."""
        from knowledge.registry import review_flags

        return [{"entry_id": f.entry_id, "file": f.file, "severity": f.severity, "reason": f.reason,
                 "reviewed_on": f.reviewed_on.isoformat()} for f in review_flags(service.engine.kb)]

    @router.get("/entries", response_model=list[skb.EntrySummary])
    def entries(_: StaffDep, topic: TopicQ = None, q: Contains = None) -> Any:
        """Entries in force (YAML merged with staff records)."""
        return skb.list_entries(service, topic.value if topic else None, q)

    @router.get("/entries/{entry_id}", response_model=skb.EntryOut, responses={404: EDIT_RESPONSES[404]})
    def get_entry(_: StaffDep, entry_id: EntryId) -> Any:
        """One entry's record as stored (YAML, or the staff record that replaces it)."""
        return skb.get_entry(service, entry_id)

    @router.post("/entries", response_model=skb.EntryOut, status_code=201, responses=EDIT_RESPONSES)
    def create_entry(staff: StaffDep, body: skb.EntryRecord) -> Any:
        """Create an entry. Validated exactly like `bhxh kb check` (422 lists file/entry/field
        problems); in force at once, without a restart; audited."""
        return skb.save_entry(service, body.raw(), staff.name, create=True)

    @router.put("/entries/{entry_id}", response_model=skb.EntryOut, responses=EDIT_RESPONSES)
    def put_entry(staff: StaffDep, entry_id: EntryId, body: skb.EntryRecord) -> Any:
        """Create or replace an entry with a staff record (the whole record; GET it first to edit).
        Validated like `bhxh kb check`; in force at once; audited."""
        return skb.save_entry(service, body.raw(), staff.name, entry_id=entry_id)

    @router.delete("/entries/{entry_id}", response_model=RevertResponse, responses=EDIT_RESPONSES)
    def revert_entry(staff: StaffDep, entry_id: EntryId) -> Any:
        """Remove the staff record of an entry: back to the YAML version, or gone if staff-created."""
        entry = skb.revert_entry(service, entry_id, staff.name)
        return RevertResponse(reverted=True, entry=entry)

    @router.post("/entries/{entry_id}/paraphrases", response_model=AttachResponse, responses=EDIT_RESPONSES)
    def attach(staff: StaffDep, entry_id: EntryId, body: AttachRequest) -> Any:
        """Attach a logged question (its normalized, redacted text) to an entry as a paraphrase, so the
        same question is answered with that entry from now on; audited."""
        entry, text = skb.attach_paraphrase(service, entry_id, staff.name, question_id=body.question_id,
                                            text=body.text)
        return AttachResponse(entry=entry, paraphrase=text)

    @router.get("/audit", response_model=an.AuditPage)
    def audit(_: StaffDep, limit: Annotated[int, Query(ge=1, le=500)] = 50,
              offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
              action: Annotated[str | None, Query(max_length=50)] = None) -> Any:
        """Every staff change (who, when, what), newest first."""
        return an.audit_log(service.store, limit, offset, action or None)

    return router


# ---------------------------------------------------------------- dashboard: SVG charts (server-side)


def _nice_ceiling(value: float) -> tuple[float, float]:
    """A round axis maximum >= value and its tick step (4 ticks)."""
    if value <= 0:
        return 4.0, 1.0
    raw = value / 4
    magnitude = 10 ** int(f"{raw:e}".split("e")[1])
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    return step * 4, step


def _fmt(n: float) -> str:
    return f"{n:,.0f}".replace(",", ".")


def _day_label(day: str) -> str:
    return f"{day[8:10]}/{day[5:7]}"


def line_chart(series: an.DailySeries, lines: list[tuple[str, str, list[int], bool]], window: int) -> Markup:
    """Daily counts, one line per (key, label, values, emphasised); the last `window` days shaded."""
    width, height, left, right, top, bottom = 960, 300, 48, 16, 14, 34
    n = len(series.days)
    plot_w, plot_h = width - left - right, height - top - bottom
    y_max, step = _nice_ceiling(max([max(v) for _, _, v, _ in lines if v] + [1]))

    def x(i: int) -> float:
        return left + (plot_w * i / (n - 1) if n > 1 else plot_w / 2)

    def y(v: float) -> float:
        return top + plot_h * (1 - v / y_max)

    out = [f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
           f'aria-label="Số câu hỏi theo ngày và chủ đề" xmlns="http://www.w3.org/2000/svg">']
    if 0 < window < n:
        x0 = x(n - window) - (plot_w / (n - 1) / 2 if n > 1 else 0)
        out.append(f'<rect x="{x0:.1f}" y="{top}" width="{left + plot_w - x0:.1f}" height="{plot_h}" fill="#eef4fb"/>')
        out.append(f'<text x="{left + plot_w - 4:.1f}" y="{top + 12}" text-anchor="end" class="axis">'
                   f'{window} ngày gần nhất</text>')
    for k in range(5):
        v = step * k
        out.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{y(v):.1f}" y2="{y(v):.1f}" class="grid"/>')
        out.append(f'<text x="{left - 6}" y="{y(v) + 4:.1f}" text-anchor="end" class="axis">{_fmt(v)}</text>')
    every = max(1, round(n / 8))
    for i, day in enumerate(series.days):
        if (n - 1 - i) % every == 0:
            out.append(f'<text x="{x(i):.1f}" y="{height - 12}" text-anchor="middle" class="axis">'
                       f'{_day_label(day)}</text>')
    for (_key, label, values, strong), colour in zip(lines, PALETTE, strict=False):
        width_attr = f'stroke="{colour}" stroke-width="{3 if strong else 2}" fill="none"'
        done = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(values[:-1] if n > 1 else values))
        out.append(f'<polyline points="{done}" {width_attr} stroke-linejoin="round" stroke-linecap="round">'
                   f'<title>{Markup.escape(label)}</title></polyline>')
        if n > 1:  # today is still going on: a dashed last segment
            out.append(f'<line x1="{x(n - 2):.1f}" y1="{y(values[-2]):.1f}" x2="{x(n - 1):.1f}" '
                       f'y2="{y(values[-1]):.1f}" {width_attr} stroke-dasharray="4 4"/>')
        for i, v in enumerate(values):
            out.append(f'<circle cx="{x(i):.1f}" cy="{y(v):.1f}" r="{3 if strong else 2.2}" fill="{colour}">'
                       f'<title>{Markup.escape(label)} — {_day_label(series.days[i])}: {v}</title></circle>')
    out.append("</svg>")
    return Markup("".join(out))


OUTCOME_COLOURS = {"answered": "#2a9d8f", "choices": "#e9b949", "declined": "#c8553d"}


def outcome_bars(series: an.DailySeries) -> Markup:
    """Stacked daily bars: answered / choices / declined."""
    width, height, left, right, top, bottom = 460, 190, 40, 8, 10, 30
    n = len(series.days)
    plot_w, plot_h = width - left - right, height - top - bottom
    y_max, step = _nice_ceiling(max([*series.total, 1]))
    slot = plot_w / max(n, 1)
    bar = max(1.0, slot * 0.72)
    out = [f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-label="Kết quả trả lời theo ngày" '
           'xmlns="http://www.w3.org/2000/svg">']
    for k in range(5):
        yy = top + plot_h * (1 - step * k / y_max)
        out.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{yy:.1f}" y2="{yy:.1f}" class="grid"/>')
        out.append(f'<text x="{left - 5}" y="{yy + 4:.1f}" text-anchor="end" class="axis">{_fmt(step * k)}</text>')
    every = max(1, round(n / 6))
    for i, day in enumerate(series.days):
        base = top + plot_h
        x0 = left + slot * i + (slot - bar) / 2
        tip = f"{_day_label(day)}: " + ", ".join(f"{OUTCOME_LABELS[o]} {series.outcomes[o][i]}" for o in an.OUTCOMES)
        out.append(f"<g><title>{Markup.escape(tip)}</title>")
        for outcome in an.OUTCOMES:
            h = plot_h * series.outcomes[outcome][i] / y_max
            if h > 0:
                base -= h
                out.append(f'<rect x="{x0:.1f}" y="{base:.1f}" width="{bar:.1f}" height="{h:.1f}" '
                           f'fill="{OUTCOME_COLOURS[outcome]}"/>')
        out.append("</g>")
        if (n - 1 - i) % every == 0:
            out.append(f'<text x="{x0 + bar / 2:.1f}" y="{height - 10}" text-anchor="middle" class="axis">'
                       f'{_day_label(day)}</text>')
    out.append("</svg>")
    return Markup("".join(out))


def sparkline(values: list[int], colour: str = "#1d6fb8") -> Markup:
    """A small daily line; the last (still running) day is dashed."""
    width, height = 120, 28
    top = max([*values, 1])
    n = len(values)
    pts = [(2 + (width - 4) * i / max(n - 1, 1), height - 3 - (height - 6) * v / top) for i, v in enumerate(values)]
    line = " ".join(f"{px:.1f},{py:.1f}" for px, py in (pts[:-1] if n > 1 else pts))
    parts = [f'<svg class="spark" viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg" aria-hidden="true">'
             f'<polyline points="{line}" fill="none" stroke="{colour}" stroke-width="1.6"/>']
    if n > 1:
        (x1, y1), (x2, y2) = pts[-2], pts[-1]
        parts.append(f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" stroke="{colour}" '
                     'stroke-width="1.6" stroke-dasharray="3 3"/>')
    parts.append("</svg>")
    return Markup("".join(parts))


def share_bar(share: float, colour: str = "#c8553d") -> Markup:
    w = max(0.0, min(1.0, share)) * 100
    return Markup(f'<svg class="bar" viewBox="0 0 100 8" preserveAspectRatio="none" aria-hidden="true" '
                  f'xmlns="http://www.w3.org/2000/svg"><rect width="100" height="8" rx="2" fill="#e8ecf1"/>'
                  f'<rect width="{w:.1f}" height="8" rx="2" fill="{colour}"/></svg>')


def swatch(colour: str) -> Markup:
    return Markup(f'<svg class="swatch" viewBox="0 0 12 12" aria-hidden="true" xmlns="http://www.w3.org/2000/svg">'
                  f'<rect width="12" height="12" rx="3" fill="{colour}"/></svg>')


# ---------------------------------------------------------------- dashboard: pages


SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
                               "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
}


def _review_list(kb: Any) -> list[dict[str, Any]]:
    """Entries to re-review, one row per entry (errors first), for the dashboard panel."""
    from knowledge.registry import review_flags

    rows: dict[str, dict[str, Any]] = {}
    for f in review_flags(kb):
        row = rows.setdefault(f.entry_id, {"entry_id": f.entry_id, "file": f.file, "error": False,
                                           "reviewed_on": f.reviewed_on.isoformat(), "reasons": []})
        row["error"] |= f.severity == "error"
        row["reasons"].append(f.reason)
    return sorted(rows.values(), key=lambda r: (not r["error"], r["reviewed_on"], r["entry_id"]))


def _dashboard_context(service: Service, days: int, channel: str | None) -> dict[str, Any]:
    store, engine = service.store, service.engine
    trends = an.topic_trends(store, days, channel)
    chart_days = min(max(days * 2, 14), 180)
    series = an.daily_series(store, chart_days, channel)
    window = slice(chart_days - min(days, chart_days), chart_days)
    by_topic = sorted(TOPICS, key=lambda t: -sum(series.topics[t]))
    rising = {t.topic for t in trends.topics if t.rising}
    shown = by_topic[:len(PALETTE)]
    lines = [(t, TOPICS[t], series.topics[t], t in rising) for t in shown]
    answered = sum(series.outcomes["answered"][window])
    total = sum(series.total[window])
    unanswered = an.unanswered(store, engine, min(days, 90), channel, limit=8, examples=4)
    feedback = an.feedback_counts(store, engine, days)
    spark = {t: series.topics[t][window] for t in TOPICS}
    return {
        "days": days, "channel": channel or "", "channels": an.channels(store),
        "trends": trends, "rising": [t for t in trends.topics if t.rising],
        "legend": [(TOPICS[t], swatch(c), t in rising) for t, c in zip(shown, PALETTE, strict=False)],
        "line_chart": line_chart(series, lines, min(days, chart_days)), "chart_days": chart_days,
        "outcome_chart": outcome_bars(an.DailySeries(
            days=series.days[window], channel=channel, topics={}, total=series.total[window],
            outcomes={o: v[window] for o, v in series.outcomes.items()})),
        "outcome_legend": [(OUTCOME_LABELS[o], swatch(OUTCOME_COLOURS[o])) for o in an.OUTCOMES],
        "sparks": {t: sparkline(v) for t, v in spark.items()},
        "review": _review_list(engine.kb),
        "kpi": {
            "total": trends.total_current, "previous": trends.total_previous,
            "change_pct": (round(100 * (trends.total_current - trends.total_previous) / trends.total_previous)
                           if trends.total_previous else None),
            "answered_pct": round(100 * answered / total) if total else None,
            "unanswered": unanswered.questions, "clusters": unanswered.clusters_total,
            "up": feedback.up, "down": feedback.down, "rising": len(rising),
        },
        "unanswered": unanswered, "feedback": feedback.entries[:10],
        "share_bar": share_bar, "fmt": _fmt, "topic_label": TOPICS,
        "updated": (an.utc_now() + an.LOCAL_OFFSET).strftime("%H:%M %d/%m/%Y"),
        "test": an.RISING_TEST_VI,
    }


def _dashboard_router(service: Service, auth: StaffAuth) -> APIRouter:
    router = APIRouter(prefix="/admin", include_in_schema=False)
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]))
    login_limiter = RateLimiter(10, 60.0)

    def authorized(request: Request) -> bool:
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        return (scheme.lower() == "bearer" and auth.token_ok(value.strip())) or auth.session_ok(request)

    def page(name: str, status: int = 200, **context: Any) -> HTMLResponse:
        return HTMLResponse(env.get_template(name).render(**context), status_code=status, headers=SECURITY_HEADERS)

    async def form(request: Request) -> dict[str, str]:
        body = (await request.body())[:16_384].decode("utf-8", "replace")
        return {k: v[0] for k, v in parse_qs(body).items()}

    @router.get("/login")
    def login_page(error: str | None = None) -> HTMLResponse:
        return page("dashboard.html", view="login", error=bool(error))

    @router.post("/login")
    async def login(request: Request) -> Response:
        client = request.client.host if request.client else "unknown"
        if not login_limiter.allow(client):
            return page("dashboard.html", 429, view="login", error=True,
                        message="Bạn đã thử quá nhiều lần. Vui lòng chờ một phút.")
        data = await form(request)
        if not auth.token_ok(data.get("token", "").strip()):
            return page("dashboard.html", 401, view="login", error=True)
        response = RedirectResponse("/admin/dashboard", status_code=303)
        cookie = {"max_age": int(auth.session_seconds), "path": "/admin", "httponly": True, "samesite": "strict",
                  "secure": request.url.scheme == "https"}
        response.set_cookie(SESSION_COOKIE, auth.start_session(), **cookie)  # type: ignore[arg-type]
        response.set_cookie(NAME_COOKIE, quote(staff_name(data.get("name"))), **cookie)  # type: ignore[arg-type]
        return response

    @router.post("/logout")
    def logout(request: Request) -> Response:
        auth.end_session(request)  # the cookie stops working on the server, not only in this browser
        response = RedirectResponse("/admin/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/admin")
        response.delete_cookie(NAME_COOKIE, path="/admin")
        return response

    @router.get("/dashboard")
    def dashboard(request: Request, days: Annotated[int, Query(ge=1, le=180)] = 14,
                  channel: Annotated[str | None, Query(max_length=50)] = None,
                  msg: Annotated[str | None, Query(max_length=300)] = None,
                  ok: Annotated[int, Query(ge=0, le=1)] = 1) -> Response:
        if not authorized(request):
            return RedirectResponse("/admin/login", status_code=303)
        context = _dashboard_context(service, days, channel or None)
        return page("dashboard.html", view="dashboard", csrf=auth.csrf_for(request), message=msg, ok=bool(ok),
                    staff=staff_name(request.cookies.get(NAME_COOKIE)), **context)

    @router.post("/dashboard/attach")
    async def dashboard_attach(request: Request) -> Response:
        data = await form(request)
        if not authorized(request) or not auth.csrf_ok(request, data.get("csrf")):
            return JSONResponse({"detail": "Phiên đăng nhập không hợp lệ."}, status_code=403)
        back = {"days": data.get("days", "14"), "channel": data.get("channel", "")}
        entry_id = data.get("entry_id", "")
        try:
            question_id = int(data.get("question_id", ""))
            actor = staff_name(request.cookies.get(NAME_COOKIE))
            _, text = await asyncio.to_thread(skb.attach_paraphrase, service, entry_id, actor, question_id=question_id)
            back.update(msg=f"Đã thêm «{text}» làm cách hỏi của mục {entry_id}.", ok="1")
        except ValueError:
            back.update(msg="Câu hỏi không hợp lệ.", ok="0")
        except skb.StaffEditError as exc:
            back.update(msg=f"Không thêm được: {exc.detail} " + " ".join(exc.problems[:2]), ok="0")
        return RedirectResponse(f"/admin/dashboard?{urlencode(back, quote_via=quote)}#unanswered", status_code=303)

    return router
