"""👎 in words, for Zalo: the Bot Platform has no buttons at all, and on the Official Account a citizen may
type rather than tap.

After an answer, a whole message "👎", "sai", "sai rồi", "chưa đúng", "không phải"… (accents optional:
`signals.is_whole_negation`) is a 👎 on that answer, recorded by `Service.feedback` like a button's (the
feedback row and the THUMBS_DOWN signal; such a message is not a question, so it is not logged as one and
not also counted as a NEGATION). The reply thanks, lists `signals.DOWN_REASONS` numbered (the web chat's
and Telegram's reasons) and offers a person; a number typed within REASON_SECONDS records that reason, as a
reason button does elsewhere. The pending question is kept in the store under the user's own key
("vote:<channel>:<user hash>"), apart from the Service's pending choices; any other message forgets it and
goes on as usual. A message about no recent answer (a menu, a decline, nothing within
signals.REACTION_SECONDS) is left to the Service, which logs it and its NEGATION as before.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import time
from dataclasses import dataclass
from typing import Any

from bot import messages, signals
from bot.conversation import parse_pick
from bot.field_kit import staff_holds

log = logging.getLogger(__name__)

REASON_SECONDS = 300.0  # a number typed this soon after the 👎 is its reason
_THUMBS_DOWN = re.compile(r"(\s*👎[\U0001F3FB-\U0001F3FF]?\s*)+")  # skin tones allowed

# Sentences of this flow (citizen-facing).
REASONS_ASK = "Câu trả lời chưa đúng ở điểm nào? Bạn gõ số để cho biết (không bắt buộc):"
REASON_THANKS = "Cảm ơn bạn đã cho biết lý do. Cán bộ sẽ xem lại câu trả lời này."
REASON_RANGE = "Bạn gõ một số từ 1 đến {n} để cho biết lý do, hoặc cứ gõ câu hỏi tiếp theo nhé."
DOWN_HINT = "👉 Chưa đúng ý bạn? Gõ «sai» để báo."


@dataclass(frozen=True)
class VoteTurn:
    """What to send back: the text, and the reasons it offers (the Zalo OA shows them as buttons too)."""

    text: str
    reasons: tuple[str, ...] = ()
    question_id: int | None = None


def is_down_vote(text: object) -> bool:
    """A whole message that rates the last answer as wrong: "👎" or a short negation."""
    return isinstance(text, str) and (bool(_THUMBS_DOWN.fullmatch(text)) or signals.is_whole_negation(text))


def reasons_text() -> str:
    return REASONS_ASK + "\n" + "\n".join(f"{n}. {reason}" for n, reason in enumerate(signals.DOWN_REASONS, start=1))


class TypedVotes:
    """The typed 👎 and its numbered reasons on one channel (see the module docstring)."""

    def __init__(self, service: Any, channel: str) -> None:
        self.service, self.store, self.channel = service, service.store, channel

    def _key(self, user_id: str) -> str:
        return f"vote:{self.channel}:{self.store.hash_user(self.channel, user_id)}"

    def turn(self, user_id: str, text: object, now: float | None = None) -> VoteTurn | None:
        """The reply to a typed 👎 or to the number of its reason; None when the message is for the Service
        (or for the staff member who has the chat)."""
        if not isinstance(text, str) or staff_holds(self.service, self.channel, user_id):
            return None
        now = time.time() if now is None else now
        key = self._key(user_id)
        pending = self.store.load_state(key)
        number = parse_pick(text)
        if pending and number is not None:
            if now - float(pending.get("at") or 0) <= REASON_SECONDS:
                return self.reason(user_id, number) or VoteTurn(REASON_RANGE.format(n=len(signals.DOWN_REASONS)))
            self.store.clear_state(key)
            return None  # too late: the number is for whatever else it may pick
        answer = self._last_answer(user_id, now) if is_down_vote(text) else None
        if answer is not None:
            return self.down(user_id, answer[0], answer[1], now)
        if pending:
            self.store.clear_state(key)
        return None  # not a 👎, or about no recent answer: the Service logs it (and its NEGATION after a menu)

    def down(self, user_id: str, question_id: int | None, entry_id: str | None, now: float | None = None) -> VoteTurn:
        """Record a 👎 on an answer (typed, or the OA's button) and ask why; remembers the answer for the reason.
        A second 👎 on the same answer while its reason is awaited only asks again."""
        now = time.time() if now is None else now
        key = self._key(user_id)
        pending = self.store.load_state(key)
        same = bool(pending) and pending.get("question_id") == question_id and pending.get("entry_id") == entry_id \
            and now - float(pending.get("at") or 0) <= REASON_SECONDS
        if not same:
            self.service.feedback(self.channel, user_id, -1, entry_id=entry_id, question_id=question_id)
        self.store.save_state(key, {"question_id": question_id, "entry_id": entry_id, "at": now})
        offer = self.service.handoff.offer(self.channel, user_id, "downvote")  # a person may help, as after a button
        text = "\n\n".join(p for p in (messages.FEEDBACK_DOWN, reasons_text(), offer) if p)
        return VoteTurn(text, signals.DOWN_REASONS, question_id)

    def reason(self, user_id: str, number: int, question_id: int | None = None) -> VoteTurn | None:
        """Reason `number` (1-based) for the awaited 👎 (or for `question_id`, a reason button's, when none is
        awaited); None if the number is out of range."""
        if not 1 <= number <= len(signals.DOWN_REASONS):
            return None
        key = self._key(user_id)
        pending = self.store.load_state(key)
        entry_id = pending.get("entry_id") if pending else None
        if pending and (question_id is None or pending.get("question_id") == question_id):
            question_id = pending.get("question_id")
        elif question_id is None:
            return None
        self.store.clear_state(key)
        self.service.feedback(self.channel, user_id, -1, entry_id=entry_id, question_id=question_id,
                              reason=signals.DOWN_REASONS[number - 1])
        return VoteTurn(REASON_THANKS)

    def _last_answer(self, user_id: str, now: float) -> tuple[int | None, str] | None:
        """(logged question id or None, entry id) of the answer this user was shown last, if it came within
        signals.REACTION_SECONDS and no menu or calculator step is pending."""
        state = self.service.conversation(self.channel, user_id)
        last = state.last
        if state.choices or state.calc is not None or last is None or not last.entry_id \
                or not 0 <= now - last.at <= signals.REACTION_SECONDS:
            return None
        logged = signals.recent_question(self.store, self.channel, user_id, None,
                                         dt.datetime.fromtimestamp(now, dt.UTC))
        # A pick from a list or a button is answered without a log row: the vote then names the entry alone.
        question_id = logged["id"] if logged is not None and logged.get("entry_id") == last.entry_id else None
        return question_id, last.entry_id
