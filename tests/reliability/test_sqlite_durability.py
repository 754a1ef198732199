"""SQLite durability (RELIABILITY.md section 12): the settings a store opens with, and no
acknowledged commit lost when the process that made it is SIGKILLed."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from perdure import Client

STARTER = """
import asyncio, sys
from perdure import Client

async def main():
    client = await Client.connect(sys.argv[1])
    i = 0
    while True:
        await client.start_workflow("Anything", id=f"ack-{i}", task_queue="q")
        print(f"ack-{i}", flush=True)  # acknowledged: start_workflow returned
        i += 1

asyncio.run(main())
"""


async def test_store_opens_with_durable_settings(tmp_path: Path) -> None:
    client = await Client.connect(f"sqlite:///{tmp_path / 'd.db'}")
    try:
        conn = client.store._conn  # type: ignore[attr-defined]
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        assert conn.execute("PRAGMA busy_timeout").fetchone()[0] > 0
    finally:
        await client.close()


def _start_until_killed(url: str, count: int) -> list[str]:
    """Start workflows in a child process; SIGKILL it after ``count`` were acknowledged; the
    ids of every start it acknowledged."""
    proc = subprocess.Popen(
        [sys.executable, "-c", STARTER, url], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    acked: list[str] = []
    try:
        assert proc.stdout is not None
        while len(acked) < count:
            line = proc.stdout.readline()
            assert line, proc.stderr.read().decode() if proc.stderr else ""
            acked.append(line.decode().strip())
        os.kill(proc.pid, signal.SIGKILL)
        rest, _ = proc.communicate(timeout=30)
        return acked + rest.decode().split()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.realtime
async def test_no_acknowledged_start_lost_to_sigkill(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'acks.db'}"
    acked = await asyncio.to_thread(_start_until_killed, url, 200)
    client = await Client.connect(url)
    try:
        for wid in acked:
            await client.get_workflow_handle(wid).describe()  # raises if it was lost
    finally:
        await client.close()
