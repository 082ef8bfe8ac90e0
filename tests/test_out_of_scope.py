"""Out-of-scope intents load like entries: every problem names file, intent and field."""

from pathlib import Path

import pytest

from knowledge.out_of_scope import load_out_of_scope
from knowledge.schema import KnowledgeError


def test_the_shipped_intents_load_and_include_commercial_insurance() -> None:
    intents = load_out_of_scope()
    assert "ngoai-pham-vi-bao-hiem-thuong-mai" in intents
    assert all(i.reply and len(i.examples) >= 3 for i in intents.values())


def test_every_problem_names_the_file_the_intent_and_the_field(tmp_path: Path) -> None:
    path = tmp_path / "out_of_scope.yaml"
    path.write_text(
        "- id: thoi-tiet\n  examples: [a, b, c]\n"
        "- id: Vang Bac\n  reply: Không phải BHXH.\n  examples: [a]\n  note: x\n"
        "- id: thoi-tiet\n  reply: r\n  examples: [a, b, c]\n", encoding="utf-8")
    with pytest.raises(KnowledgeError) as caught:
        load_out_of_scope(path)
    assert caught.value.problems == [
        "out_of_scope.yaml: entry 'thoi-tiet': field 'reply': is required",
        "out_of_scope.yaml: entry 'Vang Bac': field 'note': unknown field",
        "out_of_scope.yaml: entry 'Vang Bac': field 'id': must be lower-case words joined by '-'",
        "out_of_scope.yaml: entry 'Vang Bac': field 'examples': at least 3 needed, found 1",
    ]


def test_a_repeated_id_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "out_of_scope.yaml"
    path.write_text("- {id: a, reply: r, examples: [x, y, z]}\n- {id: a, reply: s, examples: [x, y, z]}\n",
                    encoding="utf-8")
    with pytest.raises(KnowledgeError, match="entry 'a': field 'id': duplicate id"):
        load_out_of_scope(path)
