"""The visibility list filter: parsing, errors that point at the token, SQL, and real rows."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, Literal

import pytest

from perdure._errors import PerdureError
from perdure._store._visibility_query import (
    And,
    Between,
    Comparison,
    CompiledQuery,
    FieldRef,
    In,
    IsNull,
    Not,
    Or,
    OrderTerm,
    Query,
    StartsWith,
    Value,
    VisibilityQueryError,
    compile_query,
    parse_query,
)

SA: dict[str, str] = {
    "CustomerTier": "Keyword",
    "Note": "Text",
    "Tags": "KeywordList",
    "Amount": "Double",
    "Count": "Int",
    "IsVip": "Bool",
    "PaidAt": "Datetime",
    "My Attr": "Keyword",
}


def ts(iso: str) -> float:
    return datetime.fromisoformat(iso).replace(tzinfo=UTC).timestamp()


def f(name: str) -> FieldRef:
    return FieldRef(name)


def v(value: str | int | float | bool) -> Value:
    return Value(value)


def cmp(name: str, op: str, value: str | int | float | bool) -> Comparison:
    return Comparison(f(name), op, v(value))


# --- parsing ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", Query(None)),
        ("   \n\t ", Query(None)),
        ("WorkflowId = 'a'", Query(cmp("WorkflowId", "=", "a"))),
        ("WorkflowId != 'a'", Query(cmp("WorkflowId", "!=", "a"))),
        ("WorkflowId <> 'a'", Query(cmp("WorkflowId", "!=", "a"))),
        ("Count < 3", Query(cmp("Count", "<", 3))),
        ("Count <= 3", Query(cmp("Count", "<=", 3))),
        ("Count > -3", Query(cmp("Count", ">", -3))),
        ("Count>=3", Query(cmp("Count", ">=", 3))),
        ("Amount >= 100.5", Query(cmp("Amount", ">=", 100.5))),
        ("Amount = 1e3", Query(cmp("Amount", "=", 1000.0))),
        ("Amount = .5", Query(cmp("Amount", "=", 0.5))),
        ("IsVip = true", Query(cmp("IsVip", "=", True))),
        ("IsVip = FALSE", Query(cmp("IsVip", "=", False))),
        ('WorkflowId = "dq"', Query(cmp("WorkflowId", "=", "dq"))),
        ("WorkflowId = 'it''s'", Query(cmp("WorkflowId", "=", "it's"))),
        ('WorkflowId = "say ""hi"""', Query(cmp("WorkflowId", "=", 'say "hi"'))),
        ("WorkflowId = ''", Query(cmp("WorkflowId", "=", ""))),
        ("`My Attr` = 'x'", Query(cmp("My Attr", "=", "x"))),
        ("`Order` = 'x'", Query(cmp("Order", "=", "x"))),
        (
            "WorkflowType IN ('A', 'B')",
            Query(In(f("WorkflowType"), (v("A"), v("B")))),
        ),
        (
            "WorkflowType not in ('A')",
            Query(In(f("WorkflowType"), (v("A"),), negated=True)),
        ),
        (
            "StartTime BETWEEN '2026-01-01' AND '2026-02-01'",
            Query(Between(f("StartTime"), v("2026-01-01"), v("2026-02-01"))),
        ),
        (
            "Count NOT BETWEEN 1 AND 2",
            Query(Between(f("Count"), v(1), v(2), negated=True)),
        ),
        ("WorkflowId STARTS_WITH 'cart-'", Query(StartsWith(f("WorkflowId"), v("cart-")))),
        (
            "WorkflowId not starts_with 'cart-'",
            Query(StartsWith(f("WorkflowId"), v("cart-"), negated=True)),
        ),
        ("CloseTime IS NULL", Query(IsNull(f("CloseTime")))),
        ("CloseTime is not null", Query(IsNull(f("CloseTime"), negated=True))),
        ("NOT WorkflowId = 'a'", Query(Not(cmp("WorkflowId", "=", "a")))),
        ("NOT NOT WorkflowId = 'a'", Query(Not(Not(cmp("WorkflowId", "=", "a"))))),
        (
            "a = 1 AND b = 2 AND c = 3",
            Query(And((cmp("a", "=", 1), cmp("b", "=", 2), cmp("c", "=", 3)))),
        ),
        (
            "a = 1 OR b = 2 AND c = 3",  # AND binds tighter than OR
            Query(Or((cmp("a", "=", 1), And((cmp("b", "=", 2), cmp("c", "=", 3)))))),
        ),
        (
            "a = 1 AND b = 2 OR c = 3",
            Query(Or((And((cmp("a", "=", 1), cmp("b", "=", 2))), cmp("c", "=", 3)))),
        ),
        (
            "(a = 1 OR b = 2) AND c = 3",
            Query(And((Or((cmp("a", "=", 1), cmp("b", "=", 2))), cmp("c", "=", 3)))),
        ),
        (
            "NOT (a = 1 OR b = 2) and c = 3",
            Query(And((Not(Or((cmp("a", "=", 1), cmp("b", "=", 2)))), cmp("c", "=", 3)))),
        ),
        ("((a = 1))", Query(cmp("a", "=", 1))),
        (
            "StartTime BETWEEN 1 AND 2 AND a = 1",  # BETWEEN's AND is not a conjunction
            Query(And((Between(f("StartTime"), v(1), v(2)), cmp("a", "=", 1)))),
        ),
        (
            "ORDER BY StartTime",
            Query(None, (OrderTerm(f("StartTime")),)),
        ),
        (
            "a = 1 order by StartTime desc, WorkflowId ASC, RunId",
            Query(
                cmp("a", "=", 1),
                (
                    OrderTerm(f("StartTime"), descending=True),
                    OrderTerm(f("WorkflowId")),
                    OrderTerm(f("RunId")),
                ),
            ),
        ),
    ],
)
def test_parse(query: str, expected: Query) -> None:
    assert parse_query(query) == expected


def test_parse_records_positions() -> None:
    q = parse_query("NOT (Tags IN ('x', 'y')) AND `My Attr` >= 'k'")
    assert isinstance(q.where, And)
    first, second = q.where.operands
    assert isinstance(first, Not) and isinstance(first.operand, In)
    assert first.operand.field.pos == 5
    assert first.operand.pos == 10
    assert [value.pos for value in first.operand.values] == [14, 19]
    assert isinstance(second, Comparison)
    assert (second.field.pos, second.pos, second.value.pos) == (29, 39, 42)


def test_parse_distinguishes_int_float_bool() -> None:
    q = parse_query("a = 1 AND b = 1.0 AND c = true")
    assert isinstance(q.where, And)
    values = [op.value.value for op in q.where.operands if isinstance(op, Comparison)]
    assert [type(x) for x in values] == [int, float, bool]


# --- errors -------------------------------------------------------------------------------


def error_of(query: str, sa: dict[str, str] | None = None) -> VisibilityQueryError:
    with pytest.raises(VisibilityQueryError) as info:
        compile_query(query, SA if sa is None else sa, dialect="sqlite")
    return info.value


def test_error_message_quotes_the_query_with_a_caret() -> None:
    err = error_of("WorkflowType = 'A' AND WorkflowTyp = 'B'", {"CustomerTier": "Keyword"})
    assert str(err) == (
        "Invalid visibility query at column 24: unknown field 'WorkflowTyp' (known: "
        "WorkflowId, WorkflowType, RunId, ExecutionStatus, StartTime, CloseTime, "
        "ExecutionTime, TaskQueue, HistoryLength; custom: CustomerTier); "
        "did you mean 'WorkflowType'?\n"
        "  WorkflowType = 'A' AND WorkflowTyp = 'B'\n"
        "                         ^"
    )
    assert err.column == 24
    assert err.query == "WorkflowType = 'A' AND WorkflowTyp = 'B'"
    assert err.reason.startswith("unknown field 'WorkflowTyp'")
    assert isinstance(err, PerdureError)
    assert isinstance(err, ValueError)


def test_error_caret_stays_aligned_across_newlines() -> None:
    err = error_of("WorkflowId = 'a'\n\tAND Nope = 1")
    lines = str(err).splitlines()
    assert lines[1] == "  WorkflowId = 'a'  AND Nope = 1"
    assert lines[2].index("^") == lines[1].index("Nope")


def test_unknown_field_without_custom_attributes() -> None:
    err = error_of("Zzz = 1", {})
    assert err.column == 1
    assert "custom: none)" in err.reason
    assert "did you mean" not in err.reason


def test_field_names_are_case_sensitive() -> None:
    err = error_of("workflowid = 'a'")
    assert "unknown field 'workflowid'" in err.reason
    assert "did you mean 'WorkflowId'?" in err.reason


@pytest.mark.parametrize(
    ("query", "column", "reason"),
    [
        # tokens
        ("WorkflowId = 'abc", 14, "unterminated string: add the closing '"),
        ('WorkflowId = "abc', 14, 'unterminated string: add the closing "'),
        ("WorkflowId = 'it''s", 14, "unterminated string"),
        ("`My Attr = 'x'", 1, "unterminated field name: add the closing `"),
        ("WorkflowId = 'a' ; DROP", 18, "unexpected character ';'"),
        ("WorkflowId == 'a'", 13, "expected a value (a quoted string, a number, true or false)"),
        ("WorkflowId ! 'a'", 12, "unexpected character '!'"),
        # unexpected tokens
        ("= 'a'", 1, "expected a field name, got '='"),
        ("AND = 'a'", 1, "expected a field name, got 'AND' (write `AND` for a field of that name)"),
        ("WorkflowId 'a'", 12, "expected an operator (=, !=, <>, <, <=, >, >=, IN, NOT IN"),
        ("WorkflowId", 11, "after 'WorkflowId', got the end of the query"),
        ("WorkflowId NOT = 'a'", 16, "expected IN, BETWEEN or STARTS_WITH after 'WorkflowId'"),
        ("WorkflowId = ", 14, "expected a value"),
        ("WorkflowId = Bob", 14, "expected a value (a quoted string, a number, true or false), "),
        ("WorkflowId = 'a' AND", 21, "expected a field name, got the end of the query"),
        ("WorkflowId = 'a' OR OR b = 1", 21, "expected a field name, got 'OR'"),
        ("WorkflowType IN 'A'", 17, "expected '(' after IN, got 'A'"),
        ("WorkflowType IN ()", 18, "IN needs at least one value"),
        ("WorkflowType IN ('A',)", 22, "expected a value"),
        ("WorkflowType IN ('A' 'B')", 22, "missing ')' to close the IN list at column 17"),
        ("Count BETWEEN 1 OR 2", 17, "expected AND between the two ends of BETWEEN, got 'OR'"),
        ("CloseTime IS 'x'", 14, "expected NULL after IS, got 'x'"),
        ("CloseTime IS NOT 1", 18, "expected NULL after IS NOT, got '1'"),
        ("ORDER StartTime", 7, "expected BY after ORDER, got 'StartTime'"),
        ("ORDER BY", 9, "expected a field name, got the end of the query"),
        ("ORDER BY StartTime,", 20, "expected a field name"),
        # parentheses
        ("(WorkflowId = 'a'", 18, "missing ')' to close the '(' at column 1, got the end"),
        ("(a = 1 OR (b = 2) c", 19, "missing ')' to close the '(' at column 1, got 'c'"),
        ("WorkflowId = 'a')", 17, "unexpected ')' without a matching '('"),
        # trailing garbage
        ("WorkflowId = 'a' 'b'", 18, "unexpected 'b' after a complete condition; join"),
        ("WorkflowId = 'a' WorkflowType = 'b'", 18, "unexpected 'WorkflowType' after a"),
        ("ORDER BY StartTime DESC ASC", 25, "unexpected 'ASC' after a complete condition"),
        ("ORDER BY StartTime WorkflowId = 'a'", 20, "unexpected 'WorkflowId'"),
        # unknown fields
        ("Nope = 1", 1, "unknown field 'Nope'"),
        ("WorkflowId = 'a' ORDER BY Nope", 27, "unknown field 'Nope'"),
        ("NOT (a = 1)", 6, "unknown field 'a'"),
        # values of the wrong type
        ("StartTime > 'yesterday'", 13, "StartTime (Datetime) needs an ISO 8601 datetime string"),
        ("StartTime > 5", 13, "StartTime (Datetime) needs an ISO 8601 datetime string"),
        ("PaidAt BETWEEN '2026-01-01' AND 'soon'", 33, "PaidAt (Datetime) needs an ISO 8601"),
        ("ExecutionStatus = 'Runing'", 19, "needs one of Running, Completed, Failed, Canceled, "),
        ("ExecutionStatus = 1", 19, "ExecutionStatus (ExecutionStatus) needs one of Running"),
        ("WorkflowId = 5", 14, "WorkflowId (Keyword) needs a quoted string, got 5"),
        ("CustomerTier = true", 16, "CustomerTier (Keyword) needs a quoted string, got true"),
        ("Tags IN ('x', 2)", 15, "Tags (KeywordList) needs a quoted string, got 2"),
        ("Count = 1.5", 9, "Count (Int) needs an integer, got 1.5"),
        ("HistoryLength > '3'", 17, "HistoryLength (Int) needs an integer, got '3'"),
        ("Count = true", 9, "Count (Int) needs an integer, got true"),
        ("Amount = '1'", 10, "Amount (Double) needs a number, got '1'"),
        ("Amount = false", 10, "Amount (Double) needs a number, got false"),
        ("IsVip = 1", 9, "IsVip (Bool) needs true or false, got 1"),
        ("IsVip = 'true'", 9, "IsVip (Bool) needs true or false"),
        ("WorkflowId STARTS_WITH 1", 24, "WorkflowId (Keyword) needs a quoted string, got 1"),
        # operators the type does not allow
        ("IsVip > true", 7, "operator > is not allowed on IsVip (Bool); use =, !=, IN, NOT IN"),
        ("IsVip BETWEEN true AND false", 7, "operator BETWEEN is not allowed on IsVip (Bool)"),
        ("Tags < 'x'", 6, "operator < is not allowed on Tags (KeywordList)"),
        ("Tags >= 'x'", 6, "operator >= is not allowed on Tags (KeywordList)"),
        ("Tags STARTS_WITH 'x'", 6, "operator STARTS_WITH is not allowed on Tags (KeywordList)"),
        ("Count STARTS_WITH 'x'", 7, "operator STARTS_WITH is not allowed on Count (Int); use "),
        ("StartTime STARTS_WITH '2026'", 11, "operator STARTS_WITH is not allowed on StartTime"),
        ("ExecutionStatus > 'Running'", 17, "operator > is not allowed on ExecutionStatus"),
        ("ExecutionStatus STARTS_WITH 'R'", 17, "operator STARTS_WITH is not allowed"),
        # ORDER BY on a custom attribute
        ("ORDER BY CustomerTier", 10, "ORDER BY supports built-in fields only (WorkflowId,"),
        ("ORDER BY StartTime, `My Attr` DESC", 21, "'My Attr' is a custom search attribute"),
    ],
)
def test_errors(query: str, column: int, reason: str) -> None:
    err = error_of(query)
    assert err.column == column
    assert reason in err.reason
    assert str(err).startswith(f"Invalid visibility query at column {column}: {err.reason}\n")
    caret_line = str(err).splitlines()[-1]
    assert caret_line == " " * (column + 1) + "^"


def test_operator_error_lists_what_is_allowed() -> None:
    err = error_of("Count STARTS_WITH 'x'")
    assert err.reason.endswith("use =, !=, <, <=, >, >=, IN, NOT IN, BETWEEN, IS NULL")


def test_syntax_errors_come_from_parse_query_alone() -> None:
    with pytest.raises(VisibilityQueryError) as info:
        parse_query("(a = 1")
    assert info.value.column == 7


def test_bad_arguments_are_plain_value_errors() -> None:
    with pytest.raises(ValueError, match="unknown type 'String'"):
        compile_query("", {"X": "String"}, dialect="sqlite")
    with pytest.raises(ValueError, match="shadows a built-in field"):
        compile_query("", {"WorkflowId": "Keyword"}, dialect="sqlite")
    with pytest.raises(ValueError, match="unknown SQL dialect 'mysql'"):
        compile_query("", {}, dialect="mysql")  # type: ignore[arg-type]


# --- values -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "param"),
    [
        ("StartTime > '2026-01-01T00:00:00Z'", ts("2026-01-01T00:00:00")),
        ("StartTime > '2026-01-01T00:00:00'", ts("2026-01-01T00:00:00")),  # no zone: UTC
        ("StartTime > '2026-01-01'", ts("2026-01-01T00:00:00")),
        ("StartTime > '2026-01-01T02:00:00+02:00'", ts("2026-01-01T00:00:00")),
        ("StartTime > '2026-01-01T00:00:00.250Z'", ts("2026-01-01T00:00:00") + 0.25),
        ("ExecutionStatus = 'Running'", 1),
        ("ExecutionStatus = 'completed'", 2),
        ("ExecutionStatus = 'FAILED'", 3),
        ("ExecutionStatus = 'Canceled'", 4),
        ("ExecutionStatus = 'Terminated'", 5),
        ("ExecutionStatus = 'continuedasnew'", 6),
        ("ExecutionStatus = 'TimedOut'", 7),
        ("HistoryLength = 10", 10),
        ("WorkflowId = 'x'", "x"),
    ],
)
def test_builtin_values_convert(query: str, param: Any) -> None:
    compiled = compile_query(query, {}, dialect="sqlite")
    assert compiled.params == [param]
    assert type(compiled.params[0]) is type(param)


@pytest.mark.parametrize(
    ("query", "param"),
    [
        ("Amount = 3", 3.0),
        ("Amount = 2.5", 2.5),
        ("Count = 3", 3.0),
        ("IsVip = true", 1),
        ("IsVip = false", 0),
        ("PaidAt < '2026-01-01T00:00:00Z'", ts("2026-01-01T00:00:00")),
        ("Note = 'hello'", "hello"),
    ],
)
def test_custom_values_convert(query: str, param: Any) -> None:
    compiled = compile_query(query, SA, dialect="sqlite")
    assert compiled.params[1:] == [param]
    assert type(compiled.params[1]) is type(param)


# --- SQL ----------------------------------------------------------------------------------

EXISTS = "EXISTS (SELECT 1 FROM search_attributes sa WHERE sa.run_id = e.run_id AND sa.name = "


def sql(
    query: str, dialect: Literal["sqlite", "postgresql"] = "sqlite", first: int = 1
) -> CompiledQuery:
    return compile_query(query, SA, dialect=dialect, first_param_index=first)


def test_empty_query_matches_all_in_default_order() -> None:
    compiled = sql("  ")
    assert (compiled.where, compiled.params) == ("TRUE", [])
    assert compiled.order_by == "e.start_time DESC, e.run_id DESC"


def test_sql_for_the_readme_example_sqlite() -> None:
    c = sql(
        "(WorkflowId STARTS_WITH 'cart-' OR WorkflowType IN ('A', 'B')) "
        "AND CustomerTier = 'gold' ORDER BY StartTime DESC"
    )
    assert c.where == (
        "(((e.workflow_id >= ? AND e.workflow_id < ?)"
        " OR e.workflow_type IN (?, ?))"
        f" AND {EXISTS}? AND sa.value_text = ?))"
    )
    assert c.params == ["cart-", "cart.", "A", "B", "CustomerTier", "gold"]
    assert c.order_by == "e.start_time DESC, e.run_id DESC"


def test_sql_for_the_readme_example_postgresql() -> None:
    c = sql(
        "(WorkflowId STARTS_WITH 'cart-' OR WorkflowType IN ('A', 'B')) "
        "AND CustomerTier = 'gold' ORDER BY StartTime DESC",
        "postgresql",
        first=3,
    )
    assert c.where == (
        "((e.workflow_id LIKE $3 ESCAPE '\\' OR e.workflow_type IN ($4, $5))"
        f" AND {EXISTS}$6 AND sa.value_text = $7))"
    )
    assert c.params == ["cart-%", "A", "B", "CustomerTier", "gold"]


@pytest.mark.parametrize(
    ("query", "sqlite", "postgresql"),
    [
        (
            "WorkflowType = 'Order' AND ExecutionStatus = 'Running'",
            "(e.workflow_type = ? AND e.status = ?)",
            "(e.workflow_type = $1 AND e.status = $2)",
        ),
        ("WorkflowId != 'x'", "e.workflow_id <> ?", "e.workflow_id <> $1"),
        ("RunId <> 'x'", "e.run_id <> ?", "e.run_id <> $1"),
        ("TaskQueue >= 'q'", "e.task_queue >= ?", "e.task_queue >= $1"),
        ("ExecutionTime < '2026-01-01'", "e.start_time < ?", "e.start_time < $1"),
        ("HistoryLength > 3", "(e.next_event_id - 1) > ?", "(e.next_event_id - 1) > $1"),
        (
            "HistoryLength BETWEEN 1 AND 9",
            "(e.next_event_id - 1) BETWEEN ? AND ?",
            "(e.next_event_id - 1) BETWEEN $1 AND $2",
        ),
        (
            "StartTime NOT BETWEEN '2026-01-01' AND '2026-02-01'",
            "e.start_time NOT BETWEEN ? AND ?",
            "e.start_time NOT BETWEEN $1 AND $2",
        ),
        (
            "ExecutionStatus NOT IN ('Failed', 'TimedOut')",
            "e.status NOT IN (?, ?)",
            "e.status NOT IN ($1, $2)",
        ),
        (
            "CloseTime > '2026-01-01'",
            "(e.close_time IS NOT NULL AND e.close_time > ?)",
            "(e.close_time IS NOT NULL AND e.close_time > $1)",
        ),
        ("CloseTime IS NULL", "e.close_time IS NULL", "e.close_time IS NULL"),
        ("CloseTime IS NOT NULL", "e.close_time IS NOT NULL", "e.close_time IS NOT NULL"),
        ("NOT WorkflowId = 'a'", "NOT (e.workflow_id = ?)", "NOT (e.workflow_id = $1)"),
        (
            "NOT (WorkflowId = 'a' OR RunId = 'b')",
            "NOT (e.workflow_id = ? OR e.run_id = ?)",
            "NOT (e.workflow_id = $1 OR e.run_id = $2)",
        ),
        (
            "WorkflowId NOT STARTS_WITH 'a'",
            "NOT (e.workflow_id >= ? AND e.workflow_id < ?)",
            "NOT e.workflow_id LIKE $1 ESCAPE '\\'",
        ),
        (
            "CustomerTier != 'gold'",
            f"{EXISTS}? AND sa.value_text <> ?)",
            f"{EXISTS}$1 AND sa.value_text <> $2)",
        ),
        (
            "Amount >= 100.5",
            f"{EXISTS}? AND sa.value_num >= ?)",
            f"{EXISTS}$1 AND sa.value_num >= $2)",
        ),
        (
            "IsVip = true",
            f"{EXISTS}? AND sa.value_bool = ?)",
            f"{EXISTS}$1 AND sa.value_bool = $2)",
        ),
        (
            "PaidAt BETWEEN '2026-01-01' AND '2026-02-01'",
            f"{EXISTS}? AND sa.value_num BETWEEN ? AND ?)",
            f"{EXISTS}$1 AND sa.value_num BETWEEN $2 AND $3)",
        ),
        (
            "Count NOT IN (1, 2)",
            f"{EXISTS}? AND sa.value_num NOT IN (?, ?))",
            f"{EXISTS}$1 AND sa.value_num NOT IN ($2, $3))",
        ),
        (
            "Tags = 'x'",
            f"{EXISTS}? AND sa.value_text = ?)",
            f"{EXISTS}$1 AND sa.value_text = $2)",
        ),
        (
            "Tags IN ('x', 'y')",
            f"{EXISTS}? AND sa.value_text IN (?, ?))",
            f"{EXISTS}$1 AND sa.value_text IN ($2, $3))",
        ),
        (
            "Tags != 'x'",
            f"({EXISTS}?) AND NOT {EXISTS}? AND sa.value_text IN (?)))",
            f"({EXISTS}$1) AND NOT {EXISTS}$2 AND sa.value_text IN ($3)))",
        ),
        (
            "Tags NOT IN ('x', 'y')",
            f"({EXISTS}?) AND NOT {EXISTS}? AND sa.value_text IN (?, ?)))",
            f"({EXISTS}$1) AND NOT {EXISTS}$2 AND sa.value_text IN ($3, $4)))",
        ),
        ("Tags IS NULL", f"NOT {EXISTS}?)", f"NOT {EXISTS}$1)"),
        ("Tags IS NOT NULL", f"{EXISTS}?)", f"{EXISTS}$1)"),
        (
            "Note STARTS_WITH 'he'",
            f"{EXISTS}? AND (sa.value_text >= ? AND sa.value_text < ?))",
            f"{EXISTS}$1 AND sa.value_text LIKE $2 ESCAPE '\\')",
        ),
    ],
)
def test_sql(query: str, sqlite: str, postgresql: str) -> None:
    assert sql(query).where == sqlite
    assert sql(query, "postgresql").where == postgresql


@pytest.mark.parametrize(
    ("prefix", "pattern"),
    [("a%b", "a\\%b%"), ("a_b", "a\\_b%"), ("a\\b", "a\\\\b%"), ("", "%"), ("%_\\", "\\%\\_\\\\%")],
)
def test_starts_with_escapes_like_wildcards(prefix: str, pattern: str) -> None:
    literal = prefix.replace("'", "''")
    assert sql(f"WorkflowId STARTS_WITH '{literal}'", "postgresql").params == [pattern]
    if prefix:  # SQLite: the range from the prefix to the next string, not a pattern
        assert sql(f"WorkflowId STARTS_WITH '{literal}'").params[0] == prefix
    else:
        assert sql(f"WorkflowId STARTS_WITH '{literal}'").params == [pattern, 0, ""]


@pytest.mark.parametrize(
    ("prefix", "end"),
    [
        ("cart-", "cart."),
        ("a\U0010ffff", "b"),
        ("\ud7ff", "\ue000"),
        ("\U0010ffff\U0010ffff", None),
    ],
)
def test_sqlite_starts_with_is_the_range_up_to_the_next_string(
    prefix: str, end: str | None
) -> None:
    compiled = sql(f"WorkflowId STARTS_WITH '{prefix}'")
    if end is None:  # no string follows them all: the exact LIKE form
        assert compiled.params == [prefix + "%", len(prefix), prefix]
    else:
        assert compiled.where == "(e.workflow_id >= ? AND e.workflow_id < ?)"
        assert compiled.params == [prefix, end]


def test_postgresql_placeholders_number_the_params_in_order() -> None:
    c = sql(
        "(Tags != 'x' OR CustomerTier IN ('a', 'b')) AND NOT CloseTime < '2026-01-01' "
        "AND IsVip IS NULL AND StartTime BETWEEN '2026-01-01' AND '2026-02-01'",
        "postgresql",
        first=4,
    )
    numbers = [int(n) for n in re.findall(r"\$(\d+)", c.where)]
    assert numbers == list(range(4, 4 + len(c.params)))
    assert len(c.params) == 10


def test_values_are_never_interpolated() -> None:
    evil = "x'); DROP TABLE executions; --"
    literal = evil.replace("'", "''")
    for dialect in ("sqlite", "postgresql"):
        c = compile_query(
            f"WorkflowId = '{literal}' OR `My Attr` STARTS_WITH '{literal}'",
            SA,
            dialect=dialect,
        )
        assert "DROP" not in c.where and "My Attr" not in c.where
        assert evil in c.params and "My Attr" in c.params


@pytest.mark.parametrize(
    ("query", "order_by"),
    [
        ("", "e.start_time DESC, e.run_id DESC"),
        ("ORDER BY StartTime", "e.start_time ASC, e.run_id ASC"),
        ("ORDER BY StartTime ASC", "e.start_time ASC, e.run_id ASC"),
        (
            "ORDER BY WorkflowType, HistoryLength DESC",
            "e.workflow_type ASC, (e.next_event_id - 1) DESC, e.run_id DESC",
        ),
        ("ORDER BY CloseTime DESC", "e.close_time DESC NULLS LAST, e.run_id DESC"),
        ("ORDER BY CloseTime", "e.close_time ASC NULLS LAST, e.run_id ASC"),
        ("ORDER BY ExecutionStatus, RunId ASC", "e.status ASC, e.run_id ASC"),
        (
            "ORDER BY TaskQueue, ExecutionTime DESC",
            "e.task_queue ASC, e.start_time DESC, e.run_id DESC",
        ),
    ],
)
def test_order_by(query: str, order_by: str) -> None:
    assert sql(query).order_by == order_by
    assert sql(query, "postgresql").order_by == order_by


# --- against real rows --------------------------------------------------------------------

RUNS: list[tuple[str, str, str, str, int, int, str, str | None, dict[str, Any]]] = [
    # run_id, workflow_id, workflow_type, task_queue, status, next_event_id, start, close, attrs
    ("r1", "cart-1", "Order", "q1", 1, 5, "2026-01-05", None,
     {"Tags": ["x", "y"], "CustomerTier": "gold", "Amount": 100.5, "IsVip": True,
      "PaidAt": "2026-01-06", "Count": 3}),
    ("r2", "cart_2", "Order", "q1", 2, 12, "2026-01-20", "2026-01-21",
     {"Tags": ["y"], "CustomerTier": "silver", "Amount": 50, "IsVip": False,
      "PaidAt": "2026-02-03", "Count": 7}),
    ("r3", "cart%3", "Refund", "q2", 3, 3, "2026-02-10", "2026-02-11", {}),
    ("r4", "CART-4", "Ship", "q2", 1, 2, "2025-12-31", None,
     {"CustomerTier": "gold", "Note": "hello world"}),
    ("r5", "cartX5", "A", "q1", 4, 8, "2026-01-31T23:59:59", "2026-02-01", {"Tags": ["z"]}),
    ("r6", "pre\\fix-6", "B", "q3", 7, 4, "2026-02-01", "2026-02-02",
     {"Amount": 100.4, "My Attr": "k1"}),
]  # fmt: skip


@pytest.fixture
def db() -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(":memory:")
    conn.executescript(
        """
        CREATE TABLE executions (
            run_id TEXT PRIMARY KEY, workflow_id TEXT NOT NULL, workflow_type TEXT NOT NULL,
            task_queue TEXT NOT NULL, status INTEGER NOT NULL, next_event_id INTEGER NOT NULL,
            start_time REAL NOT NULL, close_time REAL
        );
        CREATE TABLE search_attributes (
            run_id TEXT, name TEXT, value_text TEXT, value_num REAL, value_bool INTEGER
        );
        """
    )
    for run_id, wid, wtype, queue, status, next_id, start, close, attrs in RUNS:
        conn.execute(
            "INSERT INTO executions VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (run_id, wid, wtype, queue, status, next_id, ts(start), close and ts(close)),
        )
        for name, value in attrs.items():
            type_ = SA[name]
            for item in value if type_ == "KeywordList" else [value]:
                text = item if type_ in ("Keyword", "Text", "KeywordList") else None
                num = (
                    ts(item)
                    if type_ == "Datetime"
                    else float(item)
                    if type_ in ("Int", "Double")
                    else None
                )
                flag = int(item) if type_ == "Bool" else None
                conn.execute(
                    "INSERT INTO search_attributes VALUES (?, ?, ?, ?, ?)",
                    (run_id, name, text, num, flag),
                )
    yield conn
    conn.close()


def select(conn: sqlite3.Connection, query: str) -> list[str]:
    # The caller's own parameters come first, as the store will put its namespace there.
    c = compile_query(query, SA, dialect="sqlite")
    rows = conn.execute(
        f"SELECT e.run_id FROM executions e WHERE ? = ? AND ({c.where}) ORDER BY {c.order_by}",
        ["ns", "ns", *c.params],
    )
    return [row[0] for row in rows]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", {"r1", "r2", "r3", "r4", "r5", "r6"}),
        ("WorkflowType = 'Order'", {"r1", "r2"}),
        ("WorkflowType = 'Order' AND ExecutionStatus = 'Running'", {"r1"}),
        ("ExecutionStatus = 'running'", {"r1", "r4"}),
        ("ExecutionStatus IN ('Failed', 'TimedOut')", {"r3", "r6"}),
        ("ExecutionStatus NOT IN ('Running')", {"r2", "r3", "r5", "r6"}),
        ("WorkflowId != 'cart-1'", {"r2", "r3", "r4", "r5", "r6"}),
        ("TaskQueue = 'q2'", {"r3", "r4"}),
        ("RunId IN ('r2', 'r9')", {"r2"}),
        ("HistoryLength >= 7", {"r2", "r5"}),
        ("HistoryLength BETWEEN 2 AND 3", {"r3", "r6"}),
        # datetimes
        ("StartTime > '2026-01-01T00:00:00Z'", {"r1", "r2", "r3", "r5", "r6"}),
        (
            "StartTime BETWEEN '2026-01-01T00:00:00Z' AND '2026-02-01T00:00:00Z'",
            {"r1", "r2", "r5", "r6"},
        ),
        ("StartTime BETWEEN '2026-01-01' AND '2026-01-31T23:59:58'", {"r1", "r2"}),
        ("ExecutionTime < '2026-01-01'", {"r4"}),
        ("StartTime > '2026-01-05T05:00:00+03:00'", {"r2", "r3", "r5", "r6"}),
        ("PaidAt BETWEEN '2026-01-01' AND '2026-02-01'", {"r1"}),
        ("PaidAt > '2026-01-01'", {"r1", "r2"}),
        # nullable built-in: unset is false, NOT flips it
        ("CloseTime IS NULL", {"r1", "r4"}),
        ("CloseTime IS NOT NULL", {"r2", "r3", "r5", "r6"}),
        ("CloseTime > '2026-02-01'", {"r3", "r6"}),
        ("CloseTime != '2026-02-01'", {"r2", "r3", "r6"}),
        ("NOT CloseTime > '2026-02-01'", {"r1", "r2", "r4", "r5"}),
        # STARTS_WITH: wildcards are literal, case matters
        ("WorkflowId STARTS_WITH 'cart-'", {"r1"}),
        ("WorkflowId STARTS_WITH 'cart_'", {"r2"}),
        ("WorkflowId STARTS_WITH 'cart%'", {"r3"}),
        ("WorkflowId STARTS_WITH 'cart'", {"r1", "r2", "r3", "r5"}),
        ("WorkflowId STARTS_WITH 'CART'", {"r4"}),
        ("WorkflowId STARTS_WITH 'pre\\f'", {"r6"}),
        ("WorkflowId STARTS_WITH ''", {"r1", "r2", "r3", "r4", "r5", "r6"}),
        ("WorkflowId NOT STARTS_WITH 'cart'", {"r4", "r6"}),
        ("Note STARTS_WITH 'hello'", {"r4"}),
        ("Note STARTS_WITH 'Hello'", set()),
        # custom scalars: != means set and different; NOT includes unset
        ("CustomerTier = 'gold'", {"r1", "r4"}),
        ("CustomerTier != 'gold'", {"r2"}),
        ("NOT CustomerTier = 'gold'", {"r2", "r3", "r5", "r6"}),
        ("CustomerTier NOT IN ('silver')", {"r1", "r4"}),
        ("CustomerTier IS NULL", {"r3", "r5", "r6"}),
        ("CustomerTier IS NOT NULL", {"r1", "r2", "r4"}),
        ("Amount >= 100.5", {"r1"}),
        ("Amount > 50", {"r1", "r6"}),
        ("Amount NOT BETWEEN 60 AND 100.45", {"r1", "r2"}),
        ("Count = 7", {"r2"}),
        ("Count IN (3, 4)", {"r1"}),
        ("IsVip = true", {"r1"}),
        ("IsVip = false", {"r2"}),
        ("IsVip != true", {"r2"}),
        ("`My Attr` = 'k1'", {"r6"}),
        # KeywordList
        ("Tags = 'y'", {"r1", "r2"}),
        ("Tags = 'x' AND Tags = 'y'", {"r1"}),
        ("Tags IN ('x', 'z')", {"r1", "r5"}),
        ("Tags != 'x'", {"r2", "r5"}),
        ("Tags NOT IN ('x', 'z')", {"r2"}),
        ("NOT Tags = 'x'", {"r2", "r3", "r4", "r5", "r6"}),
        ("Tags IS NULL", {"r3", "r4", "r6"}),
        # precedence
        (
            "WorkflowType = 'Refund' OR WorkflowType = 'Order' AND ExecutionStatus = 'Running'",
            {"r3", "r1"},
        ),
        (
            "(WorkflowType = 'Refund' OR WorkflowType = 'Order') AND ExecutionStatus = 'Running'",
            {"r1"},
        ),
        (
            "ExecutionStatus = 'Running' AND WorkflowType = 'Ship' OR Tags = 'z'",
            {"r4", "r5"},
        ),
        ("NOT (WorkflowType = 'Order' OR Tags = 'z')", {"r3", "r4", "r6"}),
        ("NOT WorkflowType = 'Order' AND TaskQueue = 'q1'", {"r5"}),
        ("NOT (WorkflowType = 'Order' AND TaskQueue = 'q1')", {"r3", "r4", "r5", "r6"}),
        ("NOT NOT WorkflowType = 'Order'", {"r1", "r2"}),
        (
            "(WorkflowId STARTS_WITH 'cart-' OR WorkflowType IN ('A', 'B')) "
            "AND CustomerTier IS NULL ORDER BY StartTime DESC",
            {"r5", "r6"},
        ),
    ],
)
def test_selects_the_right_runs(db: sqlite3.Connection, query: str, expected: set[str]) -> None:
    assert set(select(db, query)) == expected


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", ["r3", "r6", "r5", "r2", "r1", "r4"]),
        ("ORDER BY StartTime", ["r4", "r1", "r2", "r5", "r6", "r3"]),
        ("TaskQueue = 'q1' ORDER BY HistoryLength DESC", ["r2", "r5", "r1"]),
        ("ORDER BY TaskQueue DESC, StartTime", ["r6", "r4", "r3", "r1", "r2", "r5"]),
        # Ties (open runs have no CloseTime) by RunId, in the direction of the last term.
        ("ORDER BY CloseTime", ["r2", "r5", "r6", "r3", "r1", "r4"]),
        ("ORDER BY CloseTime DESC", ["r3", "r6", "r5", "r2", "r4", "r1"]),
        ("ORDER BY WorkflowType", ["r5", "r6", "r1", "r2", "r3", "r4"]),
    ],
)
def test_orders_the_runs(db: sqlite3.Connection, query: str, expected: list[str]) -> None:
    assert select(db, query) == expected
