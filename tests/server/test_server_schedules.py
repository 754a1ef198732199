"""The schedule routes, on each store: create, list, describe, pause, unpause, trigger,
backfill, delete; a taken id is 409, a missing one 404, a bad spec 400, and a read token may
look but not act."""

from __future__ import annotations

from typing import Any

from server_support import InProcess

NIGHTLY: dict[str, Any] = {
    "schedule_id": "nightly",
    "action": {
        "workflow_type": "Report",
        "workflow_id": "report",
        "task_queue": "shop",
        "args": ["sales", 3],
        "memo": {"team": "ops"},
    },
    "spec": {"cron_expressions": ["0 2 * * *"], "time_zone_name": "Europe/Paris"},
    "policy": {"overlap": "BUFFER_ONE"},
    "state": {"note": "for the team"},
}


async def test_create_describe_list_and_act_on_a_schedule(on_store: InProcess) -> None:
    http, auth = on_store.http, on_store.auth(on_store.write)
    created = await http.post("/api/v1/schedules", json=NIGHTLY, headers=auth)
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["schedule_id"] == "nightly"
    assert body["action"]["args"] == ["sales", 3]
    assert body["action"]["memo"] == {"team": "ops"}
    assert body["spec"]["time_zone_name"] == "Europe/Paris"
    assert body["spec"]["calendars"][0]["hour"] == [{"start": 2, "end": 2, "step": 1}]
    assert body["policy"]["overlap"] == "BUFFER_ONE"
    assert body["state"] == {
        "note": "for the team",
        "paused": False,
        "limited_actions": False,
        "remaining_actions": 0,
    }
    assert len(body["info"]["next_action_times"]) > 0

    again = await http.post("/api/v1/schedules", json=NIGHTLY, headers=auth)
    assert again.status_code == 409, again.text
    assert again.json()["error"] == "ScheduleAlreadyRunningError"

    listed = (await http.get("/api/v1/schedules", headers=auth)).json()["schedules"]
    assert [(s["schedule_id"], s["workflow_type"]) for s in listed] == [("nightly", "Report")]

    paused = await http.post(
        "/api/v1/schedules/nightly/pause", json={"note": "quiet"}, headers=auth
    )
    assert paused.json() == {"schedule_id": "nightly", "result": "paused"}
    state = (await http.get("/api/v1/schedules/nightly", headers=auth)).json()["state"]
    assert (state["paused"], state["note"]) == (True, "quiet")
    assert (await http.post("/api/v1/schedules/nightly/unpause", headers=auth)).status_code == 200
    desc = (await http.get("/api/v1/schedules/nightly", headers=auth)).json()
    assert desc["state"]["paused"] is False

    patched = await http.patch(
        "/api/v1/schedules/nightly",
        json={
            "action": {"args": ["refunds"], "execution_timeout": 3600, "memo": None},
            "policy": {"overlap": "SKIP"},
            "state": {"note": None, "remaining_actions": 3},
        },
        headers=auth,
    )
    assert patched.status_code == 200, patched.text
    changed = patched.json()
    assert changed["action"]["args"] == ["refunds"]
    assert changed["action"]["execution_timeout"] == 3600
    assert changed["action"]["memo"] == {}
    assert changed["action"]["workflow_type"] == "Report"  # not given: kept
    assert changed["spec"] == desc["spec"]  # not given: kept, time zone and all
    assert changed["policy"]["overlap"] == "SKIP"
    assert changed["state"] == {
        "note": None,
        "paused": False,
        "limited_actions": True,
        "remaining_actions": 3,
    }
    respec = await http.patch(
        "/api/v1/schedules/nightly",
        json={"spec": {"intervals": [{"every": 900}]}},
        headers=auth,
    )
    assert respec.status_code == 200, respec.text
    assert respec.json()["spec"]["calendars"] == []
    assert respec.json()["spec"]["intervals"] == [{"every": 900.0, "offset": None}]
    assert respec.json()["spec"]["time_zone_name"] is None

    triggered = await http.post("/api/v1/schedules/nightly/trigger", json={}, headers=auth)
    assert triggered.json()["result"] == "triggered"
    backfilled = await http.post(
        "/api/v1/schedules/nightly/backfill",
        json={"start_at": "2026-01-01T00:00:00Z", "end_at": "2026-01-02T00:00:00Z"},
        headers=auth,
    )
    assert backfilled.json()["result"] == "backfilled", backfilled.text

    deleted = await http.delete("/api/v1/schedules/nightly", headers=auth)
    assert deleted.json() == {"schedule_id": "nightly", "result": "deleted"}
    gone = await http.get("/api/v1/schedules/nightly", headers=auth)
    assert gone.status_code == 404
    assert gone.json()["error"] == "ScheduleNotFoundError"


async def test_a_bad_schedule_is_a_400(local: InProcess) -> None:
    http, auth = local.http, local.auth(local.write)
    for spec, message in (
        ({"cron_expressions": ["61 * * * *"]}, "61"),
        ({"cron_expressions": ["0 * * * *"], "time_zone_name": "Mars/Olympus"}, "Mars/Olympus"),
        ({}, "Say when it acts"),
    ):
        answer = await http.post(
            "/api/v1/schedules", json={**NIGHTLY, "schedule_id": "bad", "spec": spec}, headers=auth
        )
        assert answer.status_code == 400, answer.text
        assert message in answer.json()["detail"]
    created = await http.post("/api/v1/schedules", json=NIGHTLY, headers=auth)
    assert created.status_code == 201, created.text
    for patch, status, message in (
        ({"action": {"workflow_type": None}}, 400, "cannot be null"),
        ({"action": {"task_queue": ""}}, 400, "at least 1 character"),
        ({"spec": {}}, 400, "Say when it acts"),
        ({"policy": {"overlap": "SOMETIMES"}}, 400, "overlap"),
        ({"state": {"remaining_actions": -1}}, 400, "remaining_actions"),
        ({"schedule_id": "other"}, 400, "schedule_id"),
    ):
        answer = await http.patch("/api/v1/schedules/nightly", json=patch, headers=auth)
        assert answer.status_code == status, answer.text
        assert message in answer.json()["detail"], answer.text
    unchanged = (await http.get("/api/v1/schedules/nightly", headers=auth)).json()
    assert unchanged["action"]["workflow_type"] == "Report"
    missing = await http.patch("/api/v1/schedules/nobody", json={}, headers=auth)
    assert missing.status_code == 404, missing.text
    backwards = await http.post(
        "/api/v1/schedules/nightly/backfill",
        json={"start_at": "2026-01-02T00:00:00Z", "end_at": "2026-01-01T00:00:00Z"},
        headers=auth,
    )
    assert backwards.status_code == 400


async def test_a_read_token_sees_schedules_and_changes_nothing(local: InProcess) -> None:
    http = local.http
    created = await http.post("/api/v1/schedules", json=NIGHTLY, headers=local.auth(local.write))
    assert created.status_code == 201
    read = local.auth(local.read)
    assert (await http.get("/api/v1/schedules/nightly", headers=read)).status_code == 200
    for path in ("/pause", "/unpause", "/trigger"):
        answer = await http.post(f"/api/v1/schedules/nightly{path}", json={}, headers=read)
        assert answer.status_code == 403, path
    assert (await http.delete("/api/v1/schedules/nightly", headers=read)).status_code == 403
    patch = await http.patch(
        "/api/v1/schedules/nightly", json={"state": {"note": "x"}}, headers=read
    )
    assert patch.status_code == 403
    assert (await http.post("/api/v1/schedules", json=NIGHTLY, headers=read)).status_code == 403
