"""The store's gauges: what is waiting right now, read by a few indexed aggregate queries.

Written once in portable SQL (``?`` placeholders) and run through ``Tx.select``, so SQLite and
PostgreSQL read them alike. Each query walks a partial index of the rows it counts (ready
tasks, open runs, timers, schedules with a next fire time), never the closed runs or the
histories, so a scrape costs in proportion to the work waiting, not to the database's size.
"""

from __future__ import annotations

from perdure._common.metrics import BacklogRow, StoreGauges
from perdure._store._tx import Tx
from perdure._store._types import TaskKind

# Ready tasks: not held by a worker and visible now (tasks_ready covers it).
BACKLOG = (
    "SELECT namespace, task_queue, kind, COUNT(*), MIN(visible_at) FROM tasks "
    "WHERE lease_owner IS NULL AND visible_at <= ? GROUP BY namespace, task_queue, kind"
)
# Open runs by type (executions_open_by_type covers it).
OPEN = (
    "SELECT namespace, workflow_type, COUNT(*) FROM executions WHERE status = 1 "
    "GROUP BY namespace, workflow_type"
)
# A run whose last workflow task failed (or timed out) is retried with a growing attempt
# until its code or input is fixed: stuck (executions_failing holds only those).
FAILING = (
    "SELECT namespace, workflow_type, COUNT(*) FROM executions "
    "WHERE status = 1 AND wft_attempt > 1 GROUP BY namespace, workflow_type"
)
TIMERS = "SELECT COUNT(*) FROM timers"
# The earliest fire time of the schedules of each namespace: past it, the schedule is late.
SCHEDULES = (
    "SELECT namespace, MIN(next_fire) FROM schedules WHERE next_fire IS NOT NULL GROUP BY namespace"
)

_KINDS = {int(k): k.name.lower() for k in TaskKind}


async def read(tx: Tx, now: float) -> StoreGauges:
    backlog = [
        BacklogRow(ns, queue, _KINDS.get(int(kind), str(kind)), int(count), float(oldest))
        for ns, queue, kind, count, oldest in await tx.select(BACKLOG, (now,))
    ]
    ((timers,),) = await tx.select(TIMERS, ())
    return StoreGauges(
        now=now,
        backlog=backlog,
        workflows_open={(ns, t): int(n) for ns, t, n in await tx.select(OPEN, ())},
        workflow_tasks_failing={(ns, t): int(n) for ns, t, n in await tx.select(FAILING, ())},
        timers_pending=int(timers),
        schedule_due_since={ns: float(due) for ns, due in await tx.select(SCHEDULES, ())},
    )
