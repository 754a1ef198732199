"""Flow control: the order a queue hands out tasks in, and the limits on its activities.

**Priority and fairness.** Every task row carries ``priority_key`` (1 first, 3 by default)
and ``fair_pass``; a claim takes the visible tasks in (priority_key, fair_pass, visible_at,
task_id) order, which is the order of the ``tasks_ready`` index, so it stays one range scan.
A task of a fairness key gets its pass by stride scheduling: the key's pass advances by
``1 / fairness_weight`` from where it was, or from the queue's virtual time if the key had
fallen behind it (the lowest pass still waiting, or the highest reached when none waits), so
an idle key cannot save up a burst. Keys with twice the weight get twice the turns; a key
with ten tasks queued after another's thousand interleaves with it instead of waiting.
Tasks of no fairness key keep pass 0 and cost nothing more to insert or claim.

**Limits** (activities only, and only when a worker sets them): a claim takes the queue's
lock (``Tx.lock_queue``), takes tokens from the queue's bucket (``rate_limits``; it refills
at the rate, up to a small burst), and, with a per-key limit, leaves out the tasks of
concurrency keys that already have that many attempts leased. A leased attempt counts until
it settles or its lease expires (the timeout sweep releases a dead worker's attempt), so a
crash frees its slot after the start-to-close timeout.
"""

from __future__ import annotations

import math
from typing import Any

from perdure._store._tx import Tx
from perdure._store._types import ClaimLimits, TaskKind, TaskRow

DEFAULT_PRIORITY_KEY = 3
# Candidates read per claimable slot when a per-key limit applies: the head of the queue may
# belong to a key with only some room left.
_CANDIDATES_PER_SLOT = 4


def burst(rate: float) -> float:
    """The most tokens a bucket of this rate holds: a fifth of a second's worth, at least 1
    (claims come every tenth of a second or so; a small burst keeps any one second within
    the rate plus this)."""
    return max(1.0, math.ceil(rate / 5))


def apply_priority(row: TaskRow, priority: dict[str, Any] | None) -> TaskRow:
    """Give a task row about to be inserted its priority key and fairness key."""
    if priority:
        row.priority_key = priority.get("priority_key") or DEFAULT_PRIORITY_KEY
        key = priority.get("fairness_key")
        if key:
            row.fairness = (key, float(priority.get("fairness_weight") or 1.0))
    return row


async def claim_limited(
    tx: Tx,
    kind: TaskKind,
    namespace: str,
    task_queue: str,
    owner: str,
    now: float,
    limit: int,
    limits: ClaimLimits,
) -> list[TaskRow]:
    """``Tx.claim_tasks`` within the queue's rate limit and per-key concurrency limit."""
    if limit <= 0:
        return []
    await tx.lock_queue(namespace, task_queue)
    tokens = 0.0
    if limits.queue_rate is not None:
        cap = burst(limits.queue_rate)
        bucket = await tx.get_rate_bucket(namespace, task_queue)
        if bucket is None:
            tokens = cap
        else:
            tokens = min(cap, bucket[0] + max(now - bucket[1], 0.0) * limits.queue_rate)
        limit = min(limit, int(tokens))
    if limit <= 0:
        rows: list[TaskRow] = []
    elif limits.per_key is None:
        rows = await tx.claim_tasks(kind, namespace, task_queue, owner, now, limit)
    else:
        rows = await _claim_per_key(tx, kind, namespace, task_queue, owner, now, limit, limits)
    if limits.queue_rate is not None:
        await tx.put_rate_bucket(namespace, task_queue, tokens - len(rows), now)
    return rows


async def _claim_per_key(
    tx: Tx,
    kind: TaskKind,
    namespace: str,
    task_queue: str,
    owner: str,
    now: float,
    limit: int,
    limits: ClaimLimits,
) -> list[TaskRow]:
    per_key = limits.per_key or 1
    candidates = await tx.claim_candidates(
        kind, namespace, task_queue, now, limit * _CANDIDATES_PER_SLOT, per_key
    )
    keys = sorted({k for _, k in candidates if k is not None})
    running = await tx.running_by_key(namespace, task_queue, keys) if keys else {}
    chosen: list[int] = []
    for task_id, key in candidates:
        if key is not None:
            if running.get(key, 0) >= per_key:
                continue
            running[key] = running.get(key, 0) + 1
        chosen.append(task_id)
        if len(chosen) == limit:
            break
    rows = await tx.claim_ids(chosen, owner, now)
    rows.sort(key=lambda t: (t.priority_key, t.fair_pass, t.visible_at, t.task_id))
    return rows
