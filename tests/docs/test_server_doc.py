"""docs/server.md is what the server answers: a fresh run of docs/server_examples.py (every
request for real, against real server and worker processes) matches the page, ids, times and
tokens aside."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "docs" / "server_examples.py"


@pytest.mark.realtime
@pytest.mark.timeout(180)
def test_the_server_page_matches_a_fresh_run() -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--check"], capture_output=True, text=True, timeout=170
    )
    assert done.returncode == 0, done.stdout + done.stderr
