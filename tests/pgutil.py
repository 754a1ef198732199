"""Finding the test PostgreSQL server, for every test that needs one.

The server is ``$PERDURE_TEST_POSTGRES_URL`` (default: the local one). Each test gets a schema
of its own (``?schema=t_<uuid>``), dropped afterwards. If the server cannot be reached the
test is skipped, saying why; under ``PERDURE_REQUIRE_POSTGRES=1`` (CI) it fails instead.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

POSTGRES_URL = os.environ.get(
    "PERDURE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
# CI sets this: there, a PostgreSQL test that cannot run fails instead of skipping.
REQUIRE_POSTGRES = os.environ.get("PERDURE_REQUIRE_POSTGRES") == "1"


def unavailable(reason: str) -> None:
    if REQUIRE_POSTGRES:
        pytest.fail(f"{reason} (PERDURE_REQUIRE_POSTGRES=1: PostgreSQL tests must run)")
    pytest.skip(reason)


async def postgres_admin() -> Any:
    """A plain connection to the test server, or a skip saying why there is none."""
    try:
        import asyncpg  # type: ignore[import-untyped]
    except ImportError:
        unavailable("PostgreSQL tests need asyncpg: pip install -e '.[dev]'")
    try:
        return await asyncpg.connect(POSTGRES_URL, timeout=5)
    except Exception as exc:
        unavailable(
            f"PostgreSQL is not reachable at {POSTGRES_URL} ({exc}); start it or set "
            "PERDURE_TEST_POSTGRES_URL"
        )


def with_schema(url: str, schema: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}schema={schema}"


@asynccontextmanager
async def fresh_schema() -> AsyncIterator[str]:
    """The URL of a new, empty schema on the test server, dropped on exit."""
    admin = await postgres_admin()
    schema = f"t_{uuid.uuid4().hex}"
    try:
        yield with_schema(POSTGRES_URL, schema)
    finally:
        await admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await admin.close()
