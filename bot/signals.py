"""Signals that a citizen did not get what they needed, logged for every channel (issue 18 item 1).

One row per signal in the `signals` table (`Store.log_signal`), pointing at the logged question it is
about: the answer the citizen reacted to, not the reaction. Kinds:

- THUMBS_DOWN: a 👎 on an answer (optional reason), from `Service.feedback`: a button (web, Telegram, Zalo OA)
  or, on Zalo, "👎" / "sai" / "chưa đúng" typed as the whole message (bot/typed_vote.py; such a message is
  then not a question, so it is not also a NEGATION).
- REPHRASE: a new question within REPHRASE_SECONDS of an answer, on the same entry or topic or with
  similar words (`looks_like_rephrase`): the answer did not satisfy.
- NEGATION: a short "không phải / sai rồi / không đúng" reply after an answer (`is_negation`).
- NONE_OF_THESE: "Không phải các câu trên" picked from offered choices (the conversation flow calls `note`).
- HANDOFF: a request for a staff member after an answer (the handoff flow calls `note`).
- OFF_TOPIC: the question was declined as out of scope (it may have been declined wrongly).
- MENU_PICK: a choice or topic-menu button picked, or "1/2/3" typed; `entry_id` is the entry picked,
  which tells staff which entry the question before it wanted.

Detection only reads the user's previous logged question (`Store.last_question`: one indexed read per
message) and writes at most one or two rows; nothing here raises into the bot.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from typing import Any

from bot.conversation import parse_pick
from bot.reply import Reply
from retrieval.normalize import fold_accents, tokenize

log = logging.getLogger(__name__)

THUMBS_DOWN = "thumbs_down"
REPHRASE = "rephrase"
NEGATION = "negation"
NONE_OF_THESE = "none_of_these"
HANDOFF = "handoff"
OFF_TOPIC = "off_topic"
MENU_PICK = "menu_pick"
KINDS = (THUMBS_DOWN, NEGATION, NONE_OF_THESE, REPHRASE, HANDOFF, OFF_TOPIC, MENU_PICK)

REPHRASE_SECONDS = 60.0  # a new question this soon after an answer, on the same matter, is a rephrase
REACTION_SECONDS = 600.0  # "không phải", a handoff request, a pick: about a question at most this old
REPHRASE_JACCARD = 0.3  # folded word sets at least this similar count as the same matter
DETAIL_CHARS = 300
# What a 👎 may add, one tap (Telegram buttons; the web chat shows the same four)
DOWN_REASONS = ("Không đúng câu tôi hỏi", "Thông tin chưa đúng", "Khó hiểu", "Thiếu thông tin")

# Short replies that say the answer was wrong, accent-folded and lower-cased; optional politeness after.
_NEGATION = re.compile(
    r"(khong phai|ko phai|k phai|hok phai|khong dung|ko dung|k dung|chua dung|sai roi|sai|nham roi|nham|"
    r"khong lien quan|ko lien quan|khong phai cai (do|nay)|toi hoi cai khac|minh hoi cai khac|em hoi cai khac)"
    r"(\s+(roi|a|dau|nhe|ma|ban|ad|admin|oi|het|ca|luon))*")
_NEGATION_LEAD = re.compile(r"(khong phai|ko phai|sai roi|khong dung|chua dung)\s*[,.!;:-]")


def is_negation(text: str) -> bool:
    """"Không phải", "sai rồi ạ", "không đúng!" or a message opening with one of them and a comma
    ("không phải, tôi hỏi về…"); not "không phải đóng BHXH à?" (there it means "not required")."""
    stripped = fold_accents(text).lower().strip()
    return is_whole_negation(text) or bool(_NEGATION_LEAD.match(stripped))


def is_whole_negation(text: str) -> bool:
    """The whole message says the answer was wrong ("sai", "sai rồi ạ", "chưa đúng", "không phải"): on Zalo it is
    a 👎 (bot/typed_vote.py), not a question; "không phải, tôi hỏi về…" is still a question (and a NEGATION)."""
    return bool(_NEGATION.fullmatch(" ".join(tokenize(fold_accents(text)))))


def _words(text: str) -> set[str]:
    return {w for w in tokenize(fold_accents(text or "")) if len(w) > 1}


def looks_like_rephrase(previous: dict[str, Any], reply: Reply) -> bool:
    """The new question is about the same matter as the previous one: the same entry or topic, or
    folded word sets with Jaccard >= REPHRASE_JACCARD."""
    if reply.entry_id and reply.entry_id == previous.get("entry_id"):
        return True
    if reply.topic and reply.topic == previous.get("topic"):
        return True
    a, b = _words(previous.get("normalized") or ""), _words(reply.normalized)
    return bool(a and b) and len(a & b) / len(a | b) >= REPHRASE_JACCARD


def _age_seconds(ts: str | None, now: dt.datetime) -> float:
    """Seconds since a stored time (`utcnow()` text); infinite if unreadable."""
    try:
        moment = dt.datetime.fromisoformat((ts or "").replace("Z", "+00:00"))
    except ValueError:
        return float("inf")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return (now - moment).total_seconds()


def _log(store: Any, kind: str, channel: str, user_id: str, question_id: int | None, entry_id: str | None,
         detail: str | None = None) -> None:
    try:
        store.log_signal(channel=channel, user_id=user_id, kind=kind, question_id=question_id, entry_id=entry_id,
                         detail=detail)
    except Exception:  # a signal is never worth a failed reply
        log.exception("could not log a %s signal", kind)


def recent_question(store: Any, channel: str, user_id: str, before_id: int | None, now: dt.datetime,
                    seconds: float = REACTION_SECONDS) -> dict[str, Any] | None:
    """The user's latest logged question (before `before_id`) if asked within `seconds`."""
    try:
        previous = store.last_question(channel, user_id, before_id=before_id)
    except Exception:
        log.exception("could not read the previous question")
        return None
    if previous is None or _age_seconds(previous.get("ts"), now) > seconds:
        return None
    return previous


def observe(store: Any, channel: str, user_id: str, text: object, reply: Reply, question_id: int | None,
            now: dt.datetime | None = None) -> list[str]:
    """After `Service.handle` logged question `question_id`: log what it says about the previous answer
    (rephrase, negation, typed pick) and an off-topic decline. Returns the kinds logged."""
    now = now or dt.datetime.now(dt.UTC)
    found: list[str] = []
    if reply.kind == "out_of_scope" and question_id is not None:
        _log(store, OFF_TOPIC, channel, user_id, question_id, None)
        found.append(OFF_TOPIC)
    if question_id is None or not isinstance(text, str):
        return found  # the log write was queued: no id to point from
    previous = recent_question(store, channel, user_id, question_id, now)
    if previous is None:
        return found
    pick = parse_pick(text)
    if pick is not None and previous.get("outcome") == "choices" and reply.answered:
        _log(store, MENU_PICK, channel, user_id, previous["id"], reply.entry_id, "typed")
        found.append(MENU_PICK)
    elif previous.get("outcome") in ("answered", "choices") and is_negation(text):
        _log(store, NEGATION, channel, user_id, previous["id"], previous.get("entry_id"), f"q{question_id}")
        found.append(NEGATION)
    elif (previous.get("outcome") == "answered" and pick is None
          and reply.kind not in ("smalltalk", "invalid", "calculator")
          and _age_seconds(previous.get("ts"), now) <= REPHRASE_SECONDS and looks_like_rephrase(previous, reply)):
        _log(store, REPHRASE, channel, user_id, previous["id"], previous.get("entry_id"), f"q{question_id}")
        found.append(REPHRASE)
    return found


def note(store: Any, kind: str, channel: str, user_id: str, *, question_id: int | None = None,
         entry_id: str | None = None, detail: str | None = None, now: dt.datetime | None = None) -> None:
    """Log a signal another flow noticed (none-of-these, handoff, a button pick). Without `question_id`
    it is about the user's latest question if asked within REACTION_SECONDS, else about none."""
    if question_id is None:
        previous = recent_question(store, channel, user_id, None, now or dt.datetime.now(dt.UTC))
        if previous is not None:
            question_id = previous["id"]
            if kind != MENU_PICK:
                entry_id = entry_id or previous.get("entry_id")
    _log(store, kind, channel, user_id, question_id, entry_id, detail[:DETAIL_CHARS] if detail else None)


def thumbs_down(store: Any, channel: str, user_id: str, *, question_id: int | None, entry_id: str | None,
                reason: str | None = None) -> None:
    """A 👎 (already recorded as feedback), with the citizen's optional reason."""
    _log(store, THUMBS_DOWN, channel, user_id, question_id, entry_id,
         reason.strip()[:DETAIL_CHARS] if reason and reason.strip() else None)
