"""An attempt's heartbeats, against a store that answers each one when the test says: a
request to cancel that arrives while a heartbeat is on its way must still be sent at once."""

import asyncio
from typing import Any

from perdure._store._types import ActivityTask, TaskToken
from perdure.converter import DataConverter
from perdure.worker._heartbeat import Heartbeater

WAIT = 5.0  # real seconds: an upper bound on waiting for an event, never a delay
HEARTBEAT_TIMEOUT = 30.0  # the pause between throttled heartbeats is 24 s: far above WAIT


class AnsweredStore:
    """The part of the store a heartbeater uses; each heartbeat waits for the test to say
    whether cancellation was requested."""

    closed = False

    def __init__(self) -> None:
        self.sent: asyncio.Queue[asyncio.Future[bool]] = asyncio.Queue()

    async def heartbeat_activity(self, token: TaskToken, owner: str | None, details: Any) -> bool:
        answer: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self.sent.put_nowait(answer)
        return await answer


def _task() -> ActivityTask:
    return ActivityTask(
        token=TaskToken("default", "wf", "run", 1, 1),
        task_queue="q",
        workflow_type="Wf",
        activity_id="1",
        activity_type="act",
        input=[],
        attempt=1,
        scheduled_time=0.0,
        started_time=0.0,
        start_to_close_timeout=None,
        schedule_to_close_timeout=None,
        heartbeat_timeout=HEARTBEAT_TIMEOUT,
        heartbeat_details=[],
        owner="worker",
    )


async def test_a_poke_during_a_send_sends_again_at_once() -> None:
    store = AnsweredStore()
    cancels: list[bool] = []

    def on_cancel(*, stale: bool) -> None:
        cancels.append(stale)

    beat = Heartbeater(
        store,  # type: ignore[arg-type]
        DataConverter.default,
        _task(),
        asyncio.get_running_loop(),
        on_cancel,
    )
    try:
        beat.heartbeat([])
        first = await asyncio.wait_for(store.sent.get(), WAIT)
        # The workflow's cancellation commits after this heartbeat read the row: the worker
        # pokes the heartbeater while the heartbeat is still on its way back.
        beat.poke()
        first.set_result(False)
        second = await asyncio.wait_for(store.sent.get(), WAIT)
        second.set_result(True)
        for _ in range(5):
            await asyncio.sleep(0)
        assert cancels == [False]
    finally:
        beat.stop()


async def test_heartbeats_between_sends_wait_for_the_pause() -> None:
    """The throttle stays: heartbeats recorded while one is on its way do not send again
    before the pause (only a poke cuts it short)."""
    store = AnsweredStore()
    beat = Heartbeater(
        store,  # type: ignore[arg-type]
        DataConverter.default,
        _task(),
        asyncio.get_running_loop(),
        lambda *, stale: None,
    )
    try:
        beat.heartbeat([])
        first = await asyncio.wait_for(store.sent.get(), WAIT)
        beat.heartbeat([])
        first.set_result(False)
        for _ in range(20):
            await asyncio.sleep(0)
        assert store.sent.empty()
        beat.poke()
        second = await asyncio.wait_for(store.sent.get(), WAIT)
        second.set_result(False)
    finally:
        beat.stop()
