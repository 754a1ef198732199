"""A COMMIT whose reply was lost (the connection dropped, the server crashed): whether the
transaction took effect, learned from its id, which the batch's last statement returned."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, cast

from perdure._store._postgres_support import _backoff, _Server
from perdure._store._postgres_tx import _PostgresTx
from perdure._store._tx import Tx

log = logging.getLogger("perdure.store")

# Whether a transaction whose COMMIT got no reply committed. A crash loses a transaction
# none of whose WAL was written, and hands its id out again: an id not handed out yet is
# such a transaction's, and so, when the server restarted (on the same timeline) since the
# transaction ran, is an id not below the next id of the checkpoint recovery ended with
# (recovery's nextXid is past every id in the WAL, a committed transaction's too). Either is
# aborted, and not to be looked up: the id may be another transaction's now.
_XID_STATUS = (
    "SELECT CASE WHEN $1 >= txid_snapshot_xmax(txid_current_snapshot()) THEN 'aborted' "
    "ELSE txid_status($1) END"
)
_XID_STATUS_SINCE = (
    "SELECT CASE WHEN $1 >= txid_snapshot_xmax(txid_current_snapshot()) "
    "OR ($1 >= (split_part(next_xid, ':', 1)::bigint << 32) + split_part(next_xid, ':', 2)::bigint "
    "AND pg_postmaster_start_time() <> $2 AND timeline_id = $3) THEN 'aborted' "
    "ELSE txid_status($1) END FROM pg_control_checkpoint()"
)


async def commit_outcome(
    read: Callable[[Callable[[Tx], Awaitable[Any]]], Awaitable[Any]],
    xid: int,
    server: _Server | None,
    give_up_after: Callable[[], float],
) -> str | None:
    """Whether the transaction ``xid``, run on ``server``, whose COMMIT got no reply,
    committed (``"committed"``, ``"aborted"``), or None if that cannot be learned. Asked
    (through the store's ``read``) until the server answers, and while the transaction is
    still in progress there, for at most ``give_up_after()`` seconds (asked each time: a
    store that closes meanwhile gives up sooner)."""
    query: tuple[Any, ...] = (_XID_STATUS, xid)
    if server is not None and server.timeline is not None:
        query = (_XID_STATUS_SINCE, xid, server.started, server.timeline)
    began = time.monotonic()
    failures = 0
    while True:
        try:
            status = await read(lambda tx: cast(_PostgresTx, tx).c.fetchval(*query))
        except Exception as exc:
            log.warning("Cannot learn whether a PostgreSQL transaction committed: %s", exc)
            return None
        if status != "in progress":  # None: too old to be known, not one just sent
            return None if status is None else str(status)
        if time.monotonic() - began >= give_up_after():
            return None
        await asyncio.sleep(_backoff(failures))
        failures += 1
