"""An activity attempt's heartbeats: sent to the store throttled, in the background, and the
cancellation they bring back handed to the attempt."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Sequence
from typing import Any

from perdure._common.backoff import Retry
from perdure._common.clock import Clock
from perdure._errors import CancelledError as FailureCancelledError
from perdure._store import Store
from perdure._store._notify import Flag
from perdure._store._types import ActivityTask, StaleTaskError
from perdure.converter import DataConverter
from perdure.worker._conversion import check_details

log = logging.getLogger("perdure.worker")

_REAL_CLOCK = Clock()

# Without a heartbeat timeout, heartbeats are still sent (so details survive), this often.
DEFAULT_HEARTBEAT_INTERVAL = 30.0


class Heartbeater:
    """Sends an attempt's heartbeats, throttled, and learns of cancellation from them."""

    def __init__(
        self,
        store: Store,
        conv: DataConverter,
        task: ActivityTask,
        loop: asyncio.AbstractEventLoop,
        on_cancel: Any,
    ) -> None:
        self._store = store
        self._conv = conv
        self._task = task
        self._loop = loop
        self._on_cancel = on_cancel
        # Built on the event loop's thread: heartbeats from any other come from sync activities.
        self._loop_thread = threading.get_ident()
        timeout = task.heartbeat_timeout
        self._interval = (
            min(timeout * 0.8, DEFAULT_HEARTBEAT_INTERVAL)
            if timeout
            else DEFAULT_HEARTBEAT_INTERVAL
        )
        self._details: Sequence[Any] | None = None
        self._dirty = False
        self._sender: asyncio.Task[None] | None = None
        self._nudge = Flag()
        self._retry = Retry(log, f"Heartbeat of activity {task.activity_id}")
        self.used = False
        # The attempt is over (its outcome reported, or the worker gave up on it): nothing
        # is sent any more.
        self._stopped = False

    def heartbeat(self, details: Sequence[Any]) -> None:
        """Called from the activity (its loop thread or an executor thread).

        Raises:
            PayloadConverterError: details the converter cannot take, refused at the call.
        """
        if details:
            what = f"the heartbeat details of activity {self._task.activity_type!r}"
            check_details(self._conv.payload_converter, details, what)
        if threading.get_ident() == self._loop_thread:
            self._record(details)
            return
        # A sync activity whose attempt is over runs on in its thread, unseen: stop it here
        # (Temporal raises CancelledError into the thread).
        if self._stopped:
            raise FailureCancelledError("The activity attempt is over: its worker stopped it")
        try:
            self._loop.call_soon_threadsafe(self._record, details)
        except RuntimeError as exc:  # the event loop is closed
            raise FailureCancelledError("The activity's worker is gone") from exc

    def _record(self, details: Sequence[Any]) -> None:
        if self._stopped:
            return
        self.used = True
        self._details = details
        self._dirty = True
        if self._sender is None or self._sender.done():
            self._sender = self._loop.create_task(self._send_loop())

    def poke(self) -> None:
        """Send now (a cancellation may be waiting to be learned)."""
        if not self.used or self._stopped:
            return
        self._dirty = True
        if self._sender is None or self._sender.done():
            self._sender = self._loop.create_task(self._send_loop())
        else:
            self._nudge.set()

    async def _send_loop(self) -> None:
        while self._dirty and not self._stopped:
            self._dirty = False
            # Cleared before the send, not after it: a poke while it is on its way (a request
            # to cancel committed after it read the task) must cut the pause short.
            self._nudge.clear()
            pause = self._interval
            try:
                payloads = await self._conv.encode(list(self._details or ()))
                cancel = await self._store.heartbeat_activity(
                    self._task.token, self._task.owner, payloads
                )
            except StaleTaskError:
                self._on_cancel(stale=True)
                return
            except Exception as exc:
                if self._store.closed:
                    return
                # Sent again after the pause, with whatever details are latest by then.
                self._dirty = True
                pause = max(pause, self._retry.delay(exc))
                cancel = False
            else:
                self._retry.recovered()
            if cancel:
                self._on_cancel(stale=False)
                return
            await _REAL_CLOCK.wait(self._nudge, _REAL_CLOCK.now() + pause)

    def stop(self) -> None:
        self._stopped = True
        if self._sender is not None:
            self._sender.cancel()

    def forget_owner(self) -> None:
        """The attempt is over: no more heartbeats, and no reference back to it."""
        self.stop()
        self._on_cancel = _ignore_cancel

    async def final_details(self) -> None:
        """Make sure the last details are stored before the attempt's outcome."""
        if self._dirty and self._details is not None:
            self.stop()
            self._dirty = False
            try:
                await self._store.heartbeat_activity(
                    self._task.token,
                    self._task.owner,
                    await self._conv.encode(list(self._details)),
                )
            except StaleTaskError:
                pass
            except Exception as exc:  # the outcome is still worth reporting
                if not self._store.closed:
                    log.warning(
                        "The last heartbeat details of activity %s were not stored: %s: %s",
                        self._task.activity_id,
                        type(exc).__name__,
                        exc,
                    )


def _ignore_cancel(*, stale: bool) -> None:
    """A stopped heartbeater's callback: the attempt it served is over."""


__all__ = ["DEFAULT_HEARTBEAT_INTERVAL", "Heartbeater"]
