"""The pacing and logging every retry loop shares: pauses grow to a cap with full jitter; a
streak of failures is logged at its start, summarised while it lasts, and ended."""

from __future__ import annotations

import logging
import random

import pytest

from perdure._common.backoff import FailureLog, Retry, backoff
from perdure.exceptions import DatabaseUnavailableError

log = logging.getLogger("perdure.test.backoff")


def test_pauses_grow_to_the_cap_with_full_jitter() -> None:
    random.seed(12)
    for failures, bound in [(1, 0.1), (2, 0.2), (4, 0.8), (7, 6.4), (8, 10.0), (1000, 10.0)]:
        pauses = [backoff(failures) for _ in range(2000)]
        assert all(0.0 <= p <= bound for p in pauses), failures
        # Spread over the whole range (full jitter), not bunched at the bound.
        assert min(pauses) < bound * 0.05 and max(pauses) > bound * 0.95, failures


def test_a_streak_is_logged_at_its_start_then_summarised_then_ended(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger=log.name)
    failures = FailureLog(log, "Polling task queue 'q'", summary_seconds=3600)
    for i in range(100):
        try:
            raise ConnectionError(f"refused {i}")
        except ConnectionError as exc:
            failures.failed(exc)
    [first] = caplog.records
    assert first.levelno == logging.ERROR
    assert first.getMessage() == (
        "Polling task queue 'q' failed (ConnectionError: refused 0); retrying with backoff"
    )
    assert first.exc_info is not None  # the first failure brings its traceback
    assert failures.failures == 100
    failures.recovered()
    assert caplog.records[-1].levelno == logging.INFO
    assert (
        caplog.records[-1]
        .getMessage()
        .startswith("Polling task queue 'q' works again, after 100 failures in ")
    )
    assert len(caplog.records) == 2
    failures.recovered()  # not failing: nothing to say
    assert len(caplog.records) == 2


def test_a_lasting_streak_is_counted_once_per_interval(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=log.name)
    failures = FailureLog(log, "Firing due timers", summary_seconds=0.0)
    failures.failed(DatabaseUnavailableError("PostgreSQL could not be reached for 60s"))
    failures.failed(DatabaseUnavailableError("PostgreSQL could not be reached for 60s"))
    first, still = caplog.records
    # An error that explains itself is one line, without a traceback.
    assert first.levelno == logging.WARNING and first.exc_info is None
    assert still.levelno == logging.WARNING
    assert still.getMessage().startswith("Firing due timers still failing: 2 failures in ")
    assert still.getMessage().endswith(
        "the last: DatabaseUnavailableError: PostgreSQL could not be reached for 60s"
    )


async def test_a_retry_pauses_for_its_backoff(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=log.name)
    retry = Retry(log, "Heartbeat of activity 1", base=0.001, cap=0.001)
    delays = [retry.delay("refused") for _ in range(5)]
    assert all(0.0 <= d <= 0.001 for d in delays)
    await retry.pause("refused")
    assert retry.failures == 6
    assert [r.getMessage() for r in caplog.records] == [
        "Heartbeat of activity 1 failed (refused); retrying with backoff"
    ]
