from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass

from perdure._common.events import EventType
from perdure._errors import NondeterminismError
from perdure._runtime import WorkflowRunner, WorkflowTaskFailure
from perdure.client._handle import WorkflowHistory
from perdure.converter import DataConverter
from perdure.converter._visitor import decode_events
from perdure.worker._interceptor import Interceptor, workflow_classes
from perdure.workflow._definition import WorkflowDefinition


@dataclass(frozen=True)
class WorkflowReplayResult:
    """The outcome of replaying one history."""

    history: WorkflowHistory
    replay_failure: Exception | None


class Replayer:
    """Replays recorded histories against the current workflow code, to catch changes that
    would break running workflows before they are deployed.

    Example::

        history = WorkflowHistory.from_json("order-1", open("order-1.json").read())
        await Replayer(workflows=[OrderWorkflow]).replay_workflow(history)
    """

    def __init__(
        self,
        *,
        workflows: Sequence[type],
        namespace: str = "default",
        data_converter: DataConverter | None = None,
        workflow_failure_exception_types: Sequence[type[BaseException]] = (),
        interceptors: Sequence[Interceptor] = (),
    ) -> None:
        defs = [WorkflowDefinition.from_class(w) for w in workflows]
        # Workflow interceptors replay with the code they wrapped (activity ones never run).
        self._interceptor_classes = workflow_classes(interceptors)
        self._defs = {d.name: d for d in defs if not d.dynamic}
        self._dynamic = next((d for d in defs if d.dynamic), None)
        self._namespace = namespace
        self._converter = data_converter or DataConverter.default
        self._failure_types = tuple(workflow_failure_exception_types)

    async def replay_workflow(
        self, history: WorkflowHistory, *, raise_on_replay_failure: bool = True
    ) -> WorkflowReplayResult:
        """Replay one history.

        Raises:
            NondeterminismError: the code issues different commands than the history
                recorded (or fails where it did not), when ``raise_on_replay_failure``.
        """
        failure: Exception | None = None
        try:
            events = await decode_events(self._converter._store_codec, history.events)
            self._replay(history, events)
        except NondeterminismError as exc:
            failure = exc
        if failure is not None and raise_on_replay_failure:
            raise failure
        return WorkflowReplayResult(history, failure)

    def _replay(self, history: WorkflowHistory, events: list) -> None:  # type: ignore[type-arg]
        if not events or events[0].event_type is not EventType.WORKFLOW_EXECUTION_STARTED:
            raise NondeterminismError("History does not start with WorkflowExecutionStarted")
        workflow_type = events[0].attributes["workflow_type"]
        defn = self._defs.get(workflow_type, self._dynamic)
        if defn is None:
            raise NondeterminismError(
                f"History is of workflow type {workflow_type!r}, which this Replayer was not "
                f"given (it has: {', '.join(sorted(self._defs)) or 'none'})"
            )
        runner = WorkflowRunner(
            defn,
            workflow_id=history.workflow_id,
            run_id=history.run_id,
            namespace=self._namespace,
            converter=self._converter,
            failure_exception_types=self._failure_types,
            interceptors=self._interceptor_classes,
        )
        try:
            runner.apply(events, task_time=None)
        except WorkflowTaskFailure as exc:
            if isinstance(exc.cause, NondeterminismError):
                raise exc.cause from None
            raise NondeterminismError(
                f"Replaying {history.workflow_id} failed: {type(exc.cause).__name__}: {exc.cause}"
            ) from exc.cause
        finally:
            runner.dispose()

    async def replay_workflows(
        self,
        histories: Iterable[WorkflowHistory] | AsyncIterator[WorkflowHistory],
        *,
        raise_on_replay_failure: bool = True,
    ) -> list[WorkflowReplayResult]:
        """Replay many histories; returns one result per history."""
        results = []
        if isinstance(histories, AsyncIterator):
            async for h in histories:
                results.append(
                    await self.replay_workflow(h, raise_on_replay_failure=raise_on_replay_failure)
                )
        else:
            for h in histories:
                results.append(
                    await self.replay_workflow(h, raise_on_replay_failure=raise_on_replay_failure)
                )
        return results
