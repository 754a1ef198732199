"""Testing workflows and activities: the real engine in process, on a virtual clock, and
activity functions run on their own."""

from perdure.testing._activity import ActivityEnvironment
from perdure.testing._environment import WorkflowEnvironment

__all__ = ["ActivityEnvironment", "WorkflowEnvironment"]
