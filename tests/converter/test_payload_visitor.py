"""The payload visitor finds every payload of every command (whatever field it sits in, at any
depth), and decoding the events the store makes of them gives back what the code decided."""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Sequence
from typing import Any

import pytest

from perdure._common.commands import (
    AcceptUpdate,
    CancelTimer,
    CancelWorkflow,
    Command,
    CompleteUpdate,
    CompleteWorkflow,
    ContinueAsNew,
    FailWorkflow,
    RecordLocalActivity,
    RecordPatch,
    RejectUpdate,
    RequestCancelActivity,
    RequestCancelExternalWorkflow,
    ScheduleActivity,
    ScheduleLocalActivity,
    SignalExternalWorkflow,
    StartChildWorkflow,
    StartTimer,
    UpsertMemo,
    UpsertSearchAttributes,
)
from perdure._common.events import EventType, HistoryEvent, decode_attributes, encode_attributes
from perdure.converter import Payload, PayloadCodec
from perdure.converter._visitor import decode_events, decode_within, encode_commands

CODED = b"test/coded"


class Marking(PayloadCodec):
    """Wraps each payload whole, so a payload the visitor missed is easy to tell."""

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [Payload({"encoding": CODED}, encode_attributes({"p": p})) for p in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [
            decode_attributes(p.data)["p"] if p.metadata.get("encoding") == CODED else p
            for p in payloads
        ]


def p(text: str) -> Payload:
    return Payload({"encoding": b"json/plain"}, f'"{text}"'.encode())


def failure(name: str) -> dict[str, Any]:
    return {
        "message": f"{name} failed",
        "kind": "application",
        "type": "Oops",
        "stack_trace": "",
        "non_retryable": False,
        "details": [p(f"{name} detail")],
        "encoded_attributes": p(f"{name} attributes"),
        "cause": {
            "message": "cause",
            "kind": "timeout",
            "last_heartbeat_details": [p(f"{name} heartbeat")],
            "details": [],
            "cause": None,
        },
    }


def commands() -> list[Command]:
    """One of each command, with a payload in every place one can be."""
    return [
        ScheduleActivity(1, "1", "act", "q", [p("a1"), p("a2")], None, None, 5.0, None, {}, 0),
        RequestCancelActivity(1),
        StartTimer(1, 5.0),
        CancelTimer(1),
        CompleteWorkflow(p("result")),
        FailWorkflow(failure("workflow")),
        CancelWorkflow([p("cancelled")]),
        ContinueAsNew("wf", "q", [p("next")], None, None, {"m": p("memo"), "gone": None}),
        RecordPatch("patch", False),
        UpsertMemo({"k": p("upserted"), "removed": None}),
        UpsertSearchAttributes({"Tag": {"type": "Keyword", "values": ["plain"]}}),
        AcceptUpdate("u1", "upd", [p("update input")]),
        RejectUpdate("u2", failure("rejected")),
        CompleteUpdate("u3", p("update result"), None),
        CompleteUpdate("u4", None, failure("update")),
        StartChildWorkflow(
            seq=1,
            workflow_id="c",
            workflow_type="child",
            task_queue="q",
            input=[p("child input")],
            parent_close_policy=0,
            execution_timeout=None,
            run_timeout=None,
            task_timeout=None,
            retry_policy=None,
            id_reuse_policy=0,
            memo={"cm": p("child memo")},
            search_attributes={"Tag": {"type": "Keyword", "values": ["plain"]}},
        ),
        SignalExternalWorkflow(1, "other", None, "sig", [p("signal")]),
        RequestCancelExternalWorkflow(1, "other", None),
        ScheduleLocalActivity(1, "1", "act", [p("local input")], None, 5.0, {}),
        RecordLocalActivity(1, "1", "act", 1, p("local result"), None),
        RecordLocalActivity(2, "2", "act", 1, None, failure("local")),
    ]


def payloads_in(value: Any) -> list[Payload]:
    if isinstance(value, Payload):
        return [value]
    if isinstance(value, dict):
        return [q for v in value.values() for q in payloads_in(v)]
    if isinstance(value, list | tuple):
        return [q for v in value for q in payloads_in(v)]
    return []


def fields_of(command: Command) -> dict[str, Any]:
    return {f.name: getattr(command, f.name) for f in dataclasses.fields(command)}


def as_stored(command: Command) -> dict[str, Any]:
    return decode_attributes(encode_attributes(command.attributes()))


def test_every_kind_of_command_is_covered_here() -> None:
    assert {type(c) for c in commands()} == set(typing.get_args(Command))


async def test_every_payload_of_every_command_is_encoded() -> None:
    batch = commands()
    before = [fields_of(c) for c in batch]
    await encode_commands(Marking(), batch)
    for command, original in zip(batch, before, strict=True):
        found = payloads_in(fields_of(command))
        assert len(found) == len(payloads_in(original))
        assert all(q.metadata["encoding"] == CODED for q in found), command.describe()
        # The plain fields are untouched.
        plain = {k: v for k, v in original.items() if not payloads_in(v)}
        assert {k: fields_of(command)[k] for k in plain} == plain


async def test_decoding_the_stored_events_gives_back_what_the_code_decided() -> None:
    batch = commands()
    decided = [c.attributes() for c in batch]
    await encode_commands(Marking(), batch)
    stored = [  # as the store writes and reads them
        HistoryEvent(i, c.event_type or EventType.MARKER_RECORDED, 0.0, as_stored(c))
        for i, c in enumerate(batch, 1)
    ]
    read = await decode_events(Marking(), stored)
    assert [e.attributes for e in read] == decided


async def test_what_the_code_holds_is_never_changed_in_place() -> None:
    memo = {"k": p("upserted")}
    upsert = UpsertMemo(memo)
    await encode_commands(Marking(), [upsert])
    assert memo == {"k": p("upserted")}  # the runtime's own memo still reads
    assert upsert.memo is not memo

    event = HistoryEvent(1, EventType.WORKFLOW_PROPERTIES_MODIFIED, 0.0, dict(upsert.memo))
    [read] = await decode_events(Marking(), [event])
    assert event.attributes["k"].metadata["encoding"] == CODED
    assert read.attributes == {"k": p("upserted")}


async def test_nothing_to_code_and_no_codec_leave_values_as_they_are() -> None:
    plain = {"seq": 1, "retry_policy": {"maximum_attempts": 3}, "names": ["a", "b"]}
    assert await decode_within(Marking(), plain) is plain
    assert await decode_within(None, plain) is plain
    events = [HistoryEvent(1, EventType.TIMER_FIRED, 0.0, {"seq": 1})]
    assert (await decode_events(Marking(), events))[0] is events[0]


class Batching(PayloadCodec):
    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [Payload({"encoding": b"batch"}, b"".join(q.data for q in payloads))]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return list(payloads)


async def test_a_codec_must_return_one_payload_per_payload() -> None:
    with pytest.raises(ValueError, match="returned 1 payloads for 2"):
        await encode_commands(Batching(), [CancelWorkflow([p("a"), p("b")])])
