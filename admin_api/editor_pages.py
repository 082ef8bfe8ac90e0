"""The dashboard's entry editor and account pages (/admin/editor…), server-rendered from templates/editor.html.

An editor opens an entry, changes its answer, short answer, paraphrases or sources, sees the reply as the
bot would give it on a chosen day (live while typing with static/editor.js, or with the "Xem trước"
button), and saves: with approval on, a draft that another person with the reviewer role approves on its
version page, which shows the diff; every live version can be rolled back there. Admins manage accounts.
The logic is staff_kb's and editor_api's; this module only turns forms into calls and pages.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable
from typing import Annotated, Any
from urllib.parse import parse_qs, quote, urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape

from admin_api import accounts, editor_api, staff_kb
from admin_api.auth import Staff, StaffAuth
from admin_api.dashboard import SECURITY_HEADERS, TEMPLATES
from bot.service import Service
from bot.settings import Settings
from knowledge.topics import TOPICS
from storage.staff_records import ROLES

Msg = Annotated[str | None, Query(max_length=300)]  # a message shown after an action
EDITABLE_LISTS = ("paraphrases", "sources")  # one item a line in the form
STATUS_LABELS = {"pending": "Chờ duyệt", "live": "Đang áp dụng/đã áp dụng", "rejected": "Bị từ chối",
                 "withdrawn": "Đã rút lại"}
ACTION_LABELS = {"entry.update": "Sửa", "entry.create": "Tạo mới", "entry.paraphrase": "Thêm cách hỏi",
                 "entry.revert": "Về bản gốc", "entry.rollback": "Hoàn tác"}


def record_from_form(current: dict[str, Any], data: dict[str, str]) -> dict[str, Any]:
    """The entry's record with the form's fields put in (the fields the editor does not show are kept)."""
    record = dict(current)
    for name in ("question", "answer"):
        if name in data:
            record[name] = data[name].replace("\r\n", "\n").strip()
    if "short" in data:
        short = data["short"].replace("\r\n", "\n").strip()
        if short:
            record["short"] = short
        else:
            record.pop("short", None)
    for name in EDITABLE_LISTS:
        if name in data:
            record[name] = [line.strip() for line in data[name].splitlines() if line.strip()]
    return record


def _day(raw: str | None) -> dt.date:
    try:
        return dt.date.fromisoformat(raw) if raw else dt.date.today()
    except ValueError:
        return dt.date.today()


def router(service: Service, auth: StaffAuth, settings: Settings) -> APIRouter:
    routes = APIRouter(prefix="/admin/editor", include_in_schema=False)
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]))

    def page(staff: Staff, request: Request, status: int = 200, **context: Any) -> HTMLResponse:
        html = env.get_template("editor.html").render(
            staff=staff, csrf=auth.csrf_for(request), province=settings.province, approval=settings.edit_approval,
            topic_label=TOPICS, status_labels=STATUS_LABELS, action_labels=ACTION_LABELS, **context)
        return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)

    async def form(request: Request) -> dict[str, str]:
        body = (await request.body())[:65_536].decode("utf-8", "replace")
        return {k: v[0] for k, v in parse_qs(body, keep_blank_values=True).items()}

    def back(path: str, message: str, ok: bool, **params: str) -> RedirectResponse:
        query = urlencode({**params, "msg": message, "ok": "1" if ok else "0"}, quote_via=quote)
        return RedirectResponse(f"{path}?{query}", status_code=303)

    async def checked(request: Request, needed: str,
                      data: dict[str, str] | None = None) -> tuple[Staff, dict[str, str]] | Response:
        """The signed-in staff member and the form, if the CSRF value is right and the role suffices."""
        data = data if data is not None else await form(request)
        staff = auth.page_staff(request)
        if staff is None or not auth.csrf_ok(request, data.get("csrf")):
            return JSONResponse({"detail": "Phiên đăng nhập không hợp lệ."}, status_code=403)
        if not staff.can(needed):
            return JSONResponse({"detail": f"Cần vai trò {accounts.ROLE_LABELS[needed]}."}, status_code=403)
        return staff, data

    def viewing(request: Request, load: Callable[[], Any]) -> tuple[Staff, Any] | Response:
        """(the signed-in staff member, what `load` returns), the login page, or a 404 page."""
        staff = auth.page_staff(request)
        if staff is None:
            return RedirectResponse("/admin/login", status_code=303)
        try:
            return staff, load()
        except staff_kb.StaffEditError as exc:
            return page(staff, request, 404, view="missing", message=exc.detail, ok=False)

    @routes.get("")
    def index(request: Request, q: Annotated[str | None, Query(max_length=200)] = None,
              topic: Annotated[str | None, Query(max_length=50)] = None, msg: Msg = None) -> Response:
        staff = auth.page_staff(request)
        if staff is None:
            return RedirectResponse("/admin/login", status_code=303)
        entries = staff_kb.list_entries(service, topic if topic in TOPICS else None, q or None)
        return page(staff, request, view="index", entries=entries[:200], total=len(entries), q=q or "",
                    topic=topic or "", pending=staff_kb.list_versions(service, status="pending", limit=50),
                    recent=staff_kb.list_versions(service, limit=15), message=msg, ok=True)

    def entry_page(staff: Staff, request: Request, entry_id: str, record: dict[str, Any], on: dt.date,
                   status: int = 200, **context: Any) -> HTMLResponse:
        try:
            shown = staff_kb.preview(service, record, on, entry_id=entry_id)
            problems: list[str] = []
        except staff_kb.StaffEditError as exc:
            shown, problems = None, [str(p) for p in exc.problems] or [exc.detail]
        return page(staff, request, status, view="entry", entry_id=entry_id, record=record, on=on.isoformat(),
                    preview=shown, problems=problems, history=staff_kb.list_versions(service, entry_id, limit=30),
                    can_edit=staff.can("editor"), **context)

    @routes.get("/entry/{entry_id}")
    def entry(request: Request, entry_id: str, on: Annotated[str | None, Query(max_length=10)] = None,
              msg: Msg = None, ok: Annotated[int, Query(ge=0, le=1)] = 1) -> Response:
        found = viewing(request, lambda: staff_kb.get_entry(service, entry_id))
        if isinstance(found, Response):
            return found
        staff, current = found
        return entry_page(staff, request, entry_id, current.record, _day(on), source=current.source,
                          message=msg, ok=bool(ok))

    @routes.post("/entry/{entry_id}")
    async def save(request: Request, entry_id: str) -> Response:
        """action=save: keep the draft (or save); otherwise the preview: action=live as JSON for
        static/editor.js (the reply or the problems), else the page again ("Xem trước" without JavaScript)."""
        data = await form(request)
        found = await checked(request, "editor" if data.get("action") == "save" else "viewer", data)
        if isinstance(found, Response):
            return found
        staff = found[0]
        try:
            current = staff_kb.get_entry(service, entry_id)
        except staff_kb.StaffEditError as exc:
            return JSONResponse({"detail": exc.detail}, status_code=404)
        record = record_from_form(current.record, data)
        if data.get("action") == "live":
            try:
                shown = await asyncio.to_thread(staff_kb.preview, service, record, _day(data.get("on")),
                                                entry_id=entry_id)
            except staff_kb.StaffEditError as exc:
                return JSONResponse({"ok": False, "problems": [str(p) for p in exc.problems] or [exc.detail]})
            return JSONResponse({"ok": True, **shown.model_dump()})
        on = _day(data.get("on"))
        if data.get("action") != "save":  # "Xem trước" without JavaScript
            return entry_page(staff, request, entry_id, record, on, source=current.source, note=data.get("note", ""))
        try:
            if editor_api.needs_approval(settings, staff):
                version = await asyncio.to_thread(staff_kb.propose_entry, service, record, staff.name,
                                                  entry_id=entry_id, note=data.get("note", ""))
                return back(f"/admin/editor/version/{version.id}",
                            f"Đã lưu bản nháp #{version.id}: chờ một người có vai trò Duyệt phê duyệt.", True)
            await asyncio.to_thread(staff_kb.save_entry, service, record, staff.name, entry_id=entry_id)
        except staff_kb.StaffEditError as exc:
            return entry_page(staff, request, entry_id, record, on, 422, source=current.source,
                              note=data.get("note", ""), message=f"Chưa lưu: {exc.detail}", ok=False)
        return back(f"/admin/editor/entry/{entry_id}", "Đã lưu; thay đổi có hiệu lực ngay.", True)

    @routes.get("/version/{version_id}")
    def version(request: Request, version_id: int, msg: Msg = None,
                ok: Annotated[int, Query(ge=0, le=1)] = 1) -> Response:
        found = viewing(request, lambda: editor_api.version_detail(service, version_id))
        if isinstance(found, Response):
            return found
        staff, detail = found
        return page(staff, request, view="version", version=detail, message=msg, ok=bool(ok),
                    can_review=staff.can("reviewer") and staff.name != detail.actor,
                    can_withdraw=staff.name == detail.actor, can_undo=editor_api.may_undo(staff, detail))

    @routes.post("/version/{version_id}/{action}")
    async def decide(request: Request, version_id: int, action: str) -> Response:
        needed = {"approve": "reviewer", "reject": "reviewer", "withdraw": "editor", "rollback": "editor"}.get(action)
        if needed is None:
            return JSONResponse({"detail": "Không rõ thao tác."}, status_code=404)
        found = await checked(request, needed)
        if isinstance(found, Response):
            return found
        staff, _ = found
        here = f"/admin/editor/version/{version_id}"
        try:
            if action == "approve":
                await asyncio.to_thread(staff_kb.approve, service, version_id, staff.name)
                return back(here, "Đã duyệt: thay đổi có hiệu lực ngay.", True)
            if action in ("reject", "withdraw"):
                staff_kb.reject(service, version_id, staff.name, withdraw=action == "withdraw")
                return back(here, "Đã từ chối bản nháp." if action == "reject" else "Đã rút lại bản nháp.", True)
            if not editor_api.may_undo(staff, staff_kb.get_version(service, version_id)):
                return back(here, "Cần vai trò Duyệt để hoàn tác thay đổi này.", False)
            await asyncio.to_thread(staff_kb.rollback, service, version_id, staff.name)
            latest = staff_kb.latest_version_id(service, staff_kb.get_version(service, version_id).entry_id)
            return back(f"/admin/editor/version/{latest}", f"Đã hoàn tác phiên bản #{version_id}.", True)
        except staff_kb.StaffEditError as exc:
            return back(here, exc.detail, False)

    @routes.get("/accounts")
    def account_list(request: Request, msg: Msg = None, ok: Annotated[int, Query(ge=0, le=1)] = 1) -> Response:
        staff = auth.page_staff(request)
        if staff is None:
            return RedirectResponse("/admin/login", status_code=303)
        if not staff.can("admin"):
            return page(staff, request, 403, view="missing", message="Cần vai trò Quản trị.", ok=False)
        return page(staff, request, view="accounts", accounts=[accounts.public(a) for a in service.store.accounts()],
                    roles=ROLES, role_labels=accounts.ROLE_LABELS, message=msg, ok=bool(ok))

    @routes.post("/accounts")
    async def account_change(request: Request) -> Response:
        found = await checked(request, "admin")
        if isinstance(found, Response):
            return found
        staff, data = found
        name, here = data.get("name", ""), "/admin/editor/accounts"
        try:
            if data.get("action") == "add":
                name = await asyncio.to_thread(accounts.add_account, service.store, name, data.get("role", ""),
                                               data.get("password", ""))
                message = f"Đã tạo tài khoản {name}."
            elif data.get("action") in ("disable", "enable"):
                accounts.change_account(service.store, name, disabled=data["action"] == "disable")
                message = f"{name}: {'đã khóa' if data['action'] == 'disable' else 'đã mở lại'}."
            else:
                accounts.change_account(service.store, name, role=data.get("role", ""))
                message = f"{name}: vai trò {accounts.ROLE_LABELS.get(data.get('role', ''), '')}."
        except accounts.AccountError as exc:
            return back(here, str(exc), False)
        service.store.audit(staff.name, f"account.{data.get('action', 'role')}", name,
                            {"role": data.get("role")} if data.get("role") else {})
        return back(here, message, True)

    return routes
