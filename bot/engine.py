"""The conversation core: one message in, one Reply out, for every channel.

    text → screen (empty, binary, emoji, too long) → read once into a `Query`
         → small talk → unmistakable commercial insurance → calculator with numbers
         → hybrid search over entries and out-of-scope intents
         → `classify`: answer, offer choices, decline, or say "not sure" (with the topic menu)
         → after the decision, in one step: two questions get two answers, a calculator
           is offered, a personal case ("hồ sơ của tôi…") gets the way to check it, the notice

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
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import Literal

import numpy as np

from bot import messages
from bot.calculator_replies import calculator_reply
from bot.letter import Letter, read_letter
from bot.messages import HOTLINE, MAX_QUESTION_CHARS
from bot.reply import Choice, Reply
from bot.settings import Settings
from bot.short_answer import fit_to_question, short_and_details
from knowledge.asked_date import asked_date
from knowledge.calc_intent import CalcRequest, detect_calculator_request
from knowledge.facts import Facts, extract_facts
from knowledge.gaps import find_gap
from knowledge.month_of_death import FOLLOWS_MONTH_OF_DEATH, month_of_death
from knowledge.out_of_scope import OutOfScopeIntent, load_out_of_scope
from knowledge.params import PLACEHOLDER, ParameterError
from knowledge.schema import Entry, KnowledgeBase, load_knowledge
from retrieval import DenseEncoder, HybridIndex, SearchConfig
from retrieval.normalize import folded_tokens, normalize_query

log = logging.getLogger(__name__)

__all__ = ["HOTLINE", "MAX_QUESTION_CHARS", "Candidate", "Decision", "Engine", "Query", "Thresholds", "screen"]

OOS_PREFIX = "oos:"
COMMERCIAL_INTENT = "ngoai-pham-vi-bao-hiem-thuong-mai"
# Share of the ranking given to the entry classifier trained on the knowledge base's own texts
# (retrieval/ranker.py); the rest is the lexical + dense fusion.
CLASSIFIER_WEIGHT = 0.5
# Share then given to the word classifier (retrieval/word_ranker.py), where it recognizes the question's words.
# On the tuning halves it took our top-1 from .882 to .921 and answered-right from .825 to .882 (wrong .066 ->
# .035, menus .083 -> .057); real right .668 -> .664, wrong .092 -> .100. 0.25 and 0.55 did less, and reading
# characters instead of words did worse.
WORD_CLASSIFIER_WEIGHT = 0.4
# A question sentence with this many content words is searched on its own, without the story.
SELF_CONTAINED_WORDS = 3
# How far above the best score a letter's situation entry is lifted (see `situation_entry`): enough to
# be answered without doubt (> doubt_margin), with the entry retrieval preferred still offered beside it
# (< alternative_margin).
SITUATION_LIFT = 0.06
SITUATION_CANDIDATES = 24  # … when retrieval ranks it among this many
# A letter that asks how to claim, not what is due, is answered by the procedure entries (accent-folded).
# A short question about what is due in general ("gia đình được hưởng gì") (accent-folded).
_ASKS_WHAT_IS_DUE = re.compile(r"\b(?:duoc|huong|nhan|lanh)\s+(?:nhung\s+)?(?:gi|che do gi|quyen loi gi|khoan gi"
                               r"|tien gi)\b|\b(?:che do|quyen loi)\s+(?:gi|nao|the nao)\b")
_ASKS_PROCEDURE = re.compile(r"\b(?:ho so|thu tuc|giay to|nop o dau|lam o dau|can nhung gi|can chuan bi)\b")


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
    # An answer is too doubtful to give alone when its entry leads the runner-up by less than
    # doubt_margin AND the entry classifier gives it less than doubt_learned: the best few are offered
    # as a short "chưa chắc" menu instead. On the tuning halves this pair caught 33 of 72 wrong real
    # top-1s for 17 of 98 right ones (10 of 20 / 6 of 209 on ours); the margin alone caught 31 for 22.
    doubt_margin: float = 0.05
    doubt_learned: float = 0.2
    # Two entries within choice_margin are still told apart when the classifier finds the best at least
    # doubt_learned likely and this many times as likely as the other: on the tuning halves (377 entries)
    # 5 turned 5 real and 1 of our menus into right answers, with no more wrong ones (3: +6 / +1 wrong).
    choice_learned_ratio: float = 5.0
    max_choices: int = 3
    # A decline intent among the first oos_learned_depth that the entry classifier finds at least
    # oos_learned_share as likely as the best entry also declines: on the tuning halves this turned away
    # 1 more real near miss in 80 (.975 -> .988) for 1 in-scope question in 250, ours unchanged.
    oos_learned_share: float = 0.5
    oos_learned_depth: int = 5


# The tuned encoder (BHXH_EMBED_MODEL=tuned) spreads cosines out: its thresholds, from a sweep on the
# tuning halves of both sets (objective 1.547 against the published model's 1.652 with its own).
TUNED_ENCODER_THRESHOLDS = Thresholds(min_confidence=0.55, oos_margin=-0.05, doubt_margin=0.08)


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
    r"|cong trinh|lien ket|dau tu)|(?:bao hiem|bh) (?:bat buoc )?(?:trach nhiem dan su )?(?:cua )?chu xe)\b")
# People with merit (martyrs' families, war invalids, heroic mothers) have their own regime under the Ordinance on
# preferential treatment, paid through the Home Affairs sector, not by BHXH: a martyr's parents' "tiền tuất" or a
# heroic mother's funeral allowance sound like survivor benefits but are not. Declined by those words unless the
# message also names the State's insurance ("thương binh đang hưởng lương hưu…" stays ours).
MERIT_INTENT = "ngoai-pham-vi-nguoi-co-cong-tro-giup-xa-hoi"
_PEOPLE_WITH_MERIT = re.compile(r"\b(?:liet si|thuong binh|benh binh|nguoi co cong|(?:ba )?me viet nam anh hung"
                                r"|chat doc da cam|chat doc hoa hoc)\b")
_NAMES_STATE_INSURANCE = re.compile(r"\b(?:bhxh|bao hiem xa hoi|bhyt|bao hiem y te|bhtn|luong huu|that nghiep)\b")
# Severance pay ("trợ cấp thôi việc", "trợ cấp mất việc làm") is the employer's duty under the Labour Code,
# never a BHXH benefit; the maternity or unemployment entries around it look close, so it is declined by its
# words unless the message also asks about an insurance benefit a person could confuse it with (accent-folded).
LABOUR_LAW_INTENT = "ngoai-pham-vi-luat-lao-dong"
_SEVERANCE = re.compile(r"\btro cap (?:thoi viec|mat viec)\b")
_SEVERANCE_WITH_INSURANCE = re.compile(
    r"\b(?:that nghiep|bhtn|bhxh|bao hiem xa hoi|mot lan|luong huu|bao luu|chot so)\b")
# A forwarded text message that sends the reader to a link to claim money ("… nhận trợ cấp, bấm vào
# www.x.icu để lấy, quá hạn sẽ không được chấp nhận") is the fraud the scam entry warns about, however it
# is spelled: scammers write digits and "!" for letters ("tr0 cap", "d!eu k!en") to slip past filters.
# Links to the State's own sites (.gov.vn) do not count.
SCAM_LINK_ENTRY = "ld-tin-nhan-hoan-tien-ho-tro"
_LINK = re.compile(r"https?://\S+|\bwww\.\S+|\b(?:[a-z0-9-]+\.)+(?:icu|xyz|top|vip|cc|club|online|site|info|link|"
                   r"shop|live|pro|buzz|tk|ml|ga|cf|gq|com|net|org|vn|me|io|co|app|ly|gy|gd)\b(?:/\S*)?"
                   r"|\b(?:[a-z0-9-]+\.)+[a-z]{2,6}/\S+", re.IGNORECASE)  # any domain with a path: shorturl.at/x
_OFFICIAL_LINK = re.compile(r"\.gov\.vn\b", re.IGNORECASE)
_LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "!": "i", "@": "a", "$": "s"})
_SCAM_CALL = re.compile(r"\b(?:dang nhap|bam vao|bam link|nhan vao|truy cap|click|kich hoat|xac minh|xac nhan|"
                        r"cap nhat|de nhan|de lay|lay tien|nhan ngay|qua han)\b")
_SCAM_MONEY = re.compile(r"\b(?:tien|tro cap|ho tro|hoan tien|hoan phi|tri an|qua tang|thuong|quy)\b")


def is_scam_link_message(clean: str) -> bool:
    """A message that offers money behind a link that is not a .gov.vn site (see SCAM_LINK_ENTRY)."""
    links = _LINK.findall(clean)
    if not links or all(_OFFICIAL_LINK.search(link) for link in links):
        return False
    words = " ".join(folded_tokens(_LINK.sub(" ", clean).lower().translate(_LEET)))
    return bool(_SCAM_CALL.search(words) and _SCAM_MONEY.search(words))


_STATE_INSURANCE = re.compile(
    r"\b(?:bhxh|bao hiem xa hoi|bhyt|bao hiem y te|bhtn|that nghiep|luong huu|thai san|om dau|tu tuat|tuat"
    r"|tai nan lao dong|benh nghe nghiep|vssid|so bao hiem|huu tri)\b")


def content_words(normalized: str) -> tuple[str, ...]:
    """The accent-folded words of a normalized text that carry its topic (no function words, no numbers)."""
    return tuple(w for w in folded_tokens(normalized) if w and w not in STOPWORDS and not w.isdigit())


def screen(text: object) -> tuple[str, str | None, str]:
    """Clean a raw message. Returns (clean text, rejection message or None, notice)."""
    if not isinstance(text, str):
        return "", messages.NOT_TEXT, ""
    text = unicodedata.normalize("NFC", text.replace("\x00", " "))
    text = html.unescape(_TAGS.sub(" ", text))
    text = "".join(ch if ch.isprintable() or ch in "\n\t" else " " for ch in text).strip()
    notice = ""
    if len(text) > MAX_QUESTION_CHARS:
        text = text[:MAX_QUESTION_CHARS]
        notice = messages.TOO_LONG
    if not text:
        return "", messages.EMPTY, ""
    if not any(ch.isalnum() for ch in text):
        return "", messages.NO_LETTERS, ""
    return text, None, notice


@dataclass(frozen=True)
class Query:
    """One message, read once: every later step uses these forms instead of normalizing again."""

    raw: str  # as the person sent it
    clean: str  # screened: tags stripped, NFC, at most MAX_QUESTION_CHARS
    normalized: str  # normalize_query(clean): PII redacted, lower case, abbreviations expanded
    folded: str  # the clean text's syllables without accents (what the small-talk patterns read)
    content_words: tuple[str, ...]  # folded words of `normalized` that carry the topic

    @classmethod
    def read(cls, clean: str, raw: str | None = None) -> Query:
        normalized = normalize_query(clean)
        return cls(raw if raw is not None else clean, clean, normalized, " ".join(folded_tokens(clean)),
                   content_words(normalized))

    @cached_property
    def letter(self) -> Letter:
        """The message as a letter: its question sentences, story and encoder focus."""
        return read_letter(self.clean)


@dataclass(frozen=True)
class Candidate:
    entry_id: str
    fused: float
    lexical: float
    dense: float
    coverage: float
    lexical_only: bool = False  # ranked without the dense model (no cosine to judge by)
    learned: float = 1.0  # the entry classifier's probability (1.0 when it did not take part)


DecisionKind = Literal["out_of_scope", "not_sure", "choices", "answer"]


@dataclass(frozen=True)
class Decision:
    """What `Engine.classify` decided for one ranking.

    entries: for "answer" the chosen entry then the runners-up to offer as "Có thể bạn
    muốn hỏi"; for "choices" the entries to choose from; for "out_of_scope" the winning
    decline example; for "not_sure" nothing. confidence: see `Engine.confidence`.
    """

    kind: DecisionKind
    entries: tuple[Candidate, ...] = ()
    confidence: float = 0.0
    doubtful: bool = False  # "choices" because no entry stood out enough to answer, not because two tie

    @property
    def best(self) -> Candidate | None:
        return self.entries[0] if self.entries else None


class Engine:
    def __init__(self, kb: KnowledgeBase, encoder: DenseEncoder | None = None, *,
                 cache_dir: Path | None = None, thresholds: Thresholds | None = None,
                 search: SearchConfig | None = None) -> None:
        self.kb = kb
        self.thresholds = thresholds or Thresholds()
        # Decline intents are indexed beside the entries under "oos:<id>".
        self.out_of_scope: dict[str, OutOfScopeIntent] = {
            OOS_PREFIX + intent.id: intent for intent in load_out_of_scope().values()}
        items: list[tuple[str, str]] = []
        for entry in kb.entries.values():
            items.extend((entry.id, text) for text in entry.texts())
        for oos_id, intent in self.out_of_scope.items():
            items.extend((oos_id, text) for text in intent.examples)
        self.index = HybridIndex(items, encoder=encoder, cache_dir=cache_dir, held=lambda i: i.startswith(OOS_PREFIX),
                                 config=search or SearchConfig("convex", 0.5, classifier_weight=CLASSIFIER_WEIGHT,
                                                               word_classifier_weight=WORD_CLASSIFIER_WEIGHT))
        self._vocabulary = self._entry_vocabulary(items)
        self._known_words = frozenset().union(*self._vocabulary.values())
        self._position = {id_: n for n, id_ in enumerate(self.index.ids)}

    # ------------------------------------------------------------ set-up

    def _entry_vocabulary(self, items: list[tuple[str, str]]) -> dict[str, set[str]]:
        vocab: dict[str, set[str]] = {}
        for entry_id, text in items:
            vocab.setdefault(entry_id, set()).update(w for w in folded_tokens(normalize_query(text)) if w)
        for entry in self.kb.entries.values():
            vocab[entry.id].update(w for w in folded_tokens(self.kb.render_answer(entry, dt.date.today())) if w)
        return vocab

    @classmethod
    def from_settings(cls, settings: Settings | None = None, *, build_model: bool = True,
                      kb: KnowledgeBase | None = None) -> Engine:
        from bot.settings import load_settings, resolve_model

        settings = settings or load_settings()
        kb = kb or load_knowledge()
        encoder = None
        try:
            model = resolve_model(settings, build=build_model)
            encoder = DenseEncoder(model, query_precision=settings.query_precision,
                                   cache_dir=settings.cache_dir) if model else None  # the ONNX export is cached there
        except Exception as exc:  # a broken model must not stop the service
            log.warning("dense model unavailable (%s); falling back to lexical search", exc)
        thresholds = TUNED_ENCODER_THRESHOLDS if encoder and settings.uses_tuned_model else None
        return cls(kb, encoder, cache_dir=settings.cache_dir, thresholds=thresholds)

    # ------------------------------------------------------------ retrieval

    def knows_any_word(self, query: Query) -> bool:
        """Whether some content word of the question appears in the knowledge base or a decline example.

        A message with none ("asdfgh", "qwerty zxcv") gives retrieval nothing to go on: the encoder still
        finds a nearest entry, so it is caught here and answered "not sure". A question made only of
        function words and numbers has no content words and is left to the decision.
        """
        return not query.content_words or any(w in self._known_words for w in query.content_words)

    def coverage(self, words: tuple[str, ...], entry_id: str) -> float:
        """Share of the query's content words found in the entry's texts."""
        if not words:
            return 0.0
        vocab = self._vocabulary.get(entry_id, set())
        return sum(w in vocab for w in words) / len(words)

    def candidates(self, query: Query | str, k: int = 12, mode: str = "hybrid") -> list[Candidate]:
        """The best `k` entries and decline intents for a question, best first."""
        query = query if isinstance(query, Query) else Query.read(query)
        if query.letter.is_letter:
            return self._letter_candidates(query.letter, k, mode)
        # Only a question about what is due in general ("được hưởng gì"): a specific one ("con trên 18 tuổi có
        # được không") has its own entry, which retrieval finds by its words.
        target = (self.situation_entry(extract_facts(query.clean))
                  if _ASKS_WHAT_IS_DUE.search(query.folded) and not _ASKS_PROCEDURE.search(query.folded) else None)
        hits = self.index.search(query.clean, k=max(k, SITUATION_CANDIDATES) if target else k, mode=mode,  # type: ignore[arg-type]
                                 normalized=query.normalized)
        lexical_only = mode == "lexical" or not self.index.has_dense
        found = [Candidate(h.id, h.score, h.lexical, h.dense, self.coverage(query.content_words, h.id), lexical_only,
                           h.learned) for h in hits]
        lifted = next((c for c in found if c.entry_id == target), None)
        if lifted is not None and found[0] is not lifted:  # a short death question: as `_lift_situation` for letters
            found = [replace(lifted, fused=found[0].fused + SITUATION_LIFT)] + [c for c in found if c is not lifted]
        return found[:k]

    @staticmethod
    def situation_entry(facts: Facts) -> str | None:
        """The situation entry (th-*) whose conditions a death letter's facts meet, if the letter says enough.

        Retrieval reads words, so "bố tôi nghỉ hưu 2 năm thì mất" and "bố tôi đóng 9 năm thì mất" look alike;
        the facts tell which rule applies: a work accident, a pensioner, a reserved record, or a contributor
        with under 12 months, fewer or more than 15 years.
        """
        if not facts.deceased:
            return None
        if facts.death_at_work:
            return "tnld-chet-do-tai-nan-lao-dong"
        if facts.insured_status == "retired":
            return "th-chet-khi-moi-nghi-huu"
        if facts.insured_status == "reserved":
            return "th-chet-khi-dang-bao-luu"
        if facts.years_paid is None or facts.insured_status not in (None, "contributing"):
            return None
        if facts.scheme == "voluntary":
            return "th-chet-khi-dong-tu-nguyen-chua-du-5-nam" if facts.years_paid < 5 else None
        if facts.years_paid == 0 and (facts.months_paid or 0) < 12:  # the funeral allowance needs 12 months
            return "th-chet-khi-moi-dong-duoi-12-thang"
        return "th-chet-khi-dang-dong-chua-du-15-nam" if facts.years_paid < 15 else "th-chet-khi-dang-dong-du-15-nam"

    def _lift_situation(self, letter: Letter, ranking: np.ndarray, top: np.ndarray) -> np.ndarray:
        """Put the letter's situation entry first when retrieval already has it among the best few."""
        if _ASKS_PROCEDURE.search(" ".join(folded_tokens(" ".join(letter.questions)))):
            return ranking
        target = self.situation_entry(extract_facts(letter.text))
        position = self._position.get(target) if target else None
        if position is None or position not in np.argsort(-ranking, kind="stable")[:SITUATION_CANDIDATES]:
            return ranking
        lifted = ranking.copy()
        lifted[position] = ranking[top[0]] + SITUATION_LIFT
        return lifted

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
        ranking, dense, learned = index.rank_scores(lexical, dense_query, mode)  # type: ignore[arg-type]
        words = content_words(normalize_query(" ".join(letter.questions)))
        top = np.argsort(-ranking, kind="stable")[:k]
        lifted = self._lift_situation(letter, ranking, top)
        if lifted is not ranking:
            ranking, top = lifted, np.argsort(-lifted, kind="stable")[:k]
        return [Candidate(index.ids[i], float(ranking[i]), float(lexical[i]), float(dense[i]),
                          self.coverage(words, index.ids[i]), not use_dense, float(learned[i])) for i in top]

    @staticmethod
    def confidence(c: Candidate, t: Thresholds) -> float:
        return c.coverage if c.lexical_only else c.dense + t.coverage_weight * c.coverage

    def classify(self, candidates: list[Candidate], t: Thresholds) -> Decision:
        """The decision alone, a pure function of the ranking and the thresholds:

        1. an out-of-scope example that wins (`_outside_wins`) declines;
        2. below the confidence threshold: "not sure";
        3. runners-up within choice_margin of the best, unless the entry classifier tells them apart
           (`_classifier_tells`): ask to choose;
        4. a best entry that neither stands out from the runner-up (doubt_margin) nor convinces the entry
           classifier (doubt_learned): a "chưa chắc" menu of the best few (a wrong answer costs the
           citizen more than a choice does);
        5. otherwise answer the best, with those within alternative_margin offered beside it.
        """
        entries = [c for c in candidates if not c.entry_id.startswith(OOS_PREFIX)]
        outside = [c for c in candidates if c.entry_id.startswith(OOS_PREFIX)]
        if not candidates:
            return Decision("not_sure")
        if outside and (not entries or self._outside_wins(outside[0], candidates, entries, t)):
            return Decision("out_of_scope", (outside[0],), outside[0].dense)
        top = entries[0]
        score = self.confidence(top, t)
        if score < (t.min_coverage_alone if top.lexical_only else t.min_confidence):
            return Decision("not_sure", (), score)
        close = [c for c in entries[1:t.max_choices] if top.fused - c.fused < t.choice_margin
                 and not self._classifier_tells(top, c, t)]
        if close:
            return Decision("choices", (top, *close), score)
        if len(entries) > 1 and top.fused - entries[1].fused < t.doubt_margin and top.learned < t.doubt_learned:
            return Decision("choices", tuple(entries[:t.max_choices]), score, doubtful=True)
        alternatives = [c for c in entries[1:t.max_choices] if top.fused - c.fused < t.alternative_margin]
        return Decision("answer", (top, *alternatives), score)

    def decide(self, query: Query, candidates: list[Candidate], on: dt.date,
               thresholds: Thresholds | None = None) -> Reply:
        """The reply for a ranking: `classify`, then the reply of that kind."""
        normalized = query.normalized
        ranked = tuple(c.entry_id for c in candidates if not c.entry_id.startswith(OOS_PREFIX))
        decision = self.classify(candidates, thresholds or self.thresholds)
        score = decision.confidence
        # A message with no content word ("2", "ok ạ") names no other field either: "not sure", never a decline.
        if decision.kind == "out_of_scope" and query.content_words:
            return self.out_of_scope_reply(decision.entries[0].entry_id, normalized, score=score, ranked=ranked)
        if decision.kind in ("not_sure", "out_of_scope"):
            return self.not_sure(normalized, ranked, score=score)
        top = self.kb.entries[decision.entries[0].entry_id]
        if decision.kind == "choices":
            choices = tuple(Choice(c.entry_id, self.kb.entries[c.entry_id].question) for c in decision.entries)
            return Reply("choices", messages.NOT_SURE_WHICH if decision.doubtful else messages.CHOOSE_ONE,
                         topic=top.topic,
                         score=score, choices=choices, normalized=normalized, candidates=ranked)
        alternatives = tuple(Choice(c.entry_id, self.kb.entries[c.entry_id].question) for c in decision.entries[1:])
        return self.answer(top, on, score=score, normalized=normalized, candidates=ranked,
                           alternatives=alternatives, question=normalized)

    def out_of_scope_reply(self, intent: str, normalized: str, *, score: float = 1.0,
                           ranked: tuple[str, ...] = ()) -> Reply:
        reply_text = self.out_of_scope[intent].reply
        return Reply("out_of_scope", reply_text + "\n\n" + messages.OUT_OF_SCOPE_FOOTER,
                     score=score, normalized=normalized, candidates=ranked)

    @staticmethod
    def _classifier_tells(top: Candidate, runner_up: Candidate, t: Thresholds) -> bool:
        """Whether the entry classifier tells two entries apart that the fused score puts side by side:
        it finds the best likely enough (doubt_learned) and choice_learned_ratio times as likely as the other."""
        return 0 < top.learned < 1 and top.learned >= t.doubt_learned and \
            top.learned >= t.choice_learned_ratio * runner_up.learned

    @staticmethod
    def _outside_wins(outside: Candidate, candidates: list[Candidate], entries: list[Candidate],
                      t: Thresholds) -> bool:
        """A decline example wins when it ranks among the first few and is about as close as the best
        of the leading entries, or the entry classifier finds it about as likely: one far down the
        ranking that happens to share a letter's style ("mẹ em… nhà em phải làm gì ạ?") must not turn
        away a survivors' letter."""
        if not entries:
            return True
        if outside.lexical_only:
            return outside.fused >= entries[0].fused
        position = candidates.index(outside)
        if position < t.oos_learned_depth and 0 < outside.learned < 1 and \
                outside.learned >= t.oos_learned_share * entries[0].learned:  # (1.0: no classifier took part)
            return True
        if position >= t.max_choices:
            return False
        return outside.dense >= max(c.dense for c in entries[:t.max_choices]) + t.oos_margin

    # ------------------------------------------------------------ replies

    def answer(self, entry: Entry, on: dt.date, *, score: float = 1.0, normalized: str = "",
               candidates: tuple[str, ...] = (), alternatives: tuple[Choice, ...] = (),
               question: str = "") -> Reply:
        """The entry's answer for `on`, its short answer first and the details after (bot/short_answer.py),
        fitted to the (normalized) `question` when one was typed: "Có." opens it only for a yes/no question.
        Close runners-up (`alternatives`) lead the related questions."""
        related = alternatives + tuple(Choice(r, self.kb.entries[r].question) for r in entry.related
                                       if r in self.kb.entries and r not in {a.entry_id for a in alternatives})
        text, short = fit_to_question(question, self.kb.render_answer(entry, on), self.kb.render_short(entry, on))
        caution = self.kb.caution(entry, on)
        if caution:
            text = f"{text}\n\n{caution}"
        short, details = short_and_details(text, short)
        short_caution = self.kb.short_caution(entry, on)
        if short and short_caution:
            short = f"{short}\n{short_caution}"
        return Reply("answer", text, entry_id=entry.id, topic=entry.topic,
                     score=score, sources=entry.sources, related=related[:3], normalized=normalized,
                     candidates=candidates or (entry.id,), short=short, details=details)

    def not_sure(self, normalized: str, ranked: tuple[str, ...] = (), score: float = 0.0) -> Reply:
        return Reply("not_sure", messages.not_sure_text(), score=score, normalized=normalized, candidates=ranked)

    def help_text(self) -> str:
        """Kept for the channels until they import `bot.messages.help_text` themselves."""
        return messages.help_text()

    # ------------------------------------------------------------ entry point

    def ask(self, text: object, on: dt.date | None = None) -> Reply:
        """The reply to one message; `on` is today. A question that names the date it asks about ("từ
        1/1/2027…", "năm sau": `knowledge.asked_date`) gets the figures in force then, and says so; a date
        the parameter table has no figures for gets today's, and says that."""
        on = on or dt.date.today()
        clean, rejection, notice = screen(text)
        if rejection:
            return Reply("invalid", rejection)
        query = Query.read(clean, raw=text if isinstance(text, str) else None)
        return self.on_asked_date(query.clean, on, lambda day: self._reply(query, day, notice))

    def on_asked_date(self, question: str, on: dt.date, make: Callable[[dt.date], Reply]) -> Reply:
        """`make(day)` for the date `question` asks its figures for (today `on` if none), the date said in
        the notice when the reply shows figures; today's figures, said so, when the table has none then.

        The funeral allowance (FOLLOWS_MONTH_OF_DEATH) is due at the reference level of the month of death, so a
        stated month of death ("bố tôi mất tháng 3/2026") sets its figures, though story dates set no others."""
        asked = asked_date(question, on)
        death_month = False
        if asked is None:
            reply = make(on)
            funeral = reply.answered and reply.entry_id in FOLLOWS_MONTH_OF_DEATH
            asked = month_of_death(question, on) if funeral else None
            if asked is None:
                return reply
            death_month = True
        try:
            reply = make(asked.on)
            note = messages.month_of_death_used(asked.on) if death_month else messages.date_used(asked.on)
        except ParameterError:  # a figure the reply needs has no value on that date
            reply = make(on)
            note = messages.date_not_in_table(asked.on, on)
        if not self.has_figures(reply):
            return reply
        return replace(reply, notice="\n".join(n for n in (reply.notice, note) if n))

    def has_figures(self, reply: Reply) -> bool:
        """Whether a reply shows regulated figures: a calculation, or an entry with {{placeholders}}."""
        if reply.kind == "calculator":
            return True
        entry = self.kb.entries.get(reply.entry_id) if reply.entry_id and reply.answered else None
        return entry is not None and PLACEHOLDER.search(entry.answer) is not None

    def _reply(self, query: Query, on: dt.date, notice: str) -> Reply:
        reply = self._shortcut(query, on)
        request = None
        if reply is None:
            request = detect_calculator_request(query.clean)
            computed = calculator_reply(request, on, self.kb.parameters, query.normalized) if request else None
            if computed is not None:
                reply = computed
        if reply is None and not self.knows_any_word(query):
            reply = self.not_sure(query.normalized)  # "asdfgh": no word of it is in any entry or decline example
        if reply is None:
            reply = self._after_decision(self.decide(query, self.candidates(query), on), query, request, on)
        return replace(reply, notice=notice) if notice else reply

    def _shortcut(self, query: Query, on: dt.date) -> Reply | None:
        """Replies that need no search: greetings, help, thanks, unmistakable commercial insurance, severance,
        a forwarded message offering money behind a link, a known gap of the knowledge base."""
        folded = query.folded
        if _HELP.match(folded) or _GREETING.match(folded):
            return Reply("smalltalk", messages.help_text(), normalized=folded)
        if _THANKS.match(folded):
            return Reply("smalltalk", messages.THANKS_REPLY, normalized=folded)
        if _COMMERCIAL_INSURANCE.search(folded) and not _STATE_INSURANCE.search(folded):
            return self.out_of_scope_reply(OOS_PREFIX + COMMERCIAL_INTENT, query.normalized)
        if _SEVERANCE.search(folded) and not _SEVERANCE_WITH_INSURANCE.search(folded):
            return self.out_of_scope_reply(OOS_PREFIX + LABOUR_LAW_INTENT, query.normalized)
        if _PEOPLE_WITH_MERIT.search(folded) and not _NAMES_STATE_INSURANCE.search(folded):
            return self.out_of_scope_reply(OOS_PREFIX + MERIT_INTENT, query.normalized)
        if is_scam_link_message(query.clean) and SCAM_LINK_ENTRY in self.kb.entries:
            return self.answer(self.kb.entries[SCAM_LINK_ENTRY], on, normalized=query.normalized)
        gap = find_gap(query.normalized)
        if gap is not None:  # a subject no entry answers (knowledge/gaps.yaml): say so, not a neighbour's answer
            return Reply("not_sure", messages.known_gap_text(gap.subject), topic=gap.topic, normalized=query.normalized)
        return None

    def _after_decision(self, reply: Reply, query: Query, request: CalcRequest | None, on: dt.date) -> Reply:
        """What the decision's reply becomes, in order:

        - an answer or a menu for a message with two questions: two labelled answers, when both are clear;
        - an answer or a menu that asked for a sum without the numbers: the calculator is offered;
        - a personal case ("hồ sơ của em duyệt chưa"): the way to check it comes first; a menu or
          "not sure" gives way to it alone, since no entry can answer for one person's file.
        """
        if reply.kind in ("answer", "choices"):
            reply = self.answer_each_question(query, on) or reply
            if request is not None:
                reply = replace(reply, calculator=request.calculator)
        if _PERSONAL.search(query.folded):
            if reply.kind == "answer":
                reply = replace(reply, kind="personal", text=messages.PERSONAL_NOTE + "\n\n" + reply.text,
                                short=messages.PERSONAL_NOTE + "\n\n" + reply.short if reply.short else "")
            elif reply.kind in ("not_sure", "choices"):
                reply = replace(reply, kind="personal", text=messages.PERSONAL_NOTE, choices=())
        return reply

    def answer_each_question(self, query: Query, on: dt.date) -> Reply | None:
        """Two questions about different things in one message get two labelled answers.

        Each question is searched with the story (never with the other question):
        "tôi có được hưởng thai sản không?" is the father's benefit only because
        the story says the wife is not insured. Only when both are confidently
        answered, by different entries, does the reply hold both. Otherwise the
        single best answer stands.
        """
        letter = query.letter
        if len(letter.questions) < 2:
            return None
        story = tuple(s for s in letter.sentences if s not in letter.questions)
        chosen: list[tuple[Entry, float]] = []
        doubtful = 0
        for question in letter.questions[:3]:
            decision = self._question_decision(question, story, {e.id for e, _ in chosen})
            if decision is not None:
                chosen.append((self.kb.entries[decision.entries[0].entry_id], decision.confidence))
                doubtful += decision.doubtful
        if len(chosen) < 2:
            return None
        chosen = chosen[:2]
        # A doubtful part is taken only when the two parts are about different topics (a job-loss benefit
        # and a withdrawal): two guesses within one topic are more likely one question asked twice.
        if doubtful and chosen[0][0].topic == chosen[1][0].topic:
            return None
        opening = messages.several_questions(len(chosen))
        parts, sources = [opening], []
        for n, (entry, _) in enumerate(chosen, start=1):
            single = self.answer(entry, on)
            parts.append(f"{n}. {entry.question}\n{single.text}")
            sources += [s for s in entry.sources if s not in sources]
        first = chosen[0][0]
        related = tuple(Choice(r, self.kb.entries[r].question) for r in first.related
                        if r in self.kb.entries and r != chosen[1][0].id)
        # No short form: "Xem chi tiết" (a button, "0") names one entry, and this reply answers two; shown whole.
        return Reply("answer", "\n\n".join(parts), entry_id=first.id, topic=first.topic,
                     score=min(score for _, score in chosen), sources=tuple(sources), related=related[:3],
                     normalized=query.normalized, candidates=tuple(e.id for e, _ in chosen))

    def _question_decision(self, question: str, story: tuple[str, ...], answered: set[str]) -> Decision | None:
        """One question of a letter, read with the story (which says whose case it is), or alone when it names
        its subject itself and the story leaves it undecided or leads back to an entry another question of the
        letter already `answered`. The question alone is trusted only for an entry the story's reading also
        ranks among its first few: alone, "bao giờ mẹ tôi được nhận lương hưu?" could be anyone's pension.
        None when no reading answers it with a new entry."""
        sub = Letter(" ".join((*story, question)), (*story, question), (question,))
        with_story = self._letter_candidates(sub, 12, "hybrid") if sub.is_letter else self.candidates(sub.text)
        plausible = {c.entry_id for c in with_story[:self.thresholds.max_choices]}

        def readings() -> Iterator[list[Candidate]]:  # lazily: the question alone costs another encoding
            yield with_story
            if len(content_words(normalize_query(question))) >= SELF_CONTAINED_WORDS:
                yield self.candidates(question)

        for n, found in enumerate(readings()):
            decision = self.classify(found, self.thresholds)
            # With the story, a near tie is still taken: this part of the letter is one of two labelled answers.
            taken = decision.kind == "answer" or decision.doubtful or (n == 0 and decision.kind == "choices")
            if taken and decision.entries[0].entry_id not in answered and decision.entries[0].entry_id in plausible:
                return decision
        return None

    def entry_reply(self, entry_id: str, on: dt.date | None = None, *, question: str = "") -> Reply | None:
        """The answer for a chosen entry (a button press or "1", "2", "3"); `question`: the one the choices
        were offered for, whose date ("từ 1/1/2027…") the figures are rendered for."""
        entry = self.kb.entries.get(entry_id)
        if entry is None:
            return None
        return self.on_asked_date(question, on or dt.date.today(), lambda day: self.answer(entry, day))
