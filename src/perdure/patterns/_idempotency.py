"""The idempotency key of an activity: the same for every attempt, to pass to the systems an
activity calls so that a retried attempt does not act twice."""

from __future__ import annotations

import uuid

from perdure import activity

# Fixed for good: the UUID form of a key must never change between perdure versions.
_UUID_NAMESPACE = uuid.UUID("5e0c7a52-3f0e-5b8e-9d2a-7f1f3c7b2d10")


def idempotency_key(*scope: str, as_uuid: bool = False) -> str:
    """The running activity's idempotency key: the same for every attempt of it.

    The key is ``"{namespace}/{workflow_id}/{run_id}/{activity_id}"``
    (``activity.info().idempotency_key``), with each ``scope`` part appended after a ``/``.
    It is the same across the activity's retries, across a worker that dies while running it
    (the attempt is retried elsewhere), across workflow task retries and replays. It differs
    for every other activity the workflow schedules, in this run and in any other run
    (another workflow, a new run after continue-as-new or a workflow retry, a workflow id
    used again). So an activity that the workflow schedules again, after catching its
    failure, gets a new key, unless the workflow passes the same ``activity_id=`` both times:
    the key follows the activity id.

    Pass ``scope`` parts when one activity makes several calls that must each happen once
    (``idempotency_key("charge")``, ``idempotency_key("email")``): each gets its own key, as
    stable as the activity's. ``as_uuid=True`` returns the key as a UUID string (a name-based
    UUID of it, always the same for the same key) for systems that want a UUID or a short
    key; key lengths otherwise follow the workflow id's.

    Example::

        @activity.defn
        async def charge(order: Order) -> str:
            return await payments.charge(order.total, idempotency_key=idempotency_key())

    Raises:
        perdure.activity.NotInActivityError: called outside an activity.
        ValueError: a ``scope`` part is empty.
    """
    if not all(scope):
        raise ValueError(f"idempotency_key: scope parts must not be empty, got {scope!r}")
    key = "/".join((activity.info().idempotency_key, *scope))
    return str(uuid.uuid5(_UUID_NAMESPACE, key)) if as_uuid else key
