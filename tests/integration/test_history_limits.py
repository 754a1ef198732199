"""History size: continue-as-new suggested, a warning, then a hard stop (thresholds scaled
down for the test)."""

from __future__ import annotations

import logging

import pytest

from perdure import Worker, workflow
from perdure.client import WorkflowExecutionStatus, WorkflowFailureError
from perdure.exceptions import TerminatedError
from perdure.testing import WorkflowEnvironment


@workflow.defn
class Looper:
    @workflow.run
    async def run(self, stop_when_suggested: bool) -> int:
        while not (stop_when_suggested and workflow.info().is_continue_as_new_suggested()):
            await workflow.sleep(1)
        return workflow.info().get_current_history_length()


async def test_continue_as_new_is_suggested_past_the_threshold(
    env: WorkflowEnvironment, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("perdure._common.events.CONTINUE_AS_NEW_SUGGESTED_EVENTS", 30)
    async with Worker(env.client, task_queue="q", workflows=[Looper]):
        length = await env.client.execute_workflow(Looper.run, True, id="l", task_queue="q")
    assert 30 <= length < 35


async def test_a_history_past_the_limit_is_warned_about_then_ended(
    env: WorkflowEnvironment, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr("perdure.worker._workflow_worker.HISTORY_WARN_EVENTS", 20)
    monkeypatch.setattr("perdure._store._executions.HISTORY_EVENT_LIMIT", 60)
    caplog.set_level(logging.WARNING, logger="perdure.worker")
    async with Worker(env.client, task_queue="q", workflows=[Looper]):
        handle = await env.client.start_workflow(Looper.run, False, id="big", task_queue="q")
        with pytest.raises(WorkflowFailureError) as info:
            await handle.result()
    assert isinstance(info.value.cause, TerminatedError)
    assert "History limit exceeded" in str(info.value.cause)
    assert "continue as new" in str(info.value.cause)
    warnings = [r for r in caplog.records if "large history" in r.getMessage()]
    assert len(warnings) == 1  # once per run
    assert (await handle.describe()).status == WorkflowExecutionStatus.TERMINATED
