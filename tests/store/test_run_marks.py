"""A run's marks, which spare its workflow tasks a read each: ``inputs_buffered`` (the
completion looks in the inbox only when it is set, so it must be set whenever the inbox holds
the run's inputs) and ``children_started`` (its close looks for open children only then).
Here: a task signalling its own run (the signal is buffered through another copy of the run,
in the same transaction), a copy read before a mark was set and written after, and a
database migrated with inputs waiting and children running. Both stores."""

from __future__ import annotations

from oldschema import make_old_database
from storerows import start_request

from perdure._common.clock import VirtualClock
from perdure._common.commands import CompleteWorkflow, SignalExternalWorkflow, StartChildWorkflow
from perdure._store import Store, open_store
from perdure._store._effects import Effects
from perdure._store._schema import LATEST_VERSION
from perdure._store._tx import Tx
from perdure.converter import DataConverter

CONV = DataConverter.default.payload_converter


async def event_types(store: Store, run_id: str) -> list[str]:
    return [e.event_type.value for e in await store.get_history(run_id)]


async def test_a_task_signalling_its_own_run_sees_the_signal_next(store: Store) -> None:
    await store.start_workflow(start_request("self"))
    [task] = await store.claim_workflow_tasks("default", "q", "a", 10)
    to_self = SignalExternalWorkflow(1, "self", None, "poke", [CONV.to_payload(1)])
    await store.complete_workflow_task(task, [to_self], "a")
    # The signal was buffered while the task ran, through the run as the signal read it; the
    # completion, holding the run as it read it before, still moved it into history.
    assert (await event_types(store, "run-self"))[-2:] == [
        "ExternalWorkflowExecutionSignaled",
        "WorkflowExecutionSignaled",
    ]
    ex = await store.describe("default", "self", None)
    assert not ex.inputs_buffered
    [seen] = await store.claim_workflow_tasks("default", "q", "a", 10)
    done = CompleteWorkflow(CONV.to_payload("done"))
    assert (await store.complete_workflow_task(seen, [done], "a")).next_event_id is not None


async def test_a_signal_during_a_task_marks_the_run_until_its_completion(store: Store) -> None:
    await store.start_workflow(start_request("wf"))
    [task] = await store.claim_workflow_tasks("default", "q", "a", 10)
    await store.signal("default", "wf", None, "sig", [], "client")
    assert (await store.describe("default", "wf", None)).inputs_buffered
    done = CompleteWorkflow(CONV.to_payload("done"))
    assert (await store.complete_workflow_task(task, [done], "a")).next_event_id is None
    assert not (await store.describe("default", "wf", None)).inputs_buffered
    assert (await event_types(store, "run-wf"))[-1] == "WorkflowExecutionSignaled"


async def _make_old(url: str) -> None:
    """A database of the version before the marks: two runs with a task in flight, one with
    a signal waiting in the inbox, the other with a child running."""
    run = (
        "INSERT INTO executions (run_id, namespace, workflow_id, workflow_type, task_queue, "
        "status, next_event_id, start_time, task_timeout, wft_state, first_run_id, "
        "parent_run_id) VALUES (?, 'default', ?, 'W', 'q', 1, 2, 999999, 10, ?, ?, ?)"
    )
    await make_old_database(
        url,
        LATEST_VERSION - 1,
        [
            (run, ("run-waiting", "waiting", 2, "run-waiting", None)),
            (run, ("run-quiet", "quiet", 2, "run-quiet", None)),
            (run, ("run-child", "child", 1, "run-child", "run-quiet")),
            (
                "INSERT INTO inbox (run_id, event_type, event_time, attributes) VALUES "
                "('run-waiting', 'WorkflowExecutionSignaled', 999999, ?)",
                (b"{}",),
            ),
        ],
    )


async def test_a_migrated_database_marks_inputs_waiting_and_children(db_url: str) -> None:
    await _make_old(db_url)
    store = open_store(db_url, VirtualClock(1_000_000.0))
    try:
        waiting = await store.describe("default", "waiting", None)
        quiet = await store.describe("default", "quiet", None)
        assert (waiting.inputs_buffered, waiting.children_started) == (True, False)
        assert (quiet.inputs_buffered, quiet.children_started) == (False, True)
        _, pending = await store.describe_pending("default", "quiet", None)
        assert [c.workflow_id for c in pending.children] == ["child"]
    finally:
        await store.close()


def child(seq: int, workflow_id: str) -> StartChildWorkflow:
    return StartChildWorkflow(
        seq=seq,
        workflow_id=workflow_id,
        workflow_type="W",
        task_queue="q",
        input=[],
        parent_close_policy=1,  # terminate
        execution_timeout=None,
        run_timeout=None,
        task_timeout=None,
        retry_policy=None,
        id_reuse_policy=1,
        memo=None,
        search_attributes=None,
    )


async def test_a_parent_is_marked_by_its_first_child_and_its_close_ends_them(
    store: Store,
) -> None:
    await store.start_workflow(start_request("parent"))
    [task] = await store.claim_workflow_tasks("default", "q", "a", 10)
    assert not (await store.describe("default", "parent", None)).children_started
    await store.complete_workflow_task(task, [child(1, "kid")], "a")
    assert (await store.describe("default", "parent", None)).children_started
    tasks = await store.claim_workflow_tasks("default", "q", "a", 10)
    [again] = [t for t in tasks if t.workflow_id == "parent"]
    done = CompleteWorkflow(CONV.to_payload("done"))
    await store.complete_workflow_task(again, [done], "a")
    kid = await store.describe("default", "kid", None)
    assert kid.status.name == "TERMINATED"  # the parent close policy's default


async def test_a_copy_read_before_the_mark_cannot_clear_it(store: Store) -> None:
    await store.start_workflow(start_request("parent"))

    async def mark_then_write_a_stale_copy(tx: Tx, fx: Effects) -> None:
        stale = await tx.get_execution("run-parent")
        fresh = await tx.get_execution("run-parent")
        assert stale is not None and fresh is not None
        fresh.children_started = True
        await tx.update_execution(fresh)
        stale.history_size += 1
        await tx.update_execution(stale)

    await store.transact(mark_then_write_a_stale_copy)
    assert (await store.describe("default", "parent", None)).children_started
