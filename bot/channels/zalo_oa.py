"""Zalo Official Account (OA API v3) channel.

Receiving: POST /webhooks/zalo-oa (route: admin_api.webhooks; flow: bot.channels.pipeline).
Zalo signs each event with
  X-ZEvent-Signature: mac=<hex sha256(app_id + raw body + timestamp + OA secret key)>
(plain SHA-256 over the concatenation, not HMAC; `timestamp` is the body's field,
epoch ms). We check it in constant time, refuse events more than 5 minutes
old (or ahead); the inbox keeps the event with its text redacted (redeliveries by
`message.msg_id` dropped there). The 200 goes well inside Zalo's 2-second budget.
Events answered: user_send_* (text answered, others told we read text only), follow (a greeting),
unfollow (the user's state is forgotten and nothing more is sent to them).

Sending: POST <api>/v3.0/oa/message/cs with header `access_token` and body
  {"recipient": {"message_id": <the citizen's last msg_id>, "user_id": …}, "message": {"text": …, "attachment": …}}
A reply that names the incoming message is one of the free replies within 48 h of it; a message with
only `user_id` counts as a proactive, paid one (official help centre, shared/reference/anchors-2026-12.md
[ZA2], [ZA3] §2). So the adapter remembers each user's last interaction (time, msg_id, replies naming it;
`Window`): within 48 h it replies by message_id (8 free replies per message, counted here), from 48 h to
7 days by user_id (a paid consultation message, flagged to staff), after 7 days or after an unfollow it
does not send (Zalo would answer -230). ≤ 2,000 chars of text.

Buttons (`reply_buttons`): choices, the topic menu, "Có thể bạn muốn hỏi" and 👍/👎 go out as up to five
`oa.query.hide` buttons under the last message (the numbered text stays). Zalo sends a pressed button's
payload back as a user_send_text event: "#<kind>:<arg>" payloads are this adapter's actions (`ACTIONS`:
e = show an entry, m = more topics of the menu, f = feedback (after 👎 its reasons, "#f:r:…"; "sai" or "👎"
typed after an answer is a 👎 too, bot/typed_vote.py), k = a field-kit screen: a topic's
questions page by page (the menu's topic buttons), an article; "chủ đề", a citation and numbers picked
from those lists are the field kit's too, bot/field_kit.py), any other payload is answered as if the
citizen had typed it. How to add a button: /tmp/coord/zalo-oa-buttons.md and `BUTTON_SOURCES`.

Errors (`ERRORS`): success is HTTP 200 with "error": 0. An expired token (HTTP 401, -220, -124) is
refreshed once and the message retried once. -216 ("Access token is invalid") is checked first with
GET v2.0/oa/getoa: only if the token fails there too is the single-use refresh token spent (a refresh
on a user-side -216 would rotate the pair for nothing and race other workers).

Tokens: the access token lives ~25 h; the refresh token is single-use. A refresh
(POST <oauth>/v4/oa/access_token, form refresh_token/app_id/grant_type, header
secret_key = app secret) returns a new pair, which is saved atomically (0600
file under BHXH_DATA_DIR) before the new access token is used. Refreshes are
serialized and re-read the file first, so two never spend the same refresh token.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import hmac
import json
import logging
import math
import os
import re
import tempfile
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Literal

import httpx

from bot import messages as texts
from bot.channel_settings import ZaloOAConfig
from bot.channels import in_thread, mask, register_secret
from bot.channels.format import ZALO_LIMIT, button_label, has_details, zalo_messages
from bot.channels.pipeline import Delivery, Malformed, Message, Outgoing, Pipeline, SendError
from bot.field_kit import STALE, EntryPick, FieldKit, NumberedTurns, Screen, plain_messages, source_url
from bot.reply import Reply
from bot.service import Handled, Service
from bot.typed_vote import TypedVotes, VoteTurn
from knowledge.topics import MENU_ORDER, TOPICS
from retrieval.normalize import redact_pii

log = logging.getLogger(__name__)

CHANNEL = "zalo_oa"
REFRESH_MARGIN = 300.0  # refresh when the access token has less than this left
USER_MESSAGE_EVENTS = {"user_send_text", "user_send_image", "user_send_sticker", "user_send_gif", "user_send_file",
                       "user_send_audio", "user_send_video", "user_send_location", "user_send_link",
                       "user_send_business_card"}
FOLLOW_EVENTS = {"follow", "unfollow"}
FREE_REPLY_WINDOW = 48 * 3600.0  # replies naming the user's message are free for 48 h [ZA2][ZA3]
FREE_REPLIES = 8  # free replies per user message; the 9th is charged [ZA3] §2 (Zalo stopped reporting the count)
CONSULTATION_WINDOW = 7 * 24 * 3600.0  # consultation messages reach users active in the last 7 days [ZA3]
MAX_BUTTONS = 5  # per message (Zalo OA buttons, ChatbotX enforces the same [ZA5])
BUTTON_TITLE_LIMIT = 100  # chars, buttons of a consultation message [ZA3]
VIETNAM = dt.timezone(dt.timedelta(hours=7))


# ------------------------------------------------------------ webhook MAC


def event_mac(app_id: str, body: bytes, timestamp: str, oa_secret_key: str) -> str:
    return hashlib.sha256(app_id.encode() + body + timestamp.encode() + oa_secret_key.encode()).hexdigest()


def verify_event(config: ZaloOAConfig, body: bytes, payload: dict[str, Any], header: str | None,
                 now: float | None = None) -> str | None:
    """None if the event is authentic and fresh, else the reason to reject it."""
    given = (header or "").strip()
    if given.lower().startswith("mac="):
        given = given[4:].strip()
    timestamp = str(payload.get("timestamp") or "")
    if not given or not timestamp:
        return "missing signature"
    expected = event_mac(config.app_id, body, timestamp, config.oa_secret_key)
    if not hmac.compare_digest(given.lower().encode("utf-8", "replace"), expected.encode()):
        return "bad signature"
    try:
        sent = float(timestamp) / (1000.0 if len(timestamp) > 10 else 1.0)
    except ValueError:
        return "bad timestamp"
    if not math.isfinite(sent):  # "nan" would never compare as stale
        return "bad timestamp"
    if abs((time.time() if now is None else now) - sent) > config.max_event_age:
        return "stale event"
    return None


# ------------------------------------------------------------ tokens


@dataclass(frozen=True)
class Tokens:
    access_token: str
    refresh_token: str
    expires_at: float = 0.0  # epoch seconds; 0 = unknown (bootstrap from the environment)
    source: str = ""  # fingerprint of the bootstrap refresh token this chain started from


def _fingerprint(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()[:16] if token else ""


class TokenStore:
    """The token pair on disk: one JSON file, replaced atomically, mode 0600.

    The file wins over the environment, unless ZALO_OA_REFRESH_TOKEN changed since
    the chain in the file started (an operator re-authorized the app)."""

    def __init__(self, path: Path, bootstrap_access: str = "", bootstrap_refresh: str = "") -> None:
        self.path = path
        self.bootstrap = Tokens(bootstrap_access, bootstrap_refresh, 0.0, _fingerprint(bootstrap_refresh))

    def _saved(self) -> Tokens | None:
        try:
            return Tokens(**json.loads(self.path.read_text(encoding="utf-8")))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, TypeError) as exc:
            log.error("zalo oa: cannot read %s (%s); using the environment's tokens", self.path, type(exc).__name__)
            return None

    def exclusive(self) -> contextlib.AbstractContextManager[bool]:
        """Held while a refresh runs: one process per file, so the client's own lock is enough."""
        return contextlib.nullcontext(True)

    def load(self) -> Tokens | None:
        saved = self._saved()
        if saved is not None and (not self.bootstrap.refresh_token or saved.source == self.bootstrap.source):
            return saved
        if self.bootstrap.access_token or self.bootstrap.refresh_token:
            return self.bootstrap
        return saved

    def save(self, tokens: Tokens) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)  # created 0600
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                os.fchmod(fh.fileno(), 0o600)
                json.dump(asdict(tokens), fh)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        with contextlib.suppress(OSError):  # make the rename itself durable
            dir_fd = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)


class SharedTokenStore(TokenStore):
    """The token pair in the store shared by several workers (PostgreSQL `channel_tokens`), with the same
    precedence over the environment as the file. `exclusive()` is a lock across workers, so exactly one
    of them spends the single-use refresh token and the others read the pair it saved."""

    NAME = "zalo_oa"

    def __init__(self, db: Any, bootstrap_access: str = "", bootstrap_refresh: str = "") -> None:
        super().__init__(Path(f"<database: channel_tokens/{self.NAME}>"), bootstrap_access, bootstrap_refresh)
        self.db = db

    def _saved(self) -> Tokens | None:
        try:
            data = self.db.token_get(self.NAME)
            return Tokens(**data) if data else None
        except Exception as exc:  # unreachable database, a row in another shape: the environment's pair
            log.error("zalo oa: cannot read the stored tokens (%s); using the environment's tokens",
                      type(exc).__name__)
            return None

    def save(self, tokens: Tokens) -> None:
        try:
            self.db.token_put(self.NAME, asdict(tokens))
        except Exception as exc:  # ZaloOAClient keeps the pair in memory and retries on OSError
            raise OSError(f"cannot store the tokens: {type(exc).__name__}") from exc

    def exclusive(self) -> contextlib.AbstractContextManager[bool]:
        return self.db.lock(f"token:{self.NAME}")


# ------------------------------------------------------------ Zalo's error codes

# The `error` field of OA API answers, from Zalo's table "Mã lỗi" of the Official Account API
# (https://developers.zalo.me/docs/api/official-account-api/phu-luc/ma-loi-post-735, as the zalo_sdk Python
# package's ZaloOAException copies it) and the 2026 OA API v3 reference [ZA3] of
# shared/reference/anchors-2026-12.md (its "Bảng mã lỗi Official Account API"); -124 is the OAuth v4/ZNS
# "Invalid access token" [ZA5]; -230 as real sends answer it [ZA8].
# kind: "token" refresh and retry once; "token?" -216, checked with GET v2.0/oa/getoa before refreshing
# (ChatbotX maps -216 to "user blocked OA" [ZA5]; Zalo's table says "Access token is invalid");
# "retry" later (SendError); "window" the user's window is closed; "user" the user cannot receive;
# "request" our message is wrong; "oa" the OA or app setup. Every code but token and retry is final.


@dataclass(frozen=True)
class ZaloError:
    kind: Literal["token", "token?", "retry", "window", "user", "request", "oa"]
    meaning: str  # Zalo's wording (logs)
    staff: str  # what it means for a staff reply (Vietnamese)


_SETUP = "Lỗi cấu hình Zalo OA của hệ thống, đã ghi vào nhật ký; báo cho quản trị viên."
# One code a line: code kind | Zalo's meaning | for staff ({setup}: our configuration); an indented line goes on.
_ERROR_TABLE = """
-32 retry | rate limit of the app or OA reached
    | Zalo đang giới hạn số lần gửi của OA; tin sẽ được gửi lại sau ít phút.
-124 token | invalid access token | Access token của OA không hợp lệ. {setup}
-201 request | parameter invalid | Zalo từ chối tin vì tham số không hợp lệ. {setup}
-204 oa | Official Account is disabled | OA đã bị vô hiệu hóa nên không gửi được tin.
-205 oa | Official Account does not exist | OA không tồn tại. {setup}
-209 oa | API not supported: the app is not activated | Ứng dụng của OA chưa được kích hoạt. {setup}
-210 request | parameter exceeds the allowed limit | Tin vượt giới hạn của Zalo (độ dài, số nút).
-211 oa | out of quota | OA đã hết hạn mức của tính năng gửi tin này.
-212 oa | the app has not registered this API | Ứng dụng chưa đăng ký API gửi tin. {setup}
-213 user | user has not followed the OA
    | Người dân chưa quan tâm OA hoặc đã bỏ quan tâm nên Zalo không cho gửi tin.
-216 token? | access token is invalid | Access token của OA không hợp lệ. {setup}
-217 user | user blocked invitations from the OA | Người dân đã chặn tin mời quan tâm của OA.
-218 user | out of quota receive (this user)
    | Người dân đã nhận đủ số tin Zalo cho phép từ OA; hãy thử lại sau.
-219 oa | the app is removed or disabled | Ứng dụng của OA đã bị gỡ hoặc vô hiệu hóa. {setup}
-220 token | access token expired or removed | Access token của OA đã hết hạn. {setup}
-221 oa | the OA must be verified for this feature
    | OA chưa được xác thực nên chưa dùng được tính năng này.
-223 oa | the OA has not authorized this API | OA chưa cấp quyền API này cho ứng dụng. {setup}
-224 oa | the OA tier package lacks this feature | Gói dịch vụ của OA không có tính năng này.
-227 user | user is banned or inactive for more than 45 days
    | Tài khoản Zalo của người dân bị khóa hoặc không hoạt động quá 45 ngày.
-230 window | user has not interacted with the OA in the past 7 days
    | Quá 7 ngày kể từ lần cuối người dân nhắn cho OA: Zalo không cho gửi tin tư vấn. Hãy chờ người dân nhắn lại.
-232 window | user has not interacted with the OA, or the interaction expired
    | Người dân chưa nhắn cho OA hoặc lần nhắn đã quá hạn: Zalo không cho gửi tin.
-233 request | message type invalid or not supported | Zalo không hỗ trợ loại tin này. {setup}
-240 request | message API v2 is shut down | API gửi tin cũ (V2) đã ngừng. {setup}
-244 user | user restricted this message type from the OA | Người dân đã chặn loại tin này từ OA.
-305 window | the OA cannot respond to the user after 48 hours
    | Đã quá 48 giờ kể từ tin của người dân: không còn trả lời miễn phí được.
-311 window | out of quota for responding to the user's message
    | Đã hết lượt trả lời miễn phí cho tin nhắn này của người dân.
-320 oa | the app must be linked to a Zalo Cloud Account for paid features
    | Ứng dụng chưa liên kết tài khoản Zalo Cloud nên không gửi được tin có phí.
-321 oa | the Zalo Cloud Account is out of money or cannot be charged
    | Tài khoản Zalo Cloud của ứng dụng hết tiền nên không gửi được tin có phí.
"""


def _error_table(table: str) -> dict[int, ZaloError]:
    rows = re.sub(r"\n\s+", " ", table.strip()).splitlines()  # indented lines continue the one above
    errors = {}
    for row in rows:
        head, meaning, staff = (part.strip() for part in row.split("|"))
        code, kind = head.split()
        errors[int(code)] = ZaloError(kind, meaning, staff.replace("{setup}", _SETUP))  # type: ignore[arg-type]
    return errors


ERRORS = _error_table(_ERROR_TABLE)
TOKEN_ERRORS = {code for code, known in ERRORS.items() if known.kind in ("token", "token?")}
NO_TOKEN_REASON = "OA chưa có access token dùng được. " + _SETUP
USER_SIDE_216 = ("Zalo báo lỗi -216 dù access token của OA vẫn dùng được: có thể người dân đã chặn OA. "
                 "Không gửi được tin.")


@dataclass(frozen=True)
class Sent:
    """What became of one message: sent (and on which quota), or the error Zalo gave."""

    ok: bool
    error: int | None = None
    quota: str | None = None  # data.quota.quota_type of a sent message: "reply" = free; None = charged [ZA3] §1
    reason: str | None = None  # our own staff-facing reason where the code alone does not say it

    def staff_reason(self) -> str:
        if self.reason:
            return self.reason
        known = ERRORS.get(self.error) if self.error is not None else None
        return known.staff if known else f"Zalo từ chối tin (mã lỗi {self.error}). " + _SETUP


class ZaloOAClient:
    """Sends customer-service text messages, refreshing the access token when needed."""

    def __init__(self, config: ZaloOAConfig, store: TokenStore, client: httpx.AsyncClient) -> None:
        self.config = config
        self.store = store
        self.client = client
        self._tokens = store.load()
        self._unsaved = False  # a refreshed pair that could not be written yet: memory is authoritative
        self._lock = asyncio.Lock()
        if self._tokens:
            register_secret(self._tokens.access_token, self._tokens.refresh_token, rotating=True)

    @property
    def tokens(self) -> Tokens | None:
        return self._tokens

    async def access_token(self) -> str | None:
        tokens = self._tokens
        if tokens is None:
            return None
        if not tokens.access_token or (tokens.expires_at and tokens.expires_at - time.time() < REFRESH_MARGIN):
            fresh = await self.refresh(tokens.access_token)
            if fresh:
                return fresh
            return tokens.access_token if tokens.expires_at > time.time() else None
        return tokens.access_token

    def _persist(self) -> None:
        try:
            self.store.save(self._tokens)  # type: ignore[arg-type]
            self._unsaved = False
        except OSError as exc:
            self._unsaved = True
            log.critical("zalo oa: could not save the new token pair to %s (%s); keeping it in memory and "
                         "retrying on the next refresh. Fix the data directory before restarting!",
                         self.store.path, type(exc).__name__)

    async def refresh(self, stale: str) -> str | None:
        """A fresh access token, refreshing unless someone else already replaced `stale` (this worker, or
        another one: the store's `exclusive()` lock spans workers on a shared database)."""
        async with self._lock:
            shared = self.store.exclusive()
            await asyncio.to_thread(shared.__enter__)  # may wait while another worker refreshes
            try:
                return await self._refresh_exclusively(stale)
            finally:
                await asyncio.to_thread(shared.__exit__, None, None, None)

    async def _refresh_exclusively(self, stale: str) -> str | None:
        if self._unsaved:
            self._persist()
        else:
            self._tokens = self.store.load() or self._tokens  # another process may have refreshed
        current = self._tokens
        if current is None:
            return None
        if current.access_token and current.access_token != stale:
            return current.access_token
        if not current.refresh_token or not self.config.app_secret:
            log.error("zalo oa: access token expired and no refresh token/app secret is configured")
            return None
        try:
            response = await self.client.post(
                f"{self.config.oauth_base}/v4/oa/access_token",
                data={"refresh_token": current.refresh_token, "app_id": self.config.app_id,
                      "grant_type": "refresh_token"},
                headers={"secret_key": self.config.app_secret})
            data = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            log.error("zalo oa: token refresh failed: %s", type(exc).__name__)
            return None
        if not isinstance(data, dict) or not data.get("access_token"):
            error = data.get("error") if isinstance(data, dict) else None
            log.error("zalo oa: token refresh refused (HTTP %s, error %s)%s", response.status_code, error,
                      "; the refresh token was already used or expired: authorize the app again"
                      if error == -14020 else "")
            return None
        try:
            lifetime = float(data.get("expires_in") or 90000)
        except (TypeError, ValueError):
            lifetime = 90000.0
        new = Tokens(str(data["access_token"]), str(data.get("refresh_token") or current.refresh_token),
                     time.time() + lifetime, current.source)
        register_secret(new.access_token, new.refresh_token, rotating=True)
        self._tokens = new  # memory first, so the single-use refresh token is never lost…
        self._persist()  # …then disk, before the new access token is used
        log.info("zalo oa: access token refreshed (valid %.0f h)", lifetime / 3600)
        return new.access_token


    async def token_works(self, token: str) -> bool | None:
        """Does Zalo accept this access token? Asked with the OA profile (GET v2.0/oa/getoa), which needs
        nothing but the token. None if it cannot tell (no connection, another error)."""
        try:
            response = await self.client.get(f"{self.config.api_base}/v2.0/oa/getoa", headers={"access_token": token})
            data = response.json() if response.content else {}
        except (httpx.HTTPError, ValueError):
            return None
        error = data.get("error") if isinstance(data, dict) else None
        if response.status_code == 200 and error == 0:
            return True
        if response.status_code == 401 or error in TOKEN_ERRORS:
            return False
        return None

    async def send(self, recipient: dict[str, str], message: dict[str, Any]) -> Sent:
        """One consultation message. Raises SendError when worth retrying (no connection, 5xx, 429, -32)."""
        token = await self.access_token()
        for attempt in (1, 2):
            if not token:
                log.error("zalo oa: no access token; cannot send")
                return Sent(False, reason=NO_TOKEN_REASON)
            try:
                response = await self.client.post(f"{self.config.api_base}/v3.0/oa/message/cs",
                                                  headers={"access_token": token},
                                                  json={"recipient": recipient, "message": message})
                data = response.json() if response.content else {}
            except httpx.ReadTimeout:  # sent, no answer: it may have arrived; sending it again could repeat it
                log.warning("zalo oa: no answer in time; not sent again")
                return Sent(True)
            except (httpx.HTTPError, ValueError) as exc:  # the pipeline retries
                raise SendError(f"zalo oa: send failed: {type(exc).__name__}") from None
            if response.status_code >= 500 or response.status_code == 429:
                raise SendError(f"zalo oa: send failed: HTTP {response.status_code}")
            data = data if isinstance(data, dict) else {}
            error = data.get("error")
            if response.status_code == 200 and error == 0:
                return Sent(True, 0, _quota_type(data))
            known = ERRORS.get(error) if isinstance(error, int) else None
            expired = response.status_code == 401 or (known is not None and known.kind == "token")
            if known is not None and known.kind == "token?":
                works = await self.token_works(token)
                if works is None:  # cannot tell: try again later rather than spend the refresh token blindly
                    raise SendError(f"zalo oa: error {error} and the token check failed")
                if works:
                    log.warning("zalo oa: error %s although the access token works: a problem of this user "
                                "(blocked the OA?), not of the token; not refreshing", error)
                    return Sent(False, error, reason=USER_SIDE_216)
                expired = True
            if attempt == 1 and expired:
                token = await self.refresh(token)
                continue
            if known is not None and known.kind == "retry":
                raise SendError(f"zalo oa: send failed: error {error} ({known.meaning})")
            log.warning("zalo oa: send refused: HTTP %s, error %s (%s): %s", response.status_code, error,
                        known.meaning if known else "unknown code", mask(str(data.get("message", "")))[:200])
            return Sent(False, error if isinstance(error, int) else None)
        return Sent(False, reason=NO_TOKEN_REASON)

    async def send_text(self, user_id: str, text: str) -> bool:
        """A proactive text message to a user (by user_id: paid unless in a free quota)."""
        return (await self.send({"user_id": user_id}, {"text": text})).ok


def _quota_type(data: dict[str, Any]) -> str | None:
    """Which quota paid for a sent message ("reply" = a free reply); None: a charged message [ZA3] §1."""
    quota = (data.get("data") or {}).get("quota") if isinstance(data.get("data"), dict) else None
    return str(quota.get("quota_type")) if isinstance(quota, dict) and quota.get("quota_type") else None


# ------------------------------------------------------------ the interaction window


@dataclass(frozen=True)
class Window:
    """Where a user stands in Zalo's windows, from their last interaction with the OA."""

    state: Literal["free", "paid", "closed", "unfollowed", "unknown"]
    msg_id: str | None = None  # their last message while it can still be replied to for free
    at: float = 0.0  # epoch seconds of the last interaction
    spent: bool = False  # paid because the FREE_REPLIES to their last message are used up

    def recipient(self, user_id: str) -> dict[str, str]:
        """A free reply names their message (Zalo: a message with "only user_id and no message_id" is a
        proactive one [ZA2]; the user id stays beside it); anything else goes by user id."""
        if self.state == "free" and self.msg_id:
            return {"message_id": self.msg_id, "user_id": user_id}
        return {"user_id": user_id}


def _seconds(value: object) -> float:
    try:
        seconds = float(value or 0.0)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return 0.0
    return seconds if math.isfinite(seconds) else 0.0


def window_of(record: Mapping[str, Any], now: float) -> Window:
    """The window at `now` of a stored record {"at": last interaction, "msg_id", "msg_at": their last message
    and its time, "unfollowed"}. A follow is an interaction too, but only a message can be replied to."""
    at = _seconds(record.get("at"))
    if not at:
        return Window("unknown")
    if record.get("unfollowed"):
        return Window("unfollowed", None, at)
    msg_at = _seconds(record.get("msg_at"))
    fresh = bool(record.get("msg_id")) and now - msg_at <= FREE_REPLY_WINDOW
    spent = fresh and int(record.get("replies") or 0) >= FREE_REPLIES
    msg_id = str(record["msg_id"]) if fresh and not spent else None
    age = now - at
    state = "free" if age <= FREE_REPLY_WINDOW else "paid" if age <= CONSULTATION_WINDOW else "closed"
    return Window("paid" if spent and state == "free" else state, msg_id, at, spent)


def _ago(seconds: float) -> str:
    hours = max(0, int(seconds // 3600))
    if hours < 48:
        return f"{hours} giờ"
    return f"{hours // 24} ngày" + (f" {hours % 24} giờ" if hours % 24 else "")


def _local(at: float) -> str:
    return dt.datetime.fromtimestamp(at, VIETNAM).strftime("%H:%M ngày %d/%m/%Y")


def staff_notice(window: Window, now: float) -> tuple[bool, str | None]:
    """May staff send now, and what to tell them (Vietnamese): the `can_send_staff_reply` answer."""
    if window.state == "paid":
        until = _local(window.at + CONSULTATION_WINDOW)
        why = (f"đã dùng hết {FREE_REPLIES} lượt trả lời miễn phí cho tin nhắn cuối của người dân" if window.spent
               else f"người dân nhắn lần cuối {_ago(now - window.at)} trước (quá 48 giờ)")
        return True, f"Tin có phí: {why}, nên Zalo tính tin này là tin tư vấn trả phí. Còn gửi được đến {until}."
    if window.state == "closed":
        return False, (f"Không gửi được: người dân nhắn lần cuối {_ago(now - window.at)} trước, đã quá 7 ngày nên "
                       "Zalo không cho OA gửi tin. Hãy chờ người dân nhắn lại, hoặc liên hệ theo cách khác "
                       f"(tổng đài {texts.HOTLINE}).")
    if window.state == "unfollowed":
        return False, ("Không gửi được: người dân đã bỏ quan tâm OA nên Zalo không cho gửi tin. "
                       f"Hãy chờ người dân quan tâm và nhắn lại, hoặc liên hệ qua tổng đài {texts.HOTLINE}.")
    return True, None


# ------------------------------------------------------------ buttons


@dataclass(frozen=True)
class Button:
    """One OA button. `payload` "#<kind>:<arg>" is an action of this adapter (`ACTIONS`); any other payload
    comes back as if the citizen had typed it (and is shown in the chat as their message)."""

    label: str
    payload: str
    priority: int = 50  # when more than MAX_BUTTONS apply, the lowest numbers are kept (order stays as listed)

    def to_zalo(self) -> dict[str, Any]:
        kind = "oa.query.hide" if self.payload.startswith("#") else "oa.query.show"
        return {"title": button_label(self.label, BUTTON_TITLE_LIMIT), "type": kind, "payload": self.payload[:1000]}


TOPICS_PER_PAGE = MAX_BUTTONS - 1  # the fifth button of a page is "more topics"
HANDOFF_BUTTON = Button(texts.HANDOFF_BUTTON, "gặp cán bộ", 5)


def topic_page(page: int) -> list[Button]:
    """Page `page` of the topic menu: four topics and "Chủ đề khác" while more remain."""
    start = page * TOPICS_PER_PAGE
    topics = MENU_ORDER[start:start + TOPICS_PER_PAGE]
    # "more" is the first to go when another button needs the room (the topics stay listed in the text)
    more = [Button("➕ Chủ đề khác", f"#m:{page + 1}", 11)] if start + TOPICS_PER_PAGE < len(MENU_ORDER) else []
    return [Button(TOPICS[t], f"#k:t:{t}", 10) for t in topics] + more  # a topic opens the field kit's pages


def choice_buttons(reply: Reply, question_id: int | None) -> list[Button]:
    return [Button(f"{n}. {c.question}", f"#e:{c.entry_id}", 0) for n, c in enumerate(reply.choices, start=1)]


def topic_buttons(reply: Reply, question_id: int | None) -> list[Button]:
    return topic_page(0) if reply.show_topics and not reply.choices else []


def related_buttons(reply: Reply, question_id: int | None) -> list[Button]:
    return [Button(f"🔎 {c.question}", f"#e:{c.entry_id}", 40) for c in reply.related] if reply.answered else []


def feedback_buttons(reply: Reply, question_id: int | None) -> list[Button]:
    if not reply.answered or not reply.entry_id:
        return []
    tail = f"{'' if question_id is None else question_id}:{reply.entry_id}"
    return [Button("👍 Hữu ích", f"#f:+:{tail}", 20), Button("👎 Chưa đúng", f"#f:-:{tail}", 20)]


# Each source gives the buttons it wants for a reply (in display order). A new button is one line here.
BUTTON_SOURCES: list[Callable[[Reply, int | None], Iterable[Button]]] = [
    choice_buttons,
    # after the choices, "Không phải các câu trên": Service reads the words as none-of-these (conversation.picks_none)
    lambda r, q: [Button(texts.NONE_OF_THESE, texts.NONE_OF_THESE, 5)] if r.choices else [],
    topic_buttons, related_buttons, feedback_buttons,
    # "not sure": a person may help (as Telegram's button; the words are a request bot/handoff.py reads)
    lambda r, q: [HANDOFF_BUTTON] if r.kind == "not_sure" else [],
    # the details behind a short answer: the typed words Service answers ("chi tiết"), so it works as text too
    lambda r, q: [Button(texts.DETAILS_BUTTON, "chi tiết", 15)] if has_details(r) else [],
]


def reply_buttons(reply: Reply, question_id: int | None) -> list[Button]:
    """The reply's buttons, at most MAX_BUTTONS: the lowest priorities kept, listed in source order."""
    buttons = [b for source in BUTTON_SOURCES for b in source(reply, question_id)]
    kept = set(sorted(range(len(buttons)), key=lambda i: (buttons[i].priority, i))[:MAX_BUTTONS])
    return [b for i, b in enumerate(buttons) if i in kept]


def as_rows(buttons: Iterable[Button]) -> tuple[tuple[tuple[str, str], ...], ...]:
    """Buttons as `Outgoing.buttons` keeps them (one per row), so a replayed reply has them too."""
    return tuple(((b.label, b.payload),) for b in buttons)


def oa_message(message: Outgoing) -> dict[str, Any]:
    """The `message` object of /v3.0/oa/message/cs: text, and its buttons as a template attachment [ZA3][ZA6]."""
    body: dict[str, Any] = {"text": message.text}
    buttons = [Button(label, payload) for row in message.buttons for label, payload in row][:MAX_BUTTONS]
    if buttons:
        body["attachment"] = {"type": "template", "payload": {"buttons": [b.to_zalo() for b in buttons]}}
    return body


def parse_action(text: str | None) -> tuple[str, str] | None:
    """("e", "<entry id>") for a "#e:<entry id>" payload; None for anything else (answered as typed)."""
    if not text or not text.startswith("#"):
        return None
    kind, sep, arg = text[1:].partition(":")
    return (kind, arg) if sep and kind in ACTIONS else None


# ------------------------------------------------------------ events


@dataclass(frozen=True)
class OAEvent:
    name: str
    user_id: str
    text: str | None
    msg_id: str | None
    at: float = 0.0  # the event's timestamp (epoch seconds); 0 in inbox rows written before it was kept


def _event_time(payload: Mapping[str, Any]) -> float:
    try:
        stamp = float(str(payload.get("timestamp") or ""))
    except ValueError:
        return 0.0
    if not math.isfinite(stamp) or stamp <= 0:
        return 0.0
    return stamp / 1000.0 if stamp > 1e11 else stamp


def parse_event(payload: dict[str, Any]) -> OAEvent | None:
    """A user message, a follow or an unfollow; None for events we do not answer (including our own echoes)."""
    name = str(payload.get("event_name") or "")
    if name in FOLLOW_EVENTS:
        follower = payload.get("follower") if isinstance(payload.get("follower"), dict) else {}
        user_id = follower.get("id")
        return OAEvent(name, str(user_id), None, None, _event_time(payload)) if user_id else None
    if name not in USER_MESSAGE_EVENTS:
        return None
    sender = payload.get("sender") if isinstance(payload.get("sender"), dict) else {}
    message = payload.get("message") if isinstance(payload.get("message"), dict) else {}
    if not sender.get("id"):
        return None
    text = message.get("text") if name == "user_send_text" and isinstance(message.get("text"), str) else None
    msg_id = message.get("msg_id")
    return OAEvent(name, str(sender["id"]), text, str(msg_id) if msg_id else None, _event_time(payload))


WINDOW_KEY = "zalo_oa_window:"  # + the keyed hash of the user id: one record per user in the store's state table
REFUSALS_KEPT = 10_000


class ZaloOAAdapter:
    """The Zalo OA's shapes for `Pipeline`: MAC-signed events, user ids, text with buttons, the windows."""

    channel = CHANNEL
    path = "/webhooks/zalo-oa"
    summary = "Zalo Official Account webhook (API v3)"

    def __init__(self, service: Service, config: ZaloOAConfig, client: httpx.AsyncClient | None = None,
                 *, clock: Callable[[], float] | None = None) -> None:
        self.service = service
        self.config = config
        self.clock = clock or (lambda: time.time())  # looked up at each call (tests move the module's clock)
        self.http = client or httpx.AsyncClient(timeout=httpx.Timeout(15.0, connect=5.0))
        # Several workers on one database share the pair there (one refresh for all), else the file.
        tokens = (SharedTokenStore(service.store, config.access_token, config.refresh_token)
                  if callable(getattr(service.store, "token_get", None))
                  else TokenStore(config.token_file, config.access_token, config.refresh_token))
        self.client = ZaloOAClient(config, tokens, self.http)
        # Field-kit pages of MAX_BUTTONS - 1 questions: each one a button, and "Xem thêm".
        self.field_kit = NumberedTurns(FieldKit(lambda: self.service.engine.kb, page_size=MAX_BUTTONS - 1),
                                       service, CHANNEL)
        self.votes = TypedVotes(service, CHANNEL)  # 👎 typed, or its button, and its reason (bot/typed_vote.py)
        self._refusals: OrderedDict[str, str] = OrderedDict()  # chat → why Zalo (or we) refused the last send

    # ------------------------------------------------------------ webhook

    def verify(self, headers: Mapping[str, str], body: bytes, payload: object) -> str | None:
        if not isinstance(payload, dict):
            return None  # nothing to check a MAC against: answered 400 as malformed, never processed
        return verify_event(self.config, body, payload, headers.get("x-zevent-signature"), now=self.clock())

    def parse(self, payload: object, body: bytes) -> Delivery | None:
        if not isinstance(payload, dict):
            raise Malformed("malformed event")
        event = parse_event(payload)
        if event is None:
            return None
        key = event.msg_id or f"{event.name}:{event.user_id}:{payload.get('timestamp')}"
        stored = replace(event, text=redact_pii(event.text) if event.text is not None else None)
        return Delivery(key, asdict(stored), event, chat=event.user_id)

    def restore(self, stored: dict[str, Any]) -> OAEvent:
        """Replayed events are not re-checked for age: the user wrote in time, we were the ones who died."""
        return OAEvent(**stored)

    async def process(self, pipeline: Pipeline, key: str, work: OAEvent, *, replaying: bool) -> bool:
        at = work.at or self.clock()
        if work.name == "unfollow":
            await in_thread(self.forget, work.user_id, at)
            return True
        await in_thread(self.remember, work.user_id, at, work.msg_id)
        if work.name == "follow":
            return await pipeline.deliver(key, work.user_id, self.render(Handled(self.service.welcome(), None)))
        action = parse_action(work.text)
        if action is not None and await in_thread(self.service.handoff.pressed, CHANNEL, work.user_id, work.user_id,
                                                  self.pressed_label(*action)):
            return True  # a staff member has the chat (bot/handoff.py): the press went to them, the bot is silent
        if action is not None:
            return await pipeline.deliver(key, work.user_id, await ACTIONS[action[0]](self, work.user_id, action[1]))
        vote = await in_thread(self.votes.turn, work.user_id, work.text)
        if vote is not None:  # "👎" / "sai" typed after an answer, or the number of its reason (bot/typed_vote.py)
            return await pipeline.deliver(key, work.user_id, self.vote_messages(vote))
        kit = await in_thread(self.field_kit_typed, work.user_id, work.text)
        if kit is not None:  # "chủ đề", a citation, a number picked from a field-kit list (bot/field_kit.py)
            return await pipeline.deliver(key, work.user_id, kit)
        message_id = f"zoa:{work.msg_id}" if work.msg_id else None
        return await pipeline.answer(key, Message(work.user_id, work.user_id, work.text, message_id),
                                     replaying=replaying)

    # ------------------------------------------------------------ the interaction window

    def _window_key(self, user_id: str) -> str:
        return WINDOW_KEY + self.service.store.hash_user(CHANNEL, user_id)

    def remember(self, user_id: str, at: float, msg_id: str | None) -> None:
        """The user interacted (a message, a button, a follow): their window opens again."""
        key = self._window_key(user_id)
        known = self.service.store.load_state(key)
        if _seconds(known.get("at")) > at:  # a replay of an older event
            return
        message = ({"msg_id": msg_id, "msg_at": at, "replies": 0} if msg_id
                   else {k: known.get(k) for k in ("msg_id", "msg_at", "replies")})
        self.service.store.save_state(key, {"at": at, **message, "unfollowed": False})

    def count_reply(self, user_id: str, msg_id: str) -> None:
        """One more reply named their message (Zalo allows FREE_REPLIES free ones per message)."""
        key = self._window_key(user_id)
        known = self.service.store.load_state(key)
        if known.get("msg_id") == msg_id:
            self.service.store.save_state(key, {**known, "replies": int(known.get("replies") or 0) + 1})

    def forget(self, user_id: str, at: float) -> None:
        """An unfollow: nothing more is sent to them (pending replies are dropped in `send`), and their
        conversation state (pending choices, calculator step) is forgotten."""
        key = self._window_key(user_id)
        known = self.service.store.load_state(key)
        self.service.store.save_state(key, {**known, "at": max(at, _seconds(known.get("at"))), "unfollowed": True})
        self.service.forget(CHANNEL, user_id)
        self.service.handoff.citizen_left(CHANNEL, user_id)  # a conversation with staff is closed
        log.info("zalo oa: a user unfollowed the OA: their conversation state is forgotten, nothing more is sent")

    def window(self, user_id: str, now: float | None = None) -> Window:
        return window_of(self.service.store.load_state(self._window_key(user_id)), self.clock() if now is None else now)

    async def can_send_staff_reply(self, chat_key: str) -> tuple[bool, str | None]:
        """The handoff's check before a staff reply (see /tmp/coord/handoff-interface.md): (True, None) free,
        (True, reason) paid (48 h–7 days), (False, reason) impossible (over 7 days, unfollowed)."""
        try:
            window = await in_thread(self.window, chat_key)
        except Exception as exc:  # unsure: let Zalo decide (its refusal is kept in `refusal`)
            log.warning("zalo oa: cannot read the interaction window: %s", type(exc).__name__)
            return True, None
        return staff_notice(window, self.clock())

    def refusal(self, chat_key: str) -> str | None:
        """Why the last send to this chat was refused (Vietnamese, for staff); None after a success."""
        return self._refusals.get(chat_key)

    def _refused(self, chat_id: str, reason: str) -> None:
        self._refusals[chat_id] = reason
        self._refusals.move_to_end(chat_id)
        while len(self._refusals) > REFUSALS_KEPT:
            self._refusals.popitem(last=False)

    # ------------------------------------------------------------ replies

    def render(self, handled: Handled) -> list[Outgoing]:
        """Plain text under 2,000 chars (numbered choices stay, for typing), the buttons on the last message."""
        base = self.field_kit.kit.base_url  # BHXH_PUBLIC_URL: each source links to its article
        return self.messages(zalo_messages(handled.reply, details_hint="",  # a button asks for the details
                                           source_url=lambda s: source_url(s, base)),
                             reply_buttons(handled.reply, handled.question_id))

    @staticmethod
    def messages(chunks: list[str], buttons: Iterable[Button]) -> list[Outgoing]:
        rows = as_rows(buttons)
        return [Outgoing(chunk, buttons=rows if n == len(chunks) else ()) for n, chunk in enumerate(chunks, start=1)]

    async def send(self, chat_id: str, message: Outgoing) -> bool:
        now = self.clock()
        window = await in_thread(self.window, chat_id, now)
        if window.state in ("closed", "unfollowed"):
            self._refused(chat_id, staff_notice(window, now)[1] or "")
            log.info("zalo oa: a message is dropped: %s", "the user unfollowed the OA" if window.state == "unfollowed"
                     else "their last interaction is over 7 days old")
            return False
        sent = await self.client.send(window.recipient(chat_id), oa_message(message))
        if not sent.ok:
            self._refused(chat_id, sent.staff_reason())
            return False
        self._refusals.pop(chat_id, None)
        if window.msg_id is not None:
            await in_thread(self.count_reply, chat_id, window.msg_id)
            if sent.quota is None and sent.error == 0:
                log.info("zalo oa: a reply naming the user's message was charged (no free reply quota left)")
        elif window.state == "paid":
            log.info("zalo oa: sent as a paid consultation message (%s)", "free replies used up" if window.spent
                     else f"last interaction {(now - window.at) / 3600:.0f} h ago")
        return True

    async def ready(self) -> bool:
        return True

    async def close(self) -> None:
        await self.http.aclose()

    # ------------------------------------------------------------ button actions ("#<kind>:<arg>")

    def pressed_label(self, kind: str, arg: str) -> str | None:
        """What staff read for a pressed button (only its payload comes back): an entry's question."""
        entry_id = arg.removeprefix("e:") if kind == "k" else arg if kind == "e" else ""
        entry = self.service.engine.kb.entries.get(entry_id)
        return entry.question if entry is not None else None

    async def show_entry(self, user_id: str, entry_id: str) -> list[Outgoing]:
        reply = await in_thread(self.service.choose, CHANNEL, user_id, entry_id)
        if reply is None:  # removed or renamed since the button was sent
            return [Outgoing(texts.STALE_BUTTON)]
        return self.render(Handled(reply, None))

    async def field_kit_action(self, user_id: str, action: str) -> list[Outgoing]:
        """A field-kit button ("#k:t:pension:2", "#k:l:41-2024-qh15:70", "#k:e:<entry>")."""
        turn = await in_thread(self.field_kit.act, user_id, action)
        return await in_thread(self.field_kit_messages, user_id, turn) or [Outgoing(STALE)]

    def field_kit_typed(self, user_id: str, text: str | None) -> list[Outgoing] | None:
        return self.field_kit_messages(user_id, self.field_kit.turn(user_id, text))

    def field_kit_messages(self, user_id: str, turn: Screen | EntryPick | None) -> list[Outgoing] | None:
        """A field-kit screen as text with its items as buttons (the first ones when there are more than
        MAX_BUTTONS; every item can be typed by number); an answer picked from it as any answer."""
        if isinstance(turn, EntryPick):
            reply = self.service.choose(CHANNEL, user_id, turn.entry_id)
            return self.render(Handled(reply, None)) if reply is not None else [Outgoing(STALE)]
        if turn is None:
            return None
        more = [Button(f"➡️ {turn.more.label}", f"#k:{turn.more.action}")] if turn.more else []
        items = [Button(f"{n}. {i.label}", f"#k:{i.action}") for n, i in enumerate(turn.items, start=1)]
        return self.messages(plain_messages(turn, ZALO_LIMIT), items[:MAX_BUTTONS - len(more)] + more)

    async def more_topics(self, user_id: str, page: str) -> list[Outgoing]:
        buttons = topic_page(int(page)) if page.isdecimal() else []
        return self.messages(["Chọn một chủ đề, hoặc gõ câu hỏi của bạn:"], buttons) if buttons else \
            [Outgoing(texts.STALE_BUTTON)]

    async def feedback(self, user_id: str, arg: str) -> list[Outgoing]:
        """👍 ("+"), 👎 ("-": thanks, the reasons as buttons and a person offered) and a reason of that 👎
        ("r:<question id>:<n>", n from 0: signals.DOWN_REASONS), through bot.typed_vote as a typed 👎."""
        sign, _, tail = arg.partition(":")
        qid, _, entry_id = tail.partition(":")
        if sign not in ("+", "-", "r") or (qid and not qid.isdecimal()) or (sign == "r" and not entry_id.isdecimal()):
            return [Outgoing(texts.STALE_BUTTON)]
        question_id = int(qid) if qid else None
        if sign == "r":
            said = await in_thread(self.votes.reason, user_id, int(entry_id) + 1, question_id)
            return [Outgoing(said.text if said is not None else texts.STALE_BUTTON)]
        if sign == "-":
            return self.vote_messages(await in_thread(self.votes.down, user_id, question_id, entry_id or None))
        await in_thread(self.service.feedback, CHANNEL, user_id, 1, entry_id=entry_id or None, question_id=question_id)
        return [Outgoing(texts.FEEDBACK_UP)]

    def vote_messages(self, vote: VoteTurn) -> list[Outgoing]:
        """A 👎's reply: its reasons are buttons too (typing the number works as well), then "Hỏi cán bộ"."""
        tail = "" if vote.question_id is None else vote.question_id
        reasons = [Button(reason, f"#f:r:{tail}:{n}", 0) for n, reason in enumerate(vote.reasons)]
        return self.messages([vote.text], [*reasons, HANDOFF_BUTTON] if reasons else [])


# A pressed button's "#<kind>:<arg>" payload → what answers it (the adapter, the user id, <arg>).
ACTIONS: dict[str, Callable[[ZaloOAAdapter, str, str], Awaitable[list[Outgoing]]]] = {
    "e": ZaloOAAdapter.show_entry,
    "m": ZaloOAAdapter.more_topics,
    "f": ZaloOAAdapter.feedback,
    "k": ZaloOAAdapter.field_kit_action,
}
