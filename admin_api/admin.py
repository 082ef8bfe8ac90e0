"""The staff side of the app: the API under /admin/ and the dashboard, behind the staff token.

Modules: `auth` (token, sessions, CSRF), `staff_api` (JSON and CSV endpoints), `dashboard` (the
page, drawn with `charts`), `retention` (start-up and daily upkeep, run by the app's lifespan).

Settings (bot.settings)
    admin_token     BHXH_ADMIN_TOKEN, required: without it `register` raises RuntimeError (no open admin).
    retention_days  BHXH_RETENTION_DAYS, days of question log to keep (default 365; 0 = keep forever);
                    applied at start-up and then daily by the app's lifespan.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from admin_api import dashboard, editor_api, editor_pages, staff_api
from admin_api.auth import StaffAuth
from admin_api.retention import prepare_database
from admin_api.staff_kb import StaffEditError
from bot.service import Service
from bot.settings import Settings


def register(app: FastAPI, service: Service, settings: Settings) -> None:
    """Mount the staff API and dashboard (RuntimeError without a usable BHXH_ADMIN_TOKEN: no open admin)."""
    # Several workers on one shared store (PostgreSQL): dashboard sessions and failure counts are kept there.
    shared = service.store if callable(getattr(service.store, "rate_hit", None)) else None
    auth = StaffAuth(settings.staff_token(), store=service.store, shared=shared)
    app.state.staff_auth = auth
    prepare_database(service)  # before the first request, even when the app is used without its lifespan

    @app.exception_handler(StaffEditError)
    async def staff_edit_error(request: Request, exc: StaffEditError) -> JSONResponse:
        return staff_api.problems_response(exc)

    app.include_router(staff_api.router(service, settings))
    app.include_router(editor_api.router(service))
    app.include_router(dashboard.router(service, auth, settings))
    app.include_router(editor_pages.router(service, auth, settings))
