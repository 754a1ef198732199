"""``perdure worker`` while its database is away: it says so, waits with backoff (a few lines
of log, next to no CPU) and starts working once the database answers; a database that
refuses it for good (no such database) makes it exit with a clear error."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from pgserver import private_server
from pgutil import POSTGRES_URL, postgres_admin, with_schema
from test_worker_command import PERDURE, write_app

from perdure import Client

pytestmark = [
    pytest.mark.realtime,
    pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc/<pid>/stat"),
]

# Real seconds the worker is watched for while the database is away.
WATCH = 10.0
WAIT = 30.0  # an upper bound on waiting for a line of output, never a delay


def free_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) the process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def output_of(log: Path) -> str:
    return log.read_text(errors="replace")


async def start_worker(tmp_path: Path, db: str, log: Path) -> asyncio.subprocess.Process:
    write_app(tmp_path)
    with log.open("wb") as out:  # a file, not a pipe: a full pipe would stop a spinning worker
        return await asyncio.create_subprocess_exec(
            PERDURE,
            "worker",
            "--db",
            db,
            "--task-queue",
            "greet",
            "greeter_app",
            cwd=tmp_path,
            stdout=out,
            stderr=asyncio.subprocess.STDOUT,
        )


async def wait_for_output(log: Path, text: str) -> None:
    async def seen() -> None:
        # A file written by another process: nothing to wait on but the file itself.
        while text not in output_of(log):  # noqa: ASYNC110
            await asyncio.sleep(0.05)

    try:
        await asyncio.wait_for(seen(), WAIT)
    except TimeoutError:
        pytest.fail(f"{text!r} not in the worker's output:\n{output_of(log)[-3000:]}")


async def stop(process: asyncio.subprocess.Process) -> int:
    if process.returncode is None:
        process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), WAIT)
        except TimeoutError:
            process.kill()
            await process.wait()
    return process.returncode if process.returncode is not None else -1


@pytest.mark.timeout(90)
async def test_a_worker_waits_quietly_for_an_unreachable_database(tmp_path: Path) -> None:
    log = tmp_path / "worker.log"
    db = f"postgresql://postgres@127.0.0.1:{free_port()}/test"
    process = await start_worker(tmp_path, db, log)
    try:
        await wait_for_output(log, "perdure worker: task queue 'greet'")
        began = cpu_seconds(process.pid)
        await asyncio.sleep(WATCH)  # what is tested is how the worker spends this time
        assert process.returncode is None, output_of(log)[-3000:]
        used = cpu_seconds(process.pid) - began
    finally:
        code = await stop(process)
    output = output_of(log)
    lines = output.splitlines()
    assert len(lines) < 50, f"{len(lines)} lines, {len(output)} bytes:\n{output[:3000]}"
    assert "does not answer" in output and "ConnectionRefusedError" in output, output
    assert used < 1.0, f"{used:.2f}s of CPU in {WATCH:.0f}s"
    assert code == 0, output
    assert lines[-1].endswith("perdure worker: stopped"), output


@pytest.mark.timeout(60)
async def test_a_worker_exits_when_the_database_refuses_it(tmp_path: Path) -> None:
    await (await postgres_admin()).close()  # the server answers
    missing = f"/no_such_database_{uuid.uuid4().hex[:8]}"
    db = urlunsplit(urlsplit(POSTGRES_URL)._replace(path=missing))
    log = tmp_path / "worker.log"
    process = await start_worker(tmp_path, db, log)
    code = await asyncio.wait_for(process.wait(), WAIT)
    output = output_of(log)
    assert code == 1, output
    assert f"Error: Cannot open the database: Cannot connect to PostgreSQL at {db}" in output
    assert "does not exist" in output
    assert "Traceback" not in output


@pytest.mark.timeout(180)
async def test_a_worker_started_before_its_database_works_once_it_answers(
    tmp_path: Path,
) -> None:
    with private_server() as server:
        await asyncio.to_thread(server.stop, "fast")
        db = with_schema(server.url, "app")
        log = tmp_path / "worker.log"
        process = await start_worker(tmp_path, db, log)
        try:
            await wait_for_output(log, "does not answer")
            await asyncio.to_thread(server.start)
            client = await Client.connect(db)
            try:
                result = await asyncio.wait_for(
                    client.execute_workflow("Greeter", "ada", id="g", task_queue="greet"), WAIT
                )
            finally:
                await client.close()
            assert result == "HELLO ADA"
            await wait_for_output(log, "answers again")
        finally:
            code = await stop(process)
        output = output_of(log)
        assert code == 0, output
        assert "Traceback" not in output, output
        assert "ERROR" not in output, output
