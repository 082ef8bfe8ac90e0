"""Legal documents the knowledge base may cite, and the citation format.

A citation is written "<document> <number>, Điều N[, khoản K][, điểm x]", for
example "Luật 41/2024/QH15, Điều 70, khoản 1, điểm đ". Parsing it lets tests
check that the cited article exists in the full texts under ../shared/legal/.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# number → (short title, full-text file under shared/legal/ or None)
DOCUMENTS: dict[str, tuple[str, str | None]] = {
    "41/2024/QH15": ("Luật Bảo hiểm xã hội 2024", "luat-bhxh-41-2024-QH15.md"),
    "158/2025/NĐ-CP": ("Nghị định hướng dẫn BHXH bắt buộc", "nghi-dinh-158-2025-ND-CP.md"),
    "159/2025/NĐ-CP": ("Nghị định hướng dẫn BHXH tự nguyện", None),
    "161/2026/NĐ-CP": ("Nghị định về mức lương cơ sở", "nghi-dinh-161-2026-ND-CP.md"),
    "283/2026/NĐ-CP": ("Nghị định xử phạt vi phạm hành chính lĩnh vực lao động, BHXH",
                       "nghi-dinh-283-2026-ND-CP.ocr-b.md"),
    "100/2015/QH13": ("Bộ luật Hình sự 2015 (sửa đổi 2017)", "blhs-2015-dieu-214-216.md"),
    "45/2019/QH14": ("Bộ luật Lao động 2019", None),
    "135/2020/NĐ-CP": ("Nghị định quy định tuổi nghỉ hưu", None),
    "176/2025/NĐ-CP": ("Nghị định về trợ cấp hưu trí xã hội", None),
    "274/2025/NĐ-CP": ("Nghị định về chậm đóng, trốn đóng BHXH", None),
    "12/2022/NĐ-CP": ("Nghị định xử phạt (đã được thay thế từ 10/9/2026)", None),
    "74/2025/QH15": ("Luật Việc làm 2025", None),
    "25/2008/QH12": ("Luật Bảo hiểm y tế (sửa đổi)", None),
    "188/2025/NĐ-CP": ("Nghị định hướng dẫn Luật Bảo hiểm y tế", None),
    "84/2015/QH13": ("Luật An toàn, vệ sinh lao động", None),
    "07/2021/NĐ-CP": ("Nghị định quy định chuẩn nghèo 2021–2025", None),
    "351/2025/NĐ-CP": ("Nghị định quy định chuẩn nghèo 2026–2030", None),
    "73/2024/NĐ-CP": ("Nghị định về mức lương cơ sở (đến 30/6/2026)", None),
    "293/2025/NĐ-CP": ("Nghị định về lương tối thiểu vùng", None),
    "05/2019/NQ-HĐTP": ("Nghị quyết hướng dẫn Điều 214, 215, 216 BLHS", None),
    "78/2025/UBTVQH15": ("Nghị quyết về thời gian đóng của chủ hộ kinh doanh", None),
}

# Articles of the Penal Code our shared excerpt contains.
PENAL_CODE_ARTICLES = {214, 215, 216}

CITATION = re.compile(
    r"^(?P<kind>Luật|Bộ luật|Nghị định|Nghị quyết|Thông tư|Quyết định|Công văn)"
    r"(?:\s+[^\d,]+?)?\s+(?P<number>\d+/\d{4}/[\wĐđ-]+)"
    r"(?:,\s*Điều\s+(?P<article>\d+))?"
    r"(?:,\s*khoản\s+(?P<clause>\d+))?"
    r"(?:,\s*điểm\s+(?P<point>[a-zđ]))?"
    r"(?:\s*\((?P<note>[^)]*)\))?$"
)


@dataclass(frozen=True)
class Citation:
    text: str
    number: str
    article: int | None
    clause: int | None
    point: str | None


def parse_citation(text: str) -> Citation:
    """Parse a citation or raise ValueError naming what is wrong."""
    m = CITATION.match(text.strip())
    if not m:
        raise ValueError(
            f"citation {text!r} is not in the form "
            "'Luật 41/2024/QH15, Điều 70, khoản 1, điểm đ'")
    number = m.group("number")
    if number not in DOCUMENTS:
        raise ValueError(f"citation {text!r} names an unknown document {number!r}")
    article = int(m.group("article")) if m.group("article") else None
    if article is None and DOCUMENTS[number][1] is not None:
        raise ValueError(f"citation {text!r} must name the article (Điều) of {number}")
    clause = int(m.group("clause")) if m.group("clause") else None
    return Citation(text, number, article, clause, m.group("point"))

