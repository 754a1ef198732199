"""docs/cli.md is what the commands print: a fresh run of docs/cli_examples.py (every command
for real, against a real worker process) matches the page, ids and times aside."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "docs" / "cli_examples.py"


@pytest.mark.realtime
@pytest.mark.timeout(180)
def test_the_cli_page_matches_a_fresh_run() -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--check"], capture_output=True, text=True, timeout=170
    )
    assert done.returncode == 0, done.stdout + done.stderr
