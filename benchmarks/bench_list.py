"""Listing at scale: the workflow list, counts and a long history, timed server side on a
database of ``--closed`` closed and ``--open`` open workflows (1,000,000 and 10,000 by
default) and one run with a ``--history``-event history (10,000).

Each case is timed two ways, on SQLite and on PostgreSQL (``--store``): through the real
HTTP app (``perdure.server.create_app`` with a token file, reached through httpx's ASGI
transport: routing, authentication, the store, JSON; no network) and through the client API
(``client.list_workflows(...).fetch_next_page()``, ``count_workflows``,
``fetch_history_events``). Each figure is the median of ``--runs`` timings, after one
untimed warm-up request. The target is 300 ms for every case.

    python benchmarks/bench_list.py [--store sqlite|postgresql|both] [--runs 5]
        [--closed 1000000] [--open 10000] [--history 10000] [--page-size 100]
        [--max-count 10000]
        [--cache-dir /tmp/perdure-bench-list] [--postgres URL] [--fresh] [--drop]

Filling takes a few minutes at the default sizes (see ``bench_list_fill``); the filled
database is kept for the next run with the same sizes: a SQLite file in ``--cache-dir``, a
PostgreSQL schema named after the sizes (``--drop`` drops it at the end, ``--fresh``
refills either).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

import bench_list_fill as filling
import httpx

import perdure
from perdure import Client
from perdure._store._visibility_keys import page_token
from perdure._store._visibility_query import compile_query
from perdure.server import create_app
from perdure.server._state import encode_page_token

TARGET_MS = 300.0
POSTGRES = os.environ.get("PERDURE_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


@dataclass(frozen=True)
class Case:
    """One timed request: its HTTP path and query parameters, and the same through the
    client (``None``: HTTP only)."""

    label: str
    path: str
    params: dict[str, str]
    call: Callable[[], Awaitable[int]] | None


@dataclass(frozen=True)
class Database:
    url: str
    history_run_id: str
    history_events: int


# --- preparing the database -----------------------------------------------------------------


def _sizes(args: argparse.Namespace) -> str:
    return f"{args.closed}-{args.open}-{args.history}"


async def sqlite_database(args: argparse.Namespace) -> Database:
    path, marker, found = _cached_sqlite(args)
    url = f"sqlite:///{path}"
    if found is not None:
        print(f"  reusing {path}", flush=True)
        return Database(url, **found)
    print(f"  filling {path}", flush=True)
    client = await Client.connect(url)
    try:
        t = await filling.fill(client, url, args.closed, args.open, args.history)
    finally:
        await client.close()
    found = {"history_run_id": t.history_run_id, "history_events": t.history_events}
    marker.write_text(json.dumps(found))
    return Database(url, **found)


def _cached_sqlite(args: argparse.Namespace) -> tuple[Path, Path, dict[str, Any] | None]:
    """The file for these sizes, its marker (written once it is filled), and what the
    marker holds; a file without a marker is removed."""
    cache = Path(args.cache_dir)
    cache.mkdir(parents=True, exist_ok=True)
    path = cache / f"list-{_sizes(args)}.db"
    marker = path.with_suffix(".json")
    if marker.exists() and path.exists() and not args.fresh:
        found: dict[str, Any] = json.loads(marker.read_text())
        return path, marker, found
    marker.unlink(missing_ok=True)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return path, marker, None


def _pg_schema(args: argparse.Namespace) -> str:
    return args.pg_schema or f"bench_list_{_sizes(args).replace('-', '_')}"


async def postgres_database(args: argparse.Namespace) -> Database:
    import asyncpg  # type: ignore[import-untyped]

    schema = _pg_schema(args)
    url = f"{args.postgres}{'&' if '?' in args.postgres else '?'}schema={schema}"
    admin = await asyncpg.connect(args.postgres)
    try:
        note = await admin.fetchval(
            "SELECT obj_description(oid, 'pg_namespace') FROM pg_namespace WHERE nspname = $1",
            schema,
        )
        if note and not args.fresh:
            print(f"  reusing schema {schema}", flush=True)
            return Database(url, **json.loads(note))
        await admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        print(f"  filling schema {schema}", flush=True)
        client = await Client.connect(url)
        try:
            t = await filling.fill(client, url, args.closed, args.open, args.history)
        finally:
            await client.close()
        found = {"history_run_id": t.history_run_id, "history_events": t.history_events}
        # The schema's comment marks it as filled (a fill cut short has none).
        literal = json.dumps(found).replace("'", "''")
        await admin.execute(f"COMMENT ON SCHEMA \"{schema}\" IS '{literal}'")
        return Database(url, **found)
    finally:
        await admin.close()


async def drop_postgres(args: argparse.Namespace) -> None:
    import asyncpg

    admin = await asyncpg.connect(args.postgres)
    try:
        await admin.execute(f'DROP SCHEMA IF EXISTS "{_pg_schema(args)}" CASCADE')
    finally:
        await admin.close()


# --- the cases ------------------------------------------------------------------------------


async def deep_row(client: Client, db: Database, offset: int) -> tuple[bytes, str] | None:
    """The token ``list_workflows()`` hands out after the row ``offset`` rows deep (newest
    first), what paging that deep from the first page would arrive with; and that row's
    workflow id."""
    sql = (
        "SELECT run_id FROM executions WHERE namespace = 'default' "
        f"ORDER BY start_time DESC, run_id DESC LIMIT 1 OFFSET {offset}"
    )
    if db.url.startswith("sqlite"):
        conn = sqlite3.connect(db.url.removeprefix("sqlite:///"))
        try:
            found = conn.execute(sql).fetchone()
        finally:
            conn.close()
        run_id = found[0] if found else None
    else:
        import asyncpg

        server, schema = filling.split_pg_url(db.url)
        conn = await asyncpg.connect(server, server_settings={"search_path": schema})
        try:
            run_id = await conn.fetchval(sql)
        finally:
            await conn.close()
    if run_id is None:
        return None
    ex = await client.store.read(lambda tx: tx.get_execution(run_id))
    assert ex is not None
    dialect: Any = "sqlite" if db.url.startswith("sqlite") else "postgresql"
    compiled = compile_query("", {}, dialect=dialect)
    return page_token("default", compiled.fingerprint, compiled.sort, ex), ex.workflow_id


def cases(
    client: Client, db: Database, args: argparse.Namespace, deep: tuple[bytes, str] | None
) -> list[Case]:
    size = args.page_size
    some_id = deep[1] if deep else "order-0000001"

    def listing(query: str | None, token: bytes | None = None) -> Callable[[], Awaitable[int]]:
        async def call() -> int:
            it = client.list_workflows(query, page_size=size, next_page_token=token)
            await it.fetch_next_page()
            return len(it.current_page or ())

        return call

    def counting(query: str | None, cap: int | None = None) -> Callable[[], Awaitable[int]]:
        async def call() -> int:
            return (await client.count_workflows(query, max_count=cap)).count

        return call

    def history(page: int, after: int) -> Callable[[], Awaitable[int]]:
        handle = client.get_workflow_handle(filling.HISTORY_WORKFLOW_ID, run_id=db.history_run_id)

        async def call() -> int:
            events = handle.fetch_history_events(page_size=page, after_event_id=after)
            await events.fetch_next_page()
            return len(events.current_page or ())

        return call

    queries = [
        ("first page, no query", None),
        ("ExecutionStatus = 'Running'", "ExecutionStatus = 'Running'"),
        ("ExecutionStatus = 'Failed'", "ExecutionStatus = 'Failed'"),
        ("WorkflowType = 'Payment'", "WorkflowType = 'Payment'"),
        (f"WorkflowType = '{filling.RARE_TYPE}' (0.1%)", f"WorkflowType = '{filling.RARE_TYPE}'"),
        (
            "Running AND WorkflowType = 'Order'",
            "ExecutionStatus = 'Running' AND WorkflowType = 'Order'",
        ),
        ("WorkflowId = one id", f"WorkflowId = '{some_id}'"),
        (f"WorkflowId STARTS_WITH '{some_id[:-2]}'", f"WorkflowId STARTS_WITH '{some_id[:-2]}'"),
        ("StartTime > a day ago", "StartTime > '" + _day_ago() + "'"),
        ("ORDER BY StartTime (oldest first)", "ORDER BY StartTime"),
        ("ORDER BY CloseTime DESC", "ORDER BY CloseTime DESC"),
        ("Failed ORDER BY CloseTime DESC", "ExecutionStatus = 'Failed' ORDER BY CloseTime DESC"),
    ]
    found = [
        Case(label, "/api/v1/workflows", _params(query, page_size=size), listing(query))
        for label, query in queries
    ]
    if deep is not None:
        found.append(
            Case(
                f"page {args.closed // 2 // size:,} deep (token)",
                "/api/v1/workflows",
                {"page_size": str(size), "next_page_token": encode_page_token(deep[0]) or ""},
                listing(None, deep[0]),
            )
        )
    cap = args.max_count
    for label, query in [
        ("count, no query", None),
        ("count Running", "ExecutionStatus = 'Running'"),
        ("count Failed", "ExecutionStatus = 'Failed'"),
        ("count Completed", "ExecutionStatus = 'Completed'"),
        ("count GROUP BY ExecutionStatus", "GROUP BY ExecutionStatus"),
        (f"count WorkflowType = '{filling.RARE_TYPE}'", f"WorkflowType = '{filling.RARE_TYPE}'"),
    ]:
        found.append(Case(label, "/api/v1/workflows/count", _params(query), counting(query)))
    for label, query in [
        (f"count, no query, max_count {cap:,}", None),
        (f"count GROUP BY ExecutionStatus, max_count {cap:,}", "GROUP BY ExecutionStatus"),
    ]:
        params = _params(query, max_count=cap)
        found.append(Case(label, "/api/v1/workflows/count", params, counting(query, cap)))
    path = f"/api/v1/workflows/{filling.HISTORY_WORKFLOW_ID}/history"
    middle = db.history_events // 2
    found += [
        Case(
            f"history ({db.history_events:,} events), first page of 100",
            path,
            {"page_size": "100"},
            history(100, 0),
        ),
        Case(
            f"history, page of 100 after event {middle:,}",
            path,
            {
                "page_size": "100",
                "next_page_token": encode_page_token(f"{middle}:{db.history_run_id}".encode())
                or "",
            },
            history(100, middle),
        ),
        Case("history, first page, default size", path, {}, history(1000, 0)),
    ]
    return found


def _params(query: str | None, **more: int) -> dict[str, str]:
    params = {k: str(v) for k, v in more.items()}
    if query:
        params["query"] = query
    return params


def _day_ago() -> str:
    from datetime import UTC, datetime, timedelta

    return (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- timing ---------------------------------------------------------------------------------


async def timed(fn: Callable[[], Awaitable[Any]], runs: int) -> tuple[float, Any]:
    result = await fn()  # warm-up
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        result = await fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times), result


async def measure(
    db: Database, args: argparse.Namespace
) -> list[tuple[str, float, float | None, str]]:
    t0 = time.perf_counter()
    client = await Client.connect(db.url)
    # The first read applies any newer migration to a cached database.
    await client.count_workflows("WorkflowId = 'none'")
    print(f"  opened (and migrated, if it was older) in {time.perf_counter() - t0:.1f} s")
    tmp = Path(tempfile.mkdtemp(prefix="perdure-bench-list-"))
    try:
        token = "bench-list-token"
        token_file = tmp / "tokens"
        token_file.write_text(f"{token} read\n")
        token_file.chmod(0o600)
        app = create_app(client, token_file=token_file)
        transport = httpx.ASGITransport(app=app)
        headers = {"Authorization": f"Bearer {token}"}
        deep = await deep_row(client, db, args.closed // 2)
        rows = []
        async with httpx.AsyncClient(
            transport=transport, base_url="http://127.0.0.1", headers=headers, timeout=120
        ) as http:
            for case in cases(client, db, args, deep):

                async def get(case: Case = case) -> httpx.Response:
                    response = await http.get(case.path, params=case.params)
                    response.raise_for_status()
                    return response

                http_ms, response = await timed(get, args.runs)
                client_ms = None
                if case.call is not None:
                    client_ms, _ = await timed(case.call, args.runs)
                rows.append((case.label, http_ms, client_ms, _summary(response.json())))
        return rows
    finally:
        await client.close()
        shutil.rmtree(tmp, ignore_errors=True)


def _summary(body: dict[str, Any]) -> str:
    if "count" in body:
        return f"count {body['count']:,}" + (" (capped)" if body.get("capped") else "")
    items = body.get("workflows", body.get("events", []))
    more = "more" if body.get("next_page_token") else "last"
    return f"{len(items)} rows, {more}"


def machine_info(postgres: bool) -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return (
        f"machine: {os.cpu_count()} cores ({cpu}), {platform.system()} {platform.release()}, "
        f"load {os.getloadavg()[0]:.1f}\n"
        f"python {platform.python_version()}, SQLite {sqlite3.sqlite_version}, "
        f"perdure {perdure.__version__}" + (f", PostgreSQL at {POSTGRES}" if postgres else "")
    )


async def main(args: argparse.Namespace) -> int:
    stores = ["sqlite", "postgresql"] if args.store == "both" else [args.store]
    print(machine_info("postgresql" in stores))
    print(
        f"{args.closed:,} closed + {args.open:,} open workflows, a {args.history:,}-event "
        f"history; page size {args.page_size}; median of {args.runs} runs (ms), target "
        f"{TARGET_MS:.0f} ms",
        flush=True,
    )
    worst = 0.0
    for store in stores:
        print(f"\n{store}:", flush=True)
        db = await (sqlite_database(args) if store == "sqlite" else postgres_database(args))
        try:
            rows = await measure(db, args)
        finally:
            if store == "postgresql" and args.drop:
                await drop_postgres(args)
        print(f"  {'case':<50} {'HTTP ms':>9} {'client ms':>10}   answer")
        for label, http_ms, client_ms, answer in rows:
            shown = f"{client_ms:10.1f}" if client_ms is not None else f"{'-':>10}"
            print(f"  {label:<50} {http_ms:9.1f} {shown}   {answer}")
            worst = max(worst, http_ms, client_ms or 0.0)
    print(f"\nslowest: {worst:.1f} ms (target {TARGET_MS:.0f} ms)")
    return 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--store", choices=["sqlite", "postgresql", "both"], default="both")
    p.add_argument("--runs", type=int, default=5, help="timings per case (median)")
    p.add_argument("--closed", type=int, default=1_000_000)
    p.add_argument("--open", type=int, default=10_000)
    p.add_argument("--history", type=int, default=10_000, help="events of the long history")
    p.add_argument("--page-size", type=int, default=100)
    p.add_argument("--max-count", type=int, default=10_000, help="the capped counts' cap")
    p.add_argument(
        "--cache-dir",
        default=os.path.join(tempfile.gettempdir(), "perdure-bench-list"),
        help="where filled SQLite files are kept between runs",
    )
    p.add_argument("--postgres", default=POSTGRES, help="PostgreSQL server URL")
    p.add_argument("--pg-schema", default=None, help="schema to fill (default: by the sizes)")
    p.add_argument("--fresh", action="store_true", help="refill even if a filled copy exists")
    p.add_argument("--drop", action="store_true", help="drop the PostgreSQL schema at the end")
    args = p.parse_args(argv)
    if args.runs < 1 or args.closed < 0 or args.open < 0 or args.history < 10:
        p.error("--runs must be >= 1, sizes >= 0, --history >= 10")
    return args


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse_args())))
