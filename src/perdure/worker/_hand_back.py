"""A workflow task the worker could not record is handed back to run again at once.

A store call of the task failed transiently (the database did not answer, or was busy): the
commands may or may not be recorded. Waiting for the task's lease to run out would do (a
recorded task is refused by its fence), but it costs the task's whole timeout on the real
clock, and on the time-skipping test clock, which stands still while a task is leased, the
lease never runs out: the workflow would hang. So the worker hands the task back
(``Store.hand_back_workflow_task``), trying again with backoff while the database fails, at
most for the task's lease (after which it ran out anyway, on the real clock).
"""

from __future__ import annotations

import logging
import time

from perdure._common.backoff import Retry, transient
from perdure._store import Store
from perdure._store._types import StaleTaskError, WorkflowTask

log = logging.getLogger("perdure.worker")


async def hand_back(store: Store, task: WorkflowTask, error: BaseException) -> None:
    """Hand back ``task``, whose store call failed with the transient ``error``."""
    log.warning(
        "Workflow task of %s was not recorded (%s: %s); it runs again",
        task.workflow_id,
        type(error).__name__,
        error,
    )
    retry = Retry(log, f"Handing back the workflow task of {task.workflow_id}")
    give_up = time.monotonic() + task.lease_seconds
    reason = f"{type(error).__name__}: {error}"
    while True:
        try:
            await store.hand_back_workflow_task(task, reason)
        except StaleTaskError:  # recorded after all, or its lease ran out
            return
        except Exception as exc:
            if store.closed or not transient(exc) or time.monotonic() > give_up:
                log.warning(
                    "The workflow task of %s was not handed back (%s); it runs again once "
                    "its lease runs out",
                    task.workflow_id,
                    exc,
                )
                return
            await retry.pause(exc)
            continue
        retry.recovered()
        return
