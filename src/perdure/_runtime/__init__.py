"""The deterministic runtime: history events in, commands out. No I/O, no store, no clock.

``WorkflowRunner`` is the entry point; everything else here is its machinery.
"""

from perdure._runtime._runner import QueryFailed, WorkflowRunner, WorkflowTaskFailure

__all__ = ["QueryFailed", "WorkflowRunner", "WorkflowTaskFailure"]
