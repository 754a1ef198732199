"""Fixtures of the reliability suite (RELIABILITY.md): the seed of each test, printed on
failure and settable with PERDURE_SEED, and a workspace of worker processes."""

from __future__ import annotations

from collections.abc import Iterator

import harness
import pytest


@pytest.fixture
def seed(request: pytest.FixtureRequest) -> Iterator[int]:
    value = harness.seed()
    yield value
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        print(harness.rerun_hint(value, request.node.nodeid))


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> object:
    report = yield
    if report.when == "call":
        item.rep_call = report  # type: ignore[attr-defined]
        seed_value = item.funcargs.get("seed") if hasattr(item, "funcargs") else None
        if report.failed and seed_value is not None:
            report.sections.append(("seed", harness.rerun_hint(seed_value, item.nodeid)))
    return report
