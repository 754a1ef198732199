"""The signal-burst workflow and its worker process (RELIABILITY.md section 10).

Usage::

    python -m harness.signal_app worker URL LEDGER [--task-queue Q]

``SignalSink(expected)`` appends the value of each ``add`` signal, in the order its handler
runs, and returns them once it holds ``expected``. (LEDGER is taken for the command line
``Workers.spawn`` builds; nothing is written to it.)
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from datetime import timedelta

from perdure import Client, Worker, workflow

TASK_QUEUE = "signals"
# Short leases: a killed worker's workflow task is taken over quickly.
TASK_TIMEOUT = timedelta(seconds=1)


@workflow.defn
class SignalSink:
    def __init__(self) -> None:
        self.seen: list[str] = []

    @workflow.run
    async def run(self, expected: int) -> list[str]:
        await workflow.wait_condition(lambda: len(self.seen) >= expected)
        return self.seen

    @workflow.signal
    def add(self, value: str) -> None:
        self.seen.append(value)


async def _worker(args: argparse.Namespace) -> None:
    logging.basicConfig(level=logging.INFO, format=f"%(asctime)s {os.getpid()} %(message)s")
    client = await Client.connect(args.url)
    await Worker(client, task_queue=args.task_queue, workflows=[SignalSink]).run()


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="harness.signal_app")
    sub = parser.add_subparsers(dest="command", required=True)
    w = sub.add_parser("worker")
    w.add_argument("url")
    w.add_argument("ledger")
    w.add_argument("--task-queue", default=TASK_QUEUE)
    args = parser.parse_args(argv)
    asyncio.run(_worker(args))


if __name__ == "__main__":
    main(sys.argv[1:])
