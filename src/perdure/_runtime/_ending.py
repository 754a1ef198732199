"""How a workflow instance ends when its worker is done with it (``Ending.dispose``): its
code still waiting is cancelled and run to its end on its own loop, as Temporal ends an
evicted workflow, and the instance is taken apart for reference counting to free."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from perdure._common.commands import (
    CLOSE_COMMANDS,
    CancelTimer,
    Command,
    CompleteUpdate,
    RejectUpdate,
    RequestCancelActivity,
    RequestCancelExternalWorkflow,
)
from perdure._runtime._guard import DeterminismGuard
from perdure._runtime._loop import Running, WorkflowEventLoop
from perdure.workflow._info import Info

log = logging.getLogger("perdure.runtime")


class WorkflowEvicted(BaseException):
    """Workflow code tried to start work (an activity, a timer, a child workflow, a signal,
    a memo or search attribute change, a patch) while its worker was ending it: evicted from
    the cache, or the worker stopping (``Ending.dispose``). Nothing is recorded;
    the run is not over, and its code runs again, by replay, when the run next has work.
    A ``BaseException``, like ``asyncio.CancelledError``: ``except Exception`` lets it by."""

    def __init__(self, workflow_id: str) -> None:
        super().__init__(
            f"workflow {workflow_id!r}: its worker is ending this instance of its code (evicted "
            "from the cache, or stopping), which may not start new work; the run goes on, "
            "replayed, when it next has work"
        )


# What cancelling code records as it ends (a timer or activity cancelled, the run's or an
# update's outcome): dropped without a word while an instance is being ended.
WHILE_ENDING = (
    CancelTimer,
    RequestCancelActivity,
    RequestCancelExternalWorkflow,
    CompleteUpdate,
    RejectUpdate,
    *CLOSE_COMMANDS,
)


def refuse_while_ending(command: Command, workflow_id: str) -> None:
    """While an instance is being ended: what cancelling its code records is dropped (the
    caller records nothing), new work raises ``WorkflowEvicted``."""
    if not isinstance(command, WHILE_ENDING):
        raise WorkflowEvicted(workflow_id)


class Ending:
    """The end of a ``WorkflowInstance`` (a mixin of it)."""

    loop: WorkflowEventLoop
    _info: Info
    _guard: DeterminismGuard | None
    _replaying: bool
    _ending: bool
    _closed: bool
    _running: Callable[[], Running]  # the instance's own

    def dispose(self) -> None:
        """The worker is done with this instance: its run closed, or it was evicted from
        the cache, its task failed, a query's replay answered, the worker stopped. End its
        code now, on its own loop, and take the instance apart, so that reference counting
        frees it at once (its loop, tasks, handlers and the authoring API's hooks all refer
        back to it: a cycle, else left to a garbage collection that walks every object
        alive). Nothing may use the instance afterwards but ``closed``.

        Tasks still pending (the run's code waiting on a timer or an activity, a handler
        never awaited) are cancelled and run to their end, as Temporal ends an evicted
        workflow: their ``finally`` blocks run here, with ``is_replaying()`` true, and any
        new work they start raises ``WorkflowEvicted``. Left to the garbage collector they
        would run whenever it next ran, inside whatever code ran then: another workflow's
        activation, whose context they would see and whose history they would add to."""
        if "loop" not in self.__dict__:
            return  # disposed of already
        loop = self.loop
        pending = loop.pending_tasks()
        if pending:
            self._end(pending)
        loop.close()
        self.__dict__.clear()
        self._closed = True

    def _end(self, pending: list[asyncio.Task[Any]]) -> None:
        """Cancel the pending tasks and run them out; close what outlives its cancellation
        (code that caught it and awaits on)."""
        replaying, self._replaying = self._replaying, True
        self._ending = True
        try:
            with self._running():
                for task in pending:
                    task.cancel()
                self.loop.run_ready()
                for task in self.loop.pending_tasks():
                    task._log_destroy_pending = False  # type: ignore[attr-defined]
                    try:
                        task.get_coro().close()
                    except (Exception, WorkflowEvicted) as exc:
                        log.debug("Ending workflow %s: %r", self._info.workflow_id, exc)
        finally:
            self._replaying = replaying
            if self._guard is not None:
                self._guard.reset()  # what the ending code did is no task's to fail
        for task in pending:
            if task.done() and not task.cancelled():
                task.exception()  # retrieved: it ended here, not in the run's own code
