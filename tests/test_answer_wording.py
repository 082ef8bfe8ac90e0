"""Answers stand alone: the citizen sees the answer to their own message, never the entry's question or
example letter, so an answer must not point to "the example above" ("ví dụ trên")."""

import datetime as dt
import re

from knowledge.schema import load_knowledge
from retrieval.normalize import fold_accents

ON = dt.date(2026, 12, 3)
UNSEEN_EXAMPLE = re.compile(r"\bvi du (?:neu )?tren\b")


def unseen_example(text: str) -> bool:
    return bool(UNSEEN_EXAMPLE.search(fold_accents(text).lower()))


def test_check_catches_a_reference_to_an_unseen_example():
    assert unseen_example("Trong ví dụ trên: con 12 tuổi được hưởng.")
    assert unseen_example("Như VÍ DỤ NÊU TRÊN, bạn được hưởng.")
    assert not unseen_example("Ví dụ: gia đình có con 12 tuổi thì con được hưởng.")


def test_no_answer_refers_to_an_example_the_citizen_never_sees():
    kb = load_knowledge()
    bad = [
        f"{entry.id} ({name})"
        for entry in kb.entries.values()
        for name, text in (("answer", entry.answer), ("details", entry.details), ("short", entry.short))
        if unseen_example(kb.parameters.render(text, ON))
    ]
    assert not bad, bad
