"""docs/conformance.md names real tests: every file::function it cites exists."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _functions(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {n.name for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}


def test_every_cited_test_exists():
    text = (ROOT / "docs" / "conformance.md").read_text()
    cited = re.findall(r"`(test_\w+\.py)(?:::(\w+))?(?:\[[^\]]*\])?`", text)
    # a row "`file::a`, `b`" cites b in the same file
    rows = [line for line in text.splitlines() if line.startswith("|")]
    assert len(cited) > 40
    missing = []
    for line in rows:
        current = None
        for file, func, bare in re.findall(r"`(?:(test_\w+\.py)(?:::(\w+))?|(test_\w+))(?:\[[^\]]*\])?`", line):
            if file:
                current = file
                if not (ROOT / "tests" / file).exists():
                    missing.append(file)
                elif func and func not in _functions(ROOT / "tests" / file):
                    missing.append(f"{file}::{func}")
            elif bare and current and bare not in _functions(ROOT / "tests" / current):
                missing.append(f"{current}::{bare}")
    assert missing == []


def test_every_rule_names_the_msquic_function_it_follows():
    """Each table row has three or four cells and a non-empty MsQuic column ("—" marks a
    rule that is quicsim's own, such as the ledger's)."""
    text = (ROOT / "docs" / "conformance.md").read_text()
    # (the state tables are generated from core/state.py: test_state_table.py checks them)
    start, end = text.index("<!-- state tables: begin -->"), text.index("<!-- state tables: end -->")
    text = text[:start] + text[end:]
    rows = [line for line in text.splitlines() if line.startswith("| ") and not line.startswith("| rule |")
            and not line.startswith("| # |") and not line.startswith("| sequence |")
            and not line.startswith("| mechanism |")]
    assert len(rows) > 40
    for row in rows:
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", row)[1:-1]]
        msquic = cells[-2]
        assert msquic, f"no MsQuic function named in: {row[:80]}"
