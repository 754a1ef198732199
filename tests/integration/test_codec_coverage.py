"""The payload codec covers every payload: a canary string passed through every path by which
user data reaches the store (client calls, workflow commands, activity outcomes, async
completion, local activities, children, external signals, continue-as-new, memos, updates,
queries, failures) is nowhere in the database's bytes under an encrypting codec with failure
encoding on; and, as a control, the same run without them leaves every canary findable.

The bytes searched are the SQLite file and its WAL (a real file, read while the store is open
and again after it closed), or every row of every table of the PostgreSQL schema. A canary is
looked for as itself (failure messages are stored as JSON text) and in base64 at each of the
three alignments (payload data is stored base64-encoded).
"""

from __future__ import annotations

import asyncio
import base64
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from pgutil import fresh_schema, postgres_admin

from perdure import Worker, activity, workflow
from perdure.client import WorkflowFailureError, WorkflowUpdateFailedError
from perdure.common import RetryPolicy
from perdure.converter import (
    AesGcmCodec,
    CompositeCodec,
    DataConverter,
    DefaultFailureConverterWithEncodedAttributes,
    ZlibCodec,
)
from perdure.exceptions import ActivityError, ApplicationError, ChildWorkflowError
from perdure.testing import WorkflowEnvironment
from perdure.testing._replay_check import replay_closed_workflows

BASE = "perdure-canary-5f1d9e"


def c(path: str) -> str:
    """The canary of one path: found alone, it shows that path stored its data in clear."""
    return f"{BASE}-{path}"


# Where each canary goes. Failure messages (and the stack traces that repeat them) are the
# only plain text a codec alone leaves: failure encoding moves them into a payload.
PAYLOAD_PATHS = [
    "start-input",
    "start-memo",
    "start-signal",
    "upsert-memo",
    "activity-input",
    "activity-result",
    "heartbeat-details",
    "activity-failure-details",
    "local-input",
    "local-result",
    "local-failure-details",
    "child-input",
    "child-memo",
    "child-signal",
    "child-result",
    "child-failure-details",
    "external-signal",
    "target-input",
    "async-input",
    "async-heartbeat",
    "async-result",
    "async-failure-details",
    "client-signal",
    "query-input",
    "query-result",
    "update-input",
    "update-result",
    "update-fail-input",
    "update-failure-details",
    "update-rejected-input",
    "can-input",
    "workflow-failure-details",
]
MESSAGE_PATHS = [
    "activity-failure-message",
    "local-failure-message",
    "child-failure-message",
    "async-failure-message",
    "update-failure-message",
    "update-rejection-message",
    "workflow-failure-message",
    "task-failure",
]
# What the control cannot count on finding: rows deleted once read (a query's question and
# answer, an activity attempt's heartbeat; a PostgreSQL dump shows live rows only), and a
# local activity's input, which is never stored (its marker records the outcome).
NOT_KEPT_PATHS = {
    "query-input",
    "query-result",
    "heartbeat-details",
    "async-heartbeat",
    "local-input",
}

TOKENS: asyncio.Queue[tuple[str, bytes]]
FAILED_TASKS: set[str] = set()


@activity.defn
async def echo(arg: str) -> str:
    assert arg == c("activity-input"), arg
    activity.heartbeat(c("heartbeat-details"))
    return c("activity-result")


@activity.defn
async def fails(arg: str) -> str:
    raise ApplicationError(c("activity-failure-message"), c("activity-failure-details"))


@activity.defn
async def local_echo(arg: str) -> str:
    assert arg == c("local-input"), arg
    return c("local-result")


@activity.defn
async def local_fails(arg: str) -> str:
    raise ApplicationError(c("local-failure-message"), c("local-failure-details"))


@activity.defn
async def ask(arg: str) -> str:
    TOKENS.put_nowait((arg, activity.info().task_token))
    activity.raise_complete_async()


ONCE = RetryPolicy(maximum_attempts=1)
SHORT = timedelta(seconds=30)


@workflow.defn
class Child:
    def __init__(self) -> None:
        self.signal: str | None = None

    @workflow.run
    async def run(self, arg: str) -> list[str]:
        await workflow.wait_condition(lambda: self.signal is not None)
        assert self.signal is not None
        return [arg, workflow.memo_value("m", type_hint=str), self.signal, c("child-result")]

    @workflow.signal
    def go(self, value: str) -> None:
        self.signal = value


@workflow.defn
class FailingChild:
    @workflow.run
    async def run(self) -> None:
        raise ApplicationError(c("child-failure-message"), c("child-failure-details"))


@workflow.defn
class Target:
    def __init__(self) -> None:
        self.signals: list[str] = []

    @workflow.run
    async def run(self, arg: str) -> list[str]:
        await workflow.wait_condition(lambda: bool(self.signals))
        return [arg, *self.signals]

    @workflow.signal
    def sig(self, value: str) -> None:
        self.signals.append(value)


@workflow.defn
class Canary:
    def __init__(self) -> None:
        self.signals: list[str] = []
        self.updated: list[str] = []

    @workflow.run
    async def run(self, arg: str, seen: dict[str, Any] | None = None) -> None:
        if seen is not None:
            await self.second_run(arg, seen)
            return
        out: dict[str, Any] = {"input": arg}
        workflow.upsert_memo({"note": c("upsert-memo")})
        out["activity"] = await workflow.execute_activity(
            echo, c("activity-input"), start_to_close_timeout=SHORT
        )
        try:
            await workflow.execute_activity(
                fails, "x", start_to_close_timeout=SHORT, retry_policy=ONCE
            )
        except ActivityError as err:
            out["activity-failure"] = failure_seen(err.cause)
        out["local"] = await workflow.execute_local_activity(
            local_echo, c("local-input"), start_to_close_timeout=SHORT
        )
        try:
            await workflow.execute_local_activity(
                local_fails, "x", start_to_close_timeout=SHORT, retry_policy=ONCE
            )
        except ActivityError as err:
            out["local-failure"] = failure_seen(err.cause)
        child = await workflow.start_child_workflow(
            Child.run, c("child-input"), id="child", memo={"m": c("child-memo")}
        )
        await child.signal(Child.go, c("child-signal"))
        out["child"] = await child
        try:
            await workflow.execute_child_workflow(FailingChild.run, id="failing-child")
        except ChildWorkflowError as err:
            out["child-failure"] = failure_seen(err.cause)
        await workflow.get_external_workflow_handle("target").signal(
            Target.sig, c("external-signal")
        )
        answered, failed = await asyncio.gather(
            workflow.execute_activity(ask, c("async-input"), start_to_close_timeout=SHORT),
            workflow.execute_activity(
                ask, "fail-me", start_to_close_timeout=SHORT, retry_policy=ONCE
            ),
            return_exceptions=True,
        )
        out["async"] = answered
        assert isinstance(failed, ActivityError), failed
        out["async-failure"] = failure_seen(failed.cause)
        await workflow.wait_condition(lambda: bool(self.signals) and bool(self.updated))
        out["signals"] = self.signals
        out["updated"] = self.updated
        workflow.continue_as_new(args=[c("can-input"), out])

    async def second_run(self, arg: str, seen: dict[str, Any]) -> None:
        if workflow.info().run_id not in FAILED_TASKS:  # one failed workflow task, then on
            FAILED_TASKS.add(workflow.info().run_id)
            raise RuntimeError(c("task-failure"))
        memo = {k: workflow.memo_value(k, type_hint=str) for k in ("secret", "note")}
        raise ApplicationError(
            c("workflow-failure-message"),
            c("workflow-failure-details"),
            {"input": arg, "seen": seen, "memo": memo},
        )

    @workflow.signal
    def sig(self, value: str) -> None:
        self.signals.append(value)

    @workflow.query
    def q(self, arg: str) -> str:
        assert arg == c("query-input"), arg
        return c("query-result")

    @workflow.update
    def upd(self, arg: str) -> str:
        self.updated.append(arg)
        return c("update-result")

    @workflow.update
    def upd_fails(self, arg: str) -> str:
        raise ApplicationError(c("update-failure-message"), c("update-failure-details"))

    @workflow.update
    def upd_rejected(self, arg: str) -> str:
        return arg

    @upd_rejected.validator
    def _reject(self, arg: str) -> None:
        raise ApplicationError(c("update-rejection-message"))


def failure_seen(err: BaseException | None) -> list[Any]:
    """What code catching a failure reads from it: its message, details and stack trace."""
    assert isinstance(err, ApplicationError), err
    return [err.message, list(err.details), BASE in (err.failure or {}).get("stack_trace", "")]


def expected_seen() -> dict[str, Any]:
    def failed(path: str) -> list[Any]:
        return [c(f"{path}-failure-message"), [c(f"{path}-failure-details")], True]

    return {
        "input": c("start-input"),
        "activity": c("activity-result"),
        "activity-failure": failed("activity"),
        "local": c("local-result"),
        "local-failure": failed("local"),
        "child": [c("child-input"), c("child-memo"), c("child-signal"), c("child-result")],
        "child-failure": failed("child"),
        "async": c("async-result"),
        "async-failure": failed("async"),
        "signals": [c("start-signal"), c("client-signal")],
        "updated": [c("update-input")],
    }


async def drive(env: WorkflowEnvironment) -> None:
    """Every path, checking that what each one hands back reads as it was sent."""
    client = env.client
    target = await client.start_workflow(Target.run, c("target-input"), id="target", task_queue="q")
    handle = await client.start_workflow(
        Canary.run,
        c("start-input"),
        id="canary",
        task_queue="q",
        memo={"secret": c("start-memo")},
        start_signal="sig",
        start_signal_args=[c("start-signal")],
    )
    for _ in range(2):
        arg, token = await asyncio.wait_for(TOKENS.get(), 30)
        completion = client.get_async_activity_handle(task_token=token)
        await completion.heartbeat(c("async-heartbeat"))
        if arg == c("async-input"):
            await completion.complete(c("async-result"))
        else:
            try:
                raise ApplicationError(c("async-failure-message"), c("async-failure-details"))
            except ApplicationError as err:  # raised, so that it has a stack trace
                await completion.fail(err)
    assert await handle.query(Canary.q, c("query-input")) == c("query-result")
    with pytest.raises(WorkflowUpdateFailedError) as rejected:
        await handle.execute_update(Canary.upd_rejected, c("update-rejected-input"))
    assert isinstance(rejected.value.cause, ApplicationError)
    assert rejected.value.cause.message == c("update-rejection-message")
    with pytest.raises(WorkflowUpdateFailedError) as failed:
        await handle.execute_update(Canary.upd_fails, c("update-fail-input"))
    assert isinstance(failed.value.cause, ApplicationError)
    assert failed.value.cause.message == c("update-failure-message")
    assert list(failed.value.cause.details) == [c("update-failure-details")]
    await handle.signal(Canary.sig, c("client-signal"))
    assert await handle.execute_update(Canary.upd, c("update-input")) == c("update-result")
    with pytest.raises(WorkflowFailureError) as closed:
        await handle.result()
    cause = closed.value.cause
    assert isinstance(cause, ApplicationError)
    assert cause.message == c("workflow-failure-message")
    assert BASE in (cause.failure or {}).get("stack_trace", "")
    assert list(cause.details) == [
        c("workflow-failure-details"),
        {
            "input": c("can-input"),
            "seen": expected_seen(),
            "memo": {"secret": c("start-memo"), "note": c("upsert-memo")},
        },
    ]
    assert (await handle.describe()).memo == {"secret": c("start-memo"), "note": c("upsert-memo")}
    assert await target.result() == [c("target-input"), c("external-signal")]
    _, replay_failures = await replay_closed_workflows(client)  # replay decodes too
    assert replay_failures == []


def needles(text: str) -> list[bytes]:
    """``text`` as raw bytes, and as it reads inside base64 at each of the three offsets."""
    raw = text.encode()
    found = [raw]
    for shift in range(3):
        encoded = base64.b64encode(b"\0" * shift + raw)
        # Drop the characters that also encode the padding before and the bytes after.
        start = (shift * 4 + 2) // 3
        end = ((shift + len(raw)) // 3) * 4
        found.append(encoded[start:end])
    return found


def hits(blob: bytes, text: str) -> int:
    return sum(blob.count(n) for n in needles(text))


@dataclass
class Database:
    url: str
    read: Callable[[], Awaitable[bytes]]  # every byte of stored data, as it stands


@pytest.fixture(params=["sqlite", "postgresql"])
async def database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    if request.param == "sqlite":
        path = tmp_path / "canary.db"

        async def read_files() -> bytes:
            files = [path, path.with_name(path.name + "-wal")]
            return b"".join(f.read_bytes() for f in files if f.exists())

        yield Database(f"sqlite:///{path}", read_files)
        return
    async with fresh_schema() as url:
        schema = url.rsplit("schema=", 1)[1]

        async def read_rows() -> bytes:
            admin = await postgres_admin()
            try:
                tables = await admin.fetch(
                    "SELECT table_name FROM information_schema.tables WHERE table_schema = $1",
                    schema,
                )
                assert tables, f"no tables in schema {schema}"
                out = []
                for t in tables:
                    for row in await admin.fetch(f'SELECT * FROM "{schema}"."{t[0]}"'):
                        for value in row.values():
                            out.append(value if isinstance(value, bytes) else str(value).encode())
                return b"\n".join(out)
            finally:
                await admin.close()

        yield Database(url, read_rows)


CODEC = CompositeCodec([ZlibCodec(), AesGcmCodec(os.urandom(32), key_id="test")])
MODES = {
    "plain": DataConverter(),
    "codec": DataConverter(payload_codec=CODEC),
    "codec+failures": DataConverter(
        payload_codec=CODEC, failure_converter_class=DefaultFailureConverterWithEncodedAttributes
    ),
}


@pytest.mark.parametrize("mode", list(MODES))
async def test_codec_covers_every_payload(database: Database, mode: str) -> None:
    global TOKENS
    TOKENS = asyncio.Queue()
    env = await WorkflowEnvironment.start_time_skipping(
        url=database.url, data_converter=MODES[mode]
    )
    try:
        async with Worker(
            env.client,
            task_queue="q",
            workflows=[Canary, Child, FailingChild, Target],
            activities=[echo, fails, local_echo, local_fails, ask],
        ):
            await drive(env)
        blob = await database.read()
    finally:
        await env.shutdown()
    if database.url.startswith("sqlite"):
        blob += await database.read()  # the file once the WAL is checkpointed into it
    found = {p for p in PAYLOAD_PATHS + MESSAGE_PATHS if hits(blob, c(p))}
    if mode == "plain":  # the control: every path stored its canary where the search looks
        assert set(PAYLOAD_PATHS + MESSAGE_PATHS) - NOT_KEPT_PATHS - found == set()
    elif mode == "codec":  # a codec alone leaves failure messages and stack traces in clear
        assert found == set(MESSAGE_PATHS)
    else:
        assert found == set()
        assert hits(blob, BASE) == 0
