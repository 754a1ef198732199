"""The activity side of a webhook: :func:`hand_off` gives the activity's task token to an
outside system, which completes the activity later through the client."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import NoReturn

from perdure import activity


@dataclass(frozen=True)
class HandOff:
    """What an outside system needs to answer an activity later, given to
    :func:`hand_off`'s ``send``."""

    task_token: bytes
    """Names this attempt; whoever holds it completes the activity with
    ``client.get_async_activity_handle(task_token=...)``. URL-safe ASCII:
    ``task_token.decode()`` puts it in a URL or a JSON body."""
    idempotency_key: str
    """The same for every attempt of the activity (see
    :func:`perdure.patterns.idempotency_key`): the outside system recognises a retried request
    by it, and must then answer with the newest token it was given for the key."""
    attempt: int
    """The attempt's number, from 1."""


async def hand_off(send: Callable[[HandOff], object]) -> NoReturn:
    """Give this activity's task token to an outside system and return without completing
    the activity: it is completed later, by whoever receives the token, through
    ``client.get_async_activity_handle(task_token=...)`` (``complete``, ``fail``,
    ``heartbeat``, ``report_cancellation``).

    ``send`` receives a :class:`HandOff`; it may return an awaitable, which is awaited. If
    ``send`` raises, the attempt fails as if the activity had raised, and is retried by its
    policy (with a new token). Call it last, from an ``async def`` activity; a sync activity
    sends ``activity.info().task_token`` itself and calls ``activity.raise_complete_async()``.

    The attempt's ``start_to_close_timeout`` (and ``heartbeat_timeout``, if set) still run
    while it waits: set them to how long the answer may take. When an attempt times out, its
    token is dead (the handle raises ``AsyncActivityNotFoundError``) and the retry hands a new
    token off with the same ``idempotency_key``.

    Example::

        @activity.defn
        async def charge(payment: Payment) -> Receipt:
            await hand_off(lambda h: provider.charge(
                payment, callback_token=h.task_token.decode(), request_id=h.idempotency_key))

        # in the webhook handler, when the provider calls back
        await client.get_async_activity_handle(task_token=token.encode()).complete(receipt)

    Raises:
        perdure.activity.NotInActivityError: called outside an activity.
    """
    info = activity.info()
    sent = send(HandOff(info.task_token, info.idempotency_key, info.attempt))
    if inspect.isawaitable(sent):
        await sent
    activity.raise_complete_async()
