"""One running workflow: its object, its event loop, and what it is waiting for.

An activation hands it input events (start, activity results, timers fired, signals, cancel
requests); it resolves the futures they complete, runs the workflow code until every task is
blocked, and returns the commands the code issued.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from perdure._common.commands import (
    CLOSE_COMMANDS,
    CancelTimer,
    Command,
    CompleteWorkflow,
    RecordPatch,
    ScheduleLocalActivity,
    StartTimer,
    UpsertMemo,
    UpsertSearchAttributes,
)
from perdure._common.events import EventType, HistoryEvent
from perdure._common.payload import Payload, RawValue
from perdure._errors import NondeterminismError, PayloadConverterError
from perdure._runtime._activities import RESOLVING_EVENTS, Activities
from perdure._runtime._calls import InterceptedCalls
from perdure._runtime._children import CHILD_EVENTS, EXTERNAL_EVENTS, Children
from perdure._runtime._ending import Ending, refuse_while_ending
from perdure._runtime._guard import DeterminismGuard
from perdure._runtime._handlers import Queries, bound
from perdure._runtime._intercept import RootOutbound, chain
from perdure._runtime._loop import DurableTimerHandle, Running, WorkflowEventLoop
from perdure._runtime._messages import MessageHandling
from perdure._runtime._outcome import closing_outcome, fails_workflow, to_payload
from perdure.common._priority import Priority
from perdure.converter import DataConverter, PayloadConverter
from perdure.workflow._definition import WorkflowDefinition
from perdure.workflow._info import Info, ParentInfo, duration
from perdure.workflow._interceptor import (
    ExecuteWorkflowInput,
    WorkflowInboundInterceptor,
    WorkflowOutboundInterceptor,
)

log = logging.getLogger("perdure.runtime")


class WorkflowTaskError(Exception):
    """Workflow code raised an error that fails the workflow task, not the workflow."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(f"{type(cause).__name__}: {cause}")
        self.cause = cause


class WorkflowInstance(MessageHandling, InterceptedCalls, Ending):
    """Runs one workflow run's code on its own deterministic loop."""

    def __init__(
        self,
        definition: WorkflowDefinition,
        started: HistoryEvent,
        *,
        workflow_id: str,
        run_id: str,
        namespace: str,
        converter: DataConverter,
        failure_exception_types: Sequence[type[BaseException]] = (),
        guard: bool = True,
        history_length: Callable[[], int] = lambda: 0,
        history_size: Callable[[], int] = lambda: 0,
        continue_as_new_suggested: Callable[[], bool] = lambda: False,
        now: float | None = None,
        interceptors: Sequence[type[WorkflowInboundInterceptor]] = (),
    ) -> None:
        attrs = started.attributes
        self.definition = definition
        self._payloads = converter.payload_converter
        self._failures = converter.failure_converter
        self._failure_types = (*failure_exception_types, *definition.failure_exception_types)
        # Built when the code first asks for it: most workflows never do, and a generator's
        # state is 2.5 KB and 4 µs to seed, for each instance built or replayed.
        self._seed: int = attrs.get("randomness_seed", 0)
        self._random: random.Random | None = None
        self._guard = DeterminismGuard() if guard else None
        # A dynamic workflow runs as whatever type it was started as.
        workflow_type = attrs.get("workflow_type", definition.name)
        self._info = Info(
            workflow_id=workflow_id,
            run_id=run_id,
            workflow_type=workflow_type if definition.dynamic else definition.name,
            task_queue=attrs["task_queue"],
            namespace=namespace,
            attempt=attrs.get("attempt", 1),
            start_time=datetime.fromtimestamp(started.event_time, UTC),
            continued_run_id=attrs.get("continued_run_id"),
            parent=ParentInfo(**attrs["parent"]) if attrs.get("parent") else None,
            run_timeout=duration(attrs.get("run_timeout")),
            execution_timeout=duration(attrs.get("execution_timeout")),
            task_timeout=duration(attrs.get("task_timeout")) or timedelta(seconds=10),
            priority=Priority.from_dict(attrs.get("priority")),
            _history_length=history_length,
            _history_size=history_size,
            _continue_as_new_suggested=continue_as_new_suggested,
            _search_attributes=lambda: self._search_attributes,
            headers=dict(attrs.get("header") or {}),
        )
        self.outbound: WorkflowOutboundInterceptor = RootOutbound(self)
        self._start_header = dict(attrs.get("header") or {})
        self.loop = WorkflowEventLoop(self, self)  # type: ignore[abstract]
        self._replaying = False
        self._commands: list[Command] = []
        self._timer_seq = 0
        self._active = False
        self._timers: dict[int, DurableTimerHandle] = {}
        self._conditions: list[tuple[Callable[[], bool], asyncio.Future[None]]] = []
        self._signal_handlers: dict[str, Callable[..., Any]] = {}
        self._signal_types: dict[str, list[Any]] = {}
        self._queries = Queries(
            definition,
            self._payloads,
            self.loop,
            workflow_type=self._info.workflow_type,
            workflow=lambda: self._obj,
            signals=lambda: self._signal_handlers,
        )
        self._dynamic_signal: Callable[..., Any] | None = None
        self._buffered_signals: dict[str, list[tuple[list[Payload], Any]]] = {}
        self._task_failure: BaseException | None = None
        self._cancel_requested = False
        self._main: asyncio.Task[Any] | None = None
        self._closed = False
        self._ending = False  # its worker is ending its code (see dispose)
        self._patches: dict[str, bool] = {}
        self._patches_in_history: frozenset[str] = frozenset()
        self._memo: dict[str, Payload] = dict(attrs.get("memo") or {})
        self._handlers: set[asyncio.Task[Any]] = set()
        self._search_attributes: dict[str, Any] = dict(attrs.get("search_attributes") or {})
        self.activities = Activities(
            self.loop, self._payloads, self._failures, self._add_command, self._info.task_queue
        )
        self.children = Children(
            self.loop,
            self._payloads,
            self._failures,
            self._add_command,
            namespace,
            self._info.task_queue,
        )

        # __init__ runs in the first workflow task: workflow.now() there is that task's time.
        self.loop.set_time(started.event_time if now is None else now)
        payloads = attrs.get("input", [])
        try:
            if definition.dynamic:  # one argument: the start's, unconverted
                args = [self._payloads.from_payloads(payloads, [RawValue] * len(payloads))]
            else:
                args = self._payloads.from_payloads(payloads, definition.arg_types)
        except Exception as exc:
            # The same on every attempt; the task fails visibly (WorkflowTaskFailed, kept for
            # describe()), the run stays open for a fix of the converter or a reset.
            raise WorkflowTaskError(
                PayloadConverterError(
                    f"The input of workflow {workflow_id!r} cannot be decoded: {exc}", cause=exc
                )
            ) from exc
        self._args = args
        self._obj: Any = None
        self._query_fn: Callable[..., Any] | None = None
        self.children.signal_child = self._signal_child
        self._inbound = chain(self, interceptors)
        self._intercepted = bool(interceptors)
        with self._running():
            self._inbound.init(self.outbound)
            self._obj = definition.cls(*args) if definition.init_takes_args else definition.cls()
        for name, handler in definition.signals.items():
            self._signal_handlers[name] = getattr(self._obj, handler.fn.__name__)
            self._signal_types[name] = handler.arg_types
        self._dynamic_signal = bound(self._obj, definition.dynamic_signal)

    # -- activation ------------------------------------------------------------------------
    def activate(
        self,
        events: Sequence[HistoryEvent],
        now: float,
        *,
        replaying: bool,
        patches: frozenset[str] = frozenset(),
        updates: Sequence[tuple[str, str, list[Payload], Any]] = (),
        local_markers: dict[int, dict[str, Any]] | None = None,
    ) -> list[Command]:
        """Apply input events, run the code until it blocks, return the commands it issued.

        Raises:
            WorkflowTaskError: the code failed in a way that fails the task, not the workflow.
        """
        self._active = True
        self._replaying = replaying
        self._patches_in_history = patches
        self.activities.recorded_local = local_markers or {}
        self.loop.set_time(now)
        self._commands = []
        start = False
        for event in events:
            if event.event_type is EventType.WORKFLOW_EXECUTION_STARTED:
                start = True
            elif event.event_type is EventType.WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
                a = event.attributes
                self._run_once_blocked()
                self._start_update(
                    a["update_id"], a["name"], a.get("input", []), a.get("header"), validate=False
                )
                self._run_once_blocked()
            else:
                self._apply(event)
        # Updates are applied one at a time, after the signals delivered with them have run:
        # each validator sees what the handlers before it did. Replay redelivers accepted
        # ones at the same points (above), running the same handlers first.
        for update_id, name, payloads, header in updates:
            self._run_once_blocked()
            if any(isinstance(c, CLOSE_COMMANDS) for c in self._commands):
                break  # closing: the rest are not seen (they go on to a continued run)
            if self._start_update(update_id, name, payloads, header, validate=True):
                self._run_once_blocked()
        if start:
            self._main = self.loop.create_task(self._run_main(), name="workflow.run")
            if self._cancel_requested:
                # Cancelled before it began (Temporal's order): the run starts, and its first
                # await sees the cancellation.
                self.loop.call_soon(self._main.cancel)
        return self._finish()

    def resolve_local_activities(
        self, outcomes: Sequence[tuple[int, int, Payload | None, dict[str, Any] | None]]
    ) -> list[Command]:
        """Continue the current task with local activities' outcomes (seq, attempt, result,
        failure); returns the task's whole command list, markers in place of the runs."""
        self._active = True
        for seq, attempt, result, failure in outcomes:
            marker = self.activities.resolve_local(seq, attempt, result, failure)
            for i, command in enumerate(self._commands):
                if isinstance(command, ScheduleLocalActivity) and command.seq == seq:
                    self._commands[i] = marker
        return self._finish()

    def _run_once_blocked(self) -> None:
        with self._running():
            self._run_until_blocked()

    def _finish(self) -> list[Command]:
        try:
            with self._running():
                self._run_until_blocked()
        finally:
            self._active = False
        if self._guard is not None and self._guard.violation is not None:
            violation = self._guard.violation
            self._guard.reset()
            raise WorkflowTaskError(violation)
        if self._task_failure is not None:
            raise WorkflowTaskError(self._task_failure)
        commands = self._commands
        for i, command in enumerate(commands):
            if isinstance(command, CLOSE_COMMANDS):
                del commands[i + 1 :]
                self._closed = True
                break
        return list(commands)

    @property
    def closed(self) -> bool:
        return self._closed

    def _running(self) -> Running:
        return Running(self.loop, self._guard)

    def _run_until_blocked(self) -> None:
        loop = self.loop
        while True:
            loop.run_ready()
            if self._task_failure is not None or not self._check_conditions():
                return

    def _check_conditions(self) -> bool:
        resolved = False
        for entry in list(self._conditions):
            fn, future = entry
            if future.done():
                self._conditions.remove(entry)
                continue
            if fn():
                future.set_result(None)
                self._conditions.remove(entry)
                resolved = True
        return resolved

    def _apply(self, event: HistoryEvent) -> None:
        a = event.attributes
        kind = event.event_type
        if kind in RESOLVING_EVENTS:
            self.activities.resolve(event)
        elif kind is EventType.TIMER_FIRED:
            handle = self._timers.pop(a["seq"], None)
            if handle is not None and not handle.cancelled():
                self.loop.enqueue(handle)
        elif kind is EventType.WORKFLOW_EXECUTION_SIGNALED:
            self._signal(a["signal_name"], a.get("input", []), a.get("header"))
        elif kind in CHILD_EVENTS or kind in EXTERNAL_EVENTS:
            self.children.resolve(event)
        elif kind is EventType.WORKFLOW_EXECUTION_CANCEL_REQUESTED:
            self._cancel_requested = True
            if self._main is not None and not self._main.done():
                self._main.cancel()

    # -- the workflow's top-level coroutines --------------------------------------------------
    async def _run_main(self) -> None:
        what = f"the result of workflow {self.definition.name!r}"
        try:
            if self._intercepted:
                run_fn = self.definition.run_fn.__get__(self._obj)
                call = ExecuteWorkflowInput(
                    self.definition.cls, run_fn, self._args, dict(self._start_header)
                )
                result = await self._inbound.execute_workflow(call)
            else:  # the same call, one frame less in the workflow's stack trace
                result = await self.definition.run_fn(self._obj, *self._args)
            # A result that cannot be converted fails the task, as a plain exception does.
            payload = to_payload(self._payloads, result, what)
        except BaseException as exc:
            self._on_error(exc)
            return
        self._add_command(CompleteWorkflow(payload))

    def all_handlers_finished(self) -> bool:
        return not self._handlers

    def fails_workflow(self, exc: BaseException) -> bool:
        """Whether ``exc``, raised out of the workflow's code, fails the workflow (a
        ``FailureError`` or a listed failure type) rather than only its workflow task."""
        return fails_workflow(exc, self._failure_types)

    def _on_error(self, exc: BaseException) -> None:
        try:
            outcome = closing_outcome(
                exc,
                cancel_requested=self._cancel_requested,
                failure_types=self._failure_types,
                payloads=self._payloads,
                failures=self._failures,
                workflow_type=self._info.workflow_type,
                task_queue=self._info.task_queue,
                memo=self._memo,
            )
        except Exception as err:  # its details or continue-as-new's arguments do not convert
            self._task_failure = TypeError(
                f"workflow {self.definition.name!r} ended with {type(exc).__name__}, which "
                f"cannot be converted to a payload: {err}"
            )
            self._task_failure.__cause__ = err
            return
        if isinstance(outcome, BaseException):
            self._task_failure = outcome
        else:
            self._add_command(outcome)

    def _add_command(self, command: Command) -> None:
        # Outside an activation nothing may be decided. An instance being ended (dispose)
        # records nothing: what cancelling its code records is dropped, new work refused.
        if self._closed or not self._active:
            if self._ending:
                refuse_while_ending(command, self._info.workflow_id)
            return
        self._commands.append(command)

    # -- the WorkflowContext the authoring API calls (and InterceptedCalls) ------------------
    def now(self) -> float:
        return self.loop.time()

    def random(self) -> random.Random:
        if self._random is None:
            self._random = random.Random(self._seed)
            if self._guard is not None:
                self._guard.allow_random(self._random)
        return self._random

    def is_replaying(self) -> bool:
        return self._replaying

    def cancel_external(self, workflow_id: str, run_id: str | None) -> Awaitable[None]:
        return self.children.cancel_external(workflow_id, run_id)

    def start_timer(self, delay: float, handle: DurableTimerHandle) -> None:
        self._timer_seq += 1
        handle.seq = self._timer_seq
        self._timers[handle.seq] = handle
        self._add_command(StartTimer(handle.seq, delay))

    def cancel_timer(self, handle: DurableTimerHandle) -> None:
        if self._timers.pop(handle.seq, None) is not None:
            self._add_command(CancelTimer(handle.seq))

    def on_unhandled_error(self, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        if "task" in context and exc is None:
            # A task destroyed pending: one that outlived its instance's end (dispose).
            return
        if isinstance(exc, NondeterminismError):
            self._task_failure = exc
        elif not self._replaying:
            log.warning(
                "Unhandled error in workflow %s: %s",
                self._info.workflow_id,
                context.get("message"),
                exc_info=exc,
            )

    def wait_condition(self, fn: Callable[[], bool]) -> asyncio.Future[None]:
        future: asyncio.Future[None] = self.loop.create_future()
        self._conditions.append((fn, future))
        return future

    def set_query_handler(self, name: str, handler: Callable[..., Any] | None) -> None:
        self._queries.set_handler(name, handler)

    def get_signal_handler(self, name: str) -> Callable[..., Any] | None:
        return self._signal_handlers.get(name)

    def get_query_handler(self, name: str) -> Callable[..., Any] | None:
        return self._queries.handler(name)

    def payload_converter(self) -> PayloadConverter:
        return self._payloads

    def patched(self, patch_id: str, *, deprecated: bool = False) -> bool:
        known = self._patches.get(patch_id)
        if known is not None:
            return known
        use = deprecated or not self._replaying or patch_id in self._patches_in_history
        self._patches[patch_id] = use
        if use:
            self._add_command(RecordPatch(patch_id, deprecated))
        return use

    def memo(self) -> dict[str, Any]:
        return {k: self._payloads.from_payload(v) for k, v in self._memo.items()}

    def memo_value(self, key: str, type_hint: Any) -> tuple[bool, Any]:
        payload = self._memo.get(key)
        if payload is None:
            return False, None
        return True, self._payloads.from_payload(payload, type_hint)

    def upsert_memo(self, updates: dict[str, Any]) -> None:
        encoded: dict[str, Any] = {}
        for key, value in updates.items():
            if value is None:
                self._memo.pop(key, None)
                encoded[key] = None
            else:
                encoded[key] = self._memo[key] = self._payloads.to_payload(value)
        self._add_command(UpsertMemo(encoded))

    def search_attributes(self) -> dict[str, Any]:
        return dict(self._search_attributes)

    def upsert_search_attributes(self, updates: dict[str, Any]) -> None:
        for name, entry in updates.items():
            if entry is None:
                self._search_attributes.pop(name, None)
            else:
                self._search_attributes[name] = entry
        self._add_command(UpsertSearchAttributes(updates))
