"""The app test_postgres_schedule_workers.py runs in ``perdure worker`` processes: one
workflow, which a schedule starts every second."""

from __future__ import annotations

from perdure import workflow

TASK_QUEUE = "ticks"


@workflow.defn
class Tick:
    @workflow.run
    async def run(self) -> str:
        return workflow.info().workflow_id
