"""Loops that keep trying: how long to pause between tries, and what to log about them.

Every loop of perdure that tries again after a failure (the worker's pollers and timer
service, activity heartbeats, the PostgreSQL store's retries and its LISTEN connection, the
test environment's time skipper, ``perdure worker`` waiting for its database) pauses and
logs through this module. So a failure that lasts, a database that is down for an hour,
costs a few tries a minute and a few log lines, not a core and gigabytes of tracebacks:

- the pause grows exponentially up to a cap, with full jitter (a random pause between zero
  and the bound), so that processes that failed together do not retry together;
- the first failure of a streak is logged (with its traceback, unless the error says all
  there is to say, as ``DatabaseUnavailableError`` does), then one line a minute counts the
  failures since, and one line says when it works again.
"""

from __future__ import annotations

import asyncio
import logging
import random
import sqlite3
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from perdure._errors import ClientClosedError, DatabaseUnavailableError

T = TypeVar("T")

# The first pause is at most this long; each failure in a row doubles the bound, up to CAP.
BASE = 0.1
CAP = 10.0
# While failures go on, one line counts them this often.
SUMMARY_SECONDS = 60.0


def backoff(failures: int, *, base: float = BASE, cap: float = CAP) -> float:
    """The pause after ``failures`` tries in a row failed (1 after the first): a random
    duration between zero and ``base * 2 ** (failures - 1)``, at most ``cap``."""
    bound = min(cap, base * 2.0 ** min(max(failures - 1, 0), 64))
    return random.uniform(0.0, bound)


def transient(error: BaseException) -> bool:
    """The database did not answer, or was busy: the same call may work if tried again
    (a ``DatabaseUnavailableError``, or SQLite's "database is locked" after its busy
    timeout)."""
    if isinstance(error, DatabaseUnavailableError):
        return True
    cause = getattr(error, "cause", None)
    return isinstance(cause, sqlite3.OperationalError) and (
        "locked" in str(cause) or "busy" in str(cause)
    )


def explains_itself(error: BaseException) -> bool:
    """Errors whose message is the whole story: a traceback would add nothing."""
    return isinstance(error, DatabaseUnavailableError | ClientClosedError)


class FailureLog:
    """What one loop logs about its failures in a row: the first, a count every
    ``summary_seconds`` while they go on, and the end of the streak.

    The messages are ``%``-format strings over ``what`` (the loop's name), ``error`` (the
    last failure, on one line), ``failures`` ("1 failure", "2 failures" ...) and ``seconds``
    (since the streak began); a subclass may word them for its case.
    """

    first = "%(what)s failed (%(error)s); retrying with backoff"
    still = "%(what)s still failing: %(failures)s in %(seconds).0fs, the last: %(error)s"
    again = "%(what)s works again, after %(failures)s in %(seconds).1fs"

    def __init__(
        self, logger: logging.Logger, what: str, *, summary_seconds: float = SUMMARY_SECONDS
    ) -> None:
        self.logger = logger
        self.what = what
        self.summary_seconds = summary_seconds
        self.failures = 0
        self._since = 0.0
        self._logged = 0.0

    def failed(self, error: BaseException | str, *, traceback: bool | None = None) -> None:
        """Count a failure; log it if it begins a streak (with its traceback, by default for
        an exception that does not explain itself), or if the last line is old enough."""
        now = time.monotonic()
        self.failures += 1
        if self.failures == 1:
            self._since = self._logged = now
            if traceback is None:
                traceback = isinstance(error, BaseException) and not explains_itself(error)
            self.logger.log(
                logging.ERROR if traceback else logging.WARNING,
                self.first,
                self._fields(error, now),
                exc_info=error if traceback and isinstance(error, BaseException) else None,
            )
        elif now - self._logged >= self.summary_seconds:
            self._logged = now
            self.logger.warning(self.still, self._fields(error, now))

    def recovered(self) -> None:
        """The loop works again: end the streak (logged if there was one)."""
        if self.failures:
            self.logger.info(self.again, self._fields("", time.monotonic()))
            self.failures = 0

    def _fields(self, error: BaseException | str, now: float) -> dict[str, object]:
        if isinstance(error, BaseException):
            error = f"{type(error).__name__}: {error}"
        return {
            "what": self.what,
            "error": error,
            "failures": f"{self.failures} failure{'' if self.failures == 1 else 's'}",
            "seconds": now - self._since,
        }


class Retry(FailureLog):
    """A :class:`FailureLog` that also paces the loop.

    Example::

        retry = Retry(log, "Polling task queue 'orders'")
        while True:
            try:
                tasks = await claim()
            except Exception as exc:
                if store.closed:
                    return
                await retry.pause(exc)
                continue
            retry.recovered()
    """

    def __init__(
        self,
        logger: logging.Logger,
        what: str,
        *,
        base: float = BASE,
        cap: float = CAP,
        summary_seconds: float = SUMMARY_SECONDS,
    ) -> None:
        super().__init__(logger, what, summary_seconds=summary_seconds)
        self.base = base
        self.cap = cap

    def delay(self, error: BaseException | str) -> float:
        """Count and log a failure; the pause to make before the next try."""
        self.failed(error)
        return backoff(self.failures, base=self.base, cap=self.cap)

    async def pause(self, error: BaseException | str) -> None:
        """Count and log a failure, then pause before the next try (real time: the pause
        is about the machine's resources, not the workflows' clock)."""
        await asyncio.sleep(self.delay(error))


async def keep_trying(
    call: Callable[[], Awaitable[T]], what: str, logger: logging.Logger, seconds: float
) -> T:
    """``await call()``, tried again with backoff while it fails transiently (see
    :func:`transient`), for at most ``seconds``; any other error, or the last, raises."""
    retry = Retry(logger, what)
    give_up = time.monotonic() + seconds
    while True:
        try:
            result = await call()
        except Exception as exc:
            if not transient(exc) or time.monotonic() >= give_up:
                raise
            await retry.pause(exc)
            continue
        retry.recovered()
        return result
