"""The benchmark's workflows and activities in Temporal's Python SDK, written as its samples
write them. A module of their own: Temporal's sandbox re-imports a workflow's module for every
run, so it imports nothing but the SDK."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

from temporalio import activity, workflow

# common.ACTIVITY_TIMEOUT_S, S5_SLEEP_S (not imported: the sandbox would re-import the harness)
TIMEOUT = timedelta(seconds=10)
S5_SLEEP_S = 1.0


@activity.defn
async def noop(i: int) -> int:
    return i


@activity.defn
async def timed_step(i: int) -> float:
    return time.perf_counter()


@workflow.defn
class OneActivity:
    @workflow.run
    async def run(self, i: int) -> int:
        return await workflow.execute_activity(noop, i, start_to_close_timeout=TIMEOUT)


@workflow.defn
class ThreeActivities:
    @workflow.run
    async def run(self, i: int) -> int:
        for _ in range(3):
            i = await workflow.execute_activity(noop, i, start_to_close_timeout=TIMEOUT)
        return i


@workflow.defn
class ManySteps:
    @workflow.run
    async def run(self, steps: int) -> list[float]:
        times = []
        for i in range(steps):
            times.append(
                await workflow.execute_activity(timed_step, i, start_to_close_timeout=TIMEOUT)
            )
        return times


@workflow.defn
class Sleeper:
    @workflow.run
    async def run(self, seconds: float) -> int:
        await asyncio.sleep(seconds)
        return 0


@workflow.defn
class Recoverable:
    @workflow.run
    async def run(self, i: int) -> int:
        i = await workflow.execute_activity(noop, i, start_to_close_timeout=TIMEOUT)
        await asyncio.sleep(S5_SLEEP_S)
        return await workflow.execute_activity(noop, i, start_to_close_timeout=TIMEOUT)


@workflow.defn
class WaitsForSignal:
    def __init__(self) -> None:
        self.released = False

    @workflow.signal
    def release(self) -> None:
        self.released = True

    @workflow.run
    async def run(self, i: int) -> int:
        await workflow.wait_condition(lambda: self.released)
        return i


WORKFLOWS = [OneActivity, ThreeActivities, ManySteps, Sleeper, Recoverable, WaitsForSignal]
ACTIVITIES = [noop, timed_step]
