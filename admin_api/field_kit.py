"""The field kit for outreach collaborators (issue 17, item 5): public, printable pages.

- /chu-de: every topic and the questions of its entries, each linking to its answer card;
- /hoi-dap/<entry>[?on=YYYY-MM-DD]: the whole answer rendered for a date, its sources, each "Căn cứ"
  linking to the article's text, a short link (and a QR code when `segno` is installed) back to it,
  copy / share / print buttons; the print stylesheet prints the whole card on as many pages as it needs;
- /luat?q=…: an article by citation ("Điều 70 Luật 41/2024", "khoản 2 điều 31", "nd 158 d7") or the
  articles matching some words; /luat/<document> lists its articles; /luat/<document>/<article> shows one;
- /tinh/tu-nguyen: the voluntary contribution for every support group side by side, for a chosen date.

Pages are rendered on the server from templates/fieldkit_*.html (autoescaped), with fieldkit.css and
fieldkit.js from /static: no inline script or style, nothing from another site (strict CSP below).
The legal texts come from the deployment's folder (knowledge/legal_texts.py, BHXH_LEGAL_DIR).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from knowledge import legal_texts
from knowledge.calc_intent import parse_amount
from knowledge.calculators import GROUP_LABELS, PAYMENT_PERIODS, CalculatorInputError, voluntary_contribution
from knowledge.params import ParameterError, format_money, format_percent
from knowledge.schema import Entry, KnowledgeBase
from knowledge.sources import REGISTRY, parse_citation
from knowledge.topics import TOPICS

TEMPLATES = Path(__file__).resolve().parent / "templates"
PUBLIC_URL_ENV = "BHXH_PUBLIC_URL"  # e.g. https://hoidap.example.vn: the base of printed links and QR codes
HOTLINE = "1900 9068"

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
                               "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # The page may carry a link built from the Host header (no BHXH_PUBLIC_URL): never cache it for others.
    "Cache-Control": "no-store",
}

router = APIRouter(include_in_schema=False)
_env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]),
                   trim_blocks=True, lstrip_blocks=True)


def _date_vi(day: dt.date) -> str:
    return f"{day.day:02d}/{day.month:02d}/{day.year}"


_env.filters["date_vi"] = _date_vi
_env.filters["money"] = format_money
_env.filters["amount"] = lambda value: format_money(value).removesuffix(" đồng")  # in a table headed "đồng"


def _page(template: str, status: int = 200, **context: Any) -> HTMLResponse:
    html = _env.get_template(template).render(hotline=HOTLINE, **context)
    return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)


def _not_found(message: str) -> HTMLResponse:
    return _page("fieldkit_message.html", 404, title="Không tìm thấy", message=message)


def _kb(request: Request) -> KnowledgeBase:
    return request.app.state.service.engine.kb


def _setting(request: Request, name: str) -> Any:
    """A field of the app's Settings when it has one (BHXH_* variables read once), else None."""
    return getattr(getattr(request.app.state, "settings", None), name, None)


def _base_url(request: Request) -> str:
    configured = (_setting(request, "public_url") or "").strip().rstrip("/")
    return configured or str(request.base_url).rstrip("/")


def _library(request: Request) -> legal_texts.LegalLibrary:
    """The legal texts of the configured folder (Settings.legal_dir when it exists, else BHXH_LEGAL_DIR)."""
    return legal_texts.library(_setting(request, "legal_dir"))


def _day(value: str | None, today: dt.date) -> tuple[dt.date, str]:
    """The date asked for (?on=YYYY-MM-DD), else today; with a message when it could not be read."""
    if not value:
        return today, ""
    try:
        day = dt.date.fromisoformat(value.strip())
    except ValueError:
        return today, f"Không đọc được ngày “{value[:20]}”; dưới đây là số liệu áp dụng hôm nay."
    if not dt.date(2000, 1, 1) <= day <= dt.date(2100, 12, 31):
        return today, "Ngày phải từ năm 2000 đến năm 2100; dưới đây là số liệu áp dụng hôm nay."
    return day, ""


def _qr_svg(url: str) -> Markup | None:
    """The link as a QR code (inline SVG), when the pure-Python `segno` library is installed."""
    try:
        import segno
    except ImportError:
        return None
    return Markup(segno.make(url, error="m").svg_inline(scale=3, border=2, title="Mã QR dẫn tới trang này"))


# ------------------------------------------------------------------ text to blocks


@dataclass(frozen=True)
class Block:
    kind: str  # "p" | "ul" | "ol"
    lines: tuple[str, ...]  # a paragraph's lines, or a list's items


_BULLET = re.compile(r"^\s*[-•*]\s+")
_NUMBERED = re.compile(r"^\s*\d{1,2}[.)]\s+")


def text_blocks(text: str) -> list[Block]:
    """Plain answer text as paragraphs and lists: blank lines part paragraphs, "- " lines are bullets,
    "1. " lines are numbered items (the answers are written for channels that show plain text)."""
    blocks: list[Block] = []
    for chunk in re.split(r"\n\s*\n", text.strip()):
        current: tuple[str, list[str]] | None = None
        for line in chunk.splitlines():
            if not line.strip():
                continue
            kind = "ul" if _BULLET.match(line) else "ol" if _NUMBERED.match(line) else "p"
            item = _BULLET.sub("", line).strip() if kind == "ul" else line.strip()
            if kind == "ol":
                item = _NUMBERED.sub("", line).strip()
            if current and current[0] == kind:
                current[1].append(item)
            else:
                if current:
                    blocks.append(Block(current[0], tuple(current[1])))
                current = (kind, [item])
        if current:
            blocks.append(Block(current[0], tuple(current[1])))
    return blocks


# ------------------------------------------------------------------ sources linked to the law


def source_link(source: str, library: legal_texts.LegalLibrary) -> legal_texts.CitationLink:
    return library.citation_link(source)


def article_href(document: legal_texts.LegalDocument, article: int, clause: int | None = None) -> str:
    return legal_texts.article_path(document, article, clause)


def _citing_entries(kb: KnowledgeBase, number: str, article: int) -> list[Entry]:
    """Entries whose sources cite this article: what the knowledge base says it means in practice."""
    out = []
    for entry in kb.entries.values():
        for source in entry.sources:
            try:
                c = parse_citation(source)
            except ValueError:
                continue
            if c.number == number and c.article == article:
                out.append(entry)
                break
    return out


# ------------------------------------------------------------------ topic index and answer cards


@router.get("/chu-de")
def topic_index(request: Request) -> HTMLResponse:
    kb = _kb(request)
    by_topic = kb.by_topic()
    # In the order the entries are written (general questions first), not alphabetically.
    topics = [{"key": key, "label": label, "entries": by_topic.get(key, [])}
              for key, label in TOPICS.items()]
    return _page("fieldkit_topics.html", title="Các chủ đề và câu hỏi", topics=topics,
                 total=sum(len(t["entries"]) for t in topics))


def _entry_text(kb: KnowledgeBase, entry: Entry, on: dt.date) -> tuple[str, str, str]:
    """The answer, its details and the caution, rendered for `on`."""
    answer = kb.render_answer(entry, on)
    details = kb.parameters.render(entry.details, on) if entry.details else ""
    return answer, details, kb.caution(entry, on)


@router.get("/hoi-dap/{entry_id}")
def entry_page(request: Request, entry_id: str, on: str | None = None) -> HTMLResponse:
    kb = _kb(request)
    entry = kb.entries.get(entry_id)
    if entry is None:
        return _not_found("Không có câu hỏi này (có thể đã được đổi tên hoặc gỡ bỏ). "
                          "Bạn xem danh sách câu hỏi theo chủ đề.")
    today = dt.date.today()
    day, date_problem = _day(on, today)
    try:
        answer, details, caution = _entry_text(kb, entry, day)
    except ParameterError:
        date_problem = f"Chưa có số liệu cho ngày {_date_vi(day)}; dưới đây là số liệu áp dụng hôm nay."
        day = today
        answer, details, caution = _entry_text(kb, entry, day)
    short = kb.render_short(entry, day)  # the chat's first screen, above the whole answer (issue 17 item 2)
    library = _library(request)
    sources = [source_link(s, library) for s in entry.sources]
    path = f"/hoi-dap/{quote(entry.id)}" + (f"?{urlencode({'on': day.isoformat()})}" if day != today else "")
    link = _base_url(request) + path
    share = "\n\n".join(part for part in (
        entry.question, answer, details, caution,
        f"Áp dụng ngày {_date_vi(day)}.",
        "Căn cứ:\n" + "\n".join(f"- {s}" for s in entry.sources),
        f"Xem trực tuyến: {link}") if part)
    related = [kb.entries[r] for r in entry.related if r in kb.entries]
    return _page("fieldkit_entry.html", title=entry.question, entry=entry, topic=TOPICS[entry.topic],
                 day=day, today=today, date_problem=date_problem, short=short, answer=text_blocks(answer),
                 details=text_blocks(details) if details else [], caution=caution, sources=sources,
                 related=related, link=link, qr=_qr_svg(link), share_text=share,
                 before_effective=day < entry.effective_from, laws_installed=bool(library))


# ------------------------------------------------------------------ the law


@router.get("/luat")
def law_lookup(request: Request, q: str | None = None) -> HTMLResponse:
    library = _library(request)
    query = (q or "").strip()
    if not query:
        documents = library.sorted_documents()
        # The documents the knowledge base cites first; the compilations' other documents folded away.
        cited = [d for d in documents if d.number in REGISTRY]
        return _page("fieldkit_law.html", title="Tra cứu văn bản pháp luật", query="", library=library,
                     result=None, message="" if library else legal_texts.NO_TEXTS, cited=cited,
                     others=[d for d in documents if d.number not in REGISTRY])
    result = library.lookup(query)
    if result.article is not None and result.document is not None:
        return _article_page(request, library, result.document, result.article, query=query,
                             message=result.message, clause=result.reference.clause if result.reference else None)
    if result.document is not None and not result.message:
        return _page("fieldkit_document.html", title=result.document.name, document=result.document,
                     query=query)
    hits = [{"hit": h, "href": article_href(h.document, h.article.number)} for h in result.hits]
    return _page("fieldkit_law.html", title=f"Tra cứu: {query[:60]}", query=query, library=library,
                 result=result, hits=hits, message=result.message)


@router.get("/luat/{slug}")
def law_document(request: Request, slug: str) -> HTMLResponse:
    library = _library(request)
    document = library.by_slug(slug)
    if document is None:
        return _not_found(legal_texts.NO_TEXTS if not library else "Không có văn bản này trên máy chủ.")
    return _page("fieldkit_document.html", title=document.name, document=document, query="")


@router.get("/luat/{slug}/{article}")
def law_article(request: Request, slug: str, article: str) -> HTMLResponse:
    library = _library(request)
    document = library.by_slug(slug)
    if document is None:
        return _not_found(legal_texts.NO_TEXTS if not library else "Không có văn bản này trên máy chủ.")
    found = document.articles.get(int(article)) if article.isdigit() and len(article) <= 4 else None
    if found is None:
        return _not_found(f"Không tìm thấy Điều {article[:6]} trong {document.name}; văn bản có {document.span()}.")
    return _article_page(request, library, document, found)


def _article_page(request: Request, library: legal_texts.LegalLibrary, document: legal_texts.LegalDocument,
                  article: legal_texts.Article, *, query: str = "", message: str = "",
                  clause: int | None = None) -> HTMLResponse:
    numbers = list(document.articles)
    at = numbers.index(article.number)
    neighbours = {"prev": numbers[at - 1] if at > 0 else None,
                  "next": numbers[at + 1] if at + 1 < len(numbers) else None}
    href = article_href(document, article.number)
    link = _base_url(request) + href
    share = "\n".join([f"{document.name}", article.heading, "", article.text, "", f"Xem trực tuyến: {link}"])
    return _page("fieldkit_article.html", title=f"{article.heading} — {document.name}", document=document,
                 article=article, notes=document.notes_for(article.number), query=query, message=message,
                 highlight=clause, neighbours=neighbours, link=link, share_text=share,
                 citing=_citing_entries(_kb(request), document.number, article.number))


# ------------------------------------------------------------------ voluntary contributions, all groups


def _amount(typed: str) -> int | None:
    """An amount typed in the form: "2 triệu", "2tr", "2.000.000", or bare digits ("1000")."""
    found = parse_amount(typed)
    if found is None and re.fullmatch(r"[\d.,\s]{1,20}", typed.strip()):
        digits = re.sub(r"\D", "", typed)
        return int(digits) if digits else None
    return found



@router.get("/tinh/tu-nguyen")
def voluntary_table(request: Request, on: str | None = None, income: str | None = None,
                    months: str | None = None) -> HTMLResponse:
    kb = _kb(request)
    today = dt.date.today()
    day, problem = _day(on, today)
    period = int(months) if months and months.isdigit() and int(months) in PAYMENT_PERIODS else 1
    table = kb.parameters
    try:
        floor = int(table.value("rural_poverty_line", day))
    except ParameterError:
        problem, day = f"Chưa có số liệu cho ngày {_date_vi(day)}; dưới đây là số liệu áp dụng hôm nay.", today
        floor = int(table.value("rural_poverty_line", day))
    chosen = _amount(income) if income and income.strip() else floor
    rows: list[dict[str, Any]] = []
    error, first, notes, cited = "", None, [], []
    if chosen is None:
        error = f"Không đọc được số tiền “{(income or '')[:30]}”. Bạn gõ lại, ví dụ: 2 triệu hoặc 2.000.000."
    else:
        try:
            for group, label in GROUP_LABELS.items():
                r = voluntary_contribution(chosen, group, period, day, table=table)
                first = first or r
                notes += [n for n in r.notes if n not in notes]
                cited += [s for s in r.sources if s not in cited]
                rows.append({"label": label[:1].upper() + label[1:], "percent": format_percent(r.support_percent),
                             "contribution": r.contribution_per_month, "support": r.support_per_month,
                             "net": r.net_per_month, "net_period": r.net_per_period,
                             "support_period": r.support_per_period})
        except CalculatorInputError as exc:
            error, rows, first = str(exc), [], None
    library = _library(request)
    sources = [source_link(s, library) for s in cited]
    next_year = dt.date(day.year + 1, 1, 1)
    query = {"on": day.isoformat(), "months": str(period)}
    if income:
        query["income"] = income
    link = _base_url(request) + "/tinh/tu-nguyen?" + urlencode(query)
    share = ""
    if first:
        lines = [f"Tiền đóng BHXH tự nguyện, áp dụng ngày {_date_vi(day)}, thu nhập chọn đóng "
                 f"{format_money(first.income)}/tháng:"]
        lines += [f"- {r['label']}: hỗ trợ {r['percent']}, phải đóng {format_money(r['contribution'])}, "
                  f"Nhà nước hỗ trợ {format_money(r['support'])}, thực đóng {format_money(r['net'])}/tháng"
                  for r in rows]
        lines += ["Căn cứ: " + "; ".join(cited), f"Xem trực tuyến: {link}"]
        share = "\n".join(lines)
    return _page("fieldkit_voluntary.html", title="Bảng tiền đóng BHXH tự nguyện theo nhóm", day=day, today=today,
                 problem=problem, error=error, rows=rows, result=first, period=period,
                 periods=[(m, "Hằng tháng" if m == 1 else f"{m} tháng một lần") for m in PAYMENT_PERIODS],
                 income=income or "", floor=floor, sources=sources, notes=notes, next_year=next_year, link=link,
                 share_text=share)
