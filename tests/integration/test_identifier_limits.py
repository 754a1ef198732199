"""Identifiers through the engine: a bad one is refused at the call that passed it, alike on
every store, and nothing is stored; inside a workflow it fails the workflow task."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest

from perdure import Worker, activity, workflow
from perdure.client import Client, VisibilityQueryError, WorkflowExecutionStatus
from perdure.common import SearchAttributeKey, SearchAttributePair, TypedSearchAttributes
from perdure.exceptions import InvalidArgumentError
from perdure.testing import WorkflowEnvironment

# Each refused for its own reason: a type, the length, a NUL (PostgreSQL cannot store it, so
# SQLite must refuse it too), a lone surrogate (no UTF-8 store can).
BAD = [123, "", "x" * 1001, "a\x00b", "a\udc80"]
SAYS = [
    "must be a str, not int",
    "must not be empty",
    "over the limit of 1,000 bytes",
    "contains a NUL character",
    "not valid Unicode",
]


@workflow.defn
class Echo:
    @workflow.run
    async def run(self, text: str) -> str:
        return text

    @workflow.signal
    def poke(self) -> None:
        pass


async def nothing_stored(client: Client) -> bool:
    return (await client.count_workflows()).count == 0


def cases() -> list[tuple[object, str]]:
    return list(zip(BAD, SAYS, strict=True))


Call = Callable[[Client, Any], Awaitable[object]]


async def start_with_id(c: Client, v: Any) -> object:
    return await c.start_workflow(Echo.run, "hi", id=v, task_queue="q")


async def start_with_task_queue(c: Client, v: Any) -> object:
    return await c.start_workflow(Echo.run, "hi", id="w", task_queue=v)


async def start_with_type(c: Client, v: Any) -> object:
    return await c.start_workflow(v, "hi", id="w", task_queue="q")


async def signal_with_start(c: Client, v: Any) -> object:
    return await c.start_workflow(Echo.run, "hi", id="w", task_queue="q", start_signal=v)


@pytest.mark.parametrize(
    ("call", "argument"),
    [
        (start_with_id, "id"),
        (start_with_task_queue, "task_queue"),
        (start_with_type, "workflow"),
        (signal_with_start, "start_signal"),
    ],
)
async def test_a_start_with_a_bad_identifier_is_refused_and_stores_nothing(
    env: WorkflowEnvironment, call: Call, argument: str
) -> None:
    for value, says in cases():
        if argument == "workflow" and isinstance(value, int):
            continue  # an int is not a workflow at all: covered by the definition lookup
        with pytest.raises(InvalidArgumentError, match=argument) as info:
            await call(env.client, value)
        assert says in str(info.value)
    assert await nothing_stored(env.client)


async def test_an_int_id_is_refused_rather_than_stored_as_a_string(
    env: WorkflowEnvironment,
) -> None:
    # It used to start a workflow under '123', then tell its caller it was not found.
    with pytest.raises(TypeError, match=r"id: a workflow id must be a str, not int \(123\)"):
        await env.client.execute_workflow(Echo.run, "hi", id=123, task_queue="q")  # type: ignore[arg-type]
    assert await nothing_stored(env.client)


async def test_handles_names_and_ids_are_checked_before_the_store_is_asked(
    env: WorkflowEnvironment,
) -> None:
    client = env.client
    async with Worker(client, task_queue="q", workflows=[Echo]):
        handle = await client.start_workflow(Echo.run, "hi", id="w", task_queue="q")
        await handle.result()
    for value, says in cases():
        with pytest.raises(InvalidArgumentError, match=f"workflow_id.*{says}"):
            client.get_workflow_handle(value)  # type: ignore[arg-type]
        if value != "":  # an empty run id means the latest run, as in Temporal
            with pytest.raises(InvalidArgumentError, match=f"run_id.*{says}"):
                client.get_workflow_handle("w", run_id=value)  # type: ignore[arg-type]
        with pytest.raises(InvalidArgumentError, match=f"signal.*{says}"):
            await handle.signal(value)  # type: ignore[arg-type]
        with pytest.raises(InvalidArgumentError, match=f"query.*{says}"):
            await handle.query(value)  # type: ignore[arg-type]
        with pytest.raises(InvalidArgumentError, match=f"update.*{says}"):
            await handle.execute_update(value)  # type: ignore[arg-type]
        if value != "":  # an empty update id asks for a random one
            with pytest.raises(InvalidArgumentError, match=f"id.*{says}"):
                await handle.execute_update("set", id=value)  # type: ignore[arg-type]
        with pytest.raises(InvalidArgumentError, match=f"update_id.*{says}"):
            handle.get_update_handle(value)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="task_token: an activity task token is bytes"):
        client.get_async_activity_handle(task_token="token")  # type: ignore[arg-type]


async def test_a_worker_refuses_a_bad_task_queue_or_identity(env: WorkflowEnvironment) -> None:
    for value, says in cases():
        with pytest.raises(InvalidArgumentError, match=f"task_queue.*{says}"):
            Worker(env.client, task_queue=value, workflows=[Echo])  # type: ignore[arg-type]
        if value != "":
            with pytest.raises(InvalidArgumentError, match=f"identity.*{says}"):
                Worker(env.client, task_queue="q", workflows=[Echo], identity=value)  # type: ignore[arg-type]


@workflow.defn(name="bad\x00name")
class BadlyNamed:
    @workflow.run
    async def run(self) -> None:
        pass


async def test_a_worker_refuses_a_workflow_registered_under_a_bad_name(
    env: WorkflowEnvironment,
) -> None:
    with pytest.raises(InvalidArgumentError, match=r"workflows=.*contains a NUL"):
        Worker(env.client, task_queue="q", workflows=[BadlyNamed])


LONG_SIGNAL = "s" * 1000


@workflow.defn
class WaitsForALongSignal:
    def __init__(self) -> None:
        self.got: str | None = None

    @workflow.run
    async def run(self) -> str:
        await workflow.wait_condition(lambda: self.got is not None)
        return self.got or ""

    @workflow.signal(name=LONG_SIGNAL)
    def signal(self, value: str) -> None:
        self.got = value


async def test_the_longest_identifiers_are_stored_and_found_on_every_store(
    env: WorkflowEnvironment,
) -> None:
    # 1,000 bytes each: 500 two-byte characters, or 1,000 ASCII ones (PostgreSQL indexes
    # namespace, workflow id and time together, up to 2,704 bytes).
    long_id = "é" * 500
    long_queue = "q" * 1000
    async with Worker(env.client, task_queue=long_queue, workflows=[WaitsForALongSignal]):
        await env.client.start_workflow(WaitsForALongSignal.run, id=long_id, task_queue=long_queue)
        handle = env.client.get_workflow_handle(long_id)
        await handle.signal(LONG_SIGNAL, "hi")
        assert await handle.result() == "hi"
    description = await handle.describe()
    assert description.id == long_id and description.task_queue == long_queue


async def test_a_huge_id_is_refused_and_never_logged_whole(
    env: WorkflowEnvironment, caplog: pytest.LogCaptureFixture
) -> None:
    huge = "x" * 5_000_000
    caplog.set_level(logging.DEBUG)
    async with Worker(env.client, task_queue="q", workflows=[Echo]):
        with pytest.raises(InvalidArgumentError) as info:
            await env.client.start_workflow(Echo.run, "hi", id=huge, task_queue="q")
    assert "5,000,000 characters" in str(info.value)
    assert len(str(info.value)) < 400
    assert all(len(r.getMessage()) < 2000 for r in caplog.records)
    assert await nothing_stored(env.client)


# -- inside a workflow: the workflow task fails, naming the argument -------------------------


@activity.defn
async def noop() -> str:
    return "ok"


@workflow.defn
class PassesABadIdentifier:
    @workflow.run
    async def run(self, where: str) -> str:
        bad: Any = "bad\x00id"
        timeout = timedelta(seconds=5)
        if where == "activity_id":
            await workflow.execute_activity(noop, start_to_close_timeout=timeout, activity_id=bad)
        if where == "activity task_queue":
            await workflow.execute_activity(noop, start_to_close_timeout=timeout, task_queue=bad)
        if where == "local activity_id":
            return str(
                await workflow.execute_local_activity(
                    noop, start_to_close_timeout=timeout, activity_id=bad
                )
            )
        if where == "activity type":
            return str(await workflow.execute_activity(bad, start_to_close_timeout=timeout))
        if where == "child id":
            return str(await workflow.execute_child_workflow(Echo.run, "x", id=bad))
        if where == "child task_queue":
            return str(await workflow.execute_child_workflow(Echo.run, "x", task_queue=bad))
        if where == "external workflow_id":
            await workflow.get_external_workflow_handle(bad).signal(Echo.poke)
        if where == "external signal":
            await workflow.get_external_workflow_handle("other").signal(bad)
        if where == "continue_as_new task_queue":
            workflow.continue_as_new("x", task_queue=bad)
        return "not refused"


REFUSED_IN_WORKFLOW = {
    "activity_id": "activity_id='bad\\x00id': an activity id contains a NUL",
    "activity task_queue": "task_queue='bad\\x00id': a task queue name contains a NUL",
    "local activity_id": "activity_id='bad\\x00id': an activity id contains a NUL",
    "activity type": "activity='bad\\x00id': an activity type name contains a NUL",
    "child id": "id='bad\\x00id': a workflow id contains a NUL",
    "child task_queue": "task_queue='bad\\x00id': a task queue name contains a NUL",
    "external workflow_id": "workflow_id='bad\\x00id': a workflow id contains a NUL",
    "external signal": "signal='bad\\x00id': a signal name contains a NUL",
    "continue_as_new task_queue": "task_queue='bad\\x00id': a task queue name contains",
}


@pytest.mark.parametrize("where", REFUSED_IN_WORKFLOW)
async def test_a_bad_identifier_in_workflow_code_fails_the_workflow_task(
    env: WorkflowEnvironment, where: str
) -> None:
    async with Worker(
        env.client, task_queue="q", workflows=[PassesABadIdentifier, Echo], activities=[noop]
    ):
        handle = await env.client.start_workflow(
            PassesABadIdentifier.run, where, id="w", task_queue="q"
        )
        await env.sleep(0)
        description = await handle.describe()
    # As Temporal does with a command's invalid attributes: the task fails, the workflow
    # stays open for a fix to be deployed.
    assert description.status == WorkflowExecutionStatus.RUNNING
    failure = description.last_workflow_task_failure
    assert failure is not None, "the workflow task did not fail"
    assert failure.type == "InvalidArgumentError"
    assert REFUSED_IN_WORKFLOW[where] in failure.message
    await handle.terminate("test over")


# -- search attributes and visibility queries: text that reaches a column -------------------


TIER = SearchAttributeKey.for_keyword("CustomerTier")
SCORE = SearchAttributeKey.for_float("Score")


@workflow.defn
class Upserts:
    @workflow.run
    async def run(self, what: str) -> str:
        if what == "nul":
            workflow.upsert_search_attributes([TIER.value_set("gold\x00")])
        else:
            workflow.upsert_search_attributes([SCORE.value_set(float("nan"))])
        return "not refused"


async def test_search_attributes_refuse_a_nul_or_a_nan_alike_on_every_store(
    env: WorkflowEnvironment,
) -> None:
    with pytest.raises(InvalidArgumentError, match="name='Tier\\\\x00': a search attribute name"):
        SearchAttributeKey.for_keyword("Tier\x00")
    nul = TypedSearchAttributes([SearchAttributePair(TIER, "gold\x00")])
    with pytest.raises(InvalidArgumentError, match=r"'CustomerTier' is 'gold\\x00', which"):
        await env.client.start_workflow(
            Echo.run, "hi", id="w", task_queue="q", search_attributes=nul
        )
    # A NaN would be NULL in SQLite, NaN in PostgreSQL, and None once read back.
    nan = TypedSearchAttributes([SearchAttributePair(SCORE, float("nan"))])
    with pytest.raises(InvalidArgumentError, match="'Score' is nan: a Double must be finite"):
        await env.client.start_workflow(
            Echo.run, "hi", id="w", task_queue="q", search_attributes=nan
        )
    assert await nothing_stored(env.client)
    with pytest.raises(VisibilityQueryError, match="a NUL character"):
        await env.client.count_workflows("CustomerTier = 'gold\x00'")
    async with Worker(env.client, task_queue="q", workflows=[Upserts]):
        for what, says in [("nul", "which contains a NUL"), ("nan", "must be finite")]:
            handle = await env.client.start_workflow(Upserts.run, what, id=what, task_queue="q")
            await env.sleep(0)
            failure = (await handle.describe()).last_workflow_task_failure
            assert failure is not None and says in failure.message
            await handle.terminate("test over")
