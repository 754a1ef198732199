"""The torture workflow and its worker process.

Usage::

    python -m harness.app worker URL LEDGER [--faults SEED:RATE[:KINDS]] [--task-queue Q]
    python -m harness.app signal URL [WORKFLOW_ID FIRST N ACKS]...

``Torture(value, steps)`` runs ``steps`` activities one after the other; each appends
``before`` to the ledger, sleeps a little (the window in which a kill leaves it in flight),
appends ``after`` and returns ``step(seq, value)``. ``reference(value, steps)`` is what the
workflow must return, computed without perdure. The worker runs the workflows of
``scenarios`` too (timers, signals, children), and ``signal`` is ``scenarios``' signal
sender. A crash point comes from ``PERDURE_CRASH_AT`` (see ``crashpoints``).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import random
import sys
from datetime import timedelta

from harness import crashpoints
from harness.faults import FaultPlan, inject
from harness.ledger import Ledger
from perdure import Client, Worker, activity, workflow

TASK_QUEUE = "torture"
# Short leases: a killed worker's tasks are taken over quickly.
TASK_TIMEOUT = timedelta(seconds=1)
ACTIVITY_TIMEOUT = timedelta(seconds=float(os.environ.get("PERDURE_ACTIVITY_TIMEOUT_S", "1")))
# How long an activity's side effect takes: U(MIN, MAX) seconds.
ACTIVITY_MIN_S = float(os.environ.get("PERDURE_ACTIVITY_MIN_S", "0.005"))
ACTIVITY_MAX_S = float(os.environ.get("PERDURE_ACTIVITY_MAX_S", "0.05"))
STOLEN_MARK = "outcome dropped"

_ledger: Ledger | None = None


def step(seq: int, value: int) -> int:
    return (value * 31 + seq) % 1_000_003


def reference(value: int, steps: int) -> int:
    for seq in range(1, steps + 1):
        value = step(seq, value)
    return value


@activity.defn
async def torture_step(seq: int, value: int) -> int:
    if _ledger is None:
        raise RuntimeError("torture_step runs only in `python -m harness.app worker` processes")
    info = activity.info()
    _ledger.append(info.workflow_id, seq, info.attempt, "before")
    await asyncio.sleep(random.uniform(ACTIVITY_MIN_S, ACTIVITY_MAX_S))
    _ledger.append(info.workflow_id, seq, info.attempt, "after")
    return step(seq, value)


@workflow.defn
class Torture:
    @workflow.run
    async def run(self, value: int, steps: int) -> int:
        for seq in range(1, steps + 1):
            value = await workflow.execute_activity(
                torture_step, args=(seq, value), start_to_close_timeout=ACTIVITY_TIMEOUT
            )
        return value


async def start(
    client: Client, workflow_id: str, value: int, steps: int, task_queue: str = TASK_QUEUE
) -> None:
    await client.start_workflow(
        Torture.run,
        args=(value, steps),
        id=workflow_id,
        task_queue=task_queue,
        task_timeout=TASK_TIMEOUT,
    )


async def _worker(args: argparse.Namespace) -> None:
    from harness import scenarios

    global _ledger
    logging.basicConfig(level=logging.INFO, format=f"%(asctime)s {os.getpid()} %(message)s")
    _ledger = Ledger(args.ledger)
    client = await Client.connect(args.url)
    if args.faults:
        inject(client.store, FaultPlan.parse(args.faults))
    worker = Worker(
        client,
        task_queue=args.task_queue,
        workflows=[Torture, *scenarios.WORKFLOWS],
        activities=[torture_step],
    )
    hook = crashpoints.hook_from_environment()
    if hook is not None:
        worker._set_crash_hook(hook)
    await worker.run()


async def _signal(args: argparse.Namespace) -> None:
    from harness import scenarios

    crashpoints.hook_from_environment()
    spec = args.streams
    streams = [
        scenarios.Stream(spec[i], int(spec[i + 1]), int(spec[i + 2]), spec[i + 3])
        for i in range(0, len(spec), 4)
    ]
    await scenarios.send_signals(args.url, streams)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="harness.app")
    sub = parser.add_subparsers(dest="command", required=True)
    w = sub.add_parser("worker")
    w.add_argument("url")
    w.add_argument("ledger")
    w.add_argument("--faults", default="")
    w.add_argument("--task-queue", default=TASK_QUEUE)
    s = sub.add_parser("signal")
    s.add_argument("url")
    s.add_argument("streams", nargs="+", help="WORKFLOW_ID FIRST N ACKS, repeated")
    args = parser.parse_args(argv)
    asyncio.run(_worker(args) if args.command == "worker" else _signal(args))


if __name__ == "__main__":
    main(sys.argv[1:])
