"""The staff inbox ("Hộp thư cán bộ"): conversations citizens handed to a person (bot/handoff.py).

JSON under /admin/handoffs (the queue with waiting times, one conversation, take, reply, close, and turning a
closed conversation's question into a paraphrase of an entry or its staff answer into a draft entry: a pending
version for a reviewer, validated by `staff_kb.propose_entry` like `bhxh kb check`) and the page /admin/handoff
(templates/handoff.html, static/handoff.js and handoff.css).

Who acts (`admin_api.auth`): a signed-in staff account (the page's fetches carry its CSRF value in
X-CSRF-Token) or the bearer token ("automation"); reading needs a viewer, acting on a conversation an
editor. Every step is audited by the store (handoff.request, .take, .reply, .close, .kb) with that name.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from pydantic import BaseModel, Field

from admin_api import staff_kb
from admin_api.auth import EditorDep, StaffDep
from bot.handoff import HandoffError, is_request
from bot.service import RateLimiter, Service, SharedRateLimiter
from knowledge.topics import TOPICS
from storage.handoffs import HANDOFF_STATUSES, Handoff
from storage.handoffs import redacted as redact

TEMPLATES = Path(__file__).resolve().parent / "templates"
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
                               "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer", "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
}
CHANNEL_LABELS = {"telegram": "Telegram", "zalo_bot": "Zalo (bot)", "zalo_oa": "Zalo OA", "web": "Web"}
REASON_LABELS = {"asked": "Người dân yêu cầu", "not_sure": "Bot chưa chắc (2 lần)", "downvote": "Người dân chấm 👎"}
HandoffId = Annotated[int, PathParam(ge=1, le=2**62, description="The handoff's id")]


class MessageOut(BaseModel):
    id: int
    ts: str
    author: Literal["citizen", "staff", "bot"]
    text: str = Field(description="PII-redacted")
    staff: str | None = None
    delivery: str | None = Field(None, description="Staff messages: 'sent', 'sent: <note>' or 'not sent: <why>'")


class HandoffOut(BaseModel):
    id: int
    channel: str
    channel_label: str
    status: Literal["waiting", "owned", "closed"]
    reason: str
    reason_label: str
    topic: str | None
    topic_label: str | None
    requested_ts: str
    waiting_seconds: int = Field(description="Since the request (until closed)")
    owner: str | None
    owned_ts: str | None
    closed_ts: str | None
    kb_action: dict[str, Any] | None
    messages: list[MessageOut]

    @classmethod
    def of(cls, h: Handoff, now: dt.datetime) -> HandoffOut:
        end = _parse(h.closed_ts) if h.closed_ts else now
        waited = max(0, int((end - _parse(h.requested_ts)).total_seconds()))
        return cls(id=h.id, channel=h.channel, channel_label=CHANNEL_LABELS.get(h.channel, h.channel),
                   status=h.status, reason=h.reason, reason_label=REASON_LABELS.get(h.reason, h.reason),  # type: ignore[arg-type]
                   topic=h.topic, topic_label=TOPICS.get(h.topic) if h.topic else None,
                   requested_ts=h.requested_ts, waiting_seconds=waited,
                   owner=h.owner, owned_ts=h.owned_ts, closed_ts=h.closed_ts, kb_action=h.kb_action,
                   messages=[MessageOut(id=m.id, ts=m.ts, author=m.author, text=m.text, staff=m.staff,  # type: ignore[arg-type]
                                        delivery=m.delivery) for m in h.messages])


class ReplyRequest(BaseModel):
    text: str = Field(..., min_length=1, max_length=4000, description="The staff member's answer")


class ActionResult(BaseModel):
    sent: bool = Field(description="The message reached the citizen's channel")
    reason: str | None = Field(None, description="Why it was not sent, or a note (a paid Zalo OA message)")
    handoff: HandoffOut


class CanReply(BaseModel):
    ok: bool = Field(description="A reply can be sent now")
    reason: str | None = Field(None, description="Why not, or a note (e.g. a paid Zalo OA message after 48 h)")


class KbRequest(BaseModel):
    """`paraphrase`: the citizen's question (redacted) becomes a new way of asking entry `entry_id`.
    `draft`: a new entry from the staff answer (`entry`: at least id, topic, sources and the paraphrases `kb check`
    asks for; the question and answer default to the citizen's question and the staff answer). Both are kept as
    pending versions for a reviewer, validated like `bhxh kb check`."""

    kind: Literal["paraphrase", "draft"]
    entry_id: str | None = Field(None, max_length=200)
    question: str | None = Field(None, max_length=1000, description="Default: the citizen's first message")
    entry: dict[str, Any] | None = None


def _parse(ts: str) -> dt.datetime:
    return dt.datetime.fromisoformat(ts.replace("Z", "+00:00"))


def _first_citizen_text(h: Handoff) -> str:
    """The citizen's question: their first message that is not the request for a person itself."""
    citizen = [m.text for m in h.messages if m.author == "citizen" and m.text.strip() and not is_request(m.text)]
    return citizen[0] if citizen else ""


def _last_staff_text(h: Handoff) -> str:
    staff = [m.text for m in h.messages if m.author == "staff"]
    return staff[-1] if staff else ""


class WebHandoffOut(BaseModel):
    """The web visitor's latest handoff: what staff and the bot said in it after message `after`."""

    status: Literal["none", "waiting", "owned", "closed"]
    messages: list[MessageOut] = Field(description="Staff replies and the bot's handoff lines, oldest first")


def public_router(service: Service, limiter: RateLimiter | SharedRateLimiter) -> APIRouter:
    """GET /api/handoff: the web chat polls it while a staff member has the visitor's chat (the other
    channels get staff replies pushed). The visitor id is the chat page's random one, as in /api/ask.
    `limiter`: requests per IP address (admin_api/app.py: BHXH_IP_RATE_LIMIT, counted apart from questions);
    the page polls every 5 s and keeps polling after a 429."""
    routes = APIRouter(tags=["web chat"])

    @routes.get("/api/handoff", response_model=WebHandoffOut, summary="Staff replies for the web chat",
                responses={429: {"description": "too many requests from this address"}})
    async def web_handoff(request: Request, user_id: Annotated[str, Query(min_length=1, max_length=200)],
                          after: Annotated[int, Query(ge=0, le=2**62)] = 0) -> Any:
        client = request.client.host if request.client else "unknown"
        if not await asyncio.to_thread(limiter.allow, client):  # the shared limiter is a database call
            return JSONResponse({"detail": "Bạn gửi quá nhiều yêu cầu, vui lòng thử lại sau ít phút."},
                                status_code=429)
        h = await asyncio.to_thread(service.store.handoff_latest, "web", user_id)
        if h is None:
            return WebHandoffOut(status="none", messages=[])
        said = [MessageOut(id=m.id, ts=m.ts, author=m.author, text=m.text, staff=None)  # type: ignore[arg-type]
                for m in h.messages if m.author != "citizen" and m.id > after]
        return WebHandoffOut(status=h.status, messages=said)  # type: ignore[arg-type]

    return routes


def _propose_paraphrase(service: Service, entry_id: str, text: str, actor: str, note: str) -> staff_kb.VersionOut:
    """The entry with `text` added to its paraphrases, kept as a pending version for a reviewer (validated
    like `bhxh kb check` now, live on approval)."""
    paraphrase, _ = staff_kb.paraphrase_text(service.store, None, text)
    record = dict(staff_kb.get_entry(service, entry_id).record)
    existing = [str(p) for p in record.get("paraphrases") or []]
    if paraphrase.lower() in {t.strip().lower() for t in [*existing, str(record.get("question", ""))]}:
        raise staff_kb.StaffEditError(409, f"Mục '{entry_id}' đã có cách hỏi này.")
    record["paraphrases"] = [*existing, paraphrase]
    return staff_kb.propose_entry(service, record, actor, entry_id=entry_id, note=note)


def router(service: Service) -> APIRouter:
    routes = APIRouter(prefix="/admin", tags=["staff inbox"])
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]))
    handoff = service.handoff

    def now() -> dt.datetime:
        return handoff.clock().astimezone(dt.UTC)

    def out(h: Handoff | None) -> HandoffOut:
        if h is None:
            raise HandoffError(404, "Không có cuộc trò chuyện này.")
        return HandoffOut.of(h, now())

    def refused(exc: HandoffError) -> JSONResponse:
        return JSONResponse({"detail": exc.detail}, status_code=exc.status)

    @routes.get("/handoffs", response_model=list[HandoffOut], summary="The staff inbox: open conversations first")
    async def list_handoffs(staff: StaffDep, status: Annotated[str, Query(
            max_length=40, description="Comma-separated: waiting, owned, closed")] = "waiting,owned",
            limit: Annotated[int, Query(ge=1, le=500)] = 100) -> Any:
        statuses = tuple(s for s in status.split(",") if s in HANDOFF_STATUSES)
        rows = await asyncio.to_thread(service.store.handoff_list, statuses, limit)
        return [HandoffOut.of(h, now()) for h in rows]

    @routes.get("/handoffs/{handoff_id}", response_model=HandoffOut, summary="One conversation, its history")
    async def get_handoff(staff: StaffDep, handoff_id: HandoffId) -> Any:
        try:
            return out(await asyncio.to_thread(service.store.handoff_get, handoff_id))
        except HandoffError as exc:
            return refused(exc)

    @routes.get("/handoffs/{handoff_id}/can-reply", response_model=CanReply,
                summary="Can a reply be sent now (Zalo OA's 48 h / 7 day window), with a note for staff")
    async def can_reply(staff: StaffDep, handoff_id: HandoffId) -> Any:
        try:
            ok, reason = await handoff.can_reply(handoff_id)
        except HandoffError as exc:
            return refused(exc)
        return CanReply(ok=ok, reason=reason)

    @routes.post("/handoffs/{handoff_id}/take", response_model=HandoffOut, summary="Take ownership")
    async def take(staff: EditorDep, handoff_id: HandoffId) -> Any:
        try:
            return out(await handoff.take(handoff_id, staff.name))
        except HandoffError as exc:
            return refused(exc)

    @routes.post("/handoffs/{handoff_id}/reply", response_model=ActionResult,
                 summary="Reply on the citizen's channel (takes ownership)")
    async def reply(staff: EditorDep, handoff_id: HandoffId, body: ReplyRequest) -> Any:
        try:
            result = await handoff.reply(handoff_id, staff.name, body.text)
        except HandoffError as exc:
            return refused(exc)
        return ActionResult(sent=result.sent, reason=result.reason, handoff=out(result.handoff))

    @routes.post("/handoffs/{handoff_id}/close", response_model=ActionResult,
                 summary="Close: the bot answers this chat again, and says so")
    async def close(staff: EditorDep, handoff_id: HandoffId) -> Any:
        try:
            result = await handoff.close(handoff_id, staff.name)
        except HandoffError as exc:
            return refused(exc)
        return ActionResult(sent=result.sent, reason=result.reason, handoff=out(result.handoff))

    @routes.post("/handoffs/{handoff_id}/kb", summary="Turn a closed conversation into a paraphrase or a draft entry")
    async def to_knowledge(staff: EditorDep, handoff_id: HandoffId, body: KbRequest) -> Any:
        h = await asyncio.to_thread(service.store.handoff_get, handoff_id)
        if h is None or h.status != "closed":
            return JSONResponse({"detail": "Chỉ dùng được cho cuộc trò chuyện đã đóng."}, status_code=409)
        question = redact(body.question or _first_citizen_text(h))
        note = f"Từ cuộc trò chuyện với cán bộ số {handoff_id}"
        if body.kind == "paraphrase":
            if not body.entry_id:
                return JSONResponse({"detail": "Cần mã mục (entry_id) để thêm cách hỏi."}, status_code=422)
            version = await asyncio.to_thread(_propose_paraphrase, service, body.entry_id, question, staff.name, note)
            action = {"kind": "paraphrase", "entry_id": version.entry_id, "text": question, "version": version.id,
                      "review": version.status}
        else:
            answer = _last_staff_text(h)
            if not answer:
                return JSONResponse({"detail": "Cuộc trò chuyện chưa có câu trả lời của cán bộ."}, status_code=409)
            today = handoff.clock().date().isoformat()
            record = {"question": question, "answer": answer, "paraphrases": [question], "effective_from": today,
                      "reviewed_on": today, **(body.entry or {})}
            version = await asyncio.to_thread(staff_kb.propose_entry, service, record, staff.name, create=True,
                                              note=note)
            action = {"kind": "draft", "entry_id": version.entry_id, "version": version.id, "review": version.status}
        await asyncio.to_thread(service.store.handoff_set_kb_action, handoff_id, action, staff.name,
                                now().strftime("%Y-%m-%dT%H:%M:%S.%fZ"))
        return {"kb_action": action, "version": version.model_dump()}

    # ------------------------------------------------------------ the page

    @routes.get("/handoff", include_in_schema=False)
    def inbox_page(request: Request) -> Response:
        auth = request.app.state.staff_auth
        staff = auth.page_staff(request)
        if staff is None:
            return RedirectResponse("/admin/login", status_code=303)
        html = env.get_template("handoff.html").render(csrf=auth.csrf_for(request), staff=staff.label)
        return HTMLResponse(html, headers=PAGE_HEADERS)

    return routes
