"""Signals of misunderstanding (`bot/signals.py` decides what they are) and the log's text search, on
either backend.

`SignalLog` is mixed into both stores: `log_signal` writes through the backend's `_write` (queued in
memory while the database refuses writes, like the question log), `last_question` reads through its
`_handoff_tx(write=False)` runner (SQL with `?` placeholders, a plain read on either backend).

Search over the redacted question log (`normalized`, accent-insensitive, every word as a prefix): a
full-text index on each backend, SQLite FTS5 (`questions_fts`, unicode61 with diacritics removed, prefix
indexes of 1 to 6 letters: step 0009) and PostgreSQL a GIN index on the stored column `search_tsv` =
`bhxh_search_text(normalized)` (to_tsvector over unaccent). `fts5_clause` and `tsquery_clause` give the WHERE
term each store's `search_clause` returns; the term lets the planner drive the query from the full-text
index (the staff search, admin_api/question_log.py, decides when to walk the log newest first instead).
Measured on 203,000 rows (SQLite, 2 shared cores): without prefix indexes '"luong"* AND "huu"*' merged
every prefix's doclist before its first row (11 ms for 29,000 matches, and again for each query using it);
with them 1,001 matches are counted in 0.1 ms. Counting LIKE '%lương hưu%' over text and normalized scans
the table (298 ms).
"""

from __future__ import annotations

import itertools
import re
from typing import Any

from retrieval.normalize import fold_accents, redact_pii, tokenize, valid_unicode
from storage.base import utcnow

SIGNAL_DETAIL_CHARS = 300
SEARCH_MAX_WORDS = 8
_WORD = re.compile(r"[a-z0-9]+")


class SignalLog:
    """`log_signal` and `last_question` for a store that has `_write`, `_handoff_tx` and `hash_user`."""

    def log_signal(self, *, channel: str, user_id: str, kind: str, question_id: int | None = None,
                   entry_id: str | None = None, detail: str | None = None) -> int | None:
        """One signal row; `detail` (a 👎 reason may hold personal data) is redacted and cut short."""
        if detail:
            detail = valid_unicode(redact_pii(detail, SIGNAL_DETAIL_CHARS)).replace("\x00", "")
        row = {"ts": utcnow(), "channel": channel, "user_hash": self.hash_user(channel, user_id),  # type: ignore[attr-defined]
               "kind": kind, "question_id": question_id, "entry_id": entry_id, "detail": detail or None}
        return self._write("signals", row)  # type: ignore[attr-defined, no-any-return]

    def last_question(self, channel: str, user_id: str, before_id: int | None = None) -> dict[str, Any] | None:
        """The user's latest logged question (older than `before_id` if given): id, ts, normalized,
        topic, entry_id, outcome, kind; None if none (or the database cannot be read)."""
        args: list[Any] = [channel, self.hash_user(channel, user_id)]  # type: ignore[attr-defined]
        older = ""
        if before_id is not None:
            older, args = " AND id < ?", [*args, before_id]
        with self._handoff_tx(write=False) as run:  # type: ignore[attr-defined]
            rows = run("SELECT id, ts, normalized, topic, entry_id, outcome, kind FROM questions "
                       f"WHERE channel = ? AND user_hash = ?{older} ORDER BY id DESC LIMIT 1", args)
        if not rows:
            return None
        return dict(zip(("id", "ts", "normalized", "topic", "entry_id", "outcome", "kind"), rows[0], strict=True))


def search_words(query: str) -> list[str]:
    """The words of a staff search, accent-folded and lower-cased (at most SEARCH_MAX_WORDS)."""
    words = [w for t in tokenize(fold_accents(query)) for w in _WORD.findall(t)]
    return list(dict.fromkeys(words))[:SEARCH_MAX_WORDS]


def fts5_clause(words: list[str]) -> tuple[str, list[Any]]:
    """SQLite: every word as a prefix of a word of `normalized`. FTS5's unicode61 tokenizer removes tone
    and vowel marks but keeps "đ", so a "d" of the query also matches "đ" ("dong" finds "đóng")."""
    terms = []
    for word in words:
        spots = [i for i, ch in enumerate(word) if ch == "d"][:3]
        variants = []
        for letters in itertools.product("dđ", repeat=len(spots)):
            chars = list(word)
            for i, letter in zip(spots, letters, strict=True):
                chars[i] = letter
            variants.append(f'"{"".join(chars)}"*')
        terms.append("(" + " OR ".join(variants) + ")")
    return "id IN (SELECT rowid FROM questions_fts WHERE questions_fts MATCH ?)", [" AND ".join(terms)]


def fts5_count(words: list[str], clauses: list[str], args: list[Any], cap: int) -> tuple[str, list[Any]]:
    """SQLite: the log rows matching `words` and `clauses` (on `questions`), counted up to `cap`, the FTS5
    index driving newest first (lazily, thanks to the prefix indexes) so the count stops at `cap`; CROSS JOIN
    keeps that order of the join. `clauses` must name questions.normalized in full (the index has the column too)."""
    found = [*fts5_clause(words)[1], *args]
    rest = "".join(f" AND {c}" for c in clauses)
    return ("SELECT COUNT(*) FROM (SELECT 1 FROM questions_fts "
            "CROSS JOIN questions ON questions.id = questions_fts.rowid "
            f"WHERE questions_fts MATCH ?{rest} ORDER BY questions_fts.rowid DESC LIMIT {int(cap)}) AS matching", found)


def tsquery_clause(words: list[str]) -> tuple[str, list[Any]]:
    """PostgreSQL: the same, on the GIN index of the stored `search_tsv` (unaccent maps đ to d)."""
    return ("search_tsv @@ to_tsquery('simple', ?)",
            [" & ".join(f"{w}:*" for w in words)])
