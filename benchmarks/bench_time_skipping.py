"""How long the time-skipping test environment takes, in real time, to run a workflow that
waits 90 days and sends 4 reminders on the way (issue 5's target: well under a second).

    python benchmarks/bench_time_skipping.py [--runs N]

Prints each run's wall time (environment start to shutdown) and the median.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from datetime import timedelta

from perdure import Worker, activity, workflow
from perdure.testing import WorkflowEnvironment


@activity.defn
async def send_reminder(day: int) -> int:
    return day


@workflow.defn
class Subscription:
    @workflow.run
    async def run(self) -> int:
        sent = 0
        for day in (18, 36, 54, 72):
            await workflow.sleep(timedelta(days=18))
            sent += (
                await workflow.execute_activity(
                    send_reminder, day, start_to_close_timeout=timedelta(seconds=30)
                )
                and 1
            )
        await workflow.sleep(timedelta(days=18))
        return sent


async def one_run() -> float:
    started = time.perf_counter()
    async with (
        await WorkflowEnvironment.start_time_skipping() as env,
        Worker(env.client, task_queue="q", workflows=[Subscription], activities=[send_reminder]),
    ):
        sent = await env.client.execute_workflow(Subscription.run, id="s", task_queue="q")
    assert sent == 4
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    times = [asyncio.run(one_run()) for _ in range(args.runs)]
    for i, t in enumerate(times, 1):
        print(f"run {i}: {t * 1000:.1f} ms")
    print(f"90 days, 4 reminders, time-skipping: median {statistics.median(times) * 1000:.1f} ms")


if __name__ == "__main__":
    main()
