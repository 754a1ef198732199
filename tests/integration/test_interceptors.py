"""Client and worker interceptors (Temporal's shapes): every hook is called, headers travel
from the client through history to workflows, activities, children and signals, the codec
encodes them like any payload, and workflow interceptors see the same calls on replay."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import pytest
from codec_support import ENCRYPTING

from perdure import Worker, activity, workflow
from perdure.client import (
    Client,
    Interceptor,
    OutboundInterceptor,
    QueryWorkflowInput,
    SignalWorkflowInput,
    StartWorkflowInput,
    StartWorkflowUpdateInput,
    StartWorkflowUpdateWithStartInput,
    WithStartWorkflowOperation,
)
from perdure.common import WorkflowIDConflictPolicy
from perdure.converter import DataConverter, Payload
from perdure.testing import WorkflowEnvironment
from perdure.worker import (
    ActivityInboundInterceptor,
    ActivityOutboundInterceptor,
    ContinueAsNewInput,
    ExecuteActivityInput,
    ExecuteWorkflowInput,
    HandleQueryInput,
    HandleSignalInput,
    HandleUpdateInput,
    Replayer,
    SignalChildWorkflowInput,
    SignalExternalWorkflowInput,
    StartActivityInput,
    StartChildWorkflowInput,
    StartLocalActivityInput,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
    WorkflowOutboundInterceptor,
)
from perdure.worker import Interceptor as WorkerInterceptor

CONVERTER = DataConverter.default.payload_converter
KEY = "trace"

# What the interceptors saw, in order: ("workflow", hook, detail) entries of workflow hooks
# are replayed too; the others are the client's and the activities'.
CALLS: list[tuple[str, str, Any]] = []


def _tag(headers: Mapping[str, Payload]) -> str | None:
    payload = headers.get(KEY)
    return None if payload is None else CONVERTER.from_payload(payload, str)


def _with(headers: Mapping[str, Payload], value: str) -> dict[str, Payload]:
    return {**headers, KEY: CONVERTER.to_payload(value)}


class _ClientOut(OutboundInterceptor):
    async def start_workflow(self, input: StartWorkflowInput) -> Any:
        CALLS.append(("client", "start_workflow", input.workflow))
        input.headers = _with(input.headers, f"client:{input.id}")
        return await super().start_workflow(input)

    async def signal_workflow(self, input: SignalWorkflowInput) -> None:
        CALLS.append(("client", "signal_workflow", input.signal))
        # A frozen-style copy works as well as setting the field.
        await super().signal_workflow(dataclasses.replace(input, headers=_with({}, "signal")))

    async def query_workflow(self, input: QueryWorkflowInput) -> Any:
        CALLS.append(("client", "query_workflow", input.query))
        input.headers = _with(input.headers, "query")
        return await super().query_workflow(input)

    async def start_workflow_update(self, input: StartWorkflowUpdateInput) -> Any:
        CALLS.append(("client", "start_workflow_update", input.update))
        input.headers = _with(input.headers, "update")
        return await super().start_workflow_update(input)

    async def start_update_with_start_workflow(
        self, input: StartWorkflowUpdateWithStartInput
    ) -> Any:
        start, update = input.start_workflow_input, input.update_workflow_input
        CALLS.append(
            ("client", "start_update_with_start_workflow", (start.workflow, update.update))
        )
        start.headers = _with(start.headers, f"client:{start.id}")
        update.headers = _with(update.headers, "with-start")
        return await super().start_update_with_start_workflow(input)


class _WorkflowIn(WorkflowInboundInterceptor):
    def init(self, outbound: WorkflowOutboundInterceptor) -> None:
        super().init(_WorkflowOut(outbound))

    async def execute_workflow(self, input: ExecuteWorkflowInput) -> Any:
        _record("execute_workflow", _tag(input.headers))
        return await super().execute_workflow(input)

    async def handle_signal(self, input: HandleSignalInput) -> None:
        _record("handle_signal", (input.signal, _tag(input.headers)))
        await super().handle_signal(input)

    async def handle_query(self, input: HandleQueryInput) -> Any:
        CALLS.append(("query", "handle_query", (input.query, _tag(input.headers))))
        return await super().handle_query(input)

    def handle_update_validator(self, input: HandleUpdateInput) -> None:
        _record("handle_update_validator", (input.update, _tag(input.headers)))
        super().handle_update_validator(input)

    async def handle_update_handler(self, input: HandleUpdateInput) -> Any:
        _record("handle_update_handler", (input.update, _tag(input.headers)))
        return await super().handle_update_handler(input)


class _WorkflowOut(WorkflowOutboundInterceptor):
    def start_activity(self, input: StartActivityInput) -> Any:
        _record("start_activity", input.activity)
        input.headers = _with(input.headers, f"activity-of:{workflow.info().workflow_id}")
        return super().start_activity(input)

    def start_local_activity(self, input: StartLocalActivityInput) -> Any:
        _record("start_local_activity", input.activity)
        input.headers = _with(input.headers, "local")
        return super().start_local_activity(input)

    async def start_child_workflow(self, input: StartChildWorkflowInput) -> Any:
        _record("start_child_workflow", input.workflow)
        input.headers = _with(input.headers, f"child-of:{workflow.info().workflow_id}")
        return await super().start_child_workflow(input)

    async def signal_child_workflow(self, input: SignalChildWorkflowInput) -> None:
        _record("signal_child_workflow", input.signal)
        input.headers = _with(input.headers, "to-child")
        await super().signal_child_workflow(input)

    async def signal_external_workflow(self, input: SignalExternalWorkflowInput) -> None:
        _record("signal_external_workflow", input.signal)
        input.headers = _with(input.headers, "external")
        await super().signal_external_workflow(input)

    def continue_as_new(self, input: ContinueAsNewInput) -> Any:
        _record("continue_as_new", list(input.args))
        input.headers = _with(input.headers, "continued")
        super().continue_as_new(input)


def _record(hook: str, detail: Any) -> None:
    CALLS.append(("workflow", hook, (workflow.info().workflow_id, detail)))


class _ActivityIn(ActivityInboundInterceptor):
    def init(self, outbound: ActivityOutboundInterceptor) -> None:
        super().init(_ActivityOut(outbound))

    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        CALLS.append(
            ("activity", "execute_activity", (activity.info().activity_type, _tag(input.headers)))
        )
        return await super().execute_activity(input)


class _ActivityOut(ActivityOutboundInterceptor):
    def heartbeat(self, *details: Any) -> None:
        CALLS.append(("activity", "heartbeat", details))
        super().heartbeat(*details)


class Everything(Interceptor, WorkerInterceptor):
    """One interceptor for the client and its workers, as Temporal's samples write them."""

    def __init__(self) -> None:
        self.class_inputs: list[WorkflowInterceptorClassInput] = []

    def intercept_client(self, next: OutboundInterceptor) -> OutboundInterceptor:
        return _ClientOut(next)

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _ActivityIn(next)

    def workflow_interceptor_class(
        self, input: WorkflowInterceptorClassInput
    ) -> type[WorkflowInboundInterceptor]:
        self.class_inputs.append(input)
        return _WorkflowIn


@activity.defn
async def shout(text: str) -> str:
    activity.heartbeat("halfway")
    return text.upper()


@activity.defn
def count_letters(text: str) -> int:  # a sync one: runs in a thread
    return len(text)


@workflow.defn
class Child:
    def __init__(self) -> None:
        self.pinged = False

    @workflow.run
    async def run(self, rounds: int) -> str:
        if rounds > 0:
            workflow.continue_as_new(rounds - 1)
        await workflow.wait_condition(lambda: self.pinged)
        return "child done"

    @workflow.signal
    def ping(self) -> None:
        self.pinged = True


@workflow.defn
class Parent:
    def __init__(self) -> None:
        self.go = False
        self.notes: list[str] = []

    @workflow.run
    async def run(self, text: str) -> list[Any]:
        await workflow.wait_condition(lambda: self.go)
        loud = await workflow.execute_activity(
            shout, text, start_to_close_timeout=timedelta(seconds=10)
        )
        letters = await workflow.execute_local_activity(
            count_letters, text, start_to_close_timeout=timedelta(seconds=10)
        )
        child = await workflow.start_child_workflow(
            Child.run, 1, id=f"{workflow.info().workflow_id}-child"
        )
        await workflow.get_external_workflow_handle(workflow.info().workflow_id).signal(
            Parent.note, "self"
        )
        await workflow.wait_condition(lambda: "self" in self.notes)
        await child.signal(Child.ping)
        return [loud, letters, await child, self.notes]

    @workflow.signal
    def start(self) -> None:
        self.go = True

    @workflow.signal
    def note(self, text: str) -> None:
        self.notes.append(text)

    @workflow.query
    def seen(self) -> list[str]:
        return self.notes

    @workflow.update
    def add(self, text: str) -> int:
        self.notes.append(text)
        return len(self.notes)

    @add.validator
    def _check(self, text: str) -> None:
        if not text:
            raise ValueError("empty")


async def _run_parent(client: Client, wf_id: str) -> list[Any]:
    async with Worker(
        client,
        task_queue="q",
        workflows=[Parent, Child],
        activities=[shout, count_letters],
    ):
        handle = await client.start_workflow(Parent.run, "hey", id=wf_id, task_queue="q")
        assert await handle.execute_update(Parent.add, "upd") == 1
        assert await handle.query(Parent.seen) == ["upd"]
        await handle.signal(Parent.start)
        result: list[Any] = await handle.result()
        return result


async def test_every_hook_sees_its_call_and_headers_reach_every_side(
    env: WorkflowEnvironment,
) -> None:
    CALLS.clear()
    everything = Everything()
    client = Client(**{**env.client.config(), "interceptors": [everything]})
    result = await _run_parent(client, "wf")
    assert result == ["HEY", 3, "child done", ["upd", "self"]]
    assert len(everything.class_inputs) == 1  # asked once, when the worker was built

    client_calls = [(h, d) for k, h, d in CALLS if k == "client"]
    assert client_calls == [
        ("start_workflow", "Parent"),
        ("start_workflow_update", "add"),
        ("query_workflow", "seen"),
        ("signal_workflow", "start"),
    ]
    assert ("query", "handle_query", ("seen", "query")) in CALLS
    activity_calls = [(h, d) for k, h, d in CALLS if k == "activity"]
    assert activity_calls == [
        ("execute_activity", ("shout", "activity-of:wf")),
        ("heartbeat", ("halfway",)),
        ("execute_activity", ("count_letters", "local")),
    ]
    parent = [(h, d[1]) for k, h, d in CALLS if k == "workflow" and d[0] == "wf"]
    assert parent == [
        ("execute_workflow", "client:wf"),
        ("handle_update_validator", ("add", "update")),
        ("handle_update_handler", ("add", "update")),
        ("handle_signal", ("start", "signal")),
        ("start_activity", "shout"),
        ("start_local_activity", "count_letters"),
        ("start_child_workflow", "Child"),
        ("signal_external_workflow", "note"),
        ("handle_signal", ("note", "external")),
        ("signal_child_workflow", "ping"),
    ]
    child = [(h, d[1]) for k, h, d in CALLS if k == "workflow" and d[0] == "wf-child"]
    assert child == [
        ("execute_workflow", "child-of:wf"),
        ("continue_as_new", [0]),
        ("execute_workflow", "continued"),  # the continued run got the header
        ("handle_signal", ("ping", "to-child")),
    ]


async def test_workflow_interceptors_see_the_same_calls_on_replay(
    env: WorkflowEnvironment,
) -> None:
    CALLS.clear()
    client = Client(**{**env.client.config(), "interceptors": [Everything()]})
    await _run_parent(client, "wf")
    first = [(h, d) for k, h, d in CALLS if k == "workflow" and d[0] == "wf"]
    history = await client.get_workflow_handle("wf").fetch_history()

    CALLS.clear()
    replayer = Replayer(workflows=[Parent, Child], interceptors=[Everything()])
    await replayer.replay_workflow(history)
    replayed = [(h, d) for k, h, d in CALLS if k == "workflow"]
    # The validator ran when the update was accepted; replay does not run it again.
    assert replayed == [c for c in first if c[0] != "handle_update_validator"]


async def test_the_codec_encodes_headers_like_any_payload(env: WorkflowEnvironment) -> None:
    CALLS.clear()
    config = {**env.client.config(), "interceptors": [Everything()], "data_converter": ENCRYPTING}
    client = Client(**config)
    async with Worker(client, task_queue="q", workflows=[Child]):
        handle = await client.start_workflow(Child.run, 0, id="coded", task_queue="q")
        await handle.signal(Child.ping)
        assert await handle.result() == "child done"
    stored = await client.store.get_history(handle.result_run_id or "")
    header = stored[0].attributes["header"][KEY]
    assert header.metadata["encoding"] != b"json/plain"  # encrypted in the database
    assert b"client:coded" not in header.data
    seen = [d[1] for k, h, d in CALLS if h == "execute_workflow"]
    assert seen == ["client:coded"]  # and decoded for the interceptors


async def test_a_worker_given_an_object_that_is_no_interceptor_says_so(
    env: WorkflowEnvironment,
) -> None:
    with pytest.raises(TypeError, match=r"perdure\.worker\.Interceptor"):
        Worker(env.client, task_queue="q", workflows=[Child], interceptors=[object()])
    with pytest.raises(TypeError, match=r"perdure\.client\.Interceptor"):
        Client(**{**env.client.config(), "interceptors": [object()]})


async def test_the_test_environment_takes_interceptors() -> None:
    CALLS.clear()
    env = await WorkflowEnvironment.start_time_skipping(interceptors=[Everything()])
    async with env, Worker(env.client, task_queue="q", workflows=[Child]):
        handle = await env.client.start_workflow(Child.run, 0, id="te", task_queue="q")
        await handle.signal(Child.ping)
        assert await handle.result() == "child done"
    assert ("client", "start_workflow", "Child") in CALLS
    assert ("workflow", "execute_workflow", ("te", "client:te")) in CALLS


async def test_update_with_start_goes_through_the_interceptors(env: WorkflowEnvironment) -> None:
    CALLS.clear()
    client = Client(**{**env.client.config(), "interceptors": [Everything()]})
    async with Worker(client, task_queue="q", workflows=[Parent, Child], activities=[shout]):
        start = WithStartWorkflowOperation(
            Parent.run,
            "hey",
            id="ws",
            task_queue="q",
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        )
        count = await client.execute_update_with_start_workflow(
            Parent.add, "first", start_workflow_operation=start
        )
        assert count == 1
        handle = await start.workflow_handle()
        assert handle.id == "ws" and handle.first_execution_run_id is not None
        await handle.terminate()
    assert ("client", "start_update_with_start_workflow", ("Parent", "add")) in CALLS
    seen = [(h, d[1]) for k, h, d in CALLS if k == "workflow" and d[0] == "ws"]
    assert seen[:3] == [
        ("handle_update_validator", ("add", "with-start")),
        ("handle_update_handler", ("add", "with-start")),
        ("execute_workflow", "client:ws"),
    ]
