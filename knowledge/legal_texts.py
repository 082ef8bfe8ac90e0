"""The legal texts a deployment provides: documents split into articles (Điều) and clauses (khoản),
looked up by citation ("Điều 70 Luật 41/2024", "khoản 2 điều 31", "nd 158 d7") or searched by words.

The texts are not part of the repository (their licences and OCR quality vary): a deployment puts
them, one UTF-8 text or Markdown file per document, in a folder named by BHXH_LEGAL_DIR (tests use
../shared/legal). Without the folder every lookup answers `NO_TEXTS`, a plain Vietnamese sentence.

A file is identified as a document through the registry (knowledge/documents.yaml names the file of
each held text), else by the number it states ("Số: 158/2025/NĐ-CP", "so_hieu: …"). Code compilations
(pháp điển: "Điều 20.2.LQ.139." followed by "(Điều 139 Bộ luật số 45/2019/QH14 …)") give the articles
of every document they quote, so a compilation also holds parts of decrees the registry has no text for.
"""

from __future__ import annotations

import functools
import itertools
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from knowledge.sources import EXTRA_COPIES, REGISTRY, parse_citation
from retrieval.bm25 import LexicalIndex
from retrieval.normalize import fold_accents, nfc, normalize_query, tokenize

LEGAL_DIR_ENV = "BHXH_LEGAL_DIR"
MAIN_LAW = "41/2024/QH15"  # "điều 70" alone means the Social Insurance Law
HOTLINE = "1900 9068"

NO_TEXTS = ("Máy chủ này chưa được cài văn bản pháp luật nào, nên chưa xem được toàn văn điều luật. "
            "Bạn có thể tra văn bản trên Cơ sở dữ liệu quốc gia về văn bản pháp luật, hoặc hỏi cơ quan BHXH "
            f"(tổng đài {HOTLINE}).")
EMPTY_QUERY = "Bạn hãy nhập số điều (ví dụ: Điều 70 Luật 41/2024, khoản 2 điều 31) hoặc vài từ cần tìm."
COMPILED_NOTE = ("Trích từ Bộ pháp điển (bản tổng hợp), có thể chưa cập nhật các sửa đổi mới nhất; "
                 "chỉ gồm các điều được pháp điển.")
OCR_NOTE = ("Bản nhận dạng chữ (OCR) do bên thứ ba làm, có thể còn lỗi chữ hoặc lỗi số; "
            "hãy đối chiếu bản chính thức trước khi trích dẫn.")

# ------------------------------------------------------------------ documents and articles


@dataclass(frozen=True)
class Clause:
    number: int
    lines: tuple[str, ...]  # the clause's own line first, then its points (a), b), …) and the rest


@dataclass(frozen=True)
class Article:
    document: str  # number of its document, e.g. "41/2024/QH15"
    number: int
    title: str
    intro: tuple[str, ...]  # lines before the first clause (an article without clauses has only these)
    clauses: tuple[Clause, ...]

    def clause(self, number: int) -> Clause | None:
        return next((c for c in self.clauses if c.number == number), None)

    @property
    def text(self) -> str:
        return "\n".join([*self.intro, *(line for c in self.clauses for line in c.lines)])

    @property
    def heading(self) -> str:
        return f"Điều {self.number}. {self.title}" if self.title else f"Điều {self.number}"


@dataclass
class LegalDocument:
    number: str
    kind: str  # Luật, Bộ luật, Nghị định, Thông tư, Nghị quyết, …
    title: str
    file: str
    articles: dict[int, Article] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # caveats shown with every article
    # Amendments and replacements the registry knows: (sentence, articles touched or None when unknown).
    changes: list[tuple[str, tuple[int, ...] | None]] = field(default_factory=list)

    @property
    def name(self) -> str:
        """"Luật 41/2024/QH15", the form citations use."""
        return f"{self.kind} {self.number}"

    @property
    def slug(self) -> str:
        return document_slug(self.number)

    def notes_for(self, article: int) -> list[str]:
        """The caveats to show with one article: the document's own, then the changes that touch it
        (or whose scope is unknown), and a line naming the other changes of the document."""
        touching = [text for text, articles in self.changes if articles is None or article in articles]
        others = [text for text, articles in self.changes if articles is not None and article not in articles]
        out = [*self.notes, *touching]
        if others:
            out.append(f"Các sửa đổi khác của văn bản này ({len(others)}) không chạm tới Điều {article}.")
        return out

    def span(self) -> str:
        numbers = sorted(self.articles)
        if not numbers:
            return "không có điều nào"
        return f"Điều {numbers[0]}" if len(numbers) == 1 else f"Điều {numbers[0]} đến Điều {numbers[-1]}"


def article_path(document: LegalDocument, article: int, clause: int | None = None) -> str:
    """The web page of an article (admin_api/field_kit.py serves it), the clause as an anchor."""
    return f"/luat/{document.slug}/{article}" + (f"#khoan-{clause}" if clause is not None else "")


@dataclass(frozen=True)
class CitationLink:
    text: str  # the citation as the entry writes it
    path: str | None  # the page of the article (or document) cited, when its text is installed
    title: str  # the article's title ("Hưởng bảo hiểm xã hội một lần"), to show what the citation is about


def document_slug(number: str) -> str:
    """URL form of a document number: "158/2025/NĐ-CP" → "158-2025-nd-cp"."""
    return re.sub(r"[^a-z0-9]+", "-", fold_accents(number).lower()).strip("-")


def kind_of(number: str, title: str = "") -> str:
    """The kind of document a number denotes (its issuer suffix), as citations write it."""
    suffix = fold_accents(number.split("/")[-1]).upper() if number.count("/") >= 2 else ""
    if title.startswith("Bộ luật"):
        return "Bộ luật"
    if suffix.startswith("QH"):
        return "Luật"
    if suffix.startswith("ND"):
        return "Nghị định"
    if suffix.startswith(("TT", "TTLT")):
        return "Thông tư"
    if suffix.startswith(("NQ", "UBTVQH")):
        return "Nghị quyết"
    if suffix.startswith("QD"):
        return "Quyết định"
    return "Văn bản"


# Article heads: "Điều 70. Hưởng …", "### Điều 1. …", "**Điều 1. …**", a tab before some heads.
_ARTICLE_HEAD = re.compile(r"^[#*\s]*Điều\s+(\d{1,3})\s*\.\s*(.*?)[*\s]*$", re.M)
# Compilation heads "Điều 20.2.LQ.139. Title", then a note naming the source article and document.
_COMPILED_HEAD = re.compile(r"^[#* \t]*Điều\s+(?P<code>\d+\.\d+\.[A-ZĐ]+(?:\.\d+)+)\.\s*(.*?)[*\s]*$", re.M)
_COMPILED_NOTE_LINE = re.compile(
    r"^[ \t]*\((?:Điều|Ðiều)\s+(?P<article>\d+)\s+(?P<kind>[^()\d\n]*?)\s*số\s+"
    r"(?P<number>\d+/\d{4}/[\wĐđ-]*[\wĐđ])(?P<rest>[^()\n]*)\)[ \t]*$", re.M)
_RELATED_NOTE = re.compile(r"^\((?:Điều|Khoản|Điểm|Chương|Mục) này có nội dung liên quan")
# Where an article's text ends: the next chapter or section, the signature block, appendices, editors' notes.
_END_OF_ARTICLE = re.compile(
    r"^\s*(?:#*\s*\**\s*(?:Chương|CHƯƠNG|Mục|MỤC|Phần thứ|PHẦN THỨ|Phần|PHẦN)\s+[IVXLCDM\d]+\b"
    r"|Nơi nhận|PHỤ LỤC|Phụ lục\s+[IVX\d]+\s*$|TM\.\s|KT\.\s|Luật này được Quốc hội|\|?\s*CHỦ TỊCH QUỐC HỘI"
    r"|Mẫu số\s+\d+\s*$|#{1,6}\s+(?!Điều\b)|-{3,}\s*$|_{5,}\s*$)")
_CLAUSE = re.compile(r"^(\d{1,2})\.\s+\S")
_FRONT_MATTER_NUMBER = re.compile(r"^(?:so_hieu|sohieu|số hiệu)\s*:\s*\"?(\d+/\d{4}/[\wĐđ-]*[\wĐđ])", re.M | re.I)
_STATED_NUMBER = re.compile(r"(?:Luật số|Số)\s*:?\s*\**\s*(\d+/\d{4}/[\wĐđ-]*[\wĐđ])")


def _clean(line: str) -> str:
    """A display line: Markdown emphasis and heading marks and table pipes at the ends removed."""
    line = line.replace("**", "").replace("\t", " ").strip()
    return re.sub(r"^#+\s*", "", line).strip(" |")


_PAGE_NUMBER = re.compile(r"^\d{1,3}$")
_NEW_UNIT = re.compile(r"^(?:\d{1,2}[.)]\s|[a-zđ]\)|[-–•+>])")
_SENTENCE_END = (".", ":", ";", "!", "?", "”", '"', ")", "…")


def _body_lines(body: str) -> list[str]:
    """An article's paragraphs: OCR texts break lines inside sentences and keep page numbers, so a line
    that does not start a clause, point or list item continues a paragraph not ended by punctuation."""
    out: list[str] = []
    for raw in body.splitlines():
        if _END_OF_ARTICLE.match(raw):
            break
        line = _clean(raw)
        if not line or _RELATED_NOTE.match(line) or _PAGE_NUMBER.match(line):
            continue
        if out and not out[-1].endswith(_SENTENCE_END) and not _NEW_UNIT.match(line):
            out[-1] = f"{out[-1]} {line}"
        else:
            out.append(line)
    return out


def _article(document: str, number: int, title: str, lines: list[str]) -> Article:
    """Split an article's lines into its intro and its clauses (numbered 1., 2., … in order)."""
    intro: list[str] = []
    clauses: list[list[str]] = []
    for line in lines:
        m = _CLAUSE.match(line)
        # Only the next number starts a clause: numbered lists quoted inside a clause stay in it.
        if m and int(m.group(1)) == len(clauses) + 1:
            clauses.append([line])
        elif clauses:
            clauses[-1].append(line)
        else:
            intro.append(line)
    return Article(document, number, _clean(title), tuple(intro),
                   tuple(Clause(n, tuple(c)) for n, c in enumerate(clauses, start=1)))


def parse_articles(text: str, document: str) -> dict[int, Article]:
    """Articles of an ordinary text, heads in increasing order (a quoted "Điều 39" inside an
    amending article, or a model decision in an appendix, does not start an article)."""
    heads = []
    for m in _ARTICLE_HEAD.finditer(text):
        number = int(m.group(1))
        last = heads[-1][0] if heads else 0
        if last < number <= last + 5:  # OCR may lose a head or two
            heads.append((number, m))
    out: dict[int, Article] = {}
    for (number, head), nxt in zip(heads, [*heads[1:], None], strict=True):
        body = text[head.end(): nxt[1].start() if nxt else len(text)]
        out[number] = _article(document, number, head.group(2), _body_lines(body))
    return out


@dataclass(frozen=True)
class _Compiled:
    number: str
    kind: str
    description: str  # what the note says the document is about ("" when the note names only the number)
    article: Article


def parse_compilation(text: str) -> list[_Compiled]:
    """Every article of a code compilation with the document it comes from.

    An article starts at its source note "(Điều 4 Nghị định số 135/2020/NĐ-CP, …)", which normally
    follows its head "Điều 20.2.NĐ.2.4. Title"; some notes have lost their head (the heads are listed
    elsewhere), so the title is found by code: the head's last number is the article, the rest of the
    code ("20.2.NĐ.2") names the document, as the heads that do precede a note show. Parts of one
    source article placed under different heads are joined."""
    heads = {m.start(): m for m in _COMPILED_HEAD.finditer(text)}
    notes = [m for m in _COMPILED_NOTE_LINE.finditer(text)]
    titles = {m.group("code"): _clean(m.group(2)) for m in heads.values()}
    prefixes: dict[str, str] = {}
    preceding: dict[int, re.Match[str]] = {}  # note position → the head just before it
    for note in notes:
        before = text[:note.start()].rstrip()
        line_start = before.rfind("\n") + 1
        head = heads.get(line_start)
        if head is not None:
            preceding[note.start()] = head
            prefixes.setdefault(nfc(note.group("number")), head.group("code").rsplit(".", 1)[0])
    bounds = sorted([*heads, *(n.start() for n in notes)])
    out: dict[tuple[str, int], _Compiled] = {}
    for note in notes:
        number, article = nfc(note.group("number")), int(note.group("article"))
        later = [b for b in bounds if b > note.start()]
        lines = _body_lines(text[note.end(): later[0] if later else len(text)])
        head = preceding.get(note.start())
        title = _clean(head.group(2)) if head else titles.get(f"{prefixes.get(number, '?')}.{article}", "")
        description = re.split(r"\s+ngày\s+\d|,", note.group("rest"), maxsplit=1)[0].strip()
        key = (number, article)
        if key in out:
            old = out[key]
            lines = [*old.article.intro, *(line for c in old.article.clauses for line in c.lines), *lines]
            title, description = old.article.title or title, old.description or description
        kind = note.group("kind").strip() or kind_of(number)
        out[key] = _Compiled(number, kind[:1].upper() + kind[1:], description, _article(number, article, title, lines))
    return list(out.values())


def is_compilation(text: str) -> bool:
    return _COMPILED_HEAD.search(text) is not None


def stated_number(text: str) -> str | None:
    """The document number a text states in its front matter or heading."""
    head = text[:6000]
    m = _FRONT_MATTER_NUMBER.search(head) or _STATED_NUMBER.search(head)
    return nfc(m.group(1)) if m else None


# ------------------------------------------------------------------ the library


@dataclass(frozen=True)
class Reference:
    """What a citation typed by a person names; None where it names nothing."""

    document: str | None  # a document number of the registry or the library
    article: int | None
    clause: int | None
    point: str | None
    document_text: str = ""  # how the document was named, for messages ("nghị định 159")
    rest: str = ""  # the words left once the citation parts are taken out


@dataclass(frozen=True)
class SearchHit:
    article: Article
    document: LegalDocument
    score: float
    snippet: str


@dataclass(frozen=True)
class LookupResult:
    query: str
    reference: Reference | None = None
    document: LegalDocument | None = None
    article: Article | None = None
    hits: tuple[SearchHit, ...] = ()
    message: str = ""  # why nothing was found, or a remark on what was ("Điều 31 không có khoản 9")

    @property
    def found(self) -> bool:
        return self.article is not None or self.document is not None or bool(self.hits)


class LegalLibrary:
    """The documents under one folder, by number; lookup by citation and search by words."""

    _index: tuple[LexicalIndex, LexicalIndex] | None

    def __init__(self, directory: Path | None) -> None:
        self.directory = directory
        self.documents: dict[str, LegalDocument] = {}
        self.skipped: list[str] = []  # files that are not a document we can read, and why
        if directory is not None and directory.is_dir():
            self._load(directory)
        self._entries = [(d, a) for d in self.documents.values() for a in d.articles.values()]
        self._index: LexicalIndex | None = None

    # -------------------------------------------------------------- loading

    def _load(self, directory: Path) -> None:
        files = {p.name: p for p in sorted(directory.glob("*")) if p.suffix in {".md", ".txt"} and p.is_file()}
        files.pop("README.md", None)
        by_registry = {d.text: n for n, d in REGISTRY.items() if d.text}
        copies = {name for names in EXTRA_COPIES.values() for name in names}
        # The registry's own file of each document first, so it wins over other copies.
        order = sorted(files, key=lambda name: (name not in by_registry, name))
        for name in order:
            if name in copies:
                self.skipped.append(f"{name}: bản sao thứ hai của một văn bản đã có")
                continue
            text = nfc(files[name].read_text(encoding="utf-8", errors="replace"))
            if is_compilation(text):
                self._add_compiled(name, text)
                continue
            number = by_registry.get(name) or stated_number(text)
            if number is None:
                self.skipped.append(f"{name}: không nhận ra số hiệu văn bản")
                continue
            if number in self.documents:
                self.skipped.append(f"{name}: {number} đã có từ {self.documents[number].file}")
                continue
            articles = parse_articles(text, number)
            if not articles:
                self.skipped.append(f"{name}: không có điều nào")
                continue
            document = self._document(number, name)
            document.articles = articles
            if "ocr" in name.lower() or re.search(r"\bOCR\b", text[:8000]):
                document.notes.append(OCR_NOTE)
            self.documents[number] = document

    def _document(self, number: str, file: str, kind: str = "", description: str = "") -> LegalDocument:
        registered = REGISTRY.get(number)
        title = registered.title if registered else description
        document = LegalDocument(number, kind_of(number, title) if registered or not kind else kind,
                                 title or number, file)
        for change in registered.changes if registered else ():
            by = f"{kind_of(change.by, REGISTRY[change.by].title if change.by in REGISTRY else '')} {change.by}"
            if change.kind == "replaced":
                text = f"Văn bản này đã được thay thế bởi {by} từ {change.on:%d/%m/%Y}."
            else:
                scope = (f"{', '.join(f'Điều {a}' for a in change.articles)} của văn bản này" if change.articles
                         else "Văn bản này")
                unknown = "" if change.articles else " (chưa rõ những điều nào)"
                text = (f"{scope} được sửa đổi, bổ sung bởi {by} từ {change.on:%d/%m/%Y}{unknown}; "
                        "nội dung dưới đây là bản gốc, chưa cập nhật sửa đổi đó.")
            document.changes.append((text, change.articles if change.kind == "amended" else None))
        return document

    def _add_compiled(self, name: str, text: str) -> None:
        found = parse_compilation(text)
        if not found:
            self.skipped.append(f"{name}: bản pháp điển không có điều nào đọc được")
        for item in found:
            document = self.documents.get(item.number)
            if document is None:
                document = self._document(item.number, name, item.kind, item.description)
                document.notes.append(COMPILED_NOTE)
                self.documents[item.number] = document
            if COMPILED_NOTE in document.notes:  # a document held whole elsewhere keeps that text
                document.articles.setdefault(item.article.number, item.article)
        for document in self.documents.values():
            if COMPILED_NOTE in document.notes:
                document.articles = dict(sorted(document.articles.items()))

    # -------------------------------------------------------------- access

    def __bool__(self) -> bool:
        return bool(self.documents)

    def by_slug(self, slug: str) -> LegalDocument | None:
        return next((d for d in self.documents.values() if d.slug == slug), None)

    def article(self, number: str, article: int) -> Article | None:
        document = self.documents.get(number)
        return document.articles.get(article) if document else None

    def citation_link(self, source: str) -> CitationLink:
        """Where a citation of the knowledge base ("Luật 41/2024/QH15, Điều 70, khoản 1, điểm đ") can be
        read: the article's page with the clause as anchor, or nothing when the text is not installed."""
        try:
            citation = parse_citation(source)
        except ValueError:
            return CitationLink(source, None, "")
        document = self.documents.get(citation.number)
        if document is None:
            return CitationLink(source, None, "")
        if citation.article is None:
            return CitationLink(source, f"/luat/{document.slug}", document.title)
        article = document.articles.get(citation.article)
        if article is None:
            return CitationLink(source, None, "")
        clause = citation.clause if citation.clause is not None and article.clause(citation.clause) else None
        return CitationLink(source, article_path(document, article.number, clause), article.title)

    def sorted_documents(self) -> list[LegalDocument]:
        """Laws first, then decrees, circulars and the rest; newest first within a kind."""
        rank = {"Luật": 0, "Bộ luật": 1, "Nghị định": 2, "Nghị quyết": 3, "Thông tư": 4}

        def key(d: LegalDocument) -> tuple[int, bool, int, int]:
            n, year = d.number.split("/")[:2]
            return (rank.get(d.kind, 5), COMPILED_NOTE in d.notes, -int(year), int(n))

        return sorted(self.documents.values(), key=key)

    # -------------------------------------------------------------- citations

    def known_numbers(self) -> list[str]:
        return list(dict.fromkeys([*self.documents, *REGISTRY]))

    def lookup(self, query: str) -> LookupResult:
        """An article by citation, a document by name, else the articles that best match the words."""
        query = nfc(query or "").strip()[:300]
        if not self.documents:
            return LookupResult(query, message=NO_TEXTS)
        if not tokenize(query):
            return LookupResult(query, message=EMPTY_QUERY)
        ref = parse_reference(query, self.known_numbers())
        if ref.document_text and ref.document is None:
            return LookupResult(query, ref, message=f"Không có văn bản “{ref.document_text}” trong danh mục "
                                                    "văn bản được trích dẫn.")
        if ref.article is not None:
            return self._article_result(query, ref)
        if ref.document is not None:
            document = self.documents.get(ref.document)
            if document is None:
                return LookupResult(query, ref, message=self._not_held(ref.document))
            if not ref.rest:
                return LookupResult(query, ref, document=document)
            return self._search_result(query, ref, self.search(ref.rest, documents=[ref.document]))
        return self._search_result(query, ref, self.search(query))

    def _not_held(self, number: str) -> str:
        registered = REGISTRY.get(number)
        name = f"{kind_of(number, registered.title if registered else '')} {number}"
        about = f" ({registered.title})" if registered else ""
        return (f"Máy chủ này chưa có toàn văn {name}{about}. Bạn có thể tra văn bản trên Cơ sở dữ liệu quốc gia "
                f"về văn bản pháp luật hoặc hỏi cơ quan BHXH (tổng đài {HOTLINE}).")

    def _article_result(self, query: str, ref: Reference) -> LookupResult:
        number = ref.document or MAIN_LAW
        document = self.documents.get(number)
        if document is None:
            return LookupResult(query, ref, message=self._not_held(number))
        assert ref.article is not None
        article = document.articles.get(ref.article)
        if article is None:
            held = ("" if COMPILED_NOTE not in document.notes
                    else " (bản đang có chỉ gồm các điều được pháp điển)")
            return LookupResult(query, ref, document=document,
                                message=f"Không tìm thấy Điều {ref.article} trong {document.name}; văn bản có "
                                        f"{document.span()}{held}.")
        message = ""
        if ref.clause is not None and article.clause(ref.clause) is None:
            count = len(article.clauses)
            message = (f"Điều {article.number} không có khoản {ref.clause}"
                       + (f" (chỉ có khoản 1 đến khoản {count})" if count else " (điều này không chia khoản)")
                       + "; dưới đây là toàn văn điều.")
        return LookupResult(query, ref, document=document, article=article, message=message)

    def _search_result(self, query: str, ref: Reference, hits: list[SearchHit]) -> LookupResult:
        if not hits:
            return LookupResult(query, ref, message="Không tìm thấy điều luật nào có các từ này. Bạn thử từ khác, "
                                                    "hoặc gõ số điều (ví dụ: Điều 70 Luật 41/2024).")
        return LookupResult(query, ref, hits=tuple(hits))

    # -------------------------------------------------------------- search by words

    def _lexical(self) -> tuple[LexicalIndex, LexicalIndex]:
        if self._index is None:
            # The title twice: a word of the title says more about the article than one in its text.
            texts = [f"{a.title}. {a.title}. {a.text}" for _, a in self._entries]
            self._index = (LexicalIndex(texts), LexicalIndex([_bigrams(tokenize(t)) for t in texts]))
        return self._index

    def search(self, query: str, *, limit: int = 10, documents: Iterable[str] | None = None) -> list[SearchHit]:
        """Articles ranked by BM25 on words and on pairs of adjacent words ("một lần", "nghỉ hưu"),
        accented and folded (typed with diacritics or not); the texts of the BHXH law and its decrees
        come before the code compilations' other documents."""
        if not self._entries:
            return []
        tokens = [t for t in tokenize(normalize_query(query)) if fold_accents(t) not in _STOPWORDS]
        if not tokens:
            return []
        words, pairs = self._lexical()
        scores = words.scores(" ".join(tokens)) + pairs.scores(_bigrams(tokens))
        scores = scores * np.array([_weight(d) for d, _ in self._entries])
        allowed = set(documents) if documents is not None else None
        folded = [fold_accents(t) for t in tokens]
        hits: list[SearchHit] = []
        for i in np.argsort(-scores, kind="stable"):
            if scores[i] <= 0 or len(hits) >= limit:
                break
            document, article = self._entries[i]
            if allowed is not None and document.number not in allowed:
                continue
            hits.append(SearchHit(article, document, float(scores[i]), _snippet(article, folded)))
        return hits


def _bigrams(tokens: list[str]) -> str:
    """Adjacent words joined into one token each ("một lần" → "mộtlần"), for a second BM25 view."""
    return " ".join(a + b for a, b in itertools.pairwise(tokens))


def _weight(document: LegalDocument) -> float:
    """Documents held whole and named in the registry first; compilations' other documents last."""
    if document.number not in REGISTRY:
        return 0.6
    return 0.85 if COMPILED_NOTE in document.notes else 1.0


# Words that say nothing about which article is meant ("điều nào trong luật quy định …").
_STOPWORDS = set(fold_accents(w) for w in (
    "điều nào trong luật quy định về gì là của cho các những được có không thì và hay với khi nào bao nhiêu "
    "theo tại như thế sao ạ ơi em tôi mình văn bản nghị định thông tư khoản điểm").split())


def _snippet(article: Article, words: list[str], width: int = 220) -> str:
    """The line of the article that holds most of the query's words, cut to about `width` characters."""
    lines = [*article.intro, *(line for c in article.clauses for line in c.lines)] or [article.title]
    wanted = set(words)
    best = max(lines, key=lambda line: len(wanted & {fold_accents(t) for t in tokenize(line)}))
    return best if len(best) <= width else best[:width].rsplit(" ", 1)[0] + "…"


# ------------------------------------------------------------------ parsing what people type

_KIND_WORDS = {  # folded word(s) → the kind they name
    "bo luat": "Bộ luật", "luat": "Luật", "nghi dinh": "Nghị định", "nd": "Nghị định", "ndcp": "Nghị định",
    "thong tu": "Thông tư", "tt": "Thông tư", "nghi quyet": "Nghị quyết", "nq": "Nghị quyết",
}
_KIND = "|".join(sorted((re.escape(k).replace(r"\ ", r"\s+") for k in _KIND_WORDS), key=len, reverse=True))
_FULL_NUMBER = re.compile(r"(?<![\d/])(\d{1,3})\s*/\s*(\d{4})(?:\s*/\s*([a-z]+(?:\s*-\s*[a-z]+)?\d*))?")
_KIND_NUMBER = re.compile(rf"\b({_KIND})\s*(?:so\s*)?(\d{{1,3}})(?!\d)(?:\s*/\s*(\d{{4}}))?")
_ARTICLE = re.compile(r"\b(?:dieu|d)\s*\.?\s*(\d{1,3})(?!\d)")
_CLAUSE_REF = re.compile(r"\b(?:khoan|k)\s*\.?\s*(\d{1,2})(?!\d)")
_POINT_ACCENTED = re.compile(r"\b(?:điểm|diem)\s+([a-zđ])\b")
# Names people use for the documents we hold (folded): the number they mean.
_ALIASES = [
    (re.compile(r"\bluat\s+(?:bhxh|bao\s+hiem\s+xa\s+hoi)(?:\s+(?:nam\s+)?2024)?\b"), "41/2024/QH15"),
    (re.compile(r"\b(?:bo\s+luat\s+lao\s+dong|blld)\b(?:\s+(?:nam\s+)?2019)?"), "45/2019/QH14"),
    (re.compile(r"\b(?:bo\s+luat\s+hinh\s+su|blhs)\b(?:\s+(?:nam\s+)?2015)?"), "100/2015/QH13"),
    (re.compile(r"\b(?:luat\s+an\s+toan,?\s+ve\s+sinh\s+lao\s+dong|atvsld)\b"), "84/2015/QH13"),
    (re.compile(r"\bluat\s+viec\s+lam\b"), "74/2025/QH15"),
    (re.compile(r"\bluat\s+(?:bhyt|bao\s+hiem\s+y\s+te)\b"), "25/2008/QH12"),
]


def _matches_kind(kind: str, number: str) -> bool:
    actual = kind_of(number, REGISTRY[number].title if number in REGISTRY else "")
    return kind == actual or {kind, actual} <= {"Luật", "Bộ luật"}


def _resolve(numbers: list[str], n: str, year: str | None, kind: str | None, suffix: str | None) -> str | None:
    """The known document numbered n[/year][/suffix] of that kind (the newest if several)."""
    candidates = []
    for number in numbers:
        parts = number.split("/")
        if parts[0].lstrip("0") != n.lstrip("0") or (year and parts[1] != year):
            continue
        if suffix and re.sub(r"[^a-z0-9]", "", fold_accents(parts[2]).lower()) != re.sub(r"[^a-z0-9]", "", suffix):
            continue
        if kind and not _matches_kind(kind, number):
            continue
        candidates.append(number)
    return max(candidates, key=lambda c: int(c.split("/")[1])) if candidates else None


def parse_reference(text: str, numbers: list[str] | None = None) -> Reference:
    """The document, article, clause and point a typed citation names, in any order and spelling:
    "Điều 70 Luật 41/2024", "khoản 2 điều 31", "nghị định 158 điều 7", "nd 158 d7", "dieu 70 luat bhxh"."""
    numbers = numbers if numbers is not None else list(REGISTRY)
    lower = nfc(text).lower()
    folded = fold_accents(lower)
    spans: list[tuple[int, int]] = []
    document: str | None = None
    document_text = ""

    m = _FULL_NUMBER.search(folded)
    kind_m = _KIND_NUMBER.search(folded)
    if m:
        kind = None
        if kind_m and kind_m.end(2) == m.end(1):  # "luật 41/2024": the kind word goes with the number
            kind = _KIND_WORDS[re.sub(r"\s+", " ", kind_m.group(1))]
            spans.append(kind_m.span(1))
        suffix = re.sub(r"\s+", "", m.group(3)) if m.group(3) else None
        document = _resolve(numbers, m.group(1), m.group(2), kind, suffix)
        if document is not None or kind or suffix:  # a bare "7/2026" that names nothing is a date
            document_text = text[kind_m.start(1) if kind else m.start(): m.end()].strip()
            spans.append(m.span())
    elif kind_m:
        kind = _KIND_WORDS[re.sub(r"\s+", " ", kind_m.group(1))]
        document = _resolve(numbers, kind_m.group(2), kind_m.group(3), kind, None)
        document_text = text[kind_m.start(): kind_m.end()].strip()
        spans.append(kind_m.span())
    else:
        for pattern, number in _ALIASES:
            alias = pattern.search(folded)
            if alias:
                document, document_text = number, text[alias.start(): alias.end()].strip()
                spans.append(alias.span())
                break

    def take(pattern: re.Pattern[str], source: str) -> re.Match[str] | None:
        for found in pattern.finditer(source):
            if not any(a <= found.start() < b for a, b in spans):
                spans.append(found.span())
                return found
        return None

    article = take(_ARTICLE, folded)
    clause = take(_CLAUSE_REF, folded)
    point = take(_POINT_ACCENTED, lower)
    rest = folded
    for a, b in sorted(spans, reverse=True):
        rest = rest[:a] + " " + rest[b:]
    # "luật" or "nghị định" left without a number names no document; drop it with the punctuation.
    rest = re.sub(rf"\b(?:{_KIND})\b", " ", rest)
    rest = " ".join(re.findall(r"\w+", rest))
    return Reference(document, int(article.group(1)) if article else None,
                     int(clause.group(1)) if clause else None, point.group(1) if point else None,
                     document_text, rest)


# ------------------------------------------------------------------ the configured folder


def legal_dir() -> Path | None:
    """The folder of legal texts the deployment configured (BHXH_LEGAL_DIR), or None."""
    value = os.environ.get(LEGAL_DIR_ENV, "").strip()
    return Path(value).expanduser() if value else None


def _fingerprint(directory: Path | None) -> tuple[str, tuple[tuple[str, int, int], ...]]:
    if directory is None or not directory.is_dir():
        return (str(directory), ())
    return (str(directory.resolve()), tuple((p.name, p.stat().st_mtime_ns, p.stat().st_size)
                                           for p in sorted(directory.glob("*")) if p.is_file()))


@functools.lru_cache(maxsize=4)
def _library(fingerprint: tuple[str, tuple[tuple[str, int, int], ...]]) -> LegalLibrary:
    directory = fingerprint[0]
    return LegalLibrary(Path(directory) if fingerprint[1] else None)


def library(directory: Path | None = None) -> LegalLibrary:
    """The library of `directory` (default: the configured folder), re-read when its files change."""
    return _library(_fingerprint(directory if directory is not None else legal_dir()))
