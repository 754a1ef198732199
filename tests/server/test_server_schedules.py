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
    assert (await http.post("/api/v1/schedules", json=NIGHTLY, headers=read)).status_code == 403
