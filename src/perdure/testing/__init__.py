"""Testing workflows: the real engine in process, on a virtual clock."""

from perdure.testing._environment import WorkflowEnvironment

__all__ = ["WorkflowEnvironment"]
