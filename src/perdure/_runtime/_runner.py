"""Drives a workflow instance from its history: replay, command matching, the current task."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from perdure._common.commands import (
    AcceptUpdate,
    Command,
    CompleteUpdate,
    FailWorkflow,
    RecordLocalActivity,
    RecordPatch,
    ScheduleActivity,
)
from perdure._common.events import (
    COMMAND_EVENTS,
    INPUT_EVENTS,
    EventType,
    HistoryEvent,
    continue_as_new_suggested,
)
from perdure._common.payload import Payload
from perdure._errors import NondeterminismError
from perdure._runtime._instance import WorkflowInstance, WorkflowTaskError
from perdure.converter import DataConverter
from perdure.workflow._definition import WorkflowDefinition
from perdure.workflow._interceptor import WorkflowInboundInterceptor


class WorkflowTaskFailure(Exception):
    """The workflow task failed (code error or non-determinism); the workflow stays open."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(f"{type(cause).__name__}: {cause}")
        self.cause = cause


class QueryFailed(Exception):
    """A query could not be answered (unknown name, or its handler raised)."""


class WorkflowRunner:
    """Turns one workflow run's history into commands, keeping the instance between tasks.

    A new runner replays the whole history; a cached one is given only the events appended
    since its last task, so the cost of a task does not grow with the history.
    """

    def __init__(
        self,
        definition: WorkflowDefinition,
        *,
        workflow_id: str,
        run_id: str,
        namespace: str = "default",
        converter: DataConverter = DataConverter.default,
        failure_exception_types: Sequence[type[BaseException]] = (),
        guard: bool = True,
        interceptors: Sequence[type[WorkflowInboundInterceptor]] = (),
    ) -> None:
        self.definition = definition
        self._interceptors = interceptors
        self.workflow_id = workflow_id
        self.run_id = run_id
        self.namespace = namespace
        self._converter = converter
        self._failure_types = failure_exception_types
        self._guard = guard
        self.instance: WorkflowInstance | None = None
        self._failed = False  # non-determinism failed the workflow (see _fail_workflow)
        self.next_event_id = 1
        self._history_size = 0
        # What the current activation sees: its task's length (counting the task's own
        # WorkflowTaskCompleted), size, and continue-as-new suggestion; on replay, as recorded.
        self._task_length = 0
        self._task_size = 0
        self._task_suggested = False
        self._pending: list[HistoryEvent] = []

    @property
    def closed(self) -> bool:
        return self._failed or (self.instance is not None and self.instance.closed)

    def dispose(self) -> None:
        """The worker is done with this runner (its run closed, or evicted, or replayed for
        a query): end its code and free its instance at once (``Ending.dispose``).
        Idempotent."""
        if self.instance is not None:
            self.instance.dispose()

    def history_length(self) -> int:
        return self._task_length

    def apply(
        self,
        events: Sequence[HistoryEvent],
        *,
        task_time: float | None,
        history_size: int = 0,
        updates: Sequence[tuple[str, str, list[Payload], Any]] = (),
    ) -> list[Command]:
        """Feed new events; replay the recorded tasks and, when ``task_time`` is given, run
        the current task and return its commands.

        Raises:
            WorkflowTaskFailure: the code failed or did not match its history.
        """
        if events and events[0].event_id != self.next_event_id:
            raise WorkflowTaskFailure(
                RuntimeError(
                    f"History gap: expected event {self.next_event_id}, got {events[0].event_id}"
                )
            )
        if history_size:
            self._history_size = history_size
        try:
            i, n = 0, len(events)
            while i < n:
                event = events[i]
                kind = event.event_type
                if kind in INPUT_EVENTS:
                    self._pending.append(event)
                    i += 1
                elif kind is EventType.WORKFLOW_TASK_COMPLETED:
                    self.next_event_id = event.event_id + 1
                    end = i + 1
                    while end < n and events[end].event_type in COMMAND_EVENTS:
                        end += 1
                    recorded = events[i + 1 : end]
                    # Updates that task accepted are delivered again (their validators are not
                    # run again: they already said yes).
                    self._pending.extend(
                        e
                        for e in recorded
                        if e.event_type is EventType.WORKFLOW_EXECUTION_UPDATE_ACCEPTED
                    )
                    attrs = event.attributes
                    self._task_length = event.event_id
                    self._task_size = attrs.get("history_size", self._history_size)
                    # Recorded since history_size is (only when true); computed for older tasks.
                    self._task_suggested = (
                        attrs.get("suggest_continue_as_new", False)
                        if "history_size" in attrs
                        else continue_as_new_suggested(self._task_length, self._task_size)
                    )
                    commands = self._activate(
                        attrs["time"],
                        replaying=True,
                        patches=_patches(recorded),
                        local_markers=_local_markers(recorded),
                    )
                    _match_all(commands, recorded, event)
                    i = end
                else:
                    i += 1
                if i:
                    self.next_event_id = events[i - 1].event_id + 1
            if task_time is None or self.closed:
                return []
            self._task_length = self.next_event_id
            self._task_size = self._history_size
            self._task_suggested = continue_as_new_suggested(self._task_length, self._task_size)
            return self._activate(task_time, replaying=False, updates=updates)
        except (WorkflowTaskError, NondeterminismError) as exc:
            cause = exc.cause if isinstance(exc, WorkflowTaskError) else exc
            if task_time is not None and self._fails_workflow(cause):
                return self._fail_workflow(cause)
            raise WorkflowTaskFailure(cause) from cause

    def _fails_workflow(self, cause: BaseException) -> bool:
        """Whether non-determinism fails the workflow: its type is one of the failure
        exception types (the worker's or the workflow's), as in Temporal."""
        types = (*self._failure_types, *self.definition.failure_exception_types)
        return isinstance(cause, NondeterminismError) and bool(types) and isinstance(cause, types)

    def _fail_workflow(self, cause: BaseException) -> list[Command]:
        """The current task's commands when it fails the workflow: the instance's state is
        not to be trusted, so nothing else it decided, and it is not kept."""
        self._failed = True
        conv = self._converter
        return [FailWorkflow(conv.failure_converter.to_failure(cause, conv.payload_converter))]

    def _activate(
        self,
        now: float,
        *,
        replaying: bool,
        patches: frozenset[str] = frozenset(),
        updates: Sequence[tuple[str, str, list[Payload], Any]] = (),
        local_markers: dict[int, dict[str, Any]] | None = None,
    ) -> list[Command]:
        pending, self._pending = self._pending, []
        if self.instance is None:
            if not pending or pending[0].event_type is not EventType.WORKFLOW_EXECUTION_STARTED:
                raise NondeterminismError("History does not start with WorkflowExecutionStarted")
            self.instance = WorkflowInstance(
                self.definition,
                pending[0],
                workflow_id=self.workflow_id,
                run_id=self.run_id,
                namespace=self.namespace,
                converter=self._converter,
                failure_exception_types=self._failure_types,
                guard=self._guard,
                history_length=self.history_length,
                history_size=lambda: self._task_size,
                continue_as_new_suggested=lambda: self._task_suggested,
                now=now,
                interceptors=self._interceptors,
            )
        return self.instance.activate(
            pending,
            now,
            replaying=replaying,
            patches=patches,
            updates=updates,
            local_markers=local_markers,
        )

    def resolve_local_activities(
        self, outcomes: Sequence[tuple[int, int, Payload | None, dict[str, Any] | None]]
    ) -> list[Command]:
        """Continue the current task with its local activities' outcomes.

        Raises:
            WorkflowTaskFailure: the code failed.
        """
        if self.instance is None:
            raise WorkflowTaskFailure(RuntimeError("No workflow task is running"))
        try:
            return self.instance.resolve_local_activities(outcomes)
        except WorkflowTaskError as exc:
            raise WorkflowTaskFailure(exc.cause) from exc.cause

    def recorded(self, next_event_id: int) -> None:
        """The current task's commands are in history; the next event will be this one."""
        self.next_event_id = next_event_id

    def query(
        self, name: str, payloads: list[Payload], header: dict[str, Payload] | None = None
    ) -> Payload:
        """Answer a query from the current state.

        Raises:
            QueryFailed: unknown query, or the handler raised.
        """
        if self.instance is None:
            raise QueryFailed("The workflow has not started running yet")
        try:
            return self.instance.query(name, payloads, header)
        except KeyError as exc:
            raise QueryFailed(str(exc.args[0])) from None
        except Exception as exc:
            raise QueryFailed(f"Query {name!r} failed: {type(exc).__name__}: {exc}") from exc


def _patches(recorded: Sequence[HistoryEvent]) -> frozenset[str]:
    """The patches a recorded task took (its patch markers)."""
    return frozenset(
        e.attributes["patch_id"]
        for e in recorded
        if e.event_type is EventType.MARKER_RECORDED and e.attributes.get("marker_name") == "patch"
    )


def _local_markers(recorded: Sequence[HistoryEvent]) -> dict[int, dict[str, Any]]:
    """The local activity outcomes a recorded task holds, by sequence number."""
    return {
        e.attributes["seq"]: e.attributes
        for e in recorded
        if e.event_type is EventType.MARKER_RECORDED
        and e.attributes.get("marker_name") == "local_activity"
    }


def _is_patch_marker(event: HistoryEvent) -> bool:
    return (
        event.event_type is EventType.MARKER_RECORDED
        and event.attributes.get("marker_name") == "patch"
    )


def _is_deprecated_patch(command: Command | None) -> bool:
    return isinstance(command, RecordPatch) and command.deprecated


def _matches(command: Command, event: HistoryEvent) -> bool:
    a = event.attributes
    if command.event_type is not event.event_type:
        return False
    if isinstance(command, RecordPatch):
        return command.patch_id == a.get("patch_id")
    if isinstance(command, RecordLocalActivity):
        return a.get("marker_name") == "local_activity" and command.seq == a.get("seq")
    if isinstance(command, AcceptUpdate | CompleteUpdate):
        return command.update_id == a.get("update_id")
    if getattr(command, "seq", None) != a.get("seq"):
        return False
    if isinstance(command, ScheduleActivity):
        return command.activity_type == a.get("activity_type")
    return True


def _match_all(
    commands: list[Command], recorded: Sequence[HistoryEvent], completed: HistoryEvent
) -> None:
    """Check a replayed task's commands against the command events it recorded.

    Patch markers are lenient both ways: a marker the code no longer records (its patch call
    was removed after deprecation) and a deprecated-patch command the history lacks (the run
    predates the patch) are both fine.
    """
    i = j = 0
    while i < len(recorded):
        event = recorded[i]
        command = commands[j] if j < len(commands) else None
        if command is not None and _matches(command, event):
            i += 1
            j += 1
        elif _is_patch_marker(event) or (
            event.event_type is EventType.WORKFLOW_EXECUTION_UPDATE_ACCEPTED
        ):
            # Patch markers are lenient; accepted updates were redelivered, not re-decided.
            i += 1
        elif _is_deprecated_patch(command):
            j += 1
        elif command is None:
            raise NondeterminismError(
                f"History event {event.event_id} ({event.event_type.value}"
                f"{_event_detail(event)}) was recorded by the workflow's earlier run, but the "
                "code no longer issues it"
            )
        else:
            raise NondeterminismError(
                f"History event {event.event_id} ({event.event_type.value}"
                f"{_event_detail(event)}) does not match the command the workflow code issued "
                f"now: {command.describe()}"
            )
    while j < len(commands) and _is_deprecated_patch(commands[j]):
        j += 1
    if j < len(commands):
        following = f" (task completed at event {completed.event_id}, {i} command(s) recorded)"
        raise NondeterminismError(
            f"Workflow code issued {commands[j].describe()}, which the history does not have"
            + following
        )


def _event_detail(event: HistoryEvent) -> str:
    a = event.attributes
    parts = []
    if "seq" in a:
        parts.append(f"seq={a['seq']}")
    if "activity_type" in a:
        parts.append(f"type={a['activity_type']!r}")
    return (" " + ", ".join(parts)) if parts else ""
