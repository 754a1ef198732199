"""``perdure workflow start | execute | result``: starting a workflow and waiting for it."""

from __future__ import annotations

import uuid
from typing import Any

import click

from perdure._errors import WorkflowFailureError
from perdure._operate.outcome import closed_status
from perdure._operate.shapes import failure_json, workflow_json
from perdure.cli._common import Cli, connected
from perdure.cli._params import DURATION, inputs, key_values, search_attributes
from perdure.cli._render import echo_json, fields, status
from perdure.client import Client, WorkflowHandle
from perdure.common import Priority, WorkflowIDConflictPolicy, WorkflowIDReusePolicy

# Temporal CLI's spellings of the id policies.
REUSE_POLICIES = {
    "AllowDuplicate": WorkflowIDReusePolicy.ALLOW_DUPLICATE,
    "AllowDuplicateFailedOnly": WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
    "RejectDuplicate": WorkflowIDReusePolicy.REJECT_DUPLICATE,
    "TerminateIfRunning": WorkflowIDReusePolicy.TERMINATE_IF_RUNNING,
}
CONFLICT_POLICIES = {
    "Fail": WorkflowIDConflictPolicy.FAIL,
    "UseExisting": WorkflowIDConflictPolicy.USE_EXISTING,
    "TerminateExisting": WorkflowIDConflictPolicy.TERMINATE_EXISTING,
}


def workflow_id_option(fn: Any) -> Any:
    return click.option("-w", "--workflow-id", required=True, help="The workflow id.")(fn)


def run_id_option(fn: Any) -> Any:
    return click.option(
        "-r", "--run-id", default=None, help="A run of the workflow (default: its latest)."
    )(fn)


def input_options(fn: Any) -> Any:
    fn = click.option(
        "--input-file",
        multiple=True,
        type=click.Path(dir_okay=False),
        help="A file of JSON: one argument per file (repeatable).",
    )(fn)
    return click.option(
        "-i",
        "--input",
        "input_values",
        multiple=True,
        metavar="JSON",
        help="An argument as JSON (repeatable: one per argument), e.g. -i '\"o-1\"' -i 42.",
    )(fn)


def start_options(fn: Any) -> Any:
    for option in reversed(
        [
            click.option("--type", "workflow_type", required=True, help="The workflow type."),
            click.option("-t", "--task-queue", required=True, help="The task queue."),
            click.option(
                "-w", "--workflow-id", default=None, help="The workflow id (default: a UUID)."
            ),
            click.option("--execution-timeout", type=DURATION, help="e.g. 1h, 30d."),
            click.option("--run-timeout", type=DURATION),
            click.option("--task-timeout", type=DURATION),
            click.option("--start-delay", type=DURATION, help="Hold the first workflow task back."),
            click.option(
                "--id-reuse-policy",
                type=click.Choice(list(REUSE_POLICIES)),
                default="AllowDuplicate",
                show_default=True,
            ),
            click.option(
                "--id-conflict-policy",
                type=click.Choice(list(CONFLICT_POLICIES)),
                default="Fail",
                show_default=True,
            ),
            click.option(
                "--memo", multiple=True, metavar="KEY=JSON", help="A memo entry (repeatable)."
            ),
            click.option(
                "--search-attribute",
                "search_attribute",
                multiple=True,
                metavar="KEY=JSON",
                help="A search attribute (repeatable); its JSON type gives its type.",
            ),
            click.option(
                "--priority-key",
                type=click.IntRange(1, 5),
                help="1 runs first, 5 last (default 3): the order of its tasks in the queue.",
            ),
            click.option(
                "--fairness-key",
                help="Tasks of different fairness keys share the queue (e.g. a tenant's id).",
            ),
            click.option(
                "--fairness-weight",
                type=click.FloatRange(0.001, 1000),
                help="This key's share of the queue against other keys' (default 1.0).",
            ),
            input_options,
        ]
    ):
        fn = option(fn)
    return fn


async def _start(client: Client, options: dict[str, Any]) -> WorkflowHandle[Any]:
    args = inputs(options["input_values"], options["input_file"])
    return await client.start_workflow(
        options["workflow_type"],
        args=args,
        id=options["workflow_id"] or str(uuid.uuid4()),
        task_queue=options["task_queue"],
        id_reuse_policy=REUSE_POLICIES[options["id_reuse_policy"]],
        id_conflict_policy=CONFLICT_POLICIES[options["id_conflict_policy"]],
        memo=key_values(options["memo"], "--memo") or None,
        search_attributes=search_attributes(options["search_attribute"]),
        execution_timeout=options["execution_timeout"],
        run_timeout=options["run_timeout"],
        task_timeout=options["task_timeout"],
        start_delay=options["start_delay"],
        priority=_priority(options),
    )


def _priority(options: dict[str, Any]) -> Priority | None:
    fields = ("priority_key", "fairness_key", "fairness_weight")
    if all(options[name] is None for name in fields):
        return None
    try:
        return Priority(**{name: options[name] for name in fields})
    except ValueError as e:  # the key's length: the ranges are click's
        raise click.BadParameter(str(e), param_hint="'--fairness-key'") from None


@click.command("start")
@start_options
@connected(creates=True)
async def start_command(cli: Cli, client: Client, **options: Any) -> None:
    """Start a workflow and print its id and run id (it runs when a worker of its task queue
    takes it)."""
    handle = await _start(client, options)
    desc = await handle.describe()
    if not cli.text:
        echo_json(workflow_json(desc), indent=cli.output == "json")
        return
    click.echo(f"Started workflow {desc.id}")
    fields(
        [
            ("  Run ID", desc.run_id),
            ("  Type", desc.workflow_type),
            ("  Task queue", desc.task_queue),
        ]
    )


@click.command("execute")
@start_options
@connected(creates=True)
async def execute_command(cli: Cli, client: Client, **options: Any) -> None:
    """Start a workflow, wait for it to close and print its result; exit 1 if it failed,
    was cancelled, terminated or timed out (its failure chain on stderr)."""
    handle = await _start(client, options)
    if cli.text:
        click.echo(f"Started workflow {handle.id}, run {handle.result_run_id}; waiting…", err=True)
    await _print_result(cli, handle)


@click.command("result")
@workflow_id_option
@run_id_option
@connected()
async def result_command(cli: Cli, client: Client, workflow_id: str, run_id: str | None) -> None:
    """Wait for a workflow to close and print its result (following continue-as-new and
    retries); exit 1 if it did not complete."""
    await _print_result(cli, client.get_workflow_handle(workflow_id, run_id=run_id))


async def _print_result(cli: Cli, handle: WorkflowHandle[Any]) -> None:
    try:
        result = await handle.result()
    except WorkflowFailureError as exc:
        cause = exc.cause or exc
        if cli.text:
            click.echo(
                f"Workflow {handle.id} {status(closed_status(cause))}: {failure_chain(cause)}",
                err=True,
            )
        else:
            echo_json(
                {"status": closed_status(cause), "failure": failure_json(cause)},
                indent=cli.output == "json",
                err=True,
            )
        raise SystemExit(1) from None
    if cli.text:
        click.echo(f"Workflow {handle.id} {status('COMPLETED')}", err=True)
        echo_json(result)
    else:
        echo_json(result, indent=cli.output == "json")


def failure_chain(error: BaseException) -> str:
    """``ApplicationError: card declined``, then each cause on a line of its own."""
    lines: list[str] = []
    current: BaseException | None = error
    while current is not None and len(lines) < 10:
        kind = getattr(current, "type", None) or type(current).__name__
        lines.append(f"{kind}: {current}")
        current = getattr(current, "cause", None) or current.__cause__
    return "\n  caused by ".join(lines)
