"""examples/fan_out_100k.py at a small scale: the tree of batches, the counts and failures,
every history under the bound and replaying, and the script run as a user runs it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from example_support import EXAMPLES, load_example, run_example

from perdure.client import WorkflowExecutionStatus
from perdure.patterns import FanOutBatch
from perdure.testing import WorkflowEnvironment
from perdure.worker import Replayer

SCRIPT = EXAMPLES / "fan_out_100k.py"

ex = load_example(SCRIPT)


async def test_a_tree_of_batches_indexes_every_product() -> None:
    ex.INDEX.clear()
    # 3,000 products in batches of 200, at most 4 children a workflow: the root takes 4
    # children of 800 products (the last 600), each splitting into batches of 200.
    job = ex.ReindexJob("c", 3000, batch_size=200, max_children=4, max_concurrent_batches=2)
    async with await WorkflowEnvironment.start_time_skipping() as env:
        figures = await ex.run_job(env.client, job, progress=False)
        tree = [wf async for wf in env.client.list_workflows("WorkflowType = 'FanOutBatch'")]
        replayer = Replayer(workflows=[ex.ReindexCatalog, FanOutBatch])
        async for history in env.client.list_workflows().map_histories():
            await replayer.replay_workflow(history)

    s = figures.summary
    assert (s.total, s.succeeded, s.failed) == (3000, 2999, 1)
    assert [(f.item, f.type) for f in s.failures] == [(7, "CorruptRecord")]
    assert sorted(ex.INDEX) == [p for p in range(3000) if p != 7]
    assert len(tree) == s.workflow_runs == 4 + 15
    assert {wf.id for wf in tree if wf.history_length < 40} == {
        "reindex-c-fan-out/0-800",
        "reindex-c-fan-out/800-1600",
        "reindex-c-fan-out/1600-2400",
        "reindex-c-fan-out/2400-3000",
    }
    assert {wf.status for wf in tree} == {WorkflowExecutionStatus.COMPLETED}
    assert figures.runs == len(tree) + 1
    assert figures.largest_history == s.max_history_length < ex.HISTORY_BOUND
    # A batch's history: about 3 events a product.
    assert 3 * 200 < figures.largest_history < 4 * 200


@pytest.mark.realtime
def test_script_runs(tmp_path: Path) -> None:
    out = run_example(SCRIPT, tmp_path / "f.db", "--items", "2000")
    assert "2,000 products: 1,999 indexed, 1 failed (2 batch workflow runs)" in out
    assert "FAILED  product       7  CorruptRecord: product 7 has a corrupt record" in out
    largest = re.search(r"largest history:  ([\d,]+) events \(of 3 workflow runs", out)
    assert largest is not None, out
    assert 3000 < int(largest.group(1).replace(",", "")) < 10_000
    assert re.search(r"wall time: +[\d.]+ s", out) and re.search(r"peak RSS: +\d+ MiB", out)
