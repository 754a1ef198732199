"""What an identifier may be: the one check every entry point runs before a store sees it.

Workflow ids, run ids, task queues, workflow and activity types, activity ids, signal, query
and update names, update ids, namespaces and identities are all stored as text and used as
keys. Each must be a ``str``: an ``int`` id would be stored under ``'123'`` and never found
again by ``123``. Each is at most :data:`MAX_ID_LENGTH` bytes in UTF-8 (Temporal's limit,
1,000 characters of ASCII), so a key stays a key (PostgreSQL indexes an entry of at most
2,704 bytes) and a message that names it stays readable. None may hold a NUL character or a
lone surrogate: PostgreSQL refuses the first and no UTF-8 store can hold the second, and
perdure refuses both on every store alike, before anything is written.

The client, the workflow API and the worker call the ``check_*`` function of each kind; the
error, :class:`~perdure.exceptions.InvalidArgumentError`, names the argument, what was wrong
and what to pass instead. Values are never repeated whole in a message: :func:`shorten`.
"""

from __future__ import annotations

from perdure._errors import InvalidArgumentError

MAX_ID_LENGTH = 1000
"""The longest identifier, in bytes of UTF-8 (Temporal's ``limit.maxIDLength``)."""

_SHORT = 60


def shorten(text: str, limit: int = _SHORT) -> str:
    """``text``'s ``repr``, cut to about ``limit`` characters, saying how long it was.

    Example:
        >>> shorten("x" * 5000, 8)
        "'xxxxxxxx…' (5,000 characters)"
    """
    if len(text) <= limit:
        return repr(text)
    cut = repr(text[:limit])
    return f"{cut[:-1]}…{cut[-1]} ({len(text):,} characters)"


def _cut(text: str, limit: int = _SHORT) -> str:
    return text if len(text) <= limit else f"{text[:limit]}…"


def _check(value: object, what: str, argument: str) -> str:
    if type(value) is not str:
        if not isinstance(value, str):
            example = (
                "its .decode()"
                if isinstance(value, bytes | bytearray)
                else f"{argument}={shorten(str(value))}"
            )
            raise InvalidArgumentError(
                f"{argument}: {what} must be a str, not {type(value).__name__} "
                f"({_cut(repr(value))}); pass a string, such as {example}"
            )
        value = str.__str__(value)  # a str subclass (a StrEnum member): its plain text
    if not value:
        raise InvalidArgumentError(f"{argument}: {what} must not be empty")
    size = len(value)
    if size <= MAX_ID_LENGTH and not value.isascii():
        try:
            size = len(value.encode("utf-8"))
        except UnicodeEncodeError as exc:
            raise InvalidArgumentError(
                f"{argument}={shorten(value)}: {what} is not valid Unicode (a lone surrogate "
                f"at index {exc.start}), which no store can hold as text"
            ) from None
    if size > MAX_ID_LENGTH:
        raise InvalidArgumentError(
            f"{argument}={shorten(value)}: {what} is {_size(value)}, over the limit of "
            f"{MAX_ID_LENGTH:,} bytes; use a shorter one (a hash of a long key, say)"
        )
    if "\x00" in value:
        raise InvalidArgumentError(
            f"{argument}={shorten(value)}: {what} contains a NUL character (at index "
            f"{value.index(chr(0))}), which PostgreSQL cannot store; perdure refuses it on "
            "every store: remove it"
        )
    return value


def _size(value: str) -> str:
    if value.isascii():
        return f"{len(value):,} characters long"
    return f"{len(value):,} characters ({len(value.encode('utf-8', 'replace')):,} bytes) long"


def _check_optional(value: object, what: str, argument: str) -> str | None:
    # Temporal's SDKs treat an empty optional id as unset: so does perdure.
    if value is None or value == "":
        return None
    return _check(value, what, argument)


def check_workflow_id(value: object, argument: str = "id") -> str:
    """A workflow id (required)."""
    return _check(value, "a workflow id", argument)


def check_run_id(value: object, argument: str = "run_id") -> str | None:
    """A run id, or ``None`` (or ``""``) for the latest run."""
    return _check_optional(value, "a run id", argument)


def check_task_queue(value: object, argument: str = "task_queue") -> str:
    """A task queue name (required)."""
    return _check(value, "a task queue name", argument)


def check_optional_task_queue(value: object, argument: str = "task_queue") -> str | None:
    """A task queue name, or ``None`` for the default one."""
    return _check_optional(value, "a task queue name", argument)


def check_workflow_type(value: object, argument: str = "workflow") -> str:
    """A workflow type name (given as a string, or registered by ``@workflow.defn``)."""
    return _check(value, "a workflow type name", argument)


def check_activity_type(value: object, argument: str = "activity") -> str:
    """An activity type name (given as a string, or registered by ``@activity.defn``)."""
    return _check(value, "an activity type name", argument)


def check_activity_id(value: object, argument: str = "activity_id") -> str | None:
    """An activity id, or ``None`` for the default (the activity's sequence number)."""
    return _check_optional(value, "an activity id", argument)


def check_handler_name(value: object, kind: str, argument: str | None = None) -> str:
    """The name of a signal, query or update (``kind``)."""
    return _check(value, f"a {kind} name", argument or kind)


def check_update_id(value: object, argument: str = "update_id") -> str:
    """An update id (required)."""
    return _check(value, "an update id", argument)


def check_optional_update_id(value: object, argument: str = "id") -> str | None:
    """An update id, or ``None`` for a random one."""
    return _check_optional(value, "an update id", argument)


def check_request_id(value: object, argument: str = "request_id") -> str | None:
    """A signal's idempotency key, or ``None`` for a random one."""
    return _check_optional(value, "a request id", argument)


def check_search_attribute_name(value: object, argument: str = "name") -> str:
    """The name of a search attribute."""
    return _check(value, "a search attribute name", argument)


def check_namespace(value: object) -> str:
    """A namespace name."""
    return _check(value, "a namespace", "namespace")


def check_identity(value: object) -> str | None:
    """A client's or worker's identity, or ``None`` for the default one."""
    return _check_optional(value, "an identity", "identity")


def storable_text(text: str) -> str:
    """Free text (an error message) as every store can hold it: a NUL written as ``\\x00``, a
    lone surrogate as ``\\udc80``; anything else unchanged."""
    if "\x00" in text:
        text = text.replace("\x00", "\\x00")
    if not text.isascii():
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text
