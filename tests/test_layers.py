"""The layering DESIGN.md promises, checked on the import statements (module level and inside functions):
retrieval/ and knowledge/ import nothing of ours above them, storage/ only retrieval/, bot/ never
admin_api/ or the web framework (the HTTP routes of the channels live in admin_api/webhooks.py)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FORBIDDEN = {
    "retrieval": {"knowledge", "storage", "bot", "admin_api", "bhxh", "fastapi", "starlette"},
    "knowledge": {"storage", "bot", "admin_api", "bhxh", "fastapi", "starlette"},
    "storage": {"knowledge", "bot", "admin_api", "bhxh", "fastapi", "starlette"},
    "bot": {"admin_api", "fastapi", "starlette"},
}


def imported_packages(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_no_package_imports_a_layer_above_it(package):
    wrong = {str(path.relative_to(ROOT)): sorted(imported_packages(path) & FORBIDDEN[package])
             for path in sorted((ROOT / package).rglob("*.py"))}
    assert {path: names for path, names in wrong.items() if names} == {}
