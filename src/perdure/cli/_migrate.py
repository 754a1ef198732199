"""``perdure migrate --from URL --to URL``: every workflow, open or closed, moved to another
database (SQLite to PostgreSQL, or back), checked, with the source left as it was."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import click

from perdure._errors import PerdureError
from perdure._store import Store, open_store, sqlite_target
from perdure._store._migrate import migrate
from perdure.cli._common import check_exists, message


def _read_only(url: str) -> str:
    """A SQLite source is opened read-only: the copy cannot change it."""
    if url.startswith("sqlite:") and sqlite_target(url).path != ":memory:" and "?" not in url:
        return url + "?mode=ro"
    return url


@click.command("migrate")
@click.option("--from", "source", required=True, help="The database to copy: sqlite:///app.db")
@click.option("--to", "target", required=True, help="A new, empty database: postgresql://...")
def migrate_command(source: str, target: str) -> None:
    """Copy every workflow (open or closed, with its history, tasks, timers, updates, search
    attributes), namespaces and schedules to an empty database, then check the copy (row
    counts and checksums, table by table). The source is opened read-only and left intact.

    Stop the workers first; start them on the new database once this has finished: the
    tasks they held are released there.
    """
    if source == target:
        raise click.ClickException("--from and --to name the same database")
    try:
        check_exists(source)
        src = open_store(_read_only(source))
    except PerdureError as exc:
        raise click.ClickException(message(exc)) from None
    asyncio.run(_run(src, target))


class _Progress:
    """A progress bar per table, on standard error."""

    def __init__(self) -> None:
        self.table: str | None = None
        self.bar: Any = None
        self.done = 0

    def __call__(self, table: str, done: int, total: int) -> None:
        if table != self.table:
            self.close()
            self.table, self.done = table, 0
            self.bar = click.progressbar(
                length=max(total, 1), label=f"{table:<24}", file=sys.stderr
            )
            self.bar.__enter__()
        self.bar.update(done - self.done)
        self.done = done

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None


async def _run(src_store: Store, target: str) -> None:
    dst_store = None
    progress = _Progress()
    try:
        dst_store = open_store(target)
        reports = await migrate(src_store, dst_store, on_progress=progress)
    except PerdureError as exc:
        raise click.ClickException(message(exc)) from None
    finally:
        progress.close()
        await src_store.close()
        if dst_store is not None:
            await dst_store.close()
    rows = sum(r.rows for r in reports)
    click.echo(f"Copied {rows} rows in {len(reports)} tables; counts and checksums match.")
    for r in reports:
        click.echo(f"  {r.table:<24} {r.rows:>10}  {r.checksum[:16]}")
