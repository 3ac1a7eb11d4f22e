"""The benchmark entry runs end to end with tiny sizes (so it cannot rot). No timing is
asserted here: speed targets live in the benchmark's own report."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_bench_quick_json():
    proc = subprocess.run([sys.executable, "-m", "bench", "--quick", "--json"], capture_output=True, text=True,
                          timeout=600, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert {"python", "platform", "cpus"} <= report["machine"].keys()
    names = [c["name"] for c in report["cases"]]
    assert len(names) == 7
    for case in report["cases"]:
        assert {"name", "unit", "quicsim", "baseline", "ratio", "target", "met"} <= case.keys()
        assert case["ratio"] > 0 and isinstance(case["met"], bool)
    assert report["cases"][2]["pending_send_bytes"] > 0
