"""A paced fan-out: 50 payouts through a payment provider that allows 10 calls a second,
the urgent ones first.

Run it::

    pip install -e .
    python examples/rate_limited_api.py              # uses ./perdure-payouts.db
    python examples/rate_limited_api.py --payouts 20 --reset

One workflow schedules every payout at once, as one activity each. Left alone, a worker would
start them all within milliseconds and the provider would refuse most of them (HTTP 429). The
worker's ``max_task_queue_activities_per_second=10`` makes the database hand the activities
out at 10 a second, however many workers the queue has (a token bucket, taken in the same
transaction that claims the task). The urgent payouts carry ``Priority(priority_key=1)``, so
they leave the queue before the others (priority 3 when none is given), and each merchant's
payouts carry ``concurrency_key``: with ``max_concurrent_activities_per_key=2`` no merchant
has more than two calls in flight at once.

The provider is simulated in this process: it counts the calls of every second and refuses
a call beyond 10 a second, as a real one would; in real life ``FakeProvider.pay`` is an
HTTP request.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections import deque
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from perdure import ApplicationError, Client, Worker, activity, workflow
from perdure.common import Priority

TASK_QUEUE = "payouts"
RATE = 10  # calls a second the provider allows
STARTED_AT = time.monotonic()


def say(line: str) -> None:
    """Print one narrative line, stamped with the seconds since this process started."""
    print(f"[{time.monotonic() - STARTED_AT:5.1f}s] {line}", flush=True)


@dataclass
class Payout:
    payout_id: str
    merchant: str
    amount: int  # cents
    urgent: bool = False


class FakeProvider:
    """Stands for the payment provider's API: at most ``RATE`` calls in any second."""

    def __init__(self) -> None:
        self.calls: list[tuple[float, str]] = []  # (monotonic time, payout id)
        self._window: deque[float] = deque()
        self.refused = 0

    async def pay(self, payout: Payout) -> str:
        now = time.monotonic()
        while self._window and now - self._window[0] >= 1.0:
            self._window.popleft()
        # A burst of a few calls over the rate is tolerated, as providers' buckets do.
        if len(self._window) >= RATE + 2:
            self.refused += 1
            raise ApplicationError("429 Too Many Requests", type="RateLimited")
        self._window.append(now)
        self.calls.append((now, payout.payout_id))
        await asyncio.sleep(0.05)  # the provider's answer
        return f"tr_{payout.payout_id.lower()}"


PROVIDER = FakeProvider()


@activity.defn
async def send_payout(payout: Payout) -> str:
    return await PROVIDER.pay(payout)


@workflow.defn
class PayoutBatch:
    @workflow.run
    async def run(self, payouts: list[Payout]) -> list[str]:
        return list(
            await asyncio.gather(
                *(
                    workflow.execute_activity(
                        send_payout,
                        p,
                        start_to_close_timeout=timedelta(seconds=30),
                        priority=Priority(priority_key=1) if p.urgent else None,
                        concurrency_key=p.merchant,
                    )
                    for p in payouts
                )
            )
        )


def payouts(n: int) -> list[Payout]:
    """``n`` payouts to four merchants; every tenth is urgent."""
    merchants = ["acme", "globex", "initech", "umbrella"]
    return [
        Payout(f"PO-{i:03d}", merchants[i % 4], 1000 + 25 * i, urgent=i % 10 == 9) for i in range(n)
    ]


def most_in_a_second(times: list[float]) -> int:
    times = sorted(times)
    most, first = 0, 0
    for last, t in enumerate(times):
        while t - times[first] >= 1.0:
            first += 1
        most = max(most, last - first + 1)
    return most


async def main(db: Path, count: int) -> None:
    client = await Client.connect(f"sqlite:///{db}")
    batch = payouts(count)
    urgent = [p.payout_id for p in batch if p.urgent]
    say(f"Paying {count} payouts ({len(urgent)} urgent) at {RATE} calls a second")
    async with Worker(
        client,
        task_queue=TASK_QUEUE,
        workflows=[PayoutBatch],
        activities=[send_payout],
        max_task_queue_activities_per_second=RATE,
        max_concurrent_activities_per_key=2,
    ):
        receipts = await client.execute_workflow(
            PayoutBatch.run, batch, id=f"payouts-{time.time_ns()}", task_queue=TASK_QUEUE
        )
    await client.close()
    times = [t for t, _ in PROVIDER.calls]
    first = [pid for _, pid in PROVIDER.calls[: len(urgent)]]
    say(f"{len(receipts)} paid in {max(times) - min(times):.1f} s")
    say(f"at most {most_in_a_second(times)} calls in any one second; refused: {PROVIDER.refused}")
    say(f"first calls: {', '.join(first)} (the urgent ones: {', '.join(urgent)})")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, default=Path("perdure-payouts.db"))
    parser.add_argument("--payouts", type=int, default=50)
    parser.add_argument("--reset", action="store_true", help="delete the database first")
    options = parser.parse_args()
    if options.reset:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{options.db}{suffix}").unlink(missing_ok=True)
    asyncio.run(main(options.db, options.payouts))
