"""Parents that close with children open, and their worker process (RELIABILITY.md
section 11: parent close policies under crashes).

Usage::

    python -m harness.close_app worker URL LEDGER

``Closer(policy, children)`` starts ``children`` ``Waiter`` children with the close policy
``policy`` (ids ``<parent id>/child-<i>``, on ``CHILD_QUEUE``), waits until it is signalled
``close`` and returns ``children``. ``Waiter`` waits until it is signalled ``finish`` and
returns ``FINISHED``; asked to cancel, it lets the cancellation end it (``CANCELED``). One
process runs both queues; a crash point comes from ``PERDURE_CRASH_AT`` (see
``crashpoints``). (LEDGER is taken for
the command line ``Workers.spawn`` builds; nothing is written to it.)
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from datetime import timedelta

from harness import crashpoints
from perdure import Client, Worker, workflow
from perdure.workflow import ParentClosePolicy

PARENT_QUEUE = "parents"
CHILD_QUEUE = "children"
# Short leases: a dead worker's workflow task is taken over quickly.
TASK_TIMEOUT = timedelta(seconds=1)
FINISHED = "finished"


@workflow.defn
class Waiter:
    def __init__(self) -> None:
        self.done = False

    @workflow.signal
    def finish(self) -> None:
        self.done = True

    @workflow.run
    async def run(self) -> str:
        await workflow.wait_condition(lambda: self.done)
        return FINISHED


@workflow.defn
class Closer:
    def __init__(self) -> None:
        self.closing = False

    @workflow.signal
    def close(self) -> None:
        self.closing = True

    @workflow.run
    async def run(self, policy: int, children: int) -> int:
        await asyncio.gather(
            *(
                workflow.start_child_workflow(
                    Waiter.run,
                    id=child_id(workflow.info().workflow_id, i),
                    task_queue=CHILD_QUEUE,
                    task_timeout=TASK_TIMEOUT,
                    parent_close_policy=ParentClosePolicy(policy),
                )
                for i in range(1, children + 1)
            )
        )
        await workflow.wait_condition(lambda: self.closing)
        return children


def child_id(parent_id: str, i: int) -> str:
    return f"{parent_id}/child-{i}"


async def _worker(args: argparse.Namespace) -> None:
    logging.basicConfig(level=logging.INFO, format=f"%(asctime)s {os.getpid()} %(message)s")
    client = await Client.connect(args.url)
    # One process for parents and children, as one deployment would run them: its death
    # leaves the children's work (a cancellation to handle) to the next process too.
    workers = [
        Worker(client, task_queue=PARENT_QUEUE, workflows=[Closer]),
        Worker(client, task_queue=CHILD_QUEUE, workflows=[Waiter]),
    ]
    hook = crashpoints.hook_from_environment()
    for worker in workers:
        if hook is not None:
            worker._set_crash_hook(hook)
    await asyncio.gather(*(w.run() for w in workers))


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="harness.close_app")
    sub = parser.add_subparsers(dest="command", required=True)
    w = sub.add_parser("worker")
    w.add_argument("url")
    w.add_argument("ledger")
    args = parser.parse_args(argv)
    asyncio.run(_worker(args))


if __name__ == "__main__":
    main(sys.argv[1:])
