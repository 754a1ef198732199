"""The debounce recipe of docs/patterns.md ("Flow control"): signal-with-start on the key's
workflow id, a workflow that waits for five quiet seconds. A burst of events runs the work
once, five seconds after the burst's last event, with every event of the burst."""

from __future__ import annotations

from datetime import timedelta

from perdure import Worker, activity, workflow
from perdure.client import Client, WorkflowHandle
from perdure.testing import WorkflowEnvironment

QUIET = timedelta(seconds=5)
CALLS: list[list[str]] = []


@activity.defn
async def reindex(changes: list[str]) -> int:
    CALLS.append(changes)
    return len(changes)


@workflow.defn
class Debounced:
    def __init__(self) -> None:
        self.pending: list[str] = []
        self.fresh = False  # an event came since the quiet period began

    @workflow.signal
    def changed(self, what: str) -> None:
        self.pending.append(what)
        self.fresh = True

    @workflow.run
    async def run(self) -> int:
        done = 0
        while True:
            # Wait until no event came for QUIET.
            while True:  # until QUIET passes with no event
                self.fresh = False
                try:
                    await workflow.wait_condition(lambda: self.fresh, timeout=QUIET)
                except TimeoutError:
                    break
            batch, self.pending = self.pending, []
            done += await workflow.execute_activity(
                reindex, batch, start_to_close_timeout=timedelta(minutes=1)
            )
            if not self.pending:  # nothing came while it ran
                return done


async def event(client: Client, key: str, what: str) -> WorkflowHandle[int]:
    return await client.start_workflow(
        Debounced.run,
        id=f"reindex-{key}",
        task_queue="q",
        start_signal="changed",
        start_signal_args=[what],
    )


async def test_a_burst_runs_once_five_seconds_after_its_last_event(
    env: WorkflowEnvironment,
) -> None:
    CALLS.clear()
    async with Worker(env.client, task_queue="q", workflows=[Debounced], activities=[reindex]):
        handle = await event(env.client, "doc-1", "title")
        for what in ("body", "tags", "body"):
            await env.sleep(timedelta(seconds=2))  # within the quiet period: it restarts
            await event(env.client, "doc-1", what)
        assert await handle.result() == 4
    assert CALLS == [["title", "body", "tags", "body"]]
    events = (await handle.fetch_history()).events
    signals = [e for e in events if e.event_type.value == "WorkflowExecutionSignaled"]
    scheduled = [e for e in events if e.event_type.value == "ActivityTaskScheduled"]
    assert len(signals) == 4 and len(scheduled) == 1
    assert scheduled[0].event_time - signals[-1].event_time == QUIET.total_seconds()
    assert signals[-1].event_time - signals[0].event_time == 6.0
