"""Histories recorded by earlier engines still replay on this one.

The files in ``histories/`` were written by ``record.py``; see ``golden_workflows.py`` for the
rule (never re-record a history to make this test pass).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from golden_workflows import GOLDEN_WORKFLOWS, Order, refund, ship

from perdure import workflow
from perdure.client import WorkflowHistory
from perdure.worker import Replayer
from perdure.workflow import NondeterminismError

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))


def test_there_are_golden_histories() -> None:
    assert len(HISTORIES) >= 7, "tests/golden/histories/ lost its files"


@pytest.mark.parametrize("path", HISTORIES, ids=lambda p: p.stem)
async def test_golden_history_replays(path: Path) -> None:
    history = WorkflowHistory.from_json(None, path.read_bytes().decode())  # noqa: ASYNC240
    result = await Replayer(workflows=GOLDEN_WORKFLOWS).replay_workflow(history)
    assert result.replay_failure is None


@pytest.mark.parametrize("path", HISTORIES, ids=lambda p: p.stem)
def test_golden_history_format_round_trips(path: Path) -> None:
    text = path.read_text()
    assert WorkflowHistory.from_json(None, text).to_json() + "\n" == text


@workflow.defn(name="SagaGolden")
class SagaReordered:
    """SagaGolden as someone might 'tidy' it: refunding before shipping changes its commands."""

    @workflow.run
    async def run(self, order: Order) -> list[str]:
        await workflow.execute_activity(refund, order, start_to_close_timeout=timedelta(1))
        await workflow.execute_activity(ship, order, start_to_close_timeout=timedelta(1))
        return []


async def test_a_changed_workflow_fails_to_replay_its_golden_history() -> None:
    (path,) = [p for p in HISTORIES if p.name.startswith("saga.")]
    history = WorkflowHistory.from_json(None, path.read_bytes().decode())
    with pytest.raises(NondeterminismError, match=r"charge|refund"):
        await Replayer(workflows=[SagaReordered]).replay_workflow(history)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "invalid JSON"),
        ('{"workflow_id": "x"}', 'an "events" list'),
        ('{"format": "temporal", "events": []}', "format is 'temporal'"),
        ('{"format": "perdure.workflow-history", "version": 2, "events": []}', "Upgrade"),
        ('{"events": [{"event_id": 1}]}', "malformed event"),
    ],
)
def test_reading_what_is_not_a_history_says_why(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        WorkflowHistory.from_json(None, text)
