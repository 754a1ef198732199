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
    out = run_example(SCRIPT, tmp_path / "payouts.db", "--payouts", "12")
    paid = re.search(r"12 paid in ([\d.]+) s", out)
    assert paid is not None, out
    # Two at once (the bucket's burst), then ten at 10 a second: about a second.
    assert float(paid[1]) >= 0.8, out
    most = re.search(r"at most (\d+) calls in any one second; refused: (\d+)", out)
    assert most is not None, out
    assert int(most[1]) <= 12 and most[2] == "0", out
    first = re.search(r"first calls: (.*) \(the urgent ones: (.*)\)", out)
    assert first is not None and first[1] == first[2] == "PO-009", out
