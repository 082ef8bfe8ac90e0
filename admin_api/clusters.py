"""Unanswered questions grouped by intent, each group with its nearest entries (to attach as a paraphrase).

Intent first (`intent_groups`): each distinct text is keyed by the entry the engine answered it with
(low-score answers) or else by its nearest entry (`engine.candidates`: hybrid, dense + lexical, once
the background look-up is done), so "rút một lần được không" and "luật nào quy định rút một lần" stay
apart even though they share words; within one key, texts that share no words are split again
(Jaccard below INTENT_JACCARD). Texts past MAX_INTENT_TEXTS fall back to wording alone: token sets
(accent-folded, function words removed) → MinHash LSH candidates → greedy leader clustering checked
with the exact Jaccard (`cluster_texts`). Junk (`is_junk`: one content word, or mostly words the
knowledge base never uses, e.g. "asdfgh", "ok ok", "help me") is counted but not clustered.
The nearest entries of a new text come from BM25 at once while one background thread computes the
hybrid ones for the next call (`nearest_entries`, memoized per engine).
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import threading
import weakref
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, Field

from admin_api.report_cache import ReportCache
from admin_api.trends import ts_string, utc_now
from bot.engine import OOS_PREFIX, STOPWORDS, Engine
from retrieval.normalize import fold_accents, tokenize
from storage.schema import UNSURE_INDEX_WHERE
from storage.store import Store

# Unanswered questions: kinds that are never worth a staff look, and clustering limits.
IGNORED_KINDS = ("smalltalk", "invalid", "calculator", "law_lookup")  # law_lookup: bot/field_kit.py
CLUSTER_JACCARD = 0.5
INTENT_JACCARD = 0.2  # texts with the same nearest entry still need this much wording in common
MAX_DISTINCT_TEXTS = 5000
MAX_INTENT_TEXTS = 1500  # the most frequent distinct texts keyed by intent; the rest by wording only
MAX_EXACT_GROUP = 400  # texts of one intent compared pairwise (more: MinHash LSH candidates)
JUNK_KNOWN_SHARE = 0.6  # a text whose distinct words the knowledge base uses less than this is gibberish
LSH_BANDS, LSH_ROWS = 12, 3
_PRIME = 2**31 - 1
LOW_CONFIDENCE_MARGIN = 0.02
_CACHE = ReportCache()  # the grouped window, reused while no new question was logged (within the minute)
# UNSURE_INDEX_WHERE: a partial covering index (storage/schema.py) holds every question a staff member
# may call unanswered (min_score up to 0.95): the query repeats this exact term so SQLite can use it.


class NearEntry(BaseModel):
    entry_id: str
    question: str
    topic: str
    score: float = Field(description="Fused retrieval score of the entry for the cluster's representative text")


class Cluster(BaseModel):
    id: str = Field(description="Stable id: a hash of the representative text")
    size: int = Field(description="Questions in the cluster")
    distinct_texts: int
    representative: str = Field(description="The most frequent normalized (redacted) text of the cluster")
    examples: list[str] = Field(description="Redacted question texts, most frequent first")
    question_ids: list[int] = Field(description="Question ids, the representative's (latest) first: pass one to "
                                    "POST /admin/entries/{id}/paraphrases")
    outcomes: dict[str, int] = Field(description="declined / choices / low_score counts")
    last_seen: str
    nearest: list[NearEntry]
    nearest_mode: Literal["hybrid", "lexical", "none"] = Field(
        description="hybrid = engine.candidates; lexical = BM25 only (hybrid neighbours of a new text are computed "
                    "in the background for the next call)")


class UnansweredReport(BaseModel):
    days: int
    channel: str | None
    min_score: float = Field(description="Answers scoring below this count as low-confidence")
    include_out_of_scope: bool
    questions: int = Field(description="Unanswered or low-confidence questions in the window (junk included)")
    distinct_texts: int
    clustered_texts: int = Field(description=f"Distinct texts clustered (at most {MAX_DISTINCT_TEXTS}, most frequent)")
    junk_questions: int = Field(0, description="Questions set aside as junk: gibberish or one content word")
    junk_texts: int = Field(0, description="Their distinct texts (shown as clusters only with include_junk)")
    include_junk: bool = False
    clusters_total: int
    offset: int = 0
    limit: int = 20
    method: str
    clusters: list[Cluster]


@functools.lru_cache(maxsize=50_000)
def is_junk(text: str, known_words: frozenset[str]) -> bool:
    """Gibberish or one word: fewer than two content words (function words aside), or distinct words
    the knowledge base uses (`known_words`, accent-folded) are less than JUNK_KNOWN_SHARE of them."""
    words = {w for w in tokenize(fold_accents(text)) if w.isalnum()}
    if len(words - STOPWORDS) < 2:
        return True
    return bool(known_words) and sum(w in known_words for w in words) < JUNK_KNOWN_SHARE * len(words)


def intent_groups(texts: list[str], answered_entries: list[str | None], engine: Engine) -> list[list[int]]:
    """Indexes of `texts` (most frequent first) grouped by intent: the same answered or nearest entry
    and at least INTENT_JACCARD of their words in common (see the module docstring)."""
    keyed = texts[:MAX_INTENT_TEXTS]
    missing = [t for t, e in zip(keyed, answered_entries, strict=False) if not e]
    nearest = dict(zip(missing, nearest_entries(engine, missing), strict=True))
    by_key: dict[str, list[int]] = {}
    rest: list[int] = []
    for i, text in enumerate(texts):
        key = answered_entries[i] if i < len(keyed) else None
        if key is None and i < len(keyed):
            neighbours = nearest[text][0]
            key = neighbours[0].entry_id if neighbours else None
        if key is None:
            rest.append(i)
        else:
            by_key.setdefault(key, []).append(i)
    groups = []
    for members in by_key.values():
        split = cluster_texts([texts[i] for i in members], INTENT_JACCARD, exact=len(members) <= MAX_EXACT_GROUP)
        groups += [[members[j] for j in g] for g in split]
    groups += [[rest[j] for j in g] for g in cluster_texts([texts[i] for i in rest])]
    return groups


@functools.lru_cache(maxsize=50_000)
def _token_set(text: str) -> frozenset[str]:
    tokens = tokenize(fold_accents(text))
    content = frozenset(t for t in tokens if t not in STOPWORDS)
    return content or frozenset(tokens) or frozenset([text])


def _band_keys(sets: list[frozenset[str]], bands: int = LSH_BANDS, rows: int = LSH_ROWS) -> list[list[int]]:
    """MinHash signatures (bands x rows hashes, numpy-vectorized), one integer key per band."""
    if not sets:
        return []
    vocab: dict[str, int] = {}
    flat = [vocab.setdefault(tok, len(vocab)) for tokens in sets for tok in sorted(tokens)]
    ids = np.asarray(flat, dtype=np.uint64)
    rng = np.random.default_rng(1676)
    k = bands * rows
    a = rng.integers(1, _PRIME, size=k, dtype=np.uint64)
    b = rng.integers(0, _PRIME, size=k, dtype=np.uint64)
    hashed = (ids[:, None] * a + b) % np.uint64(_PRIME)  # < 2**62: no overflow
    starts = np.concatenate([[0], np.cumsum([len(t) for t in sets])[:-1]]).astype(np.int64)
    signature = np.minimum.reduceat(hashed, starts, axis=0)
    keys = signature[:, 0::rows].copy()
    for r in range(1, rows):
        keys = keys * np.uint64(_PRIME) + signature[:, r::rows]  # wraps mod 2**64: still a fine bucket key
    return keys.tolist()


def cluster_texts(texts: list[str], threshold: float = CLUSTER_JACCARD, exact: bool = False) -> list[list[int]]:
    """Greedy leader clustering by token-set Jaccard, in input order (most frequent first).

    Texts with the same token set (accent-folded, function words removed) always go together.
    Each new set joins the most similar cluster whose leader has Jaccard >= threshold, else it
    leads a new cluster. Candidate leaders come from MinHash LSH (LSH_BANDS = 12 bands of
    LSH_ROWS = 3 hashes: a pair with Jaccard 0.5 shares a band with probability
    1 - (1 - 0.5**3)**12 = 0.80; 0.6 → 0.95; 0.7 → 0.99) and every candidate is checked with the
    exact Jaccard, so dissimilar texts are never merged and the cost stays linear (a missed
    pair only splits a cluster in two). `exact`: every leader is a candidate (no LSH), for small
    sets and low thresholds, which LSH would mostly miss (Jaccard 0.2: 9%).
    """
    same: dict[frozenset[str], list[int]] = {}
    for i, text in enumerate(texts):
        same.setdefault(_token_set(text), []).append(i)
    sets = list(same)
    if exact:
        return _cluster_exact(sets, same, threshold)
    keys = _band_keys(sets)
    leaders: list[frozenset[str]] = []
    members: list[list[int]] = []
    buckets: dict[tuple[int, int], list[int]] = {}
    for tokens, band_keys in zip(sets, keys, strict=True):  # dicts keep first-seen order: most frequent first
        size = len(tokens)
        best, best_sim = -1, threshold
        for c in sorted({c for j, key in enumerate(band_keys) for c in buckets.get((j, key), ())}):
            leader = leaders[c]
            common = len(tokens & leader)
            sim = common / (size + len(leader) - common)
            if sim > best_sim or (best < 0 and sim >= best_sim):
                best, best_sim = c, sim
        if best >= 0:
            members[best].extend(same[tokens])
            continue
        leaders.append(tokens)
        members.append(list(same[tokens]))
        for j, key in enumerate(band_keys):
            buckets.setdefault((j, key), []).append(len(leaders) - 1)
    return members


def _cluster_exact(sets: list[frozenset[str]], same: dict[frozenset[str], list[int]],
                   threshold: float) -> list[list[int]]:
    """`cluster_texts` comparing each set with every leader (quadratic: for small groups)."""
    leaders: list[frozenset[str]] = []
    members: list[list[int]] = []
    for tokens in sets:
        best, best_sim = -1, threshold
        for c, leader in enumerate(leaders):
            common = len(tokens & leader)
            sim = common / (len(tokens) + len(leader) - common)
            if sim > best_sim or (best < 0 and sim >= best_sim):
                best, best_sim = c, sim
        if best >= 0:
            members[best].extend(same[tokens])
        else:
            leaders.append(tokens)
            members.append(list(same[tokens]))
    return members


_NEAREST: weakref.WeakKeyDictionary[Engine, dict[tuple[int, str], list[NearEntry]]] = weakref.WeakKeyDictionary()
_WARMER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bhxh-nearest")
_PENDING: set[tuple[int, int, str]] = set()
_PENDING_LOCK = threading.Lock()


def _neighbours(engine: Engine, text: str, k: int, mode: str) -> list[NearEntry]:
    found = []
    for c in engine.candidates(text, k=k + 3, mode=mode):
        entry = engine.kb.entries.get(c.entry_id)
        if entry is not None and not c.entry_id.startswith(OOS_PREFIX):
            found.append(NearEntry(entry_id=entry.id, question=entry.question, topic=entry.topic,
                                   score=round(c.fused, 4)))
    return found[:k]


def _warm(engine_ref: weakref.ref[Engine], texts: list[str], k: int) -> None:
    engine = engine_ref()
    if engine is None:
        return
    memo = _NEAREST.setdefault(engine, {})
    for text in texts:
        try:
            if (k, text) not in memo:
                memo[(k, text)] = _neighbours(engine, text, k, "hybrid")
        except Exception:  # a failed warm-up only means BHXH-only neighbours for a while
            return
        finally:
            with _PENDING_LOCK:
                _PENDING.discard((id(engine), k, text))


def nearest_entries(engine: Engine, texts: list[str], k: int = 3,
                    wait: bool = False) -> list[tuple[list[NearEntry], str]]:
    """The k nearest entries of each text via `engine.candidates`, memoized per engine.

    Hybrid search encodes every text with the dense model (tens of ms each), so a text seen for
    the first time gets BM25-only neighbours at once ("lexical") while one background thread
    computes the hybrid ones for the next call; `wait=True` waits for them instead.
    """
    memo = _NEAREST.setdefault(engine, {})
    dense = engine.index.has_dense
    missing = [t for t in dict.fromkeys(texts) if t.strip() and (k, t) not in memo]
    if missing and dense:
        with _PENDING_LOCK:
            new = [t for t in missing if (id(engine), k, t) not in _PENDING]
            _PENDING.update((id(engine), k, t) for t in new)
        future = _WARMER.submit(_warm, weakref.ref(engine), new, k) if new else None
        if wait and future is not None:
            future.result()
    if len(memo) > 20_000:
        memo.clear()
    out: list[tuple[list[NearEntry], str]] = []
    for text in texts:
        if not text.strip():
            out.append(([], "none"))
        elif (k, text) in memo:
            out.append((memo[(k, text)], "hybrid" if dense else "lexical"))
        elif dense:
            out.append((_neighbours(engine, text, k, "lexical"), "lexical"))
        else:
            memo[(k, text)] = _neighbours(engine, text, k, "lexical")
            out.append((memo[(k, text)], "lexical"))
    return out


def wait_for_warmup(timeout: float | None = None) -> None:
    """Block until the background hybrid look-ups queued so far are done (for benchmarks, tests)."""
    _WARMER.submit(lambda: None).result(timeout)


def default_min_score(engine: Engine) -> float:
    """Answers scoring below the engine's answer threshold + LOW_CONFIDENCE_MARGIN barely passed."""
    t = engine.thresholds
    base = t.min_confidence if engine.index.has_dense else t.min_coverage_alone
    return round(float(base) + LOW_CONFIDENCE_MARGIN, 4)


@dataclass
class _Grouping:
    """The window's unanswered texts and their clusters, largest first (shared by the report and the
    drill-down from a cluster to its questions)."""

    threshold: float
    rows: list[tuple[Any, ...]]  # (normalized, n, max id, last ts, answered entry, declined, choices, low score)
    kept: list[tuple[Any, ...]]  # the clustered ones (junk aside unless asked for)
    groups: list[list[int]]  # indexes into kept
    junk: list[tuple[Any, ...]]


def _grouping(store: Store, engine: Engine, days: int, channel: str | None, min_score: float | None,
              include_out_of_scope: bool, include_junk: bool, now: dt.datetime | None) -> _Grouping:
    """`_group` reused while no new question was logged (admin_api/report_cache.py); the engine is part of
    the key, since a staff edit rebuilds it and changes the nearest entries."""
    key = (id(engine), days, channel, min_score, include_out_of_scope, include_junk, now)
    return _CACHE.get(store, "questions", key, lambda: _group(store, engine, days, channel, min_score,
                                                                include_out_of_scope, include_junk, now))


def _group(store: Store, engine: Engine, days: int, channel: str | None, min_score: float | None,
           include_out_of_scope: bool, include_junk: bool, now: dt.datetime | None) -> _Grouping:
    end = now or utc_now()
    start = end - dt.timedelta(days=days)
    threshold = default_min_score(engine) if min_score is None else min_score
    ignored = IGNORED_KINDS if include_out_of_scope else (*IGNORED_KINDS, "out_of_scope")
    kinds = ", ".join(f"'{k}'" for k in ignored)
    indexed = f" AND ({UNSURE_INDEX_WHERE})" if threshold <= 0.95 else ""
    where = (f"ts >= ? AND ts < ? AND coalesce(kind, '') NOT IN ({kinds}){indexed} "
             "AND (outcome != 'answered' OR score < ?)" + (" AND channel = ?" if channel else ""))
    args: list[Any] = [ts_string(start), ts_string(end), threshold, *([channel] if channel else [])]
    # Portable SQL (SQLite and PostgreSQL): MAX(ts) for the last time seen, CASE rather than SUM(bool);
    # texts are fetched for the shown clusters.
    rows = store.db.execute(
        "SELECT coalesce(normalized, ''), COUNT(*) AS n, MAX(id), MAX(ts), "
        "MAX(CASE WHEN outcome = 'answered' THEN entry_id END), "
        "SUM(CASE WHEN outcome = 'declined' THEN 1 ELSE 0 END), SUM(CASE WHEN outcome = 'choices' THEN 1 ELSE 0 END), "
        f"SUM(CASE WHEN outcome = 'answered' THEN 1 ELSE 0 END) FROM questions WHERE {where} "
        "GROUP BY 1 ORDER BY n DESC, 3 DESC", args).fetchall()
    known = getattr(engine, "_known_words", frozenset())  # the knowledge base's words, accent-folded
    junk_flags = [is_junk(r[0], known) for r in rows]
    junk = [r for r, flag in zip(rows, junk_flags, strict=True) if flag]
    kept = [r for r, flag in zip(rows, junk_flags, strict=True) if include_junk or not flag][:MAX_DISTINCT_TEXTS]
    groups = intent_groups([r[0] for r in kept], [r[4] for r in kept], engine)
    groups.sort(key=lambda g: (-sum(kept[i][1] for i in g), g[0]))
    return _Grouping(threshold, rows, kept, groups, junk)


def _cluster_id(representative: str) -> str:
    return hashlib.sha1(representative.encode()).hexdigest()[:12]


def cluster_texts_of(store: Store, engine: Engine, cluster_id: str, days: int = 7, channel: str | None = None,
                     min_score: float | None = None, include_out_of_scope: bool = False,
                     now: dt.datetime | None = None) -> list[str] | None:
    """The normalized texts of one cluster of `unanswered` (same window and options), for the drill-down
    to its questions; None if no cluster has that id now."""
    grouping = _grouping(store, engine, days, channel, min_score, include_out_of_scope, True, now)
    for group in grouping.groups:
        if _cluster_id(grouping.kept[group[0]][0]) == cluster_id:
            return [grouping.kept[i][0] for i in group]
    return None


def unanswered(store: Store, engine: Engine, days: int = 7, channel: str | None = None,
               min_score: float | None = None, limit: int = 20, examples: int = 3,
               include_out_of_scope: bool = False, now: dt.datetime | None = None, *, offset: int = 0,
               include_junk: bool = False) -> UnansweredReport:
    """Declined, choice and low-score questions of the window, clustered by intent, largest first;
    clusters `offset` … `offset + limit` of them.

    Small talk, empty/garbled input and calculator use are never counted; off-topic questions
    (weather, gold price…) the bot rightly declined only with include_out_of_scope; junk (gibberish,
    one word) is counted apart and clustered only with include_junk."""
    grouping = _grouping(store, engine, days, channel, min_score, include_out_of_scope, include_junk, now)
    kept = grouping.kept
    top = grouping.groups[offset:offset + limit]
    near = nearest_entries(engine, [kept[g[0]][0] for g in top])
    shown = [kept[i][2] for g in top for i in g[:examples * 3]]
    texts_by_id = dict(store.db.execute(f"SELECT id, text FROM questions WHERE id IN ({','.join('?' * len(shown))})",
                                        shown).fetchall()) if shown else {}
    clusters = []
    for group, (neighbours, mode) in zip(top, near, strict=True):
        members = [kept[i] for i in group]
        ids = [members[0][2], *sorted((m[2] for m in members[1:]), reverse=True)[:4]]  # the representative's first
        texts = list(dict.fromkeys(texts_by_id.get(m[2]) or m[0] for m in members[:examples * 3]))
        clusters.append(Cluster(
            id=_cluster_id(members[0][0]),
            size=sum(m[1] for m in members), distinct_texts=len(members), representative=members[0][0],
            examples=texts[:examples], question_ids=ids,
            outcomes={"declined": sum(m[5] for m in members), "choices": sum(m[6] for m in members),
                      "low_score": sum(m[7] for m in members)},
            last_seen=max(m[3] for m in members), nearest=neighbours, nearest_mode=mode))  # type: ignore[arg-type]
    return UnansweredReport(
        days=days, channel=channel, min_score=grouping.threshold, include_out_of_scope=include_out_of_scope,
        questions=sum(r[1] for r in grouping.rows), distinct_texts=len(grouping.rows),
        clustered_texts=len(kept), junk_questions=sum(r[1] for r in grouping.junk), junk_texts=len(grouping.junk),
        include_junk=include_junk, clusters_total=len(grouping.groups), offset=offset, limit=limit,
        clusters=clusters,
        method=(f"Grouped by intent: the same answered or nearest entry (engine.candidates) for the "
                f"{MAX_INTENT_TEXTS} most frequent texts, split where they share under {INTENT_JACCARD:.0%} of "
                f"their words; the rest by wording (token-set Jaccard >= {CLUSTER_JACCARD}, accent-folded, "
                "function words removed; MinHash LSH candidates, exact check). Junk (gibberish, one word) apart."))
