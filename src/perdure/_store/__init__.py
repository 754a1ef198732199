"""Durable state behind one interface, one implementation per database, chosen by URL.

Never imports user code or the runtime.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from perdure._common.clock import Clock
from perdure._errors import InvalidURLError, PerdureError
from perdure._store._base import Store

_FORMS = (
    "sqlite:///relative/path.db, sqlite:////absolute/path.db, sqlite://:memory:, "
    "postgresql://user@host:5432/dbname, postgresql://user@host:5432/dbname?schema=NAME"
)


def sqlite_path(url: str) -> str:
    """The file path (or ``:memory:``) a ``sqlite://`` URL names."""
    if url in ("sqlite://:memory:", "sqlite:///:memory:", "sqlite://"):
        return ":memory:"
    if not url.startswith("sqlite:///"):
        raise InvalidURLError(
            f"Malformed SQLite URL {url!r}: a file is sqlite:///relative.db or "
            "sqlite:////absolute/path.db (three slashes, then the path)"
        )
    path = url[len("sqlite:///") :].split("?", 1)[0]
    if not path:
        raise InvalidURLError(f"SQLite URL {url!r} names no file; accepted forms: {_FORMS}")
    return path


def open_store(url: str, clock: Clock | None = None) -> Store:
    """Open the store a database URL names.

    A PostgreSQL store connects on first use (connecting needs the running event loop), so
    its connection errors and ``SchemaVersionError`` come from the first operation.

    Raises:
        PerdureError: a PostgreSQL URL, but the asyncpg driver is not installed.
        InvalidURLError: the URL is malformed or names a database perdure does not support.
        SchemaVersionError: the database was written by a newer perdure.
    """
    if not isinstance(url, str) or "://" not in url:
        raise InvalidURLError(f"Not a database URL: {url!r}; accepted forms: {_FORMS}")
    scheme = urlsplit(url).scheme.lower()
    clock = clock or Clock()
    if scheme == "sqlite":
        from perdure._store._sqlite import SQLiteStore

        return SQLiteStore(sqlite_path(url), clock)
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


__all__ = ["Store", "open_store", "sqlite_path"]
