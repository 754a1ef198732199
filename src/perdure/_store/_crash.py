"""Named points inside the store's write transactions, where a test may end the process.

The rules call :data:`hook` at each point (``if crash.hook is not None: crash.hook(point)``):
after the writes a transaction is made of and before it commits, so a process that dies
there leaves the transaction uncommitted (the database rolls it back), and whatever it was
doing must be done again by someone else. The reliability suite installs a hook that
``os._exit``\\ s the process at the n-th hit of a point
(``tests/reliability/harness/crashpoints.py``); without one, reaching a point costs one
attribute check. The engine reads no environment variable for this.

The points (their names are what a hook receives):

* ``after_lease_claim``: a worker claimed workflow or activity tasks (leases written);
* ``after_timer_claim``: a due timer's row was taken, its ``TimerFired`` not yet written;
* ``during_signal_append``: a signal's event (or inbox row) was written;
* ``after_child_start_before_record``: a child run was created, its parent's
  ``ChildWorkflowExecutionStarted`` not yet written;
* ``during_child_completion_delivery``: a child closed and its parent's event was written;
* ``before_workflow_task_commit``: a workflow task's completion and its commands' events were
  written.
* ``after_parent_close_policy``: a parent closed with children open, and its close policy
  was applied to them (each terminated, asked to cancel, or left alone).
"""

from __future__ import annotations

from collections.abc import Callable

CrashHook = Callable[[str], None]

POINTS = (
    "after_lease_claim",
    "after_timer_claim",
    "during_signal_append",
    "after_child_start_before_record",
    "during_child_completion_delivery",
    "before_workflow_task_commit",
    "after_parent_close_policy",
)

# Called with the point's name at every point this process's store transactions reach;
# process-wide (a crash point ends a process, whatever store it was using).
hook: CrashHook | None = None


def install(new: CrashHook | None) -> None:
    """Install the hook (None: remove it)."""
    global hook
    hook = new
