"""Decoder and query-parser fuzzing (RELIABILITY.md sections 8 and 13), CI tier: whatever the
input, only the declared exception types escape, and no input takes over a second
(Hypothesis's deadline). The list-query corpus holds the classic injection shapes; each is
run against a real SQLite store whose other namespace must stay out of every answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from perdure import Client
from perdure._common.events import decode_attributes
from perdure._common.payload import Payload
from perdure._store._visibility_lex import VisibilityQueryError
from perdure._store._visibility_parse import parse_query
from perdure.converter import DataConverter
from perdure.exceptions import PerdureError

FUZZ = settings(max_examples=100, deadline=1000, suppress_health_check=[HealthCheck.too_slow])

INJECTIONS = [
    "' OR 1=1 --",
    "WorkflowId = '' OR 1=1 --'",
    "WorkflowId = 'x'; DROP TABLE executions; --'",
    '"; DROP TABLE executions',
    "WorkflowId = 'unbalanced",
    "WorkflowId = 'a\\' OR '1'='1'",
    "WorkflowId LIKE '%'",
    "WorkflowId STARTS_WITH '%_'",
    "WorkflowId IN (" + ", ".join(f"'{i}'" for i in range(10_000)) + ")",
    "(" * 1000 + "WorkflowId = 'x'" + ")" * 1000,
    "WorkflowType = 'x' ORDER BY StartTime DESC, StartTime",
    "ExecutionStatus = 'Running' GROUP BY ExecutionStatus; DELETE FROM executions",
    "`WorkflowId` = 'x'",
    "WorkflowId = 'x\x00'",
    "NOT NOT NOT " * 500 + "WorkflowId = 'x'",
]


@FUZZ
@given(st.text())
@example("(" * 5000)
@example("NOT " * 5000 + "WorkflowId = 'x'")
def test_query_parser_raises_only_its_error(query: str) -> None:
    with contextlib.suppress(VisibilityQueryError):
        parse_query(query)


@FUZZ
@given(st.binary() | st.text())
def test_event_attributes_decoder(data: bytes | str) -> None:
    with contextlib.suppress(ValueError):
        decode_attributes(data)


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=20,
)


@FUZZ
@given(st.dictionaries(st.sampled_from(["metadata", "data", "input", "x"]), _json))
@example({"metadata": None, "data": None})  # found by this test: an AttributeError escaped
@example({"metadata": {}, "data": None})  # and a TypeError
def test_event_attributes_with_payload_shapes(value: dict[str, object]) -> None:
    """Stored attributes that look like payloads but are not (wrong types inside)."""
    for text in (json.dumps(value), json.dumps({"input": value}), json.dumps({"a": [value]})):
        with contextlib.suppress(ValueError):
            decode_attributes(text)


ENCODINGS = ["json/plain", "binary/null", "binary/plain", "json/protobuf", "binary/pickle"]


@FUZZ
@given(
    st.sampled_from(ENCODINGS) | st.text(max_size=20),
    st.binary(max_size=200),
)
def test_payload_converter_raises_only_its_errors(encoding: str, data: bytes) -> None:
    payload = Payload({"encoding": encoding.encode()}, data)
    with contextlib.suppress(PerdureError, TypeError, ValueError):
        DataConverter.default.payload_converter.from_payloads([payload])


@pytest.fixture(scope="module")
def store_loop() -> Iterator[tuple[asyncio.AbstractEventLoop, Client, Client]]:
    loop = asyncio.new_event_loop()
    mine = loop.run_until_complete(Client.connect("sqlite://:memory:"))
    other = Client(mine.store, namespace="other", owns_store=False)
    try:
        yield loop, mine, other
    finally:
        loop.run_until_complete(mine.close())
        loop.close()


@pytest.mark.parametrize("query", INJECTIONS)
def test_list_query_injection_corpus(
    query: str, store_loop: tuple[asyncio.AbstractEventLoop, Client, Client]
) -> None:
    _check_query(query, store_loop)


def _check_query(query: str, store_loop: tuple[asyncio.AbstractEventLoop, Client, Client]) -> None:
    loop, mine, other = store_loop

    async def run() -> None:
        try:
            ids = [w.id async for w in mine.list_workflows(query, limit=5)]
            await mine.count_workflows(query)
        except VisibilityQueryError:
            return
        # Nothing of the other namespace, whatever the query (the store has none of mine).
        assert ids == []

    loop.run_until_complete(asyncio.wait_for(run(), 5))
    # The tables are all still there.
    assert loop.run_until_complete(other.count_workflows()).count == 1


@pytest.fixture(scope="module", autouse=True)
def _other_namespace_run(store_loop: tuple[asyncio.AbstractEventLoop, Client, Client]) -> None:
    loop, _, other = store_loop
    loop.run_until_complete(other.start_workflow("Anything", id="theirs", task_queue="q"))


@FUZZ
@given(query=st.text(max_size=200))
def test_list_query_fuzz(
    store_loop: tuple[asyncio.AbstractEventLoop, Client, Client], query: str
) -> None:
    _check_query(query, store_loop)
