"""Large payloads kept outside the database (``DataConverter(external_storage=...)``): they
round-trip through history as references, encrypted first when a codec is set; an
unreachable storage fails an activity attempt (retried), a missing blob fails the workflow
task (not the workflow); retention deletes the blobs only deleted runs referred to."""

from __future__ import annotations

import dataclasses
import os
import shutil
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from codec_support import ENCRYPTING
from pgutil import fresh_schema

from perdure import Worker, activity, workflow
from perdure._common import external
from perdure.client import WorkflowExecutionStatus
from perdure.common import RetryPolicy
from perdure.converter import DataConverter, FileStorage
from perdure.exceptions import ExternalPayloadNotFoundError
from perdure.testing import WorkflowEnvironment

MB = 1024 * 1024
DAY = timedelta(days=1)
BLOCKER: Path | None = None


@activity.defn
def make_document(size: int) -> dict[str, object]:
    if activity.info().attempt == 2 and BLOCKER is not None:
        BLOCKER.unlink()  # the storage comes back for the second attempt
    # Random, so that compression (ENCRYPTING zips first) does not shrink it.
    return {"attempt": activity.info().attempt, "body": os.urandom(size // 2).hex()}


@workflow.defn
class Documents:
    @workflow.run
    async def run(self, size: int) -> dict[str, object]:
        doc = await workflow.execute_activity(
            make_document,
            size,
            start_to_close_timeout=timedelta(minutes=1),
            retry_policy=RetryPolicy(maximum_attempts=3),
        )
        return {"attempt": doc["attempt"], "length": len(str(doc["body"]))}


@workflow.defn
class Holder:
    def __init__(self) -> None:
        self.go = False

    @workflow.run
    async def run(self, document: str) -> int:
        await workflow.wait_condition(lambda: self.go)
        return len(document)

    @workflow.signal
    def release(self) -> None:
        self.go = True


@pytest.fixture(params=["sqlite", "postgresql"])
async def url(request: pytest.FixtureRequest) -> AsyncIterator[str | None]:
    if request.param == "sqlite":
        yield None
        return
    async with fresh_schema() as url:
        yield url


def blobs(path: Path) -> list[Path]:
    return sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))


async def raw_history(env: WorkflowEnvironment, workflow_id: str) -> list[object]:
    ex = await env.client.store.describe(env.client.namespace, workflow_id, None)
    return list(await env.client.store.get_history(ex.run_id))


async def test_a_large_activity_result_round_trips_encrypted_through_the_storage(
    url: str | None, tmp_path: Path
) -> None:
    storage = FileStorage(tmp_path / "blobs")
    converter = dataclasses.replace(ENCRYPTING, external_storage=storage)
    env = await WorkflowEnvironment.start_time_skipping(url=url, data_converter=converter)
    try:
        async with Worker(
            env.client, task_queue="q", workflows=[Documents], activities=[make_document]
        ):
            result = await env.client.execute_workflow(
                Documents.run, 5 * MB, id="doc", task_queue="q"
            )
        assert result == {"attempt": 1, "length": 5 * MB}
        # History holds a reference, small; the blob holds the encrypted payload.
        events = await raw_history(env, "doc")
        completed = next(e for e in events if e.event_type.value == "ActivityTaskCompleted")  # type: ignore[attr-defined]
        ref = completed.attributes["result"]  # type: ignore[attr-defined]
        assert external.is_reference(ref) and ref.size() < 1024
        [blob] = blobs(tmp_path / "blobs")
        assert blob.stat().st_size > MB
        assert b"YmluYXJ5L2VuY3J5cHRlZA==" in blob.read_bytes()[:200]  # binary/encrypted
        # fetch_history gives the payload back (as the codec wrote it), not the reference.
        history = await env.client.get_workflow_handle("doc").fetch_history()
        fetched = next(e for e in history.events if e.event_type.value == "ActivityTaskCompleted")
        assert not external.is_reference(fetched.attributes["result"])
        assert fetched.attributes["result"].size() > MB
    finally:
        await env.shutdown()


async def test_an_unreachable_storage_fails_the_attempt_and_the_retry_succeeds(
    url: str | None, tmp_path: Path
) -> None:
    global BLOCKER
    BLOCKER = tmp_path / "not-a-directory"
    BLOCKER.write_text("a file where the storage's directory should be")
    storage = FileStorage(BLOCKER / "blobs")
    env = await WorkflowEnvironment.start_time_skipping(
        url=url, data_converter=DataConverter(external_storage=storage)
    )
    try:
        async with Worker(
            env.client, task_queue="q", workflows=[Documents], activities=[make_document]
        ):
            result = await env.client.execute_workflow(
                Documents.run, 300 * 1024, id="doc", task_queue="q"
            )
        assert result == {"attempt": 2, "length": 300 * 1024}
        history = await env.client.get_workflow_handle("doc").fetch_history()
        started = next(e for e in history.events if e.event_type.value == "ActivityTaskStarted")
        assert started.attributes["attempt"] == 2
    finally:
        BLOCKER = None
        await env.shutdown()


async def test_a_missing_blob_fails_the_workflow_task_not_the_workflow(
    url: str | None, tmp_path: Path
) -> None:
    storage = FileStorage(tmp_path / "blobs")
    env = await WorkflowEnvironment.start_time_skipping(
        url=url, data_converter=DataConverter(external_storage=storage)
    )
    try:
        document = os.urandom(200 * 1024).hex()
        handle = await env.client.start_workflow(Holder.run, document, id="h", task_queue="q")
        [blob] = blobs(tmp_path / "blobs")
        saved = tmp_path / "saved"
        shutil.move(blob, saved)
        async with Worker(env.client, task_queue="q", workflows=[Holder]):
            await env.sleep(timedelta(seconds=5))
            described = await handle.describe()
            assert described.status == WorkflowExecutionStatus.RUNNING
            failure = described.last_workflow_task_failure
            assert failure is not None
            assert failure.type == ExternalPayloadNotFoundError.__name__
            assert blob.name in failure.message
            shutil.move(saved, blob)  # the blob is back: the task's next attempt goes on
            await handle.signal(Holder.release)
            assert await handle.result() == len(document)
    finally:
        await env.shutdown()


async def test_retention_deletes_the_blobs_only_deleted_runs_referred_to(
    url: str | None, tmp_path: Path
) -> None:
    storage = FileStorage(tmp_path / "blobs", delete_grace=timedelta(0))
    env = await WorkflowEnvironment.start_time_skipping(
        url=url, data_converter=DataConverter(external_storage=storage)
    )
    try:
        await env.client.update_namespace(retention=30 * DAY)
        shared, own = os.urandom(150 * 1024).hex(), os.urandom(150 * 1024).hex()
        async with Worker(env.client, task_queue="q", workflows=[Holder]):
            first = await env.client.start_workflow(Holder.run, shared, id="a", task_queue="q")
            second = await env.client.start_workflow(Holder.run, shared, id="b", task_queue="q")
            third = await env.client.start_workflow(Holder.run, own, id="c", task_queue="q")
            assert len(blobs(tmp_path / "blobs")) == 2  # the same bytes are stored once
            await first.signal(Holder.release)
            await third.signal(Holder.release)
            assert await first.result() == await third.result() == 300 * 1024
            await env.sleep(31 * DAY)
            # "a" and "c" are gone: c's blob with them, the blob "b" still refers to stays.
            assert len(blobs(tmp_path / "blobs")) == 1
            await second.signal(Holder.release)
            assert await second.result() == 300 * 1024
            await env.sleep(31 * DAY)
        assert blobs(tmp_path / "blobs") == []
        assert (await env.client.count_workflows()).count == 0
    finally:
        await env.shutdown()


def test_storage_thresholds_are_checked() -> None:
    with pytest.raises(ValueError, match="threshold"):
        FileStorage(os.devnull, threshold=10)
