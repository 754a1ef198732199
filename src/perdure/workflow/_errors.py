from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class ContinueAsNewError(BaseException):
    """Raised by ``workflow.continue_as_new``: ends this run and starts a fresh one with the
    same workflow id. A ``BaseException``, so ``except Exception`` does not swallow it; let it
    propagate out of the run method."""

    def __init__(
        self,
        args: Sequence[Any],
        *,
        workflow_type: str | None,
        task_queue: str | None,
        run_timeout: float | None,
        task_timeout: float | None,
        memo: dict[str, Any] | None,
        header: dict[str, Any] | None = None,
    ) -> None:
        super().__init__("Continue as new")
        self.header = header
        self.args_ = list(args)
        self.workflow_type = workflow_type
        self.task_queue = task_queue
        self.run_timeout = run_timeout
        self.task_timeout = task_timeout
        self.memo = memo
