"""The one place the payload codec meets what perdure stores: every payload of a command, an
event, a failure, a memo or a row goes through it on the way to the store and back.

There is no list of payload-bearing fields to keep up to date: payloads are found by their
type, at any depth of the lists and dicts of a command's fields or an event's attributes (a
memo's values, a failure's ``details``, its ``encoded_attributes``, its cause's, ...). So a
field added to a command or an event is encoded and decoded from the day it exists, and
encoding (worker commands, client calls, activity outcomes) and decoding (history read by a
worker or the replayer, results read by a client) cannot disagree about where payloads are.
What is not a payload stays as it is: ids, type and handler names, task queues, timeouts,
retry policies, search attributes, memo keys, and the messages and stack traces of failures,
which :class:`~perdure.converter.DefaultFailureConverterWithEncodedAttributes` moves into a
payload.

Each call makes one codec call for all the payloads it finds (a codec backed by a key service
pays one round trip per workflow task, not one per payload), so a codec must return one
payload for each it is given, in order. Containers holding a payload are copied, never changed
in place: the runtime keeps references to what it decided (a memo, say) and must go on seeing
the values as its converter wrote them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import Any, Protocol, TypeVar

from perdure._common.commands import Command
from perdure._common.events import HistoryEvent
from perdure._common.payload import Payload

T = TypeVar("T")
_Code = Callable[[Sequence[Payload]], Awaitable[list[Payload]]]


class PayloadCodec(Protocol):
    """What this module needs of a :class:`perdure.converter.PayloadCodec`."""

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]: ...

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]: ...


async def encode_within(codec: PayloadCodec | None, value: T) -> T:
    """``value`` (a payload, or lists and dicts holding payloads at any depth) with each
    payload encoded by ``codec``; ``value`` itself if there is no codec or no payload."""
    if codec is None:
        return value
    return (await _code_all(codec.encode, "encode", [value]))[0]  # type: ignore[no-any-return]


async def decode_within(codec: PayloadCodec | None, value: T) -> T:
    """The inverse of :func:`encode_within`."""
    if codec is None:
        return value
    return (await _code_all(codec.decode, "decode", [value]))[0]  # type: ignore[no-any-return]


async def encode_commands(codec: PayloadCodec | None, commands: Sequence[Command]) -> None:
    """Encode every payload of every field of ``commands``, in place (the fields are rebound
    to encoded copies), before the store records them."""
    if codec is None or not commands:
        return
    names = [[f.name for f in dataclasses.fields(c)] for c in commands]
    values = [getattr(c, n) for c, fields in zip(commands, names, strict=True) for n in fields]
    coded = iter(await _code_all(codec.encode, "encode", values))
    for command, fields in zip(commands, names, strict=True):
        for name in fields:
            new = next(coded)
            if new is not getattr(command, name):
                setattr(command, name, new)


async def decode_events(
    codec: PayloadCodec | None, events: Sequence[HistoryEvent]
) -> list[HistoryEvent]:
    """``events`` as their code wrote them: every payload of their attributes decoded, in new
    events (those given are left as they are)."""
    if codec is None:
        return list(events)
    attributes = await _code_all(codec.decode, "decode", [e.attributes for e in events])
    return [
        e if a is e.attributes else HistoryEvent(e.event_id, e.event_type, e.event_time, a)
        for e, a in zip(events, attributes, strict=True)
    ]


async def _code_all(code: _Code, verb: str, values: list[Any]) -> list[Any]:
    found: list[Payload] = []
    for value in values:
        _collect(value, found)
    if not found:
        return values
    coded = await code(found)
    if len(coded) != len(found):
        raise ValueError(
            f"The payload codec's {verb} returned {len(coded)} payloads for {len(found)}: a "
            "PayloadCodec must return one payload for each it is given, in the same order"
        )
    it = iter(coded)
    return [_replace(value, it) for value in values]


def _collect(value: Any, found: list[Payload]) -> None:
    if isinstance(value, Payload):
        found.append(value)
    elif isinstance(value, dict):
        for v in value.values():
            _collect(v, found)
    elif isinstance(value, list | tuple):
        for v in value:
            _collect(v, found)


def _replace(value: Any, coded: Iterator[Payload]) -> Any:
    """``value`` with its payloads taken from ``coded``, in the order :func:`_collect` found
    them; a container is copied only if something in it changed."""
    if isinstance(value, Payload):
        return next(coded)
    if isinstance(value, dict):
        out: dict[Any, Any] | None = None
        for k, v in value.items():
            new = _replace(v, coded)
            if new is not v:
                if out is None:
                    out = dict(value)
                out[k] = new
        return value if out is None else out
    if isinstance(value, list | tuple):
        items = [_replace(v, coded) for v in value]
        if all(new is old for new, old in zip(items, value, strict=True)):
            return value
        return items if isinstance(value, list) else tuple(items)
    return value
