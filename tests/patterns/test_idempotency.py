"""perdure.patterns.idempotency_key: the same for every attempt of an activity, across retries
and worker crashes, and different for every other activity."""

from __future__ import annotations

import dataclasses
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest

from perdure import ActivityError, RetryPolicy, activity, workflow
from perdure.activity import NotInActivityError
from perdure.client import Client
from perdure.patterns import idempotency_key
from perdure.testing import ActivityEnvironment, CrashingWorker, CrashPoint, WorkflowEnvironment
from perdure.worker import Replayer

SEEN: list[tuple[str, int, str]] = []  # (step, attempt, key) per attempt
FAILURES: Counter[str] = Counter()  # how many more attempts of each step name fail
FAST_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_attempts=5)
# A local activity's retries wait on the worker's real clock: keep them short.
LOCAL_RETRY = RetryPolicy(initial_interval=timedelta(milliseconds=1), maximum_attempts=5)


@pytest.fixture(autouse=True)
def _reset() -> None:
    SEEN.clear()
    FAILURES.clear()


@activity.defn
async def step(name: str) -> str:
    info = activity.info()
    key = idempotency_key()
    SEEN.append((name, info.attempt, key))
    if FAILURES[name] > 0:
        FAILURES[name] -= 1
        raise RuntimeError(f"{name}: attempt {info.attempt} fails")
    return key


@activity.defn
def sync_step(name: str) -> str:  # a sync activity, run in a thread
    key = idempotency_key()
    SEEN.append((name, activity.info().attempt, key))
    return key


@dataclass
class Steps:
    names: list[str]
    activity_ids: list[str | None] | None = None  # None: let perdure number them
    local: bool = False
    continue_as_new_after: int = 0  # continue as new once, after this many steps


@workflow.defn
class Pipeline:
    @workflow.run
    async def run(self, steps: Steps) -> list[str]:
        keys = []
        ids = steps.activity_ids or [None] * len(steps.names)
        for n, (name, activity_id) in enumerate(zip(steps.names, ids, strict=True)):
            if steps.continue_as_new_after and n == steps.continue_as_new_after:
                rest = Steps(steps.names[n:], steps.activity_ids and steps.activity_ids[n:])
                workflow.continue_as_new(rest)
            if steps.local:
                key = await workflow.execute_local_activity(
                    step,
                    name,
                    start_to_close_timeout=timedelta(seconds=10),
                    retry_policy=LOCAL_RETRY,
                )
            else:
                try:
                    key = await workflow.execute_activity(
                        sync_step if name.startswith("sync") else step,
                        name,
                        start_to_close_timeout=timedelta(seconds=10),
                        retry_policy=FAST_RETRY,
                        activity_id=activity_id,
                    )
                except ActivityError:
                    key = "failed"
            keys.append(key)
        return keys


@pytest.fixture
async def client(perdure_env: WorkflowEnvironment, perdure_worker: Any) -> Client:
    await perdure_worker(workflows=[Pipeline], activities=[step, sync_step])
    c: Client = perdure_env.client
    return c


def keys_of(name: str) -> list[str]:
    return [key for step_name, _, key in SEEN if step_name == name]


async def test_the_key_is_the_same_for_every_attempt(client: Client) -> None:
    FAILURES["charge"] = 2
    handle = await client.start_workflow(
        Pipeline.run, Steps(["charge"]), id="wf", task_queue="test"
    )
    [key] = await handle.result()
    assert [attempt for _, attempt, _ in SEEN] == [1, 2, 3]
    assert keys_of("charge") == [key] * 3
    assert key == f"default/wf/{handle.result_run_id}/1"


async def test_the_key_survives_a_worker_crash(perdure_env: WorkflowEnvironment) -> None:
    # The activity ran (its side effect happened) but the worker died before recording it:
    # the fresh worker runs it again, with the same key, so the outside system can tell.
    async with CrashingWorker(
        perdure_env.client,
        crash_at=CrashPoint.before_activity_completes(step),
        task_queue="crashy",
        workflows=[Pipeline],
        activities=[step],
    ) as worker:
        [key] = await perdure_env.client.execute_workflow(
            Pipeline.run, Steps(["charge"]), id="wf", task_queue="crashy"
        )
    assert worker.crashes == 1
    assert keys_of("charge") == [key, key]


async def test_every_other_activity_gets_another_key(client: Client) -> None:
    keys = await client.execute_workflow(
        Pipeline.run, Steps(["charge", "charge", "sync-ship"]), id="wf", task_queue="test"
    )
    again = await client.execute_workflow(  # the same workflow id, a new run
        Pipeline.run, Steps(["charge"]), id="wf", task_queue="test"
    )
    other = await client.execute_workflow(
        Pipeline.run, Steps(["charge"]), id="other", task_queue="test"
    )
    everything = [*keys, *again, *other]
    assert len(set(everything)) == 5
    assert keys_of("sync-ship") == [keys[2]]  # sync activities read the same key


async def test_a_new_run_after_continue_as_new_gets_new_keys(client: Client) -> None:
    handle = await client.start_workflow(
        Pipeline.run, Steps(["a", "b"], continue_as_new_after=1), id="wf", task_queue="test"
    )
    keys = await handle.result()  # "b"'s, in the second run
    second_run = (await client.get_workflow_handle("wf").describe()).run_id
    assert second_run != handle.result_run_id
    assert keys_of("a") == [f"default/wf/{handle.result_run_id}/1"]
    assert keys_of("b") == keys == [f"default/wf/{second_run}/1"]


async def test_the_same_activity_id_gives_the_same_key(client: Client) -> None:
    # A workflow that schedules a step again after its failure keeps the key by passing the
    # same activity_id; otherwise the new activity gets a new key.
    FAILURES["charge"] = 5  # the first activity fails all its attempts
    steps = Steps(["charge", "charge", "charge"], activity_ids=["charge", "charge", None])
    keys = await client.execute_workflow(Pipeline.run, steps, id="wf", task_queue="test")
    assert keys[0] == "failed"
    assert keys_of("charge") == [keys[1]] * 6 + [keys[2]]  # 5 failed attempts, 1 more
    assert keys[1].endswith("/charge") and keys[2].endswith("/3")


async def test_local_activities_have_stable_keys_too(client: Client) -> None:
    FAILURES.update(a=1, b=1)
    keys = await client.execute_workflow(
        Pipeline.run, Steps(["a", "b"], local=True), id="wf", task_queue="test"
    )
    assert keys_of("a") == [keys[0]] * 2 and keys_of("b") == [keys[1]] * 2
    assert keys[0] != keys[1]


async def test_scopes_and_the_uuid_form() -> None:
    async def keys() -> list[str]:
        return [
            idempotency_key(),
            idempotency_key("charge"),
            idempotency_key("email", "receipt"),
            idempotency_key(as_uuid=True),
            idempotency_key("charge", as_uuid=True),
        ]

    env = ActivityEnvironment()
    first = await env.run(keys)
    env.info = dataclasses.replace(env.info, attempt=2, task_token=b"another")
    again = await env.run(keys)
    base = env.info.idempotency_key
    assert first == again
    assert first[:3] == [base, f"{base}/charge", f"{base}/email/receipt"]
    assert uuid.UUID(first[3]) != uuid.UUID(first[4])
    assert first[3] == str(uuid.uuid5(uuid.UUID("5e0c7a52-3f0e-5b8e-9d2a-7f1f3c7b2d10"), base))
    with pytest.raises(ValueError, match="empty"):
        await env.run(lambda: idempotency_key(""))


def test_outside_an_activity() -> None:
    with pytest.raises(NotInActivityError):
        idempotency_key()


async def test_the_history_replays(client: Client) -> None:
    FAILURES.update(a=1)
    handle = await client.start_workflow(
        Pipeline.run, Steps(["a", "b"], local=True), id="wf", task_queue="test"
    )
    await handle.result()
    await Replayer(workflows=[Pipeline]).replay_workflow(await handle.fetch_history())
