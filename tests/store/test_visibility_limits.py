"""The visibility query's limits: a query past one fails at once with a
``VisibilityQueryError`` naming it, before any database work, on SQLite and PostgreSQL alike;
a query at every limit at once still runs on both."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from perdure._store import Store
from perdure._store._types import StartWorkflowRequest
from perdure._store._visibility_parse import (
    MAX_CONDITIONS,
    MAX_DEPTH,
    MAX_VALUES,
    VisibilityQueryError,
    parse_query,
)

# Only a guard against the lost-connection retry loop (60 s), not a measure of speed.
GUARD = 30.0


def _ors(n: int) -> str:
    return " OR ".join(f"WorkflowId = 'id-{i}'" for i in range(n))


def _in(n: int) -> str:
    return "WorkflowId IN (" + ", ".join(f"'id-{i}'" for i in range(n)) + ")"


OVER_THE_LIMITS = {
    "1,000 nested parentheses": (
        "(" * 1000 + "WorkflowId = 'a'" + ")" * 1000,
        f"nested too deeply: a query takes at most {MAX_DEPTH} levels",
    ),
    "5,000 NOTs": ("NOT " * 5000 + "WorkflowId = 'a'", "nested too deeply"),
    "an integer over 64 bits": (
        "HistoryLength > 99999999999999999999999",
        "integer 99999999999999999999999 is out of range: integers must fit in 64 bits",
    ),
    "a 50,000-term OR": (
        _ors(50_000),
        f"too many conditions: a query takes at most {MAX_CONDITIONS}",
    ),
    "40,000 values (more bind parameters than PostgreSQL takes)": (
        _in(40_000),
        f"too many values: a query takes at most {MAX_VALUES:,}",
    ),
}


@pytest.mark.parametrize("case", list(OVER_THE_LIMITS))
async def test_a_query_past_a_limit_fails_at_once_naming_it(store: Store, case: str) -> None:
    query, reason = OVER_THE_LIMITS[case]
    for call in (
        lambda: store.list_workflows("default", query, 10),
        lambda: store.count_workflows("default", query),
    ):
        with pytest.raises(VisibilityQueryError) as caught:
            await asyncio.wait_for(call(), GUARD)
        assert reason in caught.value.reason
        assert len(str(caught.value)) < 1000  # a long query is shown around the error only


async def _start(store: Store, workflow_id: str, attributes: dict[str, Any] | None) -> None:
    await store.start_workflow(
        StartWorkflowRequest(
            namespace="default",
            workflow_id=workflow_id,
            workflow_type="W",
            task_queue="q",
            input=[],
            run_id=str(uuid.uuid4()),
            task_timeout=10.0,
            search_attributes=attributes,
        )
    )


async def test_a_query_at_every_limit_runs(store: Store) -> None:
    await _start(store, "id-0", None)
    await _start(store, "id-9000", None)
    await _start(store, "other", None)
    # MAX_CONDITIONS conditions holding MAX_VALUES values, MAX_DEPTH levels deep: half NOTs
    # (an even number of them), half parentheses.
    values = MAX_VALUES - (MAX_CONDITIONS - 1)
    where = " OR ".join([_in(values), *(f"HistoryLength = {-i}" for i in range(1, MAX_CONDITIONS))])
    half = MAX_DEPTH // 2
    query = "NOT " * half + "(" * half + where + ")" * half
    assert half % 2 == 0

    runs = (await asyncio.wait_for(store.list_workflows("default", query, 10), GUARD)).executions

    assert sorted(run.workflow_id for run in runs) == ["id-0", "id-9000"]
    assert await store.count_workflows("default", query) == 2
    extremes = "HistoryLength < 9223372036854775807 AND HistoryLength > -9223372036854775808"
    assert await store.count_workflows("default", extremes) == 3


# Conditions false (F) and true (T) for every run, so that each shape below, MAX_DEPTH deep,
# matches the runs its innermost condition does. They nest in every way the compiled SQL can.
F, T = "RunId = 'none'", "RunId != 'none'"
HALF = MAX_DEPTH // 2
SHAPES = {
    "OR of an AND": lambda leaf: f"({F} OR {T} AND " * MAX_DEPTH + leaf + ")" * MAX_DEPTH,
    "AND of an OR": lambda leaf: f"({T} AND ({F} OR " * HALF + leaf + "))" * HALF,
    "NOT of an OR": lambda leaf: f"NOT ({F} OR " * HALF + leaf + ")" * HALF,
    "OR of a NOT": lambda leaf: f"{F} OR NOT (" * HALF + leaf + ")" * HALF,
    "NOTs": lambda leaf: "NOT " * MAX_DEPTH + leaf,
    "parentheses": lambda leaf: "(" * MAX_DEPTH + leaf + ")" * MAX_DEPTH,
}


@pytest.mark.parametrize("shape", list(SHAPES))
async def test_a_query_nested_as_deep_as_allowed_runs(store: Store, shape: str) -> None:
    await _start(
        store,
        "tagged",
        {
            "Tags": {"type": "KeywordList", "values": ["t"]},
            "Note": {"type": "Text", "values": ["n-1"]},
        },
    )
    await _start(store, "other", None)
    assert HALF % 2 == 0  # the NOTs cancel out
    for leaf in ("Tags != 'x'", "Note STARTS_WITH 'n-'", "CloseTime IS NULL"):
        query = SHAPES[shape](leaf)
        expected = ["other", "tagged"] if leaf == "CloseTime IS NULL" else ["tagged"]
        runs = (await store.list_workflows("default", query, 10)).executions
        assert sorted(run.workflow_id for run in runs) == expected, leaf


@pytest.mark.parametrize(
    ("query", "column", "reason"),
    [
        ("(" * (MAX_DEPTH + 1) + "RunId = 'a'" + ")" * (MAX_DEPTH + 1), MAX_DEPTH + 1, "nested"),
        ("NOT " * MAX_DEPTH + "(RunId = 'a')", 4 * MAX_DEPTH + 1, "nested"),
        (_ors(MAX_CONDITIONS + 1), len(_ors(MAX_CONDITIONS)) + 5, "too many conditions"),
        (_in(MAX_VALUES + 1), len(_in(MAX_VALUES + 1)) - len(f"'id-{MAX_VALUES}')") + 1, "values"),
        ("HistoryLength > 9223372036854775808", 17, "integers must fit in 64 bits"),
        ("HistoryLength > -9223372036854775809", 17, "integers must fit in 64 bits"),
        ("Amount > 1" + "0" * 5000, 10, "(5001 characters) is out of range"),
        ("Amount > 1e999", 10, "out of range of a 64-bit float"),
        ("RunId = 'a' ORDER BY StartTime, StartTime DESC", 33, "ORDER BY names StartTime twice"),
    ],
)
def test_the_error_points_at_the_token_past_the_limit(query: str, column: int, reason: str) -> None:
    with pytest.raises(VisibilityQueryError) as caught:
        parse_query(query)
    assert reason in caught.value.reason
    assert caught.value.column == column
    # The caret stays under the token in the excerpt shown.
    _, shown, caret = str(caught.value).split("\n")
    assert shown[caret.index("^")] == query[column - 1]


def test_one_below_each_limit_parses() -> None:
    parse_query("(" * MAX_DEPTH + "RunId = 'a'" + ")" * MAX_DEPTH)
    parse_query(_ors(MAX_CONDITIONS))
    parse_query(_in(MAX_VALUES))
    parse_query("HistoryLength > 9223372036854775807 AND HistoryLength > -9223372036854775808")
    parse_query("Amount > 1.7e308")


async def test_a_schedules_runs_can_be_asked_for_before_its_first_action(store: Store) -> None:
    """Temporal's system search attributes of scheduled runs are known before any run
    carries them: the query finds nothing (it used to fail, naming an unknown field)."""
    await _start(store, "unscheduled", None)
    for query in (
        "TemporalScheduledById = 'nightly'",
        "TemporalScheduledStartTime > '2026-01-01T00:00:00Z' AND ExecutionStatus = 'Running'",
    ):
        assert (await store.list_workflows("default", query, 10)).executions == []
        assert await store.count_workflows("default", query) == 0
    # A misspelling is still an error that names the field.
    with pytest.raises(VisibilityQueryError, match="TemporalScheduledByID"):
        await store.count_workflows("default", "TemporalScheduledByID = 'nightly'")
