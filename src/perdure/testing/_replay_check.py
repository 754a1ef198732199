"""Replaying every workflow a test closed, against the code as it is at the end of the test.

A workflow that completed in a test but would not replay has code that is not deterministic
(it read the clock, iterated a set, branched on something outside its history): it would fail
the day a worker restarts in production. Catching that in the test that ran it is the point.
"""

from __future__ import annotations

from dataclasses import dataclass

from perdure.client._client import Client
from perdure.worker._replayer import Replayer
from perdure.workflow._definition import WorkflowDefinition


@dataclass(frozen=True)
class ReplayCheckFailure:
    """One closed run that did not replay."""

    workflow_id: str
    run_id: str
    workflow_type: str
    error: Exception

    def __str__(self) -> str:
        return (
            f"{self.workflow_type} {self.workflow_id} (run {self.run_id}) does not replay: "
            f"{type(self.error).__name__}: {self.error}"
        )


async def replay_closed_workflows(client: Client) -> tuple[int, list[ReplayCheckFailure]]:
    """Replay each closed run in the client's namespace whose workflow type a worker on this
    client registered; returns how many were replayed and the ones that failed."""
    classes = client._worker_workflows
    if not classes:
        return 0, []
    replayer = Replayer(
        workflows=list(classes.values()),
        namespace=client.namespace,
        data_converter=client.data_converter,
        workflow_failure_exception_types=tuple(client._worker_failure_types),
    )
    replayed = 0
    failures: list[ReplayCheckFailure] = []
    # A dynamic workflow ran every type the others were not registered as.
    dynamic = any(WorkflowDefinition.from_class(c).dynamic for c in classes.values())
    # The store's rows, not list_workflows: a memo the converter cannot decode must not stop
    # the check.
    token = None
    while True:
        page = await client._store.list_workflows(
            client.namespace, "ExecutionStatus != 'Running'", 1000, token
        )
        for ex in page.executions:
            if ex.workflow_type not in classes and not dynamic:
                continue
            handle = client.get_workflow_handle(ex.workflow_id, run_id=ex.run_id)
            history = await handle.fetch_history()
            result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
            replayed += 1
            if result.replay_failure is not None:
                failures.append(
                    ReplayCheckFailure(
                        ex.workflow_id, ex.run_id, ex.workflow_type, result.replay_failure
                    )
                )
        token = page.next_page_token
        if token is None:
            break
    return replayed, failures
