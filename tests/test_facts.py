"""Letter facts: what a citizen's story states (written for these tests, not taken from any evaluation set)."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from knowledge.facts import MAX_CHARS, Facts, extract_facts

TODAY = dt.date(2026, 12, 3)

LETTERS: list[tuple[str, dict[str, object]]] = [
    # 1. the brief's example
    ("bố tôi đóng bhxh 10 năm, lương bình quân 8 triệu, mất tháng 3/2026, gia đình được tuất một lần bao nhiêu?",
     {"years_paid": 10, "salary": 8_000_000, "death_date": dt.date(2026, 3, 1), "deceased_relation": "father",
      "deceased": True}),
    # 2. same, typed without accents
    ("bo toi dong bhxh 10 nam, luong binh quan 8 trieu, mat thang 3/2026, gia dinh duoc tuat mot lan bao nhieu?",
     {"years_paid": 10, "salary": 8_000_000, "death_date": dt.date(2026, 3, 1), "deceased_relation": "father"}),
    # 3. a long letter: reserved record, the date of death before the death word, the widow's age
    ("Chào anh chị, bố em sinh năm 1965, đóng BHXH bắt buộc được 17 năm 4 tháng ở công ty may, năm 2023 thì "
     "nghỉ việc bảo lưu. Tháng 5/2026 bố em mất do tai biến. Mẹ em năm nay 58 tuổi, không có lương hưu. Xin hỏi "
     "mẹ em có được hưởng tuất hằng tháng không và được bao nhiêu ạ?",
     {"birth_year": 1965, "years_paid": 17, "months_paid": 4, "years_compulsory": 17, "months_compulsory": 4,
      "death_date": dt.date(2026, 5, 1), "deceased_relation": "father", "insured_status": "reserved",
      "scheme": "compulsory", "relative_age": 58, "age": None}),
    # 4. a pensioner who died: pension amount and time on the pension, full date
    ("bo toi dang huong luong huu 6tr/thang, nghi huu duoc 3 nam thi mat ngay 12/4/2026. nha toi duoc tuat 1 lan "
     "bao nhieu",
     {"pension_amount": 6_000_000, "months_on_pension": 36, "death_date": dt.date(2026, 4, 12),
      "insured_status": "retired", "deceased_relation": "father", "years_paid": None, "salary": None}),
    # 5. maternity, second child, indefinite contract
    ("Em là lao động nữ, 29 tuổi, làm công ty được 3 năm, hợp đồng không xác định thời hạn, lương đóng BHXH 7,5 "
     "triệu. Em dự sinh con thứ hai vào tháng 8/2026. Em được nghỉ mấy tháng và nhận bao nhiêu tiền?",
     {"age": 29, "sex": "female", "salary": 7_500_000, "child_birth_date": dt.date(2026, 8, 1),
      "contract_type": "indefinite", "child_order": 2, "deceased": False}),
    # 6. a range of years split at 2014, then voluntary years; the writer is the widow
    ("Chồng tôi đóng bảo hiểm từ năm 2008 đến 2020 thì nghỉ, sau đó đóng tự nguyện 3 năm. Anh ấy vừa qua đời "
     "tháng 10 năm 2026. Tôi 50 tuổi. Gia đình tôi được những khoản gì?",
     {"age": 50, "years_paid": 15, "years_compulsory": 12, "years_voluntary": 3, "years_before_2014": 6,
      "scheme": "both", "deceased_relation": "husband", "death_date": dt.date(2026, 10, 1)}),
    # 7. sickness
    ("toi nghi om 10 ngay, luong dong bhxh 6 trieu, da dong 12 nam. duoc huong bao nhieu tien",
     {"sick_days": 10, "salary": 6_000_000, "years_paid": 12, "deceased": False}),
    # 8. occupational accident
    ("Tôi bị tai nạn lao động, giám định suy giảm 35% khả năng lao động, đã đóng bảo hiểm 8 năm, lương tháng "
     "trước khi bị tai nạn là 9 triệu. Tôi được trợ cấp hằng tháng bao nhiêu?",
     {"lost_capacity_percent": 35, "years_paid": 8, "salary": 9_000_000}),
    # 9. before and from 2014 stated; contract of 12 months; salary in digits
    ("Tôi sinh năm 1972, đóng BHXH trước năm 2014 được 6 năm 5 tháng, từ năm 2014 đến nay được 9 năm, hđlđ 12 "
     "tháng, mức lương 5.500.000 đồng",
     {"birth_year": 1972, "years_before_2014": 6, "months_before_2014": 5, "years_from_2014": 9,
      "years_paid": 15, "months_paid": 5, "contract_type": "fixed_term", "contract_months": 12,
      "salary": 5_500_000, "paid_before_2025_07": True}),
    # 10. a man whose wife gave birth to twins by caesarean
    ("Vợ tôi sinh đôi ngày 15/9/2026, sinh mổ, tôi đóng bhxh 4 năm. Tôi được nghỉ mấy ngày?",
     {"sex": "male", "babies": 2, "child_birth_date": dt.date(2026, 9, 15), "caesarean": True, "years_paid": 4}),
    # 11. "trong đó": a part of the total
    ("Tôi đóng bhxh 20 năm, trong đó 5 năm tự nguyện. Nay tôi 58 tuổi, nam giới.",
     {"years_paid": 20, "years_voluntary": 5, "years_compulsory": 15, "age": 58, "sex": "male", "scheme": "both"}),
    # 12. mother died; "4tr5"; year only
    ("mẹ tôi mất năm 2025, bà đóng bảo hiểm được 4 năm 7 tháng, mức đóng 4tr5",
     {"deceased_relation": "mother", "death_year": 2025, "death_date": None, "years_paid": 4, "months_paid": 7,
      "salary": 4_500_000}),
    # 13. "mất" that is not a death, and a question of time
    ("mất bao lâu thì nhận được tiền bhxh một lần? tôi mất sổ rồi, mất việc từ tháng 6/2025",
     {"deceased": False, "deceased_relation": None, "leave_date": dt.date(2025, 6, 1)}),
    # 14. sick child
    ("Con em 2 tuổi bị sốt nằm viện 5 ngày, em đi làm lương 8 triệu, em nghỉ chăm con thì được bao nhiêu?",
     {"child_age": 2, "sick_child": True, "salary": 8_000_000, "age": None}),
    # 15. number words and "rưỡi"
    ("chồng em đóng bảo hiểm mười lăm năm, lương 10 triệu rưỡi, anh ấy tử vong vì tai nạn lao động tháng 11/2026",
     {"years_paid": 15, "salary": 10_500_000, "deceased_relation": "husband", "death_at_work": True,
      "death_date": dt.date(2026, 11, 1)}),
    # 16. voluntary only, leaving date, age
    ("Tôi 45 tuổi, đóng bảo hiểm xã hội tự nguyện được 7 năm, thu nhập chọn đóng 3 triệu, tháng 2/2026 tôi dừng đóng.",
     {"age": 45, "years_voluntary": 7, "years_paid": 7, "scheme": "voluntary", "salary": 3_000_000,
      "leave_date": dt.date(2026, 2, 1), "insured_status": "reserved"}),
    # 17. a seasonal contract and a younger brother who died
    ("Em trai tôi làm hợp đồng thời vụ 3 tháng rồi bị tai nạn giao thông chết ngày 2/11/2026, có được gì không?",
     {"contract_type": "seasonal", "contract_months": 3, "deceased_relation": "sibling",
      "death_date": dt.date(2026, 11, 2)}),
    # 18. months paid only, third child
    ("Em đóng BHXH được 8 tháng thì sinh con thứ ba, lương 6tr thì được thai sản không?",
     {"years_paid": 0, "months_paid": 8, "child_order": 3, "salary": 6_000_000}),
    # 19. years of work that the letter says were fully paid count as years paid
    ("Bố tôi làm công nhân ở công ty được 12 năm, tham gia BHXH đầy đủ, tháng trước bố tôi mất. Gia đình được gì?",
     {"years_paid": 12, "deceased_relation": "father", "deceased": True}),
    ("me em lam viec tai cong ty may 20 nam co dong bao hiem thi bi benh mat",
     {"years_paid": 20, "deceased_relation": "mother"}),
    # 21. ...but not when the employer did not pay
    ("Tôi làm ở công ty được 5 năm, công ty không đóng bảo hiểm cho tôi. Giờ tôi phải làm sao?",
     {"years_paid": None}),
]


@pytest.mark.parametrize(("text", "expected"), LETTERS, ids=[f"letter{n}" for n in range(1, len(LETTERS) + 1)])
def test_letters(text: str, expected: dict[str, object]) -> None:
    facts = extract_facts(text, TODAY)
    for key, value in expected.items():
        assert getattr(facts, key) == value, (key, facts.known())


def test_unknown_is_none_and_total_months() -> None:
    facts = extract_facts("BHXH tự nguyện là gì?", TODAY)
    assert facts.years_paid is None and facts.salary is None and facts.total_months_paid is None
    assert extract_facts("đóng 2 năm 3 tháng bhxh", TODAY).total_months_paid == 27


@pytest.mark.parametrize("value", [None, 42, b"bytes", "", "   ", "\x00\ud800", "9" * 5000, "năm " * 1000])
def test_odd_inputs(value: object) -> None:
    assert isinstance(extract_facts(value, TODAY), Facts)


_PIECES = [*"0123456789/.,% ", "năm", "tháng", "mất", "bố tôi", "đóng", "bhxh", "triệu", "tuổi", "từ", "đến", "2014",
           "con thứ", "sinh", "lương", "hợp đồng", "\n", "ngày", "trước", "rưỡi"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(_PIECES), max_size=80).map(" ".join))
def test_never_raises_on_fact_like_noise(text: str) -> None:
    facts = extract_facts(text, TODAY)
    assert facts.months_paid is None or 0 <= facts.months_paid <= 11
    assert facts.salary is None or facts.salary > 0


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=500))
def test_never_raises_on_any_text(text: str) -> None:
    assert isinstance(extract_facts(text), Facts)


def test_reads_only_the_first_characters_and_in_linear_time() -> None:
    head = "bố tôi đóng bhxh 10 năm, lương 8 triệu, mất tháng 3/2026. "
    tail = "mất 1/2/2020 đóng 5 năm lương 9 triệu " * 5000
    facts = extract_facts(head + "x" * (MAX_CHARS - len(head)) + tail, TODAY)
    assert facts.years_paid == 10 and facts.salary == 8_000_000
    worst = ("đóng 1 năm " + "1/1/2020 " + "mất ") * 400  # dense dates, durations and death words
    start = time.perf_counter()
    for _ in range(5):
        extract_facts(worst, TODAY)
    assert (time.perf_counter() - start) / 5 < 0.5


@pytest.mark.parametrize(("text", "percent"), [
    ("bị tai nạn lao động suy giảm dưới 5% thì được hưởng gì", None),
    ("giám định suy giảm khả năng lao động chưa đến 5% thì sao", None),
    ("mức suy giảm thấp hơn 5 % có được gì không", None),
    ("tôi bị suy giảm 4% khả năng lao động", 4),
    ("giám định kết luận suy giảm 35%", 35),
])
def test_a_bound_is_not_the_assessed_degree(text: str, percent: int | None) -> None:
    assert extract_facts(text, TODAY).lost_capacity_percent == percent


@pytest.mark.parametrize(("text", "at_work"), [
    ("Chồng tôi đóng BHXH 9 năm thì qua đời (không phải tai nạn lao động), gia đình được hưởng gì?", None),
    ("bố tôi mất, không phải do tai nạn lao động mà do bệnh", None),
    ("anh tôi mất vì tai nạn lao động, không phải do bệnh", True),
])
def test_a_work_accident_ruled_out_is_not_one(text: str, at_work: bool | None) -> None:
    assert extract_facts(text, TODAY).death_at_work is at_work


@pytest.mark.parametrize("text", [
    "Người đang đóng BHXH bắt buộc chưa đủ 15 năm thì qua đời, gia đình được hưởng gì?",
    "đóng dưới 15 năm thì có được lương hưu không",
    "không đủ 20 năm đóng thì có được nghỉ hưu trước tuổi không",
])
def test_a_threshold_named_is_not_the_time_paid(text: str) -> None:
    assert extract_facts(text, TODAY).years_paid is None
