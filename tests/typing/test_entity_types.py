"""perdure.patterns.EntityWorkflow's static types, checked by mypy --strict (this file is in
mypy's files) and run as a test: the state and the run method take the subclass's type."""

from __future__ import annotations

from collections.abc import Coroutine
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, assert_type

from perdure import workflow
from perdure.patterns import EntityWorkflow


@dataclass
class Count:
    n: int = 0


@workflow.defn
class CountEntity(EntityWorkflow[Count]):
    idle_timeout = timedelta(days=1)

    @workflow.update
    def add(self, k: int) -> int:
        assert_type(self.state, Count)
        self.state.n += k
        return self.state.n

    def next_deadline(self) -> datetime | None:
        return None


def test_the_state_type_flows_into_the_state_and_the_run_method() -> None:
    entity = CountEntity(Count(2))  # outside a workflow, as a plain object
    assert_type(entity.state, Count)
    assert_type(entity.ended, bool)
    assert_type(entity.initial_state(), Count)
    assert_type(CountEntity.max_history_length, int | None)
    run = entity.run(Count(3))
    checked = assert_type(run, Coroutine[Any, Any, Count])
    checked.close()
    assert entity.state == Count(2)
    assert entity.initial_state() == Count()
