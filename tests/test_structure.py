"""Structure that is checked, not only written down: small functions, a docstring at the top of every module."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MAX_FUNCTION_LINES = 80
SOURCES = sorted([*(ROOT / "workers").rglob("*.py"), *(ROOT / "webhooks").rglob("*.py")])


def test_no_function_is_longer_than_eighty_lines() -> None:
    long = []
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({lines} lines)")
    assert long == []


def test_every_module_says_what_it_owns() -> None:
    missing = [str(p.relative_to(ROOT)) for p in SOURCES if ast.get_docstring(ast.parse(p.read_text())) is None]
    assert missing == []
