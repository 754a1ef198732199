"""The stateful model's workflow (``tests/reliability/test_stateful_model.py``) and the
result a plain-Python model of its instructions gives.

``Model`` runs the instructions it is signalled (``instruct``), in order: ``["act", n]``
runs the activity ``double`` (its result logged), ``["sleep", n]`` a durable timer of ``n``
seconds, ``["can", 0]`` continues as new carrying the log and the instructions not run
yet, ``["finish", 0]`` returns the log. ``expected(instructions)`` is that log.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from perdure import activity, workflow

ACTIVITY_TIMEOUT = 30.0


@activity.defn
async def double(value: int) -> int:
    return value * 2


@workflow.defn
class Model:
    """Runs the instructions it is signalled, in order, until told to finish."""

    def __init__(self) -> None:
        self.queue: list[list[Any]] = []
        self.log: list[Any] = []

    @workflow.signal
    def instruct(self, op: list[Any]) -> None:
        self.queue.append(op)

    @workflow.run
    async def run(
        self, log: list[Any] | None = None, queue: list[list[Any]] | None = None
    ) -> list[Any]:
        # A continued run carries its predecessor's log and the instructions it had not run
        # yet, which came before any this run's signal handler takes.
        self.log = list(log or [])
        self.queue[:0] = queue or []
        while True:
            await workflow.wait_condition(lambda: bool(self.queue))
            op = self.queue.pop(0)
            if op[0] == "can":
                self.log.append("continued")
                workflow.continue_as_new(args=(self.log, self.queue))
            if op[0] == "act":
                self.log.append(
                    await workflow.execute_activity(
                        double,
                        op[1],
                        start_to_close_timeout=timedelta(seconds=ACTIVITY_TIMEOUT),
                    )
                )
            elif op[0] == "sleep":
                await workflow.sleep(op[1])
                self.log.append(f"slept {op[1]}")
            else:
                return self.log


def event_type_of(event: Any) -> str:
    return str(getattr(event.event_type, "value", event.event_type))


def expected(ops: list[list[Any]]) -> list[Any]:
    out: list[Any] = []
    for op in ops:
        if op[0] == "act":
            out.append(op[1] * 2)
        elif op[0] == "can":
            out.append("continued")
        elif op[0] == "sleep":
            out.append(f"slept {op[1]}")
        else:
            return out
    return out
