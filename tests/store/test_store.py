"""The store's rules through its interface, on SQLite and PostgreSQL alike: fencing, leases,
the inbox, group commit; and what only many processes sharing PostgreSQL can show.

Each PostgreSQL test gets a schema of its own (``?schema=t_<uuid>``), dropped afterwards. The
server is ``$PERDURE_TEST_POSTGRES_URL`` (default: the local one); if it cannot be reached
the PostgreSQL tests are skipped, saying why.
"""

from __future__ import annotations

import asyncio
import importlib.util
import sqlite3
import uuid
from urllib.parse import urlsplit, urlunsplit

import pytest
from pgutil import POSTGRES_URL, REQUIRE_POSTGRES, postgres_admin
from storerows import start_request

from perdure._common.clock import VirtualClock
from perdure._common.commands import CompleteWorkflow, ScheduleActivity, StartTimer
from perdure._common.events import EventType
from perdure._common.payload import Payload
from perdure._errors import (
    DatabaseUnavailableError,
    InvalidURLError,
    PerdureError,
    SchemaVersionError,
    WorkflowAlreadyStartedError,
    WorkflowNotFoundError,
)
from perdure._store import Store, open_store
from perdure._store._schema import MIGRATIONS as SQLITE_MIGRATIONS
from perdure._store._types import StaleTaskError, StartWorkflowRequest, TaskKind, WorkflowTask
from perdure.common import RetryPolicy
from perdure.converter import DataConverter

CONV = DataConverter.default.payload_converter
needs_asyncpg = pytest.mark.skipif(
    importlib.util.find_spec("asyncpg") is None and not REQUIRE_POSTGRES,
    reason="PostgreSQL tests need asyncpg: pip install -e '.[dev]'",
)

# Real time, only as a bound on waiting for another connection's notification.
NOTIFY_TIMEOUT = 10.0


def request(workflow_id: str, task_timeout: float = 10.0) -> StartWorkflowRequest:
    return start_request(workflow_id, run_id=str(uuid.uuid4()), task_timeout=task_timeout)


async def start(store: Store, workflow_id: str = "wf", task_timeout: float = 10.0) -> str:
    result = await store.start_workflow(request(workflow_id, task_timeout))
    return result.run_id


async def claim_one(store: Store, owner: str) -> WorkflowTask:
    tasks = await store.claim_workflow_tasks("default", "q", owner, 10)
    assert len(tasks) == 1
    return tasks[0]


def schedule(seq: int) -> ScheduleActivity:
    return ScheduleActivity(
        seq=seq,
        activity_id=str(seq),
        activity_type="act",
        task_queue="q",
        input=[],
        schedule_to_close_timeout=None,
        schedule_to_start_timeout=None,
        start_to_close_timeout=5.0,
        heartbeat_timeout=None,
        retry_policy=RetryPolicy(maximum_attempts=2).to_dict(),
        cancellation_type=0,
    )


async def event_types(store: Store, run_id: str) -> list[str]:
    return [e.event_type.value for e in await store.get_history(run_id)]


async def test_a_task_is_claimed_once(store: Store) -> None:
    await start(store)
    await claim_one(store, "a")
    assert await store.claim_workflow_tasks("default", "q", "b", 10) == []


async def test_expired_lease_lets_another_worker_take_over_and_fences_the_first(
    store: Store, clock: VirtualClock
) -> None:
    run_id = await start(store, task_timeout=5)
    stale = await claim_one(store, "a")
    clock.advance_to(clock.now() + 6)
    assert await store.fire_due() == 1
    fresh = await claim_one(store, "b")
    assert fresh.attempt == 2
    with pytest.raises(StaleTaskError):
        await store.complete_workflow_task(stale, [schedule(1)], "a")
    assert (await store.complete_workflow_task(fresh, [schedule(1)], "b")).next_event_id == 4
    assert await event_types(store, run_id) == [
        "WorkflowExecutionStarted",
        "WorkflowTaskCompleted",
        "ActivityTaskScheduled",
    ]
    ex = await store.describe("default", "wf", None)
    assert ex.last_failure is None and ex.wft_attempt == 0


async def test_renewed_leases_outlast_their_timeout_until_the_tasks_are_no_longer_held(
    store: Store, clock: VirtualClock
) -> None:
    await start(store, "kept", task_timeout=5)
    await start(store, "recorded", task_timeout=5)
    tasks = sorted(await store.claim_workflow_tasks("default", "q", "a", 10), key=_wid)
    kept, recorded = tasks
    await store.complete_workflow_task(recorded, [StartTimer(1, 600.0)], "a")
    clock.advance_to(clock.now() + 4)
    assert await store.extend_workflow_tasks(tasks) == [recorded]  # it is held no longer
    clock.advance_to(clock.now() + 4)  # past the lease as claimed, within the renewed one
    assert await store.fire_due() == 0
    assert await store.claim_workflow_tasks("default", "q", "b", 10) == []
    clock.advance_to(clock.now() + 2)  # the renewed lease runs out: another worker takes it
    assert await store.fire_due() == 1
    assert (await claim_one(store, "b")).attempt == 2
    assert await store.extend_workflow_tasks([kept]) == [kept]
    with pytest.raises(StaleTaskError):
        await store.complete_workflow_task(kept, [schedule(1)], "a")


def _wid(task: WorkflowTask) -> str:
    return task.workflow_id


async def test_signals_during_a_task_are_buffered_after_its_commands(store: Store) -> None:
    run_id = await start(store)
    task = await claim_one(store, "a")
    await store.signal("default", "wf", None, "sig", [CONV.to_payload(1)], "client")
    assert await event_types(store, run_id) == ["WorkflowExecutionStarted"]
    await store.complete_workflow_task(task, [StartTimer(1, 60.0)], "a")
    assert await event_types(store, run_id) == [
        "WorkflowExecutionStarted",
        "WorkflowTaskCompleted",
        "TimerStarted",
        "WorkflowExecutionSignaled",
    ]
    # The buffered signal needs handling: a new workflow task is pending.
    await claim_one(store, "a")


async def test_a_workflow_cannot_close_over_a_signal_it_has_not_seen(store: Store) -> None:
    run_id = await start(store)
    task = await claim_one(store, "a")
    await store.signal("default", "wf", None, "sig", [], "client")
    done = CompleteWorkflow(CONV.to_payload("result"))
    assert (await store.complete_workflow_task(task, [done], "a")).next_event_id is None
    assert await event_types(store, run_id) == [
        "WorkflowExecutionStarted",
        "WorkflowExecutionSignaled",
    ]
    retry = await claim_one(store, "a")
    assert (await store.complete_workflow_task(retry, [done], "a")).next_event_id is not None
    ex = await store.describe("default", "wf", None)
    assert not ex.is_open and ex.close_event is not None


async def test_timer_fires_once_at_its_time(store: Store, clock: VirtualClock) -> None:
    run_id = await start(store)
    task = await claim_one(store, "a")
    await store.complete_workflow_task(task, [StartTimer(1, 60.0)], "a")
    assert await store.fire_due() == 0
    assert await store.next_wakeup() == pytest.approx(task.started_time + 60)
    clock.advance_to(task.started_time + 60)
    assert await store.fire_due() == 1
    assert await store.fire_due() == 0
    assert (await event_types(store, run_id))[-1] == "TimerFired"


async def test_stale_activity_attempt_is_refused(store: Store, clock: VirtualClock) -> None:
    run_id = await start(store)
    task = await claim_one(store, "a")
    await store.complete_workflow_task(task, [schedule(1)], "a")
    [first] = await store.claim_activity_tasks("default", "q", "a", 10)
    clock.advance_to(clock.now() + 6)  # start_to_close (5 s) passes: attempt 2 follows
    await store.fire_due()
    clock.advance_to(clock.now() + 2)
    [second] = await store.claim_activity_tasks("default", "q", "b", 10)
    assert second.attempt == 2
    with pytest.raises(StaleTaskError):
        await store.complete_activity(first.token, first.owner, CONV.to_payload("late"), "a")
    await store.complete_activity(second.token, second.owner, CONV.to_payload("ok"), "b")
    history = await store.get_history(run_id)
    completed = [e for e in history if e.event_type is EventType.ACTIVITY_TASK_COMPLETED]
    assert len(completed) == 1
    assert CONV.from_payload(completed[0].attributes["result"]) == "ok"
    started = [e for e in history if e.event_type is EventType.ACTIVITY_TASK_STARTED]
    assert [e.attributes["attempt"] for e in started] == [2]


async def test_one_failing_operation_does_not_undo_its_batch(store: Store) -> None:
    await start(store, "taken")
    results = await asyncio.gather(
        start(store, "taken"), start(store, "fresh"), return_exceptions=True
    )
    assert isinstance(results[0], WorkflowAlreadyStartedError)
    assert isinstance(results[1], str)
    assert (await store.describe("default", "fresh", None)).is_open


async def test_an_operation_failing_after_it_wrote_is_undone_alone(store: Store) -> None:
    from perdure._store import _starts as starts
    from perdure._store._effects import Effects
    from perdure._store._tx import Tx

    async def start_then_fail(tx: Tx, fx: Effects) -> None:
        await starts.start_workflow(tx, request("half"), store.clock.now(), fx)
        raise RuntimeError("fails after writing")

    results = await asyncio.gather(
        start(store, "before"),
        store.transact(start_then_fail),
        start(store, "after"),
        return_exceptions=True,
    )
    assert isinstance(results[0], str) and isinstance(results[2], str)
    assert isinstance(results[1], RuntimeError)
    assert (await store.describe("default", "before", None)).is_open
    assert (await store.describe("default", "after", None)).is_open
    with pytest.raises(WorkflowNotFoundError):
        await store.describe("default", "half", None)
    assert len(await store.claim_workflow_tasks("default", "q", "a", 10)) == 2


async def _bump_schema_version(url: str) -> None:
    if url.startswith("sqlite:"):
        conn = sqlite3.connect(url[len("sqlite:///") :])
        conn.execute("UPDATE perdure_schema SET version = version + 1")
        conn.commit()
        conn.close()
        return
    admin = await postgres_admin()
    schema = url.rsplit("schema=", 1)[1]
    await admin.execute(f'UPDATE "{schema}".perdure_schema SET version = version + 1')
    await admin.close()


async def test_a_database_from_a_newer_perdure_is_refused(db_url: str) -> None:
    first = open_store(db_url)
    await first.closed_among(["x"])  # a PostgreSQL store connects (and migrates) on first use
    await first.close()
    await _bump_schema_version(db_url)
    newer: Store | None = None
    with pytest.raises(SchemaVersionError, match="upgrade perdure"):
        newer = open_store(db_url)
        await newer.closed_among(["x"])
    if newer is not None:
        await newer.close()


async def test_payload_round_trip_through_the_store(store: Store) -> None:
    run_id = await start(store)
    task = await claim_one(store, "a")
    payload = Payload(metadata={"encoding": b"binary/plain"}, data=bytes(range(256)))
    await store.complete_workflow_task(task, [CompleteWorkflow(payload)], "a")
    history = await store.get_history(run_id)
    assert history[-1].attributes["result"] == payload


@needs_asyncpg
@pytest.mark.parametrize("scheme", ["postgresql", "postgres"])
async def test_a_postgresql_store_opens_without_connecting(scheme: str) -> None:
    store = open_store(f"{scheme}://nobody@127.0.0.1:1/nowhere?schema=s")
    assert store.dialect == "postgresql"
    await store.close()


@needs_asyncpg
def test_a_postgresql_url_takes_one_schema() -> None:
    with pytest.raises(InvalidURLError, match="schema"):
        open_store("postgresql://127.0.0.1/db?schema=a&schema=b")


@needs_asyncpg
@pytest.mark.realtime
async def test_an_unreachable_server_is_waited_for_then_reported(
    clock: VirtualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    from perdure._store import _postgres

    # As for a connection lost later: operations wait (60 s), then fail saying why.
    monkeypatch.setattr(_postgres, "RECONNECT_SECONDS", 0.3)
    store = open_store("postgresql://nobody@127.0.0.1:1/nowhere", clock)
    with pytest.raises(DatabaseUnavailableError, match=r"could not be reached.*Refused"):
        await start(store)
    with pytest.raises(DatabaseUnavailableError, match=r"could not be reached.*Refused"):
        await store.ready()
    await store.close()


@needs_asyncpg
async def test_a_refused_connection_is_reported_at_first_use(clock: VirtualClock) -> None:
    await (await postgres_admin()).close()  # the server answers
    missing = f"/no_such_database_{uuid.uuid4().hex[:8]}"
    url = urlunsplit(urlsplit(POSTGRES_URL)._replace(path=missing))
    store = open_store(url, clock)
    with pytest.raises(PerdureError, match="Cannot connect to PostgreSQL at") as info:
        await start(store)
    assert not isinstance(info.value, DatabaseUnavailableError)  # final: not waited for
    await store.close()


def test_both_schemas_have_the_same_versions() -> None:
    from perdure._store._postgres_schema import MIGRATIONS as POSTGRES_MIGRATIONS

    assert len(POSTGRES_MIGRATIONS) == len(SQLITE_MIGRATIONS)


# -- many processes on one PostgreSQL database ------------------------------------------------


async def test_concurrent_claims_from_two_pools_never_take_a_task_twice(
    postgres_url: str, clock: VirtualClock
) -> None:
    a, b = open_store(postgres_url, clock), open_store(postgres_url, clock)
    try:
        await asyncio.gather(*(start(a, f"wf-{i}") for i in range(50)))
        claimed: list[int] = []

        async def claimer(store: Store, owner: str) -> None:
            while tasks := await store.claim_workflow_tasks("default", "q", owner, 3):
                claimed.extend(t.task_id for t in tasks)

        await asyncio.gather(
            *(claimer(s, f"{name}{i}") for s, name in ((a, "a"), (b, "b")) for i in range(4))
        )
        # A claimer that found every ready row locked by the other store stops early; any
        # task left is still there for the taking.
        while rest := await b.claim_workflow_tasks("default", "q", "sweep", 50):
            claimed.extend(t.task_id for t in rest)
        assert len(claimed) == 50
        assert len(set(claimed)) == 50
    finally:
        await a.close()
        await b.close()


async def test_a_notification_from_one_store_wakes_a_listener_of_another(
    postgres_url: str, clock: VirtualClock
) -> None:
    a, b = open_store(postgres_url, clock), open_store(postgres_url, clock)
    try:
        await b.is_idle()  # b connects, and listens, on first use
        key = ("queue", "default", "q", TaskKind.WORKFLOW)
        ready = b.notifier.listen(key)
        await start(a)
        await asyncio.wait_for(ready.wait(), NOTIFY_TIMEOUT)
        b.notifier.forget(key)
    finally:
        await a.close()
        await b.close()


async def test_a_run_closed_by_one_store_releases_a_waiter_on_another(
    postgres_url: str, clock: VirtualClock
) -> None:
    a, b = open_store(postgres_url, clock), open_store(postgres_url, clock)
    try:
        run_id = await start(a)
        waiting = asyncio.ensure_future(b.wait_closed(run_id))
        task = await claim_one(a, "a")
        await a.complete_workflow_task(task, [CompleteWorkflow(CONV.to_payload(1))], "a")
        await asyncio.wait_for(waiting, NOTIFY_TIMEOUT)
    finally:
        await a.close()
        await b.close()


async def test_signals_from_two_pools_to_one_run_are_all_recorded_in_order(
    postgres_url: str, clock: VirtualClock
) -> None:
    a, b = open_store(postgres_url, clock), open_store(postgres_url, clock)
    try:
        run_id = await start(a)
        await asyncio.gather(
            *(
                s.signal("default", "wf", None, "sig", [CONV.to_payload(i)], "client")
                for i in range(25)
                for s in (a, b)
            )
        )
        history = await b.get_history(run_id)
        assert [e.event_id for e in history] == list(range(1, 52))
        signals = [CONV.from_payload(e.attributes["input"][0]) for e in history[1:]]
        assert sorted(signals) == sorted([*range(25), *range(25)])
    finally:
        await a.close()
        await b.close()


async def test_a_store_listens_again_after_its_listening_connection_is_killed(
    postgres_url: str, clock: VirtualClock
) -> None:
    a, b = open_store(postgres_url, clock), open_store(postgres_url, clock)
    admin = await postgres_admin()
    try:
        await b.is_idle()
        key = ("queue", "default", "q", TaskKind.WORKFLOW)
        ready = b.notifier.listen(key)
        schema = postgres_url.rsplit("schema=", 1)[1]
        killed = await admin.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE query = $1",
            f'LISTEN "perdure:{schema}"',
        )
        assert killed == 1
        # Back to listening, b wakes every poller: notifications may have been missed.
        await asyncio.wait_for(ready.wait(), NOTIFY_TIMEOUT)
        ready.clear()
        await start(a)
        await asyncio.wait_for(ready.wait(), NOTIFY_TIMEOUT)
        b.notifier.forget(key)
    finally:
        await admin.close()
        await a.close()
        await b.close()


async def test_a_task_run_again_for_its_worker_is_told_from_one_whose_code_failed(
    store: Store, clock: VirtualClock
) -> None:
    # A query waits for the first kind (the run's events will be seen), not the second.
    await start(store, task_timeout=5)
    await store.hand_back_workflow_task(await claim_one(store, "a"), "the database was busy")
    assert not (await store.describe("default", "wf", None)).code_failing
    await claim_one(store, "b")
    clock.advance_to(clock.now() + 6)
    assert await store.fire_due() == 1  # its lease ran out
    ex = await store.describe("default", "wf", None)
    assert ex.wft_attempt == 3 and not ex.code_failing
    await store.fail_workflow_task(await claim_one(store, "c"), {"message": "bug"}, "c")
    assert (await store.describe("default", "wf", None)).code_failing
