"""Recognise a request for a calculation in a citizen's message.

`detect_calculator_request("tôi chọn mức 3 triệu thì đóng bao nhiêu")` returns
a `CalcRequest` naming the calculator (see `knowledge.calculators`) and the
figures it could read (an amount, years and months of contributions, age,
sex, support group, payment period); ordinary questions ("BHXH tự nguyện là
gì", "mức đóng thấp nhất là bao nhiêu") return None and go to the knowledge
base. Matching is done on accent-folded lower-case text, so messages typed
without diacritics work too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from knowledge.facts import Facts, extract_facts
from retrieval.normalize import fold_accents, nfc

VOLUNTARY, PENSION, LUMP_SUM = "voluntary_contribution", "pension_estimate", "lump_sum"
SURVIVOR, MATERNITY, SICKNESS, OCCUPATIONAL = "survivor", "maternity", "sickness", "occupational_accident"
CLI_COMMANDS = {VOLUNTARY: "tu-nguyen", PENSION: "luong-huu", LUMP_SUM: "mot-lan", SURVIVOR: "tu-tuat",
                MATERNITY: "thai-san", SICKNESS: "om-dau", OCCUPATIONAL: "tai-nan"}


@dataclass(frozen=True)
class CalcRequest:
    calculator: str  # one of CLI_COMMANDS' keys
    amount: int | None = None  # chosen income (voluntary) or average base (pension, lump sum), đồng
    years: int | None = None  # years of contributions
    months: int | None = None  # odd months of contributions
    age: int | None = None
    sex: str | None = None  # "male" | "female"
    groups: tuple[str, ...] = ()  # support groups for the voluntary calculator
    period_months: int | None = None  # 1, 3, 6 or 12 months per payment
    facts: Facts | None = None  # what the letter states (survivor, maternity, sickness, accident calculators)
    scheme: str | None = None  # "compulsory" | "voluntary" as the message says (pension, lump sum); None: not said

    @property
    def cli_command(self) -> str:
        return CLI_COMMANDS[self.calculator]


# ---------------------------------------------------------------- amounts

_NUM = r"(\d+(?:[.,]\d+)?)"
_MILLION = re.compile(
    _NUM + r"\s*(?:trieu|tr|m)(?![a-z])"
    r"(?:(\d{1,3})(?!\d)|\s*(ruoi)\b|\s+(\d{1,3})\s*(?:nghin|ngan|k)\b)?")
_THOUSAND = re.compile(_NUM + r"\s*(?:nghin|ngan|k)\b")
_GROUPED = re.compile(r"(?<![\d.,])\d{1,3}(?:([.,])\d{3})(?:\1\d{3})*(?![.,]?\d)")
_PLAIN = re.compile(r"(?<![\d.,])[1-9]\d{4,8}(?![.,]?\d)")  # not phone or ID numbers


def _decimal(text: str) -> Decimal:
    return Decimal(text.replace(",", "."))


def _amounts(folded: str) -> list[tuple[int, int]]:
    """(position, amount in đồng) of every amount written in the text."""
    found: list[tuple[int, int]] = []
    taken: list[range] = []

    def add(match: re.Match[str], value: Decimal) -> None:
        span = range(*match.span())
        if not any(span.start in t or t.start in span for t in taken):
            taken.append(span)
            found.append((match.start(), int(value)))

    for m in _MILLION.finditer(folded):
        value = _decimal(m.group(1)) * 1_000_000
        if m.group(2):  # "1tr5" = 1,5 triệu; "2tr25" = 2,25 triệu
            value += Decimal(m.group(2)) * 10 ** (6 - len(m.group(2)))
        elif m.group(3):  # "2 triệu rưỡi"
            value += 500_000
        elif m.group(4):  # "2 triệu 500 nghìn"
            value += Decimal(m.group(4)) * 1000
        add(m, value)
    for m in _GROUPED.finditer(folded):
        add(m, Decimal(re.sub(r"[.,]", "", m.group(0))))
    for m in _THOUSAND.finditer(folded):
        add(m, _decimal(m.group(1)) * 1000)
    for m in _PLAIN.finditer(folded):
        add(m, Decimal(m.group(0)))
    return sorted(found)


def parse_amount(text: str) -> int | None:
    """The first amount of money in `text`: "3 triệu", "2tr", "2.500.000", "1,5 triệu", "500k"."""
    try:
        found = _amounts(fold_accents(nfc(text).lower()))
    except InvalidOperation:
        return None
    return found[0][1] if found else None


# ---------------------------------------------------------------- other figures

_YEARS = re.compile(r"(?<![\d.,])(\d{1,2})\s*nam\b(?:\s*(?:va\s*)?(\d{1,2})\s*thang\b)?")
_AGE = re.compile(r"(?<![\d.,])(\d{2,3})\s*tuoi\b")
_PERIODS = [
    (re.compile(r"\b(\d{1,2})\s*thang\s*(?:1|mot)\s*lan\b"), None),
    (re.compile(r"\b(?:hang|moi|tung)\s*quy\b|\btheo quy\b"), 3),
    (re.compile(r"\b(?:hang|moi)\s*nam\b|\bca nam\b|\btheo nam\b|\b(?:1|mot)\s*nam\s*(?:1|mot)\s*lan\b"), 12),
    (re.compile(r"\b(?:hang|moi|tung)\s*thang\b|\b(?:1|mot)\s*thang\b|/\s*thang\b"), 1),
]
_GROUPS = [
    ("near_poor", re.compile(r"\bcan ngheo\b")),
    ("poor", re.compile(r"(?<!can )\bho ngheo\b")),
    ("ethnic_minority", re.compile(r"\bdan toc\b|\bthieu so\b")),
    ("island", re.compile(r"\bxa dao\b|\bdac khu\b|\bhai dao\b")),
]
_FEMALE = re.compile(r"\b(?:phu nu|dan ba|gioi tinh nu|lao dong nu|nu gioi|toi la nu|nu)\b")
_MALE = re.compile(r"\b(?:dan ong|nam gioi|gioi tinh nam|lao dong nam|toi la nam)\b")
# Unaccented "nam" is also "năm" (year) and a place name ("Việt Nam"): only in context, with accents.
_MALE_ACCENTED = re.compile(r"\b(?:là|giới tính|lao động|tôi|mình|em|anh|chồng)\s+(?:là\s+)?nam\b|\bnam\s+\d{2}\s*tuổi")

# ---------------------------------------------------------------- triggers

# "bao nhiêu" asking for an amount, not a time ("bao nhiêu năm/ngày" asks about conditions).
_HOW_MUCH = re.compile(
    r"\b(?:bao nhieu|bao nhiu|bnhieu|bnhiu|bn|nhieu tien|het nhieu|may tien|may trieu|may phan tram)\b"
    r"(?!\s*(?:ngay|lau|nam|thang|tuoi|lan|nguoi|thoi gian|gio|tuan|giay to|buoc)\b)"
    r"|\bmay\s*%|\bbao nhieu\s*%")
_CALCULATE = re.compile(r"\btinh\s*(?:giup|gium|ho|dum|thu|xem|ra|cho)\b|\b(?:uoc tinh|tinh toan)\b")
_PENSION = re.compile(r"\b(?:luong huu|huu tri|nghi huu|ve huu)\b")
_LUMP_SUM = re.compile(
    r"\b(?:rut|lanh|linh|nhan|huong|lay)\s+(?:(?:bhxh|bao hiem xa hoi|bao hiem|so)\s+)?"
    r"(?:1|mot)\s*lan\b|\bbhxh\s*(?:1|mot)\s*lan\b|\bbao hiem xa hoi\s*(?:1|mot)\s*lan\b")
_PAY_AT_ONCE = re.compile(r"\bdong\s+(?:tien\s+)?(?:1|mot)\s*lan\b")  # paying ahead is not withdrawing
_VOLUNTARY = re.compile(r"\btu nguyen\b|\bbhxh\s*tn\b|\bbhxhtn\b")
_PAYING = re.compile(r"\b(?:dong|muc|thu nhap|chon)\b")
# Personal income tax talks of income and amounts too ("thu nhập 4,4 triệu … giảm trừ bao nhiêu"): not a contribution.
_INCOME_TAX = re.compile(r"\bthue (?:thu nhap|tncn)\b|\bgiam tru gia canh\b|\bquyet toan thue\b|\bma so thue\b")
_SURVIVOR = re.compile(r"\b(?:tuat|tu tuat|tien tuat|mai tang|ma chay)\b")
_MATERNITY = re.compile(r"\b(?:thai san|sinh con|sinh be|sinh em be|nghi sinh|vo sinh|vo toi sinh|vo em sinh|"
                        r"de con|sinh doi|sinh mo|sinh thuong|du sinh)\b")
_SICKNESS = re.compile(r"\b(?:om dau|nghi om|bi om|con om|cham con|nam vien|nhap vien|che do om)\b")
_ACCIDENT = re.compile(r"\b(?:tai nan lao dong|tnld|benh nghe nghiep|bnn)\b")
# "(mỗi tháng) đóng bao nhiêu": asks what to pay, not what is received
_ASKS_CONTRIBUTION = re.compile(
    r"(?<!lao )(?<!hop )\bdong\b(?:\s+(?:bhxh|bao hiem|xa hoi|tien|tu nguyen|hang thang|moi thang|1 thang|mot thang|"
    r"them|tiep)){0,3}\s+(?:bao nhieu|bnhieu|bn|may tien|het bao nhieu)\b")
_ASK_BENEFIT = re.compile(r"\b(?:duoc|nhan|huong|lanh|linh)\b[^.?!]{0,40}\b(?:gi|nhung gi|che do gi|khoan gi|"
                          r"quyen loi gi|tien gi)\b")


def detect_calculator_request(text: str) -> CalcRequest | None:
    """Which calculator a message asks for, with the figures it contains; None for other questions."""
    folded = fold_accents(nfc(text).lower())
    asks = bool(_HOW_MUCH.search(folded) or _CALCULATE.search(folded))
    if not asks and not _ASK_BENEFIT.search(folded):
        return None
    if not asks:  # "gia đình được những khoản gì": only a benefit calculator with a story
        return _benefit_request(text, folded, asks)
    try:
        amounts = _amounts(folded)
    except InvalidOperation:
        amounts = []
    amount = amounts[0][1] if amounts else None
    years = months = age = None
    if m := _YEARS.search(folded):
        years, months = int(m.group(1)), int(m.group(2)) if m.group(2) else None
    if m := _AGE.search(folded):
        age = int(m.group(1))
    groups = tuple(g for g, pattern in _GROUPS if pattern.search(folded))
    figures = amount is not None or years is not None or age is not None

    benefit = _benefit_request(text, folded, asks)
    if benefit is not None:
        return benefit
    if _LUMP_SUM.search(folded) and not _PAY_AT_ONCE.search(folded):
        return CalcRequest(LUMP_SUM, amount=amount, years=years, months=months, age=age, sex=_sex(text, folded),
                           scheme=scheme_of(folded))
    if _PENSION.search(folded) and (figures or _CALCULATE.search(folded)):
        return CalcRequest(PENSION, amount=amount, years=years, months=months, age=age, sex=_sex(text, folded),
                           scheme=scheme_of(folded))
    voluntary = _VOLUNTARY.search(folded) or (_PAYING.search(folded) and not _INCOME_TAX.search(folded))
    if voluntary and (amount is not None or groups or _CALCULATE.search(folded)) and not _PENSION.search(folded):
        return CalcRequest(VOLUNTARY, amount=amount, groups=groups, period_months=_period(folded))
    return None


def _benefit_request(text: str, folded: str, asks: bool) -> CalcRequest | None:
    """Survivor, maternity, sickness or accident calculation asked about a story's facts.

    Asking "how much" with the topic's words is enough (the reply asks for missing
    figures); "được những gì / khoản gì" counts only when the letter holds the
    figures a computation needs.
    """
    survivor_words = bool(_SURVIVOR.search(folded))
    topic = None
    if _ACCIDENT.search(folded) and not survivor_words:
        topic = OCCUPATIONAL
    elif survivor_words:
        topic = SURVIVOR
    elif _MATERNITY.search(folded):
        topic = MATERNITY
    elif _SICKNESS.search(folded):
        topic = SICKNESS
    if topic in (MATERNITY, SICKNESS) and (_PENSION.search(folded) or _LUMP_SUM.search(folded)
                                           or _ASKS_CONTRIBUTION.search(folded)):
        return None  # a pension, withdrawal or contribution question that mentions a birth or an illness
    facts = extract_facts(text)
    if topic is None and facts.deceased and facts.deceased_relation is not None:
        topic = SURVIVOR  # "bố tôi mất … gia đình được bao nhiêu"
    if topic is None:
        return None
    if topic == OCCUPATIONAL and facts.deceased:
        topic = SURVIVOR
    if not asks and not _enough(topic, facts):
        return None
    return CalcRequest(topic, amount=facts.salary, years=facts.years_paid, months=facts.months_paid,
                       age=facts.age, sex=facts.sex, facts=facts)


def _enough(calculator: str, facts: Facts) -> bool:
    """Whether the facts let the calculator give an amount."""
    if calculator == SURVIVOR:
        return (facts.pension_amount is not None and facts.months_on_pension is not None) or (
            facts.total_months_paid is not None and facts.salary is not None)
    if calculator == MATERNITY:
        return facts.salary is not None or facts.scheme == "voluntary"
    if calculator == SICKNESS:
        return facts.salary is not None and facts.sick_days is not None
    return facts.lost_capacity_percent is not None


_VOLUNTARY_SCHEME = re.compile(r"\btu nguyen\b|\bbhxh ?tn\b|\blam tu do\b|\blao dong tu do\b")
# A worker: an employee, an employer, a wage (not an income chosen for the voluntary scheme), a contract.
_WORKER = re.compile(r"\bcong nhan\b|\bnguoi lao dong\b|\bnld\b|\bcong nhan vien\b|\bnhan vien\b|\bdi lam\b|"
                     r"\bcong ty\b|\bcty\b|\bdoanh nghiep\b|\bnha may\b|\bxi nghiep\b|\bco quan\b|\bcong chuc\b|"
                     r"\bvien chuc\b|\b(?:tien|muc) luong\b|\bluong (?:thang|co ban|dong|\d)|\bbat buoc\b|"
                     r"\bbhxh ?bb\b|\bhop dong\b")


def scheme_of(folded: str) -> str | None:
    """"voluntary" when the message names the voluntary scheme or self-employment, "compulsory" when it
    is about a worker (employee, employer, wage, contract), None when it says neither."""
    if _VOLUNTARY_SCHEME.search(folded):
        return "voluntary"
    return "compulsory" if _WORKER.search(folded) else None


def _period(folded: str) -> int | None:
    for pattern, months in _PERIODS:
        if m := pattern.search(folded):
            value = months if months is not None else int(m.group(1))
            return value if value in (1, 3, 6, 12) else None
    return None


def _sex(text: str, folded: str) -> str | None:
    accented = nfc(text).lower()
    if re.search(r"\bnữ\b", accented) or _FEMALE.search(folded):
        return "female"
    if _MALE.search(folded) or _MALE_ACCENTED.search(accented):
        return "male"
    return None
