"""Legal documents the knowledge base may cite, and the citation format.

A citation is written "<document> <number>, Điều N[, khoản K][, điểm x]", for
example "Luật 41/2024/QH15, Điều 70, khoản 1, điểm đ". Parsing it lets tests
check that the cited article exists in the full texts under ../shared/legal/.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

# number → (short title, full-text file under shared/legal/ or None)
DOCUMENTS: dict[str, tuple[str, str | None]] = {
    "41/2024/QH15": ("Luật Bảo hiểm xã hội 2024", "luat-bhxh-41-2024-QH15.md"),
    "158/2025/NĐ-CP": ("Nghị định hướng dẫn BHXH bắt buộc", "nghi-dinh-158-2025-ND-CP.md"),
    "159/2025/NĐ-CP": ("Nghị định hướng dẫn BHXH tự nguyện", None),
    "161/2026/NĐ-CP": ("Nghị định về mức lương cơ sở", "nghi-dinh-161-2026-ND-CP.md"),
    "162/2026/NĐ-CP": ("Nghị định điều chỉnh lương hưu, trợ cấp BHXH từ 01/7/2026",
                       "nghi-dinh-162-2026-ND-CP.md"),
    "14/2026/TT-BNV": ("Thông tư hướng dẫn điều chỉnh lương hưu từ 01/7/2026", "thong-tu-14-2026-TT-BNV.md"),
    "85/2026/NĐ-CP": ("Nghị định về bảo hiểm hưu trí bổ sung", "nghi-dinh-85-2026-ND-CP.md"),
    "283/2026/NĐ-CP": ("Nghị định xử phạt vi phạm hành chính lĩnh vực lao động, BHXH",
                       "nghi-dinh-283-2026-ND-CP.ocr-b.md"),
    "100/2015/QH13": ("Bộ luật Hình sự 2015 (sửa đổi 2017)", "blhs-2015-dieu-214-216.md"),
    # The Labour Code and the OSH Law are held as code compilations (pháp điển): their
    # articles are found through the note "(Điều N Bộ luật số 45/2019/QH14 …)" under each head.
    "45/2019/QH14": ("Bộ luật Lao động 2019", "phap-dien-lao-dong.md"),
    "84/2015/QH13": ("Luật An toàn, vệ sinh lao động", "phap-dien-an-toan-ve-sinh-lao-dong.md"),
    "135/2020/NĐ-CP": ("Nghị định quy định tuổi nghỉ hưu", None),
    "176/2025/NĐ-CP": ("Nghị định về trợ cấp hưu trí xã hội", None),
    "274/2025/NĐ-CP": ("Nghị định về chậm đóng, trốn đóng BHXH", None),
    "12/2022/NĐ-CP": ("Nghị định xử phạt (đã được thay thế từ 10/9/2026)", None),
    "74/2025/QH15": ("Luật Việc làm 2025", None),
    "374/2025/NĐ-CP": ("Nghị định hướng dẫn Luật Việc làm về bảo hiểm thất nghiệp", None),
    "25/2008/QH12": ("Luật Bảo hiểm y tế (sửa đổi)", None),
    "51/2024/QH15": ("Luật sửa đổi, bổ sung một số điều của Luật Bảo hiểm y tế", None),
    "188/2025/NĐ-CP": ("Nghị định hướng dẫn Luật Bảo hiểm y tế", None),
    "113/2025/QH15": ("Luật Dân số 2025", None),
    "168/2026/NĐ-CP": ("Nghị định hướng dẫn Luật Dân số", None),
    "07/2021/NĐ-CP": ("Nghị định quy định chuẩn nghèo 2021–2025", None),
    "351/2025/NĐ-CP": ("Nghị định quy định chuẩn nghèo 2026–2030", None),
    "73/2024/NĐ-CP": ("Nghị định về mức lương cơ sở (đến 30/6/2026)", None),
    "75/2024/NĐ-CP": ("Nghị định điều chỉnh lương hưu từ 01/7/2024 (đến 30/6/2026)", None),
    "142/2025/QH15": ("Luật sửa đổi một số điều, trong đó có Điều 37 Luật BHXH", None),
    "293/2025/NĐ-CP": ("Nghị định về lương tối thiểu vùng", None),
    "05/2019/NQ-HĐTP": ("Nghị quyết hướng dẫn Điều 214, 215, 216 BLHS", None),
    "78/2025/UBTVQH15": ("Nghị quyết về thời gian đóng của chủ hộ kinh doanh", None),
}

# Full texts that are code compilations (pháp điển) rather than one document.
COMPILATIONS = {"phap-dien-lao-dong.md", "phap-dien-an-toan-ve-sinh-lao-dong.md"}
# Extra copies of a held text (independent OCR): a citation passes if either copy has it.
EXTRA_COPIES = {"283/2026/NĐ-CP": ("nghi-dinh-283-2026-ND-CP.ocr-a.md",)}

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


# ------------------------------------------------------------------ articles of the held texts

ARTICLE_HEAD = re.compile(r"^[#*\s]*Điều (?:16\.1\.LQ\.)?(\d+)\.", re.M)
# In a compilation every head "Điều 20.2.LQ.139. …" is followed by a note naming the source:
# "(Điều 139 Bộ luật số 45/2019/QH14 …)". Guidance decrees and circulars are interleaved.
COMPILED_HEAD = re.compile(
    r"^[#*\s]*Điều \d+\.\d+\.[A-ZĐ]+(?:\.\d+)+\.[^\n]*\n\s*"
    r"\((?:Điều|Ðiều) (?P<article>\d+)\b[^()\n]*?\bsố (?P<number>\d+/\d{4}/[\wĐđ-]+)", re.M)
ANY_COMPILED_HEAD = re.compile(r"^[#*\s]*Điều \d+\.\d+\.[A-ZĐ]+(?:\.\d+)+\.", re.M)


def articles(text: str) -> dict[int, str]:
    """Article number → body, for an ordinary text (first occurrence wins)."""
    heads = list(ARTICLE_HEAD.finditer(text))
    out: dict[int, str] = {}
    for head, nxt in zip(heads, [*heads[1:], None], strict=True):
        body = text[head.end(): nxt.start() if nxt else len(text)]
        out.setdefault(int(head.group(1)), body)
    return out


def compiled_articles(text: str, number: str) -> dict[int, str]:
    """Article number → body for one document inside a code compilation."""
    starts = [m.start() for m in ANY_COMPILED_HEAD.finditer(text)]
    out: dict[int, str] = {}
    for m in COMPILED_HEAD.finditer(text):
        if m.group("number") != number:
            continue
        later = [s for s in starts if s > m.start()]
        out.setdefault(int(m.group("article")), text[m.end(): later[0] if later else len(text)])
    return out


def held_articles(number: str, legal_dir: Path) -> list[dict[int, str]]:
    """Every held copy of a document, each as article → body ([] if not held)."""
    filename = DOCUMENTS[number][1]
    if filename is None:
        return []
    copies = []
    for name in (filename, *EXTRA_COPIES.get(number, ())):
        text = (legal_dir / name).read_text(encoding="utf-8")
        copies.append(compiled_articles(text, number) if name in COMPILATIONS else articles(text))
    return copies


def citation_problem(citation: Citation, legal_dir: Path) -> str | None:
    """Why a citation does not match the held text, or None if it does (or is not held)."""
    copies = held_articles(citation.number, legal_dir)
    if not copies or citation.article is None:
        return None
    bodies = [c[citation.article] for c in copies if citation.article in c]
    if not bodies:
        return f"{citation.text}: no Điều {citation.article} in the legal text"
    if citation.clause is not None:
        clause = re.compile(rf"^\s*{citation.clause}\.\s", re.M)
        if not any(clause.search(b) for b in bodies):
            return f"{citation.text}: no khoản {citation.clause}"
    return None

