"""``WorkflowHistory``: a run's events, and their stable JSON form."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from perdure._common.events import HistoryEvent

HISTORY_FORMAT = "perdure.workflow-history"
HISTORY_FORMAT_VERSION = 1


@dataclass(frozen=True)
class WorkflowHistory:
    """A run's events, as ``fetch_history()`` returns them; JSON round-trips exactly.

    The JSON form (``to_json``) is stable and versioned: ``{"format":
    "perdure.workflow-history", "version": 1, "workflow_id", "run_id", "events": [...]}``,
    each event ``{"event_id", "event_type", "event_time", "attributes"}`` with payloads as
    ``{"metadata": {key: base64}, "data": base64}``. docs/testing.md describes it; a file
    written by this version is read by every later one.
    """

    workflow_id: str
    events: Sequence[HistoryEvent]
    run_id: str = ""

    def to_json(self) -> str:
        """The history as JSON, in the versioned format above."""
        return orjson.dumps(self.to_json_dict(), option=orjson.OPT_INDENT_2).decode()

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "format": HISTORY_FORMAT,
            "version": HISTORY_FORMAT_VERSION,
            "workflow_id": self.workflow_id,
            "run_id": self.run_id,
            "events": [e.to_json_dict() for e in self.events],
        }

    @staticmethod
    def from_json(
        workflow_id: str | None, history: str | bytes | dict[str, Any]
    ) -> WorkflowHistory:
        """Read a history written by :meth:`to_json` (``workflow_id`` overrides the file's).

        Raises:
            ValueError: the text is not a perdure workflow history, or one written by a newer
                perdure than this one.
        """
        try:
            obj = orjson.loads(history) if isinstance(history, str | bytes) else history
        except orjson.JSONDecodeError as exc:
            raise ValueError(f"Not a workflow history: invalid JSON ({exc})") from exc
        if not isinstance(obj, dict) or not isinstance(obj.get("events"), list):
            raise ValueError(
                'Not a workflow history: expected a JSON object with an "events" list, as '
                "WorkflowHistory.to_json() writes"
            )
        fmt = obj.get("format", HISTORY_FORMAT)
        version = obj.get("version", HISTORY_FORMAT_VERSION)
        if fmt != HISTORY_FORMAT:
            raise ValueError(f"Not a perdure workflow history: format is {fmt!r}")
        if not isinstance(version, int) or version > HISTORY_FORMAT_VERSION:
            raise ValueError(
                f"This history is in format version {version!r}; this perdure reads versions "
                f"up to {HISTORY_FORMAT_VERSION}. Upgrade perdure to read it."
            )
        try:
            events = [HistoryEvent.from_json_dict(e) for e in obj["events"]]
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"Not a workflow history: a malformed event ({exc!r})") from exc
        return WorkflowHistory(
            workflow_id=workflow_id or obj.get("workflow_id", ""),
            run_id=obj.get("run_id", ""),
            events=events,
        )
