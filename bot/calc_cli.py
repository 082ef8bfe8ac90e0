"""`bhxh calc`: the calculators on the command line.

    bhxh calc tu-nguyen --thu-nhap 1500000 --nhom can-ngheo --ky 1 --ngay 2026-03-01 [--json]
    bhxh calc luong-huu --gioi-tinh nam --ngay-sinh 1966-05-10 --nam 18 --thang 7 --binh-quan 8000000
    bhxh calc mot-lan --nam-truoc-2014 5 --nam-tu-2014 6 --thang-tu-2014 4 --binh-quan 5000000

Every option also has an English alias (--income, --group, --period, --date, …).
Bad input prints one Vietnamese sentence on stderr and exits with code 2.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from collections.abc import Callable
from typing import Any

from knowledge.calc_intent import parse_amount
from knowledge.calculators import (
    GROUP_LABELS,
    LAW_IN_FORCE,
    REASONS,
    CalculatorInputError,
    LumpSum,
    PensionEstimate,
    VoluntaryContribution,
    format_date,
    lump_sum,
    pension_estimate,
    result_to_dict,
    voluntary_contribution,
)
from knowledge.params import format_money as money
from knowledge.params import format_percent
from retrieval.normalize import fold_accents

GROUPS = {
    "ngheo": "poor", "ho-ngheo": "poor", "poor": "poor",
    "can-ngheo": "near_poor", "ho-can-ngheo": "near_poor", "near-poor": "near_poor",
    "dan-toc": "ethnic_minority", "dan-toc-thieu-so": "ethnic_minority", "ethnic-minority": "ethnic_minority",
    "xa-dao": "island", "dac-khu": "island", "island": "island",
    "khac": "other", "other": "other",
}
SEXES = {"nam": "male", "male": "male", "nu": "female", "female": "female"}
SCHEMES = {"tu-nguyen": "voluntary", "voluntary": "voluntary", "bat-buoc": "compulsory", "compulsory": "compulsory"}
REASON_ALIASES = {
    "nghi-12-thang": "stopped_12_months", "du-tuoi": "retirement_age_under_15_years",
    "dinh-cu": "settle_abroad", "ra-nuoc-ngoai": "settle_abroad",
    "benh-hiem-ngheo": "serious_illness", "benh": "serious_illness", "suy-giam-81": "incapacity_81",
    **{key.replace("_", "-"): key for key in REASONS},
}


def _slug(text: str) -> str:
    return fold_accents(text.strip().lower()).replace("_", "-").replace(" ", "-")


def _choice(text: str, table: dict[str, str], label: str) -> str:
    key = _slug(text)
    if key not in table:
        raise CalculatorInputError(f"{label} «{text}» không hợp lệ; chỉ nhận: {', '.join(table)}.")
    return table[key]


def _money(text: str | None, label: str, required: bool = True) -> int | None:
    if text is None:
        if required:
            raise CalculatorInputError(f"Thiếu {label}; ví dụ 1500000, 1.500.000 hoặc 1,5tr.")
        return None
    text = text.strip()
    if text.startswith("-"):
        raise CalculatorInputError(f"{label} phải là số tiền lớn hơn 0 đồng; bạn nhập «{text}».")
    amount = int(text) if text.isdigit() else parse_amount(text)
    if amount is None:
        raise CalculatorInputError(f"{label} «{text}» không đọc được; hãy nhập ví dụ 1500000, 1.500.000 "
                                   "hoặc 1,5tr.")
    return amount


def _int(text: str | None, label: str, default: int | None = 0) -> int:
    if text is None:
        if default is None:
            raise CalculatorInputError(f"Thiếu {label}.")
        return default
    try:
        return int(text)
    except ValueError:
        raise CalculatorInputError(f"{label} phải là số nguyên; bạn nhập «{text}».") from None


def _date(text: str | None, label: str = "Ngày tính") -> dt.date:
    if text is None:
        return dt.date.today()
    try:
        if "/" in text:
            day, month, year = (int(part) for part in text.split("/"))
            return dt.date(year, month, day)
        return dt.date.fromisoformat(text)
    except ValueError:
        raise CalculatorInputError(f"{label} «{text}» không hợp lệ; hãy nhập theo dạng 2026-03-01 hoặc "
                                   "01/03/2026.") from None


# ---------------------------------------------------------------- handlers


def _voluntary(args: argparse.Namespace) -> VoluntaryContribution:
    groups = [g for text in (args.nhom or ["khac"]) for g in text.split(",") if g.strip()]
    return voluntary_contribution(
        _money(args.thu_nhap, "Thu nhập làm căn cứ đóng (--thu-nhap)") or 0,
        {_choice(g, GROUPS, "Nhóm đối tượng") for g in groups},
        _int(args.ky, "Phương thức đóng (--ky)", 1),
        _date(args.ngay),
        supported_months_used=_int(args.da_ho_tro, "Số tháng đã được hỗ trợ (--da-ho-tro)"),
    )


def _pension(args: argparse.Namespace) -> PensionEstimate:
    if args.gioi_tinh is None or args.ngay_sinh is None:
        raise CalculatorInputError("Thiếu giới tính (--gioi-tinh nam|nu) hoặc ngày sinh (--ngay-sinh 1966-05-10).")
    return pension_estimate(
        _choice(args.gioi_tinh, SEXES, "Giới tính"),
        _date(args.ngay_sinh, "Ngày sinh"),
        _int(args.nam, "Số năm đóng (--nam)", None),
        _int(args.thang, "Số tháng lẻ (--thang)"),
        _money(args.binh_quan, "Mức bình quân làm căn cứ đóng (--binh-quan)", required=False),
        _date(args.ngay),
        scheme=_choice(args.che_do, SCHEMES, "Loại hình BHXH"),
    )


def _lump_sum(args: argparse.Namespace) -> LumpSum:
    on = _date(args.ngay)
    first = _date(args.dong_lan_dau, "Ngày bắt đầu đóng") if args.dong_lan_dau else None
    return lump_sum(
        _int(args.nam_truoc_2014, "Số năm đóng trước 2014"),
        _int(args.thang_truoc_2014, "Số tháng lẻ trước 2014"),
        _int(args.nam_tu_2014, "Số năm đóng từ 2014"),
        _int(args.thang_tu_2014, "Số tháng lẻ từ 2014"),
        _money(args.binh_quan, "Mức bình quân làm căn cứ đóng (--binh-quan)") or 0,
        on,
        first is None or first < LAW_IN_FORCE,
        reason=_choice(args.ly_do, REASON_ALIASES, "Lý do"),
        scheme=_choice(args.che_do, SCHEMES, "Loại hình BHXH"),
        state_support_received=_money(args.ho_tro_da_nhan, "Số tiền Nhà nước đã hỗ trợ", required=False) or 0,
        sex=_choice(args.gioi_tinh, SEXES, "Giới tính") if args.gioi_tinh else None,
    )


# ---------------------------------------------------------------- output


def _summary(result: Any) -> list[str]:
    if isinstance(result, VoluntaryContribution):
        lines = [f"BHXH tự nguyện – số tiền đóng (theo quy định ngày {format_date(result.on)})",
                 f"  Thu nhập chọn đóng: {money(result.income)}/tháng",
                 f"  Phải đóng: {money(result.contribution_per_month)}/tháng",
                 f"  Nhà nước hỗ trợ: {money(result.support_per_month)}/tháng ({GROUP_LABELS[result.group]})",
                 f"  Bạn thực đóng: {money(result.net_per_month)}/tháng"]
        if result.months > 1:
            lines.append(f"  Cả kỳ {result.months} tháng: đóng {money(result.contribution_per_period)}, hỗ trợ "
                         f"{money(result.support_per_period)}, thực đóng {money(result.net_per_period)}")
    elif isinstance(result, PensionEstimate):
        lines = [f"Lương hưu – ước tính (theo quy định ngày {format_date(result.on)})"]
        if result.retirement_date:
            lines.append(f"  Đủ tuổi nghỉ hưu: {format_date(result.retirement_date)} ({result.retirement_age})")
        if result.eligible:
            lines.append(f"  Tỷ lệ hưởng: {format_percent(result.rate_percent or 0)}")
            if result.monthly_pension is not None:
                lines.append(f"  Lương hưu hằng tháng: {money(result.monthly_pension)}")
        else:
            lines.append("  Chưa đủ điều kiện hưởng lương hưu")
    else:
        lines = [f"BHXH một lần – ước tính (theo quy định ngày {format_date(result.on)})",
                 f"  Số tiền: {money(result.amount)}",
                 f"  {'Đủ' if result.eligible else 'Chưa đủ'} điều kiện rút"]
    return lines


def _print(result: Any, command: str, as_json: bool) -> None:
    if as_json:
        print(json.dumps({"calculator": command, **result_to_dict(result)}, ensure_ascii=False, indent=2))
        return
    out = _summary(result)
    out += ["", "Cách tính:", *(f"  {n}. {s}" for n, s in enumerate(result.steps, 1))]
    out += ["", "Căn cứ pháp lý:", *(f"  - {s}" for s in result.sources)]
    if result.notes:
        out += ["", "Lưu ý:", *(f"  - {s}" for s in result.notes)]
    print("\n".join(out))


def _runner(compute: Callable[[argparse.Namespace], Any], command: str) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        try:
            result = compute(args)
        except CalculatorInputError as exc:
            print(str(exc), file=sys.stderr)
            return 2
        _print(result, command, args.json)
        return 0

    return run


# ---------------------------------------------------------------- parser


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--ngay", "--date", dest="ngay", metavar="NGÀY",
                        help="ngày tính, 2026-03-01 hoặc 01/03/2026 (mặc định: hôm nay)")
    parser.add_argument("--json", action="store_true", help="in một đối tượng JSON")


def add_calc_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register `calc` (tu-nguyen, luong-huu, mot-lan) on a sub-parser collection."""
    calc = subparsers.add_parser("calc", help="công cụ tính BHXH (tự nguyện, lương hưu, một lần)")
    sub = calc.add_subparsers(dest="calc_command", required=True)

    p = sub.add_parser("tu-nguyen", aliases=["voluntary"], help="số tiền đóng BHXH tự nguyện")
    p.add_argument("--thu-nhap", "--income", dest="thu_nhap", metavar="SỐ_TIỀN",
                   help="thu nhập tháng chọn làm căn cứ đóng, ví dụ 1500000 hoặc 1,5tr")
    p.add_argument("--nhom", "--group", dest="nhom", action="append", metavar="NHÓM",
                   help="ngheo, can-ngheo, dan-toc, xa-dao, khac (lặp lại hoặc cách nhau dấu phẩy)")
    p.add_argument("--ky", "--period", "--months", dest="ky", metavar="THÁNG", help="1, 3, 6 hoặc 12 tháng/lần")
    p.add_argument("--da-ho-tro", "--supported-months", dest="da_ho_tro", metavar="THÁNG",
                   help="số tháng đã được Nhà nước hỗ trợ trước đây")
    _common(p)
    p.set_defaults(func=_runner(_voluntary, "tu-nguyen"))

    p = sub.add_parser("luong-huu", aliases=["pension"], help="ước tính lương hưu")
    p.add_argument("--gioi-tinh", "--sex", dest="gioi_tinh", metavar="nam|nu")
    p.add_argument("--ngay-sinh", "--birth-date", dest="ngay_sinh", metavar="NGÀY")
    p.add_argument("--nam", "--years", dest="nam", metavar="NĂM", help="số năm đã đóng")
    p.add_argument("--thang", "--months", dest="thang", metavar="THÁNG", help="số tháng lẻ (0–11)")
    p.add_argument("--binh-quan", "--average-base", dest="binh_quan", metavar="SỐ_TIỀN",
                   help="mức bình quân thu nhập/tiền lương làm căn cứ đóng")
    p.add_argument("--che-do", "--scheme", dest="che_do", default="tu-nguyen", metavar="tu-nguyen|bat-buoc")
    _common(p)
    p.set_defaults(func=_runner(_pension, "luong-huu"))

    p = sub.add_parser("mot-lan", aliases=["lump-sum"], help="ước tính BHXH một lần")
    for flag, english, dest in [("--nam-truoc-2014", "--years-before-2014", "nam_truoc_2014"),
                                ("--thang-truoc-2014", "--months-before-2014", "thang_truoc_2014"),
                                ("--nam-tu-2014", "--years-from-2014", "nam_tu_2014"),
                                ("--thang-tu-2014", "--months-from-2014", "thang_tu_2014")]:
        p.add_argument(flag, english, dest=dest, metavar="SỐ")
    p.add_argument("--binh-quan", "--average-base", dest="binh_quan", metavar="SỐ_TIỀN")
    p.add_argument("--ly-do", "--reason", dest="ly_do", default="nghi-12-thang",
                   help="nghi-12-thang, du-tuoi, dinh-cu, benh-hiem-ngheo, suy-giam-81")
    p.add_argument("--dong-lan-dau", "--first-contribution", dest="dong_lan_dau", metavar="NGÀY",
                   help="ngày bắt đầu đóng BHXH (từ 01/07/2025 thì không rút được vì nghỉ 12 tháng)")
    p.add_argument("--ho-tro-da-nhan", "--state-support", dest="ho_tro_da_nhan", metavar="SỐ_TIỀN",
                   help="tổng số tiền Nhà nước đã hỗ trợ đóng BHXH tự nguyện")
    p.add_argument("--gioi-tinh", "--sex", dest="gioi_tinh", metavar="nam|nu")
    p.add_argument("--che-do", "--scheme", dest="che_do", default="tu-nguyen", metavar="tu-nguyen|bat-buoc")
    _common(p)
    p.set_defaults(func=_runner(_lump_sum, "mot-lan"))
    return calc
