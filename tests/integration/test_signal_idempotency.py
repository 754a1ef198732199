"""Signals' idempotency keys (``request_id``): a signal sent again with the key it had is
accepted and recorded once, by whichever run of the workflow id took it first (across
continue-as-new, resets and new runs of the id, while that run is kept)."""

from __future__ import annotations

from typing import Any

import pytest
from storerows import run_rows

from perdure import Worker, workflow
from perdure.client import (
    Client,
    Interceptor,
    OutboundInterceptor,
    SignalWorkflowInput,
    WorkflowHandle,
    WorkflowNotFoundError,
)
from perdure.exceptions import InvalidArgumentError
from perdure.testing import WorkflowEnvironment


async def signal_keys(handle: WorkflowHandle[Any]) -> list[str | None]:
    """The request ids of the run's WorkflowExecutionSignaled events, in history order."""
    events = (await handle.fetch_history()).events
    return [
        e.attributes.get("request_id")
        for e in events
        if e.event_type == "WorkflowExecutionSignaled"
    ]


@workflow.defn
class Chain:
    """Collects ``add`` signals; ``next_run`` continues it as new (carrying what it has),
    ``finish`` ends it."""

    def __init__(self) -> None:
        self.items: list[str] = []
        self.move = False
        self.stop = False

    @workflow.run
    async def run(self, carried: list[str]) -> list[str]:
        self.items = [*carried, *self.items]
        await workflow.wait_condition(lambda: self.move or self.stop)
        if self.move and not self.stop:
            workflow.continue_as_new(self.items)
        return self.items

    @workflow.signal
    def add(self, value: str) -> None:
        self.items.append(value)

    @workflow.signal
    def next_run(self) -> None:
        self.move = True

    @workflow.signal
    def finish(self) -> None:
        self.stop = True

    @workflow.query
    def seen(self) -> list[str]:
        return self.items


async def start_chain(env: WorkflowEnvironment, wid: str = "chain") -> WorkflowHandle[Any]:
    return await env.client.start_workflow(Chain.run, [], id=wid, task_queue="q")


async def test_a_key_sent_twice_is_recorded_once_and_different_keys_both(
    env: WorkflowEnvironment,
) -> None:
    async with Worker(env.client, task_queue="q", workflows=[Chain]):
        handle = await start_chain(env)
        await handle.signal(Chain.add, "a", request_id="k1")
        await handle.signal(Chain.add, "a", request_id="k1")  # a retry: accepted, nothing new
        await handle.signal(Chain.add, "b", request_id="k2")
        await handle.signal(Chain.add, "c")  # no key: no deduplication
        await handle.signal(Chain.add, "c")
        await handle.signal(Chain.add, "d", request_id="k1")  # the key decides, not the value
        await env.sleep(0)
        assert await handle.query(Chain.seen) == ["a", "b", "c", "c"]
        await handle.signal(Chain.finish)
        assert await handle.result() == ["a", "b", "c", "c"]
    assert await signal_keys(handle) == ["k1", "k2", None, None, None]


async def test_a_key_holds_across_continue_as_new(env: WorkflowEnvironment) -> None:
    """Documented scope: the workflow id. A key the first run took is deduplicated when
    sent again after the workflow continued as new (to its latest run, or to the new run by
    its run id); a new key reaches the new run."""
    async with Worker(env.client, task_queue="q", workflows=[Chain]):
        handle = await start_chain(env)
        first = handle.first_execution_run_id
        assert first is not None
        await handle.signal(Chain.add, "a", request_id="before")
        await handle.signal(Chain.next_run)
        await env.sleep(0)
        latest = await handle.describe()
        assert latest.run_id != first
        await handle.signal(Chain.add, "a", request_id="before")  # the retry: not delivered
        second = env.client.get_workflow_handle("chain", run_id=latest.run_id)
        await second.signal(Chain.add, "a", request_id="before")
        await handle.signal(Chain.add, "b", request_id="after")  # a new key: delivered
        await handle.signal(Chain.finish)
        assert await handle.result() == ["a", "b"]
    old_run = env.client.get_workflow_handle("chain", run_id=first)
    assert "before" in await signal_keys(old_run)
    assert "before" not in await signal_keys(second)
    assert "after" in await signal_keys(second)


async def test_a_retry_after_the_run_closed_is_accepted_a_new_signal_is_not(
    env: WorkflowEnvironment,
) -> None:
    async with Worker(env.client, task_queue="q", workflows=[Chain]):
        handle = await start_chain(env)
        await handle.signal(Chain.add, "a", request_id="k")
        await handle.signal(Chain.finish, request_id="done")
        assert await handle.result() == ["a"]
    # The signal was taken before the run closed: its retry succeeds, and records nothing.
    await handle.signal(Chain.add, "a", request_id="k")
    await handle.signal(Chain.finish, request_id="done")
    with pytest.raises(WorkflowNotFoundError, match="already closed"):
        await handle.signal(Chain.add, "b", request_id="new")
    with pytest.raises(WorkflowNotFoundError, match="already closed"):
        await handle.signal(Chain.add, "b")
    with pytest.raises(WorkflowNotFoundError):
        await env.client.get_workflow_handle("nobody").signal(Chain.add, "b", request_id="k")
    assert await signal_keys(handle) == ["k", "done"]


async def test_a_key_holds_for_a_new_run_of_the_id_until_its_run_is_deleted(
    env: WorkflowEnvironment,
) -> None:
    async with Worker(env.client, task_queue="q", workflows=[Chain]):
        first = await start_chain(env)
        await first.signal(Chain.add, "a", request_id="k")
        await first.signal(Chain.finish)
        await first.result()
        second = await start_chain(env)  # the id again, a new run
        await second.signal(Chain.add, "a", request_id="k")
        await env.sleep(0)
        assert await second.query(Chain.seen) == []
        first_run = env.client.get_workflow_handle("chain", run_id=first.first_execution_run_id)
        await first_run.delete()  # its keys go with it
        assert (await run_rows(env.client.store, first.first_execution_run_id or ""))[
            "signal_requests"
        ] == 0
        await second.signal(Chain.add, "a", request_id="k")
        await second.signal(Chain.finish)
        assert await second.result() == ["a"]


async def test_a_key_holds_across_a_reset_and_reapplied_signals_keep_theirs(
    env: WorkflowEnvironment,
) -> None:
    async with Worker(env.client, task_queue="q", workflows=[Chain]):
        handle = await start_chain(env)
        await env.sleep(0)
        await handle.signal(Chain.add, "a", request_id="k")
        await env.sleep(0)
        history = (await handle.fetch_history()).events
        completed = [e.event_id for e in history if e.event_type == "WorkflowTaskCompleted"]
        new_run = await handle.reset(completed[0], reason="again")
        await handle.signal(Chain.add, "a", request_id="k")  # already taken: nothing
        await handle.signal(Chain.finish)
        assert await handle.result() == ["a"]
    reset_run = env.client.get_workflow_handle("chain", run_id=new_run)
    assert (await signal_keys(reset_run))[0] == "k"


async def test_signal_with_start_key(env: WorkflowEnvironment) -> None:
    """A retried signal-with-start signals the run once; once that run has closed, the retry
    starts nothing and its handle is the run's that took the signal."""

    async def signal_with_start() -> WorkflowHandle[Any]:
        return await env.client.start_workflow(
            Chain.run,
            [],
            id="sws",
            task_queue="q",
            start_signal="add",
            start_signal_args=["a"],
            start_signal_request_id="sws-1",
        )

    async with Worker(env.client, task_queue="q", workflows=[Chain]):
        first = await signal_with_start()
        again = await signal_with_start()
        assert again.result_run_id == first.result_run_id
        await env.sleep(0)
        assert await first.query(Chain.seen) == ["a"]
        await first.signal(Chain.add, "a", request_id="sws-1")  # the same key as a signal
        await first.signal(Chain.finish)
        assert await first.result() == ["a"]
        late = await signal_with_start()
        assert late.result_run_id == first.result_run_id
        assert (await late.describe()).run_id == first.result_run_id  # no new run
    assert await signal_keys(first) == ["sws-1", None]  # the start signal, then finish


class _Keys(Interceptor):
    def __init__(self) -> None:
        self.seen: list[str | None] = []

    def intercept_client(self, next: OutboundInterceptor) -> OutboundInterceptor:
        outer = self

        class Outbound(OutboundInterceptor):
            async def signal_workflow(self, input: SignalWorkflowInput) -> None:
                outer.seen.append(input.request_id)
                await super().signal_workflow(input)

        return Outbound(next)


class _SendsTwice(Interceptor):
    """Sends each signal twice, as a retrying interceptor would, with a key it sets."""

    def intercept_client(self, next: OutboundInterceptor) -> OutboundInterceptor:
        class Outbound(OutboundInterceptor):
            async def signal_workflow(self, input: SignalWorkflowInput) -> None:
                input.request_id = input.request_id or "retry-key"
                await super().signal_workflow(input)
                await super().signal_workflow(input)

        return Outbound(next)


async def test_interceptors_see_the_key_and_one_they_set_deduplicates(
    env: WorkflowEnvironment,
) -> None:
    keys = _Keys()
    config = env.client.config()
    config["interceptors"] = [keys]
    client = Client(**config)
    handle = await client.start_workflow(Chain.run, [], id="i", task_queue="q")
    await handle.signal(Chain.add, "a", request_id="mine")
    await handle.signal(Chain.add, "b")
    assert keys.seen == ["mine", None]
    retrying = env.client.config()
    retrying["interceptors"] = [_SendsTwice()]
    await Client(**retrying).get_workflow_handle("i").signal(Chain.add, "c")
    assert await signal_keys(handle) == ["mine", None, "retry-key"]


async def test_a_bad_key_is_refused(env: WorkflowEnvironment) -> None:
    handle = await start_chain(env)
    with pytest.raises(InvalidArgumentError, match="request_id"):
        await handle.signal(Chain.add, "a", request_id="x" * 1001)
    with pytest.raises(InvalidArgumentError, match="request_id"):
        await handle.signal(Chain.add, "a", request_id=7)  # type: ignore[arg-type]
