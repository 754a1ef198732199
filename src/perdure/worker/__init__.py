"""Running workflows and activities: ``Worker``, and ``Replayer`` to check code changes."""

from perdure.worker._replayer import Replayer, WorkflowReplayResult
from perdure.worker._worker import Worker

__all__ = ["Replayer", "Worker", "WorkflowReplayResult"]
