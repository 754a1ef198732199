"""Testing workflows and activities: the real engine in process, on a virtual clock, and
activity functions run on their own, workers crashed at chosen points."""

from perdure.testing._activity import ActivityEnvironment
from perdure.testing._crash import CrashingWorker, CrashPoint
from perdure.testing._environment import WorkflowEnvironment

__all__ = ["ActivityEnvironment", "CrashPoint", "CrashingWorker", "WorkflowEnvironment"]
