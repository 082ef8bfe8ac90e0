"""Legal documents the knowledge base may cite (the registry), and the citation format.

The registry (knowledge/documents.yaml) is the one list of cited documents with their status:
in force from, amended by, replaced by. `knowledge/registry.py` turns it into review flags.

A citation is written "<document> <number>, Điều N[, khoản K][, điểm x]", for
example "Luật 41/2024/QH15, Điều 70, khoản 1, điểm đ". Parsing it lets tests
check that the cited article exists in the full texts under ../shared/legal/.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from knowledge.params import as_date

REGISTRY_FILE = Path(__file__).parent / "documents.yaml"
CHANGE_KINDS = {"amended", "replaced"}


@dataclass(frozen=True)
class Change:
    """An amendment or replacement of a registered document."""

    kind: str  # "amended" | "replaced"
    by: str  # number of the amending or replacing document
    on: dt.date  # in force from
    noted: dt.date  # the day it entered the registry: entries reviewed earlier are flagged
    articles: tuple[int, ...] | None  # articles touched; None = whole document or unknown
    note: str = ""


@dataclass(frozen=True)
class Document:
    number: str
    title: str
    text: str | None  # full-text file under shared/legal/, or None when not held
    in_force: dt.date
    changes: tuple[Change, ...] = ()


def load_registry(path: Path = REGISTRY_FILE) -> dict[str, Document]:
    """Read documents.yaml; raise ValueError naming the document and field on any problem."""
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(raw, dict):
        raise ValueError(f"{path.name}: expected a mapping of document numbers")
    out: dict[str, Document] = {}
    for number, body in raw.items():
        where = f"{path.name}: document {number!r}"
        if not isinstance(body, dict) or not body.get("title") or "in_force" not in body:
            raise ValueError(f"{where}: needs 'title' and 'in_force'")
        changes = []
        for n, c in enumerate(body.get("changes") or []):
            cw = f"{where}, change {n + 1}"
            if not isinstance(c, dict) or c.get("kind") not in CHANGE_KINDS or not c.get("by") or "in_force" not in c:
                raise ValueError(f"{cw}: needs 'kind' (amended|replaced), 'by' and 'in_force'")
            on = as_date(c["in_force"], cw)
            articles = c.get("articles")
            if articles is not None and not (isinstance(articles, list) and all(isinstance(a, int) for a in articles)):
                raise ValueError(f"{cw}: 'articles' must be a list of article numbers")
            changes.append(Change(c["kind"], str(c["by"]), on, as_date(c.get("noted", on), cw),
                                  tuple(articles) if articles else None, str(c.get("note") or "")))
        out[str(number)] = Document(str(number), str(body["title"]), body.get("text"),
                                    as_date(body["in_force"], where), tuple(changes))
    return out


REGISTRY: dict[str, Document] = load_registry()
# number → (short title, full-text file under shared/legal/ or None): the view citation checks use.
DOCUMENTS: dict[str, tuple[str, str | None]] = {n: (d.title, d.text) for n, d in REGISTRY.items()}

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

