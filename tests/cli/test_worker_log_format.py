"""``perdure worker --log-format json``: one JSON object per log record, the workflow's and
activity's ids among its fields."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sys
import textwrap
from pathlib import Path

import pytest

from perdure import Client
from perdure.cli._logs import JsonFormatter

PERDURE = str(Path(sys.executable).parent / "perdure")

APP = textwrap.dedent(
    """
    from datetime import timedelta

    from perdure import activity, workflow


    @activity.defn
    async def shout(text: str) -> str:
        activity.logger.info("shouting %s", text)
        return text.upper()


    @workflow.defn
    class Greeter:
        @workflow.run
        async def run(self, name: str) -> str:
            workflow.logger.info("greeting %s", name)
            return await workflow.execute_activity(
                shout, f"hello {name}", start_to_close_timeout=timedelta(seconds=10)
            )
    """
)


@pytest.mark.realtime
@pytest.mark.timeout(60)
async def test_a_worker_logs_json_lines_with_the_ids(tmp_path: Path) -> None:
    (tmp_path / "logged_app.py").write_text(APP)
    db = f"sqlite:///{tmp_path / 'app.db'}"
    process = await asyncio.create_subprocess_exec(
        PERDURE, "worker", "--db", db, "-q", "greet", "--log-format", "json", "logged_app",
        cwd=tmp_path, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        await asyncio.wait_for(process.stdout.readline(), 30)  # the banner: it is running
        client = await Client.connect(db)
        handle = await client.start_workflow("Greeter", "ada", id="g", task_queue="greet")
        assert await asyncio.wait_for(handle.result(), 30) == "HELLO ADA"
        await client.close()
    finally:
        process.send_signal(signal.SIGTERM)
        _, errors = await asyncio.wait_for(process.communicate(), 30)
    records = [json.loads(line) for line in errors.decode().splitlines()]  # every line JSON
    (greeting,) = [r for r in records if r["logger"] == "perdure.workflow"]
    assert greeting["workflow_id"] == "g"
    assert greeting["run_id"] == handle.result_run_id
    assert greeting["workflow_type"] == "Greeter"
    assert greeting["attempt"] == 1
    assert greeting["level"] == "INFO"
    assert greeting["message"].startswith("greeting ada ({")
    (shouting,) = [r for r in records if r["logger"] == "perdure.activity"]
    assert {k: shouting[k] for k in ("activity_id", "activity_type", "attempt", "run_id")} == {
        "activity_id": "1",
        "activity_type": "shout",
        "attempt": 1,
        "run_id": handle.result_run_id,
    }


def test_an_exception_and_an_unserializable_extra_still_make_one_line() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.getLogger("x").makeRecord(
            "x", logging.ERROR, __file__, 1, "failed %s", ("here",), sys.exc_info(),
            extra={"thing": object(), "order": 7},
        )  # fmt: skip
    line = JsonFormatter().format(record)
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["message"] == "failed here"
    assert entry["order"] == 7
    assert entry["thing"].startswith("<object object")
    assert "ValueError: boom" in entry["exception"]
