"""Zalo Official Account (OA API v3) channel.

Receiving: POST /webhooks/zalo-oa (route: admin_api.webhooks; flow: bot.channels.pipeline).
Zalo signs each event with
  X-ZEvent-Signature: mac=<hex sha256(app_id + raw body + timestamp + OA secret key)>
(plain SHA-256 over the concatenation, not HMAC; `timestamp` is the body's field,
epoch ms). We check it in constant time, refuse events more than 5 minutes
old (or ahead); the inbox keeps the event with its text redacted (redeliveries by
`message.msg_id` dropped there). The 200 goes well inside Zalo's 2-second budget.

Sending: POST <api>/v3.0/oa/message/cs with header `access_token` and body
  {"recipient": {"user_id": …}, "message": {"text": …}}   (≤ 2,000 chars per message).
Success is HTTP 200 with "error": 0. HTTP 401 or error -216/-124 means the
access token expired: refresh once and retry once. Consultation messages only
reach users who wrote within the last 48 h (paid up to 7 days); later, error -230.

Tokens: the access token lives ~25 h; the refresh token is single-use. A refresh
(POST <oauth>/v4/oa/access_token, form refresh_token/app_id/grant_type, header
secret_key = app secret) returns a new pair, which is saved atomically (0600
file under BHXH_DATA_DIR) before the new access token is used. Refreshes are
serialized and re-read the file first, so two never spend the same refresh token.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import math
import os
import tempfile
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import httpx

from bot.channels import env_str, mask, register_secret
from bot.channels.format import zalo_messages
from bot.channels.pipeline import Delivery, Malformed, Message, Outgoing, Pipeline, SendError
from bot.service import Handled, Service
from retrieval.normalize import redact_pii

log = logging.getLogger(__name__)

CHANNEL = "zalo_oa"
DEFAULT_API_BASE = "https://openapi.zalo.me"
DEFAULT_OAUTH_BASE = "https://oauth.zaloapp.com"
TOKEN_FILE_NAME = "zalo_oa_tokens.json"
MAX_EVENT_AGE = 300.0  # seconds, either way
REFRESH_MARGIN = 300.0  # refresh when the access token has less than this left
EXPIRED_ERRORS = {-216, -124}
USER_MESSAGE_EVENTS = {"user_send_text", "user_send_image", "user_send_sticker", "user_send_gif", "user_send_file",
                       "user_send_audio", "user_send_video", "user_send_location", "user_send_link"}


@dataclass(frozen=True)
class ZaloOAConfig:
    app_id: str
    oa_secret_key: str  # verifies webhook MACs
    app_secret: str = ""  # `secret_key` header of token refreshes
    access_token: str = ""  # bootstrap pair from the first authorization
    refresh_token: str = ""
    api_base: str = DEFAULT_API_BASE
    oauth_base: str = DEFAULT_OAUTH_BASE
    token_file: Path = Path("var") / TOKEN_FILE_NAME
    max_event_age: float = MAX_EVENT_AGE

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ZaloOAConfig | None:
        env = os.environ if env is None else env
        app_id, oa_secret = env_str(env, "ZALO_OA_APP_ID"), env_str(env, "ZALO_OA_SECRET_KEY")
        if not app_id or not oa_secret:
            return None
        data_dir = Path(env_str(env, "BHXH_DATA_DIR", "var")).resolve()
        config = cls(app_id=app_id, oa_secret_key=oa_secret, app_secret=env_str(env, "ZALO_OA_APP_SECRET"),
                     access_token=env_str(env, "ZALO_OA_ACCESS_TOKEN"),
                     refresh_token=env_str(env, "ZALO_OA_REFRESH_TOKEN"),
                     api_base=env_str(env, "ZALO_OA_API_BASE_URL", DEFAULT_API_BASE).rstrip("/"),
                     oauth_base=env_str(env, "ZALO_OA_OAUTH_BASE_URL", DEFAULT_OAUTH_BASE).rstrip("/"),
                     token_file=data_dir / TOKEN_FILE_NAME)
        register_secret(config.oa_secret_key, config.app_secret, config.access_token, config.refresh_token)
        return config


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

    async def send_text(self, user_id: str, text: str) -> bool:
        token = await self.access_token()
        for attempt in (1, 2):
            if not token:
                log.error("zalo oa: no access token; cannot reply")
                return False
            try:
                response = await self.client.post(
                    f"{self.config.api_base}/v3.0/oa/message/cs", headers={"access_token": token},
                    json={"recipient": {"user_id": user_id}, "message": {"text": text}})
                data = response.json() if response.content else {}
            except httpx.ReadTimeout:  # sent, no answer: it may have arrived; sending it again could repeat it
                log.warning("zalo oa: no answer in time; not sent again")
                return True
            except (httpx.HTTPError, ValueError) as exc:  # the pipeline retries
                raise SendError(f"zalo oa: send failed: {type(exc).__name__}") from None
            if response.status_code >= 500 or response.status_code == 429:
                raise SendError(f"zalo oa: send failed: HTTP {response.status_code}")
            error = data.get("error") if isinstance(data, dict) else None
            if attempt == 1 and (response.status_code == 401 or error in EXPIRED_ERRORS):
                token = await self.refresh(token)
                continue
            if response.status_code == 200 and error == 0:
                return True
            hint = " (the user wrote more than 48 h ago)" if error == -230 else ""
            log.warning("zalo oa: send refused: HTTP %s, error %s: %s%s", response.status_code, error,
                        mask(str(data.get("message", "")) if isinstance(data, dict) else "")[:200], hint)
            return False
        return False


# ------------------------------------------------------------ events


@dataclass(frozen=True)
class OAEvent:
    name: str
    user_id: str
    text: str | None
    msg_id: str | None


def parse_event(payload: dict[str, Any]) -> OAEvent | None:
    """A user message or a follow, or None for events we do not answer (including our own echoes)."""
    name = str(payload.get("event_name") or "")
    if name == "follow":
        follower = payload.get("follower") if isinstance(payload.get("follower"), dict) else {}
        user_id = follower.get("id")
        return OAEvent(name, str(user_id), None, None) if user_id else None
    if name not in USER_MESSAGE_EVENTS:
        return None
    sender = payload.get("sender") if isinstance(payload.get("sender"), dict) else {}
    message = payload.get("message") if isinstance(payload.get("message"), dict) else {}
    if not sender.get("id"):
        return None
    text = message.get("text") if name == "user_send_text" and isinstance(message.get("text"), str) else None
    msg_id = message.get("msg_id")
    return OAEvent(name, str(sender["id"]), text, str(msg_id) if msg_id else None)


class ZaloOAAdapter:
    """The Zalo OA's shapes for `Pipeline`: MAC-signed events, user ids, plain-text messages."""

    channel = CHANNEL
    path = "/webhooks/zalo-oa"
    summary = "Zalo Official Account webhook (API v3)"

    def __init__(self, service: Service, config: ZaloOAConfig, client: httpx.AsyncClient | None = None) -> None:
        self.service = service
        self.config = config
        self.http = client or httpx.AsyncClient(timeout=httpx.Timeout(15.0, connect=5.0))
        # Several workers on one database share the pair there (one refresh for all), else the file.
        tokens = (SharedTokenStore(service.store, config.access_token, config.refresh_token)
                  if callable(getattr(service.store, "token_get", None))
                  else TokenStore(config.token_file, config.access_token, config.refresh_token))
        self.client = ZaloOAClient(config, tokens, self.http)

    def verify(self, headers: Mapping[str, str], body: bytes, payload: object) -> str | None:
        if not isinstance(payload, dict):
            return None  # nothing to check a MAC against: answered 400 as malformed, never processed
        return verify_event(self.config, body, payload, headers.get("x-zevent-signature"))

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
        if work.name == "follow":
            return await pipeline.deliver(key, work.user_id, [Outgoing(self.service.welcome().text)])
        message_id = f"zoa:{work.msg_id}" if work.msg_id else None
        return await pipeline.answer(key, Message(work.user_id, work.user_id, work.text, message_id),
                                     replaying=replaying)

    def render(self, handled: Handled) -> list[Outgoing]:
        return [Outgoing(chunk) for chunk in zalo_messages(handled.reply)]

    async def send(self, chat_id: str, message: Outgoing) -> bool:
        return await self.client.send_text(chat_id, message.text)

    async def ready(self) -> bool:
        return True

    async def close(self) -> None:
        await self.http.aclose()
