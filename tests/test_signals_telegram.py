"""A 👎 on Telegram offers the optional reasons; the one tapped is stored with the signal (bot/signals.py)."""

from __future__ import annotations

import time

from fakes.telegram import callback_update, text_update

from bot import signals
from tests.test_telegram import ANSWER_Q, buttons, fake, tg  # noqa: F401 (fixtures)


def answered_message(call: object) -> dict[str, object]:
    """The bot's answer as Telegram sends it back in a button's callback (with its keyboard)."""
    return {"message_id": 556, "date": int(time.time()), "chat": {"id": 4242, "type": "private"}, "text": "…",
            "reply_markup": call.params["reply_markup"]}  # type: ignore[attr-defined]


def test_a_thumbs_down_offers_reasons_and_keeps_the_one_tapped(tg):  # noqa: F811
    tg.post(text_update(ANSWER_Q))
    answer = tg.fake.wait_sent(1)[0]
    message, down = answered_message(answer), next(d for _, d in buttons(answer) if d.startswith("f:-"))
    tg.post(callback_update(down, message=message))
    (edit,) = tg.fake.sent("editMessageReplyMarkup")
    offered = [(label, data) for label, data in buttons(edit) if data.startswith("f:")]
    assert [label for label, _ in offered] == list(signals.DOWN_REASONS)
    tapped = offered[2][1]
    message["reply_markup"] = edit.params["reply_markup"]
    tg.post(callback_update(tapped, message=message))
    last = tg.fake.sent("editMessageReplyMarkup")[-1]
    assert not [d for _, d in buttons(last) if d.startswith("f:")]
    rows = tg.service.store.db.execute("SELECT kind, question_id, detail FROM signals ORDER BY id").fetchall()
    qid = int(down.split(":")[2])
    assert rows == [("thumbs_down", qid, None), ("thumbs_down", qid, signals.DOWN_REASONS[2])]
    assert [r["value"] for r in tg.service.store.db["feedback"].rows] == [-1]  # one vote, its reason added
    assert tg.post(callback_update(f"f:r:{qid}:99", message=message)).status_code == 200  # unknown reason
    assert len(tg.service.store.db.execute("SELECT id FROM signals").fetchall()) == 2
