"""Under a payload codec a workflow reads its local activities' outcomes (they were encoded
before the workflow saw them, which no converter reads: the task failed on every attempt),
and their markers are stored encoded, once."""

from __future__ import annotations

from datetime import timedelta

from perdure import Worker, activity, workflow
from perdure.common import RetryPolicy
from perdure.exceptions import ActivityError, ApplicationError
from perdure.testing import WorkflowEnvironment


@activity.defn
async def lookup(key: str) -> dict[str, str]:
    if key == "missing":
        raise ApplicationError(f"no {key}", {"key": key}, non_retryable=True)
    return {key: key.upper()}


@workflow.defn
class Lookups:
    @workflow.run
    async def run(self, keys: list[str]) -> list[object]:
        out: list[object] = []
        for key in keys:
            try:
                out.append(
                    await workflow.execute_local_activity(
                        lookup,
                        key,
                        start_to_close_timeout=timedelta(seconds=5),
                        retry_policy=RetryPolicy(maximum_attempts=1),
                    )
                )
            except ActivityError as err:
                assert isinstance(err.cause, ApplicationError)
                out.append([err.cause.message, *err.cause.details])
            await workflow.sleep(1)  # a task per key: later tasks replay the earlier markers
        return out


async def test_a_local_activity_outcome_reads_back_under_a_codec(
    codec_env: WorkflowEnvironment,
) -> None:
    # No cache: every task replays the markers recorded so far, decoding them from history.
    async with Worker(
        codec_env.client,
        task_queue="q",
        workflows=[Lookups],
        activities=[lookup],
        max_cached_workflows=0,
    ):
        handle = await codec_env.client.start_workflow(
            Lookups.run, ["a", "missing", "b"], id="lookups", task_queue="q"
        )
        await codec_env.sleep(timedelta(minutes=1))  # its three timers, and any task retries
        stuck = (await handle.describe()).last_workflow_task_failure
        assert stuck is None, stuck.message
        result = await handle.result()
        history = await handle.fetch_history()
    assert result == [{"a": "A"}, ["no missing", {"key": "missing"}], {"b": "B"}]
    markers = [e.attributes for e in history.events if e.event_type.value == "MarkerRecorded"]
    assert len(markers) == 3
    codec = codec_env.client.data_converter.payload_codec
    assert codec is not None
    for marker in (markers[0], markers[2]):
        stored = marker["result"]
        assert stored.metadata["encoding"] == b"binary/encrypted"
        # Encoded once: one decode gives what the converter wrote.
        assert (await codec.decode([stored]))[0].metadata["encoding"] == b"json/plain"
    failure = markers[1]["failure"]
    assert failure["message"] == "Encoded failure"
    assert [p.metadata["encoding"] for p in failure["details"]] == [b"binary/encrypted"]
