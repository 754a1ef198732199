"""The waiting and idempotency helpers' types, checked by mypy --strict (this file is in
mypy's files) and run as a test."""

from __future__ import annotations

from datetime import timedelta
from typing import assert_type

import pytest

from perdure import activity, workflow
from perdure.activity import CompleteAsyncError
from perdure.patterns import (
    Escalation,
    HandOff,
    Reminder,
    WaitOutcome,
    hand_off,
    idempotency_key,
    wait_until,
)
from perdure.testing import ActivityEnvironment

SENT: list[HandOff] = []


@activity.defn
async def notify(message: str) -> None:
    pass


@activity.defn
async def pay(amount: int) -> int:
    # hand_off never returns (NoReturn), so this function needs no return statement.
    await hand_off(SENT.append)


@workflow.defn
class Waiter:
    def __init__(self) -> None:
        self.done = False

    @workflow.run
    async def run(self) -> bool:
        outcome = await wait_until(
            lambda: self.done,
            timeout=timedelta(hours=1),
            # An action may be sync, async, or return an activity's awaitable.
            reminders=[Reminder(every=timedelta(minutes=10), action=self.tick)],
            escalation=[
                Escalation(after=timedelta(minutes=20), action=self.escalate),
                Escalation(
                    after=timedelta(minutes=30),
                    action=lambda: workflow.execute_activity(
                        notify, "late", start_to_close_timeout=timedelta(seconds=5)
                    ),
                ),
            ],
        )
        assert_type(outcome, WaitOutcome)
        assert_type(outcome.timed_out, bool)
        assert_type(outcome.waited, timedelta)
        return outcome.satisfied

    def tick(self) -> None:
        pass

    async def escalate(self) -> None:
        self.done = False


async def test_hand_off_and_idempotency_key_types() -> None:
    env = ActivityEnvironment()
    with pytest.raises(CompleteAsyncError):
        await env.run(pay, 3)
    [h] = SENT
    assert_type(h.task_token, bytes)
    assert_type(h.idempotency_key, str)
    assert_type(h.attempt, int)
    assert h.idempotency_key == env.info.idempotency_key

    async def key() -> str:
        return idempotency_key("charge", as_uuid=True)

    assert_type(await env.run(key), str)
