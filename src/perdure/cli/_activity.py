"""``perdure activity complete | fail``: finishing an asynchronously completed activity from a
shell script, by the task token its activity handed out (``activity.info().task_token``,
which is ASCII: ``task_token.decode()`` gives the text to pass)."""

from __future__ import annotations

import click

from perdure._errors import ApplicationError
from perdure.cli._common import Cli, connected
from perdure.cli._params import parse_json
from perdure.cli._render import echo_json
from perdure.client import Client

token_option = click.option(
    "--task-token", required=True, help="The activity's task token (its text form)."
)


@click.group("activity")
def activity_group() -> None:
    """Complete or fail activities that complete asynchronously."""


@activity_group.command("complete")
@token_option
@click.option("--result", default="null", metavar="JSON", help="The activity's result as JSON.")
@connected()
async def complete_command(cli: Cli, client: Client, task_token: str, result: str) -> None:
    """Complete the activity with a result."""
    value = parse_json(result, "--result")
    await client.get_async_activity_handle(task_token=task_token.encode()).complete(value)
    _done(cli, "Completed")


@activity_group.command("fail")
@token_option
@click.option("--reason", required=True, help="The failure's message.")
@click.option("--type", "error_type", default=None, help="The failure's type name.")
@click.option(
    "--detail", "details", multiple=True, metavar="JSON", help="A detail as JSON (repeatable)."
)
@click.option(
    "--non-retryable", is_flag=True, help="Fail the activity for good (no further attempts)."
)
@connected()
async def fail_command(
    cli: Cli,
    client: Client,
    task_token: str,
    reason: str,
    error_type: str | None,
    details: tuple[str, ...],
    non_retryable: bool,
) -> None:
    """Fail this attempt of the activity (its retry policy decides what comes next)."""
    values = [parse_json(d, "--detail") for d in details]
    error = ApplicationError(reason, *values, type=error_type, non_retryable=non_retryable)
    await client.get_async_activity_handle(task_token=task_token.encode()).fail(error)
    _done(cli, "Failed")


def _done(cli: Cli, verb: str) -> None:
    if cli.text:
        click.echo(f"{verb} the activity")
    else:
        echo_json({"ok": True}, indent=cli.output == "json")
