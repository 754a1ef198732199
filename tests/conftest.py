"""Fixtures shared by every test directory: a database of the test's own, on either store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pgutil import fresh_schema

pytest_plugins = ["pytester"]

STORES = ["sqlite", "postgresql"]


@pytest.fixture(params=STORES)
async def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A database of the test's own: a SQLite file, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
        return
    async with fresh_schema() as url:
        yield url


@pytest.fixture
async def postgres_url() -> AsyncIterator[str]:
    """A fresh PostgreSQL schema, for the tests of many processes sharing one database."""
    async with fresh_schema() as url:
        yield url


def _store_faults_plugin() -> None:
    """``--store-faults=SEED[:RATE]``: store faults over the whole suite (the plugin lives
    with the reliability harness, tests/reliability/harness/suite_faults.py)."""
    import sys

    here = str(Path(__file__).resolve().parent / "reliability")
    if here not in sys.path:
        sys.path.insert(0, here)


_store_faults_plugin()
pytest_plugins.append("harness.suite_faults")
