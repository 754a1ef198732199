"""``perdure workflow signal | query | update execute | stack | cancel | terminate``: talking
to a workflow, or (by ``--query``) to every workflow a visibility query matches."""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from typing import Any

import click

from perdure._errors import RPCTimeoutOrCancelledError
from perdure._operate.batch import BatchReport, matching, run_batch
from perdure.cli._common import Cli, connected
from perdure.cli._params import DURATION, inputs
from perdure.cli._render import clip, echo_json
from perdure.cli._workflow_run import input_options, run_id_option
from perdure.client import Client, ResetType, WorkflowHandle

# An operation on one workflow; it may return the id of the run it made (reset does).
Action = Callable[[WorkflowHandle[Any]], Awaitable[str | None]]


def target_options(fn: Any) -> Any:
    """``-w ID [-r RUN]`` for one workflow, or ``--query`` for a batch (with ``--yes``)."""
    fn = click.option(
        "-y", "--yes", is_flag=True, help="With --query: do not ask for confirmation."
    )(fn)
    fn = click.option(
        "-q",
        "--query",
        default=None,
        help="Act on every workflow this visibility query matches (a batch).",
    )(fn)
    fn = run_id_option(fn)
    return click.option("-w", "--workflow-id", default=None, help="The workflow id.")(fn)


async def act(
    cli: Cli,
    client: Client,
    *,
    workflow_id: str | None,
    run_id: str | None,
    query: str | None,
    yes: bool,
    verb: tuple[str, str],
    action: Action,
) -> None:
    """Do ``action`` to one workflow, or to a batch: count, confirm, progress, report.

    ``verb`` is the operation's name and its past tense: ``("Terminate", "Terminated")``.
    """
    if query is None:
        if workflow_id is None:
            raise click.UsageError("Give a workflow with -w/--workflow-id, or a batch with --query")
        new_run_id = await action(client.get_workflow_handle(workflow_id, run_id=run_id))
        if cli.text:
            made = f": new run {new_run_id}" if new_run_id else ""
            click.echo(f"{verb[1]} workflow {workflow_id}{made}")
        else:
            echo_json(
                {"workflow_id": workflow_id, "run_id": new_run_id or run_id},
                indent=cli.output == "json",
            )
        return
    if workflow_id is not None or run_id is not None:
        raise click.UsageError("Give either -w/--workflow-id (and -r) or --query, not both")
    targets = await matching(client, query)
    click.echo(f"{len(targets)} workflow(s) match the query", err=True)
    report = BatchReport(matched=len(targets))
    if targets:
        if not yes:
            click.confirm(f"{verb[0]} {len(targets)} workflow(s)?", abort=True, err=True)
        if sys.stderr.isatty():
            with click.progressbar(length=len(targets), label=verb[0], file=sys.stderr) as bar:
                report = await run_batch(client, targets, action, on_done=bar.update)
        else:
            report = await run_batch(client, targets, action)
    _report(cli, verb[1], report)


def _report(cli: Cli, verb: str, report: BatchReport) -> None:
    if not cli.text:
        echo_json(
            {
                "matched": report.matched,
                "succeeded": report.succeeded,
                "failures": [
                    {"workflow_id": f.workflow_id, "run_id": f.run_id, "error": f.error}
                    for f in report.failures
                ],
            },
            indent=cli.output == "json",
        )
    else:
        click.echo(f"{verb} {report.succeeded} of {report.matched} workflow(s)")
        for failure in report.failures:
            click.echo(
                f"  failed: {clip(failure.workflow_id)} (run {failure.run_id}): {failure.error}",
                err=True,
            )
    if report.failures:
        raise SystemExit(1)


@click.command("cancel")
@target_options
@click.option("--reason", default="", help="Why (recorded in history).")
@connected()
async def cancel_command(cli: Cli, client: Client, reason: str, **target: Any) -> None:
    """Ask a workflow to cancel: it sees asyncio.CancelledError and may clean up."""

    async def action(handle: WorkflowHandle[Any]) -> None:
        await handle.cancel(reason=reason)
        return None

    await act(cli, client, verb=("Cancel", "Cancelled"), action=action, **target)


@click.command("terminate")
@target_options
@click.option("--reason", default="", help="Why (recorded in history).")
@connected()
async def terminate_command(cli: Cli, client: Client, reason: str, **target: Any) -> None:
    """End a workflow at once, running none of its code."""

    async def action(handle: WorkflowHandle[Any]) -> None:
        await handle.terminate(reason=reason or None)
        return None

    await act(cli, client, verb=("Terminate", "Terminated"), action=action, **target)


RESET_TYPES = {
    "FirstWorkflowTask": ResetType.FIRST_WORKFLOW_TASK,
    "LastWorkflowTask": ResetType.LAST_WORKFLOW_TASK,
    "LastContinuedAsNew": ResetType.LAST_CONTINUED_AS_NEW,
}


@click.command("reset")
@target_options
@click.option(
    "--event-id",
    type=click.IntRange(min=1),
    default=None,
    help="The WorkflowTaskCompleted event whose task runs again (see `workflow show`).",
)
@click.option(
    "--reset-type",
    type=click.Choice(list(RESET_TYPES)),
    default=None,
    help="Or which task runs again [default: LastWorkflowTask].",
)
@click.option("--reason", required=True, help="Why (recorded in both runs).")
@click.option(
    "--reapply-signals/--no-reapply-signals",
    default=True,
    show_default=True,
    help="Deliver again the signals received after the reset point.",
)
@connected()
async def reset_command(
    cli: Cli,
    client: Client,
    event_id: int | None,
    reset_type: str | None,
    reason: str,
    reapply_signals: bool,
    **target: Any,
) -> None:
    """Run a workflow task again on the current code, in a new run carrying the history
    before it: the way past a bad deploy (fix the code, then reset to before the bug). The
    current run is terminated; signals received after the point are delivered again."""
    if event_id is not None and reset_type is not None:
        raise click.UsageError("Give --event-id or --reset-type, not both")
    if event_id is not None and target["query"] is not None:
        raise click.UsageError(
            "--event-id names an event of one run: use --reset-type with --query"
        )
    kind = RESET_TYPES[reset_type or "LastWorkflowTask"]

    async def action(handle: WorkflowHandle[Any]) -> str:
        if target["query"] is not None:
            # A batch matches runs; one already reset lives on in the run its reset made.
            done = (await handle.describe()).reset_to
            if done is not None:
                raise ValueError(
                    f"run {handle.run_id} was already reset into run {done.new_run_id}"
                )
        return await handle.reset(
            event_id, reset_type=kind, reason=reason, reapply_signals=reapply_signals
        )

    await act(cli, client, verb=("Reset", "Reset"), action=action, **target)


@click.command("delete")
@target_options
@connected()
async def delete_command(cli: Cli, client: Client, **target: Any) -> None:
    """Delete a workflow run with its history (an open run is terminated first)."""

    async def action(handle: WorkflowHandle[Any]) -> None:
        await handle.delete()
        return None

    await act(cli, client, verb=("Delete", "Deleted"), action=action, **target)


@click.command("signal")
@target_options
@click.option("--name", required=True, help="The signal's name.")
@input_options
@click.option(
    "--request-id",
    default=None,
    help="The signal's idempotency key: run the command again with it (after a timeout, "
    "say) and the signal is recorded once. Default: none (each run is a new signal).",
)
@connected()
async def signal_command(
    cli: Cli,
    client: Client,
    name: str,
    input_values: tuple[str, ...],
    input_file: tuple[str, ...],
    request_id: str | None,
    **target: Any,
) -> None:
    """Send a signal (recorded in history, delivered once)."""
    args = inputs(input_values, input_file)

    async def action(handle: WorkflowHandle[Any]) -> None:
        await handle.signal(name, args=args, request_id=request_id)
        return None

    await act(cli, client, verb=("Signal", "Signalled"), action=action, **target)


@click.command("query")
@click.option("-w", "--workflow-id", required=True, help="The workflow id.")
@run_id_option
@click.option("--name", required=True, help="The query's name.")
@input_options
@click.option(
    "--timeout", type=DURATION, default="30s", show_default=True, help="How long to wait."
)
@connected()
async def query_command(
    cli: Cli,
    client: Client,
    workflow_id: str,
    run_id: str | None,
    name: str,
    input_values: tuple[str, ...],
    input_file: tuple[str, ...],
    timeout: Any,
) -> None:
    """Ask a workflow's query handler and print its answer (a worker must be running)."""
    handle = client.get_workflow_handle(workflow_id, run_id=run_id)
    result = await handle.query(
        name, args=inputs(input_values, input_file), rpc_timeout=timeout.total_seconds()
    )
    echo_json(result, indent=cli.output != "jsonl")


@click.command("stack")
@click.option("-w", "--workflow-id", required=True, help="The workflow id.")
@run_id_option
@click.option(
    "--timeout", type=DURATION, default="10s", show_default=True, help="How long to wait."
)
@connected()
async def stack_command(
    cli: Cli, client: Client, workflow_id: str, run_id: str | None, timeout: Any
) -> None:
    """Print where the workflow's code is waiting: each of its coroutines, with file:line
    (answered by a running worker, through the built-in __stack_trace query)."""
    handle = client.get_workflow_handle(workflow_id, run_id=run_id)
    try:
        trace = await handle.query("__stack_trace", rpc_timeout=timeout.total_seconds())
    except RPCTimeoutOrCancelledError as exc:
        raise click.ClickException(
            f"{exc}\nThe stack trace comes from a worker that runs this workflow's code: start "
            "one (perdure worker --db ... -t QUEUE your.module) and try again."
        ) from None
    if cli.text:
        click.echo(str(trace).rstrip())
    else:
        echo_json({"stack_trace": trace}, indent=cli.output == "json")


@click.group("update")
def update_group() -> None:
    """Workflow updates."""


@update_group.command("execute")
@click.option("-w", "--workflow-id", required=True, help="The workflow id.")
@run_id_option
@click.option("--name", required=True, help="The update's name.")
@click.option("--update-id", default=None, help="An id that deduplicates the update.")
@input_options
@connected()
async def update_execute_command(
    cli: Cli,
    client: Client,
    workflow_id: str,
    run_id: str | None,
    name: str,
    update_id: str | None,
    input_values: tuple[str, ...],
    input_file: tuple[str, ...],
) -> None:
    """Send an update, wait for its result and print it (exit 1 if rejected or failed)."""
    handle = client.get_workflow_handle(workflow_id, run_id=run_id)
    result = await handle.execute_update(name, args=inputs(input_values, input_file), id=update_id)
    echo_json(result, indent=cli.output != "jsonl")
