"""Completing an activity from outside the worker (webhooks, human steps, other systems)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from perdure._common.identifiers import check_namespace, check_run_id, check_workflow_id
from perdure._errors import InvalidArgumentError, PerdureError
from perdure._store._types import StaleTaskError, TaskToken

if TYPE_CHECKING:
    from perdure.client._connection import Connection


class AsyncActivityCancelledError(PerdureError):
    """The workflow asked to cancel the activity (learned through ``heartbeat``)."""


class AsyncActivityNotFoundError(PerdureError):
    """The activity attempt behind the token is gone: completed, timed out or retried."""


class AsyncActivityHandle:
    """An activity that called ``activity.raise_complete_async()``, completed later by
    whoever holds its task token.

    Example::

        # in the activity
        await ticketing.open(activity.info().task_token)
        activity.raise_complete_async()

        # in the webhook handler, later
        await client.get_async_activity_handle(task_token=token).complete("approved")
    """

    def __init__(self, connection: Connection, task_token: bytes) -> None:
        if not isinstance(task_token, bytes):
            raise InvalidArgumentError(
                f"task_token: an activity task token is bytes (activity.info().task_token), "
                f"not {type(task_token).__name__}"
            )
        token = TaskToken.decode(task_token)
        check_namespace(token.namespace)
        check_workflow_id(token.workflow_id, "task_token")
        check_run_id(token.run_id, "task_token")
        self._connection = connection
        self._token = token
        self.task_token = task_token

    async def _call(self, op: Any) -> Any:
        try:
            return await op
        except StaleTaskError as exc:
            raise AsyncActivityNotFoundError(str(exc)) from None

    async def complete(self, result: Any = None) -> None:
        """Complete the activity with ``result``."""
        payload = (await self._connection.data_converter.encode([result]))[0]
        await self._call(
            self._connection.store.complete_activity(
                self._token, None, payload, self._connection.identity
            )
        )

    async def fail(self, error: Exception, *, last_heartbeat_details: Sequence[Any] = ()) -> None:
        """Fail this attempt with ``error``; the retry policy decides what comes next."""
        if last_heartbeat_details:
            await self.heartbeat(*last_heartbeat_details)
        failure = await self._connection.data_converter.encode_failure(error)
        await self._call(
            self._connection.store.fail_activity(
                self._token, None, failure, self._connection.identity
            )
        )

    async def heartbeat(self, *details: Any) -> None:
        """Record progress (and keep a heartbeat timeout from firing).

        Raises:
            AsyncActivityCancelledError: the workflow asked to cancel the activity; call
                :meth:`report_cancellation` once it has stopped.
        """
        payloads = await self._connection.data_converter.encode(list(details))
        cancel = await self._call(
            self._connection.store.heartbeat_activity(self._token, None, payloads)
        )
        if cancel:
            raise AsyncActivityCancelledError("Cancellation of this activity was requested")

    async def report_cancellation(self, *details: Any) -> None:
        """Tell the workflow the activity stopped because it was asked to cancel."""
        payloads = await self._connection.data_converter.encode(list(details))
        await self._call(
            self._connection.store.activity_cancelled(
                self._token, None, payloads, self._connection.identity
            )
        )
