"""What an identifier may be: the checks every entry point runs."""

from __future__ import annotations

import enum
from collections.abc import Callable

import pytest

from perdure._common import identifiers as ids
from perdure.exceptions import InvalidArgumentError, PerdureError

REQUIRED: list[Callable[[object], str]] = [
    ids.check_workflow_id,
    ids.check_task_queue,
    ids.check_workflow_type,
    ids.check_activity_type,
    ids.check_update_id,
    ids.check_namespace,
    lambda value: ids.check_handler_name(value, "signal"),
]
OPTIONAL: list[Callable[[object], str | None]] = [
    ids.check_run_id,
    ids.check_optional_task_queue,
    ids.check_activity_id,
    ids.check_optional_update_id,
    ids.check_identity,
]


@pytest.mark.parametrize("check", [*REQUIRED, *OPTIONAL])
def test_a_plain_string_up_to_the_limit_passes_unchanged(check: Callable[[object], object]) -> None:
    assert check("order-1") == "order-1"
    assert check("x" * ids.MAX_ID_LENGTH) == "x" * ids.MAX_ID_LENGTH
    assert check("é" * (ids.MAX_ID_LENGTH // 2)) == "é" * (ids.MAX_ID_LENGTH // 2)
    assert check("tab\tand\nnewline are fine") == "tab\tand\nnewline are fine"


@pytest.mark.parametrize("check", [*REQUIRED, *OPTIONAL])
@pytest.mark.parametrize(
    ("value", "says"),
    [
        (123, "must be a str, not int (123); pass a string, such as"),
        (b"order-1", "must be a str, not bytes (b'order-1'); pass a string, such as its .decode()"),
        (["a"], "must be a str, not list"),
        ("x" * (ids.MAX_ID_LENGTH + 1), "1,001 characters long, over the limit of 1,000 bytes"),
        ("é" * 501, "501 characters (1,002 bytes) long, over the limit of 1,000 bytes"),
        ("a\x00b", "contains a NUL character (at index 1)"),
        ("a\udc80", "is not valid Unicode (a lone surrogate at index 1)"),
    ],
)
def test_a_bad_value_is_refused_with_a_message_saying_what_and_why(
    check: Callable[[object], object], value: object, says: str
) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        check(value)
    assert says in str(info.value)
    # One error that every usual `except` catches: perdure's, TypeError and ValueError.
    assert isinstance(info.value, PerdureError)
    assert isinstance(info.value, TypeError)
    assert isinstance(info.value, ValueError)


def test_the_message_names_the_argument() -> None:
    with pytest.raises(InvalidArgumentError, match=r"^id: a workflow id must be a str, not int"):
        ids.check_workflow_id(7)
    with pytest.raises(InvalidArgumentError, match=r"^workflow_id: a workflow id must be a str"):
        ids.check_workflow_id(7, "workflow_id")
    with pytest.raises(InvalidArgumentError, match=r"^query: a query name must not be empty"):
        ids.check_handler_name("", "query")
    with pytest.raises(InvalidArgumentError, match=r"^task_queue=.*a task queue name contains"):
        ids.check_task_queue("q\x00")


@pytest.mark.parametrize("check", REQUIRED)
def test_a_required_identifier_must_not_be_empty_or_none(check: Callable[[object], str]) -> None:
    with pytest.raises(InvalidArgumentError, match="must not be empty"):
        check("")
    with pytest.raises(InvalidArgumentError, match="must be a str, not NoneType"):
        check(None)


@pytest.mark.parametrize("check", OPTIONAL)
def test_an_optional_identifier_left_empty_is_unset(check: Callable[[object], object]) -> None:
    assert check(None) is None
    assert check("") is None


def test_a_str_subclass_is_taken_as_its_plain_text() -> None:
    # Not a StrEnum: str() of this older kind of member is 'Queue.ORDERS', not its value.
    class Queue(str, enum.Enum):  # noqa: UP042
        ORDERS = "orders"

    checked = ids.check_task_queue(Queue.ORDERS)
    assert checked == "orders" and type(checked) is str


def test_a_huge_value_is_never_repeated_whole() -> None:
    huge = "x" * 5_000_000
    with pytest.raises(InvalidArgumentError) as info:
        ids.check_workflow_id(huge)
    assert len(str(info.value)) < 300
    assert "5,000,000 characters" in str(info.value)
    with pytest.raises(InvalidArgumentError) as info:
        ids.check_workflow_id(huge.encode())
    assert len(str(info.value)) < 300


def test_shorten_keeps_short_text_and_cuts_long_text() -> None:
    assert ids.shorten("order-1") == "'order-1'"
    assert ids.shorten("x" * 100, 10) == "'xxxxxxxxxx…' (100 characters)"
