"""Values given as JSON (on the command line or in an HTTP body) made into the client's
types."""

from __future__ import annotations

from typing import Any

import orjson

from perdure.common import SearchAttributeKey, SearchAttributePair, TypedSearchAttributes


def typed_search_attributes(values: dict[str, Any]) -> TypedSearchAttributes:
    """Search attributes typed by their JSON values: a string is a Keyword, an integer an Int,
    a number a Double, true/false a Bool, a list of strings a KeywordList.

    Raises:
        ValueError: a value of none of these types, naming the attribute.
    """
    typed: list[SearchAttributePair[Any]] = []
    for name, value in values.items():
        key: SearchAttributeKey[Any]
        if isinstance(value, bool):
            key = SearchAttributeKey.for_bool(name)
        elif isinstance(value, int):
            key = SearchAttributeKey.for_int(name)
        elif isinstance(value, float):
            key = SearchAttributeKey.for_float(name)
        elif isinstance(value, str):
            key = SearchAttributeKey.for_keyword(name)
        elif isinstance(value, list) and all(isinstance(v, str) for v in value):
            key = SearchAttributeKey.for_keyword_list(name)
        else:
            raise ValueError(
                f"search attribute {name}: give a JSON string, number, true/false or a list "
                f"of strings, not {orjson.dumps(value, default=str).decode()}"
            )
        typed.append(SearchAttributePair(key, value))
    return TypedSearchAttributes(typed)
