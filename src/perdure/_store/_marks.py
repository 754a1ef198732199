"""The runs an operation gave inbox rows to: one rule for both stores.

A run's ``inputs_buffered`` mark says whether its inbox holds inputs, and a workflow task's
completion reads the inbox only when it does. An operation may hold two copies of one run: a
task signalling its own run buffers the signal through a copy read afresh, while the
completion holds the copy it read first. So the transaction remembers the runs it buffered
inputs for until their inbox is taken, and every write of such a run, from whichever copy,
keeps the mark.
"""

from __future__ import annotations

from perdure._store._types import Execution


class BufferedRuns:
    """Runs given inbox rows by the current operation and not taken since."""

    __slots__ = ("_runs",)

    def __init__(self) -> None:
        self._runs: set[str] = set()

    def added(self, run_id: str) -> None:
        self._runs.add(run_id)

    def taken(self, run_id: str) -> None:
        self._runs.discard(run_id)

    def clear(self) -> None:
        self._runs.clear()

    def buffered(self, ex: Execution) -> bool:
        """Whether the run may have inputs in its inbox."""
        return ex.inputs_buffered or ex.run_id in self._runs

    def keep(self, ex: Execution) -> None:
        """Mark ``ex`` before it is written, if this operation buffered inputs for it."""
        if ex.run_id in self._runs:
            ex.inputs_buffered = True
