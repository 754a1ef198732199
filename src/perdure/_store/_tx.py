"""The primitive operations a database backend offers inside one transaction.

The engine's rules (``_store/_engine``) are written once against this protocol; each backend
implements it with its own SQL. Every method runs inside the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from perdure._common.events import HistoryEvent
from perdure._store._schedule_state import ScheduleRow
from perdure._store._types import (
    Execution,
    NamespaceRow,
    QueryResult,
    TaskKind,
    TaskRow,
    UpdateRow,
    UpdateState,
)
from perdure._store._visibility_driver import Driver


class Tx(Protocol):
    # executions ------------------------------------------------------------------------------
    async def get_execution(self, run_id: str) -> Execution | None: ...

    async def get_open_execution(self, namespace: str, workflow_id: str) -> Execution | None: ...

    async def get_latest_execution(self, namespace: str, workflow_id: str) -> Execution | None: ...

    async def get_executions(self, run_ids: Sequence[str]) -> dict[str, Execution]:
        """The runs with these ids (those that exist), by id: one read for a claimed batch."""

    async def insert_execution(self, ex: Execution) -> None: ...

    async def update_execution(self, ex: Execution) -> None: ...

    async def update_executions(self, exs: Sequence[Execution]) -> None:
        """``update_execution`` of each, in one go where the database allows."""

    async def move_requested_updates(self, from_run_id: str, to_run_id: str) -> None:
        """Updates not yet seen by a run that continued as new go to the new run."""

    async def open_children(self, parent_run_id: str) -> list[Execution]:
        """Open runs started as children of this run (their continued runs included)."""

    # history and the inbox of inputs buffered while a workflow task is in flight -------------
    async def append_events(self, run_id: str, events: Sequence[HistoryEvent]) -> int:
        """Append events; returns the bytes they take."""

    async def get_history_events(
        self, run_id: str, after_event_id: int, limit: int
    ) -> list[HistoryEvent]: ...

    async def inbox_add(self, run_id: str, event: HistoryEvent) -> None:
        """Buffer an input event. Until the inbox is taken, every write of the run in this
        transaction (whichever object it comes from) marks it ``inputs_buffered``."""

    async def inbox_take(self, run_id: str) -> list[HistoryEvent]:
        """Remove and return the buffered events in arrival order (their ids are unset)."""

    def inputs_buffered(self, ex: Execution) -> bool:
        """Whether the run may have buffered inputs: its row said so when read, or this
        transaction buffered some (through another object of the run, perhaps)."""

    # signal idempotency keys (see _executions.signal) ----------------------------------------
    async def add_signal_request(
        self, namespace: str, workflow_id: str, request_id: str, run_id: str
    ) -> bool:
        """Record that ``run_id`` took the signal of this key; False (and nothing recorded)
        if a run of the workflow id already took one with that key."""

    async def open_run_taking_key(
        self, namespace: str, workflow_id: str, run_id: str | None, request_id: str
    ) -> tuple[Execution | None, bool]:
        """The open run a keyed signal goes to (``run_id``'s, or else the open run of the
        workflow id), and whether its key was new (then recorded for that run): one round
        trip where the database allows. (None, False) if there is no such open run."""

    async def signal_request_run(
        self, namespace: str, workflow_id: str, request_id: str
    ) -> str | None:
        """The run of the workflow id that took the signal of this key, if one did."""

    # tasks -----------------------------------------------------------------------------------
    async def insert_task(self, task: TaskRow) -> int: ...

    async def update_task(self, task: TaskRow) -> None: ...

    async def delete_task(self, task_id: int) -> None: ...

    async def get_task(self, task_id: int) -> TaskRow | None: ...

    async def get_task_and_execution(
        self, task_id: int, run_id: str
    ) -> tuple[TaskRow | None, Execution | None]:
        """``get_task`` and ``get_execution`` in one read (what completing a task checks)."""

    async def find_task(self, run_id: str, kind: TaskKind, ref: int) -> TaskRow | None: ...

    async def run_tasks(self, run_id: str, kind: TaskKind) -> list[TaskRow]:
        """The run's tasks of this kind, by ``ref`` (an activity's is its sequence number)."""

    async def claim_tasks(
        self,
        kind: TaskKind,
        namespace: str,
        task_queue: str,
        owner: str,
        now: float,
        limit: int,
    ) -> list[TaskRow]:
        """Lease up to ``limit`` visible, unleased tasks: sets owner, lease expiry
        (now + lease_seconds) and deadline (the earliest of lease expiry, final deadline
        and heartbeat deadline)."""

    async def due_tasks(self, now: float, limit: int) -> list[TaskRow]: ...

    async def mark_async_pending(self, run_id: str, seq: int, attempt: int) -> None:
        """An activity attempt will be completed from outside the worker."""

    async def delete_run_work(self, run_id: str) -> None:
        """Delete a closed run's tasks, timers and inbox."""

    async def delete_runs(self, run_ids: Sequence[str]) -> None:
        """Delete these runs and every row they own: the executions row, history, inbox,
        tasks (queries too, with their answers), timers, search attributes and updates."""

    async def set_search_attributes(
        self, run_id: str, values: Mapping[str, list[tuple[str | None, float | None, int | None]]]
    ) -> None:
        """Replace the named search attributes of a run: one (text, number, bool) row per
        value (a keyword list has several; an empty list removes the attribute)."""

    async def search_attribute_types(self, namespace: str) -> dict[str, str]:
        """Custom search attribute name -> type name, as registered in the namespace."""

    async def register_search_attribute(
        self, namespace: str, name: str, type_name: str
    ) -> None: ...

    async def list_executions(
        self,
        namespace: str,
        where: str,
        params: list[Any],
        order_by: str,
        limit: int,
        among: Driver | None = None,
    ) -> list[Execution]:
        """The first ``limit`` executions matching a compiled visibility query, in order
        (``where`` uses alias ``e``). ``among`` is a hint: a condition on a custom attribute
        that the matching runs all satisfy, which a store may start from (SQLite does when
        few rows satisfy it; see ``_visibility_driver``)."""

    async def count_executions(
        self,
        namespace: str,
        where: str,
        params: list[Any],
        limit: int | None = None,
        among: Driver | None = None,
    ) -> int:
        """The number of matching executions; with ``limit``, at most that many (the
        count stops there: its cost is bounded). ``among`` as for ``list_executions``."""

    async def count_executions_by(
        self,
        namespace: str,
        where: str,
        params: list[Any],
        column: str,
        among: Driver | None = None,
    ) -> list[tuple[Any, int]]:
        """(value, count) of each value of ``column`` among the matching executions
        (``among`` as for ``list_executions``)."""

    async def get_update(self, run_id: str, update_id: str) -> UpdateRow | None: ...

    async def insert_update(self, row: UpdateRow, now: float) -> None: ...

    async def set_update_state(
        self, run_id: str, update_id: str, state: UpdateState, outcome: dict[str, Any] | None
    ) -> None: ...

    async def updates_in_state(self, run_id: str, states: Sequence[UpdateState]) -> list[UpdateRow]:
        """The run's updates in these states, in the order they were requested."""

    # timers ----------------------------------------------------------------------------------
    async def insert_timer(
        self, run_id: str, seq: int, fire_at: float, started_event_id: int
    ) -> None: ...

    async def delete_timer(self, run_id: str, seq: int) -> int | None:
        """Delete a timer; returns its started event id, or None if there was none."""

    async def due_timers(self, now: float, limit: int) -> list[tuple[str, int, int]]:
        """(run_id, seq, started_event_id) of timers due by ``now``."""

    # queries ---------------------------------------------------------------------------------
    async def delete_query(self, query_id: int) -> None:
        """Forget a query: its task (if unanswered) and its result."""

    async def put_query_result(self, query_id: int, result: QueryResult) -> None: ...

    # namespaces and retention ------------------------------------------------------------
    async def get_namespace(self, name: str) -> NamespaceRow | None: ...

    async def put_namespace(self, row: NamespaceRow) -> None: ...

    async def retained_namespaces(self) -> list[NamespaceRow]:
        """The namespaces that have a retention period."""

    async def expired_runs(
        self, namespace: str, closed_before: float, limit: int, among: Sequence[str] = ()
    ) -> list[str]:
        """Up to ``limit`` runs of ``namespace`` (of ``among``, if given) closed before
        ``closed_before`` that nothing needs (see ``_retention``), oldest first; on
        PostgreSQL locked, skipping runs another sweep holds."""

    # offloaded payloads ----------------------------------------------------------------------
    async def payload_garbage(self, limit: int) -> list[str]:
        """Keys of offloaded payloads that no run refers to any more."""

    async def payload_keys_referenced(self, keys: Sequence[str]) -> set[str]:
        """Which of these keys some run refers to (again)."""

    async def forget_payload_garbage(self, keys: Sequence[str]) -> None: ...

    # schedules -------------------------------------------------------------------------------
    async def get_schedule(self, namespace: str, schedule_id: str) -> ScheduleRow | None:
        """A schedule, locked for the rest of the transaction."""

    async def claim_schedule(
        self, namespace: str, schedule_id: str, now: float
    ) -> ScheduleRow | None:
        """A schedule due by ``now`` that no other transaction holds, locked; else None."""

    async def insert_schedule(self, row: ScheduleRow) -> None: ...

    async def update_schedule(self, row: ScheduleRow) -> None: ...

    async def delete_schedule(self, namespace: str, schedule_id: str) -> bool:
        """Delete a schedule; returns whether there was one."""

    async def due_schedules(self, now: float, limit: int) -> list[tuple[str, str]]:
        """(namespace, schedule_id) of the schedules due by ``now``, soonest first."""

    async def list_schedules(self, namespace: str, limit: int, offset: int) -> list[ScheduleRow]:
        """A namespace's schedules, by id."""

    async def open_workflow_ids(self, namespace: str, workflow_ids: Sequence[str]) -> set[str]:
        """Which of these workflow ids have an open run (read without locking them)."""

    # flow control (see _flow) -------------------------------------------------------------
    async def next_fair_pass(
        self,
        namespace: str,
        task_queue: str,
        kind: TaskKind,
        priority_key: int,
        fairness_key: str,
        stride: float,
    ) -> float:
        """Advance a fairness key's pass by ``stride`` from where it is, or from the queue's
        virtual time if that is further; returns the new pass."""

    async def lock_queue(self, namespace: str, task_queue: str) -> None:
        """Take the queue's lock for the rest of the transaction (limited claims)."""

    async def get_rate_bucket(self, namespace: str, task_queue: str) -> tuple[float, float] | None:
        """(tokens, updated_at) of the queue's rate limit, or None if it has none yet."""

    async def put_rate_bucket(
        self, namespace: str, task_queue: str, tokens: float, updated_at: float
    ) -> None: ...

    async def claim_candidates(
        self, kind: TaskKind, namespace: str, task_queue: str, now: float, limit: int, per_key: int
    ) -> list[tuple[int, str | None]]:
        """(task_id, concurrency_key) of up to ``limit`` claimable tasks, in claim order,
        leaving out the concurrency keys that have ``per_key`` attempts running."""

    async def running_by_key(
        self, namespace: str, task_queue: str, keys: Sequence[str]
    ) -> dict[str, int]:
        """The number of running attempts of each of these concurrency keys (if any)."""

    async def claim_ids(self, task_ids: Sequence[int], owner: str, now: float) -> list[TaskRow]:
        """Lease these tasks (those still unleased), as ``claim_tasks`` does."""

    # the store's gauges (_gauges) -------------------------------------------------------------
    async def select(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        """The rows of a read-only statement in portable SQL, ``?`` placeholders."""
