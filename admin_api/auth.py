"""Who may use the staff API and dashboard: staff accounts and their roles, the bearer token, sessions, CSRF.

Staff sign in on /admin/login with their account (admin_api/accounts.py: name, Argon2 password hash,
role viewer < editor < reviewer < admin). The session cookie holds a random id kept on the server (never
a password or the token; HttpOnly, SameSite=Strict, path /admin), which ends 12 hours after login, at
logout, or when the account is disabled or its password changed. Every /admin/ endpoint checks the role
it needs (`StaffDep` viewer, `EditorDep`, `ReviewerDep`, `AdminDep`: 403 below it).

The bearer token (``Authorization: Bearer <BHXH_ADMIN_TOKEN>``, compared in constant time) stays for
automation: it acts as the admin "automation", which is what the audit records. A browser session may
also call the API: GET as it is, changes only with the page's CSRF value in ``X-CSRF-Token`` (or the
dashboard's own forms with their CSRF field). The login form still takes the token (emergency access,
e.g. before the first account exists): that session is "automation" too.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from admin_api.accounts import AUTOMATION, ROLE_LABELS, role_at_least
from bot.service import RateLimiter, rate_limiter

SESSION_COOKIE = "bhxh_staff_session"
SESSION_SECONDS = 12 * 3600  # a dashboard session ends this long after login, or at logout
MAX_SESSIONS = 1000
BEARER_FAILURES_PER_MINUTE = 10  # wrong bearer tokens one IP address may send a minute (then 429)
CSRF_HEADER = "X-CSRF-Token"  # a browser session's API changes carry the page's CSRF value here


@dataclass(frozen=True)
class Staff:
    """Who is acting: an account's name and role (the bearer token: "automation", admin)."""

    name: str
    role: str

    def can(self, needed: str) -> bool:
        return role_at_least(self.role, needed)

    @property
    def label(self) -> str:
        return f"{self.name} · {ROLE_LABELS.get(self.role, self.role)}"


AUTOMATION_STAFF = Staff(AUTOMATION, "admin")

bearer_scheme = HTTPBearer(auto_error=False, scheme_name="StaffToken",
                           description="The value of BHXH_ADMIN_TOKEN, as `Authorization: Bearer <token>` "
                                       "(acts as the admin \"automation\").")


@dataclass(frozen=True)
class _Session:
    expires: float
    account: str
    fingerprint: str  # of the account's password hash at login: a new password ends older sessions


class StaffAuth:
    """Sessions, the bearer token and role checks; one per app (`request.app.state.staff_auth`).

    Sessions are kept in memory (sha256 of the id → expiry, account, password fingerprint); with
    `shared` (the store of several workers, PostgreSQL) also there, so a session opened on one worker is
    valid on every worker, and wrong bearer tokens are counted across workers. Each request reads the
    account again, so disabling it or changing its password or role takes effect at once."""

    def __init__(self, token: str, *, store: Any = None, session_seconds: float = SESSION_SECONDS,
                 shared: Any = None) -> None:
        self._token = token.encode()
        self._store = store
        self.session_seconds = session_seconds
        self._sessions: OrderedDict[str, _Session] = OrderedDict()
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

    def _fingerprint(self, account: str) -> str | None:
        """The current password fingerprint of `account` (None: unknown or disabled)."""
        if account == AUTOMATION:
            return self._derive(b"automation-session")
        row = self._store.account(account) if self._store is not None else None
        if row is None or row["disabled"]:
            return None
        return hashlib.sha256(row["password_hash"].encode()).hexdigest()[:32]

    def start_session(self, account: str = AUTOMATION) -> str:
        """A new session id (the cookie value) for `account`, valid for `session_seconds`."""
        fingerprint = self._fingerprint(account)
        if fingerprint is None:
            raise ValueError(f"no enabled account {account!r}")
        session_id = secrets.token_hex(32)
        now = time.time()
        session = _Session(now + self.session_seconds, account, fingerprint)
        with self._sessions_lock:
            for key in [k for k, s in self._sessions.items() if s.expires <= now]:
                del self._sessions[key]
            self._sessions[self._session_key(session_id)] = session
            while len(self._sessions) > MAX_SESSIONS:  # logins are rate-limited; still bounded
                self._sessions.popitem(last=False)
        if self._shared is not None:
            self._shared.save_state(f"staff-session:{self._session_key(session_id)}",
                                    {"expires": session.expires, "account": account, "fp": fingerprint})
        return session_id

    def end_session(self, request: Request) -> None:
        cookie = request.cookies.get(SESSION_COOKIE)
        if cookie:
            with self._sessions_lock:
                self._sessions.pop(self._session_key(cookie), None)
            if self._shared is not None:
                self._shared.clear_state(f"staff-session:{self._session_key(cookie)}")

    def _session(self, request: Request) -> tuple[str, _Session] | None:
        """The request's (session id, session) if it names a live session."""
        cookie = request.cookies.get(SESSION_COOKIE)
        if not cookie:
            return None
        key = self._session_key(cookie)
        if self._shared is not None:  # opened or ended on any worker: the shared store decides
            saved = self._shared.load_state(f"staff-session:{key}")
            with self._sessions_lock:
                if isinstance(saved.get("expires"), int | float) and saved.get("account"):
                    self._sessions[key] = _Session(float(saved["expires"]), str(saved["account"]),
                                                   str(saved.get("fp", "")))
                else:
                    self._sessions.pop(key, None)
        with self._sessions_lock:
            session = self._sessions.get(key)
            if session is None:
                return None
            if session.expires <= time.time():
                del self._sessions[key]
                return None
        return cookie, session

    def session_staff(self, request: Request) -> Staff | None:
        """Who the session cookie signs in, if its session is live and its account enabled and unchanged."""
        found = self._session(request)
        if found is None:
            return None
        session = found[1]
        if session.account == AUTOMATION:
            return AUTOMATION_STAFF if session.fingerprint == self._fingerprint(AUTOMATION) else None
        row = self._store.account(session.account) if self._store is not None else None
        if row is None or row["disabled"] or hashlib.sha256(
                row["password_hash"].encode()).hexdigest()[:32] != session.fingerprint:
            return None
        return Staff(row["name"], row["role"])

    def csrf_for(self, request: Request) -> str:
        """The dashboard form's CSRF value: bound to the session (or, with the bearer header, fixed)."""
        found = self._session(request)
        if found is None:
            return self._derive(b"bhxh-dashboard-csrf-v1")
        return self._derive(b"bhxh-dashboard-csrf-v2:" + found[0].encode())

    def token_ok(self, presented: str | None) -> bool:
        return presented is not None and hmac.compare_digest(presented.encode(), self._token)

    def bearer_ok(self, request: Request) -> bool:
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and self.token_ok(value.strip())

    def page_staff(self, request: Request) -> Staff | None:
        """Who opens a dashboard page: the bearer header (automation) or a live session."""
        return AUTOMATION_STAFF if self.bearer_ok(request) else self.session_staff(request)

    def session_ok(self, request: Request) -> bool:
        return self.session_staff(request) is not None

    def csrf_ok(self, request: Request, presented: str | None) -> bool:
        return presented is not None and hmac.compare_digest(presented.encode(), self.csrf_for(request).encode())

    def __call__(self, request: Request, credentials: HTTPAuthorizationCredentials | None) -> Staff:
        if credentials is not None and self.token_ok(credentials.credentials):
            return AUTOMATION_STAFF
        if credentials is not None and not self._failures.allow(request.client.host if request.client else ""):
            raise HTTPException(status_code=429, detail="Sai mã truy cập quá nhiều lần. Vui lòng chờ một phút.")
        if credentials is None:
            staff = self.session_staff(request)
            if staff is not None and (request.method in ("GET", "HEAD")
                                      or self.csrf_ok(request, request.headers.get(CSRF_HEADER))):
                return staff
        message = "Thiếu mã truy cập của cán bộ." if credentials is None else "Mã truy cập không đúng."
        raise HTTPException(status_code=401, detail=message, headers={"WWW-Authenticate": "Bearer"})


def require(role: str) -> Any:
    """The dependency of an /admin/ endpoint that needs at least `role` (401 without a login, 403 below it)."""

    def dependency(request: Request,
                   credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer_scheme)]) -> Staff:
        auth: StaffAuth = request.app.state.staff_auth
        staff = auth(request, credentials)
        if not staff.can(role):
            raise HTTPException(status_code=403, detail=f"Tài khoản {staff.name} ({ROLE_LABELS[staff.role]}) "
                                                        f"không có quyền này: cần vai trò {ROLE_LABELS[role]}.")
        return staff

    return Depends(dependency)


StaffDep = Annotated[Staff, require("viewer")]  # reads
EditorDep = Annotated[Staff, require("editor")]  # drafts and paraphrases
ReviewerDep = Annotated[Staff, require("reviewer")]  # approvals and rollbacks
AdminDep = Annotated[Staff, require("admin")]  # accounts
