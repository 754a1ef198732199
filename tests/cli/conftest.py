from __future__ import annotations

from pathlib import Path

import pytest
from cli_support import Perdure, write_app


@pytest.fixture
def perdure(db_url: str, tmp_path: Path) -> Perdure:
    """The ``perdure`` command on a database of the test's own (SQLite file or PostgreSQL
    schema), run beside the test app's module."""
    write_app(tmp_path)
    return Perdure(db_url, tmp_path)


@pytest.fixture
def perdure_sqlite(tmp_path: Path) -> Perdure:
    """The ``perdure`` command on a SQLite file only."""
    write_app(tmp_path)
    return Perdure(f"sqlite:///{tmp_path / 'app.db'}", tmp_path)
