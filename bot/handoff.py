"""Handing a conversation to a staff member ("Hỏi cán bộ"), on every channel.

A citizen asks for a person (the Telegram button or /canbo, or "gặp cán bộ", "gap can bo", "muốn gặp
người thật", "hỏi cán bộ" typed on any channel); the bot offers it by itself after "not sure" twice in a
row and after a 👎. From then on `Handoff.intercept` (called by `Service.handle` before anything else)
keeps the bot silent for that chat: the citizen's messages go into the handoff (redacted, storage in
`storage/handoffs.py`), and only the first one is answered ("a person will answer", or, out of working
hours, when they will). Buttons pressed meanwhile (an old answer's, a topic's) go to them too, named by
their label (`pressed`); the channels send commands and stickers through `Service.handle` like typed
messages. Staff take it, reply and close it from the dashboard (`admin_api/handoff_api.py`), which calls
`take`, `reply` and `close` here; a reply goes out on the citizen's channel through that channel's
`Pipeline.send_staff_reply` (attached here by each Pipeline). After closing, the bot says it is back and
answers again.

Working hours and the out-of-hours text come from `bot.settings` (BHXH_HANDOFF_HOURS,
BHXH_HANDOFF_TIMEZONE, BHXH_HANDOFF_OUT_OF_HOURS_TEXT).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from bot import messages, signals
from retrieval.normalize import collapse_spaces, fold_accents
from storage.handoffs import Handoff as HandoffRecord

log = logging.getLogger(__name__)

DEFAULT_HOURS = "Mon-Fri 07:30-11:30,13:30-17:00"
DEFAULT_TIMEZONE = "Asia/Ho_Chi_Minh"
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DAY_NAMES_VI = ("thứ Hai", "thứ Ba", "thứ Tư", "thứ Năm", "thứ Sáu", "thứ Bảy", "Chủ nhật")
# Typed requests, compared without accents and punctuation; a message longer than REQUEST_MAX_WORDS is a
# question that mentions staff ("tôi đã hỏi cán bộ phường nhưng…"), not a request.
REQUEST_PHRASES = ("gap can bo", "hoi can bo", "gap nguoi that", "noi chuyen voi nguoi that", "gap nhan vien",
                   "noi chuyen voi can bo", "can bo tra loi", "gap tu van vien", "/canbo")
REQUEST_MAX_WORDS = 8
NOT_TEXT_NOTE = "(tin nhắn không phải chữ: ảnh, tệp hoặc nhãn dán)"  # what staff read for a photo, a sticker
BUTTON_NOTE = "(bấm nút: {label})"  # what staff read for a button pressed while they have the chat
BUTTON_NOTE_UNKNOWN = "(bấm một nút của trợ lý)"
CITIZEN_LEFT_NOTE = "(Người dân đã bỏ theo dõi hoặc rời cuộc trò chuyện: không gửi được tin nữa.)"  # for staff
OFFER_KEY = "handoff-offer:"  # + channel:user hash → why the bot last offered a person (conversation state)
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


# ---------------------------------------------------------------- working hours


@dataclass(frozen=True)
class WorkingHours:
    """Open spans per weekday (0 = Monday) in one time zone."""

    spans: tuple[tuple[tuple[dt.time, dt.time], ...], ...]  # seven entries, Monday first
    zone: ZoneInfo

    def open_at(self, moment: dt.datetime) -> bool:
        local = moment.astimezone(self.zone)
        return any(start <= local.time() < end for start, end in self.spans[local.weekday()])

    def next_opening(self, moment: dt.datetime) -> dt.datetime | None:
        """The next time staff are in (local time), None if the week has no open span."""
        local = moment.astimezone(self.zone)
        for ahead in range(8):
            day = local.date() + dt.timedelta(days=ahead)
            for start, _end in self.spans[day.weekday()]:
                opening = dt.datetime.combine(day, start, tzinfo=self.zone)
                if opening > local:
                    return opening
        return None

    def label(self) -> str:
        """The hours in Vietnamese, e.g. "thứ Hai–thứ Sáu, 7:30–11:30 và 13:30–17:00"."""
        groups: list[tuple[list[int], tuple[tuple[dt.time, dt.time], ...]]] = []
        for day, spans in enumerate(self.spans):
            if not spans:
                continue
            if groups and groups[-1][1] == spans and groups[-1][0][-1] == day - 1:
                groups[-1][0].append(day)
            else:
                groups.append(([day], spans))
        parts = []
        for days, spans in groups:
            named = DAY_NAMES_VI[days[0]] + (f"–{DAY_NAMES_VI[days[-1]]}" if len(days) > 1 else "")
            parts.append(named + ", " + " và ".join(f"{_clock(a)}–{_clock(b)}" for a, b in spans))
        return "; ".join(parts)


def _clock(t: dt.time) -> str:
    return f"{t.hour}:{t.minute:02d}"


def when_text(moment: dt.datetime) -> str:
    """A local time as the citizen reads it: "7:30 thứ Hai, 07/12"."""
    return f"{_clock(moment.time())} {DAY_NAMES_VI[moment.weekday()]}, {moment:%d/%m}"


def parse_hours(spec: str, zone: str = DEFAULT_TIMEZONE) -> WorkingHours:
    """"Mon-Fri 07:30-11:30,13:30-17:00; Sat 07:30-11:30" → WorkingHours. ValueError says what is wrong."""
    try:
        tz = ZoneInfo(zone)
    except (ValueError, KeyError, OSError) as exc:  # ZoneInfoNotFoundError is a KeyError
        raise ValueError(f"unknown time zone {zone!r}") from exc
    days: list[list[tuple[dt.time, dt.time]]] = [[] for _ in DAYS]
    for group in filter(None, (g.strip() for g in spec.split(";"))):
        day_part, _, span_part = group.partition(" ")
        first, _, last = day_part.lower().partition("-")
        if first not in DAYS or (last and last not in DAYS) or not span_part.strip():
            raise ValueError(f"{group!r}: expected e.g. 'Mon-Fri 07:30-11:30,13:30-17:00'")
        a, b = DAYS.index(first), DAYS.index(last or first)
        for span in span_part.replace(" ", "").split(","):
            match = re.fullmatch(r"(\d{1,2}):(\d{2})-(\d{1,2}):(\d{2})", span)
            if not match:
                raise ValueError(f"{span!r}: expected a span like 07:30-11:30")
            h1, m1, h2, m2 = map(int, match.groups())
            if not (h1 < 24 and h2 <= 24 and m1 < 60 and m2 < 60) or (h1, m1) >= (h2, m2):
                raise ValueError(f"{span!r}: the start must come before the end, within a day")
            end = dt.time(23, 59, 59, 999999) if h2 == 24 else dt.time(h2, m2)
            for day in range(a, b + 1) if a <= b else [*range(a, 7), *range(0, b + 1)]:
                days[day].append((dt.time(h1, m1), end))
    return WorkingHours(tuple(tuple(sorted(d)) for d in days), tz)


def is_request(text: object) -> bool:
    """Does this message ask for a person ("gặp cán bộ", "/canbo")?"""
    if not isinstance(text, str):
        return False
    folded = collapse_spaces(re.sub(r"[^\w/ ]+", " ", fold_accents(text.lower())))
    if not folded or len(folded.split()) > REQUEST_MAX_WORDS:
        return False
    return folded.startswith("/canbo") or any(f" {p} " in f" {folded} " for p in REQUEST_PHRASES)


# ---------------------------------------------------------------- sending staff replies


class StaffSender(Protocol):
    """What a channel's Pipeline gives the handoff (bot.channels.pipeline.Pipeline)."""

    channel: str

    async def send_staff_reply(self, chat_key: str, text: str, *, reply_to: str | None = None) -> Any:
        """Returns an object with `sent: bool` and `reason: str | None`."""

    async def staff_reply_allowed(self, chat_key: str) -> tuple[bool, str | None]: ...


@dataclass(frozen=True)
class StaffReplyResult:
    sent: bool
    reason: str | None  # why it was not sent, or a note for staff (e.g. a paid Zalo OA message)
    handoff: HandoffRecord | None


class HandoffError(Exception):
    """A staff action that cannot be done (unknown or closed handoff, empty reply): `status`, Vietnamese text."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status, self.detail = status, detail


class Handoff:
    """The handoff flow over one store; `clock` gives the current time (aware), for tests."""

    def __init__(self, store: Any, *, hours: WorkingHours | None = None, out_of_hours_text: str = "",
                 clock: Callable[[], dt.datetime] | None = None) -> None:
        self.store = store
        self.hours = hours or parse_hours(DEFAULT_HOURS)
        self.out_of_hours_text = out_of_hours_text
        self.clock = clock or (lambda: dt.datetime.now(dt.UTC))
        self.senders: dict[str, StaffSender] = {}  # channel → its pipeline (attached by Pipeline)
        self.enabled = all(callable(getattr(store, m, None)) for m in ("handoff_open", "handoff_active"))

    @classmethod
    def from_settings(cls, store: Any, settings: Any) -> Handoff:
        return cls(store, hours=parse_hours(settings.handoff_hours, settings.handoff_timezone),
                   out_of_hours_text=settings.handoff_out_of_hours_text)

    def attach(self, sender: StaffSender) -> None:
        self.senders[sender.channel] = sender

    def now(self) -> str:
        return self.clock().astimezone(dt.UTC).strftime(TIME_FORMAT)

    # ------------------------------------------------------------ the citizen's side

    def intercept(self, channel: str, user_id: str, chat_id: str | None, text: object,
                  message_id: str | None = None) -> str | None:
        """Before the bot answers: None = not a handoff matter (the bot answers); "" = stay silent (the
        message went to the staff member); other text = the bot's one line about the handoff."""
        if not self.enabled:
            return None
        try:
            if is_request(text):
                return self._request(channel, user_id, chat_id or user_id, str(text), message_id)
            body = text if isinstance(text, str) and text.strip() else NOT_TEXT_NOTE
            return "" if self._to_staff(channel, user_id, chat_id, body, message_id) else None
        except Exception:  # the database is down: the bot answers as usual rather than going silent
            log.exception("handoff: could not check or record a handoff; answering as usual")
            return None

    def pressed(self, channel: str, user_id: str, chat_id: str | None, label: str | None) -> bool:
        """A button pressed (an old answer's entry, 👍/👎, a topic, an article…): while a staff member has
        the chat it goes to them as a message naming the button, and the bot does nothing else (True);
        False when no handoff is open, and the button works as usual."""
        if not self.enabled:
            return False
        note = BUTTON_NOTE.format(label=label.strip()) if label and label.strip() else BUTTON_NOTE_UNKNOWN
        try:
            return self._to_staff(channel, user_id, chat_id, note, None)
        except Exception:  # the database is down: the button works as usual
            log.exception("handoff: could not check or record a handoff; the button works as usual")
            return False

    def _to_staff(self, channel: str, user_id: str, chat_id: str | None, body: str, message_id: str | None) -> bool:
        """Into the open handoff of this chat, if there is one."""
        active = self.store.handoff_active(channel, user_id)
        if active is None:
            return False
        self.store.handoff_citizen_message(active.id, body, self.now(), message_id=message_id, chat_id=chat_id)
        return True

    def _request(self, channel: str, user_id: str, chat_id: str, text: str, message_id: str | None) -> str:
        offered = self.store.load_state(self._offer_key(channel, user_id)).get("reason")
        recent = self.store.recent_questions(channel, user_id, 2)
        if offered in ("not_sure", "downvote"):
            reason = offered
        elif len(recent) == 2 and all(kind == "not_sure" for kind, _ in recent):
            reason = "not_sure"
        else:
            reason = "asked"
        topic = next((t for _, t in recent if t), None)
        handoff, created = self.store.handoff_open(channel=channel, user_id=user_id, chat_id=chat_id, reason=reason,
                                                   topic=topic, now=self.now(), text=text, message_id=message_id)
        self.store.clear_state(self._offer_key(channel, user_id))
        if not created:
            return messages.HANDOFF_ALREADY
        signals.note(self.store, signals.HANDOFF, channel, user_id)  # a sign the bot did not help (staff pages)
        reply = self.acknowledgement()
        self.store.handoff_bot_message(handoff.id, reply, self.now())
        return reply

    def acknowledgement(self) -> str:
        """What the citizen is told when the handoff starts: now in working hours, else when."""
        moment = self.clock()
        if self.hours.open_at(moment):
            return messages.HANDOFF_WAITING
        opening = self.hours.next_opening(moment)
        when = when_text(opening) if opening is not None else "giờ làm việc tiếp theo"
        template = self.out_of_hours_text or messages.HANDOFF_OUT_OF_HOURS
        return template.format(next=when, hours=self.hours.label())

    def offer(self, channel: str, user_id: str, reason: str) -> str:
        """Offer a person ("not_sure" twice, "downvote"): remembered, so a request that follows says why."""
        if self.enabled:
            try:
                self.store.save_state(self._offer_key(channel, user_id), {"reason": reason})
            except Exception:
                log.exception("handoff: could not remember an offer")
        return messages.HANDOFF_OFFER

    def offer_after(self, channel: str, user_id: str, kind: str) -> str | None:
        """After a logged reply: the offer line if this was the second "not sure" in a row."""
        if kind != "not_sure" or not self.enabled:
            return None
        try:
            recent = self.store.recent_questions(channel, user_id, 2)
        except Exception:
            log.exception("handoff: could not read the recent questions")
            return None
        if len(recent) == 2 and all(k == "not_sure" for k, _ in recent):
            return self.offer(channel, user_id, "not_sure")
        return None

    def _offer_key(self, channel: str, user_id: str) -> str:
        return f"{OFFER_KEY}{channel}:{self.store.hash_user(channel, user_id)}"

    def citizen_left(self, channel: str, user_id: str) -> bool:
        """The citizen left the chat (a Zalo OA unfollow): an open handoff is closed, nothing is sent.
        True if one was open."""
        try:
            active = self.store.handoff_active(channel, user_id) if self.enabled else None
            if active is None:
                return False
            self.store.handoff_bot_message(active.id, CITIZEN_LEFT_NOTE, self.now())
            return self.store.handoff_close(active.id, "citizen", self.now()) is not None
        except Exception:
            log.exception("handoff: could not close the handoff of a citizen who left")
            return False

    # ------------------------------------------------------------ the staff side (async: from the staff API)

    async def take(self, handoff_id: int, staff: str) -> HandoffRecord:
        taken = await asyncio.to_thread(self.store.handoff_take, handoff_id, staff, self.now())
        if taken is None:
            raise HandoffError(404, "Không có cuộc trò chuyện đang mở với mã này.")
        return taken

    async def reply(self, handoff_id: int, staff: str, text: str) -> StaffReplyResult:
        """Send a staff reply on the citizen's channel and keep it (with how it went) in the handoff.
        Replying also takes the handoff if nobody owns it yet."""
        text = text.strip()
        if not text:
            raise HandoffError(422, "Nội dung trả lời đang trống.")
        current = await asyncio.to_thread(self.store.handoff_get, handoff_id)
        if current is None or not current.open:
            raise HandoffError(404, "Không có cuộc trò chuyện đang mở với mã này.")
        if current.owner != staff:
            current = await self.take(handoff_id, staff)
        sent, reason = await self._send(current, messages.staff_reply(text))
        delivery = "sent" if sent else f"not sent: {reason or 'unknown'}"
        if sent and reason:
            delivery = f"sent: {reason}"
        await asyncio.to_thread(self.store.handoff_staff_message, handoff_id, staff, text, self.now(), delivery)
        return StaffReplyResult(sent, reason, await asyncio.to_thread(self.store.handoff_get, handoff_id))

    async def close(self, handoff_id: int, staff: str) -> StaffReplyResult:
        """Close: the bot answers the chat again, and tells the citizen so."""
        before = await asyncio.to_thread(self.store.handoff_close, handoff_id, staff, self.now())
        if before is None:
            raise HandoffError(404, "Không có cuộc trò chuyện đang mở với mã này.")
        sent, reason = await self._send(before, messages.HANDOFF_CLOSED)
        await asyncio.to_thread(self.store.handoff_bot_message, handoff_id, messages.HANDOFF_CLOSED, self.now())
        return StaffReplyResult(sent, reason, await asyncio.to_thread(self.store.handoff_get, handoff_id))

    async def can_reply(self, handoff_id: int) -> tuple[bool, str | None]:
        """Can staff reply to this conversation now (Zalo OA's window), and a note for them if any."""
        handoff = await asyncio.to_thread(self.store.handoff_get, handoff_id)
        if handoff is None or not handoff.open:
            raise HandoffError(404, "Không có cuộc trò chuyện đang mở với mã này.")
        sender = self.senders.get(handoff.channel)
        if handoff.channel == "web" or sender is None or not handoff.chat_id:
            return (handoff.channel == "web", None if handoff.channel == "web" else self._no_sender(handoff))
        try:
            return await sender.staff_reply_allowed(handoff.chat_id)
        except Exception as exc:  # the check itself failed: sending will say what happens
            log.exception("handoff: could not check whether a staff reply may be sent")
            return True, f"Chưa kiểm tra được ({type(exc).__name__})."

    @staticmethod
    def _no_sender(handoff: HandoffRecord) -> str:
        return f"Kênh {handoff.channel} chưa được cấu hình trên máy chủ này nên không gửi được."

    async def _send(self, handoff: HandoffRecord, text: str) -> tuple[bool, str | None]:
        """(sent, reason). The web chat has no pipeline: its page fetches the staff messages itself."""
        if handoff.channel == "web":
            return True, None
        sender = self.senders.get(handoff.channel)
        if sender is None or not handoff.chat_id:
            return False, self._no_sender(handoff)
        try:
            outcome = await sender.send_staff_reply(handoff.chat_id, text, reply_to=handoff.last_message_id)
        except Exception as exc:  # never lose the staff member's text: it is kept with the reason
            log.exception("handoff: a staff reply could not be sent")
            return False, f"Lỗi khi gửi: {type(exc).__name__}"
        return bool(outcome.sent), outcome.reason
