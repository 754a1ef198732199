"""Security (RELIABILITY.md section 13), CI tier.

* The secrets canary: with the encrypting codec and failure encoding on, a random canary in
  workflow inputs, results, heartbeat details and exception messages appears 0 times in the
  SQLite file and its WAL, in a ``pg_dump`` of the PostgreSQL schema, and in the logs.
* A crafted pickle put in a payload row is never unpickled: the workflow task fails, visibly
  (a WorkflowTaskFailed event naming the encoding), the run stays open, and the pickle's
  ``__reduce__`` never runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pickle
import secrets
import shutil
import sqlite3
import subprocess
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from pgutil import fresh_schema

from perdure import Client, activity, workflow
from perdure._common.events import decode_attributes, encode_attributes
from perdure._common.payload import Payload
from perdure.client import WorkflowExecutionStatus, WorkflowFailureError
from perdure.converter import (
    AesGcmCodec,
    CompositeCodec,
    DataConverter,
    DefaultFailureConverterWithEncodedAttributes,
    ZlibCodec,
)
from perdure.exceptions import ActivityError, ApplicationError
from perdure.testing import WorkflowEnvironment
from perdure.worker import Worker

QUEUE = "secrets"
ENCRYPTING = DataConverter(
    payload_codec=CompositeCodec([ZlibCodec(), AesGcmCodec(os.urandom(32), key_id="k1")]),
    failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
)
TIMEOUT = timedelta(seconds=10)


@activity.defn
async def handle_secret(secret: str) -> str:
    activity.heartbeat(f"working on {secret}")
    return f"done with {secret}"


@activity.defn
async def refuse_secret(secret: str) -> str:
    raise ApplicationError(f"refused {secret}", non_retryable=True)


@workflow.defn
class SecretFlow:
    @workflow.run
    async def run(self, secret: str, fail: bool) -> str:
        result = await workflow.execute_activity(
            handle_secret, secret, start_to_close_timeout=TIMEOUT
        )
        with contextlib.suppress(ActivityError):
            await workflow.execute_activity(refuse_secret, secret, start_to_close_timeout=TIMEOUT)
        if fail:
            raise ApplicationError(f"workflow failed over {secret}")
        return result


@pytest.fixture(params=["sqlite", "postgresql"])
async def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'secrets.db'}"
        return
    async with fresh_schema() as url:
        yield url


def _pg_dump(url: str) -> bytes:
    program = shutil.which("pg_dump") or "/usr/lib/postgresql/15/bin/pg_dump"
    parts = urlsplit(url)
    schema = parse_qs(parts.query)["schema"][0]
    done = subprocess.run(
        [
            program,
            "-h",
            parts.hostname or "127.0.0.1",
            "-p",
            str(parts.port or 5432),
            "-U",
            parts.username or "postgres",
            "-n",
            schema,
            parts.path.lstrip("/"),
        ],
        capture_output=True,
        check=True,
        timeout=60,
    )
    assert b"CREATE TABLE" in done.stdout  # the dump holds the schema's tables
    return done.stdout


async def test_secret_canary(
    store_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    canary = f"canary-{secrets.token_hex(8)}"
    env = await WorkflowEnvironment.start_time_skipping(url=store_url, data_converter=ENCRYPTING)
    try:
        client = env.client
        async with Worker(
            client,
            task_queue=QUEUE,
            workflows=[SecretFlow],
            activities=[handle_secret, refuse_secret],
        ):
            ok = await client.execute_workflow(
                SecretFlow.run, args=(canary, False), id="ok", task_queue=QUEUE
            )
            assert ok == f"done with {canary}"  # decoded with the key, it is all there
            with pytest.raises(WorkflowFailureError) as failed:
                await client.execute_workflow(
                    SecretFlow.run, args=(canary, True), id="failed", task_queue=QUEUE
                )
            assert canary in str(failed.value.cause)
    finally:
        await env.shutdown()
    secret = canary.encode()
    if store_url.startswith("sqlite"):
        files = [tmp_path / "secrets.db", tmp_path / "secrets.db-wal"]
        stored = b"".join(f.read_bytes() for f in files if f.exists())
        assert len(stored) > 10_000
    else:
        stored = await asyncio.to_thread(_pg_dump, store_url)
    assert stored.count(secret) == 0
    logged = "\n".join(
        r.getMessage() + (logging.Formatter().formatException(r.exc_info) if r.exc_info else "")
        for r in caplog.records
    )
    assert caplog.records  # the activity's failure was logged ...
    assert logged.count(canary) == 0  # ... without the secret


class _Sentinel:
    """Unpickling this creates a file: proof that a pickle from the database was run."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (self.path, "w"))


@workflow.defn
class Echo:
    @workflow.run
    async def run(self, value: str) -> str:
        return value


async def test_crafted_pickle_in_a_payload_row_never_runs(tmp_path: Path) -> None:
    db = tmp_path / "pickle.db"
    sentinel = tmp_path / "pwned"
    client = await Client.connect(f"sqlite:///{db}")
    try:
        handle = await client.start_workflow(Echo.run, "harmless", id="victim", task_queue=QUEUE)
        crafted = pickle.dumps(_Sentinel(str(sentinel)))
        for encoding in (b"binary/pickle", b"python/pickle", b"json/plain"):
            conn = sqlite3.connect(db)
            (row,) = conn.execute(
                "SELECT attributes FROM history WHERE event_id = 1 AND event_type = "
                "'WorkflowExecutionStarted'"
            )
            attrs = decode_attributes(row[0])
            attrs["input"] = [Payload({"encoding": encoding}, crafted)]
            with conn:
                conn.execute(
                    "UPDATE history SET attributes = ? WHERE event_id = 1",
                    (encode_attributes(attrs),),
                )
            conn.close()
            async with Worker(client, task_queue=QUEUE, workflows=[Echo]):

                async def failed_visibly() -> bool:
                    history = await handle.fetch_history()
                    return any(
                        str(e.event_type) == "WorkflowTaskFailed"
                        and "cannot be decoded" in e.attributes["failure"]["message"]
                        for e in history.events
                    )

                for _ in range(1000):
                    if await failed_visibly():
                        break
                    await asyncio.sleep(0.01)
                else:
                    pytest.fail("the workflow task did not fail visibly within 10 s")
            assert not sentinel.exists()
            assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING
    finally:
        await client.close()
