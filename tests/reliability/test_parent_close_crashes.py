"""Parent close policies under crashes (RELIABILITY.md section 11): a parent with three
children open closes, and the worker process dies as the close is committed, or right
after; started again, the policy has been applied to each child exactly once.

The process dies (``os._exit(137)``, as a SIGKILL would end it) at one of two points:

* ``after_parent_close_policy`` (``perdure._store._crash``): inside the transaction that
  closes the parent, after its children were terminated, asked to cancel or left alone,
  before the commit; the whole close rolls back and the next process closes the parent
  again once the dead one's lease on its workflow task runs out;
* ``workflow_task_completed`` (the worker's hook): right after the close was committed,
  before the process does anything else (the children's cancellations are left to the next
  process).

The parent (``harness.close_app.Closer``) starts its children, and closes when signalled;
before the signal everything is idle, so the close's workflow task is the first the dying
process completes. Pass: the parent closed once (one terminal event, its result), and each
child: TERMINATE, terminated once (one ``WorkflowExecutionTerminated``, nothing asked of it);
REQUEST_CANCEL, asked once (one ``WorkflowExecutionCancelRequested``) and closed as
cancelled; ABANDON, asked nothing, still running, and completes when it is told to. One run
per child, every history audited. Both stores.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from harness import close_app, crashpoints
from harness.auditor import TERMINAL, audit, child_problems
from harness.workers import Workers, poll_until, wait_all
from pgutil import fresh_schema

from perdure import Client
from perdure.client import WorkflowExecutionStatus
from perdure.workflow import ParentClosePolicy

pytestmark = [pytest.mark.realtime, pytest.mark.timeout(120)]

CHILDREN = 3
PARENT = "parent"
MODULE = "harness.close_app"
CHILD_STATUS = {
    ParentClosePolicy.TERMINATE: WorkflowExecutionStatus.TERMINATED,
    ParentClosePolicy.REQUEST_CANCEL: WorkflowExecutionStatus.CANCELED,
    ParentClosePolicy.ABANDON: WorkflowExecutionStatus.COMPLETED,  # once told to finish
}
# What the policy leaves in a child's history: event type -> how many.
CHILD_EVENTS = {
    ParentClosePolicy.TERMINATE: {
        "WorkflowExecutionTerminated": 1,
        "WorkflowExecutionCancelRequested": 0,
    },
    ParentClosePolicy.REQUEST_CANCEL: {
        "WorkflowExecutionCancelRequested": 1,
        "WorkflowExecutionCanceled": 1,
        "WorkflowExecutionTerminated": 0,
    },
    ParentClosePolicy.ABANDON: {
        "WorkflowExecutionCancelRequested": 0,
        "WorkflowExecutionTerminated": 0,
        "WorkflowExecutionCompleted": 1,
    },
}


@contextlib.asynccontextmanager
async def database(store: str, tmp_path: Path) -> AsyncIterator[str]:
    if store == "sqlite":
        yield f"sqlite:///{tmp_path / 'close.db'}"
        return
    async with fresh_schema() as url:
        yield url


def _types(events: list[Any]) -> Counter[str]:
    return Counter(str(getattr(e.event_type, "value", e.event_type)) for e in events)


async def _history(client: Client, wid: str) -> list[Any]:
    return list((await client.get_workflow_handle(wid).fetch_history()).events)


async def _idle(client: Client) -> bool:
    """The parent and its children all started and none has a workflow task to run (a run
    whose last event is a completed workflow task has none: nothing else arrives)."""
    parent = await _history(client, PARENT)
    if _types(parent)["ChildWorkflowExecutionStarted"] < CHILDREN:
        return False
    for wid in [PARENT, *(close_app.child_id(PARENT, i) for i in range(1, CHILDREN + 1))]:
        events = await _history(client, wid)
        if not events or _types(events[-1:])["WorkflowTaskCompleted"] != 1:
            return False
    return True


async def _until(what: str, check: Any, workers: Workers, timeout_s: float = 30.0) -> None:
    """Poll the coroutine function ``check`` until it returns true (``poll_until`` polls a
    plain function)."""
    deadline = time.monotonic() + timeout_s
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(
                f"timed out after {timeout_s:.0f}s waiting until {what}\n" + workers.logs()
            )
        await asyncio.sleep(0.02)


async def _child_problems(client: Client, policy: ParentClosePolicy, cid: str) -> list[str]:
    runs = [e async for e in client.list_workflows(f"WorkflowId = '{cid}'")]
    problems = [] if len(runs) == 1 else [f"{cid}: {len(runs)} runs, not 1"]
    handle = client.get_workflow_handle(cid)
    status = (await handle.describe()).status
    if status != CHILD_STATUS[policy]:
        problems.append(f"{cid}: {status.name}, expected {CHILD_STATUS[policy].name}")
    events = await _history(client, cid)
    problems += audit(cid, events, closed=status != WorkflowExecutionStatus.RUNNING)
    types = _types(events)
    for event_type, n in CHILD_EVENTS[policy].items():
        if types[event_type] != n:
            problems.append(f"{cid}: {types[event_type]} {event_type}, expected {n}")
    return problems


@pytest.mark.parametrize("point", ["after_parent_close_policy", "workflow_task_completed"])
@pytest.mark.parametrize("policy", list(CHILD_STATUS), ids=lambda p: p.name)
@pytest.mark.parametrize("store", ["sqlite", "postgresql"])
async def test_close_policy_applied_once_across_a_crash(
    store: str, policy: ParentClosePolicy, point: str, tmp_path: Path
) -> None:
    hits = str(tmp_path / "hits.txt")
    crash_env = {crashpoints.CRASH_AT: f"{point}:1", crashpoints.CRASH_HITS: hits}
    children = [close_app.child_id(PARENT, i) for i in range(1, CHILDREN + 1)]
    async with database(store, tmp_path) as url:
        workers = Workers(tmp_path, url, str(tmp_path / "unused-ledger.db"))
        client = await Client.connect(url)
        try:
            # The store's point is reached only by a parent closing with children open: the
            # dying process can run everything from the start. The worker's is reached by
            # every workflow task: it takes over once all is idle, the close its first task.
            early = point == "after_parent_close_policy"
            doomed = workers.spawn(
                "crash-worker" if early else "worker-1",
                env=crash_env if early else None,
                module=MODULE,
            )
            await client.start_workflow(
                close_app.Closer.run,
                args=(int(policy), CHILDREN),
                id=PARENT,
                task_queue=close_app.PARENT_QUEUE,
                task_timeout=close_app.TASK_TIMEOUT,
            )
            await _until("the children started and all is idle", lambda: _idle(client), workers)
            if not early:
                workers.kill("worker-1")
                doomed = workers.spawn("crash-worker", env=crash_env, module=MODULE)
            await client.get_workflow_handle(PARENT).signal(close_app.Closer.close)
            await poll_until(
                f"the worker dies at {point}",
                lambda: doomed.poll() == crashpoints.EXIT_CODE,
                timeout_s=30,
                logs=workers,
            )
            survivor = workers.spawn("worker-2", module=MODULE)
            closing = {PARENT: 0}
            if policy != ParentClosePolicy.ABANDON:
                closing.update({cid: 0 for cid in children})
            await wait_all(client, closing, 30.0, workers)
            # The parent closed once, with its result; its children started once each.
            parent = await client.get_workflow_handle(PARENT).describe()
            assert parent.status == WorkflowExecutionStatus.COMPLETED, workers.logs()
            assert await client.get_workflow_handle(PARENT).result() == CHILDREN
            events = await _history(client, PARENT)
            assert audit(PARENT, events, closed=True) + child_problems(PARENT, events) == []
            assert sum(n for t, n in _types(events).items() if t in TERMINAL) == 1
            assert _types(events)["ChildWorkflowExecutionStarted"] == CHILDREN
            # The close was committed by the process that died right after it, or (its
            # transaction rolled back) by the next one.
            closer = [e for e in events if _types([e])["WorkflowTaskCompleted"]][-1]
            committed_by = doomed if point == "workflow_task_completed" else survivor
            assert closer.attributes["identity"].startswith(f"{committed_by.pid}@")
            if policy == ParentClosePolicy.ABANDON:
                # Left alone: still running, nothing asked of them (checked below, with
                # their completion); told to finish, each completes.
                for cid in children:
                    assert (await client.get_workflow_handle(cid).describe()).status == (
                        WorkflowExecutionStatus.RUNNING
                    )
                    await client.get_workflow_handle(cid).signal(close_app.Waiter.finish)
                await wait_all(client, dict.fromkeys(children, 0), 30.0, workers)
                for cid in children:
                    assert await client.get_workflow_handle(cid).result() == close_app.FINISHED
            problems = [p for cid in children for p in await _child_problems(client, policy, cid)]
            assert problems == [], workers.logs()
            assert crashpoints.hits(hits) == [point]
            assert [n for n in workers.dead() if n != "crash-worker"] == [], workers.logs()
        finally:
            workers.stop_all()
            await client.close()
