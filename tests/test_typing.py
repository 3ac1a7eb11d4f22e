"""Type checkers accept the API page's own example (docs/api.md): ``conn.open_stream()`` is the stream
type with the ``wait_*`` helpers, and the package ships ``py.typed``."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _mypy(path: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    """mypy on ``path`` alone, with ``flags`` only: a user's settings, not the project's own
    (quicsim's modules are checked, strictly, by .ci/run)."""
    return subprocess.run([sys.executable, "-m", "mypy", "--no-incremental", "--follow-imports=silent",
                           "--no-error-summary", *flags,
                           "--config-file=", "--python-version", "3.11", str(path)],
                          capture_output=True, text=True, timeout=300, cwd=REPO)


def test_the_api_page_example_type_checks(tmp_path):
    page = (REPO / "docs" / "api.md").read_text()
    block = re.search(r"^# The API and MsQuic's names\n\n```python\n(.*?)```", page, re.S)
    assert block, "the API page's example"
    path = tmp_path / "api_example.py"
    path.write_text(block.group(1))  # as a user copies it: unannotated functions, checked all the same
    proc = _mypy(path, "--check-untyped-defs")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_a_type_error_against_the_api_is_caught(tmp_path):
    path = tmp_path / "wrong.py"
    path.write_text("import quicsim\n\n"
                    "async def main(conn: quicsim.Connection) -> None:\n"
                    "    stream = conn.open_stream()\n"
                    "    await stream.wait_shutdown_complet(timeout=5)\n")
    proc = _mypy(path, "--strict")
    assert proc.returncode == 1 and "wait_shutdown_complet" in proc.stdout
