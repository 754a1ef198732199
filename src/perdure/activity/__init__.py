"""Writing activities: the functions that do the outside work, at least once, with retries.

Example::

    from perdure import activity

    @activity.defn
    async def send_email(to: str, body: str) -> None:
        activity.heartbeat()
        await mailer.send(to, body, idempotency_key=activity.info().idempotency_key)
"""

from perdure.activity._context import (
    CompleteAsyncError,
    Info,
    NotInActivityError,
    heartbeat,
    in_activity,
    info,
    is_cancelled,
    is_worker_shutdown,
    logger,
    payload_converter,
    raise_complete_async,
    wait_for_cancelled,
    wait_for_cancelled_sync,
)
from perdure.activity._definition import ActivityDefinition, defn

__all__ = [
    "ActivityDefinition",
    "CompleteAsyncError",
    "Info",
    "NotInActivityError",
    "defn",
    "heartbeat",
    "in_activity",
    "info",
    "is_cancelled",
    "is_worker_shutdown",
    "logger",
    "payload_converter",
    "raise_complete_async",
    "wait_for_cancelled",
    "wait_for_cancelled_sync",
]
