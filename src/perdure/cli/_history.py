"""``perdure history export | import``: a run's history as a JSON file (for bug reports and
golden tests), and such a file brought back into a database for inspection."""

from __future__ import annotations

import asyncio
from pathlib import Path

import click

from perdure._operate.history_file import import_file
from perdure.cli._common import Cli, connected
from perdure.cli._render import echo_json
from perdure.cli._workflow_run import run_id_option
from perdure.client import Client


@click.group("history")
def history_group() -> None:
    """Export and import workflow histories (JSON files)."""


@history_group.command("export")
@click.option("-w", "--workflow-id", required=True, help="The workflow id.")
@run_id_option
@click.option(
    "--output-file",
    "output_file",
    type=click.Path(dir_okay=False, writable=True),
    default=None,
    help="Write to this file (default: standard output).",
)
@connected()
async def export_command(
    cli: Cli, client: Client, workflow_id: str, run_id: str | None, output_file: str | None
) -> None:
    """Write a run's history as JSON (the WorkflowHistory.to_json() document)."""
    history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
    text = history.to_json()
    if output_file is None:
        click.echo(text)
        return
    await asyncio.to_thread(Path(output_file).write_text, text + "\n")
    click.echo(f"Wrote {len(history.events)} events of {workflow_id} to {output_file}", err=True)


@history_group.command("import")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option(
    "-w",
    "--workflow-id",
    default=None,
    help="Import under this workflow id (default: the file's; a new run id is made).",
)
@connected(creates=True)
async def import_command(
    cli: Cli, client: Client, files: tuple[str, ...], workflow_id: str | None
) -> None:
    """Bring exported histories into the database as closed runs, to look at them with
    ``workflow show`` and ``describe`` or replay them. A history exported while its run was
    open is closed by a WorkflowExecutionTerminated event saying so: no worker runs it."""
    for path in files:
        ex = await import_file(client, path, workflow_id=workflow_id)
        if cli.text:
            click.echo(
                f"Imported {path}: workflow {ex.workflow_id}, run {ex.run_id} "
                f"({ex.next_event_id - 1} events, {ex.status.name})"
            )
        else:
            echo_json(
                {"file": path, "workflow_id": ex.workflow_id, "run_id": ex.run_id},
                indent=cli.output == "json",
            )
