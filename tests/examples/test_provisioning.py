"""examples/provisioning.py: an environment provisioned; a failure rolled back in reverse (or
all at once), a deletion that fails for good reported while the others still run; every
history replays; and the script run as a user runs it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from example_support import EXAMPLES, load_example, run_example

from perdure import ApplicationError, Worker, WorkflowFailureError
from perdure.client import WorkflowHistory
from perdure.testing import WorkflowEnvironment
from perdure.worker import Replayer

SCRIPT = EXAMPLES / "provisioning.py"

ex = load_example(SCRIPT)


async def provision(spec: Any) -> tuple[list[str], Any]:
    """Run one environment's workflow: the activities it scheduled, and its result or its
    failure's cause."""
    async with (
        await WorkflowEnvironment.start_time_skipping() as env,
        Worker(
            env.client,
            task_queue=ex.TASK_QUEUE,
            workflows=[ex.ProvisionEnvironment],
            activities=ex.ACTIVITIES,
        ),
    ):
        handle = await env.client.start_workflow(
            ex.ProvisionEnvironment.run, spec, id=spec.name, task_queue=ex.TASK_QUEUE
        )
        try:
            outcome = await handle.result()
        except WorkflowFailureError as err:
            outcome = err.cause
        history = await handle.fetch_history()
        calls = activity_calls(history)
    # The history, through its JSON form, replays against the workflow code.
    stored = WorkflowHistory.from_json(spec.name, history.to_json())
    await Replayer(workflows=[ex.ProvisionEnvironment]).replay_workflow(stored)
    return calls, outcome


def activity_calls(history: WorkflowHistory) -> list[str]:
    """The activities scheduled, in history order: 'create_vm 2' for VMs, else the type."""
    calls = []
    for event in history.events:
        if event.event_type.value != "ActivityTaskScheduled":
            continue
        name = event.attributes["activity_type"]
        arg = json.loads(event.attributes["input"][0].data)
        calls.append(f"{name} {arg['index']}" if "index" in arg else name)
    return calls


def rollback(cause: Any) -> dict[str, Any]:
    assert isinstance(cause, ApplicationError), cause
    assert cause.type == "ProvisioningFailed"
    detail: dict[str, Any] = cause.details[0]
    return detail


CREATE_ALL = [
    "create_network",
    "create_database",
    "create_vm 1",
    "create_vm 2",
    "create_vm 3",
    "create_dns_record",
]


async def test_an_environment_is_provisioned() -> None:
    calls, env = await provision(ex.EnvironmentSpec("staging"))
    assert env == ex.Environment(
        "staging",
        "net-staging",
        "db-staging",
        ["staging-vm-1", "staging-vm-2", "staging-vm-3"],
        "staging.example.com",
    )
    assert calls == CREATE_ALL  # nothing torn down


async def test_a_failure_rolls_back_in_reverse_order() -> None:
    calls, cause = await provision(ex.EnvironmentSpec("prod-eu", fail_at="dns"))
    # Every deletion registered before its step, the DNS record's included, ran in reverse;
    # the database's first attempt failed and was retried.
    assert calls == [
        *CREATE_ALL,
        "delete_dns_record",
        "delete_vm 3",
        "delete_vm 2",
        "delete_vm 1",
        "delete_database",
        "delete_network",
    ]
    assert rollback(cause) == {
        "failed_step": "dns",
        "reason": "zone example.com is locked",
        "torn_down": [
            "delete_dns_record",
            "delete_vm",
            "delete_vm",
            "delete_vm",
            "delete_database",
            "delete_network",
        ],
        "left_behind": [],
    }


async def test_a_failure_at_the_first_step_deletes_only_what_was_registered() -> None:
    calls, cause = await provision(ex.EnvironmentSpec("prod-eu", fail_at="network"))
    assert calls == ["create_network", "delete_network"]
    assert rollback(cause)["failed_step"] == "network"


async def test_a_protected_resource_is_reported_and_the_rest_torn_down() -> None:
    spec = ex.EnvironmentSpec("prod-us", fail_at="vms", protected=["database"])
    calls, cause = await provision(spec)
    # All three VMs were created (the third failed) before any was deleted; the network was
    # still deleted after the database's deletion failed for good.
    assert calls == [
        *CREATE_ALL[:5],
        "delete_vm 3",
        "delete_vm 2",
        "delete_vm 1",
        "delete_database",
        "delete_network",
    ]
    assert rollback(cause) == {
        "failed_step": "vms",
        "reason": "prod-us-vm-3: VM quota exceeded",
        "torn_down": ["delete_vm", "delete_vm", "delete_vm", "delete_network"],
        "left_behind": ["db-prod-us: deletion protection is on"],
    }


async def test_parallel_teardown_starts_every_deletion_at_once() -> None:
    spec = ex.EnvironmentSpec("prod-eu", fail_at="dns", parallel_teardown=True)
    calls, cause = await provision(spec)
    assert calls[6:] == [
        "delete_dns_record",
        "delete_vm 3",
        "delete_vm 2",
        "delete_vm 1",
        "delete_database",
        "delete_network",
    ]
    detail = rollback(cause)
    assert sorted(detail["torn_down"]) == sorted(
        ["delete_dns_record", "delete_database", "delete_network", *["delete_vm"] * 3]
    )
    # The database is busy on its first attempt: its retry finishes after all the others.
    assert detail["torn_down"][-1] == "delete_database"


@pytest.mark.realtime
@pytest.mark.parametrize("parallel", [False, True], ids=["reverse", "parallel"])
def test_script_runs(tmp_path: Path, parallel: bool) -> None:
    args = ["--work-seconds", "0", *(["--parallel-teardown"] if parallel else [])]
    out = run_example(SCRIPT, tmp_path / "p.db", *args)
    assert "prod-eu  undo: delete database    attempt 2  ok" in out
    assert "staging      READY   https://staging.example.com (3 VMs)   -" in out
    eu = "prod-eu      FAILED  dns: zone example.com is locked       torn down: "
    torn_down = next(line for line in out.splitlines() if line.startswith(eu))[len(eu) :]
    if parallel:  # in the order they completed: the database's retry comes last
        assert sorted(torn_down.split(", ")[:-1]) == ["3 vms", "dns record", "network"]
        assert torn_down.endswith(", database")
    else:
        assert torn_down == "dns record, 3 vms, database, network"
    assert "LEFT BEHIND: db-prod-us: deletion protection is on" in out

    again = run_example(SCRIPT, tmp_path / "p.db", *args)
    assert again.count("finished in an earlier run") == 3
    assert "attempt" not in again  # nothing ran again
