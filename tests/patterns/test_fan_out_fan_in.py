"""perdure.patterns fan-out: map_activity, map_child_workflows and map_concurrently return
every item's outcome in input order within their concurrency bound, collect failures or stop
at the first; map_activity_in_batches splits a range into a tree of FanOutBatch children
whose histories stay bounded (continuing as new when told), and reports counts and failures.
Every history the tests make replays."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta

import pytest

from perdure import (
    ApplicationError,
    CancelledError,
    Client,
    FailureError,
    RetryPolicy,
    Worker,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    activity,
    workflow,
)
from perdure.client import WorkflowExecution, WorkflowHistory
from perdure.patterns import (
    FanOutBatch,
    FanOutResult,
    FanOutSummary,
    ItemStatus,
    map_activity,
    map_activity_in_batches,
    map_child_workflows,
    map_concurrently,
)
from perdure.testing import WorkflowEnvironment
from perdure.worker import Replayer

QUEUE = "fan-out"
WAIT = 10.0  # real seconds: a bound on waiting for something to happen, never a delay
LONG = timedelta(hours=1)
RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_attempts=3)


class Probe:
    """What the activities did, shared with the test (same process, same event loop)."""

    def __init__(self) -> None:
        self.started: list[int] = []
        self.done: list[int] = []
        self.running = 0
        self.peak = 0
        self.block: set[int] = set()  # items that wait until the test opens their gate
        self.fail: set[int] = set()  # items that fail for good
        self.flaky: set[int] = set()  # items whose first attempt fails
        self.gates: dict[int, asyncio.Event] = {}
        self.changed = asyncio.Event()

    def gate(self, item: int) -> asyncio.Event:
        return self.gates.setdefault(item, asyncio.Event())

    def open_all(self) -> None:
        for item in self.block:
            self.gate(item).set()

    async def wait_for(self, condition: Callable[[], bool]) -> None:
        while not condition():
            self.changed.clear()
            await asyncio.wait_for(self.changed.wait(), WAIT)


PROBE = Probe()


@pytest.fixture(autouse=True)
def fresh_probe() -> Probe:
    global PROBE
    PROBE = Probe()
    return PROBE


async def _work(item: int) -> None:
    probe = PROBE
    probe.started.append(item)
    probe.running += 1
    probe.peak = max(probe.peak, probe.running)
    probe.changed.set()
    try:
        if item in probe.block:
            await probe.gate(item).wait()
        if item in probe.fail:
            raise ApplicationError(f"item {item} is bad", type="BadItem", non_retryable=True)
        if item in probe.flaky and activity.info().attempt == 1:
            raise ConnectionError("flaky storage")
        probe.done.append(item)
    finally:
        probe.running -= 1
        probe.changed.set()


@activity.defn
async def power(exponent: int, item: int) -> int:
    await _work(item)
    return int(item**exponent)


@activity.defn
async def record(item: int) -> None:
    await _work(item)


# ---------------------------------------------------------------------------------------------
# Workflows under test. Outcomes are reported as plain rows (errors are not payloads).
# ---------------------------------------------------------------------------------------------


@dataclass
class Row:
    index: int
    status: str
    value: int | None
    error: str | None


@dataclass
class MapReport:
    rows: list[Row]
    ok: bool
    failed: list[int]
    raised: str | None  # what values() raised


def describe(err: BaseException | None) -> str | None:
    if err is None:
        return None
    cause = getattr(err, "cause", None) or err
    kind = getattr(cause, "type", None) or type(cause).__name__
    return f"{type(err).__name__}: {kind}: {cause}"


def report(result: FanOutResult[int]) -> MapReport:
    raised = None
    try:
        result.values()
    except FailureError as err:
        raised = describe(err)
    return MapReport(
        [Row(o.index, o.status.value, o.value, describe(o.error)) for o in result.outcomes],
        result.ok,
        [o.index for o in result.failures],
        raised,
    )


@dataclass
class MapJob:
    items: list[int]
    max_concurrency: int = 100
    fail_fast: bool = False
    custom_ids: bool = False


@workflow.defn
class MapItems:
    @workflow.run
    async def run(self, job: MapJob) -> MapReport:
        result = await map_activity(
            power,
            job.items,
            args=[2],
            max_concurrency=job.max_concurrency,
            fail_fast=job.fail_fast,
            start_to_close_timeout=LONG,
            retry_policy=RETRY,
        )
        return report(result)


@workflow.defn
class Square:
    @workflow.run
    async def run(self, item: int) -> int:
        await workflow.sleep(timedelta(minutes=1) if item == 1 else timedelta(days=item))
        if item in (1, 4):
            raise ApplicationError(f"child {item} is bad", type="BadChild")
        return item * item


@workflow.defn
class MapChildren:
    @workflow.run
    async def run(self, job: MapJob) -> MapReport:
        result = await map_child_workflows(
            Square.run,
            job.items,
            id=(lambda i, item: f"square-{item}") if job.custom_ids else None,
            max_concurrency=job.max_concurrency,
            fail_fast=job.fail_fast,
        )
        return report(result)


@workflow.defn
class MapSteps:
    """map_concurrently over workflow code of several steps: a timer, then an activity."""

    @workflow.run
    async def run(self, job: MapJob) -> MapReport:
        async def step(item: int) -> int:
            if item < 0:
                raise KeyError(item)  # a bug: fails the workflow task, not the item
            if item > 100:
                raise ApplicationError(f"{item} is too large")  # before any await
            await workflow.sleep(timedelta(minutes=10 - item))
            value: int = await workflow.execute_activity(
                power, args=[3, item], start_to_close_timeout=LONG
            )
            return value

        result = await map_concurrently(
            step, job.items, max_concurrency=job.max_concurrency, fail_fast=job.fail_fast
        )
        return report(result)


@dataclass
class BatchedJob:
    start: int
    stop: int
    step: int = 1
    batch_size: int = 1000
    max_children: int = 100
    max_concurrency: int = 100
    max_concurrent_children: int = 10
    fail_fast: bool = False
    max_failures: int = 100
    continue_as_new_after: int | None = None


@workflow.defn
class Batched:
    @workflow.run
    async def run(self, job: BatchedJob) -> FanOutSummary:
        return await map_activity_in_batches(
            record,
            range(job.start, job.stop, job.step),
            batch_size=job.batch_size,
            max_children=job.max_children,
            max_concurrency=job.max_concurrency,
            max_concurrent_children=job.max_concurrent_children,
            fail_fast=job.fail_fast,
            max_failures=job.max_failures,
            continue_as_new_after=job.continue_as_new_after,
            id_prefix="tree",
            start_to_close_timeout=LONG,
            retry_policy=RETRY,
        )


WORKFLOWS = [MapItems, Square, MapChildren, MapSteps, Batched, FanOutBatch]


@asynccontextmanager
async def running() -> AsyncIterator[Client]:
    """A time-skipping environment with a worker; every history replays at the end."""
    async with await WorkflowEnvironment.start_time_skipping() as env:
        try:
            async with Worker(
                env.client, task_queue=QUEUE, workflows=WORKFLOWS, activities=[power, record]
            ):
                yield env.client
                PROBE.open_all()  # let activities abandoned by a cancellation end
        finally:
            PROBE.open_all()
        await assert_all_replay(env.client)


async def assert_all_replay(client: Client) -> None:
    replayer = Replayer(workflows=WORKFLOWS)
    replayed = 0
    async for history in client.list_workflows("ExecutionStatus != 'Running'").map_histories():
        stored = WorkflowHistory.from_json(None, history.to_json())
        await replayer.replay_workflow(stored)
        replayed += 1
    assert replayed > 0


async def runs(client: Client, query: str | None = None) -> list[WorkflowExecution]:
    return [wf async for wf in client.list_workflows(query)]


def max_in_flight(history: WorkflowHistory, start: str, ends: set[str]) -> int:
    """The most operations of a kind open at once, read from a history."""
    open_now = peak = 0
    for event in history.events:
        kind = str(event.event_type)
        if kind == start:
            open_now += 1
            peak = max(peak, open_now)
        elif kind in ends:
            open_now -= 1
    return peak


ACTIVITY_ENDS = {"ActivityTaskCompleted", "ActivityTaskFailed", "ActivityTaskCanceled"}
CHILD_ENDS = {
    "ChildWorkflowExecutionCompleted",
    "ChildWorkflowExecutionFailed",
    "ChildWorkflowExecutionCanceled",
    "ChildWorkflowExecutionTerminated",
    "ChildWorkflowExecutionTimedOut",
}


def count(history: WorkflowHistory, kind: str) -> int:
    return sum(1 for e in history.events if str(e.event_type) == kind)


# ---------------------------------------------------------------------------------------------
# map_activity
# ---------------------------------------------------------------------------------------------


async def test_results_come_in_input_order_and_the_bound_holds() -> None:
    probe = PROBE
    items = list(range(10))
    probe.block = set(items)
    async with running() as client:
        handle = await client.start_workflow(
            MapItems.run, MapJob(items, max_concurrency=3), id="map", task_queue=QUEUE
        )
        # Let the newest running item finish each time, so they finish out of order; each
        # time, exactly as many run as the bound allows, never more.
        released: list[int] = []
        while len(released) < len(items):
            expected = min(3, len(items) - len(released))
            await probe.wait_for(
                lambda n=expected: len(probe.done) == len(released) and probe.running == n
            )
            newest = next(i for i in reversed(probe.started) if i not in released)
            released.append(newest)
            probe.gate(newest).set()
        result = await handle.result()
        history = await handle.fetch_history()

    assert probe.done == [2, 3, 4, 5, 6, 7, 8, 9, 1, 0]
    assert probe.started == items  # started in input order
    assert probe.peak == 3
    assert [r.value for r in result.rows] == [i * i for i in items]
    assert {r.status for r in result.rows} == {"completed"}
    assert result.ok and result.raised is None
    assert max_in_flight(history, "ActivityTaskScheduled", ACTIVITY_ENDS) == 3
    # About 3 events per item: scheduled, started, completed.
    assert count(history, "ActivityTaskScheduled") == count(history, "ActivityTaskCompleted")
    assert 3 * len(items) < len(history.events) <= 4 * len(items) + 3


async def test_failed_items_are_collected_and_the_others_go_on() -> None:
    probe = PROBE
    probe.fail = {2, 5}
    probe.flaky = {3}
    async with running() as client:
        result = await client.execute_workflow(
            MapItems.run, MapJob(list(range(8)), max_concurrency=2), id="m", task_queue=QUEUE
        )

    assert [r.status for r in result.rows] == [
        "completed",
        "completed",
        "failed",
        "completed",  # failed once, then its retry succeeded
        "completed",
        "failed",
        "completed",
        "completed",
    ]
    assert [r.value for r in result.rows] == [0, 1, None, 9, 16, None, 36, 49]
    assert result.rows[2].error == "ActivityError: BadItem: item 2 is bad"
    assert result.failed == [2, 5]
    assert not result.ok
    assert result.raised == "ActivityError: BadItem: item 2 is bad"  # the first failure
    assert sorted(probe.done) == [0, 1, 3, 4, 6, 7]


async def test_fail_fast_cancels_the_running_items_and_starts_no_more() -> None:
    probe = PROBE
    probe.block = {0, 2}
    probe.fail = {1}
    async with running() as client:
        handle = await client.start_workflow(
            MapItems.run,
            MapJob(list(range(10)), max_concurrency=3, fail_fast=True),
            id="ff",
            task_queue=QUEUE,
        )
        result = await handle.result()
        history = await handle.fetch_history()

    statuses = [r.status for r in result.rows]
    cancelled, failed = ItemStatus.CANCELLED, ItemStatus.FAILED
    assert statuses == [cancelled, failed, cancelled] + [ItemStatus.NOT_STARTED] * 7
    assert result.raised == "ActivityError: BadItem: item 1 is bad"
    assert result.failed == [1]
    assert count(history, "ActivityTaskScheduled") == 3
    assert count(history, "ActivityTaskCancelRequested") == 2
    assert set(probe.started) <= {0, 1, 2}


async def test_cancelling_the_workflow_cancels_its_items() -> None:
    probe = PROBE
    probe.block = set(range(6))
    async with running() as client:
        handle = await client.start_workflow(
            MapItems.run, MapJob(list(range(6)), max_concurrency=2), id="c", task_queue=QUEUE
        )
        await probe.wait_for(lambda: probe.running == 2)
        await handle.cancel()
        with pytest.raises(WorkflowFailureError) as failure:
            await handle.result()
        history = await handle.fetch_history()
        status = (await handle.describe()).status

    assert isinstance(failure.value.cause, CancelledError)
    assert status == WorkflowExecutionStatus.CANCELED
    assert count(history, "ActivityTaskScheduled") == 2  # nothing started after the cancel
    assert count(history, "ActivityTaskCancelRequested") == 2


# ---------------------------------------------------------------------------------------------
# map_concurrently and map_child_workflows
# ---------------------------------------------------------------------------------------------


async def test_map_concurrently_runs_any_workflow_code_within_the_bound() -> None:
    async with running() as client:
        handle = await client.start_workflow(
            MapSteps.run, MapJob(list(range(6)), max_concurrency=2), id="s", task_queue=QUEUE
        )
        result = await handle.result()
        history = await handle.fetch_history()

    assert [r.value for r in result.rows] == [i**3 for i in range(6)]
    assert max_in_flight(history, "TimerStarted", {"TimerFired"}) == 2
    assert count(history, "TimerStarted") == 6


async def test_fail_fast_stops_lanes_that_have_not_started_yet() -> None:
    # The first item fails before the other lanes have run at all: they start nothing.
    async with running() as client:
        result = await client.execute_workflow(
            MapSteps.run,
            MapJob([101, 1, 2, 3], max_concurrency=3, fail_fast=True),
            id="early",
            task_queue=QUEUE,
        )

    assert [r.status for r in result.rows] == ["failed"] + ["not_started"] * 3
    assert result.raised == "ApplicationError: ApplicationError: 101 is too large"


async def test_a_bug_in_an_item_fails_the_workflow_task_not_the_item() -> None:
    async with running() as client:
        handle = await client.start_workflow(
            MapSteps.run, MapJob([1, -1, 2]), id="bug", task_queue=QUEUE
        )
        for _ in range(200):
            described = await handle.describe()
            if described.last_workflow_task_failure is not None:
                break
            await asyncio.sleep(0.05)
        await handle.terminate("the test saw the task failure")

    failure = described.last_workflow_task_failure
    assert failure is not None and failure.type == "KeyError"
    assert described.status == WorkflowExecutionStatus.RUNNING


async def test_child_workflows_results_failures_ids_and_bound() -> None:
    async with running() as client:
        handle = await client.start_workflow(
            MapChildren.run,
            MapJob([5, 2, 4, 3], max_concurrency=2, custom_ids=True),
            id="kids",
            task_queue=QUEUE,
        )
        result = await handle.result()
        history = await handle.fetch_history()
        children = {wf.id: wf.status for wf in await runs(client, "WorkflowType = 'Square'")}

    assert [r.value for r in result.rows] == [25, 4, None, 9]
    assert result.failed == [2]
    assert result.rows[2].error == "ChildWorkflowError: BadChild: child 4 is bad"
    assert max_in_flight(history, "StartChildWorkflowExecutionInitiated", CHILD_ENDS) == 2
    assert children == {
        "square-5": WorkflowExecutionStatus.COMPLETED,
        "square-2": WorkflowExecutionStatus.COMPLETED,
        "square-4": WorkflowExecutionStatus.FAILED,
        "square-3": WorkflowExecutionStatus.COMPLETED,
    }


async def test_child_workflows_fail_fast_cancels_the_running_children() -> None:
    async with running() as client:
        result = await client.execute_workflow(
            MapChildren.run,
            MapJob([2, 1, 3, 5], max_concurrency=3, fail_fast=True),
            id="kids",
            task_queue=QUEUE,
        )
        children = {wf.id: wf.status for wf in await runs(client, "WorkflowType = 'Square'")}

    assert [r.status for r in result.rows] == ["cancelled", "failed", "cancelled", "not_started"]
    assert result.raised == "ChildWorkflowError: BadChild: child 1 is bad"
    # Default ids: "<parent id>-<child type>-<index>".
    assert children == {
        "kids-Square-0": WorkflowExecutionStatus.CANCELED,
        "kids-Square-1": WorkflowExecutionStatus.FAILED,
        "kids-Square-2": WorkflowExecutionStatus.CANCELED,
    }


async def test_bad_arguments_are_refused_before_anything_starts() -> None:
    with pytest.raises(ValueError, match="start_to_close_timeout"):
        await map_activity(power, [1])
    with pytest.raises(ValueError, match="max_concurrency"):
        await map_concurrently(asyncio.sleep, [1], max_concurrency=0)
    with pytest.raises(ValueError, match="batch_size"):
        await map_activity_in_batches(record, 10, batch_size=0, start_to_close_timeout=LONG)
    with pytest.raises(ValueError, match="max_children"):
        await map_activity_in_batches(record, 10, max_children=1, start_to_close_timeout=LONG)


# ---------------------------------------------------------------------------------------------
# map_activity_in_batches
# ---------------------------------------------------------------------------------------------


async def test_batches_form_a_tree_with_bounded_histories() -> None:
    probe = PROBE
    job = BatchedJob(0, 50, batch_size=5, max_children=3, max_concurrent_children=2)
    async with running() as client:
        handle = await client.start_workflow(Batched.run, job, id="root", task_queue=QUEUE)
        summary = await handle.result()
        root = await handle.fetch_history()
        tree = await runs(client, "WorkflowType = 'FanOutBatch'")
        histories = {
            h.workflow_id: h
            async for h in client.list_workflows("WorkflowType = 'FanOutBatch'").map_histories()
        }

    assert sorted(probe.done) == list(range(50))  # every item once
    assert summary == FanOutSummary(
        total=50, succeeded=50, workflow_runs=14, max_history_length=summary.max_history_length
    )
    assert summary.ok
    # 50 items, leaves of 5, at most 3 children a node: the root takes 2 children (45 and 5
    # items); the one of 45 splits into 3 of 15, each into 3 leaves of 5.
    leaves = {f"tree/{lo}-{lo + 5}" for lo in range(0, 45, 5)}
    assert {wf.id for wf in tree} == {
        "tree/0-45",
        "tree/45-50",
        "tree/0-15",
        "tree/15-30",
        "tree/30-45",
        *leaves,
    }
    assert all(count(histories[i], "ActivityTaskScheduled") == 5 for i in leaves)
    assert count(histories["tree/0-45"], "StartChildWorkflowExecutionInitiated") == 3
    assert count(root, "StartChildWorkflowExecutionInitiated") == 2
    assert count(root, "ActivityTaskScheduled") == 0
    for h in histories.values():
        assert max_in_flight(h, "StartChildWorkflowExecutionInitiated", CHILD_ENDS) <= 2
    assert summary.max_history_length == max(wf.history_length for wf in tree)
    assert {wf.status for wf in tree} == {WorkflowExecutionStatus.COMPLETED}


async def test_batches_report_failures_of_items_and_of_whole_batches() -> None:
    probe = PROBE
    # Items 100, 102, ..., 158: three leaves of 10. One leaf is terminated while it runs.
    probe.fail = {104, 120}
    probe.block = set(range(140, 160, 2))
    job = BatchedJob(100, 160, step=2, batch_size=10, max_concurrency=2, max_failures=5)
    async with running() as client:
        handle = await client.start_workflow(Batched.run, job, id="root", task_queue=QUEUE)
        await probe.wait_for(lambda: 140 in probe.started)
        await client.get_workflow_handle("tree/20-30").terminate("operator stopped it")
        summary = await handle.result()

    assert (summary.total, summary.succeeded, summary.failed, summary.not_run) == (30, 18, 12, 0)
    assert [(f.item, f.type) for f in summary.failures] == [
        (104, "BadItem"),
        (120, "BadItem"),
        (140, "TerminatedError"),
        (142, "TerminatedError"),
        (144, "TerminatedError"),
    ]
    assert summary.failures[0].message == "item 104 is bad"
    assert summary.failures[2].message == "batch tree/20-30 failed: operator stopped it"
    assert summary.failures_omitted == 7
    assert not summary.ok


async def test_batches_continue_as_new_to_keep_every_history_short() -> None:
    probe = PROBE
    limit, concurrency = 12, 2
    # 120 items in leaves of 5, at most 10 children a node: the root takes 3 children, of
    # 50, 50 and 20 items; each of 10 leaves (or 4). With a 12-event limit the nodes and the
    # leaves continue as new.
    job = BatchedJob(
        0,
        120,
        batch_size=5,
        max_children=10,
        max_concurrency=concurrency,
        max_concurrent_children=concurrency,
        continue_as_new_after=limit,
    )
    async with running() as client:
        summary = await client.execute_workflow(Batched.run, job, id="root", task_queue=QUEUE)
        tree = await runs(client, "WorkflowType = 'FanOutBatch'")

    assert sorted(probe.done) == list(range(120))  # every item once, across the runs
    assert (summary.total, summary.succeeded, summary.failed) == (120, 120, 0)
    assert summary.workflow_runs == len(tree)
    assert summary.max_history_length == max(wf.history_length for wf in tree)
    continued = {wf.id for wf in tree if wf.status == WorkflowExecutionStatus.CONTINUED_AS_NEW}
    assert {"tree/0-50", "tree/50-100", "tree/0-5"} <= continued
    # A run stops starting work at the limit; what was running finishes (about 4 events an
    # item in flight) and it closes.
    assert all(wf.history_length <= limit + 4 * concurrency + 2 for wf in tree)


async def test_batches_fail_fast_stops_the_whole_tree() -> None:
    probe = PROBE
    probe.fail = {10}
    probe.block = set(range(40)) - {10}
    job = BatchedJob(
        0, 40, batch_size=10, max_concurrency=2, max_concurrent_children=4, fail_fast=True
    )
    async with running() as client:
        summary = await client.execute_workflow(Batched.run, job, id="root", task_queue=QUEUE)
        tree = {wf.id: wf.status for wf in await runs(client, "WorkflowType = 'FanOutBatch'")}

    assert (summary.total, summary.succeeded, summary.failed, summary.not_run) == (40, 0, 1, 39)
    assert [f.item for f in summary.failures] == [10]
    assert tree == {
        "tree/0-10": WorkflowExecutionStatus.CANCELED,
        "tree/10-20": WorkflowExecutionStatus.COMPLETED,  # stopped itself, reporting
        "tree/20-30": WorkflowExecutionStatus.CANCELED,
        "tree/30-40": WorkflowExecutionStatus.CANCELED,
    }
