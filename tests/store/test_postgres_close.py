"""Closing a PostgreSQL store leaves no connection behind, however soon after opening."""

from __future__ import annotations

import asyncio
import contextlib
import gc

from perdure import Client


async def test_a_client_closed_while_it_opens_leaves_no_connection_open(
    postgres_url: str,
) -> None:
    # close() waits for the open under way, then cancels the LISTEN task it started before
    # that task first ran: the task's connection was left for the garbage collector, which
    # warned "unclosed connection" in whatever test ran next.
    for _ in range(5):
        client = await Client.connect(postgres_url)
        counting = asyncio.ensure_future(client.count_workflows())
        await asyncio.sleep(0)  # the open is under way
        await client.close()
        with contextlib.suppress(Exception):
            await counting
    gc.collect()
