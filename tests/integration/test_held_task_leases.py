"""A worker keeps the workflow tasks it is busy with: their leases are renewed while it holds
them (a batch waiting for the CPU, a slow codec, local activities), so no other worker takes
one over and the run's history shows no workflow task timeout."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import timedelta

import pytest

from perdure import Worker, workflow
from perdure.converter import DataConverter, Payload, PayloadCodec
from perdure.testing import WorkflowEnvironment

# Longer than the tasks' timeout (1 s): without renewals the lease would run out meanwhile.
SLOW_DECODE_S = 2.5


class SlowFirstDecode(PayloadCodec):
    """Leaves payloads as they are; its first decode of a workflow task's history takes
    longer than the task's lease (a busy worker's task waiting its turn)."""

    def __init__(self) -> None:
        self.slow = True

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return list(payloads)

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        if self.slow and payloads:
            self.slow = False
            await asyncio.sleep(SLOW_DECODE_S)
        return list(payloads)


# Each run of Echo's code (a task taken over is run again by the worker that takes it).
RUNS: list[str] = []


@workflow.defn
class Echo:
    @workflow.run
    async def run(self, text: str) -> str:
        RUNS.append(workflow.info().workflow_id)
        return text


@pytest.mark.realtime
@pytest.mark.parametrize("store", ["sqlite", "postgresql"])
async def test_a_task_held_longer_than_its_lease_is_not_taken_over(store: str) -> None:
    from pgutil import fresh_schema

    codec = SlowFirstDecode()
    converter = DataConverter(payload_codec=codec)
    async with fresh_schema() if store == "postgresql" else _no_url() as url:
        env = await WorkflowEnvironment.start_local(url, data_converter=converter)
        try:
            # Two workers: a task whose lease ran out would be taken by the idle one.
            async with (
                Worker(env.client, task_queue="q", workflows=[Echo]),
                Worker(env.client, task_queue="q", workflows=[Echo]),
            ):
                handle = await env.client.start_workflow(
                    Echo.run,
                    "hi",
                    id=f"echo-{store}",
                    task_queue="q",
                    task_timeout=timedelta(seconds=1),
                )
                assert await handle.result() == "hi"
            assert not codec.slow  # the slow decode happened
            assert RUNS.count(f"echo-{store}") == 1  # taken over, it would have run twice
            description = await handle.describe()
            assert description.last_workflow_task_failure is None
        finally:
            await env.shutdown()


class _no_url:
    async def __aenter__(self) -> str | None:
        return None

    async def __aexit__(self, *exc: object) -> None:
        return None
