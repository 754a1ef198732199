"""``perdure worker --log-format json``: each log record as one JSON object on its own line,
with the ids ``workflow.logger`` and ``activity.logger`` put on their records as fields."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import orjson

# What every LogRecord has; anything else on a record was given as ``extra``.
_STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}
# Temporal's dicts of the same ids the record carries as fields: not written twice.
_DUPLICATES = frozenset({"temporal_workflow", "temporal_activity"})


class JsonFormatter(logging.Formatter):
    """``{"time", "level", "logger", "message", ...extra fields, "exception"}``: the
    workflow's and activity's ids (``workflow_id``, ``run_id``, ``workflow_type``,
    ``activity_id``, ``attempt``, ...) are fields of the object, ready for a log pipeline."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and key not in _DUPLICATES and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        return orjson.dumps(entry, default=repr).decode()


def configure(level: str, log_format: str) -> None:
    """The root logger's handler for a ``perdure`` command: text or JSON lines on stderr."""
    if log_format == "json":
        handler = logging.StreamHandler()
        handler.setFormatter(JsonFormatter())
        logging.basicConfig(level=level.upper(), handlers=[handler])
    else:
        logging.basicConfig(
            level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )
