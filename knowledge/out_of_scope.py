"""Out-of-scope intents: questions the assistant declines, with where they belong.

Loaded from `out_of_scope.yaml` and validated like entries: every problem names its
file, intent id and field ("out_of_scope.yaml: entry 'x': field 'reply': is required"),
and any problem raises KnowledgeError listing all of them.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import yaml

from knowledge.schema import ID_PATTERN, KnowledgeError

OUT_OF_SCOPE_FILE = Path(__file__).parent / "out_of_scope.yaml"
FIELDS = ("id", "reply", "examples")
MIN_EXAMPLES = 3


@dataclass(frozen=True)
class OutOfScopeIntent:
    id: str
    reply: str  # why it is out of scope and where to ask instead
    examples: tuple[str, ...]  # indexed as decline targets beside the entries


def parse_intent(raw: object, where: str) -> tuple[OutOfScopeIntent | None, list[str]]:
    """Validate one raw YAML record; return the intent (or None) and its problems."""
    if not isinstance(raw, dict):
        return None, [f"{where}: each intent must be a mapping"]
    here = f"{where}: entry {raw.get('id')!r}"
    problems = [f"{here}: field '{name}': unknown field" for name in raw if name not in FIELDS]
    intent_id, reply, examples = raw.get("id"), raw.get("reply"), raw.get("examples")
    if not isinstance(intent_id, str) or not ID_PATTERN.match(intent_id):
        problems.append(f"{here}: field 'id': must be lower-case words joined by '-'")
    if not isinstance(reply, str) or not reply.strip():
        problems.append(f"{here}: field 'reply': is required")
    if not isinstance(examples, list) or not all(isinstance(e, str) and e.strip() for e in examples):
        problems.append(f"{here}: field 'examples': must be a list of non-empty questions")
    elif len(examples) < MIN_EXAMPLES:
        problems.append(f"{here}: field 'examples': at least {MIN_EXAMPLES} needed, found {len(examples)}")
    if problems:
        return None, problems
    assert isinstance(intent_id, str) and isinstance(reply, str) and isinstance(examples, list)
    return OutOfScopeIntent(intent_id, reply.strip(), tuple(e.strip() for e in examples)), []


def load_out_of_scope(path: Path = OUT_OF_SCOPE_FILE) -> dict[str, OutOfScopeIntent]:
    """Every intent by id, in file order; raises KnowledgeError naming file, intent and field."""
    name = path.name
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise KnowledgeError([f"{name}: invalid YAML: {exc}"]) from exc
    if raw is None:
        return {}
    if not isinstance(raw, list):
        raise KnowledgeError([f"{name}: must be a list of intents"])
    problems: list[str] = []
    ids = Counter(r.get("id") for r in raw if isinstance(r, dict))
    intents: dict[str, OutOfScopeIntent] = {}
    for record in raw:
        intent, found = parse_intent(record, name)
        problems += found
        if intent is None:
            continue
        if ids[intent.id] > 1 and intent.id in intents:
            problems.append(f"{name}: entry {intent.id!r}: field 'id': duplicate id")
            continue
        intents[intent.id] = intent
    if problems:
        raise KnowledgeError(problems)
    return intents
