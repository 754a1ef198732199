"""The routes that replay a run on the server's workflow code, on each store: the state at an
event (queries' answers, where the code waited), and whether the history replays on the code
the server was given (it does not on code changed since)."""

from __future__ import annotations

import uuid
from pathlib import Path

from server_support import InProcess, in_process

from perdure import workflow
from perdure.worker import Worker


@workflow.defn(name="Counter")
class Counter:
    def __init__(self) -> None:
        self.count = 0

    @workflow.run
    async def run(self) -> int:
        await workflow.wait_condition(lambda: self.count >= 2)
        return self.count

    @workflow.signal
    def add(self) -> None:
        self.count += 1

    @workflow.query
    def total(self) -> int:
        return self.count

    @workflow.query
    def times(self, factor: int) -> int:
        return self.count * factor


@workflow.defn(name="Counter")
class CounterChanged:
    # The same workflow after a change that breaks its running histories: it sleeps first.
    @workflow.run
    async def run(self) -> int:
        await workflow.sleep(5)
        return 0

    @workflow.signal
    def add(self) -> None:
        pass


async def test_the_state_at_each_event_and_the_replay_check(db_url: str, tmp_path: Path) -> None:
    queue = f"q-{uuid.uuid4()}"
    async with in_process(db_url, tmp_path, workflows=[Counter]) as app:
        auth = app.auth(app.read)
        async with Worker(app.client, task_queue=queue, workflows=[Counter]):
            handle = await app.client.start_workflow(Counter.run, id="counter", task_queue=queue)
            await handle.signal(Counter.add)
            await handle.signal(Counter.add)
            assert await handle.result() == 2
        events = (await handle.fetch_history()).events
        tasks = [e.event_id for e in events if e.event_type.value == "WorkflowTaskCompleted"]
        states = [
            (
                await app.http.get(
                    f"/api/v1/workflows/counter/replay/state?event_id={event_id}", headers=auth
                )
            ).json()
            for event_id in tasks
        ]
        totals = [s["queries"][1]["result"] for s in states]
        assert totals[0] == 0 and totals[-1] == 2
        assert totals == sorted(totals)
        assert states[0]["queries"][0] == {
            "name": "times",
            "result": None,
            "error": "takes arguments",
        }
        assert "wait_condition" in states[0]["stack_trace"]
        check = (await app.http.get("/api/v1/workflows/counter/replay", headers=auth)).json()
        assert (check["ok"], check["error"]) == (True, None)

    async with in_process(db_url, tmp_path / "changed", workflows=[CounterChanged]) as changed:
        check = (
            await changed.http.get(
                "/api/v1/workflows/counter/replay", headers=changed.auth(changed.read)
            )
        ).json()
        assert check["ok"] is False
        assert check["error"].startswith("Workflow code issued StartTimer"), check


async def test_replaying_needs_the_workflow_code(local: InProcess) -> None:
    answer = await local.http.get("/api/v1/workflows/any/replay", headers=local.auth(local.read))
    assert answer.status_code == 409
    assert "perdure server --db URL myapp.workflows" in answer.json()["detail"]
