"""Known gaps of the knowledge base (`gaps.yaml`): subjects no entry answers yet.

`find_gap("BHYT có trả tiền làm răng không")` returns the gap, so the bot says it has no information
on that and gives the hotline, rather than the nearest entry (about something else). Gaps are data,
written on purpose; a test checks that no entry's own question matches one (then it is no longer a gap).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

from knowledge.schema import ID_PATTERN, KnowledgeError
from knowledge.topics import TOPICS
from retrieval.normalize import folded_tokens

GAPS_FILE = Path(__file__).parent / "gaps.yaml"


@dataclass(frozen=True)
class Gap:
    id: str
    topic: str
    subject: str  # "… tôi chưa có thông tin về <subject>"
    all_of: tuple[re.Pattern[str], ...]  # one phrase of each group must be in the question (folded words)

    def matches(self, folded: str) -> bool:
        return all(group.search(folded) for group in self.all_of)


def _group(phrases: object, where: str) -> re.Pattern[str]:
    if not isinstance(phrases, list) or not phrases or not all(isinstance(p, str) and p.strip() for p in phrases):
        raise KnowledgeError([f"{where}: each group of 'all_of' must be a list of phrases"])
    words = sorted({" ".join(folded_tokens(p)) for p in phrases}, key=len, reverse=True)
    return re.compile(r"(?<!\w)(?:" + "|".join(re.escape(w) for w in words) + r")(?!\w)")


@lru_cache(maxsize=1)
def load_gaps(path: Path = GAPS_FILE) -> tuple[Gap, ...]:
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or []
    if not isinstance(raw, list):
        raise KnowledgeError([f"{path.name}: must be a list of gaps"])
    gaps = []
    for record in raw:
        where = f"{path.name}: gap {record.get('id') if isinstance(record, dict) else record!r}"
        if not isinstance(record, dict) or set(record) != {"id", "topic", "subject", "all_of"}:
            raise KnowledgeError([f"{where}: needs exactly the fields id, topic, subject, all_of"])
        if not ID_PATTERN.match(str(record["id"])) or record["topic"] not in TOPICS:
            raise KnowledgeError([f"{where}: bad id or unknown topic {record['topic']!r}"])
        if not isinstance(record["all_of"], list) or not record["all_of"]:
            raise KnowledgeError([f"{where}: 'all_of' must be a non-empty list of groups"])
        gaps.append(Gap(record["id"], record["topic"], str(record["subject"]).strip(),
                        tuple(_group(g, where) for g in record["all_of"])))
    return tuple(gaps)


def find_gap(text: str) -> Gap | None:
    """The first known gap the question is about, or None."""
    folded = " ".join(folded_tokens(text))
    return next((gap for gap in load_gaps() if gap.matches(folded)), None)
