"""``perdure schedule ...`` as a user runs it: subprocesses against a real database (SQLite
file and PostgreSQL schema), with a real ``perdure worker`` process taking the actions."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from cli_support import Perdure

pytestmark = [pytest.mark.realtime, pytest.mark.timeout(120)]


def describe(perdure: Perdure, schedule_id: str) -> Any:
    return perdure.json("schedule", "describe", "-s", schedule_id)


def test_a_schedule_from_create_to_delete(perdure: Perdure) -> None:
    created = perdure.json(
        "schedule", "create", "-s", "ticker", "--interval", "1s", "--type", "Tick",
        "-t", "shop", "-w", "tick", "-i", '"x"', "--overlap-policy", "AllowAll",
        "--notes", "every second", "--memo", 'team="ops"',
    )  # fmt: skip
    assert isinstance(created, dict)
    assert created["schedule_id"] == "ticker"
    assert created["action"] == {
        "workflow_type": "Tick",
        "workflow_id": "tick",
        "task_queue": "shop",
        "args": ["x"],
        "execution_timeout": None,
        "run_timeout": None,
        "task_timeout": None,
        "memo": {"team": "ops"},  # the runs' memo (Temporal CLI's --memo)
        "search_attributes": {},
    }
    assert created["spec"]["intervals"] == [{"every": 1.0, "offset": None}]
    assert created["policy"]["overlap"] == "ALLOW_ALL"
    assert created["state"] == {
        "note": "every second",
        "paused": False,
        "limited_actions": False,
        "remaining_actions": 0,
    }
    assert created["memo"] == {}
    assert len(created["info"]["next_action_times"]) == 10

    daily = perdure.ok(
        "schedule", "create", "-s", "nightly", "--cron", "30 2 * * MON-FRI",
        "--time-zone", "America/New_York", "--type", "Tick", "-t", "shop", "-w", "nightly",
        "-i", '"n"', "--paused", "--remaining-actions", "5",
    )  # fmt: skip
    assert "Created schedule nightly" in daily
    assert "30 2 * * 1-5" in daily and "America/New_York" in daily
    assert "Remaining actions" in daily

    with perdure.worker():
        perdure.wait_until("tick-", "workflow", "list", "-q", "TemporalScheduledById = 'ticker'")
        assert "Schedule ticker paused" in perdure.ok(
            "schedule", "toggle", "-s", "ticker", "--pause", "--reason", "enough"
        )
        paused = describe(perdure, "ticker")
        assert paused["state"]["paused"] and paused["state"]["note"] == "enough"
        taken = paused["info"]["num_actions"]
        assert taken >= 1
        first = paused["info"]["recent_actions"][0]
        assert first["workflow_id"].startswith("tick-") and first["workflow_id"].endswith("Z")
        result = perdure.ok("workflow", "result", "-w", first["workflow_id"])
        assert orjson.loads(result) == "tick x"

        # Paused: no scheduled action, but a trigger and a backfill act.
        assert "Schedule nightly triggered" in perdure.ok("schedule", "trigger", "-s", "nightly")
        perdure.ok(
            "schedule", "backfill", "-s", "nightly", "--start-time", "2026-03-02T00:00:00Z",
            "--end-time", "2026-03-04T23:00:00Z", "--overlap-policy", "AllowAll",
        )  # fmt: skip
        runs = perdure.json("workflow", "list", "-q", "TemporalScheduledById = 'nightly'")
        assert isinstance(runs, list)
        ids = sorted(r["workflow_id"] for r in runs)
        # 02:30 in New York, Monday to Wednesday (EST), and the trigger's own.
        assert ids[:3] == [
            "nightly-2026-03-02T07:30:00Z",
            "nightly-2026-03-03T07:30:00Z",
            "nightly-2026-03-04T07:30:00Z",
        ]
        assert len(ids) == 4
        assert describe(perdure, "nightly")["state"]["remaining_actions"] == 5

        listed = perdure.ok("schedule", "list").splitlines()
        assert listed[0].split() == [
            "SCHEDULE",
            "ID",
            "WORKFLOW",
            "TYPE",
            "STATE",
            "NEXT",
            "ACTION",
        ]
        assert any(line.startswith("nightly") and "paused" in line for line in listed)
        as_jsonl = perdure.ok("schedule", "list", "-o", "jsonl").splitlines()
        assert [orjson.loads(line)["schedule_id"] for line in as_jsonl] == ["nightly", "ticker"]
        only = perdure.json("schedule", "list", "-q", "TemporalSchedulePaused = true")
        assert isinstance(only, list) and len(only) == 2

        updated = perdure.json(
            "schedule", "update", "-s", "ticker", "--cron", "@daily", "--type", "Tick",
            "-t", "shop", "-w", "tock", "-i", '"y"',
        )  # fmt: skip
        assert isinstance(updated, dict)
        assert updated["spec"]["intervals"] == []
        assert updated["spec"]["calendars"][0]["text"] == "0 0 * * *"
        assert updated["action"]["workflow_id"] == "tock"
        assert updated["state"]["paused"] is False  # update replaces the state too
        assert updated["info"]["num_actions"] >= taken
        assert updated["info"]["last_updated_at"].endswith("Z")

    assert "Schedule ticker deleted" in perdure.ok("schedule", "delete", "-s", "ticker")
    gone = perdure.run("schedule", "describe", "-s", "ticker")
    assert gone.returncode == 1 and "No schedule with id 'ticker'" in gone.stderr


def test_usage_errors(perdure: Perdure) -> None:
    no_spec = perdure.run(
        "schedule", "create", "-s", "x", "--type", "Tick", "-t", "shop", "-w", "x"
    )
    assert no_spec.returncode == 2 and "--cron, --interval or --calendar" in no_spec.stderr
    bad_cron = perdure.run(
        "schedule", "create", "-s", "x", "--cron", "0 0 L * *", "--type", "Tick", "-t", "shop",
        "-w", "x",
    )  # fmt: skip
    assert bad_cron.returncode == 1 and "L, W, # and ?" in bad_cron.stderr
    calendar = perdure.json(
        "schedule", "create", "-s", "cal", "--calendar", '{"dayOfWeek": "Fri", "hour": "17"}',
        "--type", "Tick", "-t", "shop", "-w", "cal",
    )  # fmt: skip
    assert isinstance(calendar, dict)
    assert calendar["spec"]["calendars"][0]["text"] == "0 17 * * 5"
    toggle = perdure.run("schedule", "toggle", "-s", "cal")
    assert toggle.returncode == 2 and "--pause or --unpause" in toggle.stderr
    twice = perdure.run(
        "schedule", "create", "-s", "cal", "--cron", "@daily", "--type", "Tick", "-t", "shop",
        "-w", "cal",
    )  # fmt: skip
    assert twice.returncode == 1 and "already exists" in twice.stderr
