"""With ``DefaultFailureConverterWithEncodedAttributes`` a failure's message and stack trace
are stored inside an encoded payload (the stored message reads "Encoded failure"), and every
reader gets them back: the workflow catching an activity's failure, the client reading the
workflow's, ``describe()`` showing a failed workflow task."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from perdure import ApplicationError, Worker, WorkflowFailureError, activity, workflow
from perdure.common import RetryPolicy
from perdure.exceptions import ActivityError
from perdure.testing import WorkflowEnvironment


@activity.defn
async def refuse(card: str) -> None:
    raise ApplicationError(f"card {card} declined", {"card": card}, non_retryable=True)


@workflow.defn
class Checkout:
    @workflow.run
    async def run(self, card: str) -> None:
        try:
            await workflow.execute_activity(
                refuse,
                card,
                start_to_close_timeout=timedelta(seconds=5),
                retry_policy=RetryPolicy(maximum_attempts=1),
            )
        except ActivityError as err:
            cause = err.cause
            assert isinstance(cause, ApplicationError)
            seen: dict[str, Any] = {
                "message": cause.message,
                "details": list(cause.details),
                "stack_trace_names_it": f"card {card} declined"
                in (cause.failure or {}).get("stack_trace", ""),
            }
            raise ApplicationError(f"checkout with {card} failed", seen) from err


def stored_failure(event: Any) -> dict[str, Any]:
    failure: dict[str, Any] = event.attributes["failure"]
    return failure


async def test_failure_messages_are_stored_encoded_and_read_back(
    codec_env: WorkflowEnvironment,
) -> None:
    async with Worker(codec_env.client, task_queue="q", workflows=[Checkout], activities=[refuse]):
        handle = await codec_env.client.start_workflow(
            Checkout.run, "4242", id="checkout", task_queue="q"
        )
        try:
            await handle.result()
        except WorkflowFailureError as err:
            failed = err
        else:
            raise AssertionError("the workflow should have failed")

    cause = failed.cause
    assert isinstance(cause, ApplicationError)
    assert cause.message == "checkout with 4242 failed"
    assert "checkout with 4242 failed" in (cause.failure or {}).get("stack_trace", "")
    assert list(cause.details) == [
        {
            "message": "card 4242 declined",
            "details": [{"card": "4242"}],
            "stack_trace_names_it": True,
        }
    ]
    # The chain reads back at every level: the activity's failure is the cause's cause.
    assert isinstance(cause.cause, ActivityError)
    assert isinstance(cause.cause.cause, ApplicationError)
    assert cause.cause.cause.message == "card 4242 declined"

    events = (await handle.fetch_history()).events
    by_type = {e.event_type.value: e for e in events}
    for event_type in ("ActivityTaskFailed", "WorkflowExecutionFailed"):
        failure = stored_failure(by_type[event_type])
        while failure is not None:
            assert failure["message"] == "Encoded failure", event_type
            assert failure["stack_trace"] == ""
            assert failure["encoded_attributes"].metadata["encoding"] == b"binary/encrypted"
            failure = failure["cause"]


@workflow.defn
class Stuck:
    @workflow.run
    async def run(self, secret: str) -> None:
        raise RuntimeError(f"cannot go on with {secret}")


async def test_describe_reads_an_encoded_workflow_task_failure(
    codec_env: WorkflowEnvironment,
) -> None:
    async with Worker(codec_env.client, task_queue="q", workflows=[Stuck]):
        handle = await codec_env.client.start_workflow(
            Stuck.run, "s3cr3t", id="stuck", task_queue="q"
        )
        await codec_env.sleep(0)  # what is due now: the first attempt of the task
        description = await handle.describe()
        history = await handle.fetch_history()
        await handle.terminate()
    task_failure = description.last_workflow_task_failure
    assert task_failure is not None
    assert task_failure.message == "cannot go on with s3cr3t"
    assert "RuntimeError: cannot go on with s3cr3t" in task_failure.stack_trace
    [event] = [e for e in history.events if e.event_type.value == "WorkflowTaskFailed"]
    assert stored_failure(event)["message"] == "Encoded failure"
    assert "s3cr3t" not in str(stored_failure(event))
