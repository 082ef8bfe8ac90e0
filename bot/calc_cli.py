"""`bhxh calc`: the calculators on the command line (`bhxh calc --help` lists an example for each).

Every option also has an English alias (--income, --group, --period, --date, …). Options are never
abbreviated (a prefix such as --nam could mean several options). The scheme (--che-do) defaults to the
compulsory one (bat-buoc: employees, the usual case) except for the voluntary contribution itself.
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
    MaternityBenefit,
    OccupationalAllowance,
    PensionEstimate,
    SicknessBenefit,
    SurvivorBenefits,
    VoluntaryContribution,
    format_date,
    lump_sum,
    maternity_benefit,
    occupational_allowance,
    pension_estimate,
    result_to_dict,
    sickness_benefit,
    survivor_benefits,
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
SCHEME_HELP = "bat-buoc (mặc định: người lao động có hợp đồng) hoặc tu-nguyen"
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
    if (args.nam is not None or args.thang is not None) and (args.nam_tu_2014 is not None
                                                             or args.thang_tu_2014 is not None):
        raise CalculatorInputError("Dùng --nam (tính như đóng từ 2014) hoặc --nam-tu-2014, không dùng cả hai.")
    return lump_sum(
        _int(args.nam_truoc_2014, "Số năm đóng trước 2014"),
        _int(args.thang_truoc_2014, "Số tháng lẻ trước 2014"),
        _int(args.nam if args.nam is not None else args.nam_tu_2014, "Số năm đóng"),
        _int(args.thang if args.thang is not None else args.thang_tu_2014, "Số tháng lẻ"),
        _money(args.binh_quan, "Mức bình quân làm căn cứ đóng (--binh-quan)") or 0,
        on,
        first is None or first < LAW_IN_FORCE,
        reason=_choice(args.ly_do, REASON_ALIASES, "Lý do"),
        scheme=_choice(args.che_do, SCHEMES, "Loại hình BHXH"),
        state_support_received=_money(args.ho_tro_da_nhan, "Số tiền Nhà nước đã hỗ trợ", required=False) or 0,
        sex=_choice(args.gioi_tinh, SEXES, "Giới tính") if args.gioi_tinh else None,
    )


STATUS_ALIASES = {"dang-dong": "contributing", "contributing": "contributing", "bao-luu": "reserved",
                  "reserved": "reserved", "nghi-viec": "reserved", "huu": "retired", "luong-huu": "retired",
                  "retired": "retired"}
SURVIVOR_SCHEME_ALIASES = {**SCHEMES, "ca-hai": "both", "both": "both"}
ROLE_ALIASES = {"me": "mother", "mother": "mother", "cha": "father", "bo": "father", "father": "father"}
SICKNESS_ALIASES = {"ban-than": "own", "own": "own", "dai-ngay": "long_term", "long-term": "long_term",
                    "con-om": "child", "child": "child"}


def _survivor(args: argparse.Namespace) -> SurvivorBenefits:
    if args.ngay is None:
        raise CalculatorInputError("Thiếu ngày mất (--ngay 2026-03-15): mức tham chiếu của tháng mất được dùng "
                                   "để tính.")
    return survivor_benefits(
        _choice(args.tinh_trang, STATUS_ALIASES, "Tình trạng"),
        _date(args.ngay, "Ngày mất"),
        scheme=_choice(args.che_do, SURVIVOR_SCHEME_ALIASES, "Loại hình BHXH"),
        years_before_2014=_int(args.nam_truoc_2014, "Số năm đóng trước 2014"),
        months_before_2014=_int(args.thang_truoc_2014, "Số tháng lẻ trước 2014"),
        years_from_2014=_int(args.nam_tu_2014, "Số năm đóng từ 2014"),
        months_from_2014=_int(args.thang_tu_2014, "Số tháng lẻ từ 2014"),
        average_base=_money(args.binh_quan, "Mức bình quân làm căn cứ đóng (--binh-quan)", required=False),
        compulsory_years=_int(args.nam_bat_buoc, "Số năm đóng bắt buộc") if args.nam_bat_buoc is not None else None,
        compulsory_months=_int(args.thang_bat_buoc, "Số tháng lẻ đóng bắt buộc"),
        pension=_money(args.luong_huu, "Lương hưu (--luong-huu)", required=False),
        months_on_pension=_int(args.thang_huong, "Số tháng đã hưởng lương hưu") if args.thang_huong is not None
        else None,
        relatives=_int(args.than_nhan, "Số thân nhân (--than-nhan)"),
        relatives_no_carer=_int(args.khong_nguoi_nuoi, "Số thân nhân không có người nuôi dưỡng"),
        died_at_work=args.tai_nan,
    )


def _maternity(args: argparse.Namespace) -> MaternityBenefit:
    if args.ngay is None:
        raise CalculatorInputError("Thiếu ngày sinh con (--ngay 2026-08-10).")
    return maternity_benefit(
        _date(args.ngay, "Ngày sinh con"),
        _money(args.binh_quan, "Bình quân tiền lương 6 tháng (--binh-quan)", required=False),
        role=_choice(args.nguoi, ROLE_ALIASES, "Người hưởng"),
        scheme=_choice(args.che_do, SCHEMES, "Loại hình BHXH"),
        babies=_int(args.so_con, "Số con sinh (--so-con)", 1),
        child_order=_int(args.con_thu, "Con thứ (--con-thu)") if args.con_thu is not None else None,
        caesarean=args.sinh_mo,
        months_paid_in_12=_int(args.thang_dong_12, "Số tháng đóng trong 12 tháng") if args.thang_dong_12 is not None
        else None,
    )


def _sickness(args: argparse.Namespace) -> SicknessBenefit:
    return sickness_benefit(
        _date(args.ngay),
        _money(args.luong, "Tiền lương đóng BHXH tháng gần nhất (--luong)") or 0,
        _int(args.so_ngay, "Số ngày nghỉ (--so-ngay)", None),
        kind=_choice(args.loai, SICKNESS_ALIASES, "Trường hợp"),
        years_paid=_int(args.nam, "Số năm đã đóng (--nam)"),
        months_paid=_int(args.thang, "Số tháng lẻ (--thang)"),
        heavy_work=args.nang_nhoc,
        days_used=_int(args.da_nghi, "Số ngày đã nghỉ trong năm (--da-nghi)"),
        child_age=_int(args.tuoi_con, "Tuổi của con (--tuoi-con)") if args.tuoi_con is not None else None,
    )


def _accident(args: argparse.Namespace) -> OccupationalAllowance:
    return occupational_allowance(
        _date(args.ngay),
        _int(args.suy_giam, "Mức suy giảm khả năng lao động (--suy-giam)", None),
        _money(args.luong, "Tiền lương tháng trước khi bị tai nạn (--luong)", required=False),
        _int(args.nam, "Số năm đóng quỹ (--nam)"),
        attendant=args.phuc_vu,
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
    elif isinstance(result, SurvivorBenefits):
        lines = [f"Chế độ tử tuất – ước tính (mất tháng {result.on.month:02d}/{result.on.year})",
                 f"  Trợ cấp mai táng: {money(result.funeral_allowance)}" if result.funeral_eligible
                 else "  Không có trợ cấp mai táng"]
        if result.lump_sum is not None:
            lines.append(f"  Tuất một lần: {money(result.lump_sum)}")
        lines.append(f"  Tuất hằng tháng: {money(result.monthly_per_relative)}/tháng mỗi thân nhân"
                     if result.monthly_eligible else "  Không đủ điều kiện tuất hằng tháng")
        if result.monthly_total is not None:
            lines.append(f"  Tuất hằng tháng cho {result.relatives_counted} thân nhân: {money(result.monthly_total)}")
    elif isinstance(result, MaternityBenefit):
        lines = [f"Thai sản – ước tính (sinh ngày {format_date(result.on)})",
                 f"  Trợ cấp một lần: {money(result.lump_sum)}"]
        if result.leave_pay is not None:
            leave = f"{result.leave_months} tháng" if result.leave_months else f"{result.leave_days} ngày"
            lines.append(f"  Trợ cấp thời gian nghỉ ({leave}): {money(result.leave_pay)}")
        if result.second_child_leave_pay is not None:
            lines.append(f"  Nếu quy định mới cho con thứ hai áp dụng: {money(result.second_child_leave_pay)} "
                         "(chưa đối chiếu văn bản gốc)")
    elif isinstance(result, SicknessBenefit):
        lines = [f"Ốm đau – ước tính (theo quy định ngày {format_date(result.on)})",
                 f"  Trợ cấp {result.days} ngày: {money(result.amount)}"]
    elif isinstance(result, OccupationalAllowance):
        lines = [f"Tai nạn lao động, bệnh nghề nghiệp – ước tính (tháng {result.on.month:02d}/{result.on.year})"]
        if result.kind == "none":
            lines.append("  Chưa đến mức được trợ cấp")
        else:
            label = "Trợ cấp một lần" if result.kind == "lump_sum" else "Trợ cấp hằng tháng"
            value = result.amount if result.amount is not None else result.degree_part
            lines.append(f"  {label}: {money(value)}")
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

# (subcommand, what it computes, an example that runs): shown by `bhxh calc --help` and each `--help`.
EXAMPLES: list[tuple[str, str, str]] = [
    ("tu-nguyen", "số tiền đóng BHXH tự nguyện, phần Nhà nước hỗ trợ",
     "bhxh calc tu-nguyen --thu-nhap 1,5tr --nhom can-ngheo --ky 3"),
    ("luong-huu", "ước tính lương hưu (người lao động đóng bắt buộc; thêm --che-do tu-nguyen nếu đóng tự nguyện)",
     "bhxh calc luong-huu --gioi-tinh nu --ngay-sinh 1972-04-15 --nam 22 --binh-quan 7tr"),
    ("mot-lan", "ước tính BHXH một lần (so với giữ thời gian đóng)",
     "bhxh calc mot-lan --nam 9 --binh-quan 6tr"),
    ("tu-tuat", "trợ cấp mai táng, tuất một lần, tuất hằng tháng",
     "bhxh calc tu-tuat --ngay 2026-03-15 --nam-tu-2014 10 --binh-quan 8tr --than-nhan 1"),
    ("thai-san", "trợ cấp thai sản khi sinh con",
     "bhxh calc thai-san --ngay 2026-08-10 --binh-quan 7,5tr"),
    ("om-dau", "trợ cấp ốm đau",
     "bhxh calc om-dau --luong 6tr --so-ngay 10 --nam 12"),
    ("tai-nan", "trợ cấp tai nạn lao động, bệnh nghề nghiệp",
     "bhxh calc tai-nan --suy-giam 35 --luong 9tr --nam 8"),
]
CALC_EPILOG = ("Ví dụ (mỗi lệnh có --help riêng; --ngay 2027-01-01 để tính theo quy định của ngày khác, "
               "--json để lấy kết quả dạng JSON):\n"
               + "\n".join(f"  {command:10} {what}\n    {example}" for command, what, example in EXAMPLES))


def _sub(sub: Any, name: str, english: str, help_text: str) -> argparse.ArgumentParser:
    example = next(e for c, _, e in EXAMPLES if c == name)
    return sub.add_parser(name, aliases=[english], help=help_text, allow_abbrev=False,
                          epilog=f"Ví dụ:\n  {example}", formatter_class=argparse.RawDescriptionHelpFormatter)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--ngay", "--date", dest="ngay", metavar="NGÀY",
                        help="ngày tính, 2026-03-01 hoặc 01/03/2026 (mặc định: hôm nay)")
    parser.add_argument("--json", action="store_true", help="in một đối tượng JSON")


def add_calc_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register `calc` (tu-nguyen, luong-huu, mot-lan, tu-tuat, thai-san, om-dau, tai-nan)."""
    calc = subparsers.add_parser("calc", help="công cụ tính BHXH (tự nguyện, lương hưu, một lần, tử tuất, thai sản, "
                                              "ốm đau, tai nạn lao động)",
                                 description="Các công cụ tính BHXH theo quy định hiện hành (số liệu theo ngày tính).",
                                 epilog=CALC_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = calc.add_subparsers(dest="calc_command", required=True)

    p = _sub(sub, "tu-nguyen", "voluntary", "số tiền đóng BHXH tự nguyện")
    p.add_argument("--thu-nhap", "--income", dest="thu_nhap", metavar="SỐ_TIỀN",
                   help="thu nhập tháng chọn làm căn cứ đóng, ví dụ 1500000 hoặc 1,5tr")
    p.add_argument("--nhom", "--group", dest="nhom", action="append", metavar="NHÓM",
                   help="ngheo, can-ngheo, dan-toc, xa-dao, khac (lặp lại hoặc cách nhau dấu phẩy)")
    p.add_argument("--ky", "--period", "--months", dest="ky", metavar="THÁNG", help="1, 3, 6 hoặc 12 tháng/lần")
    p.add_argument("--da-ho-tro", "--supported-months", dest="da_ho_tro", metavar="THÁNG",
                   help="số tháng đã được Nhà nước hỗ trợ trước đây")
    _common(p)
    p.set_defaults(func=_runner(_voluntary, "tu-nguyen"))

    p = _sub(sub, "luong-huu", "pension", "ước tính lương hưu")
    p.add_argument("--gioi-tinh", "--sex", dest="gioi_tinh", metavar="nam|nu")
    p.add_argument("--ngay-sinh", "--birth-date", dest="ngay_sinh", metavar="NGÀY")
    p.add_argument("--nam", "--years", dest="nam", metavar="NĂM", help="số năm đã đóng")
    p.add_argument("--thang", "--months", dest="thang", metavar="THÁNG", help="số tháng lẻ (0–11)")
    p.add_argument("--binh-quan", "--average-base", dest="binh_quan", metavar="SỐ_TIỀN",
                   help="mức bình quân thu nhập/tiền lương làm căn cứ đóng")
    p.add_argument("--che-do", "--scheme", dest="che_do", default="bat-buoc", metavar="bat-buoc|tu-nguyen",
                   help=SCHEME_HELP)
    _common(p)
    p.set_defaults(func=_runner(_pension, "luong-huu"))

    p = _sub(sub, "mot-lan", "lump-sum", "ước tính BHXH một lần")
    for flag, english, dest in [("--nam-truoc-2014", "--years-before-2014", "nam_truoc_2014"),
                                ("--thang-truoc-2014", "--months-before-2014", "thang_truoc_2014"),
                                ("--nam-tu-2014", "--years-from-2014", "nam_tu_2014"),
                                ("--thang-tu-2014", "--months-from-2014", "thang_tu_2014")]:
        p.add_argument(flag, english, dest=dest, metavar="SỐ")
    p.add_argument("--nam", "--years", dest="nam", metavar="NĂM",
                   help="số năm đã đóng, tính như đóng từ 2014 (có năm đóng trước 2014 thì dùng --nam-truoc-2014 "
                        "và --nam-tu-2014)")
    p.add_argument("--thang", "--months", dest="thang", metavar="THÁNG", help="số tháng lẻ đi với --nam")
    p.add_argument("--binh-quan", "--average-base", dest="binh_quan", metavar="SỐ_TIỀN")
    p.add_argument("--ly-do", "--reason", dest="ly_do", default="nghi-12-thang",
                   help="nghi-12-thang, du-tuoi, dinh-cu, benh-hiem-ngheo, suy-giam-81")
    p.add_argument("--dong-lan-dau", "--first-contribution", dest="dong_lan_dau", metavar="NGÀY",
                   help="ngày bắt đầu đóng BHXH (từ 01/07/2025 thì không rút được vì nghỉ 12 tháng)")
    p.add_argument("--ho-tro-da-nhan", "--state-support", dest="ho_tro_da_nhan", metavar="SỐ_TIỀN",
                   help="tổng số tiền Nhà nước đã hỗ trợ đóng BHXH tự nguyện")
    p.add_argument("--gioi-tinh", "--sex", dest="gioi_tinh", metavar="nam|nu")
    p.add_argument("--che-do", "--scheme", dest="che_do", default="bat-buoc", metavar="bat-buoc|tu-nguyen",
                   help=SCHEME_HELP)
    _common(p)
    p.set_defaults(func=_runner(_lump_sum, "mot-lan"))

    p = _sub(sub, "tu-tuat", "survivor", "trợ cấp mai táng, tuất một lần, tuất hằng tháng")
    for flag, english, dest in [("--nam-truoc-2014", "--years-before-2014", "nam_truoc_2014"),
                                ("--thang-truoc-2014", "--months-before-2014", "thang_truoc_2014"),
                                ("--nam-tu-2014", "--years-from-2014", "nam_tu_2014"),
                                ("--thang-tu-2014", "--months-from-2014", "thang_tu_2014"),
                                ("--nam-bat-buoc", "--compulsory-years", "nam_bat_buoc"),
                                ("--thang-bat-buoc", "--compulsory-months", "thang_bat_buoc"),
                                ("--thang-huong", "--months-on-pension", "thang_huong"),
                                ("--than-nhan", "--relatives", "than_nhan"),
                                ("--khong-nguoi-nuoi", "--relatives-no-carer", "khong_nguoi_nuoi")]:
        p.add_argument(flag, english, dest=dest, metavar="SỐ")
    p.add_argument("--binh-quan", "--average-base", dest="binh_quan", metavar="SỐ_TIỀN")
    p.add_argument("--luong-huu", "--pension", dest="luong_huu", metavar="SỐ_TIỀN")
    p.add_argument("--tinh-trang", "--status", dest="tinh_trang", default="dang-dong",
                   help="dang-dong, bao-luu, huu (đang hưởng lương hưu)")
    p.add_argument("--che-do", "--scheme", dest="che_do", default="bat-buoc", metavar="bat-buoc|tu-nguyen|ca-hai")
    p.add_argument("--tai-nan", "--work-death", dest="tai_nan", action="store_true",
                   help="chết do tai nạn lao động, bệnh nghề nghiệp")
    _common(p)
    p.set_defaults(func=_runner(_survivor, "tu-tuat"))

    p = _sub(sub, "thai-san", "maternity", "trợ cấp thai sản khi sinh con")
    p.add_argument("--binh-quan", "--average-salary", dest="binh_quan", metavar="SỐ_TIỀN",
                   help="bình quân tiền lương đóng BHXH 6 tháng gần nhất")
    p.add_argument("--nguoi", "--role", dest="nguoi", default="me", metavar="me|cha")
    p.add_argument("--che-do", "--scheme", dest="che_do", default="bat-buoc", metavar="bat-buoc|tu-nguyen")
    p.add_argument("--so-con", "--babies", dest="so_con", metavar="SỐ", help="số con trong lần sinh")
    p.add_argument("--con-thu", "--child-order", dest="con_thu", metavar="SỐ", help="con thứ mấy")
    p.add_argument("--sinh-mo", "--caesarean", dest="sinh_mo", action="store_true")
    p.add_argument("--thang-dong-12", "--months-paid-in-12", dest="thang_dong_12", metavar="SỐ",
                   help="số tháng đã đóng trong 12 tháng trước khi sinh")
    _common(p)
    p.set_defaults(func=_runner(_maternity, "thai-san"))

    p = _sub(sub, "om-dau", "sickness", "trợ cấp ốm đau")
    p.add_argument("--luong", "--salary", dest="luong", metavar="SỐ_TIỀN", help="tiền lương đóng BHXH tháng gần nhất")
    p.add_argument("--so-ngay", "--days", dest="so_ngay", metavar="SỐ", help="số ngày làm việc nghỉ")
    p.add_argument("--nam", "--years", dest="nam", metavar="NĂM")
    p.add_argument("--thang", "--months", dest="thang", metavar="THÁNG")
    p.add_argument("--loai", "--kind", dest="loai", default="ban-than", metavar="ban-than|dai-ngay|con-om")
    p.add_argument("--tuoi-con", "--child-age", dest="tuoi_con", metavar="TUỔI")
    p.add_argument("--da-nghi", "--days-used", dest="da_nghi", metavar="SỐ")
    p.add_argument("--nang-nhoc", "--heavy-work", dest="nang_nhoc", action="store_true")
    _common(p)
    p.set_defaults(func=_runner(_sickness, "om-dau"))

    p = _sub(sub, "tai-nan", "accident", "trợ cấp tai nạn lao động, bệnh nghề nghiệp")
    p.add_argument("--suy-giam", "--degree", dest="suy_giam", metavar="%", help="mức suy giảm khả năng lao động")
    p.add_argument("--luong", "--salary", dest="luong", metavar="SỐ_TIỀN",
                   help="tiền lương đóng BHXH tháng trước khi bị tai nạn")
    p.add_argument("--nam", "--years", dest="nam", metavar="NĂM", help="số năm đã đóng vào quỹ")
    p.add_argument("--phuc-vu", "--attendant", dest="phuc_vu", action="store_true",
                   help="suy giảm từ 81% và liệt cột sống, mù hai mắt, cụt/liệt hai chi hoặc tâm thần")
    _common(p)
    p.set_defaults(func=_runner(_accident, "tai-nan"))
    return calc
