"""The overlap policies: which waiting starts of a schedule go now, wait, or are skipped.

Pure: given the buffer (in slot order) and whether a run the schedule started is running,
the plan says what to start, what stays buffered, how many were skipped, and whether the
running run is to be cancelled or terminated. Temporal's rules, start by start:

- ALLOW_ALL: start it (such runs are not tracked as running);
- nothing running and nothing chosen yet: start it, whatever its policy;
- otherwise SKIP skips it; BUFFER_ONE keeps it if the buffer is empty, else skips it;
  BUFFER_ALL keeps it; CANCEL_OTHER and TERMINATE_OTHER keep it and cancel or terminate the
  running run (or, if what "runs" is only the start chosen a moment ago, take its place).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from perdure._common.schedule_spec import ScheduleOverlapPolicy as Overlap
from perdure._store._schedule_state import BufferedStart


@dataclass(slots=True)
class BufferPlan:
    overlapping: list[BufferedStart] = field(default_factory=list)  # ALLOW_ALL starts
    start: BufferedStart | None = None  # the one non-overlapping start, if any
    buffer: list[BufferedStart] = field(default_factory=list)
    skipped: int = 0
    cancel: bool = False
    terminate: bool = False


def plan(buffer: list[BufferedStart], running: bool, default: int) -> BufferPlan:
    """What to do with ``buffer`` now; ``default`` is the schedule's policy."""
    out = BufferPlan()
    for start in buffer:
        policy = Overlap(start.overlap or default or Overlap.SKIP)
        if policy == Overlap.ALLOW_ALL:
            out.overlapping.append(start)
        elif not running and out.start is None:
            out.start = start
        elif policy == Overlap.SKIP:
            out.skipped += 1
        elif policy == Overlap.BUFFER_ONE:
            if out.buffer:
                out.skipped += 1
            else:
                out.buffer.append(start)
        elif policy == Overlap.BUFFER_ALL:
            out.buffer.append(start)
        elif running:  # CANCEL_OTHER, TERMINATE_OTHER
            out.buffer.append(start)
            out.cancel = out.cancel or policy == Overlap.CANCEL_OTHER
            out.terminate = out.terminate or policy == Overlap.TERMINATE_OTHER
        else:
            out.start = start
    if out.cancel or out.terminate:
        # They would be cancelled or terminated at once with the running one.
        out.overlapping = []
    return out
