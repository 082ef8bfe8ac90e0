"""Every sentence the assistant says on its own (not from a knowledge entry), in one place.

Channels, the CLI and the engine import these instead of writing their own, so a
wording is changed once. Knowledge answers live in knowledge/entries/; why a question
is out of scope lives in knowledge/out_of_scope.yaml.
"""

from __future__ import annotations

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
BUSY = f"Xin lỗi, hệ thống đang bận. Bạn vui lòng thử lại sau ít phút hoặc gọi tổng đài {HOTLINE}."

# ---------------------------------------------------------------- channels

STALE_BUTTON = ("Nút này đã cũ hoặc câu hỏi đã được cập nhật, nên tôi không mở được nữa. "
                "Bạn vui lòng gõ lại câu hỏi nhé.")
FEEDBACK_UP = "Cảm ơn bạn đã góp ý!"
FEEDBACK_DOWN = "Cảm ơn bạn. Tôi sẽ ghi nhận để cải thiện câu trả lời."
