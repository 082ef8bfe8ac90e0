"""Every sentence the assistant says on its own (not from a knowledge entry), in one place.

Channels, the CLI and the engine import these instead of writing their own, so a
wording is changed once. Knowledge answers live in knowledge/entries/; why a question
is out of scope lives in knowledge/out_of_scope.yaml.
"""

from __future__ import annotations

import datetime as dt

from knowledge.topics import MENU_ORDER, TOPICS

HOTLINE = "1900 9068"
MAX_QUESTION_CHARS = 2000

# ---------------------------------------------------------------- screening a message

NOT_TEXT = "Tôi chỉ đọc được tin nhắn chữ. Bạn vui lòng gõ câu hỏi bằng chữ nhé."
EMPTY = "Bạn chưa nhập câu hỏi. Hãy gõ điều bạn muốn hỏi về BHXH, BHYT hoặc bảo hiểm thất nghiệp nhé."
NO_LETTERS = ("Tôi chưa hiểu tin nhắn này. Bạn hãy gõ câu hỏi bằng chữ, ví dụ: "
              "\"Đóng BHXH tự nguyện bao nhiêu một tháng?\"")
TOO_LONG = (f"Tin nhắn của bạn dài quá nên tôi chỉ đọc {MAX_QUESTION_CHARS} ký tự đầu. "
            "Bạn có thể gửi câu hỏi ngắn gọn hơn để được trả lời chính xác.")

# ---------------------------------------------------------------- small talk

THANKS_REPLY = ("Không có gì ạ. Chúc bạn nhiều sức khỏe! Nếu còn thắc mắc về BHXH, "
                "bạn cứ nhắn cho tôi nhé.")


def topic_menu() -> str:
    """The topics a citizen can ask about, one "- " line each."""
    return "\n".join(f"- {TOPICS[t]}" for t in MENU_ORDER)


def help_text() -> str:
    """Who the assistant is and what it answers (greetings, /start, /help)."""
    return ("Xin chào! Tôi là Trợ lý BHXH. Tôi giải đáp về bảo hiểm xã hội, bảo hiểm y tế và "
            "bảo hiểm thất nghiệp theo Luật BHXH 2024 và các văn bản đang có hiệu lực. "
            "Bạn cứ gõ câu hỏi như khi nói chuyện, có dấu hay không dấu đều được. Một số chủ đề:\n"
            + topic_menu() + "\n\nTôi không tra cứu được hồ sơ cá nhân; để xem quá trình đóng của mình, "
            f"bạn dùng ứng dụng VssID hoặc gọi tổng đài {HOTLINE}.")


# ---------------------------------------------------------------- the decision's replies


def not_sure_text() -> str:
    """When no entry is likely enough: say so, and offer the topics and the hotline."""
    return ("Xin lỗi, tôi chưa chắc hiểu đúng câu hỏi của bạn nên không muốn trả lời sai. "
            "Bạn có thể hỏi lại ngắn gọn hơn, hoặc chọn một chủ đề:\n" + topic_menu() +
            f"\n\nBạn cũng có thể gọi tổng đài BHXH Việt Nam {HOTLINE} để được hỗ trợ trực tiếp.")


CHOOSE_ONE = "Bạn muốn hỏi về nội dung nào dưới đây? Hãy chọn một câu:"
NOT_SURE_WHICH = ("Tôi chưa chắc hiểu đúng trường hợp của bạn. Có phải bạn hỏi một trong các câu dưới đây? "
                  f"Nếu không phải, bạn hãy hỏi lại ngắn gọn hơn hoặc gọi tổng đài {HOTLINE}.")
OUT_OF_SCOPE_FOOTER = f"Nếu bạn cần hỏi về BHXH, hãy gọi tổng đài {HOTLINE}."
PERSONAL_NOTE = ("Tôi không tra cứu được hồ sơ hay quá trình đóng của từng người. Bạn có thể tự xem trên "
                 f"ứng dụng VssID (mục Quá trình tham gia, Tra cứu hồ sơ), gọi tổng đài {HOTLINE} "
                 "(chuẩn bị số CCCD hoặc mã số BHXH), hoặc hỏi trực tiếp cơ quan BHXH nơi nộp hồ sơ.")


def several_questions(count: int) -> str:
    """The first line of a reply that answers each question of a message in turn."""
    return f"Bạn hỏi {count} ý, tôi trả lời lần lượt:"


# ---------------------------------------------------------------- rendering

SOURCES_LABEL = "Căn cứ:"  # before the cited articles of an answer
RELATED_LABEL = "Có thể bạn muốn hỏi:"  # before close runners-up and related questions
# Short answer first (issue 17 item 2): how the details behind it are asked for, and their title.
DETAILS_BUTTON = "📖 Xem chi tiết"
DETAILS_HINT_ZALO = "👉 Gõ 0 để xem chi tiết."
DETAILS_WORDS = ("0", "chi tiết", "xem chi tiết", "chi tiet", "xem chi tiet")  # typed for the details (Zalo)
DETAILS_TITLE = "Chi tiết:"
BUSY = f"Xin lỗi, hệ thống đang bận. Bạn vui lòng thử lại sau ít phút hoặc gọi tổng đài {HOTLINE}."

# ---------------------------------------------------------------- channels

STALE_BUTTON = ("Nút này đã cũ hoặc câu hỏi đã được cập nhật, nên tôi không mở được nữa. "
                "Bạn vui lòng gõ lại câu hỏi nhé.")
FEEDBACK_UP = "Cảm ơn bạn đã góp ý!"
FEEDBACK_DOWN = "Cảm ơn bạn. Tôi sẽ ghi nhận để cải thiện câu trả lời."

# ---------------------------------------------------------------- a conversation (bot/conversation.py)


def _day(on: dt.date) -> str:
    return f"{on.day:02d}/{on.month:02d}/{on.year}"


def date_used(on: dt.date) -> str:
    """Under an answer whose figures were rendered for the date the question named ("từ 1/1/2027…")."""
    return f"Số liệu tính theo quy định áp dụng ngày {_day(on)}."


def month_of_death_used(on: dt.date) -> str:
    """Under a funeral allowance rendered for the month of death the question stated."""
    return f"Số liệu tính theo mức tham chiếu tháng {on.month}/{on.year}, tháng người mất."


def date_not_in_table(asked: dt.date, today: dt.date) -> str:
    """The question named a date the parameter table has no figures for (before 1/7/2025, mostly)."""
    return (f"Tôi chưa có đủ số liệu áp dụng ngày {_day(asked)}; số liệu dưới đây theo quy định "
            f"áp dụng ngày {_day(today)}.")


def follow_up_read(question: str) -> str:
    """Above an answer to a short follow-up ("còn nữ thì sao?"), the question it was read as."""
    return f"Tiếp câu trước, tôi hiểu bạn hỏi: «{question}»."


NONE_OF_THESE = "Không phải các câu trên"  # the last item of every choice list
NONE_OF_THESE_WORD_HINT = "0"  # what to type for it where there are no buttons (Zalo)


def none_of_these_text(handoff_offer: str = "") -> str:
    """After "Không phải các câu trên": ask to rephrase, and offer a person (the handoff's offer when it is
    on, else the hotline)."""
    person = handoff_offer or f"Bạn cũng có thể gọi tổng đài BHXH Việt Nam {HOTLINE} để được cán bộ hỗ trợ trực tiếp."
    return ("Xin lỗi vì tôi chưa hiểu đúng ý bạn. Bạn hãy hỏi lại bằng một câu ngắn, nói rõ chế độ bạn hỏi "
            "(ví dụ: lương hưu, thai sản, BHXH một lần, BHYT) và trường hợp của bạn (đang đóng bắt buộc hay "
            "tự nguyện, đã đóng bao lâu).\n\n" + person)


def known_gap_text(subject: str) -> str:
    """A question about something the knowledge base does not cover yet (knowledge/gaps.yaml)."""
    return (f"Xin lỗi, tôi chưa có thông tin về {subject} nên không trả lời để tránh nói sai. "
            f"Bạn vui lòng gọi tổng đài BHXH Việt Nam {HOTLINE} hoặc hỏi cơ quan BHXH nơi bạn ở "
            "để được giải đáp chính xác.")

# ---------------------------------------------------------------- handoff to a staff member (bot/handoff.py)

HANDOFF_BUTTON = "🙋 Hỏi cán bộ"
HANDOFF_WAITING = ("Tôi đã chuyển câu hỏi của bạn tới cán bộ BHXH. Cán bộ sẽ trả lời ngay trong cuộc trò chuyện "
                   "này. Trong lúc chờ, tôi tạm dừng trả lời tự động; bạn cứ nhắn thêm thông tin, cán bộ sẽ đọc "
                   "được. Vui lòng không gửi số CCCD, mã số BHXH hay số điện thoại qua đây.")
# {next}: when staff are next in ("7:30 thứ Hai, 07/12"); {hours}: the working hours. BHXH_HANDOFF_OUT_OF_HOURS_TEXT
# replaces it (same placeholders).
HANDOFF_OUT_OF_HOURS = ("Tôi đã chuyển câu hỏi của bạn tới cán bộ BHXH. Bây giờ là ngoài giờ làm việc ({hours}), "
                        "nên cán bộ sẽ trả lời bạn từ {next}. Trong lúc chờ, tôi tạm dừng trả lời tự động; bạn cứ "
                        f"nhắn thêm thông tin. Việc gấp, bạn gọi tổng đài {HOTLINE}.")
HANDOFF_ALREADY = "Yêu cầu của bạn đã được chuyển tới cán bộ BHXH. Cán bộ sẽ trả lời trong cuộc trò chuyện này."
HANDOFF_OFFER = "Nếu bạn muốn hỏi trực tiếp cán bộ BHXH, hãy gõ «gặp cán bộ»."
HANDOFF_CLOSED = ("Cán bộ BHXH đã kết thúc cuộc trò chuyện. Từ giờ Trợ lý BHXH lại tự động trả lời bạn; "
                  "bạn cứ gõ câu hỏi nhé.")


def staff_reply(text: str) -> str:
    """A staff member's answer as the citizen sees it: marked as coming from a person."""
    return "👤 Cán bộ BHXH trả lời:\n" + text


# ---------------------------------------------------------------- the field kit on chat channels (bot/field_kit.py)

FIELD_KIT_TOPICS_TITLE = "Câu hỏi theo chủ đề"
FIELD_KIT_TOPICS_HINT = "Chọn một chủ đề để xem các câu hỏi và câu trả lời."
FIELD_KIT_HITS_TITLE = "Các điều luật có các từ này"
FIELD_KIT_NO_TOPIC_ENTRIES = "Chủ đề này chưa có câu hỏi nào."
FIELD_KIT_STALE = "Danh sách này đã cũ. Bạn gõ “chủ đề” để xem lại danh sách, hoặc gõ câu hỏi của bạn."
FIELD_KIT_MORE = "Xem thêm"
