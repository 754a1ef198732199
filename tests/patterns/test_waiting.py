"""perdure.patterns.wait_until: a wait for a decision with a timeout, reminders and an
escalation chain, on the virtual clock."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest

from perdure import ActivityError, RetryPolicy, Worker, WorkflowHandle, activity, workflow
from perdure.client import Client
from perdure.patterns import Escalation, Reminder, WaitOutcome, wait_until
from perdure.testing import CrashingWorker, CrashPoint, WorkflowEnvironment
from perdure.worker import Replayer
from perdure.workflow import NotInWorkflowError

HOUR = timedelta(hours=1)
REMINDED: list[int] = []  # the escalation level of each reminder activity attempt
FAILING_REMINDERS = {"left": 0}  # how many reminder attempts still fail before one succeeds


@pytest.fixture(autouse=True)
def _reset() -> None:
    REMINDED.clear()
    FAILING_REMINDERS["left"] = 0


@activity.defn
async def send_reminder(level: int) -> None:
    REMINDED.append(level)
    if FAILING_REMINDERS["left"] > 0:
        FAILING_REMINDERS["left"] -= 1
        raise RuntimeError("mail server down")


@dataclass
class Plan:
    """What the test workflow waits with, in hours."""

    timeout: float | None = None
    remind_every: float | None = None
    escalate_after: list[float] = field(default_factory=list)
    reminder_takes: float = 0  # the reminder action also sleeps this long, after its activity
    reminder_attempts: int = 0  # 0: retry until it succeeds
    linger: float = 0  # the workflow stays open this long after the wait


@dataclass
class Entry:
    at: float  # hours since the workflow started
    event: str


@dataclass
class Report:
    decision: str | None
    satisfied: bool
    escalation_level: int
    reminders_sent: int
    waited: float  # hours
    log: list[Entry]


def hours(n: float) -> timedelta:
    return timedelta(hours=n)


@workflow.defn
class Request:
    @workflow.init
    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.decision: str | None = None
        self.level = 0
        self.log: list[Entry] = []

    @workflow.run
    async def run(self, plan: Plan) -> Report:
        try:
            outcome = await wait_until(
                lambda: self.decision is not None,
                timeout=None if plan.timeout is None else hours(plan.timeout),
                reminders=(
                    [Reminder(every=hours(plan.remind_every), action=self.remind)]
                    if plan.remind_every
                    else []
                ),
                escalation=[
                    Escalation(after=hours(h), action=functools.partial(self.escalate, n))
                    for n, h in enumerate(plan.escalate_after, 1)
                ],
            )
        except ActivityError as err:
            self.note(f"wait failed: {err.cause}")
            return Report(None, False, self.level, 0, 0, self.log)
        self.note("timed out" if outcome.timed_out else f"decided: {self.decision}")
        if plan.linger:
            await workflow.sleep(hours(plan.linger))
        return Report(
            self.decision,
            outcome.satisfied,
            outcome.escalation_level,
            outcome.reminders_sent,
            outcome.waited / HOUR,
            self.log,
        )

    async def remind(self) -> None:  # an action that runs an activity, retried
        self.note(f"reminder at level {self.level}")
        await workflow.execute_activity(
            send_reminder,
            self.level,
            start_to_close_timeout=timedelta(minutes=1),
            retry_policy=RetryPolicy(maximum_attempts=self.plan.reminder_attempts),
        )
        if self.plan.reminder_takes:
            await workflow.sleep(hours(self.plan.reminder_takes))
        self.note("reminder done")

    def escalate(self, level: int) -> None:  # an action that is a plain callable
        self.level = level
        self.note(f"escalated to level {level}")

    def note(self, event: str) -> None:
        at = (workflow.now() - workflow.info().start_time) / HOUR
        self.log.append(Entry(round(at, 6), event))

    @workflow.signal
    def decide(self, decision: str) -> None:
        if self.decision is None:
            self.decision = decision
            self.note(f"signal: {decision}")

    @workflow.update
    def decide_now(self, decision: str) -> str:
        self.decision = decision
        self.note(f"update: {decision}")
        return f"recorded {decision}"

    @decide_now.validator
    def _only_once(self, decision: str) -> None:
        if self.decision is not None:
            raise ValueError(f"already decided: {self.decision}")


def log(report: Report) -> list[tuple[float, str]]:
    return [(e.at, e.event) for e in report.log]


async def start(client: Client, plan: Plan, wf_id: str = "req") -> WorkflowHandle[Report]:
    handle: WorkflowHandle[Report] = await client.start_workflow(
        Request.run, plan, id=wf_id, task_queue="test"
    )
    return handle


@pytest.fixture
async def client(perdure_env: WorkflowEnvironment, perdure_worker: Any) -> Client:
    await perdure_worker(workflows=[Request], activities=[send_reminder])
    c: Client = perdure_env.client
    return c


async def test_a_decision_before_any_deadline_ends_the_wait(
    perdure_env: WorkflowEnvironment, client: Client
) -> None:
    plan = Plan(timeout=96, remind_every=4, escalate_after=[24, 48])
    async with perdure_env.auto_time_skipping_disabled():
        handle = await start(client, plan)
        await perdure_env.sleep(HOUR * 3)
        await handle.signal(Request.decide, "approved")
        await perdure_env.sleep(0)
        report = await handle.result()
    assert (report.decision, report.satisfied, report.escalation_level) == ("approved", True, 0)
    assert (report.reminders_sent, report.waited) == (0, 3)
    assert log(report) == [(3, "signal: approved"), (3, "decided: approved")]
    assert REMINDED == []


async def test_reminders_fire_on_time_and_stop_once_decided(
    perdure_env: WorkflowEnvironment, client: Client
) -> None:
    plan = Plan(timeout=96, remind_every=4, linger=48)
    async with perdure_env.auto_time_skipping_disabled():
        handle = await start(client, plan)
        await perdure_env.sleep(HOUR * 13)
        await handle.signal(Request.decide, "rejected")
        await perdure_env.sleep(HOUR * 48)  # 48 more hours: no more reminders
        report = await handle.result()
    assert log(report) == [
        (4, "reminder at level 0"),
        (4, "reminder done"),
        (8, "reminder at level 0"),
        (8, "reminder done"),
        (12, "reminder at level 0"),
        (12, "reminder done"),
        (13, "signal: rejected"),
        (13, "decided: rejected"),
    ]
    assert (report.satisfied, report.reminders_sent, report.waited) == (True, 3, 13)
    assert REMINDED == [0, 0, 0]


async def test_the_escalation_chain_runs_in_order_then_the_wait_times_out(
    client: Client,
) -> None:
    # Reminders every 10 h, counted again from each escalation step; the timeout wins over a
    # reminder due at the same moment (at 80 h).
    plan = Plan(timeout=80, remind_every=10, escalate_after=[24, 48, 72])
    report = await (await start(client, plan)).result()
    assert [(at, event) for at, event in log(report) if event != "reminder done"] == [
        (10, "reminder at level 0"),
        (20, "reminder at level 0"),
        (24, "escalated to level 1"),
        (34, "reminder at level 1"),
        (44, "reminder at level 1"),
        (48, "escalated to level 2"),
        (58, "reminder at level 2"),
        (68, "reminder at level 2"),
        (72, "escalated to level 3"),
        (80, "timed out"),
    ]
    assert (report.decision, report.satisfied, report.escalation_level) == (None, False, 3)
    assert (report.reminders_sent, report.waited) == (6, 80)
    assert REMINDED == [0, 0, 1, 1, 2, 2]


async def test_a_decision_after_an_escalation_reports_the_level_reached(
    perdure_env: WorkflowEnvironment, client: Client
) -> None:
    plan = Plan(timeout=96, escalate_after=[24, 48])
    async with perdure_env.auto_time_skipping_disabled():
        handle = await start(client, plan)
        await perdure_env.sleep(HOUR * 30)
        await handle.signal(Request.decide, "approved")
        await perdure_env.sleep(0)
        report = await handle.result()
    assert (report.satisfied, report.escalation_level, report.waited) == (True, 1, 30)
    assert log(report)[0] == (24, "escalated to level 1")


async def test_an_update_decides(perdure_env: WorkflowEnvironment, client: Client) -> None:
    plan = Plan(timeout=96, remind_every=4)
    async with perdure_env.auto_time_skipping_disabled():
        handle = await start(client, plan)
        await perdure_env.sleep(HOUR * 5)
        assert await handle.execute_update(Request.decide_now, "approved") == "recorded approved"
        await perdure_env.sleep(0)
        report = await handle.result()
    assert (report.decision, report.satisfied, report.reminders_sent) == ("approved", True, 1)
    assert log(report)[-2:] == [(5, "update: approved"), (5, "decided: approved")]


async def test_without_a_timeout_the_wait_lasts_until_the_decision(
    perdure_env: WorkflowEnvironment, client: Client
) -> None:
    async with perdure_env.auto_time_skipping_disabled():
        handle = await start(client, Plan())
        await perdure_env.sleep(timedelta(days=30))
        await handle.signal(Request.decide, "approved")
        await perdure_env.sleep(0)
        report = await handle.result()
    assert (report.satisfied, report.waited) == (True, 30 * 24)


async def test_deadlines_do_not_move_while_an_action_runs(client: Client) -> None:
    # Each reminder takes 2.5 h. The first (at 1 h) ends at 3.5 h: the escalation due at 2 h
    # runs then; the next reminder, due at 3 h (1 h after the escalation), was missed and is
    # skipped. The one at 4 h ends at 6.5 h, past the 5 h and 6 h ones; the 7 h one ties with
    # the timeout, which wins.
    plan = Plan(timeout=7, remind_every=1, escalate_after=[2], reminder_takes=2.5)
    report = await (await start(client, plan)).result()
    assert log(report) == [
        (1, "reminder at level 0"),
        (3.5, "reminder done"),
        (3.5, "escalated to level 1"),
        (4, "reminder at level 1"),
        (6.5, "reminder done"),
        (7, "timed out"),
    ]
    assert (report.escalation_level, report.reminders_sent, report.waited) == (1, 2, 7)


async def test_a_reminder_activity_is_retried_and_the_schedule_holds(client: Client) -> None:
    FAILING_REMINDERS["left"] = 2  # the first reminder succeeds on its third attempt, 3 s late
    report = await (await start(client, Plan(timeout=9, remind_every=4))).result()
    assert log(report) == [
        (4, "reminder at level 0"),
        (round(4 + 3 / 3600, 6), "reminder done"),
        (8, "reminder at level 0"),
        (8, "reminder done"),
        (9, "timed out"),
    ]
    assert REMINDED == [0, 0, 0, 0]


async def test_an_action_that_fails_ends_the_wait_with_its_error(client: Client) -> None:
    FAILING_REMINDERS["left"] = 5
    report = await (await start(client, Plan(remind_every=4, reminder_attempts=2))).result()
    assert log(report) == [
        (4, "reminder at level 0"),
        (round(4 + 1 / 3600, 6), "wait failed: mail server down"),
    ]
    assert REMINDED == [0, 0]


async def test_a_worker_crash_mid_wait_changes_nothing(perdure_env: WorkflowEnvironment) -> None:
    client = perdure_env.client
    plan = Plan(timeout=50, remind_every=10, escalate_after=[24])
    async with Worker(client, task_queue="calm", workflows=[Request], activities=[send_reminder]):
        calm = await client.execute_workflow(Request.run, plan, id="calm", task_queue="calm")
    async with CrashingWorker(
        client,
        crash_at=CrashPoint.after_event(12, times=2),  # twice, amid the reminders
        task_queue="crashy",
        workflows=[Request],
        activities=[send_reminder],
    ) as worker:
        crashed = await client.execute_workflow(
            Request.run, plan, id="crashed", task_queue="crashy"
        )
    assert worker.crashes == 2
    # A reminder activity the dying worker had just been handed (eager dispatch leases it to
    # that worker in the commit that schedules it) times out with the worker and is retried
    # after its 1 s backoff: the log's times may lag by that second; nothing else may differ.
    assert [e.event for e in crashed.log] == [e.event for e in calm.log]
    assert all(0 <= c.at - k.at <= 1.5 / 3600 for c, k in zip(crashed.log, calm.log, strict=True))
    lagged = Report(**{**vars(crashed), "log": calm.log})
    assert lagged == calm
    assert (calm.escalation_level, calm.reminders_sent, calm.waited) == (1, 4, 50)


async def test_the_history_replays(perdure_env: WorkflowEnvironment, client: Client) -> None:
    handle = await start(client, Plan(timeout=30, remind_every=4, escalate_after=[10, 20]))
    await handle.result()
    await Replayer(workflows=[Request]).replay_workflow(await handle.fetch_history())


async def test_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="positive"):
        Reminder(every=timedelta(0), action=lambda: None)
    with pytest.raises(ValueError, match="negative"):
        Escalation(after=-HOUR, action=lambda: None)
    steps = [Escalation(after=HOUR * 2, action=lambda: None), Escalation(HOUR, lambda: None)]
    with pytest.raises(ValueError, match="in the order they happen"):
        await wait_until(lambda: False, escalation=steps)
    with pytest.raises(ValueError, match="negative"):
        await wait_until(lambda: False, timeout=-1)
    with pytest.raises(NotInWorkflowError):
        await wait_until(lambda: False, timeout=HOUR)


def test_the_outcome_says_whether_it_timed_out() -> None:
    assert WaitOutcome(False, 2, 5, HOUR).timed_out
    assert not WaitOutcome(True, 0, 0, HOUR).timed_out
