"""perdure.patterns.hand_off: an activity gives its task token to an outside system, which
completes, fails or heartbeats it later through the client (the webhook pattern)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest

from perdure import ActivityError, ApplicationError, RetryPolicy, activity, workflow
from perdure.activity import NotInActivityError
from perdure.client import AsyncActivityCancelledError, AsyncActivityNotFoundError, Client
from perdure.exceptions import CancelledError, TimeoutError
from perdure.patterns import HandOff, hand_off
from perdure.testing import WorkflowEnvironment
from perdure.workflow import ActivityCancellationType


class Provider:
    """The outside system: it takes requests with the token to answer with, and answers
    later (the test plays it). A retried request comes with the same idempotency key."""

    def __init__(self) -> None:
        self.inbox: asyncio.Queue[HandOff] = asyncio.Queue()
        self.refuse = 0  # how many requests to refuse (the provider is down)
        self.answer_at_once: Client | None = None  # complete inside the request itself

    async def request(self, h: HandOff) -> None:
        if self.refuse:
            self.refuse -= 1
            raise ConnectionError("provider unreachable")
        if self.answer_at_once is not None:
            await self.answer_at_once.get_async_activity_handle(task_token=h.task_token).complete(
                f"paid at once (attempt {h.attempt})"
            )
        await self.inbox.put(h)


PROVIDER = Provider()


@pytest.fixture(autouse=True)
def _fresh_provider() -> None:
    global PROVIDER
    PROVIDER = Provider()


@activity.defn
async def pay(amount: int) -> str:
    await hand_off(PROVIDER.request)


@workflow.defn
class Payment:
    @workflow.run
    async def run(self, amount: int) -> str:
        try:
            return await workflow.execute_activity(
                pay,
                amount,
                start_to_close_timeout=timedelta(hours=1),
                heartbeat_timeout=timedelta(minutes=10),
                retry_policy=RetryPolicy(
                    initial_interval=timedelta(seconds=1),
                    maximum_attempts=3,
                    non_retryable_error_types=["CardDeclined"],
                ),
            )
        except ActivityError as err:
            cause = err.cause
            if isinstance(cause, TimeoutError):
                return f"timed out ({cause.type.name})"
            if isinstance(cause, CancelledError):
                return "cancelled"
            return f"failed: {cause}"


@workflow.defn
class CancelledPayment:
    @workflow.run
    async def run(self, amount: int) -> str:
        handle = workflow.start_activity(
            pay,
            amount,
            start_to_close_timeout=timedelta(hours=1),
            cancellation_type=ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
        )
        await workflow.sleep(60)
        handle.cancel()
        try:
            return await handle
        except ActivityError as err:
            return f"cancelled: {type(err.cause).__name__}"


@pytest.fixture
async def client(perdure_env: WorkflowEnvironment, perdure_worker: Any) -> Client:
    await perdure_worker(workflows=[Payment, CancelledPayment], activities=[pay])
    c: Client = perdure_env.client
    return c


async def test_the_outside_system_completes_the_activity_later(
    perdure_env: WorkflowEnvironment, client: Client
) -> None:
    handle = await client.start_workflow(Payment.run, 40, id="pay-1", task_queue="test")
    h = await PROVIDER.inbox.get()
    assert h.attempt == 1
    assert h.idempotency_key == f"default/pay-1/{handle.result_run_id}/1"
    assert h.task_token.decode().isascii()  # fits in a URL or JSON as text
    await perdure_env.sleep(timedelta(minutes=5))  # the provider takes its time
    callback = client.get_async_activity_handle(task_token=h.task_token.decode().encode())
    await callback.complete("paid 40")
    assert await handle.result() == "paid 40"
    with pytest.raises(AsyncActivityNotFoundError):  # answered once only
        await callback.complete("paid again")


async def test_failing_through_the_handle_retries_with_a_new_token_and_the_same_key(
    perdure_env: WorkflowEnvironment, client: Client
) -> None:
    handle = await client.start_workflow(Payment.run, 40, id="pay-2", task_queue="test")
    first = await PROVIDER.inbox.get()
    await client.get_async_activity_handle(task_token=first.task_token).fail(
        ApplicationError("gateway hiccup", type="GatewayError")
    )
    await perdure_env.sleep(timedelta(seconds=1))  # the retry policy's wait
    second = await PROVIDER.inbox.get()
    assert (first.attempt, second.attempt) == (1, 2)
    assert second.task_token != first.task_token
    assert second.idempotency_key == first.idempotency_key  # the provider sees one payment
    with pytest.raises(AsyncActivityNotFoundError):  # the first attempt's token is dead
        await client.get_async_activity_handle(task_token=first.task_token).complete("late")
    await client.get_async_activity_handle(task_token=second.task_token).fail(
        ApplicationError("card declined", type="CardDeclined")
    )
    assert await handle.result() == "failed: card declined"  # not retryable: no 3rd attempt
    assert PROVIDER.inbox.empty()


async def test_heartbeats_through_the_handle_keep_a_long_wait_alive(
    perdure_env: WorkflowEnvironment, client: Client
) -> None:
    async with perdure_env.auto_time_skipping_disabled():
        handle = await client.start_workflow(Payment.run, 40, id="pay-3", task_queue="test")
        h = await PROVIDER.inbox.get()
        callback = client.get_async_activity_handle(task_token=h.task_token)
        for _ in range(5):  # 45 minutes, past the 10-minute heartbeat timeout
            await perdure_env.sleep(timedelta(minutes=9))
            await callback.heartbeat("still processing")
        await callback.complete("paid 40")
        assert await handle.result() == "paid 40"


async def test_no_answer_times_the_attempt_out_and_the_retry_hands_off_again(
    client: Client,
) -> None:
    handle = await client.start_workflow(Payment.run, 40, id="pay-4", task_queue="test")
    assert await handle.result() == "timed out (HEARTBEAT)"  # the clock skips the waits
    tokens = [PROVIDER.inbox.get_nowait() for _ in range(3)]  # nobody heartbeats: 3 attempts
    assert [t.attempt for t in tokens] == [1, 2, 3]
    assert len({t.idempotency_key for t in tokens}) == 1
    assert PROVIDER.inbox.empty()


async def test_a_send_that_fails_fails_the_attempt(
    perdure_env: WorkflowEnvironment, client: Client
) -> None:
    PROVIDER.refuse = 1
    handle = await client.start_workflow(Payment.run, 40, id="pay-5", task_queue="test")
    await perdure_env.sleep(timedelta(seconds=1))  # the retry policy's wait
    h = await PROVIDER.inbox.get()
    assert h.attempt == 2
    await client.get_async_activity_handle(task_token=h.task_token).complete("paid 40")
    assert await handle.result() == "paid 40"


async def test_an_answer_that_comes_before_the_hand_off_returns(client: Client) -> None:
    PROVIDER.answer_at_once = client
    result = await client.execute_workflow(Payment.run, 40, id="pay-6", task_queue="test")
    assert result == "paid at once (attempt 1)"


async def test_cancellation_reaches_the_outside_system_through_heartbeat(
    perdure_env: WorkflowEnvironment, client: Client
) -> None:
    async with perdure_env.auto_time_skipping_disabled():
        handle = await client.start_workflow(
            CancelledPayment.run, 40, id="pay-7", task_queue="test"
        )
        h = await PROVIDER.inbox.get()
        callback = client.get_async_activity_handle(task_token=h.task_token)
        await callback.heartbeat()  # no news yet
        await perdure_env.sleep(timedelta(seconds=61))  # the workflow cancels the payment
        await perdure_env.sleep(0)
        with pytest.raises(AsyncActivityCancelledError):
            await callback.heartbeat()
        await callback.report_cancellation()
        assert await handle.result() == "cancelled: CancelledError"


async def test_hand_off_outside_an_activity() -> None:
    with pytest.raises(NotInActivityError):
        await hand_off(PROVIDER.request)
    assert PROVIDER.inbox.empty()
