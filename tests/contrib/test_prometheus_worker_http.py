"""``perdure worker --metrics-port``: a real worker process serves its metrics over HTTP."""

from __future__ import annotations

import asyncio
import re
import signal
import sys
import textwrap
from pathlib import Path

import httpx
import pytest

from perdure import Client

PERDURE = str(Path(sys.executable).parent / "perdure")

APP = textwrap.dedent(
    """
    from datetime import timedelta

    from perdure import activity, workflow


    @activity.defn
    async def shout(text: str) -> str:
        return text.upper()


    @workflow.defn
    class Greeter:
        @workflow.run
        async def run(self, name: str) -> str:
            return await workflow.execute_activity(
                shout, f"hello {name}", start_to_close_timeout=timedelta(seconds=10)
            )
    """
)


@pytest.mark.realtime
@pytest.mark.timeout(60)
async def test_worker_serves_its_metrics_on_the_metrics_port(tmp_path: Path) -> None:
    (tmp_path / "metered_app.py").write_text(APP)
    db = f"sqlite:///{tmp_path / 'app.db'}"
    process = await asyncio.create_subprocess_exec(
        PERDURE,
        "worker",
        "--db",
        db,
        "--task-queue",
        "greet",
        "--metrics-port",
        "0",  # any free port: the worker prints the one it took
        "metered_app",
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        assert process.stdout is not None
        url = None
        while url is None:
            line = (await asyncio.wait_for(process.stdout.readline(), 30)).decode()
            assert line, "the worker exited before serving metrics"
            found = re.search(r"metrics on (http://127\.0\.0\.1:\d+/metrics)", line)
            url = found.group(1) if found else None
        client = await Client.connect(db)
        for i in range(2):
            result = await asyncio.wait_for(
                client.execute_workflow("Greeter", "ada", id=f"g{i}", task_queue="greet"), 30
            )
            assert result == "HELLO ADA"
        await client.close()
        async with httpx.AsyncClient() as http:
            response = await http.get(url)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain")
        text = response.text
        labels = 'namespace="default",task_queue="greet",workflow_type="Greeter"'
        assert f"perdure_workflow_completed_total{{{labels}}} 2.0" in text
        assert 'perdure_activity_execution_latency_count{activity_type="shout"' in text
        assert re.search(
            r'perdure_worker_task_slots_available\{[^}]*ActivityWorker"\} 100\.0', text
        )
        assert "# TYPE perdure_task_queue_backlog gauge" in text
        assert "process_cpu_seconds_total" in text  # prometheus_client's default collectors
        process.send_signal(signal.SIGTERM)
        output, _ = await asyncio.wait_for(process.communicate(), 30)
        assert process.returncode == 0, output
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
