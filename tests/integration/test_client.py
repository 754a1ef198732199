"""The client: starting workflows, handles, describe, cancel/terminate, history, databases."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest

from perdure import (
    CancelledError,
    Client,
    PerdureError,
    TerminatedError,
    Worker,
    WorkflowAlreadyStartedError,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    activity,
    workflow,
)
from perdure.client import WorkflowHistory, WorkflowNotFoundError
from perdure.testing import WorkflowEnvironment


async def drain(env: WorkflowEnvironment) -> None:
    """Let the engine do everything that is due now, without moving the virtual clock."""
    await env.sleep(0)


@workflow.defn
class Echo:
    @workflow.run
    async def run(self, text: str) -> str:
        return f"echo: {text}"


@workflow.defn
class Gate:
    """Waits until released (or an hour passes), then returns what it was given."""

    def __init__(self) -> None:
        self.released = False

    @workflow.run
    async def run(self, text: str) -> str:
        await workflow.wait_condition(lambda: self.released)
        await workflow.sleep(timedelta(hours=1))
        return text

    @workflow.signal
    def release(self) -> None:
        self.released = True


async def test_execute_workflow_returns_the_result(env: WorkflowEnvironment) -> None:
    async with Worker(env.client, task_queue="q", workflows=[Echo]):
        assert await env.client.execute_workflow(Echo.run, "hi", id="e", task_queue="q") == (
            "echo: hi"
        )


async def test_start_workflow_then_result(env: WorkflowEnvironment) -> None:
    async with Worker(env.client, task_queue="q", workflows=[Echo]):
        handle = await env.client.start_workflow(Echo.run, "hi", id="e", task_queue="q")
        assert handle.id == "e"
        assert handle.result_run_id
        assert await handle.result() == "echo: hi"


async def test_get_workflow_handle_by_id(env: WorkflowEnvironment) -> None:
    async with Worker(env.client, task_queue="q", workflows=[Gate]):
        started = await env.client.start_workflow(Gate.run, "x", id="g", task_queue="q")
        handle = env.client.get_workflow_handle("g")
        await handle.signal(Gate.release)
        assert await handle.result() == "x"
        description = await handle.describe()
        assert description.id == "g"
        assert description.run_id == started.result_run_id


async def test_duplicate_id_while_running_is_refused(env: WorkflowEnvironment) -> None:
    async with Worker(env.client, task_queue="q", workflows=[Gate]):
        first = await env.client.start_workflow(Gate.run, "first", id="dup", task_queue="q")
        with pytest.raises(WorkflowAlreadyStartedError) as exc_info:
            await env.client.start_workflow(Gate.run, "second", id="dup", task_queue="q")
        assert exc_info.value.workflow_id == "dup"

        # The refused start changed nothing: the first run goes on and finishes.
        await first.signal(Gate.release)
        assert await first.result() == "first"
        runs = env.client.get_workflow_handle("dup")
        assert (await runs.describe()).run_id == first.result_run_id


async def test_describe_running_and_completed(env: WorkflowEnvironment) -> None:
    started_at = await env.get_current_time()
    async with Worker(env.client, task_queue="gates", workflows=[Gate]):
        handle = await env.client.start_workflow(Gate.run, "x", id="d", task_queue="gates")
        await drain(env)
        running = await handle.describe()
        assert running.status == WorkflowExecutionStatus.RUNNING
        assert running.workflow_type == "Gate"
        assert running.task_queue == "gates"
        assert running.start_time == started_at
        assert running.close_time is None
        assert running.history_length == len((await handle.fetch_history()).events)
        assert running.history_length >= 2

        await handle.signal(Gate.release)
        await handle.result()
        done = await handle.describe()

    assert done.status == WorkflowExecutionStatus.COMPLETED
    assert done.start_time == started_at
    assert done.close_time is not None
    assert done.close_time - done.start_time >= timedelta(hours=1)
    assert done.history_length == len((await handle.fetch_history()).events)
    assert done.history_length > running.history_length


async def test_terminate(env: WorkflowEnvironment) -> None:
    async with Worker(env.client, task_queue="q", workflows=[Gate]):
        handle = await env.client.start_workflow(Gate.run, "x", id="t", task_queue="q")
        await drain(env)
        await handle.terminate(reason="no longer needed")
        with pytest.raises(WorkflowFailureError) as exc_info:
            await handle.result()

    assert isinstance(exc_info.value.cause, TerminatedError)
    assert "no longer needed" in str(exc_info.value.cause)
    description = await handle.describe()
    assert description.status == WorkflowExecutionStatus.TERMINATED
    assert description.close_time is not None
    events = (await handle.fetch_history()).events
    assert events[-1].event_type == "WorkflowExecutionTerminated"


async def test_cancel_a_workflow_waiting_on_a_timer(env: WorkflowEnvironment) -> None:
    async with Worker(env.client, task_queue="q", workflows=[Gate]):
        handle = await env.client.start_workflow(Gate.run, "x", id="c", task_queue="q")
        await handle.signal(Gate.release)
        await drain(env)  # now sleeping on its hour-long timer
        await handle.cancel()
        with pytest.raises(WorkflowFailureError) as exc_info:
            await handle.result()

    assert isinstance(exc_info.value.cause, CancelledError)
    assert (await handle.describe()).status == WorkflowExecutionStatus.CANCELED
    types = [e.event_type for e in (await handle.fetch_history()).events]
    assert "WorkflowExecutionCancelRequested" in types
    assert types[-1] == "WorkflowExecutionCanceled"
    assert "TimerFired" not in types


cleanups: list[str] = []


@activity.defn
async def clean_up(order: str) -> str:
    cleanups.append(order)
    return f"released {order}"


@workflow.defn
class CleansUpOnCancel:
    @workflow.run
    async def run(self, order: str) -> str:
        try:
            await workflow.sleep(timedelta(days=7))
        except asyncio.CancelledError:
            return await workflow.execute_activity(
                clean_up, order, start_to_close_timeout=timedelta(seconds=10)
            )
        return "not cancelled"


async def test_cancelled_workflow_runs_a_cleanup_activity(env: WorkflowEnvironment) -> None:
    cleanups.clear()
    async with Worker(
        env.client, task_queue="q", workflows=[CleansUpOnCancel], activities=[clean_up]
    ):
        handle = await env.client.start_workflow(
            CleansUpOnCancel.run, "order-7", id="c", task_queue="q"
        )
        await drain(env)
        await handle.cancel()
        assert await handle.result() == "released order-7"

    assert cleanups == ["order-7"]
    assert (await handle.describe()).status == WorkflowExecutionStatus.COMPLETED
    types = [e.event_type for e in (await handle.fetch_history()).events]
    assert types.index("WorkflowExecutionCancelRequested") < types.index("ActivityTaskScheduled")


async def test_history_json_round_trip(env: WorkflowEnvironment) -> None:
    async with Worker(env.client, task_queue="q", workflows=[Gate]):
        handle = await env.client.start_workflow(Gate.run, "payload ✓", id="h", task_queue="q")
        await handle.signal(Gate.release)
        await handle.result()
    history = await handle.fetch_history()

    text = history.to_json()
    again = WorkflowHistory.from_json("h", text)

    assert again == history
    assert again.to_json() == text
    assert [e.event_type for e in again.events][-1] == "WorkflowExecutionCompleted"


@pytest.mark.parametrize("bad", [object(), lambda: 1], ids=["object", "lambda"])
async def test_unserializable_argument_fails_at_start_and_stores_nothing(
    env: WorkflowEnvironment, bad: object
) -> None:
    with pytest.raises(TypeError):
        await env.client.start_workflow(Echo.run, bad, id="bad", task_queue="q")

    with pytest.raises(WorkflowNotFoundError):
        await env.client.get_workflow_handle("bad").describe()
    # The id is free: nothing half-started holds it.
    async with Worker(env.client, task_queue="q", workflows=[Echo]):
        assert await env.client.execute_workflow(Echo.run, "ok", id="bad", task_queue="q") == (
            "echo: ok"
        )


@pytest.mark.parametrize("url", ["sqlite:/x.db", "mysql://x", "nonsense"])
async def test_malformed_database_url(url: str) -> None:
    with pytest.raises(PerdureError) as exc_info:
        await Client.connect(url)

    assert type(exc_info.value).__name__ == "InvalidURLError"
    assert isinstance(exc_info.value, ValueError)
    message = str(exc_info.value)
    assert "sqlite:///" in message
    assert "sqlite://:memory:" in message


async def test_database_from_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    client = await Client.connect(f"sqlite:///{path}")
    await client.close()
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE perdure_schema SET version = version + 1")
    conn.close()

    with pytest.raises(PerdureError) as exc_info:
        await Client.connect(f"sqlite:///{path}")

    assert type(exc_info.value).__name__ == "SchemaVersionError"
    assert "upgrade" in str(exc_info.value).lower()


async def test_sqlite_file_persists_across_connects(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'app.db'}"
    client = await Client.connect(url)
    async with Worker(client, task_queue="q", workflows=[Echo]):
        assert await client.execute_workflow(Echo.run, "one", id="one", task_queue="q") == (
            "echo: one"
        )
    # Started with no worker running: only the file remembers it.
    pending = await client.start_workflow(Echo.run, "two", id="two", task_queue="q")
    await client.close()

    client = await Client.connect(url)
    try:
        done = await client.get_workflow_handle("one").describe()
        assert done.status == WorkflowExecutionStatus.COMPLETED
        assert await client.get_workflow_handle("one").result() == "echo: one"
        async with Worker(client, task_queue="q", workflows=[Echo]):
            handle = client.get_workflow_handle("two")
            assert await handle.result() == "echo: two"
        assert (await handle.describe()).run_id == pending.result_run_id
    finally:
        await client.close()
