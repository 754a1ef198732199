"""What opening a database checks before it trusts, or migrates, perdure's tables in it.

A schema version names a set of tables and columns, the same on SQLite and PostgreSQL (the
migration lists make the same changes). They are learned by running the SQLite migrations
on an in-memory database, once per version, so nothing here repeats the schema. A database
whose version row was deleted, or whose tables lost a table or a column, is refused with a
``SchemaError`` that says what is missing and how to repair it, instead of failing later on
a migration or a statement.
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Mapping, Set
from dataclasses import dataclass

from perdure._errors import SchemaError, SchemaVersionError
from perdure._store._schema import LATEST_VERSION, MIGRATIONS

VERSION_TABLE = "perdure_schema"


@functools.cache
def required_columns(version: int) -> Mapping[str, frozenset[str]]:
    """The tables of schema ``version`` and their columns."""
    conn = sqlite3.connect(":memory:")
    try:
        for statements in MIGRATIONS[:version]:
            for statement in statements:
                conn.execute(statement)
        rows = conn.execute(
            "SELECT m.name, p.name FROM sqlite_master m, pragma_table_info(m.name) p "
            "WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%'"
        ).fetchall()
    finally:
        conn.close()
    tables: dict[str, set[str]] = {}
    for table, column in rows:
        tables.setdefault(table, set()).add(column)
    return {table: frozenset(columns) for table, columns in tables.items()}


@dataclass(frozen=True, slots=True)
class SchemaState:
    """What a database holds, as read under the lock migrations take.

    Attributes:
        versions: the rows of the version table (None: there is no version table).
        tables: the tables of the schema perdure's tables go in, with their columns.
    """

    versions: list[int] | None
    tables: Mapping[str, Set[str]]


def check_schema(state: SchemaState, where: str) -> int:
    """The schema version of a database, once its tables are what that version needs.

    Args:
        state: what the database holds.
        where: the database, as messages name it.

    Returns:
        The version (0 for a database without perdure's tables: every migration is to run).

    Raises:
        SchemaVersionError: a newer perdure wrote the database.
        SchemaError: the version row is missing or repeated, or a table or a column the
            version needs is missing.
    """
    ours = sorted(set(required_columns(LATEST_VERSION)) & set(state.tables))
    if not state.versions:
        if not ours:
            return 0
        guess = _matching_version(state.tables)
        repair = (
            f"if they are perdure's and intact, put the row back: INSERT INTO {VERSION_TABLE} "
            f"(version) VALUES ({guess}) (the version their columns match); otherwise restore "
            "the database from a backup"
            if guess
            else "otherwise restore perdure's tables from a backup"
        )
        raise SchemaError(
            f"The database {where} has tables named like perdure's ({', '.join(ours)}) but no "
            f"perdure schema version (the {VERSION_TABLE} table is missing or empty). If they "
            "are another application's, keep perdure's tables apart (on PostgreSQL with "
            f"?schema=NAME, on SQLite in another file); {repair}"
        )
    if len(state.versions) > 1:
        raise SchemaError(
            f"The database {where} has {len(state.versions)} rows in {VERSION_TABLE} "
            f"(versions {', '.join(map(str, state.versions))}) where perdure keeps one: delete "
            "all but the right one, or restore the database from a backup"
        )
    version = state.versions[0]
    if version > LATEST_VERSION:
        raise SchemaVersionError(
            f"The database {where} has perdure schema version {version}, newer than this "
            f"perdure understands ({LATEST_VERSION}): upgrade perdure to open it"
        )
    missing = _missing(required_columns(version), state.tables)
    if missing:
        raise SchemaError(
            f"The database {where} is at perdure schema version {version}, but "
            f"{'; '.join(missing)}: it was changed by hand or by another program. Restore "
            "the database from a backup"
        )
    return version


def _missing(required: Mapping[str, frozenset[str]], tables: Mapping[str, Set[str]]) -> list[str]:
    """What ``tables`` lacks of ``required``, in words."""
    missing: list[str] = []
    for table in sorted(required):
        if table not in tables:
            missing.append(f"table {table} is missing")
            continue
        columns = sorted(required[table] - tables[table])
        if columns:
            names = ", ".join(f"{table}.{c}" for c in columns)
            missing.append(
                f"column {names} is missing"
                if len(columns) == 1
                else f"columns {names} are missing"
            )
    return missing


def _matching_version(tables: Mapping[str, Set[str]]) -> int | None:
    """The newest version whose tables and columns are all there."""
    for version in range(LATEST_VERSION, 0, -1):
        if not _missing(required_columns(version), tables):
            return version
    return None


def sqlite_state(conn: sqlite3.Connection) -> SchemaState:
    """What a SQLite database holds (read in the caller's transaction, if any)."""
    tables: dict[str, set[str]] = {}
    for table, column in conn.execute(
        "SELECT m.name, p.name FROM sqlite_master m, pragma_table_info(m.name) p "
        "WHERE m.type = 'table'"
    ):
        tables.setdefault(table, set()).add(column)
    versions = None
    if VERSION_TABLE in tables:
        versions = [int(r[0]) for r in conn.execute(f"SELECT version FROM {VERSION_TABLE}")]
    return SchemaState(versions, tables)
