"""Rate limits on activities: ``max_task_queue_activities_per_second`` holds every worker of
the queue together to the rate (kept in the database), ``max_activities_per_second`` holds
one worker. The start times are read from the workflow's result, as its history records
it: no one-second window holds more than the rate plus the small burst a bucket allows."""

from __future__ import annotations

from pathlib import Path

import flow_app as app
import pytest

from perdure import Client, Worker
from perdure._store._flow import burst
from perdure.testing import WorkflowEnvironment

pytestmark = [pytest.mark.realtime, pytest.mark.timeout(60)]
RATE = 20.0
CALLS = 40


def check_paced(starts: list[float], rate: float) -> None:
    assert len(starts) == CALLS
    assert app.max_in_window(starts) <= rate + burst(rate), sorted(starts)
    # And not slower than the rate needs: the calls beyond the first burst take their time.
    span = max(starts) - min(starts)
    assert span >= (CALLS - rate - burst(rate)) / rate


async def test_a_queue_rate_holds_two_workers_together(tmp_path: Path) -> None:
    # On SQLite here; on PostgreSQL by two worker processes below.
    real_env = await WorkflowEnvironment.start_local(f"sqlite:///{tmp_path / 'rate.db'}")
    client = real_env.client
    kwargs = {
        "task_queue": app.TASK_QUEUE,
        "workflows": [app.PacedFanOut],
        "activities": [app.paced_call],
        "max_task_queue_activities_per_second": RATE,
    }
    try:
        async with Worker(client, **kwargs), Worker(client, **kwargs):  # type: ignore[arg-type]
            starts = await client.execute_workflow(
                app.PacedFanOut.run, CALLS, id="paced", task_queue=app.TASK_QUEUE
            )
        check_paced(starts, RATE)
    finally:
        await real_env.shutdown()


async def test_a_worker_rate_holds_that_worker() -> None:
    # The worker's own bucket is in memory: one store is enough.
    real_env = await WorkflowEnvironment.start_local()
    client = real_env.client
    try:
        async with Worker(
            client,
            task_queue=app.TASK_QUEUE,
            workflows=[app.PacedFanOut],
            activities=[app.paced_call],
            max_activities_per_second=RATE,
        ):
            starts = await client.execute_workflow(
                app.PacedFanOut.run, CALLS, id="paced", task_queue=app.TASK_QUEUE
            )
        check_paced(starts, RATE)
    finally:
        await real_env.shutdown()


async def test_two_worker_processes_share_the_rate_on_postgresql(
    postgres_url: str, tmp_path: Path
) -> None:
    log = str(tmp_path / "worker{}.log")
    procs = [app.spawn(postgres_url, ["--rate", str(RATE)], log.format(i)) for i in range(2)]
    try:
        client = await Client.connect(postgres_url)
        try:
            starts = await client.execute_workflow(
                app.PacedFanOut.run, CALLS, id="paced", task_queue=app.TASK_QUEUE
            )
        finally:
            await client.close()
        check_paced(starts, RATE)
    finally:
        app.stop(procs)


def test_perdure_worker_takes_the_limits_and_refuses_a_bad_one(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from perdure.cli import main

    result = CliRunner().invoke(
        main,
        [
            "worker",
            "--db",
            f"sqlite:///{tmp_path / 'w.db'}",
            "-q",
            "q",
            "--max-task-queue-activities-per-second",
            "0",
            "flow_app",
        ],
    )
    assert result.exit_code == 1
    assert "max_task_queue_activities_per_second must be a positive number" in result.output
