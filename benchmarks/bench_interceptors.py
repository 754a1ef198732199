"""What interceptors cost the workflow runtime: the CPU time to replay one workflow's history
of N sequential activities (every activity goes through the outbound chain, every result
back into the run), with no interceptor, a pass-through one, and the OpenTelemetry
``TracingInterceptor`` (which makes no span on replay).

Run it::

    python benchmarks/bench_interceptors.py               # 1,000 activities, 15 replays each
    python benchmarks/bench_interceptors.py --activities 100 --runs 3   # a smoke run

Replay is the runtime with no database, so the figure is the interceptors' own cost; in a
worker each workflow task also pays a commit (milliseconds), next to which it is small.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from datetime import timedelta
from typing import Any

from perdure import Worker, activity, workflow
from perdure.client import WorkflowHistory
from perdure.testing import WorkflowEnvironment
from perdure.worker import (
    Interceptor,
    Replayer,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
    WorkflowOutboundInterceptor,
)


@activity.defn
async def step(i: int) -> int:
    return i


@workflow.defn
class Steps:
    @workflow.run
    async def run(self, n: int) -> int:
        total = 0
        for i in range(n):
            total += await workflow.execute_activity(
                step, i, start_to_close_timeout=timedelta(seconds=5)
            )
        return total


class _PassIn(WorkflowInboundInterceptor):
    def init(self, outbound: WorkflowOutboundInterceptor) -> None:
        super().init(WorkflowOutboundInterceptor(outbound))


class PassThrough(Interceptor):
    def workflow_interceptor_class(
        self, input: WorkflowInterceptorClassInput
    ) -> type[WorkflowInboundInterceptor]:
        return _PassIn


async def _history(activities: int) -> WorkflowHistory:
    env = await WorkflowEnvironment.start_time_skipping()
    async with env, Worker(env.client, task_queue="q", workflows=[Steps], activities=[step]):
        handle = await env.client.start_workflow(Steps.run, activities, id="steps", task_queue="q")
        await handle.result()
        return await handle.fetch_history()


async def main(args: argparse.Namespace) -> None:
    history = await _history(args.activities)
    cases: list[tuple[str, list[Any]]] = [("no interceptor", []), ("pass-through", [PassThrough()])]
    try:
        from perdure.contrib.opentelemetry import TracingInterceptor

        cases.append(("TracingInterceptor", [TracingInterceptor()]))
    except ImportError:
        print("(opentelemetry-api is not installed: no TracingInterceptor case)")
    print(f"replay of a {args.activities:,}-activity history, median of {args.runs} (CPU ms)")
    for label, interceptors in cases:
        replayer = Replayer(workflows=[Steps], interceptors=interceptors)
        await replayer.replay_workflow(history)  # warm
        times = []
        for _ in range(args.runs):
            began = time.process_time()
            await replayer.replay_workflow(history)
            times.append((time.process_time() - began) * 1000)
        median = statistics.median(times)
        per = median * 1000 / args.activities
        print(f"  {label:<20} {median:8.1f} ms   {per:6.1f} µs per activity")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--activities", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=15)
    asyncio.run(main(parser.parse_args()))
