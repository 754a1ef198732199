"""Event attributes are written byte for byte as before the orjson ``default=`` hook, and read
back to the same values, so existing databases and golden histories still read."""

from __future__ import annotations

import base64
import dataclasses
import enum
from collections import OrderedDict
from typing import Any, NamedTuple

import orjson
import pytest

from perdure._common.events import EventType, HistoryEvent, decode_attributes, encode_attributes
from perdure._common.payload import Payload

# The implementation before, kept as the reference the new one must equal.


def _reference_to_json(value: Any) -> Any:
    if isinstance(value, Payload):
        return {
            "metadata": {k: base64.b64encode(v).decode() for k, v in value.metadata.items()},
            "data": base64.b64encode(value.data).decode(),
        }
    if isinstance(value, dict):
        return {k: _reference_to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_reference_to_json(v) for v in value]
    return value


def _reference_from_json(value: Any) -> Any:
    if isinstance(value, dict):
        if len(value) == 2 and "metadata" in value and "data" in value:
            return Payload(
                metadata={k: base64.b64decode(v) for k, v in value["metadata"].items()},
                data=base64.b64decode(value["data"]),
            )
        return {k: _reference_from_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_reference_from_json(v) for v in value]
    return value


def _reference_encode(attributes: Any) -> bytes:
    return orjson.dumps(_reference_to_json(attributes))


def _reference_decode(data: bytes | str) -> Any:
    return _reference_from_json(orjson.loads(data))


def _json(value: Any) -> Payload:
    return Payload({"encoding": b"json/plain"}, orjson.dumps(value))


class Point(NamedTuple):
    x: int
    y: Payload


@dataclasses.dataclass
class Plain:
    name: str
    count: int
    _hidden: int = 0


class Color(enum.Enum):
    RED = "red"


# Shapes that read back as written.
ROUND_TRIPPING: dict[str, dict[str, Any]] = {
    "empty": {},
    "scalars": {"s": "x", "i": -3, "big": 9165154829601398909, "f": 1.5, "b": True, "n": None},
    "unicode and escapes": {"s": 'é\n"\\\u2028', "k\u00e9y": "\\u0041"},
    "one payload": {"result": _json({"ok": 1})},
    "payload list": {"input": [_json(1), _json("two"), Payload()]},
    "payload in nested dicts": {"a": {"b": {"c": _json([1, 2])}, "d": [{"e": _json(None)}]}},
    "lists in lists": {"l": [[_json(1), [_json(2)]], [], [[]]]},
    "binary data": {"p": Payload({"encoding": b"binary/plain"}, bytes(range(256)))},
    "many metadata keys": {
        "p": Payload({"encoding": b"binary/encrypted", "key-id": b"k1", "empty": b""}, b"\0")
    },
    "no metadata": {"p": Payload({}, b"data")},
    "empty payload": {"p": Payload()},
    "large payload": {"p": _json("x" * 100_000)},
    "memo and search attributes": {
        "memo": {"customer": _json("c-1"), "gone": None},
        "search_attributes": {"Priority": {"type": "Int", "values": [3]}, "Old": None},
    },
    "retry policy": {
        "retry_policy": {
            "initial_interval": 1.0,
            "backoff_coefficient": 2.0,
            "maximum_interval": None,
            "maximum_attempts": 3,
            "non_retryable_error_types": ["ValueError"],
        }
    },
    "a key named metadata": {"metadata": {"data": 1}, "data": "x", "x": {"metadata": 1}},
    "three keys with metadata and data": {"v": {"metadata": {}, "data": "", "more": 1}},
}

# Shapes written the same as before but read back in another form, as before.
ONE_WAY: dict[str, dict[str, Any]] = {
    "tuple": {"t": (1, _json(2), (3,))},
    "named tuple": {"t": Point(1, _json(2))},
    "dict shaped like a payload": {"v": {"metadata": {"encoding": "YQ=="}, "data": "Yg=="}},
    "dict subclass": {"o": OrderedDict(b=_json(1), a=2)},
    "enum": {"e": Color.RED, "t": EventType.TIMER_FIRED},
    "dataclass": {"d": Plain("n", 2, 5)},
    "bytearray metadata": {
        "p": Payload({"encoding": bytearray(b"json/plain")}, b"1")  # type: ignore[dict-item]
    },
}

SHAPES = {**ROUND_TRIPPING, **ONE_WAY}


@pytest.mark.parametrize("attributes", SHAPES.values(), ids=SHAPES.keys())
def test_encoding_is_byte_identical_to_the_reference(attributes: dict[str, Any]) -> None:
    assert encode_attributes(attributes) == _reference_encode(attributes)


@pytest.mark.parametrize("attributes", SHAPES.values(), ids=SHAPES.keys())
def test_decoding_equals_the_reference(attributes: dict[str, Any]) -> None:
    blob = _reference_encode(attributes)
    assert decode_attributes(blob) == _reference_decode(blob)
    assert decode_attributes(blob.decode()) == _reference_decode(blob)
    assert decode_attributes(memoryview(blob)) == _reference_decode(blob)  # type: ignore[arg-type]


@pytest.mark.parametrize("attributes", ROUND_TRIPPING.values(), ids=ROUND_TRIPPING.keys())
def test_decode_of_encode_is_the_identity(attributes: dict[str, Any]) -> None:
    assert decode_attributes(encode_attributes(attributes)) == attributes


@pytest.mark.parametrize("attributes", SHAPES.values(), ids=SHAPES.keys())
def test_history_event_json_dict_equals_the_reference(attributes: dict[str, Any]) -> None:
    event = HistoryEvent(3, EventType.ACTIVITY_TASK_COMPLETED, 1.25, attributes)
    obj = event.to_json_dict()
    assert obj["attributes"] == _reference_to_json(attributes)
    assert orjson.dumps(obj["attributes"]) == _reference_encode(attributes)
    obj = orjson.loads(orjson.dumps(obj))
    copy = orjson.loads(orjson.dumps(obj))
    read = HistoryEvent.from_json_dict(obj)
    assert read.attributes == _reference_from_json(obj["attributes"])
    assert obj == copy, "from_json_dict changed its argument"
    if attributes in ROUND_TRIPPING.values():
        assert read == event


@pytest.mark.parametrize(
    "text",
    [
        '{"p": {"m\\u0065tadata": {"encoding": "YQ=="}, "data": "Yg=="}}',
        '{"p": [{"metadata": {"enc\\u006fding": "YQ=="}, "data": "Yg=="}]}',
        '{"metadata": {"encoding": "YQ=="}, "data": "Yg=="}',
        '[{"metadata": {}, "data": "Yg=="}, 1]',
        '{"p": {"metadata": {"encoding": "Y Q=\\n="}, "data": "Y!g=="}}',
    ],
)
def test_json_written_by_hand_decodes_as_with_the_reference(text: str) -> None:
    assert decode_attributes(text) == _reference_decode(text)
    assert decode_attributes(text.encode()) == _reference_decode(text)


def test_many_distinct_metadata_values_are_all_converted_right() -> None:
    # More values than the base64 caches hold, and values longer than they remember.
    attributes = {
        "input": [Payload({"key": f"key-{i}".encode() * (1 + i % 20)}, b"x") for i in range(600)]
    }
    blob = encode_attributes(attributes)
    assert blob == _reference_encode(attributes)
    assert decode_attributes(blob) == attributes
    assert decode_attributes(blob) == attributes


@pytest.mark.parametrize("value", [{1, 2}, b"bytes", object()], ids=["set", "bytes", "object"])
def test_what_could_not_be_written_still_cannot(value: Any) -> None:
    with pytest.raises(TypeError):
        _reference_encode({"v": value})
    with pytest.raises(TypeError):
        encode_attributes({"v": value})


def test_a_payload_inside_another_dataclass_still_cannot_be_written() -> None:
    @dataclasses.dataclass
    class Holder:
        p: Payload

    with pytest.raises(TypeError):
        _reference_encode({"h": Holder(_json(1))})
    with pytest.raises(TypeError):
        encode_attributes({"h": Holder(_json(1))})
