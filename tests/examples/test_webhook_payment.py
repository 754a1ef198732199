"""examples/webhook_payment.py: payments completed by the provider's webhook, on the virtual
clock (a lost callback costs one attempt's timeout, and no second charge), and the script run
as a user runs it."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from example_support import EXAMPLES, load_example, run_example

from perdure import Worker
from perdure._common.events import EventType
from perdure.testing import WorkflowEnvironment
from perdure.worker import Replayer

SCRIPT = EXAMPLES / "webhook_payment.py"

ex = load_example(SCRIPT)


def attempts(history: Any) -> list[int]:
    return [
        e.attributes["attempt"]
        for e in history.events
        if e.event_type is EventType.ACTIVITY_TASK_STARTED
    ]


async def test_payments_on_the_virtual_clock(capsys: pytest.CaptureFixture[str]) -> None:
    async with await WorkflowEnvironment.start_time_skipping() as env:
        client = env.client
        provider = ex.FakeProvider(client, delay=0, lose_first_callback_of={"ORD-3"})
        try:
            async with Worker(
                client,
                task_queue=ex.TASK_QUEUE,
                workflows=[ex.PaymentWorkflow],
                activities=[ex.Payments(provider).request_payment],
            ):
                before = await env.get_current_time()
                results = await ex.demo(client, provider, answer_within=3600)
                took = await env.get_current_time() - before

                # A callback for an attempt that is over is ignored, not an error.
                paid = next(c for c in provider.charges.values() if c.order_id == "ORD-1")
                await provider.call_back(paid)
        finally:
            await provider.close()

        assert [(r.order_id, r.status, r.detail) for r in results] == [
            ("ORD-1", "paid", "ch_001"),
            ("ORD-2", "declined", "card declined"),
            ("ORD-3", "paid", "ch_003"),
        ]
        # ORD-3's lost callback: its first attempt timed out after an hour, the retry (0.5 s
        # later) got the charge already made, under the same idempotency key.
        assert len(provider.charges) == 3
        assert took == timedelta(hours=1, seconds=0.5)
        histories = {
            o: await client.get_workflow_handle(f"payment-{o}").fetch_history()
            for o in ("ORD-1", "ORD-2", "ORD-3")
        }
        assert {o: attempts(h) for o, h in histories.items()} == {
            "ORD-1": [1],
            "ORD-2": [1],
            "ORD-3": [2],
        }
        out = capsys.readouterr().out
        assert out.count("key seen before; not charging again") == 1
        assert "ORD-1: callback for an attempt that is over, ignored" in out

        replayer = Replayer(workflows=[ex.PaymentWorkflow])
        for history in histories.values():
            await replayer.replay_workflow(history)


@pytest.mark.realtime
def test_script_runs(tmp_path: Path) -> None:
    out = run_example(SCRIPT, tmp_path / "webhook.db", "--answer-within", "1")
    assert "ORD-1: PAID (ch_001)" in out
    assert "ORD-2: DECLINED (card declined)" in out
    assert "ORD-3: PAID (ch_003)" in out
    assert "ORD-3: the callback is lost on the network" in out
    assert "ORD-3: key seen before; not charging again" in out
    assert "The provider made 3 charge(s) in this run." in out
