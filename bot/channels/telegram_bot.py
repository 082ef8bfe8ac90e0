"""Telegram channel with python-telegram-bot v22.

A real PTB `Application` runs the handlers in both modes:
- long polling on a laptop: `run_telegram_polling()` (the `bhxh telegram` command);
- a webhook: `TelegramAdapter` is this channel's adapter for `bot.channels.pipeline` (the route is
  admin_api.webhooks): it checks the X-Telegram-Bot-Api-Secret-Token header, reads the update,
  says what the inbox keeps (`inbox_payload`, redacted) and hands the update to the Application.
Typed questions are answered by `Pipeline.answer` (Service, render, send with retries), like every
channel; commands, topic lists and buttons are Telegram's own.

Buttons carry short callback data (Telegram allows 64 bytes):
  e:<entry_id>               show that entry (choices, related questions, topic lists)
  d:<entry_id>               the details behind an answer's short form ("Xem chi tiết")
  t:<topic>[:<page>]         a topic's questions, a page at a time (the /start menu, /chude: bot.field_kit)
  l:<doc-slug>:<article>     an article's text (/luat, a typed citation: bot.field_kit)
  f:<+|->:<question_id>:<entry_id>   👍/👎 on an answer
  c:start | c:g:<group> | c:m:<months>   the guided voluntary-contribution calculator (/tinh)
  h:ask                      hand the chat to a staff member (as /canbo; offered on "not sure" and after 👎)
Old buttons (entries removed since, data from older versions) get a polite reply.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import sys
from collections.abc import Awaitable, Callable, Mapping
from contextlib import suppress
from dataclasses import replace
from typing import Any

from telegram import (
    BotCommand,
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    LinkPreviewOptions,
    Update,
)
from telegram.constants import ParseMode
from telegram.error import BadRequest, NetworkError, RetryAfter, TelegramError, TimedOut
from telegram.ext import (
    AIORateLimiter,
    Application,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from bot import calc_flow, messages, signals
from bot.channel_settings import TelegramConfig
from bot.channels import in_thread, mask
from bot.channels.format import BUTTON_LABEL_LIMIT, TELEGRAM_LIMIT, button_label, has_details, telegram_messages
from bot.channels.pipeline import Delivery, Malformed, Message, Outgoing, Pipeline, SendError
from bot.conversation import NONE_OF_THESE_ID
from bot.field_kit import FieldKit, Screen, html_messages, log_law_lookup, source_url, staff_holds
from bot.reply import Reply
from bot.service import Handled, Service
from bot.settings import Settings, load_settings
from knowledge.topics import MENU_ORDER, TOPICS
from retrieval.normalize import redact_pii

log = logging.getLogger(__name__)

CHANNEL = "telegram"
ALLOWED_UPDATES = ["message", "callback_query"]
CALLBACK_LIMIT = 64  # bytes
HANDOFF_DATA = "h:ask"  # the "🙋 Hỏi cán bộ" button (bot/handoff.py)

START_TEXT = ("Xin chào! Tôi là <b>Trợ lý BHXH</b>. Tôi giải đáp về bảo hiểm xã hội, bảo hiểm y tế và "
              "bảo hiểm thất nghiệp theo quy định hiện hành.\n\n"
              "Bạn cứ gõ câu hỏi như khi nói chuyện, có dấu hay không dấu đều được, ví dụ: "
              "<i>rút BHXH 1 lần được không?</i>\n\nHoặc chọn một chủ đề:")


def _callback(data: str) -> str | None:
    return data if len(data.encode()) <= CALLBACK_LIMIT else None


Rows = list[tuple[tuple[str, str], ...]]  # rows of (label, callback data): what Outgoing.buttons holds
Handler = Callable[[Update, ContextTypes.DEFAULT_TYPE], Awaitable[None]]


def _rows(buttons: list[tuple[str, str]]) -> Rows:
    """One button per row, labels shortened, data over Telegram's 64 bytes dropped."""
    return [((button_label(label), data),) for label, data in buttons if _callback(data)]


def markup(rows: Rows | tuple[tuple[tuple[str, str], ...], ...]) -> InlineKeyboardMarkup | None:
    return InlineKeyboardMarkup([[InlineKeyboardButton(label, callback_data=data) for label, data in row]
                                 for row in rows]) if rows else None


def group_rows() -> Rows:
    return _rows([(calc_flow.GROUP_BUTTONS[g], f"c:g:{g}") for g in calc_flow.GROUPS])


def period_rows() -> Rows:
    return _rows([(calc_flow.PERIOD_BUTTONS[m], f"c:m:{m}") for m in calc_flow.PERIODS])


class TelegramBot:
    """The handlers: one per intent, state only in Service/Store. Typed questions and replies go
    through `pipeline` (set by `TelegramAdapter`)."""

    def __init__(self, service: Service) -> None:
        self.service = service
        self.pipeline: Pipeline | None = None
        self.inbox_keys = False  # webhook mode: replies are recorded with the update's inbox row
        self.replaying: set[str] = set()  # inbox keys being replayed after a restart
        self.failed: set[str] = set()  # inbox keys whose reply could not be sent (left pending)
        self.kit = FieldKit(lambda: self.service.engine.kb)  # /chude, /luat and typed citations

    def install(self, application: Application) -> None:
        staff = self.unless_staff_holds  # while a staff member has the chat, a command is a message to them
        application.add_handler(CommandHandler("start", staff(self.start)))
        application.add_handler(CommandHandler("help", staff(self.help)))
        application.add_handler(CommandHandler("tinh", staff(self.calc_start)))
        application.add_handler(CommandHandler("chude", staff(self.topics)))
        application.add_handler(CommandHandler("luat", staff(self.law)))
        application.add_handler(CommandHandler("canbo", self.text))  # a person (bot/handoff.py reads "/canbo")
        application.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND & filters.UpdateType.MESSAGE,
                                               self.text))
        application.add_handler(MessageHandler(filters.UpdateType.MESSAGE & filters.ChatType.PRIVATE & ~filters.TEXT,
                                               staff(self.not_text)))
        application.add_handler(CallbackQueryHandler(self.button))
        application.add_error_handler(self.error)

    def unless_staff_holds(self, handler: Handler) -> Handler:
        """`handler`, except while a staff member has the chat (bot/handoff.py): then the message goes to
        them through Service.handle like a typed one, and the bot stays silent."""
        async def guarded(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
            message, user = update.effective_message, update.effective_user
            if message is None or user is None or self.pipeline is None or not await in_thread(
                    staff_holds, self.service, CHANNEL, str(user.id)):
                await handler(update, context)
                return
            await self.pipeline.answer(None, Message(str(message.chat_id), str(user.id), message.text, None))
        return guarded

    # ------------------------------------------------------------ keyboards

    def keyboard(self, reply: Reply, question_id: int | None) -> InlineKeyboardMarkup | None:
        return markup(self.keyboard_rows(reply, question_id))

    def keyboard_rows(self, reply: Reply, question_id: int | None) -> Rows:
        rows = _rows([(f"{n}. {c.question}", f"e:{c.entry_id}") for n, c in enumerate(reply.choices, start=1)])
        if reply.choices:  # the way out of a menu that does not hold the question (Service.choose handles the id)
            rows += _rows([(messages.NONE_OF_THESE, f"e:{NONE_OF_THESE_ID}")])
        if has_details(reply) and reply.entry_id:  # right under the short answer
            rows += _rows([(messages.DETAILS_BUTTON, f"d:{reply.entry_id}")])
        if reply.kind == "not_sure":  # a person may help where the bot cannot (bot/handoff.py)
            rows += _rows([(messages.HANDOFF_BUTTON, HANDOFF_DATA)])
        if reply.show_topics:
            rows += self.topic_rows()  # the topics as buttons, not just as a list
        if reply.calc_step == "group":  # the typed flow ("tính"): its steps as buttons too
            rows += group_rows()
        elif reply.calc_step == "period":
            rows += period_rows()
        if reply.calculator == "voluntary_contribution":
            rows += _rows([("🧮 Tính tiền đóng BHXH tự nguyện", "c:start")])
        if reply.answered and reply.entry_id:
            rows += _rows([(f"🔎 {c.question}", f"e:{c.entry_id}") for c in reply.related])
            qid = "" if question_id is None else str(question_id)
            up, down = f"f:+:{qid}:{reply.entry_id}", f"f:-:{qid}:{reply.entry_id}"
            if not _callback(up):
                up, down = f"f:+:{qid}:", f"f:-:{qid}:"
            rows.append((("👍 Hữu ích", up), ("👎 Chưa đúng", down)))
        return rows

    @staticmethod
    def topic_rows() -> Rows:
        return _rows([(TOPICS[t], f"t:{t}") for t in MENU_ORDER])

    # ------------------------------------------------------------ rendering and sending

    def render(self, handled: Handled) -> list[Outgoing]:
        """HTML messages under the limit; the keyboard goes with the last one."""
        reply = handled.reply
        chunks = telegram_messages(reply, source_url=lambda s: source_url(s, self.kit.base_url))
        rows = tuple(self.keyboard_rows(reply, handled.question_id))
        return [Outgoing(chunk, html=True, buttons=rows if n == len(chunks) else ())
                for n, chunk in enumerate(chunks, start=1)]

    async def send_reply(self, chat_id: int, reply: Reply) -> None:
        """A reply that is not an answer to a typed question (/help, a pressed entry button)."""
        assert self.pipeline is not None
        await self.pipeline.deliver(None, str(chat_id), self.render(Handled(reply, None)))

    async def say(self, chat_id: int, text: str, *, html: bool = False, rows: Rows | None = None) -> None:
        """One message of Telegram's own (menus, the calculator's button steps), with the pipeline's retries."""
        assert self.pipeline is not None
        await self.pipeline.deliver(None, str(chat_id), [Outgoing(text, html, tuple(rows or ()))])

    # ------------------------------------------------------------ handlers

    async def start(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        if update.effective_chat is None:
            return
        await self.say(update.effective_chat.id, START_TEXT, html=True, rows=self.topic_rows())

    async def help(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        if update.effective_chat is None:
            return
        welcome = self.service.welcome()
        text = (welcome.text + "\n\nLệnh: /start — chọn chủ đề; /chude — mọi câu hỏi theo chủ đề; "
                "/luat — tra điều luật (ví dụ: /luat Điều 70); /tinh — tính tiền đóng BHXH tự nguyện; "
                "/help — hướng dẫn.")
        await self.send_reply(update.effective_chat.id, replace(welcome, text=text))

    async def text(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message, user = update.effective_message, update.effective_user
        if message is None or user is None or message.text is None or self.pipeline is None:
            return
        # A typed "chủ đề" or a citation on its own ("khoản 2 điều 31") is a field-kit command, not a question.
        screen = await in_thread(self.field_kit_command, str(user.id), message.text)
        if screen is not None:
            await self.show(message.chat_id, screen)
            return
        # Redeliveries carry the same (chat, message) pair; update ids may restart after a quiet week.
        key = delivery_key(update)
        answered = await self.pipeline.answer(key if self.inbox_keys else None,
                                              Message(str(message.chat_id), str(user.id), message.text, key),
                                              replaying=key in self.replaying)
        if not answered:
            self.failed.add(key)

    async def not_text(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        if update.effective_chat is not None:
            await self.say(update.effective_chat.id, messages.NOT_TEXT)

    async def button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        if query is None:
            return
        chat_id = query.message.chat.id if query.message is not None else query.from_user.id
        kind, _, rest = (query.data or "").partition(":")
        if kind != "h" and await in_thread(self.service.handoff.pressed, CHANNEL, str(query.from_user.id),
                                           str(chat_id), _pressed_label(query)):
            await _answer(query)  # a staff member has the chat: the press went to them, the bot stays silent
            return
        if kind == "e" and rest:
            reply = await in_thread(self.service.choose, CHANNEL, str(query.from_user.id), rest)
            if reply is not None:
                await _answer(query)
                await self.send_reply(chat_id, reply)
                return
        elif kind == "d" and rest:
            details = await in_thread(self.service.details, CHANNEL, str(query.from_user.id), rest)
            if details is not None:  # no buttons: the answer above has them
                await _answer(query)
                assert self.pipeline is not None
                await self.pipeline.deliver(None, str(chat_id),
                                            [Outgoing(chunk, html=True) for chunk in telegram_messages(details)])
                return
        elif kind in ("t", "l"):
            screen = await in_thread(self.kit.act, query.data or "")
            if isinstance(screen, Screen):
                await _answer(query)
                await self.show(chat_id, screen)
                return
        elif kind == "h":  # "🙋 Hỏi cán bộ": the same as typing /canbo
            await _answer(query)
            assert self.pipeline is not None
            await self.pipeline.answer(None, Message(str(chat_id), str(query.from_user.id), "/canbo", None))
            return
        elif kind == "f":
            if await self.feedback(query, rest):
                return
        elif kind == "c" and await self.calc_step(query, chat_id, rest):
            return
        await _answer(query, "Nút đã cũ, bạn hãy gõ lại câu hỏi.")
        await self.say(chat_id, messages.STALE_BUTTON)

    # ------------------------------------------------------------ calculator flow

    async def calc_start(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        if update.effective_chat is None or update.effective_user is None:
            return
        await in_thread(self.service.calculator_button, CHANNEL, str(update.effective_user.id), "start")
        await self.ask_group(update.effective_chat.id)

    async def ask_group(self, chat_id: int) -> None:
        await self.say(chat_id, calc_flow.ASK_GROUP, rows=group_rows())

    async def calc_step(self, query: CallbackQuery, chat_id: int, rest: str) -> bool:
        """c:start, c:g:<group>, c:m:<months>. False for unreadable or out-of-step data."""
        user_id = str(query.from_user.id)
        step, _, value = rest.partition(":")
        if step == "start":
            await in_thread(self.service.calculator_button, CHANNEL, user_id, "start")
            await _answer(query)
            await self.ask_group(chat_id)
            return True
        if step == "g" and await in_thread(self.service.calculator_button, CHANNEL, user_id, "g", value):
            await _answer(query, calc_flow.GROUP_BUTTONS[value])
            await self.say(chat_id, calc_flow.ASK_PERIOD, rows=period_rows())
            return True
        if step == "m" and await in_thread(self.service.calculator_button, CHANNEL, user_id, "m", value):
            await _answer(query, calc_flow.PERIOD_BUTTONS[int(value)])
            await self.say(chat_id, calc_flow.ASK_INCOME)
            return True
        return False

    # ------------------------------------------------------------ field kit (bot.field_kit)

    async def topics(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        if update.effective_chat is not None:
            await self.show(update.effective_chat.id, self.kit.topics())

    async def law(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/luat <citation or words>; /luat alone says what to type. Logged as a law lookup."""
        message, user = update.effective_message, update.effective_user
        if update.effective_chat is not None:
            screen = await in_thread(self.kit.law, " ".join(context.args or []))
            if message is not None and message.text and user is not None:
                await in_thread(log_law_lookup, self.service, CHANNEL, str(user.id), message.text)
            await self.show(update.effective_chat.id, screen)

    def field_kit_command(self, user_id: str, text: str) -> Screen | None:
        """A typed field-kit command (a law lookup logged), unless a staff member has this chat (then it
        goes to them)."""
        return self.kit.typed(self.service, CHANNEL, user_id, text)

    async def show(self, chat_id: int, screen: Screen) -> None:
        texts, items = html_messages(screen, TELEGRAM_LIMIT, BUTTON_LABEL_LIMIT)
        rows = tuple(_rows([(item.label, item.action) for item in items]))
        assert self.pipeline is not None
        await self.pipeline.deliver(None, str(chat_id), [Outgoing(text, True, rows if n == len(texts) else ())
                                                         for n, text in enumerate(texts, start=1)])

    async def feedback(self, query: CallbackQuery, rest: str) -> bool:
        """👍/👎: record it, thank the user, remove the two buttons (after a 👎 on a question: offer the
        optional reasons of signals.DOWN_REASONS, "f:r:<question id>:<n>"). False if the data is unreadable."""
        sign, _, tail = rest.partition(":")
        qid, _, entry_id = tail.partition(":")
        if sign not in ("+", "-", "r") or (qid and not qid.isdecimal()):
            return False
        reason = None
        if sign == "r":  # the reason of a 👎 already recorded
            if not (qid and entry_id.isdecimal() and int(entry_id) < len(signals.DOWN_REASONS)):
                return False
            reason, entry_id = signals.DOWN_REASONS[int(entry_id)], ""
        value = 1 if sign == "+" else -1
        await in_thread(self.service.feedback, CHANNEL, str(query.from_user.id), value,
                        entry_id=entry_id or None, question_id=int(qid) if qid else None, reason=reason)
        await _answer(query, messages.FEEDBACK_UP if value > 0 else messages.FEEDBACK_DOWN)
        if reason is not None:
            await self._drop_feedback_buttons(query)
            return True
        if value < 0 and query.message is not None:  # 👎: offer a person
            offer = await in_thread(self.service.handoff.offer, CHANNEL, str(query.from_user.id), "downvote")
            await self.say(query.message.chat.id, offer, rows=_rows([(messages.HANDOFF_BUTTON, HANDOFF_DATA)]))
        reasons = _rows([(text, f"f:r:{qid}:{n}") for n, text in enumerate(signals.DOWN_REASONS)]) \
            if value < 0 and qid else []
        await self._drop_feedback_buttons(query, reasons)
        return True

    async def _drop_feedback_buttons(self, query: CallbackQuery, then: Rows | None = None) -> None:
        """Remove the 👍/👎 (or reason) buttons of the answer, adding `then` rows in their place."""
        markup = query.message.reply_markup if query.message is not None else None
        if markup is not None:
            rows = [[b for b in row if not str(b.callback_data or "").startswith("f:")]
                    for row in markup.inline_keyboard]
            rows = [row for row in rows if row] + [[InlineKeyboardButton(label, callback_data=data)
                                                    for label, data in row] for row in then or []]
            try:
                await query.edit_message_reply_markup(InlineKeyboardMarkup(rows) if rows else None)
            except TelegramError as exc:  # message too old or already edited: the vote counts anyway
                log.info("could not remove feedback buttons: %s", mask(str(exc)))

    async def error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Log (masked) and, when we know the chat, apologise instead of going silent."""
        err = context.error
        log.warning("telegram update failed: %s: %s", type(err).__name__, mask(str(err)))
        if isinstance(update, Update) and update.effective_chat is not None and not isinstance(err, TelegramError):
            with suppress(TelegramError):
                await context.bot.send_message(update.effective_chat.id, messages.BUSY)


def _pressed_label(query: CallbackQuery) -> str | None:
    """The label of the pressed button, read from the message it is under (None when that is gone)."""
    markup = getattr(query.message, "reply_markup", None)  # an inaccessible (old) message has none
    for row in markup.inline_keyboard if markup is not None else ():
        for button in row:
            if button.callback_data == query.data:
                return button.text
    return None


async def _answer(query: CallbackQuery, text: str | None = None) -> None:
    """answerCallbackQuery; after a restart old queries are "too old" to answer: ignore that."""
    try:
        await query.answer(text)
    except TelegramError as exc:
        log.info("could not answer callback query: %s", mask(str(exc)))


async def _post_init(application: Application) -> None:
    try:
        await application.bot.set_my_commands([BotCommand("start", "Bắt đầu, chọn chủ đề"),
                                               BotCommand("chude", "Mọi câu hỏi theo chủ đề"),
                                               BotCommand("luat", "Tra điều luật, ví dụ: /luat Điều 70"),
                                               BotCommand("tinh", "Tính tiền đóng BHXH tự nguyện"),
                                               BotCommand("canbo", "Hỏi cán bộ BHXH (người thật)"),
                                               BotCommand("help", "Hướng dẫn sử dụng")])
    except TelegramError as exc:
        log.warning("could not set bot commands: %s", mask(str(exc)))


def build_application(bot: TelegramBot, config: TelegramConfig, *, webhook: bool = False) -> Application:
    """A PTB Application with our handlers; `webhook=True` builds it without an Updater."""
    builder = (Application.builder().token(config.token).base_url(config.base_url)
               .base_file_url(config.base_file_url).rate_limiter(AIORateLimiter(max_retries=2))
               .concurrent_updates(True).post_init(_post_init))
    if webhook:
        builder = builder.updater(None)
    application = builder.build()
    bot.install(application)
    return application


def run_telegram_polling(build_service: Callable[[], Service], settings: Settings | None = None) -> int:
    """`bhxh telegram`: long polling (deletes any webhook first). Needs TELEGRAM_BOT_TOKEN (`settings`
    default to the environment's); the service is built only once the token is known to be there."""
    config = (settings or load_settings()).telegram
    if config is None:
        print("TELEGRAM_BOT_TOKEN chưa được đặt (lấy token từ @BotFather).", file=sys.stderr)
        return 2
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    application = polling_application(build_service(), config)
    print("Trợ lý BHXH trên Telegram đang chạy (long polling). Ctrl-C để dừng.", flush=True)
    application.run_polling(allowed_updates=ALLOWED_UPDATES, drop_pending_updates=False)
    return 0


def polling_application(service: Service, config: TelegramConfig) -> Application:
    """The Application for long polling: the same handlers and pipeline, without the inbox (Telegram
    keeps unconfirmed updates itself)."""
    adapter = TelegramAdapter(service, config, webhook=False)
    Pipeline(service, adapter)  # binds itself to the handlers
    return adapter.application


# ------------------------------------------------------------ webhook mode


def delivery_key(update: Update) -> str:
    """The inbox key: a message by (chat, message) like the question log (update ids restart at random
    after a quiet week), a button press by its query id."""
    if update.message is not None:
        return f"tg:{update.message.chat_id}:{update.message.message_id}"
    if update.callback_query is not None:
        return f"cb:{update.callback_query.id}"
    return f"u:{update.update_id}"


def inbox_payload(data: dict[str, Any]) -> dict[str, Any]:
    """The update as kept in the inbox: only what a replay needs (a whitelist, so contacts, forwards,
    quoted messages never reach the disk), text and caption PII-redacted, the sender's names dropped
    (PTB requires `first_name`: a placeholder). A replay answers the redacted text; that is accepted.
    Button presses keep their update id only: they are not replayed (see `replay`)."""
    kept: dict[str, Any] = {"update_id": data.get("update_id")}
    message = data.get("message")
    if isinstance(message, dict):
        chat = message.get("chat") if isinstance(message.get("chat"), dict) else {}
        out: dict[str, Any] = {"message_id": message.get("message_id"), "date": message.get("date"),
                               "chat": {"id": chat.get("id"), "type": chat.get("type")}}
        sender = message.get("from")
        if isinstance(sender, dict):
            out["from"] = {"id": sender.get("id"), "is_bot": bool(sender.get("is_bot")), "first_name": "-"}
        for field in ("text", "caption"):
            if isinstance(message.get(field), str):
                out[field] = redact_pii(message[field])
        commands = [e for e in message.get("entities") or []
                    if isinstance(e, dict) and e.get("type") == "bot_command" and e.get("offset") == 0]
        if commands:  # "/start …": redaction never touches the command itself
            out["entities"] = commands[:1]
        kept["message"] = out
    return kept


class TelegramAdapter:
    """Telegram's shapes for `Pipeline`; the Application runs the handlers (started lazily if
    Telegram was down when the server started)."""

    channel = CHANNEL
    path = "/webhooks/telegram"
    summary = "Telegram Bot API webhook"

    def __init__(self, service: Service, config: TelegramConfig, *, webhook: bool = True) -> None:
        self.service = service
        self.config = config
        self.bot = TelegramBot(service)
        self.bot.inbox_keys = webhook
        self.application = build_application(self.bot, config, webhook=webhook)
        self._ready = False
        self._lock = asyncio.Lock()

    def bind(self, pipeline: Pipeline) -> None:
        self.bot.pipeline = pipeline

    def verify(self, headers: Mapping[str, str], body: bytes, payload: object) -> str | None:
        given = headers.get("x-telegram-bot-api-secret-token", "").encode("utf-8", "replace")
        return None if hmac.compare_digest(given, self.config.webhook_secret.encode()) else "wrong secret token"

    def parse(self, payload: object, body: bytes) -> Delivery:
        try:
            update = Update.de_json(payload, self.application.bot) if isinstance(payload, dict) else None
        except Exception as exc:  # an update PTB cannot read
            log.warning("telegram webhook: unreadable update (%s)", type(exc).__name__)
            update = None
        if update is None:
            raise Malformed("malformed update")
        chat = update.effective_chat
        return Delivery(delivery_key(update), inbox_payload(payload), update,  # type: ignore[arg-type]
                        chat=str(chat.id) if chat is not None else None)

    def restore(self, stored: dict[str, Any]) -> Update | None:
        # Button presses are not replayed: no log dedupes them, so one pressed just before a kill could be
        # answered twice, and Telegram expires the query within seconds anyway; the user presses again.
        if "message" not in stored:
            return None
        return Update.de_json(stored, self.application.bot)

    async def process(self, pipeline: Pipeline, key: str, update: Update, *, replaying: bool) -> bool:
        """Run the handlers; False if the reply could not be sent (the update stays in the inbox)."""
        self.bind(pipeline)
        if replaying:
            self.bot.replaying.add(key)
        try:
            await self.application.process_update(update)
        except Exception as exc:  # handlers' own errors go to the error handler
            log.warning("telegram update %s failed: %s", update.update_id, mask(repr(exc)))
        finally:
            self.bot.replaying.discard(key)
        if key in self.bot.failed:
            self.bot.failed.discard(key)
            return False
        return True

    def render(self, handled: Handled) -> list[Outgoing]:
        return self.bot.render(handled)

    async def send(self, chat_id: str, message: Outgoing) -> bool:
        try:
            await self.application.bot.send_message(
                int(chat_id), message.text, parse_mode=ParseMode.HTML if message.html else None,
                link_preview_options=LinkPreviewOptions(is_disabled=True), reply_markup=markup(message.buttons))
        except BadRequest as exc:  # our message is wrong: sending it again will not help
            log.warning("telegram: message refused: %s", mask(str(exc)))
            return False
        except TimedOut:  # it may have arrived; sending it again could repeat it
            log.warning("telegram: no answer in time; not sent again")
            return True
        except (NetworkError, RetryAfter) as exc:  # unreachable, 5xx, flood control: retried
            raise SendError(f"{type(exc).__name__}: {mask(str(exc))}") from None
        except TelegramError as exc:  # blocked by the user, chat gone, bad token
            log.warning("telegram: message not delivered: %s: %s", type(exc).__name__, mask(str(exc)))
            return False
        return True

    async def ready(self) -> bool:
        async with self._lock:
            if self._ready:
                return True
            try:
                await self.application.initialize()
                await self.application.post_init(self.application)  # type: ignore[misc]
                if self.config.webhook_url:
                    await self.application.bot.set_webhook(self.config.webhook_url,
                                                           secret_token=self.config.webhook_secret,
                                                           allowed_updates=ALLOWED_UPDATES)
                self._ready = True
            except Exception as exc:  # Telegram unreachable must not stop the web server
                log.warning("telegram not ready yet: %s: %s", type(exc).__name__, mask(str(exc)))
            return self._ready

    async def close(self) -> None:
        if self._ready:
            await self.application.shutdown()
            self._ready = False
