"""What the entries people's letters land on must say (issue 12, content).

Citizens ask in situations: "my husband died after ten years of contributions: what do we get?",
"my wife died in a work accident: which papers?", "I left my job: is my health card still valid?".
These checks pin the facts each entry must carry so that the answer to such a letter is complete,
rendered on a given date from the parameter table, and hedged where the governing text is not held.
"""

from __future__ import annotations

import datetime as dt

import pytest

from knowledge.params import default_table
from knowledge.schema import load_knowledge
from retrieval.normalize import fold_accents

KB = load_knowledge()
TABLE = default_table()
ON = dt.date(2026, 12, 3)


def rendered(entry_id: str, on: dt.date = ON) -> str:
    return KB.render_answer(KB.entries[entry_id], on)


def has(text: str, phrase: str) -> bool:
    """Case- and accent-insensitive containment, whitespace collapsed (as a reader sees it)."""
    def norm(s: str) -> str:
        return " ".join(fold_accents(s.lower()).split())
    return norm(phrase) in norm(text)


# (entry, phrases its rendered answer must contain): each row is a situation people write about.
MUST_SAY = [
    # death while contributing, with fewer than 15 years: both benefits, in every survivors' entry it may land on
    ("tt-dieu-kien-tuat-hang-thang", ["tuất một lần", "mai táng", "25.300.000 đồng"]),
    ("tt-tuat-mot-lan-muc-huong", ["mai táng", "12 tháng"]),
    ("tt-tro-cap-mai-tang", ["tuất một lần", "tuất hằng tháng"]),
    ("tt-ho-so-thu-tuc-tu-tuat", ["biên bản điều tra tai nạn lao động", "trích lục khai tử", "tuất một lần",
                                  "mai táng", "90 ngày"]),
    # voluntary: the rate, the floor and the 15 years together
    ("tn-dieu-kien-luong-huu", ["15 năm", "22%", "330.000 đồng"]),
    ("tn-muc-dong-toi-thieu", ["15 năm", "22%"]),
    ("tn-nghi-viec-dong-tiep-tu-nguyen", ["chốt sổ", "cộng nối", "22%"]),
    ("lh-cong-noi-bat-buoc-va-tu-nguyen", ["công an", "cộng nối", "chốt sổ"]),
    ("lh-cach-tinh-ty-le-huong-nam", ["28 năm 61%", "45%", "75%"]),
    # procedures: leaving a job and merging books
    ("tt-thu-tuc-gop-so", ["chốt sổ", "gộp sổ"]),
    ("tt-thu-tuc-chot-so-khi-nghi-viec", ["gộp sổ", "chốt sổ"]),
    # unemployment: rate, cap and months, worked
    ("tn2-muc-huong", ["60%", "5 lần", "4 tháng"]),
    ("tn2-thoi-gian-huong", ["60%", "4 tháng", "5 tháng"]),
    ("tn2-dieu-kien-huong", ["60%", "6 tháng"]),
    # sickness: the employer does not pay wages for the days on sickness benefit
    ("od-muc-huong-om-dau", ["không trả lương", "75%"]),
    ("od-nghi-nua-ngay", ["không trả lương"]),
    ("od-duong-suc-sau-om", ["dưỡng sức"]),
    ("od-benh-dai-ngay", ["30 ngày", "70 ngày"]),
    # contributions
    ("md-nghi-khong-luong-14-ngay", ["14 ngày", "tự nguyện"]),
    ("md-cong-ty-dong-bao-nhieu", ["14%", "8%"]),
    ("md-nguoi-lao-dong-dong-bao-nhieu", ["8%", "14%"]),
    ("xp-dong-thap-hon-luong-thuc", ["thường xuyên, ổn định", "6 tháng"]),
    ("lm-chu-ho-kinh-doanh-doi-tuong", ["hợp đồng lao động", "công ty"]),
    # lump sum
    ("ml-ho-so-thu-tuc-thoi-han", ["12 tháng", "sổ BHXH", "7 ngày làm việc"]),
    ("ml-bao-luu-thoi-gian-dong", ["bảo lưu", "12 tháng"]),
    # health insurance
    ("yt-5-nam-lien-tuc", ["3 tháng", "30 ngày"]),
    ("yt-bhyt-ho-gia-dinh", ["báo giảm", "hộ gia đình"]),
    ("yt-hoc-sinh-sinh-vien-tre-em", ["giấy khai sinh", "giấy chứng sinh"]),
    ("yt-cap-cuu-trai-tuyen", ["cấp cứu", "bất kỳ cơ sở", "đúng nơi đăng ký ban đầu", "trái tuyến"]),
    ("yt-quan-nhan-than-nhan", ["thân nhân", "quân nhân", "phục viên"]),
    # occupational
    ("tnld-cong-ty-khong-dong-bao-hiem", ["khoản tiền tương ứng"]),
    ("tnld-truong-hop-khong-duoc-huong", ["khoản tiền tương ứng", "5%"]),
    ("tnld-tai-phat-giam-dinh-lai", ["5%", "31%"]),
    ("tnld-ho-tro-chua-benh-phuc-hoi-chuc-nang", ["phục hồi chức năng", "50%", "bệnh nghề nghiệp"]),
]
# Session 5, from the tuning half's gaps: what each landing entry lacked (scams: the fraud and the link named).
MUST_SAY += list({
    "ml-nghi-viec-12-thang-chuyen-tiep": ("số tiền đã đóng", "2 tháng", "hỗ trợ", "bảo lưu"),
    "ml-ho-so-thu-tuc-thoi-han": ("số tiền đã đóng", "bảo lưu"),
    "lh-du-tuoi-chua-du-so-nam-dong": ("không phải chờ 12 tháng",),
    "lh-nghi-huu-som-nghe-nang-nhoc": ("suy giảm khả năng lao động", "61%", "20 năm"),
    "lh-nghi-huu-som-duoc-khong": ("61%", "20 năm", "15 năm", "bảo lưu", "nam 61 tuổi 6 tháng"),
    "tn-dieu-kien-luong-huu": ("14 năm", "12 tháng"),
    "lm-ai-khong-thuoc-dien-bat-buoc": ("dưới 1 tháng",),
    "tt-nguoi-huong-luong-huu-qua-doi": ("thừa kế", "anh chị em ruột"),
    "th-chet-khi-moi-dong-duoi-12-thang": ("tuất một lần", "3 tháng", "12 tháng", "tai nạn lao động"),
    "od-truong-hop-duoc-huong": ("không phải trả lương", "75%"),
    "od-ho-so-om-dau": ("không phải trả lương", "75%", "giấy ra viện"),
    "od-tai-nan-tren-duong-di-lam": ("không phải trả lương",),
    "ts-say-thai": ("30 ngày", "dưỡng sức", "30% mức tham chiếu"),
    "tn2-dieu-kien-huong": ("không được cộng lại", "bảo lưu"),
    "htxh-muc-tro-cap": ("75 tuổi", "500.000 đồng"),
    "htxh-thu-tuc": ("500.000 đồng",),
    "tt-thu-tuc-mat-hong-so": ("cấp lại", "gộp sổ"),
    "tt-thu-tuc-vssid-xem-duoc-gi": ("gộp sổ", "công ty cũ"),
    "tt-thu-tuc-da-dong-bao-nhieu-thang": ("công ty cũ", "gộp sổ"),
    "tt-thu-tuc-tra-ma-so-bhxh": ("công ty cũ", "gộp sổ"),
    "md-dong-quy-huu-tri-tu-tuat": ("8%", "14%", "thường xuyên, ổn định"),
    "ld-tin-nhan-hoan-tien-ho-tro": ("lừa đảo", "giả mạo", "đường link"),
    "ld-gia-danh-can-bo-bhxh-goi-dien": ("lừa đảo", "tài khoản ngân hàng", "OTP"),
    "ld-van-ban-gia-huy-so-doi-vssid": ("giả mạo", "VssID", "giá trị pháp lý như nhau"),
    "yt-5-nam-lien-tuc": ("không đúng", "lừa đảo"),
}.items())


@pytest.mark.parametrize(("entry_id", "phrases"), MUST_SAY, ids=[row[0] for row in MUST_SAY])
def test_the_entry_a_letter_lands_on_says_what_the_letter_needs(entry_id, phrases):
    text = rendered(entry_id)
    missing = [p for p in phrases if not has(text, p)]
    assert not missing, f"{entry_id} does not say {missing}"


def test_the_funeral_amount_in_a_survivors_answer_follows_the_reference_level():
    assert has(rendered("tt-dieu-kien-tuat-hang-thang", dt.date(2026, 6, 30)), "23.400.000 đồng")
    assert has(rendered("tt-dieu-kien-tuat-hang-thang", dt.date(2026, 7, 1)), "25.300.000 đồng")


@pytest.mark.parametrize("entry_id", ["yt-5-nam-lien-tuc", "tnld-ho-tro-chua-benh-phuc-hoi-chuc-nang",
                                      "tn2-muc-huong"])
def test_figures_from_texts_we_do_not_hold_come_with_the_caution(entry_id):
    entry = KB.entries[entry_id]
    assert KB.uncertain_figures(entry, ON)
    assert "kiểm tra lại" in KB.caution(entry, ON)


@pytest.mark.parametrize("entry_id", ["yt-cap-cuu-trai-tuyen", "yt-quan-nhan-than-nhan",
                                      "tnld-ho-tro-chua-benh-phuc-hoi-chuc-nang"])
def test_entries_resting_on_unheld_texts_say_so_and_route_to_the_hotline(entry_id):
    text = rendered(entry_id)
    assert "chưa có toàn văn" in text
    assert "1900 9068" in text
