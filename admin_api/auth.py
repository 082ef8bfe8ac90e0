"""Who may use the staff API and dashboard: the bearer token, dashboard sessions, CSRF values.

Every /admin/ endpoint needs ``Authorization: Bearer <BHXH_ADMIN_TOKEN>`` (compared in constant
time). The dashboard (/admin/dashboard) is for browsers: /admin/login takes the token (and the staff
member's name) in a form and sets a session cookie (a random session id kept on the server, never the
token; HttpOnly, SameSite=Strict, path /admin, 12 hours), so the token never sits in a URL; a bearer
header opens the page too. The cookie is also accepted for GET requests of the API (so the dashboard's
CSV links work); changes need the bearer header, or the dashboard's own form with its CSRF field.
``X-Staff-Name`` names the person for the audit log (default "staff"; UTF-8 or percent-encoded).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import unquote

from fastapi import Depends, Header, HTTPException, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from bot.service import RateLimiter, rate_limiter

SESSION_COOKIE = "bhxh_staff_session"
SESSION_SECONDS = 12 * 3600  # a dashboard session ends this long after login, or at logout
MAX_SESSIONS = 1000
BEARER_FAILURES_PER_MINUTE = 10  # wrong bearer tokens one IP address may send a minute (then 429)
NAME_COOKIE = "bhxh_staff_name"  # who signed in, for the audit log of dashboard actions


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
    derived from it. A restart ends every session (staff sign in again). With `shared` (the store of
    several workers, PostgreSQL) sessions are also kept there (hashed id → expiry), so a session opened
    on one worker is valid on every worker, and wrong bearer tokens are counted across workers."""

    def __init__(self, token: str, *, session_seconds: float = SESSION_SECONDS, shared: Any = None) -> None:
        self._token = token.encode()
        self.session_seconds = session_seconds
        self._sessions: OrderedDict[str, float] = OrderedDict()  # sha256 of the session id -> expiry (epoch s)
        self._sessions_lock = threading.Lock()
        self._shared = shared
        # Wrong bearer tokens per IP address (review F14: guessing was unlimited; the login form had a limit).
        self._failures = (rate_limiter(shared, "bearer-failures", BEARER_FAILURES_PER_MINUTE, 60.0) if shared
                          else RateLimiter(BEARER_FAILURES_PER_MINUTE, 60.0))

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
        if self._shared is not None:
            self._shared.save_state(f"staff-session:{self._session_key(session_id)}",
                                    {"expires": now + self.session_seconds})
        return session_id

    def end_session(self, request: Request) -> None:
        cookie = request.cookies.get(SESSION_COOKIE)
        if cookie:
            with self._sessions_lock:
                self._sessions.pop(self._session_key(cookie), None)
            if self._shared is not None:
                self._shared.clear_state(f"staff-session:{self._session_key(cookie)}")

    def _session_id(self, request: Request) -> str | None:
        """The request's session id if it names a live session."""
        cookie = request.cookies.get(SESSION_COOKIE)
        if not cookie:
            return None
        key = self._session_key(cookie)
        if self._shared is not None:  # opened or ended on any worker: the shared store decides
            expiry_value = self._shared.load_state(f"staff-session:{key}").get("expires")
            with self._sessions_lock:
                if isinstance(expiry_value, int | float):
                    self._sessions[key] = float(expiry_value)
                else:
                    self._sessions.pop(key, None)
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
