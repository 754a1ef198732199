"""The app ``test_wake_between_processes.py`` runs in a ``perdure worker`` process."""

from __future__ import annotations

from datetime import timedelta

from perdure import activity, workflow

TASK_QUEUE = "wake"


@activity.defn
async def double(value: int) -> int:
    return 2 * value


@workflow.defn
class Double:
    @workflow.run
    async def run(self, value: int) -> int:
        result: int = await workflow.execute_activity(
            double, value, start_to_close_timeout=timedelta(seconds=30)
        )
        return result
