"""The conversation core: one message in, one Reply out, for every channel.

    text → screen (empty, binary, emoji, too long) → small talk / personal case
         → hybrid search over entries and out-of-scope intents
         → answer, offer choices, or say "not sure" (with the topic menu)

The decision uses signals that keep their meaning across questions: the best
entry's cosine similarity, how much of the question's vocabulary that entry
covers, and the fused-score margin to the runner-up. Thresholds are tuned by
`bhxh eval --tune` on the tuning half of the evaluation set only.
"""

from __future__ import annotations

import datetime as dt
import html
import logging
import re
import unicodedata
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import yaml

from bot.calculator_replies import calculator_reply
from bot.letter import Letter, read_letter
from bot.reply import Choice, Reply
from knowledge.calc_intent import detect_calculator_request
from knowledge.schema import Entry, KnowledgeBase, load_knowledge
from knowledge.topics import MENU_ORDER, TOPICS
from retrieval import DenseEncoder, HybridIndex, SearchConfig
from retrieval.normalize import fold_accents, normalize_query, tokenize

log = logging.getLogger(__name__)

OUT_OF_SCOPE_FILE = Path(__file__).resolve().parent.parent / "knowledge" / "out_of_scope.yaml"
OOS_PREFIX = "oos:"
COMMERCIAL_INTENT = "ngoai-pham-vi-bao-hiem-thuong-mai"
# Share of the ranking given to the entry classifier trained on the knowledge base's own texts
# (retrieval/ranker.py); the rest is the lexical + dense fusion.
CLASSIFIER_WEIGHT = 0.5
# A question sentence with this many content words is searched on its own, without the story.
SELF_CONTAINED_WORDS = 3
MAX_QUESTION_CHARS = 2000
HOTLINE = "1900 9068"


@dataclass(frozen=True)
class Thresholds:
    """Decision thresholds, tuned on the tuning split only (`bhxh eval --tune`).

    confidence = cosine of the best entry + coverage_weight × the share of the
    question's content words that entry covers; below min_confidence the bot
    says it is not sure. An out-of-scope example that is at least as close as
    the best entry (plus oos_margin) makes it decline. Entries whose fused score
    is within choice_margin of the best are offered as choices.
    """

    # Tuned by `bhxh eval --tune` on the tuning halves of both sets (272 of ours, 196 real questions),
    # except choice_margin: the tuner prefers 0.03 (menus on 12% of our questions and 31% of real ones,
    # since a menu holding the right entry scores well); we ask to choose only when the best two are
    # too close to tell (0.01: menus 7% / 10% on the tuning halves) and answer the rest, showing the
    # runners-up as "Có thể bạn muốn hỏi".
    min_confidence: float = 0.92
    coverage_weight: float = 0.05
    oos_margin: float = -0.03
    choice_margin: float = 0.01  # closer than this to the best: too close to tell, ask to choose
    alternative_margin: float = 0.08  # closer than this: answer the best, offer these as "Có thể bạn muốn hỏi"
    min_coverage_alone: float = 0.34  # with no dense model: coverage needed to answer
    max_choices: int = 3


# Function words that carry no topic (accent-folded).
STOPWORDS = frozenset(
    """toi em anh chi cho hoi la thi co khong duoc gi nao the nhu va cua o bao nhieu minh a
    nhe vay roi da se can phai muon lam sao khi neu ma de voi tu den trong nay do nhung cac
    mot hay hoac ra vao len xin cam on duoc ban biet giup xem rang tai vi sau truoc nua luc
    con cung van chua hien nay bay gio ai dau kia ay oi nha nhi ha u ak ah vang day""".split()
)

_GREETING = re.compile(
    r"^(?:xin chao|chao|hello|hi|alo|hey|good morning)(?:\s+(?:ban|ad|admin|bot|anh|chi|em|moi nguoi|tro ly))?"
    r"(?:\s+(?:a|nhe|nha))?[\s!.?,]*$")
_THANKS = re.compile(
    r"^(?:(?:xin\s+)?(?:cam on|thank(?:s| you)?|tks|thanks?)(?:\s+\w+){0,3}|ok(?:e|ay)?|da|vang)[\s!.?,]*$")
_HELP = re.compile(r"^(?:/?help|/?start|tro giup|huong dan|menu|ban lam duoc gi|ban la ai)[\s!.?]*$")
_PERSONAL = re.compile(
    r"(?:ho so|so|so bhxh|tien)\s+(?:cua\s+)?(?:em|toi|minh|con|chau|me|bo)\b.*\b(?:duyet|xong|chua|den dau|bao gio)"
    r"|(?:tra cuu|kiem tra|xem)\s+(?:giup|ho|dum)\b"
    r"|(?:em|toi|minh)\s+(?:da\s+)?dong\s+(?:duoc\s+)?bao nhieu\s+(?:thang|nam)"
    r"|(?:ma so|so so)\s+bhxh\s+cua\s+(?:em|toi|minh)"
)
_TAGS = re.compile(r"<[^>]{0,200}>")
# Unmistakable commercial insurance, with no word of the State's insurance beside it: the
# nearest BHXH entry can look close ("đóng phí một lần" ~ "rút một lần"), so these are declined
# by their words before retrieval has a say (accent-folded).
_COMMERCIAL_INSURANCE = re.compile(
    r"\b(?:bao hiem nhan tho|nhan tho|hop dong bao hiem|(?<!chi )phi bao hiem|goi bao hiem|dai ly bao hiem"
    r"|doanh nghiep bao hiem|cong ty bao hiem|bao hiem (?:xe|o to|oto|xe may|du lich|chay no|tai san|trach nhiem"
    r"|tien gui|khoan vay|vat chat|than vo|nong nghiep|cay trong|vat nuoi|suc khoe tu nhan|suc khoe ca nhan|hang hoa"
    r"|cong trinh|lien ket|dau tu))\b")
_STATE_INSURANCE = re.compile(
    r"\b(?:bhxh|bao hiem xa hoi|bhyt|bao hiem y te|bhtn|that nghiep|luong huu|thai san|om dau|tu tuat|tuat"
    r"|tai nan lao dong|benh nghe nghiep|vssid|so bao hiem|huu tri)\b")


def _fold(text: str) -> str:
    return " ".join(fold_accents(t) for t in tokenize(text))


def screen(text: object) -> tuple[str, str | None, str]:
    """Clean a raw message. Returns (clean text, rejection message or None, notice)."""
    if not isinstance(text, str):
        return "", "Tôi chỉ đọc được tin nhắn chữ. Bạn vui lòng gõ câu hỏi bằng chữ nhé.", ""
    text = unicodedata.normalize("NFC", text.replace("\x00", " "))
    text = html.unescape(_TAGS.sub(" ", text))
    text = "".join(ch if ch.isprintable() or ch in "\n\t" else " " for ch in text).strip()
    notice = ""
    if len(text) > MAX_QUESTION_CHARS:
        text = text[:MAX_QUESTION_CHARS]
        notice = (f"Tin nhắn của bạn dài quá nên tôi chỉ đọc {MAX_QUESTION_CHARS} ký tự đầu. "
                  "Bạn có thể gửi câu hỏi ngắn gọn hơn để được trả lời chính xác.")
    if not text:
        return "", "Bạn chưa nhập câu hỏi. Hãy gõ điều bạn muốn hỏi về BHXH, BHYT hoặc bảo hiểm thất nghiệp nhé.", ""
    if not any(ch.isalnum() for ch in text):
        return "", ("Tôi chưa hiểu tin nhắn này. Bạn hãy gõ câu hỏi bằng chữ, ví dụ: "
                    "\"Đóng BHXH tự nguyện bao nhiêu một tháng?\""), ""
    return text, None, notice


@dataclass(frozen=True)
class Candidate:
    entry_id: str
    fused: float
    lexical: float
    dense: float
    coverage: float
    lexical_only: bool = False  # ranked without the dense model (no cosine to judge by)


class Engine:
    def __init__(self, kb: KnowledgeBase, encoder: DenseEncoder | None = None, *,
                 cache_dir: Path | None = None, thresholds: Thresholds | None = None,
                 search: SearchConfig | None = None) -> None:
        self.kb = kb
        self.thresholds = thresholds or Thresholds()
        self.out_of_scope = self._load_out_of_scope()
        items: list[tuple[str, str]] = []
        for entry in kb.entries.values():
            items.extend((entry.id, text) for text in entry.texts())
        for oos_id, (_, examples) in self.out_of_scope.items():
            items.extend((oos_id, text) for text in examples)
        self.index = HybridIndex(items, encoder=encoder, cache_dir=cache_dir,
                                 config=search or SearchConfig("convex", 0.5, classifier_weight=CLASSIFIER_WEIGHT))
        self._vocabulary = self._entry_vocabulary(items)

    # ------------------------------------------------------------ set-up

    @staticmethod
    def _load_out_of_scope() -> dict[str, tuple[str, list[str]]]:
        raw = yaml.safe_load(OUT_OF_SCOPE_FILE.read_text(encoding="utf-8")) or []
        return {OOS_PREFIX + r["id"]: (r["reply"].strip(), list(r["examples"])) for r in raw}

    def _entry_vocabulary(self, items: list[tuple[str, str]]) -> dict[str, set[str]]:
        vocab: dict[str, set[str]] = {}
        for entry_id, text in items:
            vocab.setdefault(entry_id, set()).update(_fold(normalize_query(text)).split())
        for entry in self.kb.entries.values():
            vocab[entry.id].update(_fold(self.kb.render_answer(entry, dt.date.today())).split())
        return vocab

    @classmethod
    def from_settings(cls, settings=None, *, build_model: bool = True, kb: KnowledgeBase | None = None) -> Engine:
        from bot.settings import load_settings, resolve_model

        settings = settings or load_settings()
        kb = kb or load_knowledge()
        encoder = None
        try:
            model = resolve_model(settings, build=build_model)
            encoder = DenseEncoder(model) if model else None
        except Exception as exc:  # a broken model must not stop the service
            log.warning("dense model unavailable (%s); falling back to lexical search", exc)
        return cls(kb, encoder, cache_dir=settings.cache_dir)

    # ------------------------------------------------------------ retrieval

    @staticmethod
    def content_words(normalized: str) -> list[str]:
        return [w for w in _fold(normalized).split() if w not in STOPWORDS and not w.isdigit()]

    def coverage(self, words: list[str], entry_id: str) -> float:
        """Share of the query's content words found in the entry's texts."""
        if not words:
            return 0.0
        vocab = self._vocabulary.get(entry_id, set())
        return sum(w in vocab for w in words) / len(words)

    def candidates(self, text: str, k: int = 12, mode: str = "hybrid") -> list[Candidate]:
        letter = read_letter(text)
        if letter.is_letter:
            return self._letter_candidates(letter, k, mode)
        words = self.content_words(normalize_query(text))
        hits = self.index.search(text, k=k, mode=mode)  # type: ignore[arg-type]
        lexical_only = mode == "lexical" or not self.index.has_dense
        return [Candidate(h.id, h.score, h.lexical, h.dense, self.coverage(words, h.id), lexical_only)
                for h in hits]

    def _letter_candidates(self, letter: Letter, k: int, mode: str) -> list[Candidate]:
        """A letter: BM25 over the whole text with the questions counted twice; the encoder reads the focus.

        The encoder never sees the whole story (slow, and the story drowns the
        question); BM25 does, cheaply, so a fact stated only in the story still counts.
        """
        index = self.index
        focus = letter.focus
        lexical_text = normalize_query(letter.text + " " + " ".join(letter.questions))
        lexical = index.lexical_scores(lexical_text, index.restored(lexical_text, letter.text))
        use_dense = index.has_dense and mode != "lexical"
        dense_query = index.restored(normalize_query(focus), focus) if use_dense else None
        ranking, dense = index.rank(lexical, dense_query, mode)  # type: ignore[arg-type]
        words = self.content_words(normalize_query(" ".join(letter.questions)))
        top = np.argsort(-ranking, kind="stable")[:k]
        return [Candidate(index.ids[i], float(ranking[i]), float(lexical[i]), float(dense[i]),
                          self.coverage(words, index.ids[i]), not use_dense) for i in top]

    @staticmethod
    def confidence(c: Candidate, t: Thresholds) -> float:
        return c.coverage if c.lexical_only else c.dense + t.coverage_weight * c.coverage

    def classify(self, candidates: list[Candidate], t: Thresholds) -> tuple[str, list[Candidate], float]:
        """The decision alone: ("out_of_scope" | "not_sure" | "choices" | "answer", the entries, confidence).

        For "out_of_scope" the list holds the winning out-of-scope candidate;
        for "choices" the entries offered; for "answer" the chosen entry.
        """
        entries = [c for c in candidates if not c.entry_id.startswith(OOS_PREFIX)]
        outside = [c for c in candidates if c.entry_id.startswith(OOS_PREFIX)]
        if not candidates:
            return "not_sure", [], 0.0
        if outside and (not entries or self._outside_wins(outside[0], candidates, entries, t)):
            return "out_of_scope", outside[:1], outside[0].dense
        top = entries[0]
        score = self.confidence(top, t)
        if score < (t.min_coverage_alone if top.lexical_only else t.min_confidence):
            return "not_sure", [], score
        close = [c for c in entries[1:t.max_choices] if top.fused - c.fused < t.choice_margin]
        if close:
            return "choices", [top, *close], score
        alternatives = [c for c in entries[1:t.max_choices] if top.fused - c.fused < t.alternative_margin]
        return "answer", [top, *alternatives], score

    def decide(self, text: str, candidates: list[Candidate], on: dt.date,
               thresholds: Thresholds | None = None) -> Reply:
        t = thresholds or self.thresholds
        normalized = normalize_query(text)
        ranked = tuple(c.entry_id for c in candidates if not c.entry_id.startswith(OOS_PREFIX))
        kind, chosen, score = self.classify(candidates, t)
        if kind == "out_of_scope":
            return self.out_of_scope_reply(chosen[0].entry_id, normalized, score=score, ranked=ranked)
        if kind == "not_sure":
            return self.not_sure(normalized, ranked, score=score)
        top = self.kb.entries[chosen[0].entry_id]
        if kind == "choices":
            choices = tuple(Choice(c.entry_id, self.kb.entries[c.entry_id].question) for c in chosen)
            return Reply("choices", "Bạn muốn hỏi về nội dung nào dưới đây? Hãy chọn một câu:", topic=top.topic,
                         score=score, choices=choices, normalized=normalized, candidates=ranked)
        alternatives = tuple(Choice(c.entry_id, self.kb.entries[c.entry_id].question) for c in chosen[1:])
        return self.answer(top, on, score=score, normalized=normalized, candidates=ranked,
                           alternatives=alternatives)

    def out_of_scope_reply(self, intent: str, normalized: str, *, score: float = 1.0,
                           ranked: tuple[str, ...] = ()) -> Reply:
        reply_text = self.out_of_scope[intent][0]
        return Reply("out_of_scope", reply_text + f"\n\nNếu bạn cần hỏi về BHXH, hãy gọi tổng đài {HOTLINE}.",
                     score=score, normalized=normalized, candidates=ranked)

    @staticmethod
    def _outside_wins(outside: Candidate, candidates: list[Candidate], entries: list[Candidate],
                      t: Thresholds) -> bool:
        """A decline example wins when it ranks among the first few and is about as close as the best
        of the leading entries: one far down the ranking that happens to share a letter's style
        ("mẹ em… nhà em phải làm gì ạ?") must not turn away a survivors' letter."""
        if not entries:
            return True
        if outside.lexical_only:
            return outside.fused >= entries[0].fused
        if candidates.index(outside) >= t.max_choices:
            return False
        return outside.dense >= max(c.dense for c in entries[:t.max_choices]) + t.oos_margin

    # ------------------------------------------------------------ replies

    def answer(self, entry: Entry, on: dt.date, *, score: float = 1.0, normalized: str = "",
               candidates: tuple[str, ...] = (), alternatives: tuple[Choice, ...] = ()) -> Reply:
        """The entry's answer for `on`; close runners-up (`alternatives`) lead the related questions."""
        related = alternatives + tuple(Choice(r, self.kb.entries[r].question) for r in entry.related
                                       if r in self.kb.entries and r not in {a.entry_id for a in alternatives})
        text = self.kb.render_answer(entry, on)
        caution = self.kb.caution(entry, on)
        if caution:
            text = f"{text}\n\n{caution}"
        return Reply("answer", text, entry_id=entry.id, topic=entry.topic,
                     score=score, sources=entry.sources, related=related[:3], normalized=normalized,
                     candidates=candidates or (entry.id,))

    def not_sure(self, normalized: str, ranked: tuple[str, ...] = (), score: float = 0.0) -> Reply:
        menu = "\n".join(f"- {TOPICS[t]}" for t in MENU_ORDER)
        text = ("Xin lỗi, tôi chưa chắc hiểu đúng câu hỏi của bạn nên không muốn trả lời sai. "
                "Bạn có thể hỏi lại ngắn gọn hơn, hoặc chọn một chủ đề:\n" + menu +
                f"\n\nBạn cũng có thể gọi tổng đài BHXH Việt Nam {HOTLINE} để được hỗ trợ trực tiếp.")
        return Reply("not_sure", text, score=score, normalized=normalized, candidates=ranked)

    def help_text(self) -> str:
        menu = "\n".join(f"- {TOPICS[t]}" for t in MENU_ORDER)
        return ("Xin chào! Tôi là Trợ lý BHXH. Tôi giải đáp về bảo hiểm xã hội, bảo hiểm y tế và "
                "bảo hiểm thất nghiệp theo Luật BHXH 2024 và các văn bản đang có hiệu lực. "
                "Bạn cứ gõ câu hỏi như khi nói chuyện, có dấu hay không dấu đều được. Một số chủ đề:\n"
                + menu + f"\n\nTôi không tra cứu được hồ sơ cá nhân; để xem quá trình đóng của mình, "
                f"bạn dùng ứng dụng VssID hoặc gọi tổng đài {HOTLINE}.")

    def personal_note(self) -> str:
        return ("Tôi không tra cứu được hồ sơ hay quá trình đóng của từng người. Bạn có thể tự xem trên "
                f"ứng dụng VssID (mục Quá trình tham gia, Tra cứu hồ sơ), gọi tổng đài {HOTLINE} "
                "(chuẩn bị số CCCD hoặc mã số BHXH), hoặc hỏi trực tiếp cơ quan BHXH nơi nộp hồ sơ.")

    # ------------------------------------------------------------ entry point

    def ask(self, text: object, on: dt.date | None = None) -> Reply:
        on = on or dt.date.today()
        clean, rejection, notice = screen(text)
        if rejection:
            return Reply("invalid", rejection)
        folded = _fold(clean)
        if _HELP.match(folded) or _GREETING.match(folded):
            return Reply("smalltalk", self.help_text(), normalized=folded)
        if _THANKS.match(folded):
            return Reply("smalltalk", "Không có gì ạ. Chúc bạn nhiều sức khỏe! Nếu còn thắc mắc về BHXH, "
                         "bạn cứ nhắn cho tôi nhé.", normalized=folded)
        if _COMMERCIAL_INSURANCE.search(folded) and not _STATE_INSURANCE.search(folded):
            return self.out_of_scope_reply(OOS_PREFIX + COMMERCIAL_INTENT, normalize_query(clean))
        request = detect_calculator_request(clean)
        computed = calculator_reply(request, on, self.kb.parameters, normalize_query(clean)) if request else None
        if computed is not None:
            return replace(computed, notice=notice) if notice else computed
        reply = self.decide(clean, self.candidates(clean), on)
        if reply.kind in ("answer", "choices"):
            reply = self.answer_each_question(clean, on) or reply
        if request is not None and reply.kind in ("answer", "choices"):
            reply = replace(reply, calculator=request.calculator)
        if _PERSONAL.search(folded):
            if reply.kind == "answer":
                reply = replace(reply, kind="personal", text=self.personal_note() + "\n\n" + reply.text)
            elif reply.kind in ("not_sure", "choices"):
                reply = replace(reply, kind="personal", text=self.personal_note(), choices=())
        if notice:
            reply = replace(reply, notice=notice)
        return reply

    def answer_each_question(self, text: str, on: dt.date) -> Reply | None:
        """Two questions about different things in one message get two labelled answers.

        Each question is searched on its own, or with the story when it is too
        short to stand alone (never with the other question); only when both are
        confidently answered, by different entries, does the reply hold both.
        Otherwise the single best answer stands.
        """
        letter = read_letter(text)
        if len(letter.questions) < 2:
            return None
        story = tuple(s for s in letter.sentences if s not in letter.questions)
        chosen: list[tuple[Entry, float]] = []
        for question in letter.questions[:3]:
            if len(self.content_words(normalize_query(question))) >= SELF_CONTAINED_WORDS:
                found = self.candidates(question)
            else:  # "nếu được thì bao nhiêu?": only the story says about what
                sub = Letter(" ".join((*story, question)), (*story, question), (question,))
                found = self._letter_candidates(sub, 12, "hybrid") if sub.is_letter else self.candidates(sub.text)
            kind, best, score = self.classify(found, self.thresholds)
            if kind != "answer":
                continue
            entry = self.kb.entries[best[0].entry_id]
            if all(entry.id != e.id for e, _ in chosen):
                chosen.append((entry, score))
        if len(chosen) < 2:
            return None
        chosen = chosen[:2]
        parts, sources = [f"Bạn hỏi {len(chosen)} ý, tôi trả lời lần lượt:"], []
        for n, (entry, _) in enumerate(chosen, start=1):
            single = self.answer(entry, on)
            parts.append(f"{n}. {entry.question}\n{single.text}")
            sources += [s for s in entry.sources if s not in sources]
        first = chosen[0][0]
        related = tuple(Choice(r, self.kb.entries[r].question) for r in first.related
                        if r in self.kb.entries and r != chosen[1][0].id)
        return Reply("answer", "\n\n".join(parts), entry_id=first.id, topic=first.topic,
                     score=min(score for _, score in chosen), sources=tuple(sources), related=related[:3],
                     normalized=normalize_query(text), candidates=tuple(e.id for e, _ in chosen))

    def entry_reply(self, entry_id: str, on: dt.date | None = None) -> Reply | None:
        """The answer for a chosen entry (a button press or "1", "2", "3")."""
        entry = self.kb.entries.get(entry_id)
        return self.answer(entry, on or dt.date.today()) if entry else None
