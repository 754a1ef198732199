"""Temporal's ``polling/infrequent`` sample, as it is written: an activity that raises a
``BENIGN`` ``ApplicationError`` until the service answers. A benign failure is logged at DEBUG
(an ordinary one at WARNING) and its category travels with the failure through history."""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta

import pytest

from perdure import Worker, activity, workflow
from perdure.client import WorkflowFailureError
from perdure.common import RetryPolicy
from perdure.exceptions import ActivityError, ApplicationError, ApplicationErrorCategory
from perdure.testing import WorkflowEnvironment

# -- polling/test_service.py --------------------------------------------------------------------
attempts = Counter[str | None]()
ERROR_ATTEMPTS = 5


@dataclass
class ComposeGreetingInput:
    greeting: str
    name: str


async def get_service_result(input: ComposeGreetingInput) -> str:
    workflow_id = activity.info().workflow_id
    attempts[workflow_id] += 1

    if attempts[workflow_id] == ERROR_ATTEMPTS:
        return f"{input.greeting}, {input.name}!"
    raise ApplicationError(
        message="service is down",
        # Set the error as BENIGN to indicate it is an expected error.
        category=ApplicationErrorCategory.BENIGN,
    )


# -- polling/infrequent/activities.py and workflows.py ------------------------------------------
@activity.defn
async def compose_greeting(input: ComposeGreetingInput) -> str:
    return await get_service_result(input)


@workflow.defn
class GreetingWorkflow:
    @workflow.run
    async def run(self, name: str) -> str:
        return await workflow.execute_activity(
            compose_greeting,
            ComposeGreetingInput("Hello", name),
            start_to_close_timeout=timedelta(seconds=2),
            retry_policy=RetryPolicy(
                backoff_coefficient=1.0,
                initial_interval=timedelta(seconds=60),
            ),
        )


def _failed_attempts(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "perdure.worker" and "failed" in r.getMessage()]


async def test_infrequent_polling_workflow(
    env: WorkflowEnvironment, caplog: pytest.LogCaptureFixture
) -> None:
    attempts.clear()
    caplog.set_level(logging.DEBUG, logger="perdure.worker")
    task_queue = "tq-infrequent-polling"
    async with Worker(
        env.client,
        task_queue=task_queue,
        workflows=[GreetingWorkflow],
        activities=[compose_greeting],
    ):
        handle = await env.client.start_workflow(
            GreetingWorkflow.run, "Temporal", id="infrequent-polling", task_queue=task_queue
        )
        result = await handle.result()
        assert result == "Hello, Temporal!"
    # The four expected failures: each logged, at DEBUG only.
    failed = _failed_attempts(caplog)
    assert [r.levelno for r in failed] == [logging.DEBUG] * (ERROR_ATTEMPTS - 1)
    assert "compose_greeting" in failed[0].getMessage()


@activity.defn
async def always_fails(category: ApplicationErrorCategory) -> None:
    raise ApplicationError("no luck", type="NoLuck", non_retryable=True, category=category)


@workflow.defn
class CallsFailing:
    @workflow.run
    async def run(self, category: ApplicationErrorCategory) -> None:
        await workflow.execute_activity(
            always_fails, category, start_to_close_timeout=timedelta(seconds=5)
        )


@pytest.mark.parametrize(
    ("category", "level"),
    [
        (ApplicationErrorCategory.UNSPECIFIED, logging.WARNING),
        (ApplicationErrorCategory.BENIGN, logging.DEBUG),
    ],
    ids=["unspecified-at-warning", "benign-at-debug"],
)
async def test_the_category_reaches_the_caller_and_sets_the_log_level(
    env: WorkflowEnvironment,
    caplog: pytest.LogCaptureFixture,
    category: ApplicationErrorCategory,
    level: int,
) -> None:
    caplog.set_level(logging.DEBUG, logger="perdure.worker")
    async with Worker(
        env.client, task_queue="q", workflows=[CallsFailing], activities=[always_fails]
    ):
        with pytest.raises(WorkflowFailureError) as caught:
            await env.client.execute_workflow(CallsFailing.run, category, id="f", task_queue="q")
    activity_error = caught.value.cause
    assert isinstance(activity_error, ActivityError)
    cause = activity_error.cause
    assert isinstance(cause, ApplicationError)
    assert (cause.type, cause.category) == ("NoLuck", category)
    assert [r.levelno for r in _failed_attempts(caplog)] == [level]


@workflow.defn
class FailsBenignly:
    @workflow.run
    async def run(self) -> None:
        raise ApplicationError("nothing to do", category=ApplicationErrorCategory.BENIGN)


async def test_a_workflow_failure_keeps_its_category(env: WorkflowEnvironment) -> None:
    async with Worker(env.client, task_queue="q", workflows=[FailsBenignly]):
        with pytest.raises(WorkflowFailureError) as caught:
            await env.client.execute_workflow(FailsBenignly.run, id="b", task_queue="q")
    cause = caught.value.cause
    assert isinstance(cause, ApplicationError)
    assert cause.category is ApplicationErrorCategory.BENIGN
