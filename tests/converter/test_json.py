"""The ``json/plain`` encoding: values round-trip through JSON back to their annotated types.

This module uses ``from __future__ import annotations`` on purpose: every dataclass below
has string annotations, as most user code does, and the decoder must resolve them.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import datetime
import decimal
import enum
import os
import subprocess
import sys
import typing
import uuid
from typing import Annotated, Any, Generic, Literal, NamedTuple, NewType, Optional, TypeVar, Union

import orjson
import pydantic
import pytest
import typing_extensions

from perdure.converter._json import decode_value, encode_value


def roundtrip(value: Any, hint: Any) -> Any:
    return decode_value(encode_value(value), hint)


# --- Types used by the tests (module level, so their string annotations resolve) -----------


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


class Priority(enum.IntEnum):
    LOW = 1
    HIGH = 2


class Point(NamedTuple):
    x: int
    y: int = 0


UserId = NewType("UserId", int)
Scores = dict[str, list[float]]  # a plain type alias
Dates = typing_extensions.TypeAliasType("Dates", list[datetime.date])
T = TypeVar("T")


class Sku(str):
    pass


class Movie(typing.TypedDict):
    title: str
    released: datetime.date


class PartialMovie(typing.TypedDict, total=False):
    title: str
    year: int


@dataclasses.dataclass
class Item:
    sku: str
    price: float
    quantity: int = 1


@dataclasses.dataclass
class Order:
    id: uuid.UUID
    placed: datetime.datetime
    items: list[Item]
    color: Color = Color.RED
    note: str | None = None
    tags: set[str] = dataclasses.field(default_factory=set)


@dataclasses.dataclass
class Blob:
    name: str
    data: bytes
    parts: list[bytes]


@dataclasses.dataclass
class Node:
    value: int
    children: list[Node] = dataclasses.field(default_factory=list)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Frozen:
    when: datetime.date
    amount: decimal.Decimal


@dataclasses.dataclass
class WithInitFalse:
    a: int
    doubled: int = dataclasses.field(init=False)

    def __post_init__(self) -> None:
        self.doubled = self.a * 2


@dataclasses.dataclass
class Positive:
    n: int

    def __post_init__(self) -> None:
        if self.n <= 0:
            raise ValueError("n must be positive")


@dataclasses.dataclass
class Box(Generic[T]):
    content: T
    history: list[T]


@dataclasses.dataclass
class Cat:
    meows: int


@dataclasses.dataclass
class Dog:
    barks: int


@dataclasses.dataclass
class Everything:
    when: datetime.datetime
    day: datetime.date
    at: datetime.time
    ident: uuid.UUID
    color: Color
    priority: Priority
    amount: decimal.Decimal
    raw: bytes
    unique: frozenset[int]
    pair: tuple[int, str]
    many: tuple[float, ...]
    by_id: dict[int, str]
    by_uuid: dict[uuid.UUID, Color]
    point: Point
    user: UserId
    kind: Literal["a", "b"]
    movie: Movie
    maybe: Optional[int]  # noqa: UP045 - the typing spelling is supported too
    either: Union[int, str]  # noqa: UP007
    seq: collections.abc.Sequence[int]
    mapping: collections.abc.Mapping[str, int]
    dates: Dates


class Address(pydantic.BaseModel):
    city: str
    zip_code: str


class Customer(pydantic.BaseModel):
    id: uuid.UUID
    name: str
    since: datetime.date
    addresses: list[Address]


@dataclasses.dataclass
class Invoice:
    customer: Customer
    total: decimal.Decimal


# --- Encoding ----------------------------------------------------------------------------


def test_encode_writes_compact_json_for_plain_values() -> None:
    value = {"a": [1, 2.5, "x", None, True], "b": {"c": []}}
    assert encode_value(value) == b'{"a":[1,2.5,"x",null,true],"b":{"c":[]}}'


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (datetime.datetime(2024, 5, 1, 12, 30, 0, 5), b'"2024-05-01T12:30:00.000005"'),
        (
            datetime.datetime(2024, 5, 1, 12, 30, tzinfo=datetime.UTC),
            b'"2024-05-01T12:30:00+00:00"',
        ),
        (datetime.date(2024, 5, 1), b'"2024-05-01"'),
        (datetime.time(8, 15, 30), b'"08:15:30"'),
        (uuid.UUID(int=1), b'"00000000-0000-0000-0000-000000000001"'),
        (Color.GREEN, b'"green"'),
        (Priority.HIGH, b"2"),
        (decimal.Decimal("10.50"), b'"10.50"'),
        (b"hi", b'"aGk="'),
        (bytearray(b"hi"), b'"aGk="'),
        ({"b", "c", "a"}, b'["a","b","c"]'),
        (frozenset({3, 1, 2}), b"[1,2,3]"),
        ((1, "x"), b'[1,"x"]'),
        (Point(1, 2), b"[1,2]"),
        ({1: "a", 2: "b"}, b'{"1":"a","2":"b"}'),
        (Item("abc", 1.5), b'{"sku":"abc","price":1.5,"quantity":1}'),
        (Address(city="Oslo", zip_code="0150"), b'{"city":"Oslo","zip_code":"0150"}'),
    ],
)
def test_encode_writes_each_supported_type(value: Any, expected: bytes) -> None:
    assert encode_value(value) == expected


def test_equal_sets_encode_to_equal_bytes() -> None:
    words = [f"word{i}" for i in range(50)]
    assert encode_value(set(words)) == encode_value(set(reversed(words)))


def test_sets_whose_items_do_not_compare_still_encode() -> None:
    assert sorted(orjson.loads(encode_value({1, "a"})), key=str) == [1, "a"]


def test_encode_refuses_unsupported_types_and_says_what_to_do() -> None:
    class Opaque:
        pass

    with pytest.raises(TypeError) as info:
        encode_value({"items": [Opaque()]})
    message = str(info.value)
    assert "Opaque" in message
    assert "dataclass or pydantic model" in message
    assert "DataConverter" in message


def test_encode_refuses_unsupported_types_inside_dataclasses() -> None:
    @dataclasses.dataclass
    class Holder:
        thing: object

    with pytest.raises(TypeError, match="cannot encode a value of type complex"):
        encode_value(Holder(thing=1j))


def test_encode_never_pickles() -> None:
    class Picklable:
        def __reduce__(self) -> tuple[Any, ...]:
            return (Picklable, ())

    with pytest.raises(TypeError, match="Picklable"):
        encode_value(Picklable())


def test_encode_refuses_integers_beyond_64_bits() -> None:
    with pytest.raises(TypeError, match="cannot encode int as JSON: Integer exceeds 64-bit"):
        encode_value(2**64)


def test_encode_refuses_keys_json_cannot_hold() -> None:
    with pytest.raises(TypeError, match="cannot encode dict as JSON"):
        encode_value({(1, 2): "tuple key"})


def test_json_module_does_not_import_pydantic() -> None:
    code = "import sys, perdure.converter._json; print('pydantic' in sys.modules)"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"


# --- Decoding without a hint ----------------------------------------------------------------


@pytest.mark.parametrize("hint", [None, Any, object])
def test_decode_without_a_hint_returns_plain_json(hint: Any) -> None:
    data = encode_value({"when": datetime.date(2024, 5, 1), "n": [1, 2]})
    assert decode_value(data, hint) == {"when": "2024-05-01", "n": [1, 2]}


def test_decode_rejects_invalid_json() -> None:
    with pytest.raises(orjson.JSONDecodeError):
        decode_value(b"{not json", dict[str, int])


# --- Scalars -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "hint"),
    [
        (None, type(None)),
        (True, bool),
        (False, bool),
        (0, int),
        (-(2**63), int),
        (2**63 - 1, int),
        (1.25, float),
        ("héllo ✓", str),
        ("", str),
        (datetime.datetime(2024, 5, 1, 12, 30, 15, 123456), datetime.datetime),
        (
            datetime.datetime(
                2024, 5, 1, 12, 30, tzinfo=datetime.timezone(datetime.timedelta(hours=2))
            ),
            datetime.datetime,
        ),
        (datetime.date(1999, 12, 31), datetime.date),
        (datetime.time(23, 59, 59, 999999), datetime.time),
        (uuid.uuid4(), uuid.UUID),
        (Color.GREEN, Color),
        (Priority.LOW, Priority),
        (decimal.Decimal("3.14159265358979323846"), decimal.Decimal),
        (b"\x00\xffbinary", bytes),
        (bytearray(b"abc"), bytearray),
        (UserId(7), UserId),
        (Sku("A-1"), Sku),
    ],
)
def test_scalars_round_trip(value: Any, hint: Any) -> None:
    result = roundtrip(value, hint)
    assert result == value
    assert type(result) is type(value)


def test_aware_datetime_keeps_its_offset() -> None:
    when = datetime.datetime(2024, 5, 1, 12, tzinfo=datetime.timezone(datetime.timedelta(hours=-5)))
    result = roundtrip(when, datetime.datetime)
    assert result.utcoffset() == datetime.timedelta(hours=-5)
    assert result == when


def test_float_hint_accepts_an_int_and_returns_a_float() -> None:
    result = decode_value(b"3", float)
    assert result == 3.0
    assert type(result) is float


def test_int_hint_returns_an_int() -> None:
    result = decode_value(b"3", int)
    assert result == 3
    assert type(result) is int


@pytest.mark.parametrize(
    ("data", "hint", "message"),
    [
        (b"3.5", int, "expected int, got float"),
        (b"true", int, "expected int, got bool"),
        (b"1", bool, "expected bool, got int"),
        (b"1", str, "expected str, got int"),
        (b'"1.5"', float, "expected float, got str"),
        (b"null", int, "expected int, got None"),
        (b"1", type(None), "expected None, got int"),
        (b'"yesterday"', datetime.date, "invalid date: 'yesterday'"),
        (b"12", datetime.datetime, "expected datetime as a string, got int"),
        (b'"not-a-uuid"', uuid.UUID, "invalid UUID: 'not-a-uuid'"),
        (b'"abc"', decimal.Decimal, "invalid Decimal: 'abc'"),
        (b'"***"', bytes, "invalid base64 bytes: '***'"),
        (b'"blue"', Color, "'blue' is not a valid Color"),
        (b"5", Priority, "5 is not a valid Priority"),
    ],
)
def test_scalar_mismatches_say_what_was_expected(data: bytes, hint: Any, message: str) -> None:
    with pytest.raises(TypeError) as info:
        decode_value(data, hint)
    assert str(info.value).endswith(f": $: {message}")


def test_decimal_hint_accepts_json_numbers() -> None:
    assert decode_value(b"2", decimal.Decimal) == decimal.Decimal(2)
    assert decode_value(b"0.1", decimal.Decimal) == decimal.Decimal("0.1")


# --- Collections -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "hint"),
    [
        ([datetime.date(2024, 1, d) for d in (1, 2, 3)], list[datetime.date]),
        ((1, 2, 3), tuple[int, ...]),
        ((1, "a", Color.RED), tuple[int, str, Color]),
        ((), tuple[()]),
        ({uuid.UUID(int=1), uuid.UUID(int=2)}, set[uuid.UUID]),
        (frozenset({Priority.LOW, Priority.HIGH}), frozenset[Priority]),
        ({"a": [1.5], "b": []}, Scores),
        ({1: "one", 2: "two"}, dict[int, str]),
        ({1.5: "x"}, dict[float, str]),
        ({True: 1, False: 0}, dict[bool, int]),
        ({Color.RED: 1}, dict[Color, int]),
        ({Priority.HIGH: "h"}, dict[Priority, str]),
        ({uuid.UUID(int=5): [1]}, dict[uuid.UUID, list[int]]),
        ({datetime.date(2024, 5, 1): 3}, dict[datetime.date, int]),
        ({1: {2: [3]}}, dict[int, dict[int, list[int]]]),
        ([[1, 2], [3]], list[list[int]]),
        ([1, 2], typing.List[int]),  # noqa: UP006
        ({"a": 1}, typing.Dict[str, int]),  # noqa: UP006
        ([1, 2], list),
        ({"a": [1]}, dict),
        ((1, "x"), tuple),
        ({"a": 1}, dict[str, Any]),
    ],
)
def test_collections_round_trip(value: Any, hint: Any) -> None:
    result = roundtrip(value, hint)
    assert result == value
    assert type(result) is type(value)


def test_dict_keys_come_back_typed() -> None:
    result = roundtrip({1: "a", 20: "b"}, dict[int, str])
    assert list(result) == [1, 20]
    assert all(type(k) is int for k in result)


@pytest.mark.parametrize(
    ("hint", "kind"),
    [
        (collections.abc.Sequence[int], list),
        (collections.abc.MutableSequence[int], list),
        (collections.abc.Iterable[int], list),
        (collections.abc.Set[int], set),
        (collections.abc.MutableSet[int], set),
        (typing.Sequence[int], list),
    ],
)
def test_abstract_collections_decode_to_concrete_ones(hint: Any, kind: type) -> None:
    result = decode_value(b"[3, 1, 2]", hint)
    assert type(result) is kind
    assert result == kind([3, 1, 2])


@pytest.mark.parametrize(
    "hint", [collections.abc.Mapping[str, int], typing.MutableMapping[str, int]]
)
def test_abstract_mappings_decode_to_dicts(hint: Any) -> None:
    assert decode_value(b'{"a": 1}', hint) == {"a": 1}


@pytest.mark.parametrize(
    ("data", "hint", "message"),
    [
        (
            b"[1, 2, 3]",
            tuple[int, int],
            "tuple[int, int]: $: expected tuple[int, int] with 2 items, got 3",
        ),
        (b'[1, "x"]', tuple[int, int], "tuple[int, int]: $[1]: expected int, got str"),
        (b'{"a": 1}', list[int], "list[int]: $: expected list[int] as a JSON array, got dict"),
        (
            b"[1, 2]",
            dict[str, int],
            "dict[str, int]: $: expected dict[str, int] as a JSON object, got list",
        ),
        (
            b'{"a": [1, "x"]}',
            dict[str, list[int]],
            "dict[str, list[int]]: $['a'][1]: expected int, got str",
        ),
        (b'{"x": 1}', dict[int, int], "dict[int, int]: $['x']: key 'x' is not a valid int"),
        (b"[[1], [2, null]]", list[list[int]], "list[list[int]]: $[1][1]: expected int, got None"),
        (
            b"[[1]]",
            set[list[int]],
            "set[list[int]]: $: cannot make set[list[int]]: unhashable type: 'list'",
        ),
        (
            b'[{"sku": "a", "price": true}]',
            collections.abc.Sequence[Item],
            "Sequence[Item]: $[0].price: expected float, got bool",
        ),
    ],
)
def test_collection_mismatches_name_the_path(data: bytes, hint: Any, message: str) -> None:
    with pytest.raises(TypeError) as info:
        decode_value(data, hint)
    assert str(info.value) == f"cannot decode JSON as {message}"


# --- Unions, literals, aliases -----------------------------------------------------------------


@pytest.mark.parametrize("hint", [Optional[int], int | None, Union[None, int]])  # noqa: UP007, UP045
def test_optional(hint: Any) -> None:
    assert decode_value(b"null", hint) is None
    assert decode_value(b"4", hint) == 4


def test_optional_keeps_the_inner_error() -> None:
    with pytest.raises(TypeError, match=r"\$\.items\[0\]\.price: expected float, got str"):
        decode_value(
            b'{"id": "00000000-0000-0000-0000-000000000001", "placed": '
            b'"2024-05-01T00:00:00", "items": [{"sku": "a", "price": "x"}]}',
            Order | None,
        )


def test_union_prefers_a_plain_json_value_that_already_fits() -> None:
    assert decode_value(b'"2024-05-01"', datetime.date | str) == "2024-05-01"
    assert decode_value(b'"2024-05-01"', str | datetime.date) == "2024-05-01"
    assert type(decode_value(b"3", float | int)) is int
    assert type(decode_value(b"3.0", float | int)) is float


def test_union_tries_members_in_order() -> None:
    assert decode_value(b'"2024-05-01"', datetime.date | int) == datetime.date(2024, 5, 1)
    assert decode_value(b'"2024-05-01"', int | datetime.date) == datetime.date(2024, 5, 1)
    assert decode_value(b'{"barks": 2}', Cat | Dog) == Dog(barks=2)
    assert decode_value(b'{"meows": 1}', Cat | Dog) == Cat(meows=1)
    assert type(decode_value(b"3", str | float)) is float


def test_union_of_nothing_that_fits_reports_each_member() -> None:
    with pytest.raises(TypeError) as info:
        decode_value(b'{"meows": "loud"}', Cat | Dog)
    assert str(info.value) == (
        "cannot decode JSON as Cat | Dog: $: expected Cat | Dog, got dict "
        "(Cat.meows: expected int, got str; Dog: missing required field 'barks' of Dog)"
    )


def test_literal() -> None:
    assert decode_value(b'"a"', Literal["a", "b"]) == "a"
    assert decode_value(b"2", Literal[1, 2]) == 2
    assert decode_value(b'"red"', Literal[Color.RED]) is Color.RED
    with pytest.raises(TypeError, match=r"expected Literal\['a', 'b'\], got 'c'"):
        decode_value(b'"c"', Literal["a", "b"])
    with pytest.raises(TypeError, match="got True"):
        decode_value(b"true", Literal[1])


def test_annotated_is_its_first_argument() -> None:
    assert decode_value(b'"2024-05-01"', Annotated[datetime.date, "meta"]) == datetime.date(
        2024, 5, 1
    )
    assert decode_value(b"1", Annotated[int, {"unhashable": []}]) == 1


def test_type_alias_type() -> None:
    assert roundtrip([datetime.date(2024, 5, 1)], Dates) == [datetime.date(2024, 5, 1)]
    with pytest.raises(TypeError, match=r"cannot decode JSON as Dates: \$\[0\]: invalid date"):
        decode_value(b'["x"]', Dates)


def test_typevar_hint_uses_its_bound() -> None:
    bounded = TypeVar("bounded", bound=datetime.date)
    assert decode_value(b'"2024-05-01"', bounded) == datetime.date(2024, 5, 1)
    assert decode_value(b'"2024-05-01"', T) == "2024-05-01"


def test_newtype_checks_its_supertype() -> None:
    with pytest.raises(TypeError, match="expected int, got str"):
        decode_value(b'"7"', UserId)


def test_typed_dict() -> None:
    movie: Movie = {"title": "Alien", "released": datetime.date(1979, 5, 25)}
    assert roundtrip(movie, Movie) == movie
    assert decode_value(b'{"year": 1979, "extra": 1}', PartialMovie) == {"year": 1979, "extra": 1}
    with pytest.raises(TypeError, match=r"\$: missing required field 'released' of Movie"):
        decode_value(b'{"title": "Alien"}', Movie)
    with pytest.raises(TypeError, match=r"\$\.year: expected int, got str"):
        decode_value(b'{"year": "1979"}', PartialMovie)


def test_named_tuple() -> None:
    assert roundtrip(Point(3, 4), Point) == Point(3, 4)
    assert type(roundtrip(Point(3, 4), Point)) is Point
    assert decode_value(b"[3]", Point) == Point(3, 0)
    with pytest.raises(TypeError, match=r"\$\[1\]: expected int, got str"):
        decode_value(b'[1, "y"]', Point)
    with pytest.raises(TypeError, match="expected Point with 2 items, got 3"):
        decode_value(b"[1, 2, 3]", Point)


# --- Dataclasses -------------------------------------------------------------------------


def test_dataclass_with_string_annotations_round_trips() -> None:
    order = Order(
        id=uuid.uuid4(),
        placed=datetime.datetime(2024, 5, 1, 9, 30, tzinfo=datetime.UTC),
        items=[Item("a", 1.5), Item("b", 2.0, quantity=3)],
        color=Color.GREEN,
        note="leave at the door",
        tags={"gift", "fragile"},
    )
    result = roundtrip(order, Order)
    assert result == order
    assert type(result.items[0]) is Item
    assert type(result.tags) is set


def test_dataclass_holding_every_supported_type_round_trips() -> None:
    value = Everything(
        when=datetime.datetime(2024, 5, 1, 9, 30, 1, 2),
        day=datetime.date(2024, 5, 1),
        at=datetime.time(9, 30),
        ident=uuid.UUID(int=42),
        color=Color.RED,
        priority=Priority.HIGH,
        amount=decimal.Decimal("-0.01"),
        raw=b"\x00\x01",
        unique=frozenset({3, 4}),
        pair=(1, "one"),
        many=(1.0, 2.5),
        by_id={1: "a"},
        by_uuid={uuid.UUID(int=7): Color.GREEN},
        point=Point(1, 2),
        user=UserId(9),
        kind="b",
        movie={"title": "Heat", "released": datetime.date(1995, 12, 15)},
        maybe=None,
        either="text",
        seq=[1, 2],
        mapping={"k": 1},
        dates=[datetime.date(2024, 5, 1)],
    )
    assert roundtrip(value, Everything) == value


def test_dataclass_with_bytes_fields_round_trips() -> None:
    blob = Blob(name="b", data=b"\x00\xff\x10raw", parts=[b"", b"\x01"])
    assert orjson.loads(encode_value(blob))["data"] == "AP8QcmF3"
    assert roundtrip(blob, Blob) == blob


def test_dataclass_defaults_fill_missing_fields_and_unknown_keys_are_ignored() -> None:
    result = decode_value(b'{"sku": "a", "price": 2, "colour": "blue"}', Item)
    assert result == Item(sku="a", price=2.0, quantity=1)
    order = decode_value(
        b'{"id": "00000000-0000-0000-0000-000000000001", "placed": "2024-05-01T00:00:00",'
        b' "items": []}',
        Order,
    )
    assert order.color is Color.RED
    assert order.tags == set()


def test_recursive_dataclass() -> None:
    tree = Node(1, [Node(2), Node(3, [Node(4)])])
    assert roundtrip(tree, Node) == tree


def test_frozen_slotted_kw_only_dataclass() -> None:
    value = Frozen(when=datetime.date(2024, 2, 29), amount=decimal.Decimal("1E+3"))
    assert roundtrip(value, Frozen) == value


def test_init_false_fields_are_recomputed_not_passed() -> None:
    assert encode_value(WithInitFalse(2)) == b'{"a":2,"doubled":4}'
    assert roundtrip(WithInitFalse(2), WithInitFalse).doubled == 4


def test_generic_dataclass() -> None:
    box = Box(content=datetime.date(2024, 5, 1), history=[datetime.date(2024, 4, 1)])
    result = roundtrip(box, Box[datetime.date])
    assert result == box
    assert decode_value(b'{"content": 1, "history": []}', Box) == Box(content=1, history=[])


def test_dataclass_with_real_annotations() -> None:
    made = dataclasses.make_dataclass("Made", [("when", datetime.date), ("ids", list[uuid.UUID])])
    value = made(when=datetime.date(2024, 5, 1), ids=[uuid.UUID(int=1)])
    assert roundtrip(value, made) == value


def test_mismatch_inside_a_dataclass_names_the_path() -> None:
    data = orjson.dumps(
        {
            "id": str(uuid.UUID(int=1)),
            "placed": "2024-05-01T00:00:00",
            "items": [
                {"sku": "a", "price": 1},
                {"sku": "b", "price": 2},
                {"sku": "c", "price": "9.99"},
            ],
        }
    )
    with pytest.raises(TypeError) as info:
        decode_value(data, Order)
    assert (
        str(info.value) == "cannot decode JSON as Order: $.items[2].price: expected float, got str"
    )


def test_missing_required_field() -> None:
    with pytest.raises(TypeError) as info:
        decode_value(b'{"sku": "a"}', list[Item] | Item)
    assert "Item: missing required field 'price' of Item" in str(info.value)
    with pytest.raises(TypeError, match=r"\$\[0\]: missing required field 'price' of Item"):
        decode_value(b'[{"sku": "a"}]', list[Item])


def test_dataclass_wants_a_json_object() -> None:
    with pytest.raises(
        TypeError, match=r"\$\.items: expected list\[Item\] as a JSON array, got str"
    ):
        decode_value(
            b'{"id": "00000000-0000-0000-0000-000000000001", "placed": '
            b'"2024-05-01T00:00:00", "items": "none"}',
            Order,
        )
    with pytest.raises(TypeError, match=r"\$: expected Item as a JSON object, got list"):
        decode_value(b"[]", Item)


def test_post_init_errors_become_decode_errors_with_their_cause() -> None:
    with pytest.raises(
        TypeError, match=r"\$\[1\]: Positive\(\) raised ValueError: n must be positive"
    ) as info:
        decode_value(b'[{"n": 1}, {"n": 0}]', list[Positive])
    assert isinstance(info.value.__cause__, ValueError)


def test_unresolvable_annotations_explain_what_to_do() -> None:
    @dataclasses.dataclass
    class Local:
        inner: LocalInner  # type: ignore[name-defined]  # noqa: F821

    with pytest.raises(TypeError, match=r"cannot resolve the annotations of Local .*module level"):
        decode_value(b'{"inner": {}}', Local)


def test_field_hints_are_resolved_once_per_class(monkeypatch: pytest.MonkeyPatch) -> None:
    @dataclasses.dataclass
    class Counted:
        n: int

    calls = []
    real = typing.get_type_hints

    def counting(obj: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
        calls.append(obj)
        return real(obj, *args, **kwargs)

    monkeypatch.setattr(typing, "get_type_hints", counting)
    results = [decode_value(b'[{"n": %d}]' % i, list[Counted]) for i in range(3)]
    assert results == [[Counted(i)] for i in range(3)]
    assert calls == [Counted]


# --- Unsupported hints ---------------------------------------------------------------------


def test_unsupported_hint_says_what_to_do() -> None:
    class Plain:
        pass

    with pytest.raises(TypeError, match=r"^cannot decode JSON as Plain: make it a dataclass"):
        decode_value(b"{}", Plain)


def test_string_hint_must_be_resolved_first() -> None:
    with pytest.raises(TypeError, match=r"string annotation 'Item'.*get_type_hints"):
        decode_value(b"{}", "Item")


# --- Pydantic ------------------------------------------------------------------------------


def customer() -> Customer:
    return Customer(
        id=uuid.UUID(int=3),
        name="Ada",
        since=datetime.date(2020, 1, 1),
        addresses=[Address(city="Oslo", zip_code="0150"), Address(city="Bergen", zip_code="5003")],
    )


def test_pydantic_model_round_trips() -> None:
    value = customer()
    assert orjson.loads(encode_value(value))["since"] == "2020-01-01"
    result = roundtrip(value, Customer)
    assert result == value
    assert type(result.addresses[0]) is Address


def test_pydantic_models_inside_dataclasses_and_lists() -> None:
    invoice = Invoice(customer=customer(), total=decimal.Decimal("99.90"))
    assert roundtrip(invoice, Invoice) == invoice
    assert roundtrip([customer()], list[Customer]) == [customer()]


def test_pydantic_validation_error_names_the_path() -> None:
    data = orjson.dumps(
        {
            "customer": {**customer().model_dump(mode="json"), "addresses": [{"city": "Oslo"}]},
            "total": "1",
        }
    )
    with pytest.raises(TypeError) as info:
        decode_value(data, Invoice)
    message = str(info.value)
    assert message.startswith("cannot decode JSON as Invoice: $.customer.addresses[0].zip_code: ")
    assert "Field required" in message
    assert isinstance(info.value.__cause__, pydantic.ValidationError)
