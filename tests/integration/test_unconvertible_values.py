"""Values no payload can hold (an object JSON cannot write, a NaN), through the engine: refused
at the call that passed them, an activity's failing for good, a workflow's failing its task;
and a NUL inside a string, which JSON escapes, round-trips on every store."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest

from perdure import Worker, activity, workflow
from perdure.client import WorkflowExecutionStatus, WorkflowHandle, WorkflowQueryFailedError
from perdure.common import RetryPolicy
from perdure.exceptions import ActivityError, ApplicationError
from perdure.testing import WorkflowEnvironment

NAN = float("nan")


class Opaque:
    """Nothing the JSON converter can write."""


ATTEMPTS: Counter[str] = Counter()


def attempt() -> None:
    ATTEMPTS[activity.info().workflow_id] += 1


@activity.defn
async def returns_opaque() -> Any:
    attempt()
    return Opaque()


@activity.defn
async def returns_nan() -> float:
    attempt()
    return NAN


@activity.defn
def returns_opaque_sync() -> Any:
    attempt()
    return {"rows": [Opaque()]}


@activity.defn
async def fails_with_opaque_details() -> None:
    attempt()
    raise ApplicationError("declined", Opaque(), type="Declined")


@activity.defn
async def heartbeats_opaque() -> None:
    attempt()
    activity.heartbeat("fine", Opaque())


@activity.defn
async def heartbeats_nan_and_carries_on() -> str:
    attempt()
    try:
        activity.heartbeat({"progress": NAN})
    except TypeError as err:  # PayloadConverterError is a TypeError too
        return f"refused: {err}"
    return "accepted"


@workflow.defn
class Calls:
    @workflow.run
    async def run(self, name: str, local: bool) -> str:
        options: dict[str, Any] = {
            "start_to_close_timeout": timedelta(seconds=5),
            "retry_policy": RetryPolicy(maximum_attempts=5, initial_interval=timedelta(seconds=1)),
        }
        try:
            if local:
                return str(await workflow.execute_local_activity(name, **options))
            return str(await workflow.execute_activity(name, **options))
        except ActivityError as err:
            cause = err.cause
            assert isinstance(cause, ApplicationError)
            state = err.retry_state.name if err.retry_state else ""
            return f"{state} {cause.type} non_retryable={cause.non_retryable}: {cause.message}"


ACTIVITIES = [
    returns_opaque,
    returns_nan,
    returns_opaque_sync,
    fails_with_opaque_details,
    heartbeats_opaque,
    heartbeats_nan_and_carries_on,
]


async def call(env: WorkflowEnvironment, name: str, *, local: bool = False) -> str:
    # A fresh id: ATTEMPTS outlives the test, and id(env) may be an earlier env's again.
    workflow_id = f"{name}-{local}-{uuid.uuid4().hex}"
    async with Worker(env.client, task_queue="q", workflows=[Calls], activities=ACTIVITIES):
        result = await env.client.execute_workflow(
            Calls.run, args=[name, local], id=workflow_id, task_queue="q"
        )
    assert ATTEMPTS[workflow_id] == 1, "the attempt was retried"
    return str(result)


FAILED_FOR_GOOD = "NON_RETRYABLE_FAILURE PayloadConverterError non_retryable=True: "


@pytest.mark.parametrize("local", [False, True])
async def test_an_activity_result_that_cannot_be_converted_fails_once_for_good(
    env: WorkflowEnvironment, local: bool
) -> None:
    # It used to be retried forever: 15,000 attempts in 30 s.
    result = await call(env, "returns_opaque", local=local)
    kind = "local activity" if local else "activity"
    assert result.startswith(
        f"{FAILED_FOR_GOOD}the result of {kind} 'returns_opaque' cannot be converted to a "
        "payload: cannot encode a value of type Opaque as JSON"
    )


async def test_a_sync_activity_result_that_cannot_be_converted_fails_once_for_good(
    env: WorkflowEnvironment,
) -> None:
    result = await call(env, "returns_opaque_sync")
    assert result.startswith(f"{FAILED_FOR_GOOD}the result of activity 'returns_opaque_sync'")
    assert "type Opaque" in result


@pytest.mark.parametrize("local", [False, True])
async def test_an_activity_returning_nan_fails_once_for_good_rather_than_returning_none(
    env: WorkflowEnvironment, local: bool
) -> None:
    result = await call(env, "returns_nan", local=local)
    assert result.startswith(FAILED_FOR_GOOD)
    assert "cannot encode float('nan') at $ as JSON" in result


async def test_an_error_whose_details_cannot_be_converted_fails_the_activity_for_good(
    env: WorkflowEnvironment,
) -> None:
    # The worker's attempt used to die with it, leaving the attempt to time out and retry.
    result = await call(env, "fails_with_opaque_details")
    assert result.startswith(
        f"{FAILED_FOR_GOOD}the details of the ApplicationError raised (declined) cannot be "
        "converted to a payload: cannot encode a value of type Opaque"
    )


async def test_heartbeat_details_that_cannot_be_converted_are_refused_at_the_call(
    env: WorkflowEnvironment,
) -> None:
    # They used to be dropped with a log line while the activity went on.
    result = await call(env, "heartbeats_opaque")
    assert result.startswith(
        f"{FAILED_FOR_GOOD}the heartbeat details of activity 'heartbeats_opaque' cannot be "
        "converted to a payload: cannot encode a value of type Opaque"
    )
    caught = await call(env, "heartbeats_nan_and_carries_on")
    assert caught.startswith("refused: the heartbeat details of activity")
    assert "float('nan') at $.progress" in caught


# -- the workflow's own values: its task fails, visibly, and it stays open -------------------


@workflow.defn
class Returns:
    @workflow.run
    async def run(self, what: str) -> Any:
        if what == "opaque":
            return Opaque()
        if what == "nan":
            return {"mean": NAN}
        if what == "failure details":
            raise ApplicationError("boom", Opaque())
        if what == "activity argument":
            await workflow.execute_activity(
                returns_nan, NAN, start_to_close_timeout=timedelta(seconds=5)
            )
        await workflow.wait_condition(lambda: False)

    @workflow.update
    def opaque(self) -> Any:
        return Opaque()


async def task_failure(handle: WorkflowHandle[Any], env: WorkflowEnvironment) -> str:
    await env.sleep(0)
    description = await handle.describe()
    assert description.status == WorkflowExecutionStatus.RUNNING
    failure = description.last_workflow_task_failure
    assert failure is not None, "the workflow task did not fail"
    return f"{failure.type}: {failure.message}"


@pytest.mark.parametrize(
    ("what", "says"),
    [
        (
            "opaque",
            "TypeError: the result of workflow 'Returns' cannot be converted to a payload: "
            "cannot encode a value of type Opaque as JSON",
        ),
        (
            "nan",
            "the result of workflow 'Returns' cannot be converted to a payload: cannot "
            "encode float('nan') at $.mean as JSON",
        ),
        (
            "failure details",
            "TypeError: workflow 'Returns' ended with ApplicationError, which cannot be "
            "converted to a payload: cannot encode a value of type Opaque",
        ),
        ("activity argument", "ValueError: cannot encode float('nan') at $ as JSON"),
    ],
    ids=["opaque", "nan", "failure details", "activity argument"],
)
async def test_a_workflow_value_that_cannot_be_converted_fails_its_task(
    env: WorkflowEnvironment, what: str, says: str
) -> None:
    # A result or a failure that could not be converted used to leave the workflow open with
    # no failure to show for it.
    async with Worker(env.client, task_queue="q", workflows=[Returns], activities=ACTIVITIES):
        handle = await env.client.start_workflow(Returns.run, what, id="w", task_queue="q")
        assert says in await task_failure(handle, env)
    await handle.terminate("test over")


async def test_an_update_result_that_cannot_be_converted_fails_the_task(
    env: WorkflowEnvironment,
) -> None:
    async with Worker(env.client, task_queue="q", workflows=[Returns]):
        handle = await env.client.start_workflow(Returns.run, "wait", id="w", task_queue="q")
        update = asyncio.ensure_future(handle.execute_update(Returns.opaque, rpc_timeout=1))
        message = await task_failure(handle, env)
        update.cancel()
    assert "the result of update 'opaque' cannot be converted to a payload" in message
    await handle.terminate("test over")


async def test_nan_from_a_client_is_refused_at_once_and_nothing_is_stored(
    env: WorkflowEnvironment,
) -> None:
    # It used to be accepted, then fail the workflow task on every attempt.
    with pytest.raises(ValueError, match=r"cannot encode float\('nan'\) at \$\[1\] as JSON"):
        await env.client.start_workflow(Returns.run, [1.0, NAN], id="w", task_queue="q")
    assert (await env.client.count_workflows()).count == 0
    with pytest.raises(ValueError, match=r"float\('inf'\) at \$ as JSON"):
        await env.client.start_workflow(
            Returns.run, "wait", id="w", task_queue="q", memo={"limit": float("inf")}
        )


# -- a NUL inside a string is data, not an identifier: JSON escapes it ----------------------


@activity.defn
async def echo_nul(text: str) -> str:
    activity.heartbeat(text)
    return text + "\x00"


@workflow.defn
class Nul:
    def __init__(self) -> None:
        self.signalled: str | None = None

    @workflow.run
    async def run(self, text: str) -> dict[str, Any]:
        await workflow.wait_condition(lambda: self.signalled is not None)
        echoed = await workflow.execute_activity(
            echo_nul, text, start_to_close_timeout=timedelta(seconds=5)
        )
        workflow.upsert_memo({"note": text})
        return {"arg": text, "signal": self.signalled, "activity": echoed, text: "key"}

    @workflow.signal
    def sig(self, value: str) -> None:
        self.signalled = value

    @workflow.query
    def fails(self) -> str:
        raise ValueError("bad\x00query")


async def test_a_nul_inside_a_payload_string_round_trips_on_every_store(
    env: WorkflowEnvironment,
) -> None:
    text = "a\x00b"
    async with Worker(env.client, task_queue="q", workflows=[Nul], activities=[echo_nul]):
        handle = await env.client.start_workflow(
            Nul.run, text, id="nul", task_queue="q", memo={"m": text}
        )
        # A query's error is text, not a payload: its NUL is written out, alike on both stores.
        with pytest.raises(WorkflowQueryFailedError, match=r"bad\\x00query"):
            await handle.query(Nul.fails, rpc_timeout=5)
        await handle.signal(Nul.sig, "s\x00")
        result = await handle.result()
    assert result == {"arg": text, "signal": "s\x00", "activity": "a\x00b\x00", text: "key"}
    assert (await handle.describe()).memo == {"m": text, "note": text}
