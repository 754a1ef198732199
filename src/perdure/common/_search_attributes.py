"""Typed search attributes: indexed values that ``list_workflows`` queries can filter on."""

from __future__ import annotations

import enum
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar, Generic, TypeVar, overload

from perdure._common.identifiers import check_search_attribute_name, shorten
from perdure._errors import InvalidArgumentError

T = TypeVar("T")


class SearchAttributeIndexedValueType(enum.IntEnum):
    """How a search attribute is indexed (Temporal's names)."""

    TEXT = 1
    KEYWORD = 2
    INT = 3
    DOUBLE = 4
    BOOL = 5
    DATETIME = 6
    KEYWORD_LIST = 7


# The names the visibility query language uses for each type.
TYPE_NAMES = {
    SearchAttributeIndexedValueType.TEXT: "Text",
    SearchAttributeIndexedValueType.KEYWORD: "Keyword",
    SearchAttributeIndexedValueType.INT: "Int",
    SearchAttributeIndexedValueType.DOUBLE: "Double",
    SearchAttributeIndexedValueType.BOOL: "Bool",
    SearchAttributeIndexedValueType.DATETIME: "Datetime",
    SearchAttributeIndexedValueType.KEYWORD_LIST: "KeywordList",
}
_BY_NAME = {v: k for k, v in TYPE_NAMES.items()}


@dataclass(frozen=True)
class SearchAttributeKey(Generic[T]):
    """A named, typed search attribute.

    Example::

        TIER = SearchAttributeKey.for_keyword("CustomerTier")
        await client.start_workflow(..., search_attributes=TypedSearchAttributes(
            [SearchAttributePair(TIER, "gold")]))
        # in the workflow:
        workflow.upsert_search_attributes([TIER.value_set("platinum")])
    """

    name: str
    indexed_value_type: SearchAttributeIndexedValueType

    def __post_init__(self) -> None:
        check_search_attribute_name(self.name)

    @staticmethod
    def for_text(name: str) -> SearchAttributeKey[str]:
        return SearchAttributeKey(name, SearchAttributeIndexedValueType.TEXT)

    @staticmethod
    def for_keyword(name: str) -> SearchAttributeKey[str]:
        return SearchAttributeKey(name, SearchAttributeIndexedValueType.KEYWORD)

    @staticmethod
    def for_int(name: str) -> SearchAttributeKey[int]:
        return SearchAttributeKey(name, SearchAttributeIndexedValueType.INT)

    @staticmethod
    def for_float(name: str) -> SearchAttributeKey[float]:
        return SearchAttributeKey(name, SearchAttributeIndexedValueType.DOUBLE)

    @staticmethod
    def for_bool(name: str) -> SearchAttributeKey[bool]:
        return SearchAttributeKey(name, SearchAttributeIndexedValueType.BOOL)

    @staticmethod
    def for_datetime(name: str) -> SearchAttributeKey[datetime]:
        return SearchAttributeKey(name, SearchAttributeIndexedValueType.DATETIME)

    @staticmethod
    def for_keyword_list(name: str) -> SearchAttributeKey[Sequence[str]]:
        return SearchAttributeKey(name, SearchAttributeIndexedValueType.KEYWORD_LIST)

    def value_set(self, value: T) -> SearchAttributeUpdate[T]:
        """An update setting this attribute."""
        return SearchAttributeUpdate(self, value)

    def value_unset(self) -> SearchAttributeUpdate[T]:
        """An update removing this attribute."""
        return SearchAttributeUpdate(self, None)

    @property
    def type_name(self) -> str:
        return TYPE_NAMES[self.indexed_value_type]


@dataclass(frozen=True)
class SearchAttributePair(Generic[T]):
    key: SearchAttributeKey[T]
    value: T


@dataclass(frozen=True)
class SearchAttributeUpdate(Generic[T]):
    key: SearchAttributeKey[T]
    value: T | None


@dataclass(frozen=True)
class TypedSearchAttributes(Sequence[SearchAttributePair[Any]]):
    """A set of search attribute values, each with its typed key."""

    search_attributes: Sequence[SearchAttributePair[Any]] = ()

    empty: ClassVar[TypedSearchAttributes]

    @overload
    def __getitem__(self, index: int) -> SearchAttributePair[Any]: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[SearchAttributePair[Any]]: ...

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, SearchAttributeKey):
            for pair in self.search_attributes:
                if pair.key.name == index.name:
                    return pair.value
            raise KeyError(index.name)
        return self.search_attributes[index]

    def __len__(self) -> int:
        return len(self.search_attributes)

    def __iter__(self) -> Iterator[SearchAttributePair[Any]]:
        return iter(self.search_attributes)

    def __contains__(self, item: object) -> bool:
        if isinstance(item, SearchAttributeKey):
            return any(p.key.name == item.name for p in self.search_attributes)
        return item in self.search_attributes

    def get(self, key: SearchAttributeKey[T], default: Any = None) -> Any:
        """The value of ``key``, or ``default``."""
        try:
            return self[key]  # type: ignore[call-overload]
        except KeyError:
            return default

    def updated(self, *updates: SearchAttributeUpdate[Any]) -> TypedSearchAttributes:
        """A copy with ``updates`` applied (a ``None`` value removes the attribute)."""
        pairs = {p.key.name: p for p in self.search_attributes}
        for update in updates:
            if update.value is None:
                pairs.pop(update.key.name, None)
            else:
                pairs[update.key.name] = SearchAttributePair(update.key, update.value)
        return TypedSearchAttributes(list(pairs.values()))


TypedSearchAttributes.empty = TypedSearchAttributes()


def encode_value(key: SearchAttributeKey[Any], value: Any) -> dict[str, Any]:
    """The JSON form stored in history and in the executions row."""
    kind = key.indexed_value_type
    values: list[Any]
    if kind == SearchAttributeIndexedValueType.KEYWORD_LIST:
        if isinstance(value, str) or not isinstance(value, Sequence):
            raise TypeError(f"Search attribute {key.name!r} is a KeywordList: give a list of str")
        values = [str(v) for v in value]
    elif kind == SearchAttributeIndexedValueType.DATETIME:
        if not isinstance(value, datetime):
            raise TypeError(f"Search attribute {key.name!r} is a Datetime: give a datetime")
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
        values = [moment.isoformat()]
    elif kind == SearchAttributeIndexedValueType.BOOL:
        values = [bool(value)]
    elif kind == SearchAttributeIndexedValueType.INT:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"Search attribute {key.name!r} is an Int: give an int")
        values = [value]
    elif kind == SearchAttributeIndexedValueType.DOUBLE:
        values = [float(value)]
        if not math.isfinite(values[0]):
            raise InvalidArgumentError(
                f"Search attribute {key.name!r} is {values[0]}: a Double must be finite, as "
                "neither JSON nor SQLite can hold a NaN or an infinity"
            )
    else:
        values = [str(value)]
    for text in values:
        if isinstance(text, str) and "\x00" in text:
            raise InvalidArgumentError(
                f"Search attribute {key.name!r} is {shorten(text)}, which contains a NUL "
                "character: PostgreSQL cannot store it, and perdure refuses it on every store"
            )
    return {"type": key.type_name, "values": values}


def decode_pairs(stored: dict[str, Any] | None) -> TypedSearchAttributes:
    """Typed values from the stored JSON form."""
    pairs = []
    for name, entry in (stored or {}).items():
        kind = _BY_NAME[entry["type"]]
        key: SearchAttributeKey[Any] = SearchAttributeKey(name, kind)
        values = entry["values"]
        value: Any
        if kind == SearchAttributeIndexedValueType.KEYWORD_LIST:
            value = list(values)
        elif kind == SearchAttributeIndexedValueType.DATETIME:
            value = datetime.fromisoformat(values[0])
        else:
            value = values[0]
        pairs.append(SearchAttributePair(key, value))
    return TypedSearchAttributes(pairs)


def encode_pairs(attributes: TypedSearchAttributes) -> dict[str, Any]:
    return {p.key.name: encode_value(p.key, p.value) for p in attributes}
