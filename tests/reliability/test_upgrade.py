"""A mixed-version upgrade (RELIABILITY.md section 7): workflows started by the previous
schema version's code continue under the current code, which changed them behind
``workflow.patched``.

The previous version is real code, not a simulation: ``git archive`` of the newest commit
whose store schema has one migration fewer than the current one (perdure has no tagged
release yet; the schema is what an upgrade must carry across). A process running that code
creates the database at its schema version, starts workflows, runs them with ``UpgradeV1``
to the middle (a first activity done, a signal awaited), and is SIGKILLed. The current code
then opens the database (migrating it to the latest version; the previous code then refuses
to open it, so the fleet cannot be mixed past the migration), and a worker with
``UpgradeV2`` finishes them: the patch before the wait is replayed without its marker (the
old path), the patch after it runs fresh (the new path); a workflow the old code completed
still reads back; a fresh workflow takes both new paths; every history passes the auditor
and replays on the current code.

Skipped where the repository's history is not at hand (an sdist, a shallow clone).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from harness.auditor import audit
from harness.upgrade_app import DONE_ID, QUEUE, UpgradeV2, ids, step

from perdure import Client, Worker
from perdure._store._schema import LATEST_VERSION
from perdure.worker import Replayer

pytestmark = [pytest.mark.realtime, pytest.mark.timeout(180)]

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
SCHEMA = "src/perdure/_store/_schema.py"
RUNNING = 3


def _git(*args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(ROOT), *args], check=True, capture_output=True, text=True
    ).stdout


def _migrations_at(commit: str) -> int:
    namespace: dict[str, object] = {}
    exec(_git("show", f"{commit}:{SCHEMA}"), namespace)  # the schema list of that commit
    migrations = namespace["MIGRATIONS"]
    assert isinstance(migrations, list)
    return len(migrations)


@pytest.fixture(scope="module")
def previous(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, int, Path]:
    """(commit, its schema version, a directory holding its ``src``)."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("the previous version comes from the repository's history: no git here")
    try:
        commits = _git("log", "--format=%H", "--", SCHEMA).split()
        found = next(
            ((c, n) for c in commits if (n := _migrations_at(c)) == LATEST_VERSION - 1), None
        )
    except subprocess.CalledProcessError as exc:
        pytest.skip(f"git cannot read the history: {exc.stderr.strip()}")
    if found is None:
        pytest.skip(f"no commit with schema version {LATEST_VERSION - 1} in this history")
    commit, version = found
    directory = tmp_path_factory.mktemp("previous")
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", commit, "src/perdure"],
        check=True,
        capture_output=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(directory)], input=archive, check=True)
    return commit, version, directory / "src"


def _schema_version(url: str) -> int:
    conn = sqlite3.connect(url.removeprefix("sqlite:///"))
    try:
        return int(conn.execute("SELECT version FROM perdure_schema").fetchone()[0])
    finally:
        conn.close()


def _spawn_old(url: str, src: Path, log: Path) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(src), str(HERE)])
    with open(log, "wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "harness.upgrade_app", "old", url, str(RUNNING)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=log.parent,
        )


def _open_with(src: Path, url: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(src)
    code = (
        "import asyncio, sys\n"
        "from perdure import Client\n"
        "async def main():\n"
        "    client = await Client.connect(sys.argv[1])\n"
        "    try:\n"
        "        await client.count_workflows()\n"
        "    finally:\n"
        "        await client.close()\n"
        "asyncio.run(main())\n"
    )
    return subprocess.run(
        [sys.executable, "-c", code, url],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=120,
    )


async def _run_old(url: str, src: Path, tmp_path: Path) -> None:
    log = tmp_path / "old.log"
    proc = _spawn_old(url, src, log)
    try:
        for _ in range(1200):
            if "READY" in log.read_text(errors="replace") or proc.poll() is not None:
                break
            await asyncio.sleep(0.05)
        text = log.read_text(errors="replace")
        assert "READY" in text, f"the previous version's process did not get ready:\n{text}"
        # The old version ran its own code: the perdure it imported is the archived one.
        assert f"perdure {src}" in text, text
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)


async def test_workflows_of_the_previous_version_continue(
    tmp_path: Path, previous: tuple[str, int, Path]
) -> None:
    commit, version, src = previous
    url = f"sqlite:///{tmp_path / 'store.db'}"
    await _run_old(url, src, tmp_path)
    assert _schema_version(url) == version, "the old code did not create its own schema"
    client = await Client.connect(url)
    try:
        await client.count_workflows()  # the first use: the schema is migrated
        assert _schema_version(url) == LATEST_VERSION
        # No mixed fleet past the migration: the previous version refuses the newer schema
        # (its workers must be stopped before the first current one opens the database).
        refused = _open_with(src, url)
        assert refused.returncode != 0, refused.stdout
        assert "newer than this perdure understands" in refused.stdout, refused.stdout
        async with Worker(client, task_queue=QUEUE, workflows=[UpgradeV2], activities=[step]):
            assert await client.get_workflow_handle(DONE_ID).result() == ["a", "b"]
            for wid in ids(RUNNING):
                handle = client.get_workflow_handle(wid)
                await handle.signal(UpgradeV2.proceed)
                # "early" was decided under the old code (replayed: no marker, old path);
                # "late" is decided now (fresh: the new path).
                assert await asyncio.wait_for(handle.result(), 60) == ["a", "late", "b"], commit
            fresh = await client.start_workflow(UpgradeV2.run, id="fresh", task_queue=QUEUE)
            await fresh.signal(UpgradeV2.proceed)
            assert await asyncio.wait_for(fresh.result(), 60) == ["a", "early", "late", "b"]
        for wid in [DONE_ID, *ids(RUNNING), "fresh"]:
            history = await client.get_workflow_handle(wid).fetch_history()
            assert audit(wid, list(history.events), closed=True) == []
            await Replayer(workflows=[UpgradeV2]).replay_workflow(history)
    finally:
        await client.close()
