"""Counts by status, as Temporal's ``count_workflows("... GROUP BY ExecutionStatus")`` gives
them (what a list page shows beside its rows)."""

from __future__ import annotations

import pytest

from perdure import Worker, workflow
from perdure.client import VisibilityQueryError
from perdure.testing import WorkflowEnvironment


@workflow.defn
class Quick:
    @workflow.run
    async def run(self) -> None:
        return None


async def test_counts_by_status_with_and_without_a_filter(env: WorkflowEnvironment) -> None:
    client = env.client
    async with Worker(client, task_queue="q", workflows=[Quick]):
        for i in range(3):
            await client.execute_workflow(Quick.run, id=f"done-{i}", task_queue="q")
    for i in range(4):
        await client.start_workflow("Waits", id=f"open-{i}", task_queue="nobody")
    await client.get_workflow_handle("open-0").terminate()
    await client.start_workflow("Other", id="other", task_queue="nobody")

    counts = await client.count_workflows("GROUP BY ExecutionStatus")
    assert counts.count == 8
    assert [(g.group_values, g.count) for g in counts.groups] == [
        (["Running"], 4),
        (["Completed"], 3),
        (["Terminated"], 1),
    ]
    filtered = await client.count_workflows("WorkflowType = 'Waits' group by ExecutionStatus")
    assert filtered.count == 4
    assert [(g.group_values, g.count) for g in filtered.groups] == [
        (["Running"], 3),
        (["Terminated"], 1),
    ]
    assert list((await client.count_workflows("WorkflowType = 'Waits'")).groups) == []
    none = await client.count_workflows("WorkflowType = 'Nope' GROUP BY ExecutionStatus")
    assert (none.count, list(none.groups)) == (0, [])


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("GROUP BY WorkflowType", "GROUP BY supports ExecutionStatus only"),
        ("GROUP BY Nope", "unknown field 'Nope'"),
        ("GROUP BY ExecutionStatus ORDER BY StartTime", "cannot be combined with ORDER BY"),
        ("GROUP BY ExecutionStatus, WorkflowType", "GROUP BY takes one field"),
    ],
)
async def test_a_bad_group_by_is_refused(env: WorkflowEnvironment, query: str, reason: str) -> None:
    with pytest.raises(VisibilityQueryError, match=reason):
        await env.client.count_workflows(query)


async def test_a_listing_cannot_group(env: WorkflowEnvironment) -> None:
    with pytest.raises(VisibilityQueryError, match="GROUP BY is for count_workflows only"):
        [e async for e in env.client.list_workflows("GROUP BY ExecutionStatus")]
