"""A fake Telegram Bot API server: answers the methods the bot uses with valid Bot API JSON
and records every call, so tests assert on what the bot really sent over HTTP."""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from .server import ServerThread, wait_for

JSON_FIELDS = {"reply_markup", "link_preview_options", "allowed_updates", "commands", "entities", "reply_parameters"}
BOT_USER = {"id": 999000, "is_bot": True, "first_name": "Trợ lý BHXH", "username": "tro_ly_bhxh_test_bot",
            "can_join_groups": False, "can_read_all_group_messages": False, "supports_inline_queries": False}


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    at: float = field(default_factory=time.monotonic)


class FakeTelegram(ServerThread):
    def __init__(self, token: str) -> None:
        self.token = token
        self.calls: list[Call] = []
        self.updates: list[dict[str, Any]] = []  # served by getUpdates
        self.fail_methods: set[str] = set()
        self.fail_sends = 0  # the next this many sendMessage calls fail with 502 (then it works again)
        self._lock = threading.Lock()
        self._ids = itertools.count(100)
        app = FastAPI()
        app.add_api_route("/bot{token}/{method}", self._handle, methods=["GET", "POST"])
        super().__init__(app)

    @property
    def base_url(self) -> str:
        return f"{self.url}/bot"

    @property
    def file_url(self) -> str:
        return f"{self.url}/file/bot"

    # ------------------------------------------------------------ assertions

    def sent(self, method: str = "sendMessage") -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.method == method]

    def wait_sent(self, count: int, method: str = "sendMessage", timeout: float = 10.0) -> list[Call]:
        return wait_for(lambda: (calls := self.sent(method)) and len(calls) >= count and calls, timeout)

    def reset(self) -> None:
        with self._lock:
            self.calls.clear()

    # ------------------------------------------------------------ the API

    async def _handle(self, token: str, method: str, request: Request) -> JSONResponse:
        if token != self.token:
            return JSONResponse({"ok": False, "error_code": 401, "description": "Unauthorized"}, status_code=401)
        raw = (await request.body()).decode()
        if request.headers.get("content-type", "").startswith("application/json"):
            params = json.loads(raw or "{}")
        else:
            params = dict(parse_qsl(raw))
            for key in JSON_FIELDS & params.keys():
                params[key] = json.loads(params[key])
        with self._lock:
            self.calls.append(Call(method, params))
        if method == "sendMessage" and self.fail_sends > 0:
            with self._lock:
                self.fail_sends -= 1
                self.calls.pop()  # not delivered: not a sent message
            return JSONResponse({"ok": False, "error_code": 502, "description": "Bad Gateway"}, status_code=502)
        if method in self.fail_methods:
            return JSONResponse({"ok": False, "error_code": 500, "description": "Internal Server Error"},
                                status_code=500)
        result = await self._result(method, params)
        if result is None:
            return JSONResponse({"ok": False, "error_code": 404, "description": "Not Found"}, status_code=404)
        return JSONResponse({"ok": True, "result": result})

    async def _result(self, method: str, params: dict[str, Any]) -> Any:
        if method == "getMe":
            return BOT_USER
        if method in {"setWebhook", "deleteWebhook", "setMyCommands", "answerCallbackQuery", "sendChatAction"}:
            return True
        if method == "getWebhookInfo":
            return {"url": "", "has_custom_certificate": False, "pending_update_count": 0}
        if method == "getUpdates":
            offset = int(params.get("offset") or 0)
            for _ in range(20):  # short long-poll
                with self._lock:
                    ready = [u for u in self.updates if u["update_id"] >= offset]
                if ready:
                    return ready
                await asyncio.sleep(0.05)
            return []
        if method == "sendMessage":
            if not 1 <= len(params.get("text", "")) <= 4096:
                return None
            return self._message(params)
        if method == "editMessageReplyMarkup":
            return self._message(params)
        return None

    def _message(self, params: dict[str, Any]) -> dict[str, Any]:
        message = {"message_id": next(self._ids), "date": int(time.time()), "from": BOT_USER,
                   "chat": {"id": int(params.get("chat_id", 0)), "type": "private", "first_name": "Dân"},
                   "text": params.get("text", "…")}
        if params.get("reply_markup"):
            message["reply_markup"] = params["reply_markup"]
        return message


# ------------------------------------------------------------ updates as Telegram sends them

_update_ids = itertools.count(5000)
USER = {"id": 4242, "is_bot": False, "first_name": "Lan", "language_code": "vi"}


def text_update(text: str, *, update_id: int | None = None, user: dict[str, Any] | None = None) -> dict[str, Any]:
    user = user or USER
    message: dict[str, Any] = {"message_id": next(_update_ids), "date": int(time.time()), "from": user,
                               "chat": {"id": user["id"], "type": "private", "first_name": user["first_name"]},
                               "text": text}
    if text.startswith("/"):
        message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]
    return {"update_id": update_id or next(_update_ids), "message": message}


def callback_update(data: str, *, message: dict[str, Any] | None = None, user: dict[str, Any] | None = None,
                    update_id: int | None = None) -> dict[str, Any]:
    user = user or USER
    message = message or {"message_id": 77, "date": int(time.time()), "from": BOT_USER,
                          "chat": {"id": user["id"], "type": "private", "first_name": user["first_name"]},
                          "text": "…"}
    return {"update_id": update_id or next(_update_ids),
            "callback_query": {"id": str(next(_update_ids)), "from": user, "chat_instance": "ci-1",
                               "data": data, "message": message}}


def sticker_update() -> dict[str, Any]:
    return {"update_id": next(_update_ids),
            "message": {"message_id": next(_update_ids), "date": int(time.time()), "from": USER,
                        "chat": {"id": USER["id"], "type": "private", "first_name": USER["first_name"]},
                        "sticker": {"file_id": "CAAC", "file_unique_id": "u1", "type": "regular", "width": 512,
                                    "height": 512, "is_animated": False, "is_video": False}}}
