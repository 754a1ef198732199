"""examples/approval.py: approval, reminder, escalation and auto-reject at the right virtual
times, and the script run as a user runs it."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from example_support import EXAMPLES, load_example, run_example

from perdure import Worker, WorkflowHandle
from perdure.testing import WorkflowEnvironment

SCRIPT = EXAMPLES / "approval.py"
DAY = 24 * 3600

ex = load_example(SCRIPT)
Approval = ex.ApprovalWorkflow
Decision = ex.Decision


def timeline(result_or_status: Any) -> list[tuple[float, str]]:
    return [(e.at_seconds, e.event) for e in result_or_status.timeline]


async def stage(handle: WorkflowHandle[Any]) -> str:
    status = await handle.query(Approval.current_status)
    return str(status.stage)


async def notifications(handle: WorkflowHandle[Any]) -> list[dict[str, str]]:
    """The notifications the workflow sent, in order, read from its history."""
    events = (await handle.fetch_history()).events
    return [
        json.loads(e.attributes["input"][0].data)
        for e in events
        if str(e.event_type) == "ActivityTaskScheduled"
    ]


async def test_approval_timeline_on_the_virtual_clock() -> None:
    async with (
        await WorkflowEnvironment.start_time_skipping() as env,
        Worker(
            env.client,
            task_queue=ex.TASK_QUEUE,
            workflows=[Approval],
            activities=[ex.send_notification],
        ),
        # Virtual time moves only through env.sleep below, so the decisions land at known
        # times (waiting on a client call could otherwise skip to the next deadline).
        env.auto_time_skipping_disabled(),
    ):
        client = env.client

        def request(rid: str) -> Any:
            # The production defaults: remind after 1 day, escalate 1 day later,
            # auto-reject 2 days after that.
            return ex.ApprovalRequest(rid, "alex", f"item {rid}", "dana", "erin")

        quick = await ex.submit(client, request("R1"))
        slow = await ex.submit(client, request("R2"))
        ignored = await ex.submit(client, request("R3"))

        # R1: approved after 30 minutes; no reminder, no escalation.
        await env.sleep(timedelta(minutes=30))
        await quick.signal(Approval.approve, Decision("dana", "ok"))
        # R2: the manager cannot decide before the escalation.
        await slow.signal(Approval.approve, Decision("erin", "too early"))
        await env.sleep(0)
        result = await quick.result()
        assert (result.status, result.decided_by) == ("approved", "dana")
        assert timeline(result) == [
            (0, "requested by alex: item R1"),
            (1800, "approved by dana: ok"),
        ]

        # R2: the reminder goes out at 1 day, the escalation at 2 days.
        await env.sleep(timedelta(days=1) - timedelta(minutes=31))
        assert await stage(slow) == "waiting"
        await env.sleep(timedelta(minutes=2))  # 1 day + 1 minute
        assert await stage(slow) == "reminded"
        await env.sleep(timedelta(days=1) - timedelta(minutes=2))  # 2 days - 1 minute
        assert await stage(slow) == "reminded"
        await env.sleep(timedelta(minutes=2))  # 2 days + 1 minute
        assert await stage(slow) == "escalated"
        await env.sleep(timedelta(hours=1) - timedelta(minutes=1))  # 2 days + 1 hour
        await slow.signal(Approval.approve, Decision("erin", "go"))
        await slow.signal(Approval.reject, Decision("dana", "too late"))
        await env.sleep(0)
        result = await slow.result()
        assert (result.status, result.decided_by, result.comment) == ("approved", "erin", "go")
        assert timeline(result) == [
            (0, "requested by alex: item R2"),
            (1800, "ignored: approved by erin (not allowed to decide)"),
            (DAY, "reminder sent to dana"),
            (2 * DAY, "escalated to erin"),
            (2 * DAY + 3600, "approved by erin: go"),
            (2 * DAY + 3600, "ignored: rejected by dana (already approved)"),
        ]
        assert [n["to"] for n in await notifications(slow)] == ["dana", "dana", "erin", "alex"]

        # R3: nobody answers; auto-rejected 2 days after the escalation, at 4 days.
        await env.sleep(timedelta(days=2) - timedelta(hours=1, seconds=1))
        assert await stage(ignored) == "escalated"
        await env.sleep(timedelta(seconds=2))
        result = await ignored.result()
        assert result.status == "auto-rejected"
        assert timeline(result) == [
            (0, "requested by alex: item R3"),
            (DAY, "reminder sent to dana"),
            (2 * DAY, "escalated to erin"),
            (4 * DAY, "auto-rejected: no decision in time"),
        ]
        assert [n["message"] for n in await notifications(ignored)][-1] == (
            "your request was auto-rejected"
        )


@pytest.mark.realtime
def test_script_runs(tmp_path: Path) -> None:
    out = run_example(SCRIPT, tmp_path / "approval.db")
    assert "REQ-1: APPROVED by dana" in out
    assert "REQ-2: APPROVED by erin" in out
    assert "REQ-3: AUTO-REJECTED by nobody" in out
    assert "ignored: approved by mallory (not allowed to decide)" in out
    assert "to erin   REQ-2: escalated" in out
    # The timelines follow the script's timeouts: reminder at 1 s, escalation 1 s later,
    # auto-reject 1.5 s after that. A timer never fires early; on a busy machine it may fire
    # late, so only the lower bounds and the order are exact.
    reminder = offset(r"reminder sent to dana", out)
    escalation = offset(r"escalated to erin", out)
    rejection = offset(r"auto-rejected: no decision in time", out)
    # Each offset is printed to a tenth of a second, so a gap of two may read 0.1 s short of
    # the true one (1.05 and 2.04 print as 1.1 and 2.0), and float subtraction needs rounding.
    assert 1.0 <= reminder < escalation < rejection, out
    assert escalation >= 2.0 and round(escalation - reminder, 1) >= 0.9, out
    assert rejection >= 3.5 and round(rejection - escalation, 1) >= 1.4, out


def offset(event: str, out: str) -> float:
    """The seconds since the request at which the printed timeline shows ``event``."""
    match = re.search(rf"\+(\d+\.\d)s  {event}", out)
    assert match is not None, out
    return float(match.group(1))
