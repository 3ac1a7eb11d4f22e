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


def test_every_rule_names_the_msquic_function_the_library_and_a_test():
    """Each table row fills its MsQuic column ("—" marks a rule that is quicsim's own, such
    as the ledger's), its "on the library" column (what the running library did, or "not
    run") and its test column, read by the table's own header."""
    text = (ROOT / "docs" / "conformance.md").read_text()
    # (the state tables are generated from core/state.py: test_state_table.py checks them)
    start, end = text.index("<!-- state tables: begin -->"), text.index("<!-- state tables: end -->")
    text = text[:start] + text[end:]
    header: list[str] | None = None
    rows = 0
    for line in text.splitlines():
        if not line.startswith("|"):
            header = None
            continue
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
        if header is None:
            header = cells
            assert header[-3:] == ["MsQuic", "on the library", "test"], f"a table without the columns: {line}"
            continue
        if set(line) <= set("|-"):
            continue
        rows += 1
        assert len(cells) == len(header), f"{len(cells)} cells under {len(header)} columns: {line[:80]}"
        msquic, library, test = cells[-3:]
        assert msquic, f"no MsQuic function named in: {line[:80]}"
        assert library, f"nothing said of the library in: {line[:80]}"
        assert test, f"no test cited in: {line[:80]}"
    assert rows > 50
