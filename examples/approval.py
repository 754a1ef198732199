"""Human in the loop: an approval request with a reminder, an escalation and an auto-reject.

Run it::

    pip install -e .
    python examples/approval.py            # uses ./perdure-approval.db
    python examples/approval.py --reset    # forget earlier runs and start fresh

Each request is a workflow that waits for a person. It asks the approver, then waits for an
``approve`` or ``reject`` *signal*, with deadlines:

1. no decision within ``remind_after``: a reminder goes to the approver (an activity);
2. still none within ``escalate_after`` more: the request is escalated to a manager, who may
   now decide too;
3. still none within ``auto_reject_after`` more: the request is rejected automatically.

The waiting is ``perdure.patterns.wait_until``: the reminder and the escalation are the steps
of its escalation chain, the auto-reject its timeout. Each deadline is a durable timer,
recorded in the database, that keeps counting while no process runs at all (the real deadlines
would be days; the demo uses seconds).

The demo submits three requests at once: one is approved quickly, one is escalated and then
approved by the manager (after an unauthorised "approval" is ignored), and one is
auto-rejected. Then it prints each request's timeline.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from perdure import Client, RetryPolicy, Worker, WorkflowHandle, activity, workflow
from perdure.client import WorkflowIDConflictPolicy
from perdure.patterns import Escalation, wait_until

TASK_QUEUE = "approvals"
STARTED_AT = time.monotonic()


def say(line: str) -> None:
    """Print one narrative line, stamped with the seconds since this process started."""
    print(f"[{time.monotonic() - STARTED_AT:5.1f}s] {line}", flush=True)


# ---------------------------------------------------------------------------------------------
# Data (stored as JSON: plain dataclasses).
# ---------------------------------------------------------------------------------------------

DAY = 24 * 3600.0


@dataclass
class ApprovalTimeouts:
    """Deadlines, in seconds, each counted from the previous one."""

    remind_after: float = 1 * DAY
    escalate_after: float = 1 * DAY
    auto_reject_after: float = 2 * DAY


@dataclass
class ApprovalRequest:
    request_id: str
    requester: str
    description: str
    approver: str
    manager: str
    timeouts: ApprovalTimeouts = field(default_factory=ApprovalTimeouts)


@dataclass
class Decision:
    """The payload of the ``approve`` and ``reject`` signals."""

    by: str
    comment: str = ""


@dataclass
class TimelineEntry:
    at_seconds: float  # since the request was made, on the workflow's clock
    event: str


@dataclass
class ApprovalStatus:
    stage: str  # "waiting", "reminded", "escalated" or "decided"
    timeline: list[TimelineEntry]


@dataclass
class ApprovalResult:
    request_id: str
    status: str  # "approved", "rejected" or "auto-rejected"
    decided_by: str
    comment: str
    timeline: list[TimelineEntry]


@dataclass
class Notification:
    to: str
    request_id: str
    message: str


# ---------------------------------------------------------------------------------------------
# The activity: sending a message (an email, a chat message) is I/O, so it is an activity.
# ---------------------------------------------------------------------------------------------


@activity.defn
async def send_notification(note: Notification) -> None:
    say(f"  [activity] to {note.to:<6} {note.request_id}: {note.message}")


NOTIFY_TIMEOUT = timedelta(seconds=10)
NOTIFY_RETRY = RetryPolicy(initial_interval=timedelta(seconds=0.5))


# ---------------------------------------------------------------------------------------------
# The workflow.
# ---------------------------------------------------------------------------------------------


@workflow.defn
class ApprovalWorkflow:
    @workflow.init
    def __init__(self, request: ApprovalRequest) -> None:
        self.request = request
        self.stage = "waiting"
        self.deciders = {request.approver}  # who may decide; the manager joins on escalation
        self.status = "pending"  # then "approved", "rejected" or "auto-rejected", once
        self.decided_by = ""
        self.comment = ""
        self.timeline: list[TimelineEntry] = []

    @workflow.run
    async def run(self, request: ApprovalRequest) -> ApprovalResult:
        t = request.timeouts
        self.note(f"requested by {request.requester}: {request.description}")
        await self.notify(request.approver, f"please approve: {request.description}")

        # Wait for a decision. The reminder and the escalation are the steps of an escalation
        # chain, each counted from the request; if nobody has decided by the timeout, the
        # request is rejected.
        remind_at = timedelta(seconds=t.remind_after)
        escalate_at = remind_at + timedelta(seconds=t.escalate_after)
        outcome = await wait_until(
            lambda: self.status != "pending",
            timeout=escalate_at + timedelta(seconds=t.auto_reject_after),
            escalation=[
                Escalation(after=remind_at, action=self.remind),
                Escalation(after=escalate_at, action=self.escalate),
            ],
        )
        if outcome.timed_out:
            self.auto_reject()

        self.stage = "decided"
        await self.notify(request.requester, f"your request was {self.status}")
        return ApprovalResult(
            request.request_id, self.status, self.decided_by, self.comment, self.timeline
        )

    async def remind(self) -> None:
        self.stage = "reminded"
        await self.notify(self.request.approver, "reminder: a request is waiting for you")
        self.note(f"reminder sent to {self.request.approver}")

    async def escalate(self) -> None:
        self.stage = "escalated"
        self.deciders.add(self.request.manager)
        await self.notify(
            self.request.manager,
            f"escalated: {self.request.approver} has not answered; please decide",
        )
        self.note(f"escalated to {self.request.manager}")

    def auto_reject(self) -> None:
        self.status, self.decided_by, self.comment = "auto-rejected", "nobody", "no answer"
        self.note("auto-rejected: no decision in time")

    def decide(self, status: str, decision: Decision) -> None:
        # A signal cannot be refused to its sender (it returns nothing), so a decision that
        # comes too late or from the wrong person is ignored and noted in the timeline.
        if self.status != "pending":
            self.note(f"ignored: {status} by {decision.by} (already {self.status})")
        elif decision.by not in self.deciders:
            self.note(f"ignored: {status} by {decision.by} (not allowed to decide)")
        else:
            self.status, self.decided_by, self.comment = status, decision.by, decision.comment
            self.note(f"{status} by {decision.by}: {decision.comment}")

    def note(self, event: str) -> None:
        at = (workflow.now() - workflow.info().start_time).total_seconds()
        self.timeline.append(TimelineEntry(round(at, 3), event))

    async def notify(self, to: str, message: str) -> None:
        await workflow.execute_activity(
            send_notification,
            Notification(to, self.request.request_id, message),
            start_to_close_timeout=NOTIFY_TIMEOUT,
            retry_policy=NOTIFY_RETRY,
        )

    @workflow.signal
    def approve(self, decision: Decision) -> None:
        self.decide("approved", decision)

    @workflow.signal
    def reject(self, decision: Decision) -> None:
        self.decide("rejected", decision)

    @workflow.query
    def current_status(self) -> ApprovalStatus:
        return ApprovalStatus(self.stage, self.timeline)


# ---------------------------------------------------------------------------------------------
# The client side.
# ---------------------------------------------------------------------------------------------


async def submit(client: Client, request: ApprovalRequest) -> WorkflowHandle[ApprovalResult]:
    handle: WorkflowHandle[ApprovalResult] = await client.start_workflow(
        ApprovalWorkflow.run,
        request,
        id=f"approval-{request.request_id}",
        task_queue=TASK_QUEUE,
        # If the demo was interrupted, pick up the request where it stands.
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
    )
    return handle


# ---------------------------------------------------------------------------------------------
# The demo: three people at their keyboards, played by coroutines.
# ---------------------------------------------------------------------------------------------


async def wait_for_stage(handle: WorkflowHandle[ApprovalResult], stage: str) -> None:
    while True:
        status: ApprovalStatus = await handle.query(ApprovalWorkflow.current_status)
        if status.stage in (stage, "decided"):
            return
        await asyncio.sleep(0.05)


async def dana_approves_quickly(handle: WorkflowHandle[ApprovalResult]) -> None:
    await asyncio.sleep(0.3)
    say(f"{handle.id}: dana clicks 'approve'")
    await handle.signal(ApprovalWorkflow.approve, Decision("dana", "within budget"))


async def erin_approves_after_escalation(handle: WorkflowHandle[ApprovalResult]) -> None:
    await asyncio.sleep(0.3)
    say(f"{handle.id}: mallory clicks 'approve' (but may not decide)")
    await handle.signal(ApprovalWorkflow.approve, Decision("mallory", "looks fine to me"))
    await wait_for_stage(handle, "escalated")
    await asyncio.sleep(0.3)
    say(f"{handle.id}: erin (the manager) clicks 'approve'")
    await handle.signal(ApprovalWorkflow.approve, Decision("erin", "go ahead"))


async def demo(client: Client, timeouts: ApprovalTimeouts) -> None:
    requests = [
        ApprovalRequest("REQ-1", "alex", "a new laptop", "dana", "erin", timeouts),
        ApprovalRequest("REQ-2", "sam", "a conference trip", "dana", "erin", timeouts),
        ApprovalRequest("REQ-3", "kim", "a standing desk", "dana", "erin", timeouts),
    ]
    handles = [await submit(client, r) for r in requests]
    say("submitted REQ-1, REQ-2 and REQ-3; nobody will answer REQ-3")
    await asyncio.gather(
        dana_approves_quickly(handles[0]), erin_approves_after_escalation(handles[1])
    )
    results = [await h.result() for h in handles]

    print("\nTimelines (seconds since the request was made):")
    for result in results:
        print(f"  {result.request_id}: {result.status.upper()} by {result.decided_by}")
        for entry in result.timeline:
            at = f"+{entry.at_seconds:.1f}s"
            print(f"    {at:>7}  {entry.event}")


async def main(db: Path, timeouts: ApprovalTimeouts) -> int:
    print(f"perdure approval demo, database {db}")
    print(
        f"(reminder after {timeouts.remind_after:g} s, escalation {timeouts.escalate_after:g} s "
        f"later, auto-reject {timeouts.auto_reject_after:g} s after that)\n"
    )
    client = await Client.connect(f"sqlite:///{db}")
    try:
        async with Worker(
            client,
            task_queue=TASK_QUEUE,
            workflows=[ApprovalWorkflow],
            activities=[send_notification],
        ):
            await demo(client, timeouts)
    finally:
        await client.close()
    print("\nDone.")
    return 0


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--db",
        type=Path,
        default=Path("perdure-approval.db"),
        help="SQLite file holding the workflows (default: %(default)s)",
    )
    parser.add_argument(
        "--reset", action="store_true", help="delete the database first and start from scratch"
    )
    parser.add_argument("--remind-after", type=float, default=1.0, help="seconds (default 1)")
    parser.add_argument("--escalate-after", type=float, default=1.0, help="seconds (default 1)")
    parser.add_argument(
        "--auto-reject-after", type=float, default=1.5, help="seconds (default 1.5)"
    )
    return parser.parse_args()


if __name__ == "__main__":
    args = parse_args()
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    if args.reset:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{args.db}{suffix}").unlink(missing_ok=True)
    demo_timeouts = ApprovalTimeouts(args.remind_after, args.escalate_after, args.auto_reject_after)
    sys.exit(asyncio.run(main(args.db, demo_timeouts)))
