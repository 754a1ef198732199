"""NaN and the infinities: JSON cannot hold them, so the converter refuses them, saying
where they are, instead of writing ``null`` (which would come back as ``None``)."""

from __future__ import annotations

import dataclasses
import enum
import math
from typing import Any, NamedTuple

import pydantic
import pytest

from perdure.converter import DataConverter
from perdure.converter._json import decode_value, encode_value

NAN = float("nan")
INF = float("inf")


@dataclasses.dataclass
class Stats:
    mean: float
    samples: list[float]
    note: str | None = None


class Reading(pydantic.BaseModel):
    value: float


class Level(float, enum.Enum):
    UNKNOWN = NAN


class Point(NamedTuple):
    x: float
    y: float


@pytest.mark.parametrize(
    ("value", "where", "which"),
    [
        (NAN, "$", "nan"),
        ([1.0, None, INF], "$[2]", "inf"),
        ({"a": {"b": -INF}}, "$.a.b", "-inf"),
        (Stats(mean=NAN, samples=[]), "$.mean", "nan"),
        ({"stats": Stats(mean=1.0, samples=[2.0, INF])}, "$.stats.samples[1]", "inf"),
        (Reading(value=NAN), "$.value", "nan"),
        ([Level.UNKNOWN], "$[0]", "nan"),
        ((1.0, (NAN,)), "$[1][0]", "nan"),
        (Point(1.0, INF), "$[1]", "inf"),
        ({1: NAN}, "$.1", "nan"),  # non-str keys take orjson's other path
        ({NAN: "key"}, "$ (a key)", "nan"),
        (frozenset({INF}), "$[0]", "inf"),
        (1e400, "$", "inf"),
    ],
)
def test_a_nan_or_infinity_is_refused_naming_where_it_is(
    value: Any, where: str, which: str
) -> None:
    with pytest.raises(ValueError) as info:
        encode_value(value)
    message = str(info.value)
    assert f"cannot encode float('{which}') at {where} as JSON" in message
    assert "send None or a string in its place" in message


def test_none_and_the_word_null_still_encode() -> None:
    assert encode_value([None, "null", Stats(mean=1.5, samples=[], note=None)]) == (
        b'[null,"null",{"mean":1.5,"samples":[],"note":null}]'
    )
    assert decode_value(encode_value({"x": None}), dict[str, float | None]) == {"x": None}


def test_finite_floats_round_trip_exactly() -> None:
    values = [0.1, -0.0, 1e308, 5e-324, math.pi]
    assert decode_value(encode_value(values), list[float]) == values


async def test_the_data_converter_refuses_it_too() -> None:
    with pytest.raises(ValueError, match=r"at \$\.mean"):
        await DataConverter.default.encode([Stats(mean=NAN, samples=[])])


@dataclasses.dataclass
class WithPrivate:
    value: float
    _cache: float = NAN


def test_only_what_orjson_writes_is_looked_at() -> None:
    # orjson leaves out a dataclass's attributes named with a leading underscore.
    assert encode_value([None, WithPrivate(1.0)]) == b'[null,{"value":1.0}]'
    item = WithPrivate(2.0)
    item.extra = INF  # type: ignore[attr-defined]  # written by orjson, so refused
    with pytest.raises(ValueError, match=r"float\('inf'\) at \$\[1\]\.extra"):
        encode_value([None, item])
