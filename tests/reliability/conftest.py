"""Fixtures of the reliability suite (RELIABILITY.md): the seed of each test, printed on
failure and settable with PERDURE_SEED."""

from __future__ import annotations

import harness
import pytest


@pytest.fixture
def seed() -> int:
    """The test's seed (``PERDURE_SEED``, or a fresh one); a failing test's report shows how
    to run it again alone."""
    return harness.seed()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> object:
    report = yield
    if report.when == "call":
        seed_value = item.funcargs.get("seed") if hasattr(item, "funcargs") else None
        if report.failed and seed_value is not None:
            report.sections.append(("seed", harness.rerun_hint(seed_value, item.nodeid)))
    return report
