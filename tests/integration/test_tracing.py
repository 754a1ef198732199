"""perdure.contrib.opentelemetry: one trace from the client's call through the workflow, its
activity and its child, with Temporal's span names; replay adds no span, in one process or
when a second worker process takes over from a killed one."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from tracing_app import TASK_QUEUE, Order, Ship, charge, span_record

from perdure import Client, Worker
from perdure._common.events import EventType
from perdure.client import WithStartWorkflowOperation
from perdure.common import WorkflowIDConflictPolicy
from perdure.contrib.opentelemetry import TracingInterceptor
from perdure.testing import WorkflowEnvironment

APP = Path(__file__).with_name("tracing_app.py")

WORKFLOW_SPANS = [
    "StartWorkflow:Order",
    "RunWorkflow:Order",
    "StartActivity:charge",
    "RunActivity:charge",
    "SignalWorkflow:approve",
    "HandleSignal:approve",
    "StartChildWorkflow:Ship",
    "RunWorkflow:Ship",
    "CompleteWorkflow:Ship",
    "CompleteWorkflow:Order",
]


def _tracing() -> tuple[InMemorySpanExporter, TracingInterceptor]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return exporter, TracingInterceptor(provider.get_tracer("test"))


def _by_name(spans: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    counts = Counter(s["name"] for s in spans)
    assert all(n == 1 for n in counts.values()), counts  # no span twice
    return {s["name"]: s for s in spans}


def _check_one_trace(spans: dict[str, dict[str, Any]]) -> None:
    assert set(WORKFLOW_SPANS) <= set(spans)
    start = spans["StartWorkflow:Order"]
    assert {spans[n]["trace_id"] for n in WORKFLOW_SPANS} == {start["trace_id"]}
    parent = {n: spans[n]["parent_id"] for n in WORKFLOW_SPANS}
    assert parent["RunWorkflow:Order"] == start["span_id"]
    assert parent["StartActivity:charge"] == start["span_id"]
    assert parent["RunActivity:charge"] == spans["StartActivity:charge"]["span_id"]
    assert parent["HandleSignal:approve"] == start["span_id"]
    assert spans["HandleSignal:approve"]["links"] == [spans["SignalWorkflow:approve"]["span_id"]]
    assert parent["StartChildWorkflow:Ship"] == start["span_id"]
    assert parent["RunWorkflow:Ship"] == spans["StartChildWorkflow:Ship"]["span_id"]
    assert parent["CompleteWorkflow:Ship"] == spans["StartChildWorkflow:Ship"]["span_id"]
    assert parent["CompleteWorkflow:Order"] == start["span_id"]


@pytest.mark.parametrize("cached", [True, False], ids=["cached", "replayed-every-task"])
async def test_one_trace_through_workflow_activity_and_child(
    env: WorkflowEnvironment, cached: bool
) -> None:
    exporter, tracing = _tracing()
    client = Client(**{**env.client.config(), "interceptors": [tracing]})
    async with Worker(
        client,
        task_queue=TASK_QUEUE,
        workflows=[Order, Ship],
        activities=[charge],
        max_cached_workflows=1000 if cached else 0,  # 0: every task rebuilt by replay
    ):
        with tracing.tracer.start_as_current_span("test"):
            handle = await client.start_workflow(Order.run, "tea", id="o", task_queue=TASK_QUEUE)
            assert await handle.query(Order.status) in ("new", "charged tea")
            await handle.signal(Order.approve)
            assert await handle.result() == "shipped (charged tea)"
    spans = _by_name([span_record(s) for s in exporter.get_finished_spans()])
    _check_one_trace(spans)
    query = spans["QueryWorkflow:status"]
    assert spans["HandleQuery:status"]["parent_id"] == query["span_id"]


async def test_update_with_start_is_one_trace(env: WorkflowEnvironment) -> None:
    exporter, tracing = _tracing()
    client = Client(**{**env.client.config(), "interceptors": [tracing]})
    async with Worker(client, task_queue=TASK_QUEUE, workflows=[Order, Ship], activities=[charge]):
        start = WithStartWorkflowOperation(
            Order.run,
            "tea",
            id="uws",
            task_queue=TASK_QUEUE,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        )
        noted = await client.execute_update_with_start_workflow(
            Order.note, "hi", start_workflow_operation=start
        )
        assert noted == "noted hi"
        await (await start.workflow_handle()).terminate()
    spans = _by_name([span_record(s) for s in exporter.get_finished_spans()])
    start_span = spans["StartUpdateWithStartWorkflow:Order"]
    assert spans["RunWorkflow:Order"]["parent_id"] == start_span["span_id"]
    assert spans["HandleUpdate:note"]["parent_id"] == start_span["span_id"]
    assert spans["HandleUpdate:note"]["links"] == [start_span["span_id"]]


@pytest.mark.realtime
@pytest.mark.timeout(60)
async def test_one_trace_across_processes_and_a_killed_worker(db_url: str, tmp_path: Path) -> None:
    exporter, tracing = _tracing()
    spans_file = tmp_path / "spans.jsonl"
    proc = _spawn_worker(db_url, spans_file)
    try:
        client = await Client.connect(db_url, interceptors=[tracing])
        with tracing.tracer.start_as_current_span("test"):
            handle = await client.start_workflow(Order.run, "tea", id="o", task_queue=TASK_QUEUE)
            # The other process runs the first tasks and the activity, then the workflow
            # waits for the signal: kill that worker there.
            while not await _waiting_for_signal(handle):
                assert proc.poll() is None, "the worker process died"
                await asyncio.sleep(0.05)
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
            # A worker here takes over: it replays what the other did, then goes on.
            async with Worker(
                client, task_queue=TASK_QUEUE, workflows=[Order, Ship], activities=[charge]
            ):
                await handle.signal(Order.approve)
                assert await handle.result() == "shipped (charged tea)"
        await client.close()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    theirs = [json.loads(line) for line in spans_file.read_text().splitlines()]
    ours = [span_record(s) for s in exporter.get_finished_spans()]
    assert {s["name"] for s in theirs} == {
        "RunWorkflow:Order",
        "StartActivity:charge",
        "RunActivity:charge",
    }
    _check_one_trace(_by_name(theirs + [s for s in ours if s["name"] != "test"]))


def _spawn_worker(db_url: str, spans_file: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(APP.parent)}
    return subprocess.Popen([sys.executable, str(APP), db_url, str(spans_file)], env=env)


async def _waiting_for_signal(handle: Any) -> bool:
    """The activity's result has been seen by a completed workflow task."""
    events = (await handle.fetch_history()).events
    kinds = [e.event_type for e in events]
    if EventType.ACTIVITY_TASK_COMPLETED not in kinds:
        return False
    done = kinds.index(EventType.ACTIVITY_TASK_COMPLETED)
    return EventType.WORKFLOW_TASK_COMPLETED in kinds[done:]
