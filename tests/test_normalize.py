import unicodedata

import pytest

from retrieval.normalize import (
    expand_abbreviations,
    fold_accents,
    normalize_query,
    redact_pii,
    tokenize,
)


def test_fold_accents_removes_marks_and_maps_d():
    assert fold_accents("Đóng bảo hiểm xã hội ở đâu") == "Dong bao hiem xa hoi o dau"


def test_nfd_input_is_equivalent_to_nfc():
    nfd = unicodedata.normalize("NFD", "rút bảo hiểm xã hội một lần")
    assert normalize_query(nfd) == normalize_query("rút bảo hiểm xã hội một lần")
    assert tokenize(nfd) == ["rút", "bảo", "hiểm", "xã", "hội", "một", "lần"]


def test_one_letter_syllables_are_kept():
    assert tokenize("Thẻ y tế dùng ở đâu? A") == ["thẻ", "y", "tế", "dùng", "ở", "đâu", "a"]


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("rut bhxh 1 lan dc ko", "rut bảo hiểm xã hội một lần được không"),
        ("bhyt hok co thi sao", "bảo hiểm y tế không co thi sao"),
        ("nld nghi viec thi nsdld phai lam j", "người lao động nghi viec thi người sử dụng lao động phai lam gì"),
        ("đc k ạ", "được không ạ"),
        ("bhtn dk nhận ntn", "bảo hiểm thất nghiệp điều kiện nhận như thế nào"),
    ],
)
def test_teen_code_and_abbreviations(typed, expected):
    assert normalize_query(typed) == expected


def test_accented_words_are_not_mistaken_for_abbreviations():
    # "gì" stays, and "dễ" (folded "de") is not an abbreviation.
    assert expand_abbreviations("làm gì dễ") == "làm gì dễ"


def test_emphasis_letters_collapse_but_numbers_do_not():
    assert normalize_query("khôngggg đcccc lương 3000000") == "không được lương 3000000"


def test_letter_boilerplate_is_stripped():
    text = "Kính gửi Bảo hiểm xã hội Việt Nam,\nEm muốn hỏi về chế độ thai sản. Em xin chân thành cảm ơn!"
    assert normalize_query(text) == "em muốn hỏi về chế độ thai sản."


@pytest.mark.parametrize(("text", "redacted"), [
    ("tôi tên là lan muốn hỏi về bhxh tự nguyện", "tôi tên là [TÊN] muốn hỏi về bhxh tự nguyện"),
    ("toi ten la nguyen van an muon hoi ve luong huu", "toi ten la [TÊN] muon hoi ve luong huu"),
    ("em tên là hoa, em muốn hỏi", "em tên là [TÊN], em muốn hỏi"),
    ("Tôi là Trần Thị Mỹ Dung, giám đốc công ty", "Tôi là [TÊN], giám đốc công ty"),
    ("Em là Đỗ Thị Hằng ở Hà Nội", "Em là [TÊN] ở Hà Nội"),
    ("tôi là người lao động tự do", "tôi là người lao động tự do"),
    ("Tôi là Giáo viên", "Tôi là Giáo viên"),
])
def test_a_name_is_redacted_without_the_words_after_it(text, redacted):
    assert redact_pii(text) == redacted


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("CCCD của tôi là 001203004567", "[CCCD]"),
        ("số căn cước 001 203 004 567 nhé", "[CCCD]"),
        ("mã BHXH 0123456789", "[MÃ BHXH]"),
        ("gọi tôi 0912345678", "[SĐT]"),
        ("gọi tôi 0912.345.678", "[SĐT]"),
        ("sđt +84 912 345 678", "[SĐT]"),
        ("mail nguyen.van.a@gmail.com", "[EMAIL]"),
        ("Tôi tên là Nguyễn Văn An, năm nay 40 tuổi", "[TÊN]"),
        ("tên em là Trần Thị Bình", "[TÊN]"),
    ],
)
def test_pii_is_redacted(text, label):
    redacted = redact_pii(text)
    assert label in redacted
    for secret in ("001203004567", "0123456789", "0912345678", "nguyen.van.a", "Nguyễn Văn An", "Bình"):
        assert secret not in redacted


@pytest.mark.parametrize(
    "text",
    [
        "Lương 15.000.000 đồng một tháng",
        "đóng 3000000 đồng từ năm 2014",
        "mức 1.500.000 đ, 22% là 330.000 đ",
        "Điều 70 khoản 1 Luật 41/2024/QH15",
        "sinh ngày 12/05/1980",
        "số tiền 123456789012345 đồng",  # 15 digits: not an ID
    ],
)
def test_numbers_that_are_not_pii_are_left_alone(text):
    assert redact_pii(text) == text


def test_normalized_query_never_contains_pii():
    q = normalize_query("Tôi tên là Lê Văn Cường, CCCD 079088001234, sđt 0987654321, hỏi về lương hưu")
    assert "079088001234" not in q and "0987654321" not in q and "cường" not in q
    assert "lương hưu" in q
