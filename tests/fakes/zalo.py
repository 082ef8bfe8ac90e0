"""Fake Zalo servers speaking the HTTP shapes of the Bot Platform and the OA API v3 / OAuth v4."""

from __future__ import annotations

import hashlib
import itertools
import json
import secrets
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from .server import ServerThread, wait_for


class FakeZaloBot(ServerThread):
    """https://bot-api.zaloplatforms.com/bot<TOKEN>/<method>: sendMessage text must be 1–2000 chars."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.fail_sends = 0  # the next this many sendMessage calls fail with 502 (then it works again)
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        app = FastAPI()
        app.add_api_route("/bot{token}/{method}", self._handle, methods=["POST"])
        super().__init__(app)

    def sent(self) -> list[dict[str, Any]]:
        with self._lock:
            return [p for m, p in self.calls if m == "sendMessage"]

    def wait_sent(self, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        return wait_for(lambda: (s := self.sent()) and len(s) >= count and s, timeout)

    async def _handle(self, token: str, method: str, request: Request) -> JSONResponse:
        if token != self.token:
            return JSONResponse({"ok": False, "error_code": 401, "description": "Unauthorized"}, status_code=401)
        params = json.loads(await request.body() or b"{}")
        with self._lock:
            if method == "sendMessage" and self.fail_sends > 0:
                self.fail_sends -= 1
                return JSONResponse({"ok": False, "error_code": 502, "description": "Bad Gateway"}, status_code=502)
            self.calls.append((method, params))
        if method == "sendMessage":
            text = params.get("text")
            if not params.get("chat_id") or not isinstance(text, str) or not 1 <= len(text) <= 2000:
                return JSONResponse({"ok": False, "error_code": 400, "description": "Bad Request: text"},
                                    status_code=400)
            return JSONResponse({"ok": True, "result": {"message_id": f"m{next(self._ids)}",
                                                        "date": int(time.time() * 1000)}})
        if method in {"getMe", "setWebhook", "deleteWebhook", "sendChatAction"}:
            return JSONResponse({"ok": True, "result": {}})
        return JSONResponse({"ok": False, "error_code": 404, "description": "Not Found"}, status_code=404)


def bot_update(text: str | None, *, message_id: str | None = None, user: str = "u-lan-01",
               event: str = "message.text.received", envelope: bool = False) -> dict[str, Any]:
    message: dict[str, Any] = {"from": {"id": user, "display_name": "Lan", "is_bot": False},
                               "chat": {"id": user, "chat_type": "PRIVATE"},
                               "message_id": message_id or secrets.token_hex(10), "date": int(time.time() * 1000)}
    if text is not None:
        message["text"] = text
    update = {"event_name": event, "message": message}
    return {"ok": True, "result": update} if envelope else update


class FakeZaloOA(ServerThread):
    """openapi.zalo.me /v3.0/oa/message/cs, /v2.0/oa/getoa and oauth.zaloapp.com /v4/oa/access_token.

    Holds one valid access token and one valid (single-use) refresh token, like Zalo.
    `expired_status` picks how an expired token is reported: 200 with error -216, or HTTP 401.
    Windows like Zalo's (shared/reference/anchors-2026-12.md §5.3): the fake learns what users send
    (`user_wrote`, `user_followed`: tests call them as they post the event to our webhook); a reply by
    `recipient.message_id` is free within 48 h of that message (8 per message), a send by `user_id` is a
    paid proactive message; after 7 days without interaction both are refused with -230. A proactive send
    while a free reply was possible is recorded in `violations` (the fixtures assert there are none).
    `strict` False (the default, for tests that do not tell the fake what users send): an unknown
    message id or user is taken as one who just wrote. `clock_offset` moves the fake's clock (seconds)."""

    def __init__(self, app_id: str, app_secret: str, access_token: str, refresh_token: str,
                 token_file: Path | None = None) -> None:
        self.app_id, self.app_secret = app_id, app_secret
        self.access_token, self.refresh_token = access_token, refresh_token
        self.token_file = token_file
        self.expired_status = 200
        self.messages: list[dict[str, Any]] = []  # accepted request bodies
        self.delivered: list[dict[str, Any]] = []  # per accepted body: {"user", "paid", "reply_to"}
        self.refreshes: list[dict[str, str]] = []
        self.token_checks = 0  # GET /v2.0/oa/getoa calls
        self.rejected: list[str] = []  # reasons
        self.refused: list[int] = []  # error codes answered to sends
        self.violations: list[str] = []
        self.persisted_before_use: list[bool] = []  # per accepted send: was the token already on disk?
        self.window_closed: set[str] = set()  # users Zalo treats as inactive for 7 days (error -230)
        self.blocked: dict[str, int] = {}  # user → the error their sends get (e.g. -216 as ChatbotX reports)
        self.fail_sends = 0  # the next this many sends fail with 502
        self.clock_offset = 0.0
        self.strict = False
        self.incoming: dict[str, tuple[str, float]] = {}  # msg_id → (user, when)
        self.last_interaction: dict[str, float] = {}
        self.replies_used: dict[str, int] = {}
        self._lock = threading.Lock()
        app = FastAPI()
        app.add_api_route("/v3.0/oa/message/cs", self._send, methods=["POST"])
        app.add_api_route("/v2.0/oa/getoa", self._getoa, methods=["GET"])
        app.add_api_route("/v4/oa/access_token", self._token, methods=["POST"])
        super().__init__(app)

    def now(self) -> float:
        return time.time() + self.clock_offset

    def user_wrote(self, user: str, msg_id: str, at: float | None = None) -> None:
        with self._lock:
            when = self.now() if at is None else at
            self.incoming[msg_id] = (user, when)
            self.last_interaction[user] = max(when, self.last_interaction.get(user, 0.0))

    def user_followed(self, user: str, at: float | None = None) -> None:
        with self._lock:
            self.last_interaction[user] = self.now() if at is None else at

    def wait_messages(self, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        return wait_for(lambda: len(self.messages) >= count and list(self.messages), timeout)

    def texts(self, user: str | None = None) -> list[str]:
        return [m["message"]["text"] for m, d in zip(self.messages, self.delivered, strict=True)
                if user is None or d["user"] == user]

    def buttons(self, n: int = -1) -> list[dict[str, Any]]:
        attachment = self.messages[n]["message"].get("attachment") or {}
        return list(attachment.get("payload", {}).get("buttons", []))

    def _valid_message(self, message: object) -> bool:
        if not isinstance(message, dict):
            return False
        text = message.get("text")
        if not isinstance(text, str) or not 1 <= len(text) <= 2000:
            return False
        attachment = message.get("attachment")
        if attachment is None:
            return True
        buttons = attachment.get("payload", {}).get("buttons") if isinstance(attachment, dict) else None
        if attachment.get("type") != "template" or not isinstance(buttons, list) or not 1 <= len(buttons) <= 5:
            return False
        return all(isinstance(b, dict) and isinstance(b.get("title"), str) and 1 <= len(b["title"]) <= 100
                   and b.get("type") in ("oa.query.show", "oa.query.hide") and isinstance(b.get("payload"), str)
                   and 1 <= len(b["payload"]) <= 1000 for b in buttons)

    async def _send(self, request: Request) -> JSONResponse:
        token = request.headers.get("access_token", "")
        body = json.loads(await request.body() or b"{}")
        with self._lock:
            if self.fail_sends > 0:
                self.fail_sends -= 1
                return JSONResponse({"error": -1, "message": "Bad Gateway"}, status_code=502)
            if token != self.access_token:
                self.rejected.append("expired")
                if self.expired_status == 401:
                    return JSONResponse({"error": 401, "message": "Unauthorized"}, status_code=401)
                return JSONResponse({"error": -216, "message": "Access token is invalid"})
            recipient = body.get("recipient") if isinstance(body.get("recipient"), dict) else {}
            reply_to, named = recipient.get("message_id"), recipient.get("user_id")
            now = self.now()
            if reply_to is not None and reply_to not in self.incoming and named and not self.strict:
                self.incoming[reply_to] = (named, now)  # a message this fake was not told about
            if reply_to is not None:
                if reply_to not in self.incoming:
                    return self._refuse(-201, "message_id is invalid")
                user, wrote_at = self.incoming[reply_to]
                if named and named != user:
                    return self._refuse(-201, "user_id does not match message_id")
            else:
                user, wrote_at = named, None
            if not user or not self._valid_message(body.get("message")):
                self.rejected.append("bad message")
                return self._refuse(-201, "Parameter is invalid")
            if user in self.blocked:
                return self._refuse(self.blocked[user], "refused for this user")
            if not self.strict:
                self.last_interaction.setdefault(user, now)
            last = self.last_interaction.get(user)
            if user in self.window_closed or last is None or now - last > 7 * 86400:
                return self._refuse(-230, "User has not interacted with the OA in the past 7 days")
            if reply_to is not None:
                used = self.replies_used.get(reply_to, 0) + 1
                self.replies_used[reply_to] = used
                paid = used > 8 or now - wrote_at > 48 * 3600
            else:
                paid = True
                recent = [at for m, (u, at) in self.incoming.items()
                          if u == user and now - at <= 48 * 3600 and self.replies_used.get(m, 0) < 8]
                if recent:
                    self.violations.append(f"a paid send to {user} {now - max(recent):.0f} s after they wrote")
            if self.token_file is not None:
                on_disk = json.loads(self.token_file.read_text()) if self.token_file.exists() else {}
                self.persisted_before_use.append(on_disk.get("access_token") == token)
            self.messages.append(body)
            self.delivered.append({"user": user, "paid": paid, "reply_to": reply_to})
            data: dict[str, Any] = {"message_id": secrets.token_hex(10), "user_id": user,
                                    "sent_time": str(int(now * 1000))}
            if not paid:
                data["quota"] = {"quota_type": "reply"}
            return JSONResponse({"error": 0, "message": "Success", "data": data})

    def _refuse(self, code: int, message: str) -> JSONResponse:
        self.refused.append(code)
        return JSONResponse({"error": code, "message": message})

    async def _getoa(self, request: Request) -> JSONResponse:
        with self._lock:
            self.token_checks += 1
            if request.headers.get("access_token", "") != self.access_token:
                return JSONResponse({"error": -216, "message": "Access token is invalid"})
            return JSONResponse({"error": 0, "message": "Success", "data": {"oa_id": "1646843870823903717",
                                                                           "name": "BHXH thử nghiệm"}})

    async def _token(self, request: Request) -> JSONResponse:
        form = dict(parse_qsl((await request.body()).decode()))
        with self._lock:
            self.refreshes.append(form)
            if request.headers.get("secret_key") != self.app_secret or form.get("app_id") != self.app_id:
                return JSONResponse({"error": -14002, "error_name": "Invalid app secret",
                                     "error_reason": "app secret key is invalid"})
            if form.get("grant_type") != "refresh_token" or form.get("refresh_token") != self.refresh_token:
                return JSONResponse({"error": -14020, "error_name": "Invalid refresh token",
                                     "error_reason": "refresh token was used or expired"})
            self.access_token = "at-" + secrets.token_hex(16)
            self.refresh_token = "rt-" + secrets.token_hex(16)  # the old one is dead now
            return JSONResponse({"access_token": self.access_token, "refresh_token": self.refresh_token,
                                 "expires_in": "90000"})


def oa_event(text: str | None, *, app_id: str, user: str = "5510185758261927916", msg_id: str | None = None,
             event: str = "user_send_text", timestamp: int | None = None) -> dict[str, Any]:
    message: dict[str, Any] = {"msg_id": msg_id or secrets.token_hex(10)}
    if text is not None:
        message["text"] = text
    return {"event_name": event, "app_id": app_id, "sender": {"id": user}, "recipient": {"id": "1646843870823903717"},
            "message": message, "timestamp": str(timestamp or int(time.time() * 1000)),
            "user_id_by_app": "3611371994410983884"}


def follow_event(user: str, *, app_id: str, event: str = "follow", timestamp: int | None = None) -> dict[str, Any]:
    """follow / unfollow as the OA webhook sends them."""
    return {"event_name": event, "app_id": app_id, "oa_id": "1646843870823903717", "source": "oa_profile",
            "follower": {"id": user}, "timestamp": str(timestamp or int(time.time() * 1000)),
            "user_id_by_app": "3611371994410983884"}


def sign(app_id: str, body: bytes, timestamp: str, oa_secret_key: str) -> str:
    """X-ZEvent-Signature as Zalo sends it (independent of the code under test)."""
    return "mac=" + hashlib.sha256(f"{app_id}{body.decode()}{timestamp}{oa_secret_key}".encode()).hexdigest()
