"""``perdure replay``: before deploying, replay the histories of running workflows (or of
files) against the workflow code about to be deployed; name each run it would break."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from typing import Any

import click

from perdure._errors import PerdureError
from perdure._operate.history_file import read_file
from perdure._operate.replay import ReplayOutcome, database_histories, replay_each
from perdure.cli._common import Cli, check_exists, connect, message
from perdure.cli._render import clip, echo_json
from perdure.cli._worker import _load, discover
from perdure.client import WorkflowHistory
from perdure.worker import Replayer


@click.command("replay")
@click.argument("sources", nargs=-1, required=True, metavar="[HISTORY.json ...] MODULE")
@click.option(
    "--db",
    default=None,
    envvar="PERDURE_DB",
    help="Replay the workflows of this database (env PERDURE_DB): by default the open ones.",
)
@click.option("--namespace", "-n", default="default", show_default=True)
@click.option(
    "-q",
    "--query",
    default=None,
    help="With --db: replay the runs this visibility query matches instead of the open ones.",
)
@click.option("-o", "--output", type=click.Choice(["text", "json", "jsonl"]), default="text")
def replay_command(
    sources: tuple[str, ...], db: str | None, namespace: str, query: str | None, output: str
) -> None:
    """Replay histories against the workflows defined in MODULE (e.g. myapp.workflows): those
    of the database's open runs (--db), or of exported HISTORY.json files. Prints each run
    that would break with the first event that no longer matches, then a summary; exits 1 if
    any would break."""
    *files, module = sources
    if not files and db is None:
        raise click.UsageError("Give history files, or a database with --db (or $PERDURE_DB)")
    if query is not None and db is None:
        raise click.UsageError("--query selects runs of a database: give --db too")
    if "" not in sys.path:
        sys.path.insert(0, "")
    workflows, _ = discover(_load(module), (), ())
    if not workflows:
        raise click.ClickException(f"{module} defines no @workflow.defn class to replay")
    if db is not None:
        check_exists(db)
    cli = Cli(db=db or "", namespace=namespace, output=output)
    ok = asyncio.run(_replay(cli, files, Replayer(workflows=workflows, namespace=namespace), query))
    if not ok:
        raise SystemExit(1)


async def _replay(cli: Cli, files: list[str], replayer: Replayer, query: str | None) -> bool:
    outcomes: list[ReplayOutcome] = []
    try:
        file_histories = [read_file(f) for f in files]
        async for outcome in replay_each(replayer, _files(file_histories)):
            _show(cli, outcome)
            outcomes.append(outcome)
        if cli.db:
            client = await connect(cli)
            try:
                async for outcome in replay_each(replayer, database_histories(client, query)):
                    _show(cli, outcome)
                    outcomes.append(outcome)
            finally:
                await client.close()
    except (PerdureError, ValueError) as exc:
        raise click.ClickException(message(exc)) from None
    broken = [o for o in outcomes if not o.ok]
    if cli.output == "json":
        echo_json([_json(o) for o in outcomes])
    elif cli.text:
        summary = f"Replayed {len(outcomes)} workflow(s): {len(outcomes) - len(broken)} ok"
        if broken:
            summary += ", " + click.style(f"{len(broken)} would break", fg="red", bold=True)
        click.echo(summary)
    return not broken


async def _files(histories: list[WorkflowHistory]) -> AsyncIterator[WorkflowHistory]:
    for history in histories:
        yield history


def _show(cli: Cli, outcome: ReplayOutcome) -> None:
    if cli.output == "jsonl":
        echo_json(_json(outcome), indent=False)
    elif cli.text and not outcome.ok:
        click.echo(
            f"{click.style('BREAKS', fg='red', bold=True)} {outcome.workflow_type} "
            f"{clip(outcome.workflow_id)} (run {outcome.run_id}): {outcome.error}"
        )


def _json(outcome: ReplayOutcome) -> dict[str, Any]:
    return {
        "workflow_id": outcome.workflow_id,
        "run_id": outcome.run_id,
        "workflow_type": outcome.workflow_type,
        "ok": outcome.ok,
        "error": str(outcome.error) if outcome.error else None,
    }
