"""Histories recorded by earlier engines still replay on this one.

The files in ``histories/`` were written by ``record.py``; see ``golden_workflows.py`` for the
rule (never re-record a history to make this test pass).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from golden_workflows import GOLDEN_WORKFLOWS, Order, refund, ship

from perdure import worker, workflow
from perdure.client import WorkflowHistory
from perdure.converter import DataConverter
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


class _Seen(worker.Interceptor):
    """Records the headers each inbound call of a replayed workflow carries."""

    seen: list[tuple[str, str]] = []

    def workflow_interceptor_class(
        self, input: worker.WorkflowInterceptorClassInput
    ) -> type[worker.WorkflowInboundInterceptor]:
        return _SeenInbound


def _golden(headers: Any) -> str:
    return str(DataConverter.default.payload_converter.from_payload(headers["golden"], str))


class _SeenInbound(worker.WorkflowInboundInterceptor):
    async def execute_workflow(self, input: worker.ExecuteWorkflowInput) -> Any:
        _Seen.seen.append(("run", _golden(input.headers)))
        return await super().execute_workflow(input)

    async def handle_signal(self, input: worker.HandleSignalInput) -> None:
        _Seen.seen.append(("signal", _golden(input.headers)))
        await super().handle_signal(input)

    async def handle_update_handler(self, input: worker.HandleUpdateInput) -> Any:
        _Seen.seen.append(("update", _golden(input.headers)))
        return await super().handle_update_handler(input)


async def test_recorded_headers_reach_the_interceptors_on_replay() -> None:
    (path,) = [p for p in HISTORIES if p.name.startswith("headers.hdr.")]
    history = WorkflowHistory.from_json(None, path.read_bytes().decode())
    _Seen.seen = []
    await Replayer(workflows=GOLDEN_WORKFLOWS, interceptors=[_Seen()]).replay_workflow(history)
    assert _Seen.seen == [
        ("run", "start hdr"),
        ("signal", "signal add"),
        ("update", "update rename"),
        ("signal", "signal close"),
    ]
