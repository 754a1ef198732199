"""examples/rate_limited_api.py, run as a user runs it (real time, so a short batch): the
provider refuses no call, no second sees more than the rate and its burst, and the urgent
payouts are the first calls made."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from example_support import EXAMPLES, run_example

SCRIPT = EXAMPLES / "rate_limited_api.py"


@pytest.mark.realtime
def test_the_script_paces_the_calls_and_serves_the_urgent_first(tmp_path: Path) -> None:
    out = run_example(SCRIPT, tmp_path / "payouts.db", "--payouts", "20")
    assert "20 paid in" in out
    most = re.search(r"at most (\d+) calls in any one second; refused: (\d+)", out)
    assert most is not None, out
    assert int(most[1]) <= 12 and most[2] == "0", out
    first = re.search(r"first calls: (.*) \(the urgent ones: (.*)\)", out)
    assert first is not None and first[1] == first[2] == "PO-009, PO-019", out
