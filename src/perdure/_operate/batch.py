"""Acting on every workflow a visibility query matches: the batch forms of cancel, terminate,
signal, reset and delete.

The matching runs are read first, then acted on, so the batch is the set that matched when it
started (terminating running workflows changes what ``ExecutionStatus = 'Running'`` matches;
paging through a moving result would skip some). Each run is reached by its run id, so a run
started under the same id afterwards is not touched. Operations run a few dozen at a time,
which lets the store commit many in one transaction.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from perdure.client import Client, WorkflowHandle

DEFAULT_CONCURRENCY = 32


@dataclass(frozen=True)
class BatchTarget:
    """One run a batch acts on."""

    workflow_id: str
    run_id: str


@dataclass(frozen=True)
class BatchFailure:
    """A run the operation failed on, and why."""

    workflow_id: str
    run_id: str
    error: str


@dataclass
class BatchReport:
    """How a batch went."""

    matched: int
    succeeded: int = 0
    failures: list[BatchFailure] = field(default_factory=list)


async def matching(client: Client, query: str) -> list[BatchTarget]:
    """The runs a visibility query matches now."""
    return [BatchTarget(wf.id, wf.run_id) async for wf in client.list_workflows(query)]


async def run_batch(
    client: Client,
    targets: list[BatchTarget],
    action: Callable[[WorkflowHandle[Any]], Awaitable[str | None]],
    *,
    concurrency: int = DEFAULT_CONCURRENCY,
    on_done: Callable[[int], None] | None = None,
) -> BatchReport:
    """Apply ``action`` to each target's handle; one failure does not stop the others.

    ``on_done(1)`` is called as each target is done, for a progress bar.
    """
    report = BatchReport(matched=len(targets))
    queue = iter(targets)

    async def work() -> None:
        for target in queue:
            handle = client.get_workflow_handle(target.workflow_id, run_id=target.run_id)
            try:
                await action(handle)
            except Exception as exc:
                report.failures.append(
                    BatchFailure(target.workflow_id, target.run_id, f"{type(exc).__name__}: {exc}")
                )
            else:
                report.succeeded += 1
            if on_done is not None:
                on_done(1)

    await asyncio.gather(*(work() for _ in range(max(1, min(concurrency, len(targets))))))
    return report
