"""Staff records are validated by the same code as the YAML files, and their problems keep their parts."""

from __future__ import annotations

import yaml

from admin_api import staff_kb
from knowledge.schema import Problem, load_knowledge


def record(entry_id: str, **changes: object) -> dict:
    base = {
        "id": entry_id, "topic": "procedures", "question": "Làm thế nào để đổi ngày hẹn trả kết quả hồ sơ BHXH?",
        "paraphrases": ["đổi ngày hẹn trả hồ sơ", "lùi ngày nhận kết quả", "lỡ hẹn trả kết quả hồ sơ",
                        "nhờ người nhận kết quả hộ", "giấy hẹn trùng lịch", "đến muộn ngày hẹn trả kết quả"],
        "answer": "Bạn có thể đến nhận kết quả vào bất kỳ ngày làm việc nào sau ngày hẹn.",
        "sources": ["Luật 41/2024/QH15, Điều 70"], "effective_from": "2025-07-01", "reviewed_on": "2026-11-01",
    }
    return {**base, **changes}


def test_a_problem_is_the_kb_check_line_and_keeps_its_parts():
    problem = Problem("staff_entries/tt-a", "tt-a", "sources", "is required")
    assert str(problem) == "staff_entries/tt-a: entry 'tt-a': field 'sources': is required"
    assert (problem.file, problem.entry, problem.field, problem.message) == (
        "staff_entries/tt-a", "tt-a", "sources", "is required")
    assert str(Problem("entries/x.yaml", message="must be a list of entries")) == (
        "entries/x.yaml: must be a list of entries")


def test_staff_records_get_the_same_problems_as_the_same_records_in_a_yaml_file(tmp_path):
    bad = [record("tt-a", sources=[]), record("tt-b", related=["tt-khong-co"]), record("tt-a", topic="weather")]
    (tmp_path / "entries").mkdir()
    (tmp_path / "entries" / "staff.yaml").write_text(yaml.safe_dump(bad, allow_unicode=True), encoding="utf-8")
    from_yaml = load_knowledge(tmp_path / "entries", strict=False).problems
    kb, from_staff = staff_kb.validate_records([("entries/staff.yaml", r) for r in bad])
    assert kb is None and from_staff == from_yaml and len(from_staff) == 3
    assert [(p.entry, p.field) for p in from_staff] == [("tt-a", "sources"), ("tt-a", "topic"), ("tt-b", "related")]


def test_an_edit_reports_its_own_problems_without_the_echo_in_entries_that_point_to_it():
    records = [("entries/a.yaml", record("tt-a", related=["tt-b"])), ("staff_entries/tt-b", record("tt-b", answer=""))]
    _, problems = staff_kb.validate_records(records)
    assert {p.file for p in problems} == {"entries/a.yaml", "staff_entries/tt-b"}  # the echo is there at first
    relevant = staff_kb._relevant(problems, "tt-b")
    assert [(p.file, p.field, p.message) for p in relevant] == [("staff_entries/tt-b", "answer", "is required")]
