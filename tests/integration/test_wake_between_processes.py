"""A client and a ``perdure worker`` process on one database wake each other up.

On SQLite each process binds a socket beside the file (``_store/_wake.py``); on PostgreSQL
the store LISTENs. Both processes here poll for each other's changes only once an hour, so a
workflow that completes at all was carried by the wake-ups: the start to the worker, the
result back to the client.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import wake_app as app

from perdure._store import _base, _wake
from perdure._store._effects import Effects
from perdure._store._types import TaskKind
from perdure.client import Client

pytestmark = [pytest.mark.realtime, pytest.mark.timeout(60)]

HERE = Path(__file__).parent
HOUR = 3600.0
# The worker process polls as seldom as this test process does.
SLOW_POLLING = (
    "import perdure._store._base as b, perdure._store._wake as w; "
    f"b.Store.poll_interval = b.Store.closed_poll_interval = {HOUR}; "
    f"w.FALLBACK_POLL_INTERVAL = {HOUR}; "
    "from perdure.cli import main; main()"
)


@pytest.fixture
def slow_polling(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_wake, "FALLBACK_POLL_INTERVAL", HOUR)
    monkeypatch.setattr(_base.Store, "poll_interval", HOUR)
    monkeypatch.setattr(_base.Store, "closed_poll_interval", HOUR)


@pytest.fixture
async def client(slow_polling: None, db_url: str) -> AsyncIterator[Client]:
    c = await Client.connect(db_url)
    try:
        await c.count_workflows()  # PostgreSQL connects on first use
        yield c
    finally:
        await c.close()


@pytest.fixture
async def worker(
    client: Client, db_url: str, tmp_path: Path
) -> AsyncIterator[asyncio.subprocess.Process]:
    path = os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")]))
    proc = await asyncio.create_subprocess_exec(
        *(sys.executable, "-c", SLOW_POLLING, "worker", "--db", db_url, "-q", app.TASK_QUEUE),
        *("--log-level", "WARNING", "wake_app"),
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": path},
        cwd=tmp_path,
    )
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 30)
        assert b"running" in line, line
        yield proc
    finally:
        if proc.returncode is None:
            proc.terminate()
        await asyncio.wait_for(proc.wait(), 30)


async def run_three(client: Client, prefix: str) -> list[int]:
    """Three workflows one after another: the worker, idle between them, must be woken."""
    return [
        await client.execute_workflow(
            app.Double.run, i, id=f"{prefix}-{i}", task_queue=app.TASK_QUEUE
        )
        for i in range(3)
    ]


async def test_a_worker_process_and_clients_wake_each_other(
    client: Client, worker: asyncio.subprocess.Process, db_url: str
) -> None:
    # This client was open before the worker started (on SQLite, the worker found its
    # socket in the directory); the next one opens after (and says hello).
    assert await run_three(client, "first") == [0, 2, 4]
    later = await Client.connect(db_url)
    try:
        assert await run_three(later, "later") == [0, 2, 4]
    finally:
        await later.close()
    assert worker.returncode is None


def channel(client: Client) -> _wake.PeerChannel:
    peers = getattr(client.store, "_peers", None)
    assert isinstance(peers, _wake.PeerChannel)
    return peers


def names(directory: Path) -> set[str]:
    return {p.name for p in directory.iterdir()}


def sqlite_url(tmp_path: Path) -> tuple[str, Path]:
    db = tmp_path / "app.db"
    return f"sqlite:///{db}", Path(_wake.wake_dir(str(db)))


async def test_a_killed_processs_socket_is_removed_and_a_closed_one_forgotten(
    tmp_path: Path,
) -> None:
    url, directory = sqlite_url(tmp_path)
    directory.mkdir()
    # A process killed before it could remove its socket leaves it behind: nobody listens.
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    dead.bind(str(directory / "4242-dead.sock"))
    dead.close()
    first = await Client.connect(url)
    assert not (directory / "4242-dead.sock").exists()  # its hello was refused
    first_socket = channel(first).path
    second = await Client.connect(url)
    assert channel(second).peers() == [Path(first_socket).name]
    await first.close()
    assert Path(first_socket).name not in names(directory)
    await second.start_workflow("Anything", id="w", task_queue="q")  # a commit tells peers
    assert channel(second).peers() == []
    await second.close()
    assert not directory.exists()  # the last one out removes the directory


async def test_without_a_channel_other_processes_changes_are_polled_for(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from perdure import Worker

    url, directory = sqlite_url(tmp_path)
    directory.write_text("")  # the directory cannot be made (as in a read-only one)
    caplog.set_level(logging.DEBUG, logger="perdure.store")
    # Two clients of one process share no store: only polling joins them, as it would two
    # processes.
    starter = await Client.connect(url)
    runner = await Client.connect(url)
    try:
        assert runner.store.closed_poll_interval == _base.POLL_INTERVAL
        assert "No wake-up channel beside" in caplog.text
        async with Worker(
            runner, task_queue=app.TASK_QUEUE, workflows=[app.Double], activities=[app.double]
        ):
            result = await starter.execute_workflow(
                app.Double.run, 21, id="polled", task_queue=app.TASK_QUEUE
            )
        assert result == 42
    finally:
        await starter.close()
        await runner.close()
    assert directory.is_file()


async def test_a_peer_with_a_full_queue_is_sent_everything_once_it_has_room(
    tmp_path: Path,
) -> None:
    db = str(tmp_path / "app.db")
    received: list[list[object] | None] = []
    everything = asyncio.Event()

    def receive(items: list[object] | None) -> None:
        received.append(items)
        if items is None:
            everything.set()

    receiver = _wake.PeerChannel.open(db, receive)
    sender = _wake.PeerChannel.open(db, lambda items: None)
    assert receiver is not None and sender is not None
    try:
        fx = Effects()
        fx.task_ready("default", "q", TaskKind.WORKFLOW)
        sent = 0
        while not sender._owed:  # without yielding: the receiver reads nothing meanwhile
            sender.send(fx)
            sent += 1
            assert sent < 100_000
        await asyncio.wait_for(everything.wait(), 30)
        # What fitted in its queue arrived (read in one go), then "everything".
        item = ["queue", "default", "q", int(TaskKind.WORKFLOW)]
        assert received == [[item] * (sent - 1), None]
    finally:
        sender.close()
        receiver.close()


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="reached through /proc (Linux)")
async def test_a_path_too_long_for_a_socket_address_still_gets_a_channel(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    deep.mkdir(parents=True)
    db = str(deep / "app.db")
    heard: list[list[object] | None] = []
    arrived = asyncio.Event()

    def receive(items: list[object] | None) -> None:
        heard.append(items)
        arrived.set()

    receiver = _wake.PeerChannel.open(db, receive)
    sender = _wake.PeerChannel.open(db, lambda items: None)
    assert receiver is not None and sender is not None
    directory = Path(_wake.wake_dir(db))
    assert names(directory) == {Path(receiver.path).name, Path(sender.path).name}
    fx = Effects()
    fx.closed["run-1"] = None
    sender.send(fx)
    await asyncio.wait_for(arrived.wait(), 30)
    assert heard == [[["closed", "run-1"]]]
    sender.close()
    receiver.close()
    assert directory.name not in names(directory.parent)
