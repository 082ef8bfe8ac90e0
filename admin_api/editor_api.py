"""The staff API for fixing entries safely and for accounts: drafts, approval, version history with diffs,
rollback, a preview of the reply on a chosen date, and account management (admin).

Roles (admin_api/auth.py): viewers read history and preview; editors write drafts and take back their
own; reviewers approve or reject another person's draft and roll back; admins manage accounts.
With approval on (BHXH_EDIT_APPROVAL=1, the default) an account's PUT/POST of an entry answers 202 with the
pending version; the bearer token ("automation") applies at once. Every live change is a version.
"""

from __future__ import annotations

import datetime as dt
from enum import Enum
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from admin_api import accounts, staff_kb
from admin_api.auth import AdminDep, EditorDep, ReviewerDep, Staff, StaffDep
from bot.service import Service
from bot.settings import Settings
from storage.staff_records import ROLES, VERSION_STATUSES

VersionId = Annotated[int, PathParam(ge=1, le=2**62, description="Version number")]
EntryId = Annotated[str, PathParam(max_length=200, description="Entry id (slug)")]
VersionStatus = Enum("VersionStatus", {s: s for s in VERSION_STATUSES}, type=str)  # type: ignore[misc]
OnDate = Annotated[dt.date | None, Query(description="Render the figures in force on this day (default today)")]


class DiffLine(BaseModel):
    kind: str = Field(description='"+" added, "-" removed, " " unchanged, "@" hunk header')
    text: str


class VersionDetail(staff_kb.VersionOut):
    diff: list[DiffLine] = Field(description="from the state before the version to the state it brings")


class Me(BaseModel):
    name: str
    role: str
    csrf: str = Field(description="send as X-CSRF-Token with a browser session's changes")


class AccountOut(BaseModel):
    name: str
    role: str
    disabled: bool
    created_ts: str
    updated_ts: str


class AccountNew(BaseModel):
    name: str = Field(min_length=2, max_length=40, description="login name: a-z, 0-9, . _ -")
    role: str = Field(description=" < ".join(ROLES))
    password: str = Field(min_length=accounts.MIN_PASSWORD_CHARS, max_length=200)


class AccountChange(BaseModel):
    role: str | None = None
    password: str | None = Field(None, min_length=accounts.MIN_PASSWORD_CHARS, max_length=200)
    disabled: bool | None = None


def needs_approval(settings: Settings, staff: Staff) -> bool:
    """An account's entry edit waits for a reviewer when approval is on; the automation token does not."""
    return settings.edit_approval and staff.name != accounts.AUTOMATION


def submit_entry(service: Service, settings: Settings, staff: Staff, record: dict[str, Any], *,
                 entry_id: str | None = None, create: bool = False) -> Any:
    """Save an entry edit: live at once (the entry), or a pending draft (202 and its version)."""
    if needs_approval(settings, staff):
        version = staff_kb.propose_entry(service, record, staff.name, entry_id=entry_id, create=create)
        return JSONResponse(version.model_dump(), status_code=202)
    return staff_kb.save_entry(service, record, staff.name, entry_id=entry_id, create=create)


def version_detail(service: Service, version_id: int) -> VersionDetail:
    version = staff_kb.get_version(service, version_id)
    lines = staff_kb.diff(version.previous, version.record, version.entry_id)
    return VersionDetail(**version.model_dump(), diff=[DiffLine(kind=k, text=t) for k, t in lines])


def may_undo(staff: Staff, version: staff_kb.VersionOut) -> bool:
    """Reviewers undo any live change; an editor undoes a paraphrase they attached themselves."""
    return staff.can("reviewer") or (staff.can("editor") and version.actor == staff.name
                                     and version.action == "entry.paraphrase")


def router(service: Service) -> APIRouter:
    routes = APIRouter(prefix="/admin", tags=["staff"], responses={
        401: {"description": "no login or wrong token"}, 403: {"description": "the role does not allow it"}})

    @routes.get("/me", response_model=Me)
    def me(staff: StaffDep, request: Request) -> Any:
        """Who is signed in, with which role, and the CSRF value for changes made with the session cookie."""
        return Me(name=staff.name, role=staff.role, csrf=request.app.state.staff_auth.csrf_for(request))

    @routes.get("/versions", response_model=list[staff_kb.VersionOut])
    def versions(_: StaffDep, status: Annotated[VersionStatus | None, Query()] = None,
                 limit: Annotated[int, Query(ge=1, le=500)] = 100) -> Any:
        """Entry changes newest first (status=pending: the drafts waiting for a reviewer)."""
        return staff_kb.list_versions(service, None, status.value if status else None, limit)

    @routes.get("/entries/{entry_id}/versions", response_model=list[staff_kb.VersionOut])
    def entry_versions(_: StaffDep, entry_id: EntryId,
                       limit: Annotated[int, Query(ge=1, le=500)] = 100) -> Any:
        """One entry's history, newest first."""
        return staff_kb.list_versions(service, entry_id, None, limit)

    @routes.get("/versions/{version_id}", response_model=VersionDetail)
    def version(_: StaffDep, version_id: VersionId) -> Any:
        """One version with its diff (difflib, the records as YAML)."""
        return version_detail(service, version_id)

    @routes.post("/versions/{version_id}/approve", response_model=staff_kb.EntryOut | None)
    def approve(staff: ReviewerDep, version_id: VersionId) -> Any:
        """Put a pending draft live (another person than its author; 409 if the entry changed since)."""
        return staff_kb.approve(service, version_id, staff.name)

    @routes.post("/versions/{version_id}/reject", response_model=staff_kb.VersionOut)
    def reject(staff: ReviewerDep, version_id: VersionId) -> Any:
        return staff_kb.reject(service, version_id, staff.name)

    @routes.post("/versions/{version_id}/withdraw", response_model=staff_kb.VersionOut)
    def withdraw(staff: EditorDep, version_id: VersionId) -> Any:
        """Its author takes a pending draft back."""
        return staff_kb.reject(service, version_id, staff.name, withdraw=True)

    @routes.post("/versions/{version_id}/rollback", response_model=staff_kb.EntryOut | None)
    def rollback(staff: EditorDep, version_id: VersionId) -> Any:
        """Undo a live change: the entry as it was before it (reviewers; editors their own paraphrase)."""
        if not may_undo(staff, staff_kb.get_version(service, version_id)):
            return JSONResponse({"detail": "Cần vai trò Duyệt để hoàn tác thay đổi này."}, status_code=403)
        return staff_kb.rollback(service, version_id, staff.name)

    @routes.post("/entries/{entry_id}/preview", response_model=staff_kb.PreviewOut,
                 responses={422: {"model": staff_kb.ProblemReport}})
    def preview(_: StaffDep, entry_id: EntryId, body: staff_kb.EntryRecord, on: OnDate = None) -> Any:
        """The reply the bot would give with this record, on `on`; validated like `bhxh kb check`; not saved."""
        return staff_kb.preview(service, body.raw(), on or dt.date.today(), entry_id=entry_id)

    @routes.get("/accounts", response_model=list[AccountOut])
    def list_accounts(_: AdminDep) -> Any:
        return [accounts.public(a) for a in service.store.accounts()]

    @routes.post("/accounts", response_model=AccountOut, status_code=201)
    def add_account(staff: AdminDep, body: AccountNew) -> Any:
        try:
            name = accounts.add_account(service.store, body.name, body.role, body.password)
        except accounts.AccountError as exc:
            return JSONResponse({"detail": str(exc)}, status_code=422)
        service.store.audit(staff.name, "account.add", name, {"role": body.role})
        return accounts.public(service.store.account(name) or {})

    @routes.patch("/accounts/{name}", response_model=AccountOut)
    def change_account(staff: AdminDep, name: Annotated[str, PathParam(max_length=40)], body: AccountChange) -> Any:
        try:
            accounts.change_account(service.store, name, role=body.role, password=body.password,
                                    disabled=body.disabled)
        except accounts.AccountError as exc:
            return JSONResponse({"detail": str(exc)}, status_code=404 if "Không có" in str(exc) else 422)
        service.store.audit(staff.name, "account.change", name,
                            {"role": body.role, "disabled": body.disabled, "password": body.password is not None})
        return accounts.public(service.store.account(name) or {})

    return routes
