"""Prometheus metrics: what a worker reports while it runs real workflows, and the store
gauges, scraped from a registry of the test's own (``generate_latest``) on both stores."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Callable
from datetime import timedelta

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from perdure import ApplicationError, RetryPolicy, Worker, activity, workflow
from perdure.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleIntervalSpec,
    ScheduleSpec,
    WorkflowFailureError,
)
from perdure.contrib.prometheus import PrometheusMetrics
from perdure.testing import WorkflowEnvironment

QUEUE = "metered"
WAIT = 10.0  # real seconds: an upper bound on waiting for an event, never a delay


def scrape(registry: CollectorRegistry) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of the registry, by name and labels, parsed from the exposition text."""
    text = generate_latest(registry).decode()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    """The sum of a metric's samples whose labels include ``labels``."""
    want = set(labels.items())
    return sum(v for (n, lab), v in samples.items() if n == name and want <= lab)


async def until(what: str, predicate: Callable[[], object]) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT
    while not (await predicate() if asyncio.iscoroutinefunction(predicate) else predicate()):
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


FLAKY: dict[str, int] = {}


@activity.defn
async def flaky(key: str) -> str:
    run = activity.info().workflow_run_id
    FLAKY[run] = FLAKY.get(run, 0) + 1
    if FLAKY[run] == 1:
        raise RuntimeError("first attempt fails")
    return key


@workflow.defn
class OneActivity:
    @workflow.run
    async def run(self, key: str) -> str:
        return await workflow.execute_activity(
            flaky,
            key,
            start_to_close_timeout=timedelta(seconds=10),
            retry_policy=RetryPolicy(initial_interval=timedelta(milliseconds=1)),
        )


@workflow.defn
class Fails:
    @workflow.run
    async def run(self) -> None:
        raise ApplicationError("no", non_retryable=True)


@workflow.defn
class Continues:
    @workflow.run
    async def run(self, left: int) -> int:
        if left:
            workflow.continue_as_new(left - 1)
        return left


@workflow.defn
class Waits:
    @workflow.run
    async def run(self) -> None:
        await workflow.wait_condition(lambda: False)


@workflow.defn
class Stuck:
    @workflow.run
    async def run(self) -> None:
        raise RuntimeError("a bug: the workflow task fails, the run stays open")


@workflow.defn
class Sleeper:
    @workflow.run
    async def run(self) -> None:
        await workflow.sleep(timedelta(days=1))


async def test_a_worker_reports_temporal_sdk_metrics_and_the_store_gauges(db_url: str) -> None:
    registry = CollectorRegistry()
    metrics = PrometheusMetrics(registry)
    env = await WorkflowEnvironment.start_time_skipping(url=db_url)
    try:
        client = env.client
        async with Worker(
            client,
            task_queue=QUEUE,
            workflows=[OneActivity, Fails, Continues, Waits, Stuck, Sleeper],
            activities=[flaky],
            metrics=metrics,
            max_concurrent_activities=7,
        ):
            for i in range(3):
                assert (
                    await client.execute_workflow(
                        OneActivity.run, f"k{i}", id=f"one-{i}", task_queue=QUEUE
                    )
                    == f"k{i}"
                )
            with pytest.raises(WorkflowFailureError):
                await client.execute_workflow(Fails.run, id="fails", task_queue=QUEUE)
            assert await client.execute_workflow(Continues.run, 2, id="cont", task_queue=QUEUE) == 0
            waits = await client.start_workflow(Waits.run, id="waits", task_queue=QUEUE)
            await waits.cancel()
            with pytest.raises(WorkflowFailureError):
                await waits.result()
            # Started, not awaited: no wait moves the virtual clock past the sleeper's timer.
            await client.start_workflow(Stuck.run, id="stuck", task_queue=QUEUE)
            await client.start_workflow(Sleeper.run, id="sleeper", task_queue=QUEUE)
            # A workflow on a queue no worker polls waits in its backlog.
            await client.start_workflow(Sleeper.run, id="waiting", task_queue="nobody")

            await until(
                "the stuck workflow's task to fail",
                lambda: value(scrape(registry), "perdure_workflow_task_execution_failed_total"),
            )

            async def gauged() -> bool:
                await metrics.update_store_gauges()
                s = scrape(registry)
                return (
                    value(s, "perdure_timers_pending") >= 1
                    and value(s, "perdure_workflow_tasks_failing", workflow_type="Stuck") == 1
                )

            await until("the sleeper's timer and the stuck task in the store", gauged)
            s = scrape(registry)
            wf = {"namespace": "default", "task_queue": QUEUE}
            # Temporal's SDK metrics, with the prefix; counters get _total in the exposition.
            assert value(s, "perdure_workflow_completed_total", workflow_type="OneActivity") == 3
            assert value(s, "perdure_workflow_completed_total", workflow_type="Continues") == 1
            assert (
                value(s, "perdure_workflow_continue_as_new_total", workflow_type="Continues") == 2
            )
            assert value(s, "perdure_workflow_failed_total", workflow_type="Fails", **wf) == 1
            assert value(s, "perdure_workflow_canceled_total", workflow_type="Waits") == 1
            assert (
                value(s, "perdure_workflow_endtoend_latency_count", workflow_type="OneActivity")
                == 3
            )
            assert (
                value(s, "perdure_workflow_task_execution_failed_total", workflow_type="Stuck") >= 1
            )
            assert value(s, "perdure_workflow_task_execution_latency_count") >= 3 * 2 + 1 + 3
            assert value(s, "perdure_activity_execution_failed_total", activity_type="flaky") == 3
            assert value(s, "perdure_activity_execution_latency_count", activity_type="flaky") == 6
            assert value(s, "perdure_activity_schedule_to_start_latency_count") == 6
            assert value(s, "perdure_sticky_cache_hit_total", workflow_type="OneActivity") >= 3
            assert value(s, "perdure_sticky_cache_miss_total") >= 1
            assert value(s, "perdure_sticky_cache_size", **wf) >= 1
            slots = {"worker_type": "ActivityWorker", **wf}
            assert value(s, "perdure_worker_task_slots_available", **slots) == 7
            assert value(s, "perdure_worker_task_slots_used", **slots) == 0
            assert (
                value(s, "perdure_worker_task_slots_available", worker_type="WorkflowWorker") >= 1
            )
            # The store gauges.
            assert value(s, "perdure_workflows_open", workflow_type="Stuck") == 1
            assert value(s, "perdure_workflows_open", workflow_type="Sleeper") == 2
            assert value(s, "perdure_workflows_open", workflow_type="OneActivity") == 0
            assert value(s, "perdure_workflow_tasks_failing", workflow_type="Sleeper") == 0
            assert value(s, "perdure_timers_pending") == 1
            waiting = {"task_queue": "nobody", "kind": "workflow"}
            assert value(s, "perdure_task_queue_backlog", **waiting) == 1
            assert value(s, "perdure_task_queue_backlog_age_seconds", **waiting) >= 0
        # A stopped worker no longer reports its slots.
        s = scrape(registry)
        assert value(s, "perdure_worker_task_slots_available") == 0
    finally:
        await env.shutdown()


async def test_schedule_lag_is_how_late_the_most_overdue_schedule_is(db_url: str) -> None:
    registry = CollectorRegistry()
    metrics = PrometheusMetrics(registry)
    env = await WorkflowEnvironment.start_time_skipping(url=db_url)
    try:
        client = env.client
        await client.create_schedule(
            "hourly",
            Schedule(
                action=ScheduleActionStartWorkflow("Sleeper", id="s", task_queue=QUEUE),
                spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=timedelta(hours=1))]),
            ),
        )
        gauges = await client.store.gauges()
        first = gauges.schedule_due_since["default"]
        assert first > gauges.now  # not due yet: no lag
        await metrics.update_store_gauges(client.store.gauges)
        assert value(scrape(registry), "perdure_schedule_lag_seconds", namespace="default") == 0
        # No worker runs the schedules: time passes, the schedule falls behind.
        with_clock = client.store.clock
        with_clock.advance_to(first + 90)  # type: ignore[attr-defined]
        await metrics.update_store_gauges(client.store.gauges)
        lag = value(scrape(registry), "perdure_schedule_lag_seconds", namespace="default")
        assert lag == pytest.approx(90, abs=1)
    finally:
        await env.shutdown()


def test_one_registry_takes_one_perdure_metrics() -> None:
    registry = CollectorRegistry()
    PrometheusMetrics(registry)
    with pytest.raises(ValueError, match="one PrometheusMetrics per registry"):
        PrometheusMetrics(registry)


async def test_client_metrics_are_the_default_of_its_workers(tmp_path: object) -> None:
    registry = CollectorRegistry()
    metrics = PrometheusMetrics(registry)
    client = await Client.connect("sqlite://:memory:", metrics=metrics)
    try:
        assert client.config()["metrics"] is metrics
        async with Worker(client, task_queue=QUEUE, workflows=[Continues]):
            assert await client.execute_workflow(Continues.run, 0, id="c", task_queue=QUEUE) == 0
        assert value(scrape(registry), "perdure_workflow_completed_total") == 1
    finally:
        await client.close()


def test_import_perdure_does_not_import_prometheus_client() -> None:
    code = (
        "import sys, perdure, perdure.worker, perdure.client; "
        "assert 'prometheus_client' not in sys.modules, 'imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
