"""ActivityEnvironment runs one activity function as a worker would: its context, its
heartbeats (through the payload converter), cancellation learned through heartbeats, worker
shutdown, and whatever the function raises."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest

from perdure import activity
from perdure.exceptions import ApplicationError, CancelledError, PayloadConverterError
from perdure.testing import ActivityEnvironment

HANG_BOUND = 10.0  # real seconds: a bound on a hang, not an expected duration


def capture(env: ActivityEnvironment) -> list[tuple[Any, ...]]:
    beats: list[tuple[Any, ...]] = []
    env.on_heartbeat = lambda *details: beats.append(details)
    return beats


# --- running, heartbeats and info ----------------------------------------------------------


@activity.defn
async def count_to(n: int) -> int:
    for i in range(1, n + 1):
        activity.heartbeat(i, f"step {i}")
        await asyncio.sleep(0)
    return n


async def test_async_activity_heartbeats_are_captured_in_order() -> None:
    env = ActivityEnvironment()
    beats = capture(env)
    assert await env.run(count_to, 3) == 3
    assert beats == [(1, "step 1"), (2, "step 2"), (3, "step 3")]


@activity.defn
def count_to_sync(n: int) -> str:
    for i in range(1, n + 1):
        activity.heartbeat(i)
    return f"{activity.info().activity_type} counted to {n} in {threading.current_thread().name}"


def test_sync_activity_runs_in_the_calling_thread_with_its_context() -> None:
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, activity_type="count_to_sync")
    beats = capture(env)
    here = threading.current_thread().name
    assert env.run(count_to_sync, 2) == f"count_to_sync counted to 2 in {here}"
    assert beats == [(1,), (2,)]
    assert not activity.in_activity()  # the context does not outlive the call
    with pytest.raises(activity.NotInActivityError):
        activity.info()


async def test_sync_activity_can_run_beside_the_test_in_a_thread() -> None:
    env = ActivityEnvironment()
    beats = capture(env)
    result = await asyncio.to_thread(env.run, count_to_sync, 2)
    assert result.startswith("unknown counted to 2 in ")
    assert result != f"unknown counted to 2 in {threading.current_thread().name}"
    assert beats == [(1,), (2,)]


@dataclass
class Progress:
    done: int
    cursor: str


@activity.defn
async def report(progress: Progress) -> None:
    activity.heartbeat(progress, (1, 2))


async def test_heartbeat_details_come_as_the_next_attempt_would_see_them() -> None:
    env = ActivityEnvironment()
    beats = capture(env)
    await env.run(report, Progress(5, "abc"))
    assert beats == [({"done": 5, "cursor": "abc"}, [1, 2])]


async def test_heartbeat_details_the_converter_cannot_encode_raise() -> None:
    @activity.defn
    async def bad_details() -> None:
        activity.heartbeat(object())

    env = ActivityEnvironment()
    beats = capture(env)
    # The error a worker raises there too: a TypeError, which fails the activity for good.
    with pytest.raises(PayloadConverterError, match=r"heartbeat details of .* cannot be"):
        await env.run(bad_details)
    with pytest.raises(TypeError, match="cannot encode"):
        await env.run(bad_details)
    assert beats == []


@activity.defn
async def describe() -> dict[str, Any]:
    info = activity.info()
    return {
        "activity_id": info.activity_id,
        "activity_type": info.activity_type,
        "attempt": info.attempt,
        "task_queue": info.task_queue,
        "task_token": info.task_token,
        "workflow_id": info.workflow_id,
        "workflow_run_id": info.workflow_run_id,
        "heartbeat_details": list(info.heartbeat_details),
        "start_to_close_timeout": info.start_to_close_timeout,
        "is_local": info.is_local,
        "in_activity": activity.in_activity(),
        "is_cancelled": activity.is_cancelled(),
        "is_worker_shutdown": activity.is_worker_shutdown(),
    }


async def test_default_info() -> None:
    assert await ActivityEnvironment().run(describe) == {
        "activity_id": "test",
        "activity_type": "unknown",
        "attempt": 1,
        "task_queue": "test",
        "task_token": b"test",
        "workflow_id": "test",
        "workflow_run_id": "test-run",
        "heartbeat_details": [],
        "start_to_close_timeout": timedelta(seconds=1),
        "is_local": False,
        "in_activity": True,
        "is_cancelled": False,
        "is_worker_shutdown": False,
    }
    assert ActivityEnvironment.default_info() == ActivityEnvironment().info


async def test_overridden_info_is_what_the_activity_sees() -> None:
    env = ActivityEnvironment()
    env.info = dataclasses.replace(
        env.info, attempt=3, heartbeat_details=[40], workflow_id="order-7", task_token=b"tok"
    )
    seen = await env.run(describe)
    assert (seen["attempt"], seen["heartbeat_details"]) == (3, [40])
    assert (seen["workflow_id"], seen["task_token"]) == ("order-7", b"tok")
    assert ActivityEnvironment().info.attempt == 1  # one environment's info is its own


async def test_keyword_arguments_and_async_callable_objects() -> None:
    class Greeter:
        async def __call__(self, name: str, *, punctuation: str) -> str:
            return f"hello {name}{punctuation} from {activity.info().activity_id}"

    env = ActivityEnvironment()
    assert await env.run(Greeter(), "ada", punctuation="!") == "hello ada! from test"


# --- failures and async completion ----------------------------------------------------------


async def test_exceptions_of_an_async_activity_propagate() -> None:
    error = ApplicationError("card declined", "4242", type="CardError", non_retryable=True)

    @activity.defn
    async def charge() -> None:
        await asyncio.sleep(0)
        raise error

    with pytest.raises(ApplicationError) as caught:
        await ActivityEnvironment().run(charge)
    assert caught.value is error


def test_exceptions_of_a_sync_activity_propagate() -> None:
    @activity.defn
    def parse(text: str) -> int:
        return int(text)

    with pytest.raises(ValueError, match="not a number"):
        ActivityEnvironment().run(parse, "not a number")


async def test_an_activity_that_completes_asynchronously_raises_complete_async() -> None:
    handed_over: list[bytes] = []

    @activity.defn
    async def request_approval(document: str) -> str:
        handed_over.append(activity.info().task_token)
        activity.raise_complete_async()

    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, task_token=b"approval-1")
    with pytest.raises(activity.CompleteAsyncError):
        await env.run(request_approval, "report")
    assert handed_over == [b"approval-1"]


# --- cancellation ---------------------------------------------------------------------------

cleanups: list[str] = []


@activity.defn
async def watch_feed() -> str:
    beat = 0
    try:
        while beat < 100:  # bounded, so a cancellation that never arrives fails, not hangs
            beat += 1
            activity.heartbeat(beat)
            await asyncio.sleep(0)
    except asyncio.CancelledError:
        cleanups.append(f"cancelled={activity.is_cancelled()} after beat {beat}")
        raise
    return "never cancelled"


async def test_cancel_reaches_a_heartbeating_async_activity_at_its_next_await() -> None:
    cleanups.clear()
    env = ActivityEnvironment()
    beats = capture(env)

    def on_heartbeat(*details: Any) -> None:
        beats.append(details)
        if details == (3,):
            env.cancel()

    env.on_heartbeat = on_heartbeat
    with pytest.raises(asyncio.CancelledError):
        await env.run(watch_feed)
    assert beats == [(1,), (2,), (3,)]
    assert cleanups == ["cancelled=True after beat 3"]


async def test_cancel_wakes_wait_for_cancelled() -> None:
    started = asyncio.Event()

    @activity.defn
    async def wait_until_cancelled() -> str:
        activity.heartbeat("started")  # how an activity hears of cancellation at all
        started.set()
        waiting = asyncio.ensure_future(activity.wait_for_cancelled())
        try:
            await asyncio.shield(waiting)
        except asyncio.CancelledError:
            await asyncio.wait_for(waiting, HANG_BOUND)
            return f"stopped, is_cancelled={activity.is_cancelled()}"
        return "wait_for_cancelled returned without the task being cancelled"

    env = ActivityEnvironment()
    run = asyncio.ensure_future(env.run(wait_until_cancelled))
    await started.wait()
    assert not run.done()
    env.cancel()
    assert await run == "stopped, is_cancelled=True"


async def test_an_activity_learns_of_cancel_on_its_next_heartbeat() -> None:
    started, gate = asyncio.Event(), asyncio.Event()
    seen: list[str] = []

    @activity.defn
    async def slow_start() -> None:
        started.set()
        await gate.wait()
        seen.append(f"before heartbeat: {activity.is_cancelled()}")
        activity.heartbeat()
        seen.append(f"right after: {activity.is_cancelled()}")
        try:
            await asyncio.sleep(0)
        finally:
            seen.append(f"at the next await: {activity.is_cancelled()}")

    env = ActivityEnvironment()
    run = asyncio.ensure_future(env.run(slow_start))
    await started.wait()
    env.cancel()
    gate.set()
    with pytest.raises(asyncio.CancelledError):
        await run
    assert seen == ["before heartbeat: False", "right after: False", "at the next await: True"]


async def test_an_activity_that_never_heartbeats_runs_to_its_end() -> None:
    started, gate = asyncio.Event(), asyncio.Event()

    @activity.defn
    async def silent() -> str:
        started.set()
        await gate.wait()
        await asyncio.sleep(0)
        return f"done, is_cancelled={activity.is_cancelled()}"

    env = ActivityEnvironment()
    run = asyncio.ensure_future(env.run(silent))
    await started.wait()
    env.cancel()
    gate.set()
    assert await run == "done, is_cancelled=False"


async def test_an_activity_that_returns_right_after_its_heartbeat_completes() -> None:
    @activity.defn
    async def last_beat() -> str:
        activity.heartbeat("last")
        return "finished"

    env = ActivityEnvironment()
    env.cancel()  # requested before it runs; it hears of it only from its heartbeat's reply
    beats = capture(env)
    assert await env.run(last_beat) == "finished"
    assert beats == [("last",)]


@activity.defn
def poll_until_cancelled() -> int:
    polls = 0
    while polls < 100:  # bounded, so a cancellation that never arrives fails, not hangs
        if activity.is_cancelled():
            raise CancelledError("stopped polling")
        polls += 1
        activity.heartbeat(polls)
    return polls


def test_cancel_of_a_sync_activity_sets_is_cancelled() -> None:
    env = ActivityEnvironment()
    beats = capture(env)

    def on_heartbeat(*details: Any) -> None:
        beats.append(details)
        if details == (3,):
            env.cancel()

    env.on_heartbeat = on_heartbeat
    with pytest.raises(CancelledError, match="stopped polling"):
        env.run(poll_until_cancelled)
    assert beats == [(1,), (2,), (3,)]


async def test_cancel_of_a_sync_activity_in_a_thread_wakes_wait_for_cancelled_sync() -> None:
    loop = asyncio.get_running_loop()
    waiting = asyncio.Event()

    @activity.defn
    def wait_in_thread() -> str:
        activity.heartbeat()
        loop.call_soon_threadsafe(waiting.set)
        if activity.wait_for_cancelled_sync(timeout=HANG_BOUND):
            return "cancelled"
        return "never cancelled"

    env = ActivityEnvironment()
    run = asyncio.ensure_future(asyncio.to_thread(env.run, wait_in_thread))
    await waiting.wait()
    env.cancel()
    assert await run == "cancelled"


def test_a_sync_activity_without_heartbeats_does_not_hear_of_cancel() -> None:
    @activity.defn
    def check() -> bool:
        return activity.is_cancelled()

    env = ActivityEnvironment()
    env.cancel()
    assert env.run(check) is False


# --- worker shutdown ------------------------------------------------------------------------


async def test_worker_shutdown_is_seen_by_a_running_activity() -> None:
    started, shutting_down = asyncio.Event(), asyncio.Event()
    seen: list[bool] = []

    @activity.defn
    async def drain() -> None:
        seen.append(activity.is_worker_shutdown())
        started.set()
        await shutting_down.wait()
        seen.append(activity.is_worker_shutdown())

    env = ActivityEnvironment()
    run = asyncio.ensure_future(env.run(drain))
    await started.wait()
    env.worker_shutdown()
    shutting_down.set()
    await run
    assert seen == [False, True]


def test_worker_shutdown_holds_for_activities_run_later() -> None:
    @activity.defn
    def check() -> tuple[bool, bool]:
        return activity.is_worker_shutdown(), activity.is_cancelled()

    env = ActivityEnvironment()
    env.worker_shutdown()
    assert env.run(check) == (True, False)
