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
    """openapi.zalo.me /v3.0/oa/message/cs and oauth.zaloapp.com /v4/oa/access_token.

    Holds one valid access token and one valid (single-use) refresh token, like Zalo.
    `expired_status` picks how an expired token is reported: 200 with error -216, or HTTP 401."""

    def __init__(self, app_id: str, app_secret: str, access_token: str, refresh_token: str,
                 token_file: Path | None = None) -> None:
        self.app_id, self.app_secret = app_id, app_secret
        self.access_token, self.refresh_token = access_token, refresh_token
        self.token_file = token_file
        self.expired_status = 200
        self.messages: list[dict[str, Any]] = []
        self.refreshes: list[dict[str, str]] = []
        self.rejected: list[str] = []  # reasons
        self.persisted_before_use: list[bool] = []  # per accepted send: was the token already on disk?
        self.window_closed: set[str] = set()  # users outside the 48 h window (error -230)
        self._lock = threading.Lock()
        app = FastAPI()
        app.add_api_route("/v3.0/oa/message/cs", self._send, methods=["POST"])
        app.add_api_route("/v4/oa/access_token", self._token, methods=["POST"])
        super().__init__(app)

    def wait_messages(self, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        return wait_for(lambda: len(self.messages) >= count and list(self.messages), timeout)

    def texts(self, user: str | None = None) -> list[str]:
        return [m["message"]["text"] for m in self.messages if user is None or m["recipient"]["user_id"] == user]

    async def _send(self, request: Request) -> JSONResponse:
        token = request.headers.get("access_token", "")
        body = json.loads(await request.body() or b"{}")
        with self._lock:
            if token != self.access_token:
                self.rejected.append("expired")
                if self.expired_status == 401:
                    return JSONResponse({"error": 401, "message": "Unauthorized"}, status_code=401)
                return JSONResponse({"error": -216, "message": "Access token is invalid"})
            user = body.get("recipient", {}).get("user_id")
            text = body.get("message", {}).get("text")
            if user in self.window_closed:
                return JSONResponse({"error": -230, "message": "User has not interacted with OA in 7 days"})
            if not user or not isinstance(text, str) or not 1 <= len(text) <= 2000:
                self.rejected.append("bad message")
                return JSONResponse({"error": -201, "message": "Parameter is invalid"})
            if self.token_file is not None:
                on_disk = json.loads(self.token_file.read_text()) if self.token_file.exists() else {}
                self.persisted_before_use.append(on_disk.get("access_token") == token)
            self.messages.append(body)
            return JSONResponse({"error": 0, "message": "Success",
                                 "data": {"message_id": hashlib.md5(text.encode()).hexdigest()[:20],
                                          "user_id": user}})

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


def sign(app_id: str, body: bytes, timestamp: str, oa_secret_key: str) -> str:
    """X-ZEvent-Signature as Zalo sends it (independent of the code under test)."""
    return "mac=" + hashlib.sha256(f"{app_id}{body.decode()}{timestamp}{oa_secret_key}".encode()).hexdigest()
