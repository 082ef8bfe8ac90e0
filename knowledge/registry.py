"""Currency of the knowledge base: which entries must be re-reviewed, and why.

Two kinds of flag, read from the document registry (knowledge/documents.yaml) and each entry's
`reviewed_on`:
- a cited document was amended or replaced, and the registry noted it after the entry was reviewed.
  An ERROR when the change is a replacement, or names the articles it touches and the entry cites
  one of them (or the document without an article): the reviewer can act on it, so `bhxh kb check`
  fails until the entry is re-checked. A WARNING when the scope of an amendment is unknown (its
  text is not held): nothing to re-check against yet, but staff should see it.
- the entry is older than the review age (default 365 days): a WARNING, because time alone must not
  break a build that changed nothing; the staff dashboard lists it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from knowledge.schema import Entry, KnowledgeBase
from knowledge.sources import REGISTRY, Document, parse_citation

# The review age when the caller names none; the configured one is Settings.review_age_days
# (BHXH_REVIEW_AGE_DAYS, read by bot/settings.py: this module does not read the environment).
DEFAULT_REVIEW_AGE_DAYS = 365


@dataclass(frozen=True)
class Flag:
    entry_id: str
    file: str
    severity: str  # "error" | "warning"
    reason: str
    reviewed_on: dt.date

    def line(self) -> str:
        return f"{self.file}: entry {self.entry_id!r}: {self.severity}: {self.reason}"


def _cited_articles(entry: Entry) -> dict[str, set[int | None]]:
    out: dict[str, set[int | None]] = {}
    for source in entry.sources:
        c = parse_citation(source)
        out.setdefault(c.number, set()).add(c.article)
    return out


def entry_flags(entry: Entry, today: dt.date, *, registry: dict[str, Document] | None = None,
                max_age_days: int = DEFAULT_REVIEW_AGE_DAYS) -> list[Flag]:
    registry = REGISTRY if registry is None else registry
    flags: list[Flag] = []

    def flag(severity: str, reason: str) -> None:
        flags.append(Flag(entry.id, entry.file, severity, reason, entry.reviewed_on))

    for number, articles in _cited_articles(entry).items():
        document = registry.get(number)
        if document is None:
            continue
        for change in document.changes:
            if entry.reviewed_on >= change.noted:
                continue
            what = "replaced" if change.kind == "replaced" else "amended"
            reason = (f"cites {number}, {what} by {change.by} (in force {change.on.isoformat()}, "
                      f"noted {change.noted.isoformat()}) after the entry was reviewed "
                      f"on {entry.reviewed_on.isoformat()}")
            if change.kind == "replaced" or change.articles is None:
                severity = "error" if change.kind == "replaced" else "warning"
                flag(severity, reason + ("" if severity == "error" else "; scope unknown"))
            else:
                touched = sorted(a for a in articles if a is None or a in change.articles)
                if touched:
                    arts = ", ".join("(no article)" if a is None else f"Điều {a}" for a in touched)
                    flag("error", f"{reason}; touches {arts}")
    age = (today - entry.reviewed_on).days
    if age > max_age_days:
        flag("warning", f"last reviewed {entry.reviewed_on.isoformat()}, {age} days ago (review age {max_age_days})")
    return flags


def review_flags(kb: KnowledgeBase, today: dt.date | None = None, *,
                 registry: dict[str, Document] | None = None,
                 max_age_days: int = DEFAULT_REVIEW_AGE_DAYS) -> list[Flag]:
    """Every flag of every entry, errors first, then by file and entry."""
    today = today or dt.date.today()
    flags = [f for e in kb.entries.values()
             for f in entry_flags(e, today, registry=registry, max_age_days=max_age_days)]
    return sorted(flags, key=lambda f: (f.severity != "error", f.file, f.entry_id))


def report(flags: list[Flag]) -> list[str]:
    """Lines for `bhxh kb check`: every error on its own line; warnings grouped by reason, naming
    every entry (an amendment of unknown scope to Law 41 touches most of the knowledge base)."""
    lines = [f.line() for f in flags if f.severity == "error"]
    groups: dict[str, list[str]] = {}
    for f in flags:
        if f.severity == "warning":
            key = f.reason.split(" after the entry")[0] if " after the entry" in f.reason else "past the review age"
            groups.setdefault(key, []).append(f.entry_id)
    for reason, ids in groups.items():
        lines.append(f"warning: {reason}: {len(ids)} entries: {', '.join(sorted(set(ids)))}")
    return lines
