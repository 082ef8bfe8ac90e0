"""Restore Vietnamese diacritics from a corpus's own vocabulary.

Dense encoders read "rut bao hiem mot lan" as a different language from
"rút bảo hiểm một lần". Before encoding a query typed without accents we put
the marks back, choosing for each run of 1–3 unaccented syllables the accented
form that occurs most often in the indexed texts ("bao hiem" → "bảo hiểm",
"bao nhieu" → "bao nhiêu"). Syllables the user typed with marks are kept.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable

from retrieval.normalize import fold_accents, tokenize

MAX_NGRAM = 3


class AccentRestorer:
    def __init__(self, texts: Iterable[str]) -> None:
        counts: dict[tuple[str, ...], Counter[tuple[str, ...]]] = defaultdict(Counter)
        for text in texts:
            tokens = tokenize(text)
            folded = [fold_accents(t) for t in tokens]
            for n in range(1, MAX_NGRAM + 1):
                for i in range(len(tokens) - n + 1):
                    counts[tuple(folded[i : i + n])][tuple(tokens[i : i + n])] += 1
        # Keep only the winner for each folded n-gram.
        self._best: dict[tuple[str, ...], tuple[str, ...]] = {
            key: forms.most_common(1)[0][0] for key, forms in counts.items()
        }

    def restore(self, text: str) -> str:
        """Return `text` (tokenized, lower case) with marks restored where known."""
        tokens = tokenize(text)
        out: list[str] = []
        i = 0
        while i < len(tokens):
            if fold_accents(tokens[i]) != tokens[i]:
                out.append(tokens[i])  # the user typed the marks: trust them
                i += 1
                continue
            for n in range(min(MAX_NGRAM, len(tokens) - i), 0, -1):
                window = tokens[i : i + n]
                if any(fold_accents(t) != t for t in window):
                    continue
                best = self._best.get(tuple(window))
                if best is not None:
                    out.extend(best)
                    i += n
                    break
            else:
                out.append(tokens[i])
                i += 1
        return " ".join(out)

    @staticmethod
    def unaccented_share(text: str) -> float:
        """Share of alphabetic syllables with no marks where one is plausible."""
        words = [t for t in tokenize(text) if t.isalpha()]
        if not words:
            return 0.0
        return sum(fold_accents(t) == t for t in words) / len(words)
