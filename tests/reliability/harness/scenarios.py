"""Workflows of the torture worker beyond ``Torture``: durable timers, signals and children
(RELIABILITY.md sections 9-11), each with a pure reference of its result, and the signal
sender process.

* ``Sleeper(value, timers, seconds)``: ``timers`` durable timers one after the other, a step
  of the value after each; returns ``app.reference(value, timers)``.
* ``Alarms(value, delays)``: one durable timer per delay, all at once; returns
  ``app.reference(value, len(delays))`` once every one fired.
* ``Listener(n)``: returns the ``n`` values it was signalled (``add``), in arrival order.
* ``Parent(value, children)``: runs ``children`` children one after the other, each a
  one-activity ``Torture`` on the parent's queue with the id ``<parent id>/child-<i>``;
  returns ``parent_reference(value, children)``.

The sender (``python -m harness.app signal URL [WORKFLOW_ID FIRST N ACKS]...``) signals
``FIRST .. FIRST+N-1`` to each ``Listener`` named (the streams concurrently, each in order),
appending each value to its file ``ACKS`` (fsync'd) once ``signal()`` returned: started
again after a crash, it goes on after the last one acknowledged. A value acknowledged must be
in history once; one not acknowledged was in a transaction that died with the process, and
is sent again.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass

from harness import app
from perdure import Client, workflow

SIGNAL = "add"


@workflow.defn
class Sleeper:
    @workflow.run
    async def run(self, value: int, timers: int, seconds: float) -> int:
        for seq in range(1, timers + 1):
            await workflow.sleep(seconds)
            value = app.step(seq, value)
        return value


@workflow.defn
class Alarms:
    @workflow.run
    async def run(self, value: int, delays: list[float]) -> int:
        await asyncio.gather(*(workflow.sleep(d) for d in delays))
        return app.reference(value, len(delays))


@workflow.defn
class Listener:
    def __init__(self) -> None:
        self.values: list[int] = []

    @workflow.signal(name=SIGNAL)
    def add(self, value: int) -> None:
        self.values.append(value)

    @workflow.run
    async def run(self, n: int) -> list[int]:
        await workflow.wait_condition(lambda: len(self.values) >= n)
        return self.values


@workflow.defn
class Parent:
    @workflow.run
    async def run(self, value: int, children: int) -> int:
        for i in range(1, children + 1):
            value = await workflow.execute_child_workflow(
                app.Torture.run,
                args=(value, 1),
                id=child_id(workflow.info().workflow_id, i),
                task_timeout=app.TASK_TIMEOUT,
            )
        return value


WORKFLOWS = [Sleeper, Alarms, Listener, Parent]


def child_id(parent_id: str, i: int) -> str:
    return f"{parent_id}/child-{i}"


def parent_reference(value: int, children: int) -> int:
    for _ in range(children):
        value = app.reference(value, 1)
    return value


async def start_sleeper(
    client: Client, wid: str, value: int, timers: int, seconds: float, task_queue: str
) -> None:
    await client.start_workflow(
        Sleeper.run,
        args=(value, timers, seconds),
        id=wid,
        task_queue=task_queue,
        task_timeout=app.TASK_TIMEOUT,
    )


async def start_listener(client: Client, wid: str, n: int, task_queue: str) -> None:
    await client.start_workflow(
        Listener.run, n, id=wid, task_queue=task_queue, task_timeout=app.TASK_TIMEOUT
    )


async def start_parent(
    client: Client, wid: str, value: int, children: int, task_queue: str
) -> None:
    await client.start_workflow(
        Parent.run,
        args=(value, children),
        id=wid,
        task_queue=task_queue,
        task_timeout=app.TASK_TIMEOUT,
    )


def acknowledged(path: str) -> list[int]:
    try:
        with open(path, encoding="utf-8") as f:
            return [int(line) for line in f.read().split()]
    except FileNotFoundError:
        return []


@dataclass(frozen=True)
class Stream:
    """Values ``first .. first+n-1`` signalled to ``workflow_id`` one after the other, each
    acknowledged in the file ``acks`` once ``signal()`` returned."""

    workflow_id: str
    first: int
    n: int
    acks: str

    def args(self) -> list[str]:
        return [self.workflow_id, str(self.first), str(self.n), self.acks]


async def send_signals(url: str, streams: list[Stream]) -> None:
    """Send the streams, concurrently (one client: their commits are grouped), each going
    on after the values its ``acks`` already holds."""
    client = await Client.connect(url)
    try:
        await asyncio.gather(*(_send(client, s) for s in streams))
    finally:
        await client.close()


async def _send(client: Client, stream: Stream) -> None:
    done = acknowledged(stream.acks)
    handle = client.get_workflow_handle(stream.workflow_id)
    fd = os.open(stream.acks, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        for value in range(stream.first + len(done), stream.first + stream.n):
            await handle.signal(SIGNAL, value)
            os.write(fd, f"{value}\n".encode())
            os.fsync(fd)
    finally:
        os.close(fd)
