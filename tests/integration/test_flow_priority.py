"""Priorities end to end: given to a start, an activity or a child, recorded in the history
events as Temporal records them, seen by ``workflow.info()`` and ``activity.info()``, and
inherited field by field (an activity or child takes what it leaves unset from its
workflow)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from perdure import Worker, activity, workflow
from perdure.client import Client
from perdure.client import Interceptor as ClientInterceptor
from perdure.common import Priority
from perdure.testing import WorkflowEnvironment
from perdure.worker import Interceptor as WorkerInterceptor
from perdure.worker import WorkflowInboundInterceptor, WorkflowInterceptorClassInput


def fields(p: Priority) -> list[Any]:
    return [p.priority_key, p.fairness_key, p.fairness_weight]


@activity.defn
async def my_priority() -> list[Any]:
    return fields(activity.info().priority)


@workflow.defn
class Child:
    @workflow.run
    async def run(self) -> list[Any]:
        return fields(workflow.info().priority)


@workflow.defn
class Prioritized:
    @workflow.run
    async def run(self) -> dict[str, Any]:
        timeout = timedelta(seconds=10)
        return {
            "workflow": fields(workflow.info().priority),
            "inherited": await workflow.execute_activity(
                my_priority, start_to_close_timeout=timeout
            ),
            "own": await workflow.execute_activity(
                my_priority,
                start_to_close_timeout=timeout,
                priority=Priority(priority_key=1),
                concurrency_key="tenant-7",
            ),
            "child": await workflow.execute_child_workflow(
                Child.run, id="child", priority=Priority(fairness_key="child-tenant")
            ),
        }


class PassThrough(ClientInterceptor, WorkerInterceptor):
    """Intercepts every call and changes nothing: the calls go through the *Input path."""

    def workflow_interceptor_class(
        self, input: WorkflowInterceptorClassInput
    ) -> type[WorkflowInboundInterceptor]:
        return WorkflowInboundInterceptor


@pytest.mark.parametrize("intercepted", [False, True], ids=["plain", "intercepted"])
async def test_priority_is_recorded_seen_and_inherited(
    env: WorkflowEnvironment, intercepted: bool
) -> None:
    client = env.client
    if intercepted:  # priorities survive the interceptors' chains (their *Input fields)
        client = Client(**{**env.client.config(), "interceptors": [PassThrough()]})
    async with Worker(
        client, task_queue="q", workflows=[Prioritized, Child], activities=[my_priority]
    ):
        handle = await client.start_workflow(
            Prioritized.run,
            id="p",
            task_queue="q",
            priority=Priority(priority_key=2, fairness_key="acme", fairness_weight=2.0),
        )
        assert await handle.result() == {
            "workflow": [2, "acme", 2.0],
            "inherited": [2, "acme", 2.0],
            "own": [1, "acme", 2.0],
            "child": [2, "child-tenant", 2.0],
        }
    events = (await handle.fetch_history()).events
    started = [e for e in events if e.event_type.value == "WorkflowExecutionStarted"]
    scheduled = [e for e in events if e.event_type.value == "ActivityTaskScheduled"]
    initiated = [e for e in events if e.event_type.value == "StartChildWorkflowExecutionInitiated"]
    assert started[0].attributes["priority"] == {
        "priority_key": 2,
        "fairness_key": "acme",
        "fairness_weight": 2.0,
    }
    assert "priority" not in scheduled[0].attributes  # nothing of its own: inherited
    assert scheduled[1].attributes["priority"]["priority_key"] == 1
    assert scheduled[1].attributes["concurrency_key"] == "tenant-7"
    assert initiated[0].attributes["priority"]["fairness_key"] == "child-tenant"


async def test_a_workflow_without_priority_has_the_default(env: WorkflowEnvironment) -> None:
    async with Worker(env.client, task_queue="q", workflows=[Child]):
        assert await env.client.execute_workflow(Child.run, id="c", task_queue="q") == [
            None,
            None,
            None,
        ]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"priority_key": 0}, "priority_key must be an int from 1"),
        ({"priority_key": 6}, "priority_key must be an int from 1"),
        ({"fairness_key": ""}, "fairness_key must be a non-empty string"),
        ({"fairness_weight": 0}, "fairness_weight must be a number from 0.001"),
    ],
)
def test_a_bad_priority_says_what_is_allowed(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Priority(**kwargs)


def test_bad_worker_limits_are_refused() -> None:
    from perdure.worker._flow import check_limits

    with pytest.raises(ValueError, match="max_activities_per_second must be a positive"):
        check_limits(None, 0, None)
    with pytest.raises(ValueError, match="max_concurrent_activities_per_key must be a whole"):
        check_limits(None, None, 1.5)  # type: ignore[arg-type]


async def test_a_schedule_starts_its_workflows_with_its_priority(env: WorkflowEnvironment) -> None:
    from perdure.client import Schedule, ScheduleActionStartWorkflow, ScheduleSpec

    action = ScheduleActionStartWorkflow(
        Child.run, id="scheduled", task_queue="q", priority=Priority(priority_key=1)
    )
    async with Worker(env.client, task_queue="q", workflows=[Child]):
        handle = await env.client.create_schedule(
            "urgent-job", Schedule(action=action, spec=ScheduleSpec())
        )
        await handle.trigger()
        desc = await handle.describe()
        run = desc.info.recent_actions[0].action
        result = await env.client.get_workflow_handle(run.workflow_id).result()  # type: ignore[attr-defined]
    assert result == [1, None, None]
    assert desc.schedule.action.priority == Priority(priority_key=1)  # type: ignore[union-attr]
