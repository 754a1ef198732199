"""Per-key concurrency: with ``max_concurrent_activities_per_key=N``, at most N activities of
one ``concurrency_key`` run at once across every worker of the queue; activities of no key,
or of other keys, are not held back by them; a worker that dies mid-activity holds its slot
only until the attempt's lease expires."""

from __future__ import annotations

import asyncio
import collections
import os
import signal
import time
from datetime import timedelta
from pathlib import Path

import flow_app as app
import pytest

from perdure import Client, Worker, activity, workflow
from perdure.testing import WorkflowEnvironment

RUNNING: collections.Counter[str] = collections.Counter()
MOST: collections.Counter[str] = collections.Counter()


@activity.defn
async def tracked(key: str) -> str:
    RUNNING[key] += 1
    MOST[key] = max(MOST[key], RUNNING[key])
    try:
        await asyncio.sleep(0.02)
    finally:
        RUNNING[key] -= 1
    return key


@workflow.defn
class Tracked:
    @workflow.run
    async def run(self, keys: list[str | None]) -> list[str]:
        return list(
            await asyncio.gather(
                *(
                    workflow.execute_activity(
                        tracked,
                        key or "none",
                        concurrency_key=key,
                        start_to_close_timeout=timedelta(seconds=10),
                    )
                    for key in keys
                )
            )
        )


async def test_no_more_than_n_of_a_key_run_at_once(env: WorkflowEnvironment) -> None:
    RUNNING.clear()
    MOST.clear()
    keys: list[str | None] = ["k1"] * 8 + ["k2"] * 8 + [None] * 6
    kwargs = {
        "task_queue": "q",
        "workflows": [Tracked],
        "activities": [tracked],
        "max_concurrent_activities_per_key": 2,
    }
    async with Worker(env.client, **kwargs), Worker(env.client, **kwargs):  # type: ignore[arg-type]
        result = await env.client.execute_workflow(Tracked.run, keys, id="t", task_queue="q")
    assert sorted(result) == sorted(k or "none" for k in keys)
    assert (MOST["k1"], MOST["k2"]) == (2, 2)
    assert MOST["none"] > 2  # activities of no key are not held back


def _wait_for(predicate: object, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.02)


@pytest.mark.realtime
@pytest.mark.timeout(90)
async def test_three_processes_and_a_killed_one_keep_the_limit(
    postgres_url: str, tmp_path: Path
) -> None:
    journal = str(tmp_path / "journal.txt")
    os.environ[app.JOURNAL_ENV] = journal
    try:
        log = str(tmp_path / "worker{}.log")
        procs = [app.spawn(postgres_url, ["--per-key", "2"], log.format(i)) for i in range(3)]
    finally:
        del os.environ[app.JOURNAL_ENV]
    keys = ["a"] * 10 + ["b"] * 10
    try:
        client = await Client.connect(postgres_url)
        try:
            handle = await client.start_workflow(
                app.KeyedFanOut.run, keys, id="keyed", task_queue=app.TASK_QUEUE
            )
            # Kill a worker while it runs an activity of key "a".
            pids = {p.pid: p for p in procs}

            def a_running() -> bool:
                return any(m == "B" and k == "a" for m, k, _, _ in app.journal(journal))

            await asyncio.to_thread(_wait_for, a_running, 30)
            victim = next(pid for m, k, pid, _ in app.journal(journal) if m == "B" and k == "a")
            os.kill(victim, signal.SIGKILL)
            pids[victim].wait(10)
            result = await handle.result()
        finally:
            await client.close()
    finally:
        app.stop(procs)
    assert sorted(result) == sorted(keys)
    entries = app.journal(journal)
    assert {pid for _, _, pid, _ in entries} - {victim}, "the other workers ran activities"
    # At most two of each key between their B and E lines, the killed attempt counted as
    # running from its B on (until the end: stricter than its lease).
    assert app.most_at_once(entries, "a") <= 2
    assert app.most_at_once(entries, "b") <= 2
