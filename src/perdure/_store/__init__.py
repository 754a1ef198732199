"""Durable state behind one interface, one implementation per database, chosen by URL.

Never imports user code or the runtime.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit

from perdure._common.clock import Clock
from perdure._errors import InvalidURLError, PerdureError
from perdure._store._base import Store

_FORMS = (
    "sqlite:///relative/path.db, sqlite:////absolute/path.db, sqlite:///path.db?mode=ro, "
    "sqlite://:memory:, "
    "postgresql://user@host:5432/dbname, postgresql://user@host:5432/dbname?schema=NAME"
)


# The modes of SQLite's own URIs that a sqlite:// URL takes, as ?mode=.
_SQLITE_MODES = {
    "ro": "read-only: workflows can be listed and described but not changed",
    "rw": "read-write; the file must exist",
    "rwc": "the default: read-write, the file created if missing",
}


@dataclass(frozen=True, slots=True)
class SQLiteTarget:
    """What a ``sqlite://`` URL names: a file (or ``:memory:``) and how to open it."""

    path: str
    mode: str = "rwc"


def sqlite_target(url: str) -> SQLiteTarget:
    """The file (or ``:memory:``) a ``sqlite://`` URL names, and its ``?mode=``.

    Raises:
        InvalidURLError: the URL is malformed or has a parameter perdure does not know.
    """
    base, _, query = url.partition("?")
    params = parse_qsl(query, keep_blank_values=True)
    known = "; ".join(f"?mode={mode} ({what})" for mode, what in _SQLITE_MODES.items())
    for key, _value in params:
        if key != "mode":
            raise InvalidURLError(
                f"SQLite URL {url!r} has an unknown parameter {key!r}; the only one is mode: "
                f"{known}"
            )
    modes = [value for _key, value in params]
    if len(modes) > 1 or (modes and modes[0] not in _SQLITE_MODES):
        raise InvalidURLError(f"SQLite URL {url!r} needs one mode of: {known}")
    if base in ("sqlite://:memory:", "sqlite:///:memory:", "sqlite://"):
        if modes:
            raise InvalidURLError(
                f"SQLite URL {url!r}: ?mode= applies to a file, not to an in-memory database"
            )
        return SQLiteTarget(":memory:")
    if not base.startswith("sqlite:///"):
        raise InvalidURLError(
            f"Malformed SQLite URL {url!r}: a file is sqlite:///relative.db or "
            "sqlite:////absolute/path.db (three slashes, then the path)"
        )
    path = base[len("sqlite:///") :]
    if not path:
        raise InvalidURLError(f"SQLite URL {url!r} names no file; accepted forms: {_FORMS}")
    return SQLiteTarget(path, *modes)


# What ``open_store`` hands every store it opens to, in order, before returning it: none in
# production. The reliability suite installs one (tests/conftest.py, ``--store-faults``) to
# inject store faults into every store the functional suite opens. The engine reads no
# environment variable for it: the test harness owns switching it on.
OpenHook = Callable[[Store], Store]
_open_hooks: list[OpenHook] = []


def add_open_hook(hook: OpenHook) -> Callable[[], None]:
    """Have ``open_store`` pass every store it opens from now on through ``hook`` (which
    returns the store to use: the same object, changed, or a wrapper). Returns the call that
    removes the hook. For test harnesses (the reliability suite's store faults)."""
    _open_hooks.append(hook)
    return lambda: _open_hooks.remove(hook)


def open_store(url: str, clock: Clock | None = None) -> Store:
    """Open the store a database URL names.

    A PostgreSQL store connects on first use (connecting needs the running event loop), so
    its connection errors and ``SchemaError`` come from the first operation.

    Raises:
        PerdureError: a PostgreSQL URL, but the asyncpg driver is not installed.
        InvalidURLError: the URL is malformed or names a database perdure does not support.
        SchemaVersionError: the database was written by a newer perdure.
        SchemaError: the database's perdure tables were changed by hand (a table, a column or
            the version row is missing).
    """
    if not isinstance(url, str) or "://" not in url:
        raise InvalidURLError(f"Not a database URL: {url!r}; accepted forms: {_FORMS}")
    scheme = urlsplit(url).scheme.lower()
    clock = clock or Clock()
    store = _open(url, scheme, clock)
    for hook in list(_open_hooks):
        store = hook(store)
    return store


def _open(url: str, scheme: str, clock: Clock) -> Store:
    if scheme == "sqlite":
        from perdure._store._sqlite import SQLiteStore

        target = sqlite_target(url)
        return SQLiteStore(target.path, clock, mode=target.mode)
    if scheme in ("postgresql", "postgres"):
        try:
            from perdure._store._postgres import PostgresStore
        except ImportError as exc:
            if exc.name != "asyncpg":
                raise
            raise PerdureError(
                f"PostgreSQL needs the asyncpg driver ({exc}): pip install 'perdure[postgres]'",
                cause=exc,
            ) from exc
        return PostgresStore(url, clock)
    raise InvalidURLError(
        f"Unsupported database URL scheme {scheme!r} in {url!r}; accepted forms: {_FORMS}"
    )


__all__ = ["OpenHook", "SQLiteTarget", "Store", "add_open_hook", "open_store", "sqlite_target"]
