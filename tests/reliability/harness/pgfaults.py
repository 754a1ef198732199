"""PostgreSQL faults a test deals its own server (never the shared one): every client
backend but the caller's terminated (``pg_terminate_backend``), as an administrator or the
server's own resource limits would."""

from __future__ import annotations

from typing import Any

# Every client session of the cluster but this one. Only for a private server (pgserver):
# there, every other session is the test's own.
_TERMINATE = (
    "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity "
    "WHERE pid <> pg_backend_pid() AND backend_type = 'client backend'"
)


async def terminate_backends(private_server_url: str) -> int:
    """Terminate every client backend of the private server at ``private_server_url`` but
    the one asking; how many were terminated."""
    import asyncpg  # type: ignore[import-untyped]

    conn: Any = await asyncpg.connect(private_server_url, timeout=10)
    try:
        return int(await conn.fetchval(_TERMINATE))
    finally:
        await conn.close()
