"""The benchmark code runs: ``python -m benchmarks --quick --only memory`` exits 0 and prints its table.

No figure is checked (benchmarks print figures; tests never time anything).
"""

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_benchmarks_quick_memory_runs_and_prints_the_table():
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--only", "memory"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    assert "benchmark | variant | figure" in out.stdout
    assert "peak RSS above baseline" in out.stdout
