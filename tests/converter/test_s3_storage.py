"""``S3Storage`` against a real S3-compatible server on loopback (moto's, started as a
process): signed PUT, GET, HEAD and DELETE, and a workflow's large result through it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from perdure import Worker, activity, workflow
from perdure.converter import DataConverter, S3Storage
from perdure.converter._external import storage_from_uri
from perdure.exceptions import ExternalPayloadNotFoundError, PerdureError
from perdure.testing import WorkflowEnvironment

pytest.importorskip("moto", reason="the S3 tests run moto's server: pip install -e '.[dev]'")
boto3 = pytest.importorskip("boto3")

CREDENTIALS = {"access_key_id": "testing", "secret_access_key": "testing"}


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:  # until it listens (bounded)
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    pytest.fail("moto_server did not start")
                time.sleep(0.05)
        url = f"http://127.0.0.1:{port}"
        boto3.client(
            "s3",
            endpoint_url=url,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        ).create_bucket(Bucket="payloads")
        yield url
    finally:
        server.terminate()
        server.wait(10)


async def test_blobs_are_put_read_dated_and_deleted(endpoint: str) -> None:
    storage = S3Storage("payloads", prefix="p/", endpoint_url=endpoint, **CREDENTIALS)
    await storage.put("abc123", b"\x00bytes" * 1000)
    assert await storage.get("abc123") == b"\x00bytes" * 1000
    written = await storage.written_at("abc123")
    assert written is not None and abs(written - time.time()) < 120
    await storage.delete("abc123")
    assert await storage.written_at("abc123") is None
    with pytest.raises(ExternalPayloadNotFoundError, match="abc123"):
        await storage.get("abc123")


async def test_an_unreachable_endpoint_is_an_error_saying_so(endpoint: str) -> None:
    storage = S3Storage("payloads", endpoint_url="http://127.0.0.1:9", **CREDENTIALS)
    with pytest.raises(PerdureError, match="unreachable"):
        await storage.put("k1", b"x")


def test_a_reference_names_the_storage(endpoint: str, monkeypatch: pytest.MonkeyPatch) -> None:
    storage = S3Storage("payloads", prefix="p/", endpoint_url=endpoint, **CREDENTIALS)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    again = storage_from_uri(storage.uri)
    assert isinstance(again, S3Storage)
    assert (again.bucket, again.prefix, again.endpoint_url) == ("payloads", "p/", endpoint)


@activity.defn
async def big() -> str:
    return os.urandom(200 * 1024).hex()


@workflow.defn
class Big:
    @workflow.run
    async def run(self) -> int:
        result = await workflow.execute_activity(big, start_to_close_timeout=timedelta(minutes=1))
        return len(result)


async def test_a_large_result_round_trips_through_s3(endpoint: str) -> None:
    storage = S3Storage("payloads", prefix="wf/", endpoint_url=endpoint, **CREDENTIALS)
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=DataConverter(external_storage=storage)
    )
    try:
        async with Worker(env.client, task_queue="q", workflows=[Big], activities=[big]):
            assert await env.client.execute_workflow(Big.run, id="big", task_queue="q") == (
                400 * 1024
            )
        listed = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        ).list_objects_v2(Bucket="payloads", Prefix="wf/")
        assert listed["KeyCount"] == 1
    finally:
        await env.shutdown()
