"""The oracle: an append-only record of every activity attempt, outside perdure's store.

Each attempt appends ``before`` as it begins and ``after`` once its side effect is done (just
before the activity returns), to a SQLite file of its own with ``synchronous=FULL``, so that
an entry survives the SIGKILL of the process that wrote it. Any number of processes append
to one ledger.
"""

from __future__ import annotations

import collections
import os
import sqlite3
import time
from dataclasses import dataclass

_SCHEMA = """
CREATE TABLE IF NOT EXISTS attempts (
    id INTEGER PRIMARY KEY,
    workflow_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    attempt INTEGER NOT NULL,
    pid INTEGER NOT NULL,
    phase TEXT NOT NULL,
    at REAL NOT NULL
)
"""


@dataclass(frozen=True, slots=True)
class Entry:
    workflow_id: str
    seq: int
    attempt: int
    pid: int
    phase: str  # "before" | "after"
    at: float = 0.0  # time.time() of the append


class Ledger:
    """One ledger file; open it in every process that appends or reads."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._conn: sqlite3.Connection | None = None
        self._pid = 0

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None or self._pid != os.getpid():
            conn = sqlite3.connect(self.path, isolation_level=None, timeout=30)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute(_SCHEMA)
            self._conn, self._pid = conn, os.getpid()
        return self._conn

    def append(self, workflow_id: str, seq: int, attempt: int, phase: str) -> None:
        self._connection().execute(
            "INSERT INTO attempts (workflow_id, seq, attempt, pid, phase, at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (workflow_id, seq, attempt, os.getpid(), phase, time.time()),
        )

    def entries(self) -> list[Entry]:
        if not os.path.exists(self.path):
            return []
        rows = self._connection().execute(
            "SELECT workflow_id, seq, attempt, pid, phase, at FROM attempts ORDER BY id"
        )
        return [Entry(*row) for row in rows]

    def executions(self) -> dict[tuple[str, int], int]:
        """How many attempts of each (workflow, activity seq) finished their side effect."""
        counts: collections.Counter[tuple[str, int]] = collections.Counter()
        for e in self.entries():
            if e.phase == "after":
                counts[(e.workflow_id, e.seq)] += 1
        return dict(counts)

    def started(self) -> dict[tuple[str, int], int]:
        counts: collections.Counter[tuple[str, int]] = collections.Counter()
        for e in self.entries():
            if e.phase == "before":
                counts[(e.workflow_id, e.seq)] += 1
        return dict(counts)

    def close(self) -> None:
        if self._conn is not None and self._pid == os.getpid():
            self._conn.close()
        self._conn = None
